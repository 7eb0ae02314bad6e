"""Patient facts (rules/patient.yaml) and risk factors (rules/risk.yaml) found in a record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cds.facts.recognition import Recogniser
from cds.facts.signs import (
    condition_is_active,
    condition_is_usable,
    condition_label,
    condition_time,
    observation_time,
    reading_holds,
    reading_value,
)
from cds.facts.timeutil import age_in_years, fmt_date, parse_fhir_datetime
from cds.knowledge import Knowledge
from cds.knowledge.model import Finder, Reading

OBSERVATION_OK = ("final", "amended", "corrected", "preliminary", "registered")


@dataclass
class PatientFacts:
    """Yes/no facts about the patient, with what showed each (for the card)."""

    flags: dict[str, bool]
    evidence: dict[str, str]
    age_years: int | None
    conditions: list[Mapping] = field(default_factory=list)  # active, usable Conditions


@dataclass(frozen=True)
class RiskFactor:
    key: str
    label: str
    evidence: str
    source: str


class PatientReader:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.recogniser = Recogniser(knowledge)

    def read(self, resources: list[dict], now: datetime) -> PatientFacts:
        by_type: dict[str, list[Mapping]] = {}
        for resource in resources:
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                by_type.setdefault(resource["resourceType"], []).append(resource)
        conditions = [c for c in by_type.get("Condition", []) if condition_is_active(c)]
        patient = next(iter(by_type.get("Patient", [])), None)
        flags: dict[str, bool] = {}
        evidence: dict[str, str] = {}
        recent = now - timedelta(hours=self.knowledge.threshold("recent_sign_hours"))
        for key, fact in self.knowledge.patient_facts.items():
            found = None
            for finder in fact.finders:
                found = self._find(finder, by_type, conditions, patient, now, recent)
                if found:
                    break
            flags[key] = found is not None
            if found:
                evidence[key] = found
        age = age_in_years(patient.get("birthDate"), now) if isinstance(patient, Mapping) else None
        return PatientFacts(flags, evidence, age, conditions)

    def _find(self, finder: Finder, by_type: Mapping[str, list[Mapping]],
              conditions: list[Mapping], patient: Mapping | None, now: datetime,
              recent: datetime) -> str | None:
        if finder.kind == "patient":
            return _deceased(patient)
        if finder.kind == "condition":
            for cond in conditions:
                if finder.code_set.matches_concept(cond.get("code")):  # type: ignore[union-attr]
                    at = condition_time(cond)
                    if finder.recent and (at is None or at < recent):
                        continue
                    return f"{condition_label(cond) or 'condition'}" + (
                        f" (since {fmt_date(at)})" if at else "")
            return None
        if finder.kind == "allergy":
            return self._allergy(by_type.get("AllergyIntolerance", []))
        return self._observation(finder, by_type.get("Observation", []), now)

    def _allergy(self, allergies: list[Mapping]) -> str | None:
        for allergy in allergies:
            if not condition_is_usable(allergy) or "inactive" in _codes(allergy.get(
                    "clinicalStatus")) or "resolved" in _codes(allergy.get("clinicalStatus")):
                continue
            if self.recogniser.is_baclofen_concept(allergy.get("code")):
                reactions = [condition_label({"code": m}) for r in allergy.get("reaction") or []
                             if isinstance(r, Mapping) for m in r.get("manifestation") or []]
                text = ", ".join(r for r in reactions if r)
                return "allergy to baclofen" + (f" ({text})" if text else "")
        return None

    def _observation(self, finder: Finder, observations: list[Mapping], now: datetime
                     ) -> str | None:
        if finder.only_without is not None and any(
                finder.only_without.matches_concept(o.get("code")) for o in observations):
            return None
        matching = [o for o in observations if o.get("status") in OBSERVATION_OK
                    and finder.code_set.matches_concept(o.get("code"))  # type: ignore[union-attr]
                    and observation_time(o) is not None]
        matching.sort(key=lambda o: observation_time(o))  # type: ignore[arg-type, return-value]
        if finder.latest:
            matching = matching[-1:]
        for obs in reversed(matching):
            at = observation_time(obs)
            if finder.within_days is not None and at < now - timedelta(days=finder.within_days):
                continue
            if finder.answer_in is not None:
                if finder.answer_in.matches_concept(obs.get("valueCodeableConcept")):
                    name = condition_label({"code": obs.get("code")})
                    return f"{name}: pregnant ({fmt_date(at)})"
                continue
            if finder.value_after_now:
                when = parse_fhir_datetime(obs.get("valueDateTime"))
                if when is not None and when > now:
                    return f"expected delivery {fmt_date(when)}"
                continue
            if finder.compare is not None:
                reading = Reading(finder.code_set, finder.unit, finder.compare, finder.threshold,
                                  finder.value)  # type: ignore[arg-type]
                value = reading_value(obs, reading, self.knowledge)
                if reading_holds(value, reading):
                    return f"{finder.code_set.about.split(',')[0]} {value:g} {finder.unit} " \
                           f"on {fmt_date(at)}"  # type: ignore[union-attr]
                continue
            return f"{finder.code_set.about.split(',')[0]} on {fmt_date(at)}"  # type: ignore
        return None

    def risk_factors(self, facts: Mapping[str, Any], patient: PatientFacts) -> list[RiskFactor]:
        """Risk factors of rules/risk.yaml for one subject's facts."""
        found: list[RiskFactor] = []
        for key, factor in self.knowledge.risk_factors.items():
            evidence = None
            if factor.when is not None and factor.when.holds(facts):
                evidence = factor.evidence.format_map(_Rounded(facts, self.knowledge))
            elif factor.codes is not None:
                for cond in patient.conditions:
                    if factor.codes.matches_concept(cond.get("code")):
                        evidence = condition_label(cond) or factor.label
                        break
            if evidence is not None:
                found.append(RiskFactor(key, factor.label, evidence,
                                        self.knowledge.source_short(factor.source)))
        replaced = {other for f in found for other in self.knowledge.risk_factors[f.key].replaces}
        return [f for f in found if f.key not in replaced]


def _deceased(patient: Mapping | None) -> str | None:
    if not isinstance(patient, Mapping):
        return None
    if patient.get("deceasedBoolean") is True:
        return "deceased"
    when = parse_fhir_datetime(patient.get("deceasedDateTime"))
    return f"deceased {fmt_date(when)}" if when else None


def _codes(concept: Any) -> set[str]:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return {c.get("code") for c in codings or [] if isinstance(c, Mapping)}


class _Rounded(dict):
    """Facts and thresholds for an evidence template, numbers shown without noise."""

    def __init__(self, facts: Mapping[str, Any], knowledge: Knowledge) -> None:
        super().__init__({**knowledge.threshold_values, **facts})

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, float):
            return f"{round(value):d}" if abs(value - round(value)) < 0.05 or value > 20 \
                else f"{value:.1f}"
        return value
