"""The plan a patient handout shows, and its compact JSON form inside the link.

A handout shows exactly what the card planned: each step's dates and, for every time of
day, the dose with the tablets (or packets, or mL) that make it. It is built from the
card's own `TaperPlan` (cds/taper/planner.py) or pump reading, never re-planned, so a
later change of rules/ cannot change a handout already linked. Nothing here comes from
the request's free text, and nothing names the patient.

`from_payload` reads the JSON back strictly: the link is signed, but a payload that does
not describe a possible plan is refused all the same (`MalformedPlan`), never shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from cds.taper.planner import MAX_ADMINISTRATIONS_PER_DAY, MAX_DAILY_DOSE_MG, TaperPlan

PAYLOAD_VERSION = 1
Form = Literal["tablet", "granules", "solution", "suspension", "mg"]
FORMS: tuple[str, ...] = ("tablet", "granules", "solution", "suspension", "mg")
MAX_STEPS = 100  # a 1000 mg/day plan has about 70; anything longer is not ours
MAX_STEP_DAYS = 366
MAX_UNITS_PER_DOSE = 20
_TOLERANCE = 1e-3  # mg; doses are planned in thousandths of a mg


class MalformedPlan(ValueError):
    """The payload does not describe a plan this service could have made."""


@dataclass(frozen=True)
class Dose:
    """One administration: `mg`, made of `units` ((strength in mg, count), largest first)
    for tablets or granule packets, or `ml` of a liquid."""

    mg: float
    units: tuple[tuple[float, int], ...] = ()
    ml: float | None = None


@dataclass(frozen=True)
class Step:
    """One dose level from `start` for `days` days (None: it goes on, the new dose of a cut).
    `doses` holds one entry per administration, in the order of the day."""

    start: date
    days: int | None
    doses: tuple[Dose, ...]

    @property
    def end(self) -> date | None:
        return None if self.days is None else self.start + timedelta(days=self.days - 1)

    @property
    def daily_mg(self) -> float:
        return round(sum(dose.mg for dose in self.doses), 3)


@dataclass(frozen=True)
class TaperCalendar:
    form: Form
    concentration_mg_per_ml: float | None  # liquids only
    via_tube: bool
    steps: tuple[Step, ...]
    stop: date | None  # first day without baclofen; None when the last step goes on

    def dose_on(self, day: date) -> Step | None:
        """The step in force on `day` (None before the plan and from the stop date on)."""
        for step in self.steps:
            if step.start <= day and (step.end is None or day <= step.end):
                return step
        return None


@dataclass(frozen=True)
class PumpRefill:
    refill_by: date | None  # the day the reservoir reaches its alarm volume, if computed


@dataclass(frozen=True)
class HandoutPlan:
    kind: Literal["taper", "pump"]
    taper: TaperCalendar | None = None
    pump: PumpRefill | None = None


# ---------------------------------------------------------------- from the card


def from_taper_plan(plan: TaperPlan, via_tube: bool) -> HandoutPlan:
    """The calendar of a drawn taper, dose by dose as the card's table and order give it."""
    delivery = plan.delivery
    if delivery.kind == "liquid":
        form: Form = "suspension" if plan.product.form == "suspension" else "solution"
    elif delivery.kind in ("tablet", "granules"):
        form = delivery.kind  # type: ignore[assignment]
    else:
        form = "mg"
    steps = [*plan.steps, *([plan.maintenance] if plan.maintenance else [])]
    calendar = TaperCalendar(
        form=form,
        concentration_mg_per_ml=delivery.concentration_mg_per_ml if form in (
            "solution", "suspension") else None,
        via_tube=via_tube,
        steps=tuple(Step(step.start, step.days, tuple(
            dose for part in step.parts
            for dose in [_dose(delivery, part.dose_mg)] * part.times_per_day))
            for step in steps),
        stop=None if plan.maintenance is not None else plan.target_date,
    )
    return HandoutPlan(kind="taper", taper=calendar)


def _dose(delivery: Any, mg: float) -> Dose:
    if delivery.kind in ("tablet", "granules"):
        units = delivery.units_of(mg) or {}
        return Dose(mg=round(mg, 3), units=tuple(sorted(units.items(), reverse=True)))
    if delivery.kind == "liquid":
        return Dose(mg=round(mg, 3), ml=delivery.ml_of(mg))
    return Dose(mg=round(mg, 3))


def from_pump(depletion_at: datetime | None) -> HandoutPlan:
    """A pump handout: the refill date when the reservoir estimate gives one."""
    return HandoutPlan(kind="pump", pump=PumpRefill(
        refill_by=depletion_at.date() if depletion_at is not None else None))


# ---------------------------------------------------------------- payload


def to_payload(plan: HandoutPlan, language: str) -> dict[str, Any]:
    """Compact JSON for the link: short keys, dates as ISO strings."""
    payload: dict[str, Any] = {"v": PAYLOAD_VERSION, "k": plan.kind, "l": language}
    if plan.taper is not None:
        taper = plan.taper
        payload.update({
            "f": taper.form,
            "c": taper.concentration_mg_per_ml,
            "t": taper.via_tube,
            "s": [[step.start.isoformat(), step.days, [_dose_json(d) for d in step.doses]]
                  for step in taper.steps],
            "e": taper.stop.isoformat() if taper.stop else None,
        })
    if plan.pump is not None:
        payload["r"] = plan.pump.refill_by.isoformat() if plan.pump.refill_by else None
    return payload


def _dose_json(dose: Dose) -> list[Any]:
    if dose.units:
        return [dose.mg, [[strength, count] for strength, count in dose.units]]
    if dose.ml is not None:
        return [dose.mg, dose.ml]
    return [dose.mg]


def from_payload(payload: Any) -> tuple[HandoutPlan, str]:
    """(plan, language) from the link's JSON; MalformedPlan for anything else."""
    obj = _mapping(payload, "payload")
    if obj.get("v") != PAYLOAD_VERSION:
        raise MalformedPlan("unknown payload version")
    language = obj.get("l")
    if not isinstance(language, str) or not 2 <= len(language) <= 16:
        raise MalformedPlan("language")
    kind = obj.get("k")
    if kind == "pump":
        _keys(obj, {"v", "k", "l", "r"})
        refill = obj.get("r")
        return HandoutPlan(kind="pump", pump=PumpRefill(
            refill_by=None if refill is None else _date(refill, "refill date"))), language
    if kind != "taper":
        raise MalformedPlan("kind")
    _keys(obj, {"v", "k", "l", "f", "c", "t", "s", "e"})
    form = obj.get("f")
    if form not in FORMS:
        raise MalformedPlan("form")
    liquid = form in ("solution", "suspension")
    concentration = obj.get("c")
    if liquid:
        concentration = _number(concentration, "concentration", 0.01, 100.0)
    elif concentration is not None:
        raise MalformedPlan("a concentration for a form that is not a liquid")
    via_tube = obj.get("t")
    if not isinstance(via_tube, bool):
        raise MalformedPlan("tube")
    raw_steps = obj.get("s")
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        raise MalformedPlan("steps")
    steps = [_step(raw, form, concentration, i == len(raw_steps) - 1)
             for i, raw in enumerate(raw_steps)]
    for before, after in zip(steps, steps[1:], strict=False):
        if before.end is None or after.start != before.end + timedelta(days=1):
            raise MalformedPlan("steps must follow one another day after day")
        if after.daily_mg > before.daily_mg + _TOLERANCE:
            raise MalformedPlan("a taper never raises the dose")
    stop = obj.get("e")
    if stop is None:
        if steps[-1].days is not None:
            raise MalformedPlan("a plan without a stop date ends with a dose that goes on")
    else:
        stop_date = _date(stop, "stop date")
        if steps[-1].end is None or stop_date != steps[-1].end + timedelta(days=1):
            raise MalformedPlan("the stop date must follow the last step")
        stop = stop_date
    return HandoutPlan(kind="taper", taper=TaperCalendar(
        form=form, concentration_mg_per_ml=concentration, via_tube=via_tube,
        steps=tuple(steps), stop=stop)), language


def _step(raw: Any, form: str, concentration: float | None, last: bool) -> Step:
    if not isinstance(raw, list) or len(raw) != 3:
        raise MalformedPlan("step")
    start = _date(raw[0], "step start")
    days = raw[1]
    if days is None:
        if not last:
            raise MalformedPlan("only the last step may go on")
    elif not _whole(days) or not 1 <= days <= MAX_STEP_DAYS:
        raise MalformedPlan("step days")
    doses = raw[2]
    if not isinstance(doses, list) or not 1 <= len(doses) <= MAX_ADMINISTRATIONS_PER_DAY:
        raise MalformedPlan("doses per day")
    step = Step(start, days, tuple(_dose_from(d, form, concentration) for d in doses))
    if step.daily_mg > MAX_DAILY_DOSE_MG:
        raise MalformedPlan("daily dose")
    return step


def _dose_from(raw: Any, form: str, concentration: float | None) -> Dose:
    if not isinstance(raw, list) or not raw:
        raise MalformedPlan("dose")
    mg = _number(raw[0], "dose", 0.001, MAX_DAILY_DOSE_MG)
    if form in ("tablet", "granules"):
        if len(raw) != 2 or not isinstance(raw[1], list) or not 1 <= len(raw[1]) <= 4:
            raise MalformedPlan("tablets of a dose")
        units = []
        for unit in raw[1]:
            if not isinstance(unit, list) or len(unit) != 2:
                raise MalformedPlan("tablets of a dose")
            strength = _number(unit[0], "strength", 0.1, 100.0)
            count = unit[1]
            if not _whole(count) or not 1 <= count <= MAX_UNITS_PER_DOSE:
                raise MalformedPlan("tablet count")
            units.append((strength, int(count)))
        if abs(sum(s * c for s, c in units) - mg) > _TOLERANCE:
            raise MalformedPlan("the tablets do not add up to the dose")
        return Dose(mg=mg, units=tuple(units))
    if form in ("solution", "suspension"):
        if len(raw) != 2:
            raise MalformedPlan("mL of a dose")
        ml = _number(raw[1], "mL", 0.01, MAX_DAILY_DOSE_MG)
        if concentration is None or abs(ml * concentration - mg) > _TOLERANCE:
            raise MalformedPlan("the mL do not match the dose")
        return Dose(mg=mg, ml=ml)
    if len(raw) != 1:
        raise MalformedPlan("dose")
    return Dose(mg=mg)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPlan(what)
    return value


def _keys(obj: dict[str, Any], allowed: set[str]) -> None:
    if set(obj) != allowed:
        raise MalformedPlan("unexpected or missing fields")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise MalformedPlan(what)
    return float(value)


def _date(value: Any, what: str) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise MalformedPlan(what)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise MalformedPlan(what) from None
