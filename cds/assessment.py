"""The clinical engine: resources -> facts -> durable_rules -> findings -> cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds.cards import build_card
from cds.facts import extract_facts
from cds.facts.record import PatientRecord
from cds.findings import Finding, build_findings
from cds.rules_engine import RulesEngine
from rules import Knowledge


@dataclass
class Assessment:
    cards: list[dict]  # CDS Hooks 2.0 card JSON, most urgent first
    findings: list[Finding]


class ClinicalEngine:
    """Built once at start-up (the rulesets are compiled then); `assess` is thread-safe."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.rules = RulesEngine(knowledge)

    def assess(self, hook: str, context: dict, data: PatientRecord, now: datetime
               ) -> Assessment:
        """Same input, same findings in the same order (card uuids are fresh each call)."""
        facts = extract_facts(hook, context if isinstance(context, dict) else {}, data, now,
                              self.knowledge)
        firings = self.rules.run(facts.rule_facts())
        findings = build_findings(firings, facts)
        return Assessment([build_card(f, self.knowledge) for f in findings], findings)
