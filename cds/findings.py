"""Findings: which card each subject gets, from the rules that fired.

Every rule of rules.yaml that fired names a card kind (or `no-cards`, which silences the
patient). A subject gets at most one card per card group: the kind with the lowest
priority number among those that fired. A kind that is `not_beside` an indicator is left
out when the same subject gets a card with that indicator. A patient gets one critical
card. Order: most urgent first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds.facts.subjects import CallFacts, Subject
from cds.knowledge import Knowledge
from cds.knowledge.loader import NO_CARDS
from cds.knowledge.model import CardKind
from cds.rules_engine import RuleFiring

_INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class Finding:
    kind: CardKind
    subject: Subject
    rules: list[str]  # rule ids that gave this kind
    patient_ref: str | None
    assessed_at: datetime  # the call's clock: a taper plan starts on this date

    @property
    def facts(self) -> dict:
        return self.subject.facts

    @property
    def route(self) -> str:
        return self.subject.route


def build_findings(firings: list[RuleFiring], facts: CallFacts, knowledge: Knowledge
                   ) -> list[Finding]:
    rules = {r.id: r for r in knowledge.rules}
    subjects = {s.id: s for s in facts.subjects}
    if any(rules[f.rule].then == NO_CARDS for f in firings if f.rule in rules):
        return []
    by_subject: dict[str, dict[str, list[str]]] = {}  # subject -> kind -> rule ids
    for firing in firings:
        rule = rules.get(firing.rule)
        if rule is None or firing.subject_id not in subjects:
            continue
        by_subject.setdefault(firing.subject_id, {}).setdefault(rule.then, []).append(rule.id)
    findings: list[Finding] = []
    for subject_id, kinds in sorted(by_subject.items()):
        chosen: dict[str, CardKind] = {}
        for kind_name in kinds:
            kind = knowledge.cards[kind_name]
            current = chosen.get(kind.group)
            if current is None or kind.priority < current.priority:
                chosen[kind.group] = kind
        shown = {kind.indicator for kind in chosen.values()}
        for kind in chosen.values():
            if kind.not_beside & (shown - {kind.indicator}):
                continue
            findings.append(Finding(kind, subjects[subject_id], sorted(kinds[kind.kind]),
                                    facts.patient_ref, facts.now))
    return sorted(_one_critical(findings), key=lambda f: (
        _INDICATOR_ORDER[f.kind.indicator], f.kind.priority, f.subject.id))


def _one_critical(findings: list[Finding]) -> list[Finding]:
    """Critical cards rest on the patient's signs, which every route shares: one card,
    from the route that explains them (one whose delivery was interrupted, then the
    pump), never two emergencies that disagree."""
    critical = [f for f in findings if f.kind.indicator == "critical"]
    if len(critical) < 2:
        return findings
    keep = min(critical, key=lambda f: (not f.facts.get("interrupted"),
                                        f.subject.route != "intrathecal", f.kind.priority))
    return [f for f in findings if f.kind.indicator != "critical" or f is keep]
