"""Measurements (rules/patient.yaml): the latest usable reading of a value, in one unit.

The unit a reading carries decides how it is read, never its code alone: a creatinine of
398 umol/L sent under the mass-concentration LOINC code is 4.5 mg/dL. A reading whose unit
cannot be read is never dropped silently: it is returned as Unreadable so the response
and the card can name it. An eGFR missing from the record is estimated from the latest
creatinine with the CKD-EPI 2021 equation (race-free), whose numbers live in rules/.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds.facts.signs import CLOCK_SKEW, observation_time
from cds.facts.timeutil import fmt_date
from cds.facts.units import convert, quantity
from cds.knowledge import Knowledge
from cds.knowledge.model import ByCodeSet, CodeIndex, MeasurementDef

USABLE = ("final", "amended", "corrected", "preliminary", "registered")
MAX_UNIT_SHOWN = 40  # a unit as sent is request text: bounded wherever it is shown


@dataclass(frozen=True)
class Measured:
    key: str
    value: float  # in `unit`
    unit: str
    at: datetime | None
    estimated: bool = False
    basis: str = ""  # for an estimate: what it was worked out from


@dataclass(frozen=True)
class Unreadable:
    """A reading the rules would use whose value could not be read in any known unit."""

    reading: str  # what it is ("Creatinine", "Body temperature")
    value: float
    unit: str  # as sent (bounded)
    at: datetime | None
    measurement: str = ""  # the measurement it would have given, if any

    def as_json(self) -> dict[str, Any]:
        return {"reading": self.reading, "unit": self.unit}


def reading_name(about: str) -> str:
    """A code set's `about` as the name of a reading: 'Creatinine, mass ...' -> 'Creatinine'."""
    return about.split(",")[0].split(" (")[0]


def shown_unit(unit: str, knowledge: Knowledge) -> str:
    """A UCUM unit as a card writes it ('Cel' -> '°C')."""
    return knowledge.unit_display.get(unit, unit)


class MeasurementReader:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.defs = knowledge.measurements
        self.code_sets = [r.code_set for m in self.defs.values() for r in m.readings]
        self.index = CodeIndex(self.code_sets, codes_first=False)

    def read(self, observations: list[Mapping], patient: Mapping | None, age_years: int | None,
             now: datetime, unreadable: list[Unreadable],
             grouped: ByCodeSet | None = None) -> dict[str, Measured]:
        """`grouped`: the observations already sorted by an index holding `code_sets`."""
        found: dict[str, Measured] = {}
        grouped = grouped or ByCodeSet(self.index, observations)
        for key, measurement in self.defs.items():
            candidates = grouped.of(*(r.code_set for r in measurement.readings))
            measured = self._latest(measurement, candidates, now, unreadable)
            if measured is not None:
                found[key] = measured
        for key, measurement in self.defs.items():
            if key not in found and measurement.estimate is not None:
                estimate = self._estimate(measurement, found, patient, age_years)
                if estimate is not None:
                    found[key] = estimate
        return found

    def _latest(self, measurement: MeasurementDef, observations: list[Mapping], now: datetime,
                unreadable: list[Unreadable]) -> Measured | None:
        latest: tuple[datetime, Measured] | None = None
        for obs in observations:
            if obs.get("status") not in USABLE:
                continue
            reading = next((r for r in measurement.readings
                            if r.code_set.matches_concept(obs.get("code"))), None)
            if reading is None:
                continue
            at = observation_time(obs)
            if at is None or at > now + CLOCK_SKEW:
                continue
            value, unit = quantity(obs)
            if value is None:
                continue
            converted = convert(value, unit, measurement.unit, self.knowledge,
                                reading.code_set.name)
            if converted is None:
                unreadable.append(Unreadable(reading_name(reading.code_set.about), value,
                                             (unit or "no unit")[:MAX_UNIT_SHOWN], at,
                                             measurement.key))
                continue
            if latest is None or at > latest[0]:
                latest = (at, Measured(measurement.key, converted, measurement.unit, at))
        return latest[1] if latest else None

    def _estimate(self, measurement: MeasurementDef, found: Mapping[str, Measured],
                  patient: Mapping | None, age_years: int | None) -> Measured | None:
        if measurement.estimate != "ckd_epi_2021_creatinine":
            return None
        equation = self.knowledge.equations["ckd_epi_2021_creatinine"]
        creatinine = found.get(equation["from"])
        sex = patient.get("gender") if isinstance(patient, Mapping) else None
        if creatinine is None or age_years is None or sex not in ("female", "male") \
                or age_years < equation.get("min_age_years", 18) or creatinine.value <= 0:
            return None  # no creatinine, or an unknown age or sex: no estimate, never a guess
        value = ckd_epi_2021(creatinine.value, age_years, sex, equation)
        shown = f"{round(creatinine.value, 2):g}"
        basis = (f"creatinine {shown} mg/dL on {fmt_date(creatinine.at)}"
                 if creatinine.at else f"creatinine {shown} mg/dL")
        return Measured(measurement.key, round(value, 1), measurement.unit, creatinine.at,
                        estimated=True, basis=basis)


def ckd_epi_2021(creatinine_mg_dl: float, age_years: float, sex: str,
                 equation: Mapping[str, Any]) -> float:
    """eGFR (mL/min/1.73 m2) by the 2021 CKD-EPI creatinine equation (Inker 2021)."""
    sex_terms = equation[sex]
    ratio = creatinine_mg_dl / sex_terms["kappa"]
    return (equation["base"] * min(ratio, 1.0) ** sex_terms["alpha"]
            * max(ratio, 1.0) ** equation["beta"] * equation["age_factor"] ** age_years
            * sex_terms["factor"])
