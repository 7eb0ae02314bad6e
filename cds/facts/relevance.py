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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import NamedTuple

from cds.facts.patient import OBSERVATION_OK, procedure_found
from cds.facts.pump import PumpReader
from cds.facts.recognition import Recogniser
from cds.facts.signs import SignFinder, observation_time
from cds.knowledge import Knowledge
from cds.knowledge.model import MEMO_SIZE, CodeIndex, CodeSet

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
    def _observations(self) -> _ObservationSets:
        k = self.knowledge
        signs = [r.code_set for s in k.signs.values() for r in s.readings]
        finders = [f for fact in k.patient_facts.values() for f in fact.finders
                   if f.kind == "observation" and f.code_set is not None]
        measured = [r.code_set for m in k.measurements.values() for r in m.readings]
        pump = [k.code_sets[n] for n in ("pump_reservoir_volume", "pump_alarm", "pump_battery",
                                         "pump_daily_dose")]
        facts = [f.code_set for f in finders] + measured + pump
        index = CodeIndex([*facts, *signs])
        # Sets every patient fact reads only the latest of (pump readings: all of them);
        # measurements read only their latest reading.
        latest = [f.code_set for f in finders if all(
            other.latest for other in finders if other.code_set is f.code_set)]
        latest += [s for s in measured if not any(f.code_set is s and not f.latest
                                                  for f in finders)]
        weight = [r.code_set for r in k.measurements["body_weight"].readings]
        return _ObservationSets(index, index.where(facts), index.where(signs),
                                index.where(latest), index.where(weight))  # type: ignore[arg-type]

    @cached_property
    def _conditions(self) -> CodeIndex:
        k = self.knowledge
        sets = [s.recorded_as for s in k.signs.values() if s.recorded_as is not None]
        sets += [f.code_set for fact in k.patient_facts.values() for f in fact.finders
                 if f.kind == "condition" and f.code_set is not None]
        sets += [r.codes for r in k.risk_factors.values() if r.codes is not None]
        return CodeIndex(sets)  # type: ignore[arg-type]

    @cached_property
    def _context(self) -> dict[str, CodeIndex]:
        """Code sets patient facts look for in procedures, devices and other medicines
        (dialysis, a feeding tube, sedatives): only those resources are kept."""
        sets: dict[str, list] = {"procedure": [], "device": [], "medication": []}
        for fact in self.knowledge.patient_facts.values():
            for finder in fact.finders:
                if finder.kind in sets and finder.code_set is not None \
                        and not finder.findings:
                    sets[finder.kind].append(finder.code_set)
                if finder.unless_later is not None:  # a repair is kept to be weighed
                    sets["procedure"].append(finder.unless_later)
        return {kind: CodeIndex(found) for kind, found in sets.items()}

    @cached_property
    def _procedure_findings(self) -> list[CodeSet]:
        """Code sets looked for in what a procedure found (its outcome, notes)."""
        return [f.code_set for fact in self.knowledge.patient_facts.values()
                for f in fact.finders
                if f.kind == "procedure" and f.findings and f.code_set is not None]

    def could_be_baclofen_request(self, resource: Mapping) -> bool:
        """Cheap: a MedicationRequest or MedicationAdministration that may be baclofen."""
        if isinstance(resource.get("medicationReference"), Mapping):
            return True  # resolved later against Medication resources, contained or not
        return self.recogniser.is_baclofen_concept(resource.get("medicationCodeableConcept"))

    def select(self, resources: list[dict], now: datetime, weight_needed: bool = True
               ) -> list[dict]:
        """The resources worth a model, in order: a tight loop over every resource.
        `weight_needed`: a baclofen dose is ordered per kg, so the latest body weight counts
        (cds.facts.relevance.dosed_per_kg tells)."""
        cutoff = now - timedelta(days=self.knowledge.threshold("lookback_days") + 1
                                 + self.knowledge.threshold("recent_sign_hours") / 24)
        kept: list[tuple[int, dict]] = []
        newest: dict[int, tuple[datetime, int, dict]] = {}  # latest-only set -> newest reading
        for index, resource in enumerate(resources):
            try:
                if resource.get("resourceType") == "Observation":
                    keep, latest_only = self._observation(resource, now, cutoff)
                    if latest_only is not None and not weight_needed and \
                            latest_only in self._observations.weight:
                        continue
                    if latest_only is not None:
                        _hold_if_newest(resource, index, latest_only, newest)
                        continue
                else:
                    keep = self._keep(resource)
            except _UNREADABLE:
                keep = True
            if keep:
                kept.append((index, resource))
        kept += [(index, obs) for _, index, obs in newest.values()]
        return [resource for _, resource in sorted(kept, key=lambda item: item[0])]

    def _keep(self, resource: Mapping) -> bool:
        kind = resource.get("resourceType")
        if kind in ALWAYS:
            return True
        if kind in ("MedicationRequest", "MedicationAdministration"):
            return self.could_be_baclofen_request(resource) or bool(
                self._context["medication"].positions(resource.get("medicationCodeableConcept")))
        if kind == "Condition":
            return bool(self._conditions.positions(resource.get("code")))
        if kind == "AllergyIntolerance":
            return self.recogniser.is_baclofen_concept(resource.get("code"))
        if kind == "Procedure":
            return self.pumps.on_record([resource]) or bool(  # type: ignore[list-item]
                self._context["procedure"].positions(resource.get("code"))) or any(
                procedure_found(resource, s) for s in self._procedure_findings)
        if kind == "Device":
            return self.pumps.on_record([resource]) or bool(  # type: ignore[list-item]
                self._context["device"].positions(resource.get("type")))
        return False

    def _observation(self, obs: Mapping, now: datetime, cutoff: datetime
                     ) -> tuple[bool, int | None]:
        """(keep it, the latest-only code set it belongs to: eGFR, creatinine, when no
        other fact reads it)."""
        sets = self._observations
        kind = sets.classify(sets.index.positions(obs.get("code")))
        if kind.fact:
            return True, kind.latest_only
        if not kind.sign and not self._component_is_a_sign_reading(obs):
            return False, None
        at = observation_time(obs)
        if at is None or at < cutoff:
            return False, None  # undated: observation_signs would not date it either
        return bool(self.signs.observation_signs(obs, now, at)), None

    def _component_is_a_sign_reading(self, obs: Mapping) -> bool:
        components = obs.get("component")
        sets = self._observations
        return isinstance(components, list) and any(
            isinstance(c, Mapping) and sets.index.positions(c.get("code")) & sets.signs
            for c in components)


@dataclass(frozen=True)
class _ObservationSets:
    index: CodeIndex
    facts: frozenset[int]  # positions of the sets patient facts and the pump read
    signs: frozenset[int]  # positions of sign readings
    latest_only: frozenset[int]
    weight: frozenset[int]  # body weight: read only for a dose ordered per kg
    # A record repeats a handful of codes hundreds of times; each answer is worked out once.
    _classified: dict[frozenset[int], _CodeKind] = field(default_factory=dict)

    def classify(self, found: frozenset[int] | set[int]) -> _CodeKind:
        """What a reading is, from the positions of the sets its code matched."""
        key = found if isinstance(found, frozenset) else frozenset(found)
        known = self._classified.get(key)
        if known is None:
            facts = key & self.facts
            only = next(iter(facts)) if len(facts) == 1 and facts <= self.latest_only else None
            known = _CodeKind(bool(facts), only, bool(key & self.signs))
            if len(self._classified) < MEMO_SIZE:  # why: bounded; combinations are few
                self._classified[key] = known
        return known


class _CodeKind(NamedTuple):
    fact: bool  # a patient fact or the pump reads it: keep it whatever its value
    latest_only: int | None  # the one latest-only set it belongs to (eGFR, creatinine)
    sign: bool  # a sign reading: keep it when recent and showing a sign


def dosed_per_kg(requests: list[dict]) -> bool:
    """Does any of these (baclofen) MedicationRequests give its dose per kg of body weight,
    in a dose quantity's unit or its sig? Cheap: units and texts only."""
    for request in requests:
        dosages = request.get("dosageInstruction") if isinstance(request, dict) else None
        for dosage in dosages if isinstance(dosages, list) else []:
            if not isinstance(dosage, dict):
                continue
            text = dosage.get("text")
            if isinstance(text, str) and ("/kg" in text.lower() or "per kg" in text.lower()):
                return True
            for rate in dosage.get("doseAndRate") or []:
                quantity = rate.get("doseQuantity") if isinstance(rate, dict) else None
                if isinstance(quantity, dict) and any(
                        isinstance(quantity.get(k), str) and "/kg" in quantity[k].lower()
                        for k in ("code", "unit")):
                    return True
    return False


def _hold_if_newest(obs: dict, index: int, code_set: int,
                    newest: dict[int, tuple[datetime, int, dict]]) -> None:
    # An undated or unusable (entered-in-error) reading never displaces a valid one.
    at = observation_time(obs)
    if at is None or obs.get("status") not in OBSERVATION_OK:
        return
    held = newest.get(code_set)
    if held is None or at > held[0]:
        newest[code_set] = (at, index, obs)
