"""Plan an oral baclofen taper from the current daily dose down to zero or a target.

The shape of every plan (all values from rules/taper.yaml):
- each step lowers the daily dose by at most the policy step (15 mg/day by default) and
  is held for the same number of days; intervals are lengthened until the whole taper
  lasts at least the minimum duration (14 days, or longer when risk is high);
- every dose is something the product can deliver (whole tablets/packets of the listed
  strengths, or liquid in whole measuring increments at the product's concentration);
- the current number of administrations a day is kept while each administration stays
  at or above the minimum per-administration dose; below that, administrations merge.
  A day's dose may be split unevenly (e.g. 10 + 5 + 5 mg) so the frequency can be kept;
- no administration and no day ever exceeds the current dose, and doses never go up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds.product import Product
from cds.taper.params import Risk, TaperParams
from cds.taper.products import Delivery, delivery_for, format_number

MAX_ADMINISTRATIONS_PER_DAY = 6
MAX_DAILY_DOSE_MG = 1000.0  # sanity guard against unit errors (mcg typed as mg)
_EPS = 1e-6

_TIMES = {1: "once a day", 2: "twice a day", 3: "three times a day", 4: "four times a day"}


def times_a_day(count: int) -> str:
    return _TIMES.get(count, f"{count} times a day")


class IntrathecalNoOralPlan(Exception):  # noqa: N818 - the name says what the result is
    """Intrathecal baclofen is reduced by reprogramming the pump, never by an oral plan."""

    def __init__(self, advice: str) -> None:
        super().__init__(advice)
        self.advice = advice


@dataclass(frozen=True)
class DosePart:
    """`times_per_day` administrations of `dose_mg` each."""

    dose_mg: float
    times_per_day: int
    amount_text: str

    @property
    def text(self) -> str:
        return f"{self.amount_text} {times_a_day(self.times_per_day)}"


@dataclass(frozen=True)
class TaperStep:
    """One dose level. `end` is inclusive; it and `days` are None for an ongoing dose."""

    number: int
    start: date
    end: date | None
    days: int | None
    parts: tuple[DosePart, ...]

    @property
    def administrations_per_day(self) -> int:
        return sum(part.times_per_day for part in self.parts)

    @property
    def daily_mg(self) -> float:
        return round(sum(part.dose_mg * part.times_per_day for part in self.parts), 3)

    @property
    def dose_per_administration_mg(self) -> float:
        """The largest single administration (all are equal unless the day is split)."""
        return max(part.dose_mg for part in self.parts)

    @property
    def amount_text(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0].amount_text
        return " and ".join(part.text for part in self.parts)

    @property
    def text(self) -> str:
        dose = " and ".join(part.text for part in self.parts)
        return f"{dose} ({format_number(self.daily_mg)} mg/day)"


@dataclass(frozen=True)
class TaperPlan:
    kind: Literal["stop", "cut"]
    product: Product
    delivery: Delivery
    start_daily_mg: float
    start_administrations_per_day: int
    target_mg: float
    risk: Risk
    interval_days: int
    max_step_mg_per_day: float
    steps: tuple[TaperStep, ...]
    # For a cut: the target dose, ongoing from target_date. None when stopping.
    maintenance: TaperStep | None
    # First day at the target dose (the first day without baclofen when stopping).
    target_date: date
    warnings: tuple[str, ...]

    @property
    def start_date(self) -> date:
        return self.steps[0].start

    @property
    def duration_days(self) -> int:
        return (self.target_date - self.start_date).days

    @property
    def daily_levels_mg(self) -> list[float]:
        """Current dose, every step's daily dose, then the target."""
        return [self.start_daily_mg, *(s.daily_mg for s in self.steps), self.target_mg]


@dataclass(frozen=True)
class _Level:
    units: int  # daily dose in delivery units
    frequency: int


def _split(level: _Level) -> list[tuple[int, int]]:
    """(units per administration, times per day), larger administrations first."""
    per, extra = divmod(level.units, level.frequency)
    split = [(per + 1, extra), (per, level.frequency - extra)]
    return [(units, times) for units, times in split if times and units]


class _Limits:
    """What a level must satisfy, all in delivery units."""

    def __init__(self, delivery: Delivery, daily_mg: float, frequency: int, min_admin_mg: float):
        self.delivery = delivery
        unit = delivery.unit_mg
        per_admin = daily_mg / frequency / unit
        # No administration above today's (balanced) administration, but at least one unit.
        self.max_admin_units = max(1, math.ceil(per_admin - _EPS))
        # Merge administrations below the policy minimum, unless the patient already
        # takes less than that per administration.
        policy_min = max(1, math.ceil(min_admin_mg / unit - _EPS))
        self.min_admin_units = max(1, min(policy_min, math.floor(per_admin + _EPS)))

    def level(self, units: int, max_frequency: int) -> _Level | None:
        frequency = max(1, min(max_frequency, units // self.min_admin_units))
        level = _Level(units, frequency)
        unit = self.delivery.unit_mg
        for admin_units, _times in _split(level):
            if admin_units > self.max_admin_units:
                return None
            if not self.delivery.is_deliverable(admin_units * unit):
                return None
        return level


def _units(mg: float, unit: float) -> float:
    return mg / unit


def _choose_next(
    current_mg: float,
    current_frequency: int,
    goal_mg: float,
    pace_mg: float,
    target_units: int,
    bound_mg: float,
    limits: _Limits,
) -> tuple[_Level, bool]:
    """The next level below `current_mg` within the step bound, as close to the goal as
    equal administrations allow. Returns (level, within_bound)."""
    unit = limits.delivery.unit_mg
    highest = math.ceil(_units(current_mg, unit) - _EPS) - 1
    lowest = max(target_units, math.ceil(_units(current_mg - bound_mg, unit) - _EPS))
    goal_units = _units(goal_mg, unit)

    def candidate(units: int) -> _Level | None:
        if units == target_units:
            if units == 0:
                return _Level(0, current_frequency)
            return limits.level(units, current_frequency)
        return limits.level(units, current_frequency) if units > 0 else None

    valid = [lvl for n in range(lowest, highest + 1) if (lvl := candidate(n)) is not None]
    if valid:
        # Among levels on pace (within half a planned step of the goal) prefer equal
        # administrations, which are simpler to take; then the nearest; ties go higher.
        tolerance = _units(pace_mg / 2, unit) + _EPS
        return min(
            valid,
            key=lambda lvl: (
                abs(lvl.units - goal_units) > tolerance,
                lvl.units % lvl.frequency != 0,
                abs(lvl.units - goal_units),
                -lvl.units,
            ),
        ), True
    # Nothing within the bound: take the highest deliverable level below (flagged).
    for n in range(min(lowest, highest + 1) - 1, target_units - 1, -1):
        lvl = candidate(n)
        if lvl is not None:
            return lvl, False
    raise ValueError("no deliverable dose below the current dose")  # pragma: no cover


def _validate(daily_dose_mg: float, frequency: int | None, target_mg: float) -> None:
    if not 0 < daily_dose_mg <= MAX_DAILY_DOSE_MG:
        raise ValueError(f"daily dose must be above 0 and at most {MAX_DAILY_DOSE_MG:g} mg")
    if not 0 <= target_mg < daily_dose_mg:
        raise ValueError("target dose must be at least 0 and below the current daily dose")
    if frequency is not None and not 1 <= frequency <= MAX_ADMINISTRATIONS_PER_DAY:
        raise ValueError(
            f"administrations per day must be between 1 and {MAX_ADMINISTRATIONS_PER_DAY}"
        )


def _step(number: int, start: date, days: int | None, level: _Level, delivery: Delivery):
    unit = delivery.unit_mg
    parts = tuple(
        DosePart(
            dose_mg=round(units * unit, 3),
            times_per_day=times,
            amount_text=delivery.amount_text(units * unit),
        )
        for units, times in _split(level)
    )
    end = start + timedelta(days=days - 1) if days is not None else None
    return TaperStep(number=number, start=start, end=end, days=days, parts=parts)


def plan_taper(
    daily_dose_mg: float,
    product: Product,
    administrations_per_day: int | None,
    risk: Risk,
    start: date,
    params: TaperParams,
    target_mg: float = 0.0,
) -> TaperPlan:
    """A stepwise schedule from `daily_dose_mg` down to `target_mg` (0 = stop).

    Raises IntrathecalNoOralPlan for intrathecal products and ValueError for doses the
    planner cannot work with (out of range, or a target the product cannot deliver).
    """
    if product.is_intrathecal:
        raise IntrathecalNoOralPlan(params.intrathecal_advice)
    _validate(daily_dose_mg, administrations_per_day, target_mg)
    warnings: list[str] = []
    delivery = delivery_for(product, params)
    unit = delivery.unit_mg
    if delivery.kind == "mg":
        warnings.append(
            "Product or liquid concentration not known: doses are planned in mg in "
            f"multiples of {format_number(unit)} mg (the smallest tablet). Confirm the "
            "product and convert before ordering."
        )
    if daily_dose_mg < unit:
        raise ValueError(
            f"daily dose is below the smallest deliverable amount ({format_number(unit)} mg)"
        )
    frequency = administrations_per_day
    if frequency is None:
        frequency = params.default_administrations_per_day
        warnings.append(
            f"Frequency not stated: planned as {times_a_day(frequency)} (local policy default)."
        )
    if daily_dose_mg > params.labelled_max_daily_mg + _EPS:
        warnings.append(
            f"Current dose ({format_number(daily_dose_mg)} mg/day) is above the labelled "
            f"{format_number(params.labelled_max_daily_mg)} mg/day maximum."
        )
    target_units = 0
    if target_mg > 0:
        ratio = _units(target_mg, unit)
        if abs(ratio - round(ratio)) > _EPS:
            raise ValueError(
                f"target {format_number(target_mg)} mg/day cannot be given in whole "
                f"{format_number(unit)} mg amounts of this product"
            )
        target_units = round(ratio)

    policy = params.policy(risk)
    bound = max(policy.max_step_mg_per_day, unit)
    limits = _Limits(delivery, daily_dose_mg, frequency, params.min_dose_per_administration_mg)
    if target_units and limits.level(target_units, frequency) is None:
        raise ValueError(f"target {format_number(target_mg)} mg/day is not deliverable")

    planned = max(
        params.minimum_reductions,
        math.ceil((daily_dose_mg - target_mg) / policy.max_step_mg_per_day - _EPS),
    )
    levels: list[_Level] = []
    current_mg, current_frequency = daily_dose_mg, frequency
    # Aim each reduction at an even trajectory from today's dose to the target, so
    # rounding to deliverable doses never accumulates into a slower or faster taper.
    pace = (daily_dose_mg - target_mg) / planned
    # The first step cuts less than the fraction the service itself calls abrupt.
    first_bound = min(bound, daily_dose_mg * params.large_cut_fraction - 0.01)  # strictly less
    while current_mg > target_mg + _EPS:
        goal = max(target_mg, daily_dose_mg - (len(levels) + 1) * pace)
        level, within = _choose_next(
            current_mg, current_frequency, goal, pace, target_units,
            first_bound if not levels else bound, limits
        )
        if not within and not levels and first_bound < bound:
            warnings.append(
                f"The first step cuts {format_number(daily_dose_mg - level.units * unit)} of "
                f"{format_number(daily_dose_mg)} mg/day because this product cannot deliver "
                "a smaller reduction."
            )
        elif not within:
            warnings.append(
                f"One step exceeds the {format_number(bound)} mg/day step limit because "
                "this product cannot deliver a smaller reduction."
            )
        if not levels and level.units == target_units:
            # Nothing deliverable lies between today's dose and the target: hold the
            # highest deliverable dose first so the taper still lasts the minimum time.
            hold = _highest_level_at_most(daily_dose_mg, frequency, limits)
            if hold is not None and hold.units > target_units:
                level = hold
        levels.append(level)
        current_mg = level.units * unit
        current_frequency = level.frequency if level.units else current_frequency

    timed = levels[:-1]
    if not timed:
        raise ValueError("no deliverable dose lies between the current dose and the target")
    interval = max(policy.interval_days, math.ceil(policy.min_duration_days / len(timed)))
    steps = tuple(
        _step(i + 1, start + timedelta(days=i * interval), interval, level, delivery)
        for i, level in enumerate(timed)
    )
    target_date = start + timedelta(days=len(timed) * interval)
    warnings += _strength_warnings(product, delivery, [*levels[:-1], levels[-1]])
    maintenance = None
    if target_units:
        maintenance = _step(len(steps) + 1, target_date, None, levels[-1], delivery)
    return TaperPlan(
        kind="cut" if target_units else "stop",
        product=product,
        delivery=delivery,
        start_daily_mg=float(daily_dose_mg),
        start_administrations_per_day=frequency,
        target_mg=float(target_mg),
        risk=risk,
        interval_days=interval,
        max_step_mg_per_day=bound,
        steps=steps,
        maintenance=maintenance,
        target_date=target_date,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _highest_level_at_most(daily_mg: float, frequency: int, limits: _Limits) -> _Level | None:
    for units in range(math.floor(_units(daily_mg, limits.delivery.unit_mg) + _EPS), 0, -1):
        level = limits.level(units, frequency)
        if level is not None:
            return level
    return None


def _strength_warnings(product: Product, delivery: Delivery, levels: list[_Level]) -> list[str]:
    """Say so when the plan needs tablet/packet strengths other than the ordered one."""
    ordered = product.strength_mg
    if delivery.kind not in ("tablet", "granules") or ordered is None:
        return []
    used: set[float] = set()
    for level in levels:
        for units, _times in _split(level):
            counts = delivery.units_of(units * delivery.unit_mg)
            used.update(counts or ())
    others = sorted(used - {float(ordered)})
    if not others:
        return []
    listed = " and ".join(format_number(s) for s in others)
    noun = "tablets" if delivery.kind == "tablet" else "granule packets"
    return [
        f"The plan also needs {listed} mg {noun} as well as the ordered "
        f"{format_number(ordered)} mg; the order gives each dose in mg."
    ]
