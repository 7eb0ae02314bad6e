"""Withdrawal risk factors for one discontinuation, and renal impairment as a confounder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cds.facts.discontinuation import Discontinuation
from cds.facts.signs import condition_is_usable, condition_time, observation_time
from cds.facts.timeutil import age_in_years, fmt_date
from rules import Knowledge

RiskLevel = Literal["standard", "high"]
INACTIVE_CLINICAL = ("inactive", "resolved", "remission")


@dataclass(frozen=True)
class RiskFactor:
    key: str
    label: str
    evidence: str
    source: str


@dataclass(frozen=True)
class RiskProfile:
    level: RiskLevel
    factors: tuple[RiskFactor, ...]
    # Renal impairment: baclofen toxicity can mimic withdrawal; the card must name it.
    toxicity_confounders: tuple[RiskFactor, ...]


@dataclass(frozen=True)
class PatientContext:
    """Patient-level risk facts that do not depend on any one discontinuation."""

    condition_factors: tuple[RiskFactor, ...]
    age_factor: RiskFactor | None
    renal: tuple[RiskFactor, ...]


def patient_context(resources: list[dict], knowledge: Knowledge, now: datetime
                    ) -> PatientContext:
    conditions = [r for r in resources if isinstance(r, dict)
                  and r.get("resourceType") == "Condition" and _active_condition(r)]
    factors: list[RiskFactor] = []
    for key, risk in knowledge.risk_conditions.items():
        hit = next((c for c in conditions if risk.codes.matches_concept(c.get("code"))), None)
        if hit is not None:
            factors.append(RiskFactor(key, risk.label, _describe(hit), risk.source))
    if any(f.key == "spinal_cord_injury_t6_or_above" for f in factors):
        factors = [f for f in factors if f.key != "spinal_cord_injury"]
    renal = [RiskFactor("renal_impairment", "renal impairment",
                        _describe(c), "JAMA 2019;322:1987")
             for c in conditions if knowledge.renal_impairment.matches_concept(c.get("code"))][:1]
    egfr = _latest_egfr(resources, knowledge)
    if egfr is not None and egfr[0] < knowledge.threshold("egfr_low_ml_min"):
        renal.append(RiskFactor("low_egfr", "low eGFR",
                                f"eGFR {egfr[0]:g} mL/min/1.73m2 on {fmt_date(egfr[1])}",
                                "JAMA 2019;322:1987"))
    patient = next((r for r in resources if isinstance(r, dict)
                    and r.get("resourceType") == "Patient"), None)
    age = age_in_years(patient.get("birthDate"), now) if patient else None
    age_factor = None
    if age is not None and age >= knowledge.threshold("elderly_age_years"):
        age_factor = RiskFactor("age", f"age {int(knowledge.threshold('elderly_age_years'))} or "
                                "over", f"age {age}", "local policy")
    return PatientContext(tuple(factors), age_factor, tuple(renal))


def assess_risk(event: Discontinuation, patient: PatientContext, knowledge: Knowledge
                ) -> RiskProfile:
    factors: list[RiskFactor] = []
    if event.route == "intrathecal":
        factors.append(RiskFactor("intrathecal", "intrathecal baclofen",
                                  "intrathecal route", "Gablofen boxed warning"))
    dose = event.current_daily
    if event.route == "oral" and dose is not None:
        if dose > knowledge.threshold("label_max_mg_per_day"):
            factors.append(RiskFactor(
                "above_label_max", "dose above the labelled maximum",
                f"{dose:g} mg/day > {knowledge.threshold('label_max_mg_per_day'):g} mg/day",
                knowledge.threshold_meta["label_max_mg_per_day"]["source"]))
        elif dose >= knowledge.threshold("high_dose_mg_per_day"):
            factors.append(RiskFactor(
                "high_dose", "high daily dose",
                f"{dose:g} mg/day >= {knowledge.threshold('high_dose_mg_per_day'):g} mg/day",
                "local policy"))
    days = event.exposure_days
    if days is not None and days >= knowledge.threshold("long_exposure_days"):
        factors.append(RiskFactor("long_exposure", "long exposure",
                                  f"about {days:.0f} days on baclofen", "local policy"))
    factors += patient.condition_factors
    if patient.age_factor:
        factors.append(patient.age_factor)
    return RiskProfile("high" if factors else "standard", tuple(factors), patient.renal)


def _active_condition(cond: dict) -> bool:
    status = cond.get("clinicalStatus")
    codings = status.get("coding") if isinstance(status, dict) else None
    codes = {c.get("code") for c in codings or [] if isinstance(c, dict)}
    return condition_is_usable(cond) and not codes & set(INACTIVE_CLINICAL)


def _describe(cond: dict) -> str:
    code = cond.get("code") if isinstance(cond.get("code"), dict) else {}
    text = code.get("text")
    if not isinstance(text, str):
        text = next((c.get("display") for c in code.get("coding") or []
                     if isinstance(c, dict) and isinstance(c.get("display"), str)), "condition")
    at = condition_time(cond)
    return f"{text} (since {fmt_date(at)})" if at else text


def _latest_egfr(resources: list[dict], knowledge: Knowledge) -> tuple[float, datetime] | None:
    latest: tuple[float, datetime] | None = None
    for obs in resources:
        if not isinstance(obs, dict) or obs.get("resourceType") != "Observation":
            continue
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        if not knowledge.observations["egfr"].matches_concept(obs.get("code")):
            continue
        quantity = obs.get("valueQuantity")
        value = quantity.get("value") if isinstance(quantity, dict) else None
        at = observation_time(obs)
        if isinstance(value, int | float) and not isinstance(value, bool) and at is not None \
                and (latest is None or at > latest[1]):
            latest = (float(value), at)
    return latest
