"""Which raw resources the facts can use: the one place that decides what is modelled.

Checking a resource against its fhir.resources model costs ~0.1-0.4 ms, and an
inpatient has hundreds of vital signs in the look-back window. A reading in the normal
range can never be a sign, so sign Observations are kept only when they show one;
readings patient facts compare (eGFR, creatinine, pregnancy) are kept whatever their
value, except that where only the latest counts (eGFR, creatinine) only the newest usable
one is kept; pump readings are kept by their names. Conditions, allergies,
devices and procedures are kept when a code set of rules/ could match them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property

from cds.facts.patient import OBSERVATION_OK
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
        return tuple(dict.fromkeys([*sets, *(self.knowledge.code_sets[n] for n in names)]))

    @cached_property
    def _latest_only_sets(self) -> frozenset[str]:
        """Code sets every patient fact reads only the latest of (pump readings: all)."""
        finders = [f for fact in self.knowledge.patient_facts.values() for f in fact.finders
                   if f.kind == "observation" and f.code_set is not None]
        names = {f.code_set.name for f in finders}  # type: ignore[union-attr]
        return frozenset(n for n in names if all(
            f.latest for f in finders if f.code_set.name == n))  # type: ignore[union-attr]

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
        kept: list[tuple[int, dict]] = []
        newest: dict[str, tuple[datetime, int, dict]] = {}  # latest-only set -> newest reading
        for index, resource in enumerate(resources):
            try:
                keep = self._keep(resource, now, cutoff)
                if keep and resource.get("resourceType") == "Observation":
                    latest_only = self._latest_only_set(resource)
                    if latest_only is not None:
                        self._hold_if_newest(resource, index, latest_only, newest)
                        continue
            except _UNREADABLE:
                keep = True
            if keep:
                kept.append((index, resource))
        kept += [(index, obs) for _, index, obs in newest.values()]
        return [resource for _, resource in sorted(kept, key=lambda item: item[0])]

    def _latest_only_set(self, obs: Mapping) -> str | None:
        """The code set of a reading only the latest of which counts (eGFR, creatinine),
        when no other fact reads it."""
        matching = [s for s in self._fact_observation_sets if s.matches_concept(obs.get("code"))]
        if len(matching) == 1 and matching[0].name in self._latest_only_sets:
            return matching[0].name
        return None

    @staticmethod
    def _hold_if_newest(obs: dict, index: int, code_set: str,
                        newest: dict[str, tuple[datetime, int, dict]]) -> None:
        # An undated or unusable (entered-in-error) reading never displaces a valid one.
        at = observation_time(obs)
        if at is None or obs.get("status") not in OBSERVATION_OK:
            return
        held = newest.get(code_set)
        if held is None or at > held[0]:
            newest[code_set] = (at, index, obs)

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
