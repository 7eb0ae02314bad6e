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
from cds.facts.risk import PatientContext, RiskProfile, assess_risk, patient_context
from cds.facts.signs import Sign, find_signs
from cds.facts.timeutil import aware, epoch_seconds
from cds.model import ClinicalData
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

    def sign_id(self, index: int) -> str:
        return f"sign-{index}"

    def rule_facts(self) -> list[dict]:
        """Flat facts for durable_rules (ids are unique within one session)."""
        facts: list[dict] = []
        for i, sign in enumerate(self.signs):
            facts.append({"id": self.sign_id(i), "kind": "sign", "name": sign.key,
                          "severity": sign.severity, "at": epoch_seconds(sign.at)})
        for event in self.events:
            facts.append({
                "id": event.event_id, "kind": "event", "type": event.kind, "route": event.route,
                "dose_known": event.dose_known,
                "exposure_known": event.exposure_days is not None,
                "exposure_days": round(event.exposure_days or 0.0, 3),
                "signs_from": epoch_seconds(event.signs_from),
            })
        if self.intrathecal_order is not None:
            facts.append({"id": INTRATHECAL_COURSE_ID, "kind": "intrathecal_course",
                          "signs_from": epoch_seconds(self.intrathecal_signs_from)})
        return facts


def extract_facts(hook: str, context: dict, data: ClinicalData, now: datetime,
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
    if it_order is not None:
        risks[INTRATHECAL_COURSE_ID] = assess_risk(_standing_event(it_order, now, signs_from),
                                                   patient, knowledge)
    signs = find_signs(data.resources, knowledge, now) if orders else []
    return ClinicalFacts(now, _patient_ref(context, data), orders, events, risks, signs,
                         patient, it_order, signs_from)


def _standing_event(order: BaclofenOrder, now: datetime, signs_from: datetime
                    ) -> Discontinuation:
    """An intrathecal course with no stop on record, shaped like an event for risk and cards."""
    return Discontinuation(
        event_id=INTRATHECAL_COURSE_ID, kind="stop", route="intrathecal", at=None,
        signs_from=signs_from, current_daily=order.dose.amount, target_daily=None,
        dose_unit=order.dose.unit, product=order.product,
        administrations_per_day=order.dose.administrations_per_day,
        exposure_days=exposure_days([order], now), course=[order], evidence=[order])


def _patient_ref(context: dict, data: ClinicalData) -> str | None:
    pid = context.get("patientId") if isinstance(context, dict) else None
    if isinstance(pid, str):
        return f"Patient/{pid}"
    patient = next((r for r in data.resources if isinstance(r, dict)
                    and r.get("resourceType") == "Patient"), None)
    return f"Patient/{patient['id']}" if patient and isinstance(patient.get("id"), str) else None


__all__ = ["ClinicalFacts", "extract_facts"]
