"""Daily dose arithmetic: mg/day for oral baclofen, mcg/day for intrathecal baclofen.

Anything malformed or missing makes the dose unknown (with a reason), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds.facts.recognition import mass_in_mg
from cds.product import Product

# HL7 v3 GTSAbbreviation timing codes -> administrations per day.
TIMING_CODE_PER_DAY = {
    "QD": 1.0, "QOD": 0.5, "AM": 1.0, "PM": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0,
    "Q1H": 24.0, "Q2H": 12.0, "Q3H": 8.0, "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0,
    "WK": 1 / 7, "MO": 1 / 30,
}
TIMING_TEXT_PER_DAY = {"daily": 1.0, "once daily": 1.0, "qd": 1.0, "bid": 2.0, "tid": 3.0,
                       "qid": 4.0, "twice daily": 2.0, "three times daily": 3.0,
                       "four times daily": 4.0}
PERIOD_UNIT_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0,
                    "mo": 30.0, "a": 365.0}
TABLET_UNITS = {"tab", "tabs", "tablet", "tablets", "{tbl}", "{tablet}", "{tablets}", "tbl",
                "packet", "packets", "{packet}"}
VOLUME_ML = {"ml": 1.0, "milliliter": 1.0, "l": 1000.0, "cl": 10.0}


@dataclass(frozen=True)
class DailyDose:
    """Daily dose of one order. `amount` is mg/day (oral) or mcg/day (intrathecal)."""

    amount: float | None
    unit: str
    administrations_per_day: float | None = None
    as_needed: bool = False
    unknown_reason: str | None = None
    # Daily dose of each sequenced dosageInstruction step, when the order is a schedule.
    steps: tuple[float, ...] = field(default=())

    @property
    def known(self) -> bool:
        return self.amount is not None

    @property
    def is_taper_schedule(self) -> bool:
        """Sequenced steps that only go down, ending lower than they start."""
        s = self.steps
        return len(s) >= 2 and all(b <= a for a, b in zip(s, s[1:], strict=False)) and s[-1] < s[0]


def daily_dose(request: dict, product: Product) -> DailyDose:
    """Daily dose of a MedicationRequest for a recognised baclofen product."""
    unit = "ug/d" if product.is_intrathecal else "mg/d"
    dosages = request.get("dosageInstruction")
    if not isinstance(dosages, list) or not dosages:
        return DailyDose(None, unit, unknown_reason="no dosage instructions")
    groups: dict[int, list[dict]] = {}
    for index, dosage in enumerate(dosages):
        if not isinstance(dosage, dict):
            return DailyDose(None, unit, unknown_reason="malformed dosage instruction")
        seq = dosage.get("sequence")
        # why: entries sharing a sequence number (or none) run concurrently and are summed.
        groups.setdefault(seq if isinstance(seq, int) else 0 if seq is None else index, []).append(
            dosage
        )
    step_doses: list[float] = []
    admins_total = 0.0
    any_prn = False
    for key in sorted(groups):
        total = 0.0
        for dosage in groups[key]:
            amount, per_day, prn, reason = _one_dosage(dosage, product)
            if amount is None:
                return DailyDose(None, unit, unknown_reason=reason)
            total += amount
            any_prn = any_prn or prn
            if key == min(groups):
                admins_total += per_day or 0.0
        step_doses.append(round(total, 4))
    return DailyDose(
        amount=step_doses[0],
        unit=unit,
        administrations_per_day=admins_total or None,
        as_needed=any_prn,
        steps=tuple(step_doses) if len(step_doses) > 1 else (),
    )


def _one_dosage(dosage: dict, product: Product) -> tuple[float | None, float | None, bool, str]:
    """(daily amount, administrations per day, as-needed, reason if unknown)."""
    prn = bool(dosage.get("asNeededBoolean")) or isinstance(dosage.get("asNeededCodeableConcept"),
                                                              dict)
    if product.is_intrathecal:
        rate = _intrathecal_rate_mcg_per_day(dosage, product)
        if rate is not None:
            return rate, None, prn, ""
    per_dose = _per_administration(dosage, product)
    if prn:
        capped = _max_per_period(dosage, product)
        if capped is not None:
            return capped, None, True, ""
    if per_dose is None:
        return None, None, prn, "dose quantity missing or in a unit that cannot become mg"
    per_day = administrations_per_day(dosage.get("timing"))
    if per_day is None:
        return None, None, prn, "frequency missing or unreadable"
    return per_dose * per_day, per_day, prn, ""


def _per_administration(dosage: dict, product: Product) -> float | None:
    """One administration in mg (oral) or mcg (intrathecal); doseRange counts at its high end."""
    for rate in dosage.get("doseAndRate") or []:
        if not isinstance(rate, dict):
            continue
        quantity = rate.get("doseQuantity")
        if quantity is None and isinstance(rate.get("doseRange"), dict):
            quantity = rate["doseRange"].get("high")
        if isinstance(quantity, dict):
            mg = quantity_in_mg(quantity, product)
            if mg is not None:
                return mg * 1000 if product.is_intrathecal else mg
    return None


def quantity_in_mg(quantity: dict, product: Product) -> float | None:
    """mg, mcg, g directly; mL x concentration; tablets x strength. Never assumes a strength."""
    value = quantity.get("value")
    unit = quantity.get("code") or quantity.get("unit") or ""
    if not isinstance(unit, str) or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    direct = mass_in_mg(value, unit)
    if direct is not None:
        return direct
    lowered = unit.strip().lower()
    if lowered in VOLUME_ML:
        conc = product.concentration_mg_per_ml
        return value * VOLUME_ML[lowered] * conc if conc else None
    if lowered in TABLET_UNITS or "tablet" in lowered:
        return value * product.strength_mg if product.strength_mg else None
    return None


def administrations_per_day(timing: Any) -> float | None:
    """Administrations per day from Timing.repeat (frequency/period) or Timing.code."""
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict):
        freq = repeat.get("frequencyMax", repeat.get("frequency"))
        period = repeat.get("period")
        unit_days = PERIOD_UNIT_DAYS.get(repeat.get("periodUnit"))
        if isinstance(freq, int) and freq > 0 and _positive(period) and unit_days:
            return freq / (period * unit_days)
        events = repeat.get("when") or repeat.get("timeOfDay")
        if isinstance(events, list) and events and unit_days in (None, 1.0):
            return float(len(events))
    code = timing.get("code")
    if isinstance(code, dict):
        for coding in code.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code") in TIMING_CODE_PER_DAY:
                return TIMING_CODE_PER_DAY[coding["code"]]
        text = code.get("text")
        if isinstance(text, str) and text.strip().lower() in TIMING_TEXT_PER_DAY:
            return TIMING_TEXT_PER_DAY[text.strip().lower()]
    return None


def _max_per_period(dosage: dict, product: Product) -> float | None:
    """As-needed orders count at maxDosePerPeriod (a Ratio: amount per period)."""
    ratio = dosage.get("maxDosePerPeriod")
    if not isinstance(ratio, dict):
        return None
    num, den = ratio.get("numerator"), ratio.get("denominator")
    if not isinstance(num, dict) or not isinstance(den, dict):
        return None
    mg = quantity_in_mg(num, product)
    days = _duration_days(den)
    if mg is None or not days:
        return None
    per_day = mg / days
    return per_day * 1000 if product.is_intrathecal else per_day


def _intrathecal_rate_mcg_per_day(dosage: dict, product: Product) -> float | None:
    """rateQuantity (e.g. 400 ug/d, 20 ug/h) or rateRatio (ug per duration) -> mcg/day."""
    for rate in dosage.get("doseAndRate") or []:
        if not isinstance(rate, dict):
            continue
        quantity = rate.get("rateQuantity")
        if isinstance(quantity, dict):
            unit = quantity.get("code") or quantity.get("unit") or ""
            if isinstance(unit, str) and "/" in unit:
                amount_unit, per = unit.split("/", 1)
                mg = quantity_in_mg({"value": quantity.get("value"), "code": amount_unit},
                                    product)
                days = PERIOD_UNIT_DAYS.get(per.strip().lower().replace("day", "d"))
                if mg is not None and days:
                    return mg * 1000 / days
        ratio = rate.get("rateRatio")
        if isinstance(ratio, dict):
            num, den = ratio.get("numerator"), ratio.get("denominator")
            if isinstance(num, dict) and isinstance(den, dict):
                mg = quantity_in_mg(num, product)
                days = _duration_days(den)
                if mg is not None and days:
                    return mg * 1000 / days
    return None


def _duration_days(quantity: dict) -> float | None:
    value = quantity.get("value", 1)
    unit = quantity.get("code") or quantity.get("unit")
    unit_days = PERIOD_UNIT_DAYS.get(unit.lower() if isinstance(unit, str) else "")
    if not _positive(value) or not unit_days:
        return None
    return value * unit_days


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
