"""Findings: what the rules concluded about one discontinuation (or intrathecal course).

A Finding carries everything a card, or the taper planner, needs: the dose and product,
route, risk, exposure, target dose, the signs, and the draft order to act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cds.facts import INTRATHECAL_COURSE_ID, ClinicalFacts
from cds.facts.discontinuation import Discontinuation
from cds.facts.risk import RiskFactor, RiskProfile
from cds.facts.signs import Sign
from cds.product import Product
from cds.rules_engine import RuleFiring
from rules import withdrawal_rules as R

# Card kinds (the `kind` in each card's extension), most urgent first.
KIND_EMERGENCY = "emergency-evaluation"
KIND_INTRATHECAL_STOP = "intrathecal-stop"
KIND_INTRATHECAL_EARLY_SIGNS = "intrathecal-early-signs"
KIND_SUPERVISED_TAPER = "supervised-taper"
KIND_ORDER = (KIND_EMERGENCY, KIND_INTRATHECAL_STOP, KIND_INTRATHECAL_EARLY_SIGNS,
              KIND_SUPERVISED_TAPER)

RULE_KIND = {
    R.EMERGENCY_AFTER_EVENT: KIND_EMERGENCY,
    R.EMERGENCY_INTRATHECAL_EVENT_HYPOTENSION: KIND_EMERGENCY,
    R.EMERGENCY_INTRATHECAL_COURSE: KIND_EMERGENCY,
    R.SUPERVISED_TAPER: KIND_SUPERVISED_TAPER,
    R.INTRATHECAL_STOP: KIND_INTRATHECAL_STOP,
    R.INTRATHECAL_EARLY_SIGNS: KIND_INTRATHECAL_EARLY_SIGNS,
}


@dataclass
class Finding:
    kind: str
    event: Discontinuation
    risk: RiskProfile
    severe_signs: list[Sign]
    early_signs: list[Sign]
    patient_ref: str | None
    rules: list[str] = field(default_factory=list)
    # The assessment's clock: a taper plan starts on this date (never the wall clock).
    assessed_at: datetime | None = None

    # -- what a taper planner needs --

    @property
    def current_daily_dose(self) -> float | None:
        """mg/day for oral baclofen, mcg/day for intrathecal (see dose_unit)."""
        return self.event.current_daily

    @property
    def dose_unit(self) -> str:
        return self.event.dose_unit

    @property
    def dose_known(self) -> bool:
        return self.event.dose_known

    @property
    def product(self) -> Product:
        return self.event.product

    @property
    def administrations_per_day(self) -> float | None:
        return self.event.administrations_per_day

    @property
    def route(self) -> str:
        return self.event.route

    @property
    def risk_level(self) -> str:
        return self.risk.level

    @property
    def risk_factors(self) -> tuple[RiskFactor, ...]:
        return self.risk.factors

    @property
    def exposure_days(self) -> float | None:
        return self.event.exposure_days

    @property
    def target_daily_dose(self) -> float | None:
        """0 for a stop; the new daily dose for a large cut."""
        return self.event.target_daily

    @property
    def draft_order(self) -> dict | None:
        return self.event.draft_order

    @property
    def draft_order_ref(self) -> str | None:
        """"MedicationRequest/<id>" of the draft order, for a delete action."""
        draft = self.event.draft_order
        if draft and isinstance(draft.get("id"), str):
            return f"{draft.get('resourceType', 'MedicationRequest')}/{draft['id']}"
        return None

    @property
    def subject_id(self) -> str:
        return self.event.event_id


def build_findings(firings: list[RuleFiring], facts: ClinicalFacts) -> list[Finding]:
    """One finding per subject, the most urgent kind that fired; most urgent first."""
    events = {e.event_id: e for e in facts.events}
    if facts.standing_intrathecal is not None:
        events[INTRATHECAL_COURSE_ID] = facts.standing_intrathecal
    rules_by_subject: dict[str, list[str]] = {}
    for firing in firings:
        if firing.rule in RULE_KIND and firing.subject_id in events:
            rules_by_subject.setdefault(firing.subject_id, []).append(firing.rule)
    findings: list[Finding] = []
    for subject_id, rules in sorted(rules_by_subject.items()):
        event = events[subject_id]
        kind = min((RULE_KIND[r] for r in rules), key=KIND_ORDER.index)
        severe, early = [], []
        for sign in facts.signs_for(event):
            is_severe = sign.severity == "severe" or (
                sign.severity == "severe_if_intrathecal" and event.route == "intrathecal")
            (severe if is_severe else early).append(sign)
        findings.append(Finding(kind, event, facts.risks[subject_id], severe, early,
                                facts.patient_ref, sorted(rules), facts.now))
    return sorted(findings, key=lambda f: (KIND_ORDER.index(f.kind), f.subject_id))
