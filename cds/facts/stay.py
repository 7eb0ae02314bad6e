"""Is the patient in hospital now, and since when? Read from what the record implies.

The hooks that run during a stay (patient-view, order-select, order-sign) rarely carry the
Encounter. The record still shows a stay: an Encounter in progress, hospital orders of
any medicine (MedicationRequest.category inpatient) still running, doses charted on the
ward. A home regimen that no hospital order continues and no administration shows has
not been given since the stay began: the omission the record implies but never states.

`find_stays` reads every resource of the request (not only the baclofen ones the facts
model), so the pipeline runs it before the relevance filter and hands the result on in
the PatientRecord; it reads dates, categories and encounter references, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds.facts.timeutil import parse_fhir_datetime

# Encounter statuses and classes of a stay in progress (FHIR R4 Encounter.status,
# v3 ActCode: inpatient, acute, non-acute, observation, short stay, emergency).
ONGOING = frozenset({"in-progress", "arrived", "triaged", "onleave"})
STAY_CLASSES = frozenset({"IMP", "ACUTE", "NONAC", "OBSENC", "SS", "EMER"})
_REQUEST_STATUSES = frozenset({"active", "on-hold", "completed", "stopped"})
_RUNNING = frozenset({"active", "on-hold"})
_GIVEN = frozenset({"completed", "in-progress"})
# A charted dose this recent shows the patient is on the ward now.
RECENTLY_GIVEN = timedelta(hours=24)


@dataclass(frozen=True)
class Stay:
    """A hospital stay under way."""

    encounter_ref: str | None
    start: datetime
    emergency: bool = False  # an emergency department visit, not (yet) an admission
    source: str = "encounter"  # encounter | hospital orders
    # Discharge orders (MedicationRequest.category discharge) exist for the stay: they,
    # not the home list, say what goes home.
    discharge_orders: bool = False


def find_stays(resources: Iterable[Mapping], now: datetime, inpatient_categories: Iterable[str]
               ) -> tuple[Stay, ...]:
    """Every stay under way that the record shows, earliest start per encounter. Reads raw,
    unchecked JSON: any shape is skipped, never an exception."""
    inpatient = frozenset(inpatient_categories)
    starts: dict[str | None, tuple[datetime, bool, str]] = {}
    running: set[str | None] = set()  # encounters with a hospital order still running
    charted: set[str | None] = set()  # encounters with a dose charted in the last day
    discharge: set[str | None] = set()  # encounters with discharge orders

    def note(ref: str | None, start: datetime, emergency: bool, source: str) -> None:
        held = starts.get(ref)
        if held is None or start < held[0]:
            starts[ref] = (start, emergency, source)

    for resource in resources:
        if not isinstance(resource, Mapping):
            continue
        kind = resource.get("resourceType")
        if kind == "Encounter":
            stay = _encounter_stay(resource, now)
            if stay is not None:
                note(stay.encounter_ref, stay.start, stay.emergency, "encounter")
                running.add(stay.encounter_ref)
        elif kind == "MedicationRequest":
            status = resource.get("status")
            categories = _categories(resource)
            if "discharge" in categories and status in ("active", "draft", "completed"):
                discharge.add(_reference(resource.get("encounter")))
            if not isinstance(status, str) or status not in _REQUEST_STATUSES \
                    or not inpatient & categories:
                continue
            authored = parse_fhir_datetime(resource.get("authoredOn"))
            if authored is None or authored > now:
                continue
            ref = _reference(resource.get("encounter"))
            note(ref, authored, False, "hospital orders")
            if status in _RUNNING:
                running.add(ref)
        elif kind == "MedicationAdministration" and _charted_recently(resource, now):
            charted.add(_reference(resource.get("context")))
    stays = []
    for ref, (start, emergency, source) in starts.items():
        if ref in running or ref in charted or (ref is not None and None in charted):
            stays.append(Stay(ref, start, emergency, source, ref in discharge))
    return tuple(sorted(stays, key=lambda s: s.start))


def current_stay(stays: tuple[Stay, ...], encounter_ref: str | None) -> Stay | None:
    """The stay the hook is about: the context's encounter when the record shows it, else
    the latest stay under way."""
    if encounter_ref is not None:
        for stay in stays:
            if stay.encounter_ref == encounter_ref:
                return stay
    return stays[-1] if stays else None


def _encounter_stay(encounter: Mapping, now: datetime) -> Stay | None:
    status = encounter.get("status")
    if not isinstance(status, str) or status not in ONGOING:
        return None
    klass = encounter.get("class")
    code = klass.get("code") if isinstance(klass, Mapping) else None
    if not isinstance(code, str) or code not in STAY_CLASSES:
        return None
    period = encounter.get("period")
    start = parse_fhir_datetime(period.get("start")) if isinstance(period, Mapping) else None
    if start is None or start > now:
        return None
    ident = encounter.get("id")
    ref = f"Encounter/{ident}" if isinstance(ident, str) else None
    return Stay(ref, start, emergency=code == "EMER")


def _categories(resource: Mapping) -> frozenset[str]:
    categories = resource.get("category")
    if isinstance(categories, Mapping):
        categories = [categories]
    codes = set()
    for category in categories if isinstance(categories, list) else []:
        codings = category.get("coding") if isinstance(category, Mapping) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                codes.add(coding["code"])
    return frozenset(codes)


def _reference(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return value["reference"]
    return None


def _charted_recently(resource: Mapping, now: datetime) -> bool:
    """A dose given in the last day, or an infusion still running."""
    status = resource.get("status")
    if not isinstance(status, str) or status not in _GIVEN:
        return False
    period = resource.get("effectivePeriod")
    period = period if isinstance(period, Mapping) else {}
    if resource.get("status") == "in-progress" or (period.get("start") and not period.get("end")):
        return True
    at = (parse_fhir_datetime(resource.get("effectiveDateTime"))
          or parse_fhir_datetime(period.get("end")))
    return at is not None and now - RECENTLY_GIVEN <= at <= now + timedelta(minutes=15)
