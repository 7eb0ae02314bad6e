"""Baclofen orders found in a request: recognised, dosed and dated, drafts marked as such."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cds.facts.dose import DailyDose, daily_dose
from cds.facts.recognition import MedicationIndex, Recognition, recognise_baclofen
from cds.facts.record import PatientRecord
from cds.facts.timeutil import parse_fhir_datetime
from cds.product import Product
from rules import Knowledge

ACTIVE_STATUSES = ("active", "on-hold")
ENDED_STATUSES = ("stopped", "completed", "cancelled")
NEVER_COUNTS = ("entered-in-error",)
_UNDATED = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BaclofenOrder:
    """One baclofen MedicationRequest with what the rules need to know about it."""

    ref: str  # "MedicationRequest/<id>"
    resource: dict
    recognition: Recognition
    dose: DailyDose
    status: str
    is_draft: bool
    start: datetime | None
    end: datetime | None
    prior_ref: str | None
    encounter_ref: str | None
    categories: tuple[str, ...]
    do_not_perform: bool

    @property
    def product(self) -> Product:
        return self.recognition.product

    @property
    def route(self) -> str:
        return "intrathecal" if self.product.is_intrathecal else self.product.route

    @property
    def route_group(self) -> str:
        """Oral and unknown routes are grouped: a non-injection baclofen is taken by mouth."""
        return "intrathecal" if self.route == "intrathecal" else "oral"

    @property
    def is_stop_marker(self) -> bool:
        return self.status in ("stopped", "cancelled") or self.do_not_perform


def collect_baclofen_orders(data: PatientRecord, knowledge: Knowledge) -> list[BaclofenOrder]:
    """Every baclofen request (entered-in-error excluded), oldest first, drafts marked."""
    medications = MedicationIndex(
        [r for r in [*data.resources, *data.draft_orders]
         if isinstance(r, dict) and r.get("resourceType") == "Medication"]
    )
    found: list[BaclofenOrder] = []
    sources = [(r, False) for r in data.resources] + [(r, True) for r in data.draft_orders]
    for index, (resource, is_draft) in enumerate(sources):
        if not isinstance(resource, dict) or resource.get("resourceType") != "MedicationRequest":
            continue
        status = resource.get("status") if isinstance(resource.get("status"), str) else "unknown"
        if status in NEVER_COUNTS:
            continue
        recognition = recognise_baclofen(resource, medications, knowledge)
        if recognition is None:
            continue
        rid = resource.get("id")
        ref = f"MedicationRequest/{rid}" if isinstance(rid, str) else f"#unidentified-{index}"
        found.append(BaclofenOrder(
            ref=ref,
            resource=resource,
            recognition=recognition,
            dose=daily_dose(resource, recognition.product),
            status=status,
            is_draft=is_draft,
            start=_start(resource),
            end=_end(resource),
            prior_ref=_reference(resource.get("priorPrescription")),
            encounter_ref=_reference(resource.get("encounter")),
            categories=_category_codes(resource),
            do_not_perform=resource.get("doNotPerform") is True,
        ))
    # A draft may share its id with the record it changes; both are kept, drafts marked.
    return sorted(found, key=lambda o: (o.start or _UNDATED, o.ref, o.is_draft))


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _periods(resource: dict) -> list[dict]:
    """The validity period and every dosage bounds period (malformed ones skipped)."""
    periods = [_dict(_dict(resource.get("dispenseRequest")).get("validityPeriod"))]
    dosages = resource.get("dosageInstruction")
    for dosage in dosages if isinstance(dosages, list) else []:
        repeat = _dict(_dict(_dict(dosage).get("timing")).get("repeat"))
        periods.append(_dict(repeat.get("boundsPeriod")))
    return periods


def _start(resource: dict) -> datetime | None:
    candidates = [resource.get("authoredOn"), *(p.get("start") for p in _periods(resource))]
    parsed = [p for p in (parse_fhir_datetime(c) for c in candidates) if p]
    return min(parsed) if parsed else None


def _end(resource: dict) -> datetime | None:
    parsed = [p for p in (parse_fhir_datetime(x.get("end")) for x in _periods(resource)) if p]
    return max(parsed) if parsed else None


def _reference(value: object) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return value["reference"]
    return None


def _category_codes(resource: dict) -> tuple[str, ...]:
    codes: list[str] = []
    categories = resource.get("category")
    for category in categories if isinstance(categories, list) else []:
        codings = _dict(category).get("coding")
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                codes.append(coding["code"])
    return tuple(codes)
