"""Baclofen orders and administrations found in a request: recognised, dosed and dated.

Each order keeps what the timeline needs to know when it ran: its start, the end its
dosage plans (boundsPeriod, boundsDuration), the prescription's validity (which is an
administrative end, never by itself an interruption), and meta.lastUpdated, the best
estimate of when a status changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cds.facts.dose import DailyDose, DoseReader, duration_days
from cds.facts.recognition import MedicationIndex, Recogniser, Recognition
from cds.facts.record import PatientRecord
from cds.facts.timeutil import days_after, parse_fhir_datetime, parse_period_end
from cds.facts.units import number
from cds.knowledge import Knowledge
from cds.knowledge.model import concept_text
from cds.product import Product

RUNNING = ("active", "on-hold")
ENDED = ("stopped", "completed")
NEVER_COUNTS = ("entered-in-error",)
_UNDATED = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)  # identity: two orders may carry equal JSON
class Order:
    """One baclofen MedicationRequest with what the rules need to know about it."""

    ref: str  # "MedicationRequest/<id>"
    resource: dict
    recognition: Recognition
    dose: DailyDose
    status: str
    is_draft: bool
    start: datetime | None
    planned_end: datetime | None  # the last day the dosage plans doses for
    validity_end: datetime | None
    last_updated: datetime | None
    prior_ref: str | None
    encounter_ref: str | None
    categories: tuple[str, ...]
    do_not_perform: bool
    stop_reason: str  # a meaning of terminology.yaml stop_reasons, "other" or "none"
    stop_reason_text: str
    # What dispenseRequest allows in all: quantity x (1 + repeats), in mg (None: unknown).
    supplied_mg: float | None = None

    @property
    def product(self) -> Product:
        return self.recognition.product

    @property
    def route(self) -> str:
        return self.recognition.product.route

    @property
    def medication_of_suggestion(self) -> str | None:
        """"taper" or "keep": a draft that carries only the medication of this service's
        suggestion, read as that suggestion (cds.suggested_orders)."""
        return self.recognition.medication_of_suggestion

    @property
    def is_stop_marker(self) -> bool:
        """A draft (or record) that stops what it names."""
        return self.status in ("stopped", "cancelled", "completed") or self.do_not_perform


@dataclass(frozen=True)
class Administration:
    """One baclofen dose given (or a pump refill), from a MedicationAdministration."""

    at: datetime
    route: str
    amount: float | None  # mg (oral) or mcg (intrathecal), when known
    volume_ml: float | None
    concentration_mg_per_ml: float | None
    request_ref: str | None


class OrderReader:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.recogniser = Recogniser(knowledge)
        self.doses = DoseReader(knowledge)
        self.inpatient = set(knowledge.order_categories["inpatient"])

    def orders(self, record: PatientRecord, pump_on_record: bool,
               weight_kg: float | None = None) -> list[Order]:
        """Every baclofen request (entered-in-error excluded), oldest first, drafts marked.
        `weight_kg`: the latest body weight, for doses ordered per kg."""
        medications = MedicationIndex([r for r in [*record.resources, *record.draft_orders]
                                       if isinstance(r, dict)
                                       and r.get("resourceType") == "Medication"])
        found: list[Order] = []
        sources = [(r, False) for r in record.resources] + [(r, True)
                                                            for r in record.draft_orders]
        for index, (resource, is_draft) in enumerate(sources):
            if not isinstance(resource, dict) or resource.get("resourceType") != \
                    "MedicationRequest":
                continue
            status = resource.get("status") if isinstance(resource.get("status"), str) \
                else "unknown"
            if status in NEVER_COUNTS:
                continue
            recognition = self.recogniser.recognise(resource, medications, pump_on_record)
            if recognition is None:
                continue
            rid = resource.get("id")
            ref = f"MedicationRequest/{rid}" if isinstance(rid, str) else f"#unidentified-{index}"
            start = _start(resource)
            reason, reason_text = self._stop_reason(resource)
            found.append(Order(
                ref=ref, resource=resource, recognition=recognition,
                dose=self.doses.daily_dose(resource, recognition.product, weight_kg),
                status=status, is_draft=is_draft, start=start,
                planned_end=_planned_end(resource, start),
                validity_end=_validity_end(resource),
                last_updated=parse_fhir_datetime(_dict(resource.get("meta")).get("lastUpdated")),
                prior_ref=_reference(resource.get("priorPrescription")),
                encounter_ref=_reference(resource.get("encounter")),
                categories=_category_codes(resource),
                do_not_perform=resource.get("doNotPerform") is True,
                stop_reason=reason, stop_reason_text=reason_text,
                supplied_mg=self._supplied_mg(resource, recognition.product),
            ))
        return sorted(found, key=lambda o: (o.start or _UNDATED, o.ref, o.is_draft))

    def _supplied_mg(self, resource: Mapping, product: Product) -> float | None:
        dispense = _dict(resource.get("dispenseRequest"))
        quantity = dispense.get("quantity")
        if not isinstance(quantity, dict):
            return None
        per_fill = self.doses.quantity_in_mg(quantity, product)
        repeats = dispense.get("numberOfRepeatsAllowed", 0)
        if per_fill is None or not isinstance(repeats, int) or repeats < 0:
            return None
        return per_fill * (1 + repeats)

    def administrations(self, record: PatientRecord, orders: list[Order],
                        pump_on_record: bool) -> list[Administration]:
        medications = MedicationIndex([r for r in record.resources if isinstance(r, dict)
                                       and r.get("resourceType") == "Medication"])
        by_ref = {o.ref: o for o in orders}
        given: list[Administration] = []
        for resource in record.resources:
            if not isinstance(resource, dict) or \
                    resource.get("resourceType") != "MedicationAdministration":
                continue
            if resource.get("status") not in ("completed", "in-progress"):
                continue
            at = parse_fhir_datetime(resource.get("effectiveDateTime")) or parse_fhir_datetime(
                _dict(resource.get("effectivePeriod")).get("start"))
            if at is None:
                continue
            request_ref = _reference(resource.get("request"))
            order = by_ref.get(request_ref or "")
            recognition = (order.recognition if order is not None else
                           self.recogniser.recognise(resource, medications, pump_on_record))
            if recognition is None:
                continue
            dosage = _dict(resource.get("dosage"))
            dose = _dict(dosage.get("dose"))
            unit = dose.get("code") or dose.get("unit") or ""
            amount = self.doses.quantity_in_mg(dose, recognition.product) if dose else None
            volume = number(dose.get("value")) if isinstance(unit, str) and \
                unit.lower() in ("ml", "milliliter") else None
            if amount is not None and recognition.product.is_intrathecal:
                amount *= 1000
            given.append(Administration(at, recognition.product.route, amount, volume,
                                        recognition.product.concentration_mg_per_ml,
                                        request_ref))
        return sorted(given, key=lambda a: a.at)

    def _stop_reason(self, resource: Mapping) -> tuple[str, str]:
        """(meaning, the reason as the record words it: its text, else its first display).
        The words are matched in text and displays together; the card shows one of them."""
        reason = resource.get("statusReason")
        if not isinstance(reason, Mapping):
            return "none", ""
        words_in = concept_text(reason)
        text = _first_wording(reason)
        for coding in reason.get("coding") or []:
            if isinstance(coding, Mapping) and coding.get("system") == \
                    self.knowledge.stop_reason_system:
                meaning = self.knowledge.stop_reason_codes.get(coding.get("code"))
                if meaning:
                    return meaning, text
        for meaning, words in self.knowledge.stop_reason_words.items():
            if any(word in words_in for word in words):
                return meaning, text
        if self.knowledge.code_sets["serious_reaction"].matches_concept(reason):
            return "serious-reaction", text
        return ("other", text) if text else ("none", "")

    def is_inpatient(self, order: Order, encounter_ref: str | None) -> bool:
        return bool(set(order.categories) & self.inpatient) or (
            encounter_ref is not None and order.encounter_ref == encounter_ref
            and not order.categories)


def _first_wording(concept: Mapping) -> str:
    """A CodeableConcept as one phrase: its text, else its first coding's display."""
    if isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    for coding in concept.get("coding") or []:
        if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
            return coding["display"]
    return ""


def _dict(value: object) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _repeats(resource: Mapping) -> list[Mapping]:
    dosages = resource.get("dosageInstruction")
    return [_dict(_dict(_dict(d).get("timing")).get("repeat"))
            for d in (dosages if isinstance(dosages, list) else [])]


def _start(resource: Mapping) -> datetime | None:
    candidates = [resource.get("authoredOn"),
                  *(_dict(r.get("boundsPeriod")).get("start") for r in _repeats(resource))]
    parsed = [p for p in (parse_fhir_datetime(c) for c in candidates) if p]
    if not parsed:
        validity = _dict(_dict(resource.get("dispenseRequest")).get("validityPeriod"))
        parsed = [p for p in [parse_fhir_datetime(validity.get("start"))] if p]
    return min(parsed) if parsed else None


def step_bounds(resource: Mapping, start: datetime | None
                ) -> list[tuple[datetime | None, datetime | None]]:
    """(start, end) of each sequenced dosage step, in sequence order, or [] when a step has
    no dates. A step's boundsPeriod gives its own dates; a boundsDuration runs from the end
    of the step before (the first from the order's start): "20 mg twice daily for 2 days,
    then 10 mg twice daily for 2 days" is four days, not two (Dosage.sequence is the order
    the instructions apply in)."""
    by_sequence: dict[int, Mapping] = {}
    for dosage in resource.get("dosageInstruction") or []:
        if not isinstance(dosage, Mapping) or not isinstance(dosage.get("sequence"), int) \
                or isinstance(dosage.get("sequence"), bool):
            return []
        by_sequence.setdefault(dosage["sequence"], _dict(_dict(dosage.get("timing")).get(
            "repeat")))
    bounds: list[tuple[datetime | None, datetime | None]] = []
    cursor = start
    for key in sorted(by_sequence):
        repeat = by_sequence[key]
        period = repeat.get("boundsPeriod")
        if isinstance(period, Mapping):
            begin = parse_fhir_datetime(period.get("start"))
            end = parse_period_end(period.get("end"))
        elif isinstance(repeat.get("boundsDuration"), Mapping) and cursor is not None:
            days = duration_days(repeat["boundsDuration"])
            begin, end = cursor, days_after(cursor, days) if days else None
            if end is None:
                return []
        else:
            return []
        bounds.append((begin, end))
        cursor = end or begin
    return bounds


def _planned_end(resource: Mapping, start: datetime | None) -> datetime | None:
    """When the dosage stops planning doses: boundsPeriod.end, or start + boundsDuration
    (sequenced steps one after another)."""
    sequenced = step_bounds(resource, start)
    if len(sequenced) > 1:
        ends = [end for _, end in sequenced]
        return sequenced[-1][1] if all(ends) and (start is None or sequenced[-1][1] > start) \
            else None
    ends: list[datetime] = []
    for repeat in _repeats(resource):
        end = parse_period_end(_dict(repeat.get("boundsPeriod")).get("end"))
        if end is not None and start is not None and end <= start:
            # An end before the order began is no end anyone meant: a date being typed
            # ("0002-11-27" on the way to "2026-11-27") or a slip. The order runs on.
            end = None
        if end is not None:
            ends.append(end)
            continue
        bounds = repeat.get("boundsDuration")
        if isinstance(bounds, Mapping) and start is not None:
            days = duration_days(bounds)
            by_duration = days_after(start, days) if days else None
            if by_duration is not None:
                ends.append(by_duration)
    if not ends:
        return None
    # All sequenced steps must have ended for the order to end.
    return max(ends) if len(ends) == len(_repeats(resource)) else None


def _validity_end(resource: Mapping) -> datetime | None:
    validity = _dict(_dict(resource.get("dispenseRequest")).get("validityPeriod"))
    return parse_period_end(validity.get("end"))


def _reference(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return value["reference"]
    return None


def _category_codes(resource: Mapping) -> tuple[str, ...]:
    codes: list[str] = []
    categories = resource.get("category")
    if isinstance(categories, Mapping):  # some clients send one object, not a list
        categories = [categories]
    for category in categories if isinstance(categories, list) else []:
        codings = _dict(category).get("coding")
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                codes.append(coding["code"])
    return tuple(codes)
