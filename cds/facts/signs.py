"""Withdrawal signs from Observations (with UCUM unit conversion) and Conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cds.facts.timeutil import fmt_datetime, parse_fhir_datetime
from rules import Knowledge

USABLE_OBSERVATION_STATUSES = ("final", "amended", "corrected", "preliminary", "registered")
REFUTED = ("refuted", "entered-in-error")
# why: a clock a few minutes ahead in the EHR should not hide a fresh observation.
CLOCK_SKEW = timedelta(minutes=15)

# Condition sign sets that report under another sign's name.
CONDITION_SIGN_ALIASES = {"rhabdomyolysis": "marked_ck_rise"}


@dataclass(frozen=True)
class Sign:
    key: str  # a key of rules/signs.yaml
    label: str
    severity: str  # "severe" | "early" | "severe_if_intrathecal"
    at: datetime
    evidence: str  # human text: what, value, when
    source_ref: str  # "Observation/<id>" or "Condition/<id>"


def to_celsius(value: Any, unit: Any) -> float | None:
    """Temperature in Cel, [degF] or K (UCUM codes, or their common unit strings) -> Cel."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not isinstance(unit, str):
        return None
    u = unit.strip()
    if u in ("Cel", "°C", "C", "degC"):
        return float(value)
    if u in ("[degF]", "°F", "F", "degF"):
        return (value - 32) * 5 / 9
    if u == "K":
        return value - 273.15
    return None


def find_signs(resources: list[dict], knowledge: Knowledge, now: datetime) -> list[Sign]:
    """Every withdrawal sign on record, oldest first; malformed resources are skipped."""
    found: list[Sign] = []
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        try:
            if resource.get("resourceType") == "Observation":
                found += observation_signs(resource, knowledge, now)
            elif resource.get("resourceType") == "Condition":
                found += _condition_signs(resource, knowledge, now)
        except (AttributeError, TypeError, ValueError):
            continue
    return sorted(found, key=lambda s: (s.at, s.key, s.source_ref))


def _sign(knowledge: Knowledge, key: str, at: datetime, evidence: str, ref: str) -> Sign:
    meta = knowledge.signs[key]
    return Sign(key, meta["label"], meta["severity"], at, evidence, ref)


def observation_time(resource: dict) -> datetime | None:
    period = resource.get("effectivePeriod")
    return (parse_fhir_datetime(resource.get("effectiveDateTime"))
            or parse_fhir_datetime(resource.get("effectiveInstant"))
            or (parse_fhir_datetime(period.get("start")) if isinstance(period, dict) else None)
            or parse_fhir_datetime(resource.get("issued")))


def _quantity(container: dict) -> tuple[float | None, str]:
    q = container.get("valueQuantity")
    if not isinstance(q, dict):
        return None, ""
    value = q.get("value")
    unit = q.get("code") if q.get("code") else q.get("unit")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None, ""
    return float(value), unit if isinstance(unit, str) else ""


def observation_signs(obs: dict, knowledge: Knowledge, now: datetime) -> list[Sign]:
    """The withdrawal signs one Observation shows (none for a normal reading)."""
    if obs.get("status") not in USABLE_OBSERVATION_STATUSES:
        return []
    at = observation_time(obs)
    if at is None or at > now + CLOCK_SKEW:
        return []
    ref = f"Observation/{obs.get('id', '?')}"
    when = fmt_datetime(at)
    t = knowledge.thresholds
    sets = knowledge.observations
    code = obs.get("code")
    value, unit = _quantity(obs)
    signs: list[Sign] = []
    if sets["body_temperature"].matches_concept(code):
        celsius = to_celsius(value, unit)
        if celsius is not None and celsius >= t["fever_celsius"]:
            shown = f"{value:g} {unit}" + ("" if unit == "Cel" else f" ({celsius:.1f} Cel)")
            signs.append(_sign(knowledge, "fever", at, f"Temperature {shown} at {when}", ref))
    elif sets["heart_rate"].matches_concept(code):
        if value is not None and value > t["tachycardia_bpm"]:
            signs.append(_sign(knowledge, "tachycardia", at,
                               f"Heart rate {value:g}/min at {when}", ref))
    elif sets["systolic_bp"].matches_concept(code):
        signs += _hypotension(value, at, when, ref, knowledge)
    elif sets["bp_panel"].matches_concept(code):
        for component in obs.get("component") or []:
            if isinstance(component, dict) and sets["systolic_bp"].matches_concept(
                    component.get("code")):
                signs += _hypotension(_quantity(component)[0], at, when, ref, knowledge)
    elif sets["gcs_total"].matches_concept(code):
        if value is not None and value < t["gcs_normal"]:
            signs.append(_sign(knowledge, "altered_mental_status", at,
                               f"Glasgow coma score {value:g} at {when}", ref))
    elif sets["creatine_kinase"].matches_concept(code) and value is not None \
            and value >= t["ck_marked_u_per_l"]:
        signs.append(_sign(knowledge, "marked_ck_rise", at,
                           f"Creatine kinase {value:g} {unit or 'U/L'} at {when}", ref))
    return signs


def _hypotension(systolic: float | None, at: datetime, when: str, ref: str,
                 knowledge: Knowledge) -> list[Sign]:
    if systolic is None or systolic >= knowledge.thresholds["hypotension_systolic_mmhg"]:
        return []
    return [_sign(knowledge, "hypotension", at, f"Systolic pressure {systolic:g} mmHg at {when}",
                  ref)]


def condition_time(resource: dict) -> datetime | None:
    period = resource.get("onsetPeriod")
    return (parse_fhir_datetime(resource.get("onsetDateTime"))
            or (parse_fhir_datetime(period.get("start")) if isinstance(period, dict) else None)
            or parse_fhir_datetime(resource.get("recordedDate")))


def condition_is_usable(resource: dict) -> bool:
    """Not refuted or entered in error (verificationStatus)."""
    verification = resource.get("verificationStatus")
    codings = verification.get("coding") if isinstance(verification, dict) else None
    codes = {c.get("code") for c in codings or [] if isinstance(c, dict)}
    return not codes & set(REFUTED)


def _condition_signs(cond: dict, knowledge: Knowledge, now: datetime) -> list[Sign]:
    if not condition_is_usable(cond):
        return []
    at = condition_time(cond)
    if at is None or at > now + CLOCK_SKEW:
        return []
    ref = f"Condition/{cond.get('id', '?')}"
    signs = []
    for name, codes in knowledge.sign_conditions.items():
        if codes.matches_concept(cond.get("code")):
            key = CONDITION_SIGN_ALIASES.get(name, name)
            text = _condition_text(cond) or knowledge.signs[key]["label"]
            signs.append(_sign(knowledge, key, at, f"{text} recorded {fmt_datetime(at)}", ref))
    return signs


def _condition_text(cond: dict) -> str:
    code = cond.get("code") or {}
    if isinstance(code.get("text"), str):
        return code["text"]
    for coding in code.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            return coding["display"]
    return ""
