"""How long a patient has been on baclofen: the chain of earlier orders of the same route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cds.facts.orders import BaclofenOrder
from cds.facts.timeutil import days_between

_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def course_of(anchor: BaclofenOrder, orders: list[BaclofenOrder], max_gap_days: float
              ) -> list[BaclofenOrder]:
    """The anchor and the earlier orders continuous with it, oldest first.

    Orders join when linked by priorPrescription, or when an earlier order (of the same
    route group) ended no more than `max_gap_days` before the next one started; an
    earlier order without an end date is taken to have run until its successor.
    Cancelled orders never started, so they do not extend a course.
    """
    peers = [o for o in orders if o.route_group == anchor.route_group and o is not anchor
             and o.status != "cancelled" and not o.is_draft]
    chain = [anchor]
    current_start = anchor.start
    linked = anchor.prior_ref
    dated = sorted((o for o in peers if o.start or o.ref == linked),
                   key=lambda o: (o.start or _FAR_FUTURE, o.ref), reverse=True)
    for order in dated:
        if order.ref == linked:
            chain.append(order)
        elif current_start is None or order.start is None or order.start > current_start:
            continue
        elif order.end is None or order.end >= current_start - timedelta(days=max_gap_days):
            chain.append(order)
        else:
            continue
        current_start = min(current_start or order.start, order.start or current_start)
        linked = order.prior_ref
    return chain[::-1]


def exposure_days(course: list[BaclofenOrder], until: datetime) -> float | None:
    """Days from the earliest start in the course to `until`; None when no start is known."""
    starts = [o.start for o in course if o.start is not None]
    if not starts:
        return None
    return max(0.0, days_between(min(starts), until))


def stepped_down_to(course: list[BaclofenOrder], final_daily: float | None,
                    taper_final_max: float) -> bool:
    """Did the course step down like a taper to at most `taper_final_max` per day?

    Either an earlier order had a higher known dose than the last, or the last order is
    itself a sequenced schedule that only goes down.
    """
    last = course[-1]
    if last.dose.is_taper_schedule:
        return last.dose.steps[-1] <= taper_final_max
    if final_daily is None or final_daily > taper_final_max:
        return False
    earlier = [o.dose.amount for o in course[:-1] if o.dose.amount is not None]
    return any(dose > final_daily for dose in earlier)
