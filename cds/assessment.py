"""The clinical assessment of one hook call: facts -> rules -> findings -> cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cds.cards.builder import build_card
from cds.facts.record import PatientRecord
from cds.facts.subjects import CallFacts, FactExtractor
from cds.findings import Finding, build_findings
from cds.knowledge import Knowledge
from cds.rules_engine import RulesEngine

if TYPE_CHECKING:
    from cds.handout.link import CardLinks


@dataclass
class Assessment:
    cards: list[dict]  # CDS Hooks 2.0 card JSON, most urgent first
    findings: list[Finding]
    facts: CallFacts


class ClinicalEngine:
    """Built once at start-up (the rule set is compiled then); `assess` is thread-safe."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.extractor = FactExtractor(knowledge)
        self.rules = RulesEngine(knowledge)

    def assess(self, hook: str, context: dict, data: PatientRecord, now: datetime,
               handout: CardLinks | None = None) -> Assessment:
        """Same input, same findings in the same order (card uuids are fresh each call).
        `handout` adds the patient-handout links to the cards that have one."""
        facts = self.extractor.extract(hook, context if isinstance(context, dict) else {},
                                       data, now)
        firings = self.rules.run(facts.rule_facts())
        findings = build_findings(firings, facts, self.knowledge)
        return Assessment([build_card(f, self.knowledge, handout) for f in findings], findings,
                          facts)
