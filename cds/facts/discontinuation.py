"""Discontinuation events: a draft stop or large cut, an order that ended, an omission.

Each event carries the orders that show it. `entered-in-error` orders never reach here
(see orders.NEVER_COUNTS), so they are never a discontinuation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cds.facts.exposure import course_of, exposure_days, stepped_down_to
from cds.facts.orders import ACTIVE_STATUSES, ENDED_STATUSES, BaclofenOrder
from cds.product import Product
from rules import Knowledge

# "intrathecal" is the standing intrathecal course (no stop on record), see cds/facts.
EventKind = Literal["stop", "cut", "ended", "omission", "intrathecal"]
DRAFT_HOOKS = ("order-sign", "order-select")
HISTORY_HOOKS = ("patient-view", "encounter-start")
TRANSITION_HOOKS = ("encounter-start", "encounter-discharge")
ROUTE_GROUPS = ("oral", "intrathecal")


@dataclass
class Discontinuation:
    """One way baclofen is being, or has been, stopped or sharply reduced."""

    event_id: str
    kind: EventKind
    route: str  # "oral" | "intrathecal"
    at: datetime | None  # when it happened or takes effect
    signs_from: datetime  # withdrawal signs observed from here on are read with it
    current_daily: float | None  # before the event: mg/day oral, mcg/day intrathecal
    target_daily: float | None  # after it: 0 for a stop
    dose_unit: str
    product: Product
    administrations_per_day: float | None
    exposure_days: float | None
    course: list[BaclofenOrder]
    evidence: list[BaclofenOrder]
    draft_order: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dose_known(self) -> bool:
        return self.current_daily is not None

    @property
    def cut_fraction(self) -> float | None:
        if not self.current_daily or self.target_daily is None:
            return None
        return 1 - self.target_daily / self.current_daily


def _event(kind: EventKind, route: str, anchor: BaclofenOrder, course: list[BaclofenOrder],
           *, at: datetime, signs_from: datetime, current_daily: float | None,
           target_daily: float | None, evidence: list[BaclofenOrder],
           draft_order: dict | None = None) -> Discontinuation:
    """An event whose dose unit, product, frequency and exposure come from its anchor order
    and the course of orders leading to it."""
    return Discontinuation(
        event_id=f"{kind}-{route}",
        kind=kind,
        route=route,
        at=at,
        signs_from=signs_from,
        current_daily=current_daily,
        target_daily=target_daily,
        dose_unit=anchor.dose.unit,
        product=anchor.product,
        administrations_per_day=anchor.dose.administrations_per_day,
        exposure_days=exposure_days(course, at),
        course=course,
        evidence=evidence,
        draft_order=draft_order,
    )


def find_discontinuations(hook: str, context: dict, orders: list[BaclofenOrder],
                          now: datetime, knowledge: Knowledge) -> list[Discontinuation]:
    events: list[Discontinuation] = []
    if hook in DRAFT_HOOKS:
        events += [e for g in ROUTE_GROUPS if (e := _draft_event(g, orders, now, knowledge))]
    if hook in HISTORY_HOOKS:
        events += [e for g in ROUTE_GROUPS if (e := _ended_event(g, orders, now, knowledge))]
    if hook in TRANSITION_HOOKS:
        encounter_id = context.get("encounterId") if isinstance(context, dict) else None
        if isinstance(encounter_id, str):
            event = _omission_event(hook, encounter_id, orders, now, knowledge)
            events += [event] if event else []
    return events


def _sum(doses: list[float | None]) -> float | None:
    return None if any(d is None for d in doses) else float(sum(doses))  # type: ignore[arg-type]


def _taper_final_max(group: str, knowledge: Knowledge) -> float:
    key = "intrathecal_taper_final_max_mcg_per_day" if group == "intrathecal" \
        else "taper_final_max_mg_per_day"
    return knowledge.threshold(key)


def _recent(now: datetime, knowledge: Knowledge) -> datetime:
    return now - timedelta(hours=knowledge.threshold("recent_sign_hours"))


def _is_current(order: BaclofenOrder, now: datetime) -> bool:
    return (not order.is_draft and order.status in ACTIVE_STATUSES
            and (order.end is None or order.end >= now))


def _draft_event(group: str, orders: list[BaclofenOrder], now: datetime,
                 knowledge: Knowledge) -> Discontinuation | None:
    drafts = [o for o in orders if o.is_draft and o.route_group == group]
    if not drafts:
        return None
    records = [o for o in orders if o.route_group == group and _is_current(o, now)]
    record_refs = {r.ref for r in records}
    stops = [d for d in drafts if d.is_stop_marker]
    new = [d for d in drafts if not d.is_stop_marker]
    # A stop draft that names no recorded order (new id, no priorPrescription) still stops
    # this route's baclofen: counting it beside the records would double the current dose
    # and turn a stop into a "cut" (conservative: it stops every current order).
    unlinked_stops = [d for d in stops
                      if d.ref not in record_refs and d.prior_ref not in record_refs]
    current = records or unlinked_stops
    if not current:
        return None  # not on baclofen by this route: a new start, not a discontinuation
    if any(n.dose.is_taper_schedule for n in new):
        return None  # the draft itself is a taper plan
    replaced = {d.ref for d in drafts} | {d.prior_ref for d in drafts if d.prior_ref}
    if unlinked_stops:
        replaced |= record_refs
    remaining = [r for r in records if r.ref not in replaced]
    current_total = _sum([o.dose.amount for o in current])
    anchor = max(current, key=lambda o: (o.start is not None, o.start or now, o.ref))
    course = course_of(anchor, orders, knowledge.threshold("max_course_gap_days"))
    if not remaining and not new:
        kind: EventKind = "stop"
        target: float | None = 0.0
        if stepped_down_to(course, current_total, _taper_final_max(group, knowledge)):
            return None  # the last step of a taper
    else:
        target = _sum([o.dose.amount for o in remaining + new])
        if current_total is None or target is None:
            return None  # a change of unknown size is not called abrupt
        if target > (1 - knowledge.threshold("large_cut_fraction")) * current_total:
            return None
        kind = "stop" if target == 0 else "cut"
    evidence = stops + new
    return _event(kind, group, anchor, course, at=now, signs_from=_recent(now, knowledge),
                  current_daily=current_total, target_daily=target, evidence=evidence,
                  draft_order=evidence[0].resource if evidence else None)


def _ended_event(group: str, orders: list[BaclofenOrder], now: datetime,
                 knowledge: Knowledge) -> Discontinuation | None:
    if any(_is_current(o, now) for o in orders):
        return None  # baclofen continues (by some route): nothing ended
    lookback_start = now - timedelta(days=knowledge.threshold("lookback_days"))
    ended: list[tuple[datetime, BaclofenOrder]] = []
    for order in orders:
        if order.is_draft or order.route_group != group:
            continue
        if order.end is not None and order.end <= now:
            end = order.end
        elif order.status in ENDED_STATUSES and order.start is not None:
            # why: no end recorded; it ended after it started, so a recent start bounds it.
            end = order.start
        else:
            continue
        if order.status not in ENDED_STATUSES and order.status not in ACTIVE_STATUSES:
            continue
        if end >= lookback_start:
            ended.append((end, order))
    if not ended:
        return None
    end, anchor = max(ended, key=lambda pair: (pair[0], pair[1].ref))
    course = course_of(anchor, orders, knowledge.threshold("max_course_gap_days"))
    if stepped_down_to(course, anchor.dose.amount, _taper_final_max(group, knowledge)):
        return None
    return _event("ended", group, anchor, course, at=end, signs_from=end,
                  current_daily=anchor.dose.amount, target_daily=0.0, evidence=[anchor])


def _omission_event(hook: str, encounter_id: str, orders: list[BaclofenOrder], now: datetime,
                    knowledge: Knowledge) -> Discontinuation | None:
    """Oral home baclofen with no baclofen among this encounter's orders.

    Intrathecal baclofen is left out: the pump keeps delivering whatever is ordered, and
    pump trouble is caught by the intrathecal sign rules instead.
    """
    this_encounter = f"Encounter/{encounter_id}"
    encounter_category = "inpatient" if hook == "encounter-start" else "discharge"

    def belongs_to_encounter(o: BaclofenOrder) -> bool:
        return o.encounter_ref == this_encounter or encounter_category in o.categories

    if any(belongs_to_encounter(o) for o in orders if o.status not in ("stopped", "cancelled")):
        return None
    home = [o for o in orders if o.route_group == "oral" and _is_current(o, now)
            and not belongs_to_encounter(o)]
    if not home:
        return None
    anchor = home[-1]
    course = course_of(anchor, orders, knowledge.threshold("max_course_gap_days"))
    return _event("omission", "oral", anchor, course, at=now,
                  signs_from=_recent(now, knowledge),
                  current_daily=_sum([o.dose.amount for o in home]), target_daily=0.0,
                  evidence=home)
