"""Signs from Observations and Conditions, as rules/signs.yaml defines them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cds.facts.timeutil import fmt_datetime, parse_fhir_datetime
from cds.facts.units import convert, quantity
from cds.knowledge import Knowledge
from cds.knowledge.model import CodeIndex, Reading, SignDef

USABLE_OBSERVATION_STATUSES = ("final", "amended", "corrected", "preliminary", "registered")
REFUTED = ("refuted", "entered-in-error")
# why: a clock a few minutes ahead in the EHR should not hide a fresh observation.
CLOCK_SKEW = timedelta(minutes=15)
# A reading found in an Observation: (value in the reading's unit, value and unit as
# recorded).
Found = tuple[float, float | None, str | None]
_COMPARE = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@dataclass(frozen=True)
class Sign:
    key: str  # a key of rules/signs.yaml
    label: str
    points_to: str
    at: datetime
    evidence: str  # what, value, when (request text inside is escaped by the card builder)
    source_ref: str  # "Observation/<id>" or "Condition/<id>"
    unless: str | None = None  # a patient fact under which this reading shows nothing
    # A low GCS read as withdrawal's altered mental status (an interruption of a day or more,
    # nothing making an overdose plausible): it does not remove withdrawal treatment.
    from_withdrawal: bool = False

    def severity(self, knowledge: Knowledge, route: str) -> str:
        return knowledge.signs[self.key].severity_for(route)


def observation_time(resource: Mapping) -> datetime | None:
    period = resource.get("effectivePeriod")
    return (parse_fhir_datetime(resource.get("effectiveDateTime"))
            or parse_fhir_datetime(resource.get("effectiveInstant"))
            or (parse_fhir_datetime(period.get("start")) if isinstance(period, Mapping) else None)
            or parse_fhir_datetime(resource.get("issued")))


def condition_time(resource: Mapping) -> datetime | None:
    period = resource.get("onsetPeriod")
    return (parse_fhir_datetime(resource.get("onsetDateTime"))
            or (parse_fhir_datetime(period.get("start")) if isinstance(period, Mapping) else None)
            or parse_fhir_datetime(resource.get("recordedDate")))


def condition_is_usable(resource: Mapping) -> bool:
    """Not refuted or entered in error (verificationStatus)."""
    return not _status_codes(resource.get("verificationStatus")) & set(REFUTED)


def condition_is_active(resource: Mapping) -> bool:
    inactive = {"inactive", "resolved", "remission"}
    return condition_is_usable(resource) and not _status_codes(
        resource.get("clinicalStatus")) & inactive


def _status_codes(concept: Any) -> set[str]:
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return {c.get("code") for c in codings or [] if isinstance(c, Mapping)}


def reading_value(obs: Mapping, reading: Reading, knowledge: Knowledge) -> float | None:
    """The value of the reading's code in `obs` (itself or a component), in its unit."""
    found = _reading(obs, reading, knowledge)
    return found[0] if found else None


def _reading(obs: Mapping, reading: Reading, knowledge: Knowledge
             ) -> Found | None:
    parts: list[Mapping] = []
    if reading.code_set.matches_concept(obs.get("code")):
        parts.append(obs)
    for component in obs.get("component") or []:
        if isinstance(component, Mapping) and reading.code_set.matches_concept(
                component.get("code")):
            parts.append(component)
    for part in parts:
        value, unit = quantity(part)
        converted = convert(value, unit, reading.unit, knowledge, reading.code_set.name) \
            if reading.unit else value
        if converted is not None:
            return converted, value, unit
    return None


def _shown(found: Found, reading: Reading, knowledge: Knowledge) -> str:
    """A reading's value as the card shows it: as the chart has it, then in our unit, as
    people write units (38.9 °C, 176 mmHg). Worded only for a reading that shows a sign
    (most readings are normal)."""
    converted, value, unit = found
    ours = knowledge.unit_display.get(reading.unit or "", reading.unit or "")
    shown = f"{round(converted, 1):g} {ours}".strip()
    if value is not None and unit and reading.unit and unit != reading.unit and \
            knowledge.unit_aliases.get(unit.strip().lower()) != reading.unit:
        theirs = knowledge.unit_display.get(knowledge.unit_aliases.get(unit.strip().lower(), ""),
                                            unit)
        shown = f"{value:g} {theirs} ({shown})"
    return shown


def reading_holds(value: float | None, reading: Reading) -> bool:
    return value is not None and reading.compare is not None and reading.value is not None \
        and _COMPARE[reading.compare](value, reading.value)


class SignFinder:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.signs = list(knowledge.signs.values())
        # Which readings an Observation can hold, found in one lookup of its codes.
        self._index = CodeIndex([r.code_set for s in self.signs for r in s.readings])
        # For each code set position, the (sign, reading) pairs it can hold, in the order
        # the signs are weighed: an Observation is checked against its own readings only.
        by_position: dict[int, list[tuple[int, int]]] = {}
        for sign_index, sign in enumerate(self.signs):
            for reading_index, reading in enumerate(sign.readings):
                position = next(iter(self._index.where([reading.code_set])))
                by_position.setdefault(position, []).append((sign_index, reading_index))
        self._pairs = {position: tuple(pairs) for position, pairs in by_position.items()}
        recorded = [s for s in self.signs if s.recorded_as is not None]
        self._recorded = CodeIndex([s.recorded_as for s in recorded],  # type: ignore[misc]
                                   codes_first=False)
        self._recorded_signs = [(next(iter(self._recorded.where([s.recorded_as]))), s)
                                for s in recorded]  # type: ignore[list-item]

    def _present(self, obs: Mapping) -> set[int]:
        """Positions of the reading code sets in `obs`: its code and its components'."""
        present = set(self._index.positions(obs.get("code")))
        components = obs.get("component")
        for component in components if isinstance(components, list) else ():
            if isinstance(component, dict):
                present |= self._index.positions(component.get("code"))
        return present

    def find(self, resources: list[dict], now: datetime) -> list[Sign]:
        """Every sign on record, oldest first; malformed resources are skipped."""
        found: list[Sign] = []
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            try:
                kind = resource.get("resourceType")
                if kind == "Observation":
                    found += self.observation_signs(resource, now)
                elif kind == "Condition":
                    found += self._condition_signs(resource, now)
            except (AttributeError, TypeError, ValueError, KeyError):
                continue
        return sorted(found, key=lambda s: (s.at, s.key, s.source_ref))

    def observation_signs(self, obs: Mapping, now: datetime, at: datetime | None = None
                          ) -> list[Sign]:
        """The signs one Observation shows (none for a normal reading). `at`: its time,
        when the caller has already read it (observation_time)."""
        if obs.get("status") not in USABLE_OBSERVATION_STATUSES:
            return []
        if at is None:
            at = observation_time(obs)
        if at is None or at > now + CLOCK_SKEW:
            return []
        present = self._present(obs)
        if not present:
            return []
        hits: list[tuple[SignDef, Found, Reading]] = []
        pairs = self._pairs.get(next(iter(present)), ()) if len(present) == 1 else sorted(
            {pair for position in present for pair in self._pairs.get(position, ())})
        shown_by: set[int] = set()  # signs already shown: their first holding reading counts
        for sign_index, reading_index in pairs:
            if sign_index in shown_by:
                continue
            sign = self.signs[sign_index]
            reading = sign.readings[reading_index]
            found = _reading(obs, reading, self.knowledge)
            if found is not None and reading_holds(found[0], reading):
                hits.append((sign, found, reading))
                shown_by.add(sign_index)
        if not hits:
            return []
        superseded = {other for sign, _, _ in hits for other in sign.supersedes}
        when = fmt_datetime(at)
        ref = f"Observation/{obs.get('id', '?')}"
        return [Sign(sign.key, sign.label, sign.points_to, at,
                     f"{_name(obs, reading)} {_shown(found, reading, self.knowledge)} at {when}",
                     ref, reading.unless)
                for sign, found, reading in hits if sign.key not in superseded]

    def _condition_signs(self, cond: Mapping, now: datetime) -> list[Sign]:
        if not condition_is_usable(cond):
            return []
        at = condition_time(cond)
        if at is None or at > now + CLOCK_SKEW:
            return []
        ref = f"Condition/{cond.get('id', '?')}"
        present = self._recorded.positions(cond.get("code"))
        if not present:
            return []
        hits = [s for position, s in self._recorded_signs if position in present]
        superseded = {other for sign in hits for other in sign.supersedes}
        text = condition_label(cond)
        return [Sign(s.key, s.label, s.points_to, at,
                     f"{text or s.label} recorded {fmt_datetime(at)}", ref)
                for s in hits if s.key not in superseded]


def _name(obs: Mapping, reading: Reading) -> str:
    return reading.code_set.about.split(",")[0].split(" (")[0]


def condition_label(cond: Mapping) -> str:
    code = cond.get("code") if isinstance(cond.get("code"), Mapping) else {}
    if isinstance(code.get("text"), str):
        return code["text"]
    for coding in code.get("coding") or []:
        if isinstance(coding, Mapping) and isinstance(coding.get("display"), str):
            return coding["display"]
    return ""
