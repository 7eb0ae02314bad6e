"""Patient facts (rules/patient.yaml) and risk factors (rules/risk.yaml) found in a record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cds.facts.measurements import (
    Measured,
    MeasurementReader,
        Unreadable,
    shown_unit,
)
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
from cds.knowledge.model import ByCodeSet, CodeIndex, CodeSet, Finder, Reading

OBSERVATION_OK = ("final", "amended", "corrected", "preliminary", "registered")


class Dated(str):
    """Evidence text that also knows when the resource showing it was dated."""

    at: datetime | None = None

    def __new__(cls, text: str, at: datetime | None) -> Dated:
        made = super().__new__(cls, text)
        made.at = at
        return made


@dataclass
class PatientFacts:
    """Yes/no facts about the patient, with what showed each (for the card)."""

    flags: dict[str, bool]
    evidence: dict[str, str]
    age_years: int | None
    conditions: list[Mapping] = field(default_factory=list)  # active, usable Conditions
    measurements: dict[str, Measured] = field(default_factory=dict)
    # Readings the rules would use whose unit could not be read: named, never dropped.
    unreadable: list[Unreadable] = field(default_factory=list)
    # A serious reaction to baclofen recorded in the look-back window (angioedema,
    # anaphylaxis, a severe skin reaction): what a stop of baclofen is for.
    serious_reaction: str | None = None
    # When the resource that showed a fact was dated (a condition's onset, a procedure).
    found_at: dict[str, datetime] = field(default_factory=dict)


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
        self.measurements = MeasurementReader(knowledge)
        observed = [f for fact in knowledge.patient_facts.values() for f in fact.finders
                    if f.kind == "observation"]
        # One pass sorts a call's Observations for the finders and the measurements alike.
        self.observation_sets = CodeIndex(
            [s for f in observed for s in (f.code_set, f.only_without) if s is not None]
            + self.measurements.code_sets, codes_first=False)
        self.condition_sets = CodeIndex(
            [f.code_set for fact in knowledge.patient_facts.values() for f in fact.finders
             if f.kind == "condition" and f.code_set is not None], codes_first=False)

    def read(self, resources: list[dict], now: datetime) -> PatientFacts:
        by_type: dict[str, list[Mapping]] = {}
        for resource in resources:
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                by_type.setdefault(resource["resourceType"], []).append(resource)
        conditions = [c for c in by_type.get("Condition", []) if condition_is_active(c)]
        patient = next(iter(by_type.get("Patient", [])), None)
        age = age_in_years(patient.get("birthDate"), now) if isinstance(patient, Mapping) else None
        unreadable: list[Unreadable] = []
        observed = ByCodeSet(self.observation_sets, by_type.get("Observation", []))
        grouped = {"Observation": observed,
                   "Condition": ByCodeSet(self.condition_sets, conditions)}
        measured = self.measurements.read(by_type.get("Observation", []), patient, age, now,
                                          unreadable, observed)
        facts = PatientFacts({}, {}, age, conditions, measured, unreadable)
        facts.serious_reaction = self._serious_reaction(by_type.get("AllergyIntolerance", []),
                                                        now)
        recent = now - timedelta(hours=self.knowledge.threshold("recent_sign_hours"))
        for key, fact in self.knowledge.patient_facts.items():
            found = None
            for finder in fact.finders:
                found = self._find(finder, by_type, grouped, facts, patient, now, recent)
                if found:
                    break
            facts.flags[key] = found is not None
            if found:
                facts.evidence[key] = str(found)
                if isinstance(found, Dated) and found.at is not None:
                    facts.found_at[key] = found.at
        return facts

    def _find(self, finder: Finder, by_type: Mapping[str, list[Mapping]],
              grouped: Mapping[str, ByCodeSet], facts: PatientFacts,
              patient: Mapping | None, now: datetime, recent: datetime) -> str | None:
        """`grouped`: the call's Observations and active Conditions by code set."""
        if finder.kind == "patient":
            return _deceased(patient)
        if finder.kind == "measurement":
            return self._measurement(finder, facts.measurements)
        if finder.kind in ("procedure", "device", "medication"):
            return record_finder(finder, by_type, now)
        if finder.kind == "condition":
            for cond in grouped["Condition"].of(finder.code_set):  # type: ignore[arg-type]
                at = condition_time(cond)
                if finder.recent and (at is None or at < recent):
                    continue
                return Dated(f"{condition_label(cond) or 'condition'}" + (
                    f" (since {fmt_date(at)})" if at else ""), at)
            return None
        if finder.kind == "allergy":
            return self._allergy(by_type.get("AllergyIntolerance", []))
        return self._observation(finder, grouped["Observation"], now)

    def _measurement(self, finder: Finder, measured: Mapping[str, Measured]) -> str | None:
        found = measured.get(finder.measurement or "")
        if found is None or not reading_holds(found.value, Reading(
                None, finder.unit, finder.compare, finder.threshold, finder.value)):  # type: ignore[arg-type]
            return None
        return measured_text(found, self.knowledge)

    def _serious_reaction(self, allergies: list[Mapping], now: datetime) -> str | None:
        """The reactions of a baclofen allergy recorded within the look-back window whose
        manifestation is serious (rules/terminology.yaml serious_reaction) or marked severe."""
        since = now - timedelta(days=self.knowledge.threshold("lookback_days"))
        serious = self.knowledge.code_sets["serious_reaction"]
        for allergy in allergies:
            if not condition_is_usable(allergy) or not self.recogniser.is_baclofen_concept(
                    allergy.get("code")):
                continue
            at = (parse_fhir_datetime(allergy.get("onsetDateTime"))
                  or parse_fhir_datetime(allergy.get("recordedDate")))
            if at is None or at < since or at > now + timedelta(minutes=15):
                continue
            found = []
            for reaction in allergy.get("reaction") or []:
                if not isinstance(reaction, Mapping):
                    continue
                for manifestation in reaction.get("manifestation") or []:
                    if serious.matches_concept(manifestation) or reaction.get(
                            "severity") == "severe":
                        found.append(condition_label({"code": manifestation}) or "reaction")
            if found:
                return ", ".join(dict.fromkeys(found))
        return None

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

    def _observation(self, finder: Finder, observed: ByCodeSet, now: datetime
                     ) -> str | None:
        if finder.only_without is not None and observed.of(finder.only_without):
            return None
        matching = [o for o in observed.of(finder.code_set)  # type: ignore[arg-type]
                    if o.get("status") in OBSERVATION_OK and observation_time(o) is not None]
        matching.sort(key=lambda o: observation_time(o))  # type: ignore[arg-type, return-value]
        if finder.latest:
            matching = matching[-1:]
        for obs in reversed(matching):
            at = observation_time(obs)
            if finder.within_days is not None and at < now - timedelta(days=finder.within_days):
                continue
            if finder.answer_in is not None or finder.answer_not_in is not None:
                answer = _answer(obs)
                if answer is None:
                    continue
                name = condition_label({"code": obs.get("code")}) or finder.code_set.about
                if finder.answer_in is not None and _answered(finder.answer_in, answer):
                    return f"{name}: {_answer_text(answer)} ({fmt_date(at)})"
                if finder.answer_not_in is not None and not _answered(finder.answer_not_in,
                                                                       answer):
                    return f"{name}: {_answer_text(answer)} ({fmt_date(at)})"
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
                    shown = shown_unit(finder.unit or "", self.knowledge)
                    return f"{finder.code_set.about.split(',')[0]} {round(value, 2):g} " \
                           f"{shown} on {fmt_date(at)}"  # type: ignore[union-attr, arg-type]
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


def measured_text(found: Measured, knowledge: Knowledge) -> str:
    """'eGFR 24 mL/min/1.73 m² on 2026-11-28', or how an estimate was made."""
    label = knowledge.measurements[found.key].label
    value = f"{round(found.value, 1):g} {shown_unit(found.unit, knowledge)}".strip()
    if found.estimated:
        return f"{label} about {value}, estimated from {found.basis} (CKD-EPI 2021)"
    return f"{label} {value}" + (f" on {fmt_date(found.at)}" if found.at else "")


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


_PROCEDURE_DONE = ("completed", "in-progress")
_PROCEDURE_PLANNED = ("preparation", "in-progress")
# A procedure's notes read for findings: the first few, each cut to a length that holds a
# finding and keeps a huge note from costing more than a normal one (issue 25).
_NOTES = 5
_NOTE_CHARS = 2000


def _answer(obs: Mapping) -> Mapping | str | None:
    """A coded or text answer (valueCodeableConcept, valueString), if any."""
    if isinstance(obs.get("valueCodeableConcept"), Mapping):
        return obs["valueCodeableConcept"]
    if isinstance(obs.get("valueString"), str) and obs["valueString"].strip():
        return obs["valueString"]
    return None


def _answered(code_set: Any, answer: Mapping | str) -> bool:
    if isinstance(answer, str):
        return code_set.matches_text(answer.lower())
    return code_set.matches_concept(answer)


def _answer_text(answer: Mapping | str) -> str:
    if isinstance(answer, str):
        return answer
    return condition_label({"code": answer}) or "coded answer"
_REQUEST_RUNNING = ("active", "on-hold")
_GIVEN = ("completed", "in-progress")


def record_finder(finder: Finder, by_type: Mapping[str, list[Mapping]], now: datetime
                  ) -> str | None:
    """A procedure done, a device in place, or a medicine running or recently given, whose
    code (or, for code sets with words, text) is in the finder's set: the evidence line."""
    code_set = finder.code_set
    if code_set is None:
        return None
    since = None
    if finder.within_days is not None:
        since = now - timedelta(days=finder.within_days)
    elif finder.within_hours is not None:
        since = now - timedelta(hours=finder.within_hours)
    if finder.kind == "procedure":
        for proc in by_type.get("Procedure", []):
            statuses = _PROCEDURE_PLANNED if finder.planned else _PROCEDURE_DONE
            if proc.get("status") not in statuses:
                continue
            if finder.findings:
                if not procedure_found(proc, code_set):
                    continue
            elif not code_set.matches_concept(proc.get("code")):
                continue
            if finder.planned:
                return f"{condition_label(proc) or code_set.about} ({proc.get('status')})"
            at = procedure_time(proc)
            if at is None or at > now + timedelta(minutes=15) or (since and at < since):
                continue
            if finder.unless_later is not None and _done_later(
                    by_type.get("Procedure", []), finder.unless_later, at, now):
                continue
            return Dated(f"{condition_label(proc) or code_set.about} on {fmt_date(at)}", at)
        return None
    if finder.kind == "device":
        for device in by_type.get("Device", []):
            if device.get("status", "active") != "active":
                continue
            names = " ".join(n.get("name", "") for n in device.get("deviceName") or []
                             if isinstance(n, Mapping) and isinstance(n.get("name"), str))
            if code_set.matches_concept(device.get("type")) or code_set.matches_text(
                    names.lower()):
                return condition_label({"code": device.get("type")}) or names or code_set.about
        return None
    for request in by_type.get("MedicationRequest", []):
        if request.get("status") in _REQUEST_RUNNING and code_set.matches_concept(
                request.get("medicationCodeableConcept")):
            at = parse_fhir_datetime(request.get("authoredOn"))
            if at is None or at <= now:
                return _medication_label(request, code_set.about) + " (ordered)"
    for given in by_type.get("MedicationAdministration", []):
        if given.get("status") not in _GIVEN or not code_set.matches_concept(
                given.get("medicationCodeableConcept")):
            continue
        period = given.get("effectivePeriod")
        period = period if isinstance(period, Mapping) else {}
        running = given.get("status") == "in-progress" or (
            period.get("start") and not period.get("end"))
        at = (parse_fhir_datetime(given.get("effectiveDateTime"))
              or parse_fhir_datetime(period.get("end")) or parse_fhir_datetime(period.get("start")))
        if running or (at is not None and at <= now + timedelta(minutes=15)
                       and (since is None or at >= since)):
            when = "running" if running else f"given {fmt_date(at)}"
            return f"{_medication_label(given, code_set.about)} ({when})"
    return None


def _done_later(procedures: list[Mapping], code_set: CodeSet, after: datetime,
                now: datetime) -> bool:
    """A done procedure of the set dated after `after` (a repair after the finding)."""
    for proc in procedures:
        if proc.get("status") in _PROCEDURE_DONE and code_set.matches_concept(proc.get("code")):
            at = procedure_time(proc)
            if at is not None and after < at <= now + timedelta(minutes=15):
                return True
    return False


def procedure_found(proc: Mapping, code_set: CodeSet) -> bool:
    """What a done procedure found: its outcome, complications or notes hold the set."""
    complications = proc.get("complication")
    concepts = [proc.get("outcome"), *(complications if isinstance(complications, list) else [])]
    if any(code_set.matches_concept(c) for c in concepts):
        return True
    return any(code_set.matches_text(text.lower()) for _, text in annotations(proc))


def annotations(resource: Mapping) -> list[tuple[object, str]]:
    """(time as written, text) of a resource's first few notes, each text cut short."""
    notes = resource.get("note")
    return [(n.get("time"), n["text"][:_NOTE_CHARS])
            for n in (notes if isinstance(notes, list) else [])[:_NOTES]
            if isinstance(n, Mapping) and isinstance(n.get("text"), str)]


def procedure_time(proc: Mapping) -> datetime | None:
    period = proc.get("performedPeriod")
    period = period if isinstance(period, Mapping) else {}
    return (parse_fhir_datetime(proc.get("performedDateTime"))
            or parse_fhir_datetime(period.get("end")) or parse_fhir_datetime(period.get("start")))


def _medication_label(resource: Mapping, fallback: str) -> str:
    concept = resource.get("medicationCodeableConcept")
    return condition_label({"code": concept}) or fallback
