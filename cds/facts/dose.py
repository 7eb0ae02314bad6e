"""Daily dose of one order: mg/day for oral baclofen, mcg/day for intrathecal baclofen.

Structured dosage first (doseAndRate, timing); the free-text sig when the structure is
missing. As-needed doses are kept apart from scheduled ones: an as-needed order is not
a daily exposure until administrations show it is taken regularly. Anything malformed
or missing makes the dose unknown (with a reason), never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cds.facts.recognition import mass_in_mg
from cds.facts.sig import read_sig
from cds.facts.units import number
from cds.knowledge import Knowledge
from cds.product import Product

PERIOD_UNIT_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0,
                    "mo": 30.0, "a": 365.0}
VOLUME_ML = {"ml": 1.0, "milliliter": 1.0, "millilitre": 1.0, "l": 1000.0, "cl": 10.0}
PER_KG_MISSING_WEIGHT = "dose ordered per kg of body weight and no body weight on record"


@dataclass(frozen=True)
class DailyDose:
    """`scheduled`: the regular daily dose (0 for an as-needed-only order); `as_needed_max`:
    the most the as-needed part allows per day. Both mg/day oral, mcg/day intrathecal."""

    scheduled: float | None
    unit: str  # "mg/d" or "ug/d"
    administrations_per_day: float | None = None
    as_needed: bool = False
    as_needed_max: float | None = None
    unknown_reason: str | None = None
    from_sig: bool = False
    single_dose: bool = False  # one administration only (a screening bolus, a stat dose)
    # Daily dose of each sequenced dosageInstruction step, when the order is a schedule.
    steps: tuple[float, ...] = field(default=())
    as_needed_per_use: float | None = None  # one as-needed administration, when known
    per_kg: bool = False  # worked out from a dose per kg and the body weight on record

    @property
    def known(self) -> bool:
        return self.scheduled is not None

    @property
    def as_needed_only(self) -> bool:
        return self.as_needed and self.scheduled == 0

    @property
    def is_taper_schedule(self) -> bool:
        """Sequenced steps that only go down, ending lower than they start."""
        s = self.steps
        return len(s) >= 2 and all(b <= a for a, b in zip(s, s[1:], strict=False)) and s[-1] < s[0]


class DoseReader:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.solid_units = knowledge.solid_dose_units

    def daily_dose(self, request: Mapping, product: Product, weight_kg: float | None = None
                   ) -> DailyDose:
        """`weight_kg`: the latest body weight on record, for doses ordered per kg."""
        dose = self._daily_dose(request, product, weight_kg)
        if any(v is not None and not math.isfinite(v) for v in (
                dose.scheduled, dose.as_needed_max, dose.as_needed_per_use, *dose.steps)):
            # 1e308 mg x 4 a day is no dose anyone gives: unknown, never "inf mg/day".
            return DailyDose(None, dose.unit, unknown_reason="dose out of any possible range")
        dosages = request.get("dosageInstruction")
        if isinstance(dosages, list) and len(dosages) == 1 and isinstance(dosages[0], Mapping) \
                and _single_administration(dosages[0], self.knowledge):
            return replace(dose, single_dose=True)
        return dose

    def _daily_dose(self, request: Mapping, product: Product, weight_kg: float | None
                    ) -> DailyDose:
        unit = "ug/d" if product.is_intrathecal else "mg/d"
        dosages = request.get("dosageInstruction")
        if not isinstance(dosages, list) or not dosages:
            return DailyDose(None, unit, unknown_reason="no dosage instructions")
        groups: dict[Any, list[Mapping]] = {}
        for index, dosage in enumerate(dosages):
            if not isinstance(dosage, Mapping):
                return DailyDose(None, unit, unknown_reason="malformed dosage instruction")
            seq = dosage.get("sequence")
            # why: entries sharing a sequence number (or none) run together and are summed.
            key = seq if isinstance(seq, int) and not isinstance(seq, bool) else (
                0 if seq is None else f"#{index}")
            groups.setdefault(key, []).append(dosage)
        ordered = sorted(groups, key=lambda k: (isinstance(k, str), k if isinstance(k, int) else 0))
        steps: list[float] = []
        first_admins = 0.0
        prn_max_total: float | None = None
        prn_per_use: float | None = None
        any_prn = from_sig = per_kg = False
        for position, key in enumerate(ordered):
            total = 0.0
            for dosage in groups[key]:
                part = self._one(dosage, product, weight_kg)
                if part.unknown_reason:
                    return DailyDose(None, unit, unknown_reason=part.unknown_reason)
                from_sig = from_sig or part.from_sig
                per_kg = per_kg or part.per_kg
                if part.as_needed:
                    any_prn = True
                    if part.as_needed_per_use is not None:
                        prn_per_use = min(prn_per_use or part.as_needed_per_use,
                                          part.as_needed_per_use)
                    if part.as_needed_max is not None:
                        prn_max_total = (prn_max_total or 0.0) + part.as_needed_max
                    continue
                total += part.scheduled or 0.0
                if position == 0:
                    first_admins += part.administrations_per_day or 0.0
            steps.append(round(total, 4))
        return DailyDose(steps[0], unit, first_admins or None, any_prn, prn_max_total,
                         from_sig=from_sig, steps=tuple(steps) if len(steps) > 1 else (),
                         as_needed_per_use=prn_per_use, per_kg=per_kg)

    def _one(self, dosage: Mapping, product: Product, weight_kg: float | None) -> DailyDose:
        unit = "ug/d" if product.is_intrathecal else "mg/d"
        factor = 1000 if product.is_intrathecal else 1
        prn = dosage.get("asNeededBoolean") is True or isinstance(
            dosage.get("asNeededCodeableConcept"), Mapping)
        text = dosage.get("text") if isinstance(dosage.get("text"), str) else ""
        sig = read_sig(text, self.knowledge) if text else None
        prn = prn or bool(sig and sig.as_needed)
        if product.is_intrathecal:
            rate = self._rate_mcg_per_day(dosage, product)
            if rate is not None:
                return DailyDose(rate, unit, as_needed=False)
        per_dose = self._per_administration(dosage, product, weight_kg)
        per_day = self.administrations_per_day(dosage.get("timing"))
        used_sig = False
        if per_dose is None and weight_kg is None and (
                self._per_kg_ordered(dosage) or (sig is not None and sig.per_kg)):
            # 0.3 mg/kg is not 0.3 mg: without a weight the dose is unknown, never guessed.
            return DailyDose(None, unit, unknown_reason=PER_KG_MISSING_WEIGHT)
        if sig is not None:
            if per_dose is None and sig.amount is not None:
                per_dose, used_sig = self._sig_amount(sig, product, weight_kg), True
            if per_day is None and sig.per_day is not None:
                per_day, used_sig = sig.per_day, True
        if prn:
            cap = self._max_per_period(dosage, product)
            if cap is None and sig is not None and sig.max_per_day_mg is not None:
                cap = sig.max_per_day_mg
            if cap is None and per_dose is not None and per_day is not None:
                cap = per_dose * per_day
            return DailyDose(0.0, unit, as_needed=True,
                             as_needed_max=cap * factor if cap is not None else None,
                             from_sig=used_sig, as_needed_per_use=per_dose * factor
                             if per_dose is not None else None)
        if per_dose is None:
            return DailyDose(None, unit, unknown_reason="dose missing or in a unit that cannot "
                                                        "become mg")
        if per_day is None:
            return DailyDose(None, unit, unknown_reason="frequency missing or unreadable")
        weighed = weight_kg is not None and (self._per_kg_ordered(dosage)
                                             or bool(sig and sig.per_kg))
        return DailyDose(per_dose * per_day * factor, unit, per_day, from_sig=used_sig,
                         per_kg=weighed)

    def _sig_amount(self, sig: Any, product: Product, weight_kg: float | None) -> float | None:
        if sig.per_kg:
            if weight_kg is None or sig.unit not in ("mg", "mcg"):
                return None
            return round(sig.amount * weight_kg / (1000 if sig.unit == "mcg" else 1), 1)
        if sig.unit == "mg":
            return sig.amount
        if sig.unit == "mcg":
            return sig.amount / 1000
        if sig.unit == "ml":
            conc = product.concentration_mg_per_ml
            return sig.amount * conc if conc else None
        if sig.unit == "unit":
            return sig.amount * product.strength_mg if product.strength_mg else None
        return None

    def _per_kg_ordered(self, dosage: Mapping) -> bool:
        for rate in dosage.get("doseAndRate") or []:
            quantity = rate.get("doseQuantity") if isinstance(rate, Mapping) else None
            unit = (quantity.get("code") or quantity.get("unit")) if isinstance(
                quantity, Mapping) else None
            if isinstance(unit, str) and _per_kg_base(unit) is not None:
                return True
        return False

    def _per_administration(self, dosage: Mapping, product: Product,
                            weight_kg: float | None = None) -> float | None:
        """One administration in mg; doseRange counts at its high end."""
        for rate in dosage.get("doseAndRate") or []:
            if not isinstance(rate, Mapping):
                continue
            quantity = rate.get("doseQuantity")
            if quantity is None and isinstance(rate.get("doseRange"), Mapping):
                quantity = rate["doseRange"].get("high")
            if isinstance(quantity, Mapping):
                mg = self.quantity_in_mg(quantity, product, weight_kg)
                if mg is not None:
                    return mg
        return None

    def quantity_in_mg(self, quantity: Mapping, product: Product,
                       weight_kg: float | None = None) -> float | None:
        """mg, mcg, g directly; mL x concentration; tablets x strength; mg/kg x the body
        weight. Never assumes one."""
        value = number(quantity.get("value"))
        unit = quantity.get("code") or quantity.get("unit") or ""
        if value is None or value < 0 or not isinstance(unit, str):
            return None
        base = _per_kg_base(unit)
        if base is not None:
            if weight_kg is None:
                return None
            per_kg = self.quantity_in_mg({"value": value, "code": base}, product)
            # to 0.1 mg: a dose per kg is measured no finer than that
            return round(per_kg * weight_kg, 1) if per_kg is not None else None
        direct = mass_in_mg(value, unit)
        if direct is not None:
            return direct
        lowered = unit.strip().lower()
        if lowered in VOLUME_ML:
            conc = product.concentration_mg_per_ml
            return value * VOLUME_ML[lowered] * conc if conc else None
        if lowered in self.solid_units:
            return value * product.strength_mg if product.strength_mg else None
        return None

    def administrations_per_day(self, timing: Any) -> float | None:
        """From Timing.repeat (frequency/period, when/timeOfDay) or Timing.code."""
        if not isinstance(timing, Mapping):
            return None
        repeat = timing.get("repeat")
        if isinstance(repeat, Mapping):
            freq = repeat.get("frequencyMax", repeat.get("frequency"))
            period = number(repeat.get("period"))
            unit_days = PERIOD_UNIT_DAYS.get(repeat.get("periodUnit"))
            if isinstance(freq, int) and not isinstance(freq, bool) and freq > 0 and period \
                    and period > 0 and unit_days:
                return freq / (period * unit_days)
            events = repeat.get("when") or repeat.get("timeOfDay")
            if isinstance(events, list) and events and unit_days in (None, 1.0):
                return float(len(events))
        code = timing.get("code")
        if isinstance(code, Mapping):
            for coding in code.get("coding") or []:
                if isinstance(coding, Mapping) and coding.get("code") in \
                        self.knowledge.timing_per_day:
                    return self.knowledge.timing_per_day[coding["code"]]
            text = code.get("text")
            if isinstance(text, str):
                return self.knowledge.sig_words["per_day"].get(text.strip().lower())
        return None

    def _max_per_period(self, dosage: Mapping, product: Product) -> float | None:
        """maxDosePerPeriod (a Ratio: amount per period) as mg/day."""
        ratio = dosage.get("maxDosePerPeriod")
        if not isinstance(ratio, Mapping):
            return None
        num, den = ratio.get("numerator"), ratio.get("denominator")
        if not isinstance(num, Mapping) or not isinstance(den, Mapping):
            return None
        mg = self.quantity_in_mg(num, product)
        days = duration_days(den)
        return mg / days if mg is not None and days else None

    def _rate_mcg_per_day(self, dosage: Mapping, product: Product) -> float | None:
        """rateQuantity (400 ug/d, 20 ug/h) or rateRatio (ug per duration) -> mcg/day."""
        for rate in dosage.get("doseAndRate") or []:
            if not isinstance(rate, Mapping):
                continue
            quantity = rate.get("rateQuantity")
            if isinstance(quantity, Mapping):
                unit = quantity.get("code") or quantity.get("unit") or ""
                if isinstance(unit, str) and "/" in unit:
                    amount_unit, per = unit.split("/", 1)
                    mg = self.quantity_in_mg({"value": quantity.get("value"),
                                              "code": amount_unit}, product)
                    days = PERIOD_UNIT_DAYS.get(per.strip().lower().replace("day", "d"))
                    if mg is not None and days:
                        return mg * 1000 / days
            ratio = rate.get("rateRatio")
            if isinstance(ratio, Mapping):
                num, den = ratio.get("numerator"), ratio.get("denominator")
                if isinstance(num, Mapping) and isinstance(den, Mapping):
                    mg = self.quantity_in_mg(num, product)
                    days = duration_days(den)
                    if mg is not None and days:
                        return mg * 1000 / days
        return None


def _single_administration(dosage: Mapping, knowledge: Knowledge) -> bool:
    """timing.repeat.count of 1, or a sig that says once ('x1', 'one time', 'stat')."""
    repeat = (dosage.get("timing") or {}).get("repeat") if isinstance(dosage.get("timing"),
                                                                     Mapping) else None
    if isinstance(repeat, Mapping) and repeat.get("count") == 1:
        return True
    text = dosage.get("text")
    if not isinstance(text, str):
        return False
    padded = " " + " ".join(text.lower().split()) + " "
    followers = knowledge.sig_words["not_single_before"]
    for phrase in knowledge.sig_words["single_dose"]:
        at = padded.find(f" {phrase} ")
        while at >= 0:
            after = at + len(phrase) + 2  # no slicing: linear in the sig (issue 25)
            if not any(padded.startswith(f"{w} ", after) for w in followers):
                return True
            at = padded.find(f" {phrase} ", at + 1)
    return False


def _per_kg_base(unit: str) -> str | None:
    """'mg/kg' -> 'mg'; None when the unit is not per kilogram of body weight."""
    lowered = unit.strip().lower().replace(" ", "")
    for suffix in ("/kg", "/kg/dose"):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return lowered[: -len(suffix)]
    return None


def duration_days(quantity: Mapping) -> float | None:
    value = number(quantity.get("value", 1))
    unit = quantity.get("code") or quantity.get("unit")
    unit_days = PERIOD_UNIT_DAYS.get(unit.lower() if isinstance(unit, str) else "")
    if value is None or value <= 0 or not unit_days:
        return None
    return value * unit_days
