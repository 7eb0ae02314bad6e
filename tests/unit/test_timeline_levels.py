"""The timeline's steps made linear for issue 26.2 answer as the passes they replaced:
the daily dose as a step function (level_at at any moment, the highest dose over a window:
cds/facts/events.py's reference), and the search for each order's successor. The growth
itself is measured by bench/growth.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from cds.facts.orders import RUNNING
from cds.facts.timeline import SAME_REGIMEN, Ambiguity, Segment, Timeline, _resolve_successors

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def old_level_at(timeline: Timeline, moment: datetime) -> float | None:
    total = 0.0
    for segment in timeline.segments:
        if segment.active_at(moment):
            if segment.level is None:
                if segment.order.dose.as_needed_only and timeline.has_schedule:
                    continue
                return None
            total += segment.level
    return round(total, 4)


def old_reference(timeline: Timeline, moment: datetime, window: timedelta) -> float | None:
    start = moment - window
    moments = [moment - timedelta(seconds=1), start]
    for segment in timeline.segments:
        for edge in (segment.start, segment.end, segment.held_since):
            if edge is not None and start <= edge < moment:
                moments.append(edge)
    known = [v for v in (old_level_at(timeline, m) for m in moments) if v is not None]
    return max(known) if known else None


_HOURS = st.integers(0, 60)
_MOMENT = st.one_of(st.none(), _HOURS.map(lambda h: T0 + timedelta(hours=h)))
_LEVEL = st.one_of(st.none(), st.sampled_from([0.0, 2.5, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
                                                 0.1, 0.2, 1 / 3, 20 / 3, 120.0]))


@st.composite
def segments(draw) -> Segment:
    order = SimpleNamespace(dose=SimpleNamespace(as_needed_only=draw(st.booleans())))
    held = draw(st.booleans())
    return Segment(order, draw(_MOMENT), draw(_MOMENT), draw(_LEVEL),
                   end_unknown=draw(st.booleans()), held=held,
                   held_since=draw(_MOMENT) if held else None)


@given(st.lists(segments(), max_size=12), st.lists(_HOURS, min_size=1, max_size=8),
       st.integers(1, 30))
@settings(max_examples=1500, deadline=None)
def test_levels_and_reference_answer_as_the_pass_over_every_segment(
        parts: list[Segment], hours: list[int], window_hours: int) -> None:
    timeline = Timeline("oral", T0 + timedelta(hours=30), parts, [])
    window = timedelta(hours=window_hours)
    for hour in hours:
        for moment in (T0 + timedelta(hours=hour), T0 + timedelta(hours=hour, seconds=-1)):
            assert timeline.level_at(moment) == old_level_at(timeline, moment)
            assert timeline.highest_level(moment - window, moment) == \
                old_reference(timeline, moment, window)


def old_resolve_successors(timeline: Timeline, inpatient: set[str], gap: timedelta) -> None:
    """cds/facts/timeline.py's _resolve_successors before issue 26.2, for comparison."""
    ordered = sorted(timeline.segments, key=lambda s: s.start or datetime.min.replace(
        tzinfo=timeline.now.tzinfo))
    for index, earlier in enumerate(ordered):
        for later in ordered[index + 1:]:
            if later.start is None or later.order is earlier.order:
                continue
            if earlier.start is not None and later.start - earlier.start < SAME_REGIMEN:
                continue
            if earlier.order.dose.as_needed_only != later.order.dose.as_needed_only:
                continue
            if earlier.end is not None and earlier.end <= later.start - gap:
                break
            if earlier.end is not None and earlier.end <= later.start:
                earlier.end = later.start
                break
            linked = later.order.prior_ref == earlier.order.ref
            lapsed = (earlier.order.validity_end is not None
                      and earlier.order.validity_end <= later.start)
            same_dose = (earlier.level is not None and later.level is not None
                         and abs(earlier.level - later.level) < 1e-6)
            running = earlier.order.status in RUNNING and earlier.end is None \
                and not earlier.end_unknown
            admission = bool(inpatient & set(later.order.categories)
                             and not inpatient & set(earlier.order.categories))
            if not (linked or lapsed or same_dose or admission) and running \
                    and later.order.status in RUNNING:
                timeline.ambiguity = Ambiguity((earlier.order,), later.order,
                                               None)
            earlier.end, earlier.end_unknown = later.start, False
            earlier.end_estimated = earlier.end_estimated and not linked
            break


_MINUTES = st.one_of(st.none(), st.integers(0, 600).map(lambda m: T0 + timedelta(minutes=m)))


@st.composite
def orders_segments(draw) -> list[Segment]:
    count = draw(st.integers(0, 10))
    orders = [SimpleNamespace(
        ref=f"MedicationRequest/{i}", prior_ref=draw(st.sampled_from(
            [None, *(f"MedicationRequest/{j}" for j in range(count))])),
        status=draw(st.sampled_from(["active", "on-hold", "stopped", "completed", "unknown"])),
        validity_end=draw(_MINUTES), categories=draw(st.sampled_from([(), ("inpatient",)])),
        dose=SimpleNamespace(as_needed_only=draw(st.booleans())))
        for i in range(count)]
    parts = []
    for order in orders:
        for _ in range(draw(st.integers(1, 2))):  # a schedule in pieces, now and then
            parts.append(Segment(order, draw(_MINUTES), draw(_MINUTES),
                                 draw(st.sampled_from([None, 10.0, 20.0])),
                                 end_unknown=draw(st.booleans()),
                                 end_estimated=draw(st.booleans())))
    return draw(st.permutations(parts))


def _state(timeline: Timeline):
    ambiguity = timeline.ambiguity
    return ([(s.order.ref, s.start, s.end, s.end_unknown, s.end_estimated)
             for s in timeline.segments],
            ambiguity and ([o.ref for o in ambiguity.replaced], ambiguity.new.ref))


@given(orders_segments(), st.integers(0, 180))
@settings(max_examples=1000, deadline=None)
def test_successors_are_resolved_as_by_the_pass_over_every_later_segment(
        parts: list[Segment], gap_minutes: int) -> None:
    gap = timedelta(minutes=gap_minutes)
    new = Timeline("oral", T0 + timedelta(hours=5), copy.deepcopy(parts), [])
    old = Timeline("oral", T0 + timedelta(hours=5), copy.deepcopy(parts), [])
    _resolve_successors(new, {"inpatient"}, gap)
    old_resolve_successors(old, {"inpatient"}, gap)
    assert _state(new) == _state(old)
