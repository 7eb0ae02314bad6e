"""Which raw resources the facts can use: the one place that decides what is modelled.

Checking a resource against its fhir.resources model costs ~0.1-0.4 ms, and an
inpatient has hundreds of vital signs in the look-back window. A reading in the normal
range can never be a sign, so sign Observations are kept only when they show one;
readings patient facts compare (eGFR, creatinine, pregnancy) are kept whatever their
value (the latest counts); pump readings are kept by their names. Conditions, allergies,
devices and procedures are kept when a code set of rules/ could match them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property

from cds.facts.pump import PumpReader
from cds.facts.recognition import Recogniser
from cds.facts.signs import SignFinder, observation_time
from cds.knowledge import Knowledge
from cds.knowledge.model import CodeSet

ALWAYS = frozenset({"Patient", "Encounter", "Medication"})
# Raw JSON the checks cannot read goes on to the model check, which reports it.
_UNREADABLE = (TypeError, AttributeError, ValueError, KeyError, RecursionError)


class Relevance:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.recogniser = Recogniser(knowledge)
        self.signs = SignFinder(knowledge)
        self.pumps = PumpReader(knowledge)

    @cached_property
    def _sign_observation_sets(self) -> tuple[CodeSet, ...]:
        return tuple(r.code_set for s in self.knowledge.signs.values() for r in s.readings)

    @cached_property
    def _fact_observation_sets(self) -> tuple[CodeSet, ...]:
        sets = [f.code_set for fact in self.knowledge.patient_facts.values()
                for f in fact.finders if f.kind == "observation" and f.code_set is not None]
        names = ("pump_reservoir_volume", "pump_alarm", "pump_battery", "pump_daily_dose")
        return tuple(sets) + tuple(self.knowledge.code_sets[n] for n in names)

    @cached_property
    def _condition_sets(self) -> tuple[CodeSet, ...]:
        k = self.knowledge
        sets = [s.recorded_as for s in k.signs.values() if s.recorded_as is not None]
        sets += [f.code_set for fact in k.patient_facts.values() for f in fact.finders
                 if f.kind == "condition" and f.code_set is not None]
        sets += [r.codes for r in k.risk_factors.values() if r.codes is not None]
        return tuple(sets)

    def could_be_baclofen_request(self, resource: Mapping) -> bool:
        """Cheap: a MedicationRequest or MedicationAdministration that may be baclofen."""
        if isinstance(resource.get("medicationReference"), Mapping):
            return True  # resolved later against Medication resources, contained or not
        return self.recogniser.is_baclofen_concept(resource.get("medicationCodeableConcept"))

    def select(self, resources: list[dict], now: datetime) -> list[dict]:
        """The resources worth a model, in order: a tight loop over every resource."""
        cutoff = now - timedelta(days=self.knowledge.threshold("lookback_days") + 1
                                 + self.knowledge.threshold("recent_sign_hours") / 24)
        selected = []
        for resource in resources:
            try:
                keep = self._keep(resource, now, cutoff)
            except _UNREADABLE:
                keep = True
            if keep:
                selected.append(resource)
        return selected

    def _keep(self, resource: Mapping, now: datetime, cutoff: datetime) -> bool:
        kind = resource.get("resourceType")
        if kind in ALWAYS:
            return True
        if kind in ("MedicationRequest", "MedicationAdministration"):
            return self.could_be_baclofen_request(resource)
        if kind == "Observation":
            return self._observation(resource, now, cutoff)
        if kind == "Condition":
            code = resource.get("code")
            return any(s.matches_concept(code) for s in self._condition_sets)
        if kind == "AllergyIntolerance":
            return self.recogniser.is_baclofen_concept(resource.get("code"))
        if kind in ("Device", "Procedure"):
            return self.pumps.on_record([resource])  # type: ignore[list-item]
        return False

    def _observation(self, obs: Mapping, now: datetime, cutoff: datetime) -> bool:
        code = obs.get("code")
        if any(s.matches_concept(code) for s in self._fact_observation_sets):
            return True
        if not any(s.matches_concept(code) or _component_matches(obs, s)
                   for s in self._sign_observation_sets):
            return False
        at = observation_time(obs)
        if at is not None and at < cutoff:
            return False
        return bool(self.signs.observation_signs(obs, now))


def _component_matches(obs: Mapping, code_set: CodeSet) -> bool:
    components = obs.get("component")
    return isinstance(components, list) and any(
        isinstance(c, Mapping) and code_set.matches_concept(c.get("code")) for c in components)
