"""Fact extraction: a request's resources become the facts the rules reason about.

`extract_facts` does all reading of FHIR JSON; the rules (rules/withdrawal_rules.py) only
see the small, flat facts from `ClinicalFacts.rule_facts()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cds.facts.discontinuation import Discontinuation, find_discontinuations
from cds.facts.exposure import exposure_days
from cds.facts.orders import BaclofenOrder, collect_baclofen_orders
from cds.facts.record import PatientRecord
from cds.facts.risk import PatientContext, RiskProfile, assess_risk, patient_context
from cds.facts.signs import Sign, find_signs
from cds.facts.timeutil import aware
from rules import Knowledge

INTRATHECAL_COURSE_ID = "intrathecal-course"


@dataclass
class ClinicalFacts:
    now: datetime
    patient_ref: str | None
    orders: list[BaclofenOrder]
    events: list[Discontinuation]
    risks: dict[str, RiskProfile]  # by event_id, plus INTRATHECAL_COURSE_ID
    signs: list[Sign]
    patient: PatientContext
    intrathecal_order: BaclofenOrder | None  # current intrathecal baclofen, if any
    intrathecal_signs_from: datetime
    # The current intrathecal course shaped like an event (no stop on record).
    standing_intrathecal: Discontinuation | None = None

    def signs_for(self, subject: Discontinuation) -> list[Sign]:
        """Signs observed in the subject's window (from signs_from until now)."""
        return [s for s in self.signs if s.at >= subject.signs_from]

    def rule_facts(self) -> list[dict]:
        """Flat facts for durable_rules: one per event, one for a current pump."""
        facts: list[dict] = []
        for event in self.events:
            facts.append({
                "id": event.event_id, "kind": "event", "type": event.kind, "route": event.route,
                "dose_known": event.dose_known,
                "exposure_known": event.exposure_days is not None,
                "exposure_days": round(event.exposure_days or 0.0, 3),
                **_sign_counts(self.signs_for(event)),
            })
        if self.standing_intrathecal is not None:
            facts.append({
                "id": INTRATHECAL_COURSE_ID, "kind": "intrathecal_course",
                "has_intrathecal_event": any(e.route == "intrathecal" for e in self.events),
                **_sign_counts(self.signs_for(self.standing_intrathecal)),
            })
        return facts


def _sign_counts(signs: list[Sign]) -> dict[str, int]:
    return {
        "severe_signs": sum(s.severity == "severe" for s in signs),
        "intrathecal_severe_signs": sum(s.severity == "severe_if_intrathecal" for s in signs),
        "early_signs": sum(s.severity == "early" for s in signs),
    }


def extract_facts(hook: str, context: dict, data: PatientRecord, now: datetime,
                  knowledge: Knowledge) -> ClinicalFacts:
    now = aware(now)
    orders = collect_baclofen_orders(data, knowledge)
    events = find_discontinuations(hook, context, orders, now, knowledge)
    patient = patient_context(data.resources, knowledge, now)
    intrathecal = [o for o in orders if o.route_group == "intrathecal" and not o.is_draft
                   and o.status in ("active", "on-hold") and (o.end is None or o.end >= now)]
    risks = {e.event_id: assess_risk(e, patient, knowledge) for e in events}
    it_order = intrathecal[-1] if intrathecal else None
    signs_from = now - timedelta(hours=knowledge.threshold("recent_sign_hours"))
    standing = _standing_event(it_order, now, signs_from) if it_order else None
    if standing is not None:
        risks[INTRATHECAL_COURSE_ID] = assess_risk(standing, patient, knowledge)
    # why: signs matter only for a patient on (or recently off) baclofen.
    signs = find_signs(data.resources, knowledge, now) if orders else []
    return ClinicalFacts(now, _patient_ref(context, data), orders, events, risks, signs,
                         patient, it_order, signs_from, standing)


def _standing_event(order: BaclofenOrder, now: datetime, signs_from: datetime
                    ) -> Discontinuation:
    """An intrathecal course with no stop on record, shaped like an event for risk and cards."""
    return Discontinuation(
        event_id=INTRATHECAL_COURSE_ID, kind="intrathecal", route="intrathecal", at=None,
        signs_from=signs_from, current_daily=order.dose.amount, target_daily=None,
        dose_unit=order.dose.unit, product=order.product,
        administrations_per_day=order.dose.administrations_per_day,
        exposure_days=exposure_days([order], now), course=[order], evidence=[order])


def _patient_ref(context: dict, data: PatientRecord) -> str | None:
    pid = context.get("patientId") if isinstance(context, dict) else None
    if isinstance(pid, str):
        return f"Patient/{pid}"
    patient = next((r for r in data.resources if isinstance(r, dict)
                    and r.get("resourceType") == "Patient"), None)
    return f"Patient/{patient['id']}" if patient and isinstance(patient.get("id"), str) else None


__all__ = ["INTRATHECAL_COURSE_ID", "ClinicalFacts", "extract_facts"]
