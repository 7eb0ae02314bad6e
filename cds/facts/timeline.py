"""The baclofen timeline of one route: which orders delivered baclofen when, at what dose.

Built from every MedicationRequest of the route (any status) and, at order-select and
order-sign, the draft orders applied at the request's time. What the record says is
read as FHIR R4 defines it:
- an active or on-hold order runs until its dosage's planned end (boundsPeriod,
  boundsDuration); a lapsed dispenseRequest.validityPeriod does not end it;
- a stopped or completed order ended at its planned end when that came first, otherwise
  at meta.lastUpdated (an estimate, said so on the card), otherwise at a time not on record;
- an on-hold order delivers nothing since it was held (meta.lastUpdated, estimated);
- a later order replaces an earlier one of the route when it names it
  (priorPrescription), renews it (same dose, or the earlier prescription had lapsed),
  or, unlinked and at another dose, when both stay active: that last reading is
  ambiguous, so the timeline keeps the replacement reading (the one that does not hide
  a cut) and records the other (the sum) for the card to name;
- administrations after an order's end show the course continued.
As-needed orders are not a daily dose unless administrations show regular use.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fractions import Fraction

from cds.facts.orders import ENDED, RUNNING, Administration, Order, step_bounds
from cds.facts.timeutil import days_between
from cds.knowledge import Knowledge

# Orders authored this close together are parts of one regimen, not a replacement.
SAME_REGIMEN = timedelta(hours=1)
_EPS = 1e-6


@dataclass
class Segment:
    """One order's delivery on the timeline."""

    order: Order
    start: datetime | None
    end: datetime | None  # when it stopped delivering; None while it runs
    level: float | None  # the daily dose it contributes (None: unknown)
    end_estimated: bool = False
    end_unknown: bool = False  # it ended, but when is not on record
    held_since: datetime | None = None
    held: bool = False
    held_estimated: bool = False
    draft: bool = False  # placed or changed by the orders being signed
    scheduled_end: bool = False  # an end date the draft sets in the future
    changed_by: Order | None = None  # the draft that stopped, held or replaced it

    @property
    def unreadable_dose_replaced(self) -> bool:
        """A running scheduled order of unreadable dose, changed by a draft whose dose reads:
        whether the draft keeps, raises or cuts the dose cannot be told. A draft that is
        itself a taper schedule is a chosen reduction, judged by its pace instead."""
        draft = self.changed_by
        return (draft is not None and not draft.is_stop_marker and draft.dose.known
                and not draft.dose.is_taper_schedule
                and not self.order.is_draft and self.level is None
                and not self.order.dose.as_needed_only and not self.held)

    def active_at(self, moment: datetime) -> bool:
        if self.start is not None and moment < self.start:
            return False
        if self.end is not None and moment >= self.end:
            return False
        if self.end is None and self.end_unknown:
            return False
        return not (self.held and (self.held_since is None or moment >= self.held_since))


@dataclass(frozen=True)
class Step:
    """A change of the route's daily dose at one moment."""

    at: datetime | None
    before: float | None
    after: float | None
    estimated: bool = False
    draft: bool = False
    scheduled_end: bool = False
    hold: bool = False
    orders: tuple[Order, ...] = ()

    @property
    def is_drop(self) -> bool:
        return (self.before is not None and self.after is not None
                and self.after < self.before - _EPS) or (self.before is None
                                                         and self.after == 0)


@dataclass
class Ambiguity:
    """Two readings of the record, both named on the card.

    `addition`: an unlinked new order beside a running one: replaced, or added?
    `duplicate`: two unlinked orders of the same dose, one of them being stopped: one regimen
    listed twice (nothing changes), or two supplies (the total drops by the stopped one).
    The timeline keeps the reading that does not hide a drop."""

    replaced: tuple[Order, ...]
    new: Order
    addition_total: float | None
    kind: str = "addition"


@dataclass
class PrnUse:
    """What administrations say about an as-needed-only course."""

    max_per_day: float | None
    days_given: int
    window_days: int
    regular: bool | None  # None: no administrations on record to judge by
    average_given: float | None
    # Without administrations: the days of use the dispensed supply allows at most
    # (one dose a day of use), over `window_days` of the order's life.
    supply_days: int | None = None


@dataclass
class Timeline:
    route: str
    now: datetime
    segments: list[Segment]
    administrations: list[Administration]
    ambiguity: Ambiguity | None = None
    prn: PrnUse | None = None
    notes: list[str] = field(default_factory=list)
    # Unlinked same-dose orders both still active in the record, read as one regimen
    # (the later renewing the earlier): (earlier, later).
    duplicates: list[tuple[Segment, Segment]] = field(default_factory=list)
    # Every unlinked pair both still active in the record where the timeline reads the
    # later as replacing the earlier (same dose or not): (earlier, later).
    listings: list[tuple[Segment, Segment]] = field(default_factory=list)
    # Drafts that stop a second listing of what still runs: they change nothing.
    withdrawn: set[str] = field(default_factory=set)
    _levels: _LevelIndex | None = field(default=None, init=False, repr=False, compare=False)

    def level_at(self, moment: datetime) -> float | None:
        """The scheduled daily dose at `moment` (None: unknown). Where the route has a
        scheduled course, an as-needed order of unknown use adds nothing: it must not hide
        a drop of the schedule (the card names it beside the new dose)."""
        return self._level_index().at(moment)

    def highest_level(self, start: datetime, end: datetime) -> float | None:
        """The highest known daily dose over [start, end) (None: unknown throughout)."""
        return self._level_index().highest(start, end)

    def _level_index(self) -> _LevelIndex:
        # Built on first use: the segments are final once build_timeline returns.
        if self._levels is None or self._levels.segment_count != len(self.segments):
            self._levels = _LevelIndex(self.segments, self.has_schedule)
        return self._levels

    @property
    def has_schedule(self) -> bool:
        return any(not s.order.dose.as_needed_only for s in self.segments)

    def steps(self) -> list[Step]:
        """Every change of the daily dose, oldest first."""
        moments: dict[datetime, list[Segment]] = {}
        for s in self.segments:
            for moment in (s.start, s.end, s.held_since if s.held else None):
                if moment is not None:
                    moments.setdefault(moment, []).append(s)
        steps: list[Step] = []
        for moment in sorted(moments):
            before = self.level_at(moment - timedelta(seconds=1))
            after = self.level_at(moment)
            if before == after:
                continue
            touched = moments[moment]
            ending = [s for s in touched if s.end == moment or (s.held and s.held_since == moment)]
            starting = [s for s in touched if s.start == moment]
            # Drafted: a drafted order's own start or end, or an end a draft set.
            drafted = any(s.order.is_draft for s in starting) or any(
                s.order.is_draft or s.changed_by is not None for s in ending)
            steps.append(Step(
                at=moment, before=before, after=after,
                estimated=any(s.end_estimated or s.held_estimated for s in ending),
                draft=drafted,
                scheduled_end=any(s.scheduled_end for s in ending),
                hold=any(s.held and s.held_since == moment for s in touched),
                orders=tuple(dict.fromkeys([*(s.changed_by for s in ending if s.changed_by),
                                            *(s.order for s in touched)]))))
        return steps

    def running(self) -> list[Segment]:
        return [s for s in self.segments if s.active_at(self.now)]

    def held_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.held and (s.end is None or s.end > self.now)]

    def unknown_stops(self) -> list[Segment]:
        return [s for s in self.segments if s.end_unknown]


class _LevelIndex:
    """level_at as a step function of time: the moments where the daily dose may change
    and its value from each on, so each question costs a binary search instead of a pass
    over every segment (a record of 10,000 orders asked it for every edge of every
    order: quadratic, issue 26.2). A segment delivers over [start, end or held_since);
    the sums are exact (fractions) and rounded as level_at always rounded them."""

    def __init__(self, segments: list[Segment], has_schedule: bool) -> None:
        self.segment_count = len(segments)
        # moment -> (change of the dose, change of the count of unknown doses delivering)
        changes: dict[datetime, list[tuple[Fraction, int]]] = {}
        level, unknown = Fraction(0), 0
        for segment in segments:
            end = segment.end
            if end is None and segment.end_unknown:
                continue  # never delivering (active_at)
            if segment.held:
                if segment.held_since is None:
                    continue
                end = segment.held_since if end is None else min(end, segment.held_since)
            if segment.start is not None and end is not None and end <= segment.start:
                continue
            if segment.level is None and segment.order.dose.as_needed_only and has_schedule:
                continue  # adds nothing (level_at)
            known = segment.level is not None and math.isfinite(segment.level)
            # A level that is no finite number cannot be summed exactly: read as unknown.
            change = (Fraction(segment.level), 0) if known else (Fraction(0), 1)
            if segment.start is None:
                level, unknown = level + change[0], unknown + change[1]
            else:
                changes.setdefault(segment.start, []).append(change)
            if end is not None:
                changes.setdefault(end, []).append((-change[0], -change[1]))
        self.first = self._value(level, unknown)  # before every change
        self.moments = sorted(changes)
        self.values: list[float | None] = []
        for moment in self.moments:
            for dose, count in changes[moment]:
                level, unknown = level + dose, unknown + count
            self.values.append(self._value(level, unknown))
        self._maxima: list[list[float]] | None = None

    @staticmethod
    def _value(level: Fraction, unknown: int) -> float | None:
        return None if unknown else round(float(level), 4)

    def at(self, moment: datetime) -> float | None:
        index = bisect_right(self.moments, moment) - 1
        return self.first if index < 0 else self.values[index]

    def highest(self, start: datetime, end: datetime) -> float | None:
        """The highest known value on [start, end): every value the function takes there
        (what level_at answered at `start` and at each edge inside, end excluded)."""
        low = bisect_right(self.moments, start) - 1
        high = bisect_left(self.moments, end) - 1
        best = float("-inf")
        if low < 0:
            best = self.first if self.first is not None else best
            low = 0
        if low <= high:
            best = max(best, self._range_max(low, high))
        return None if best == float("-inf") else best

    def _range_max(self, low: int, high: int) -> float:
        """max(values[low..high]), None read as -inf: a sparse table, built on first use."""
        if self._maxima is None:
            row = [float("-inf") if v is None else v for v in self.values]
            self._maxima = [row]
            width = 1
            while 2 * width <= len(row):
                previous = self._maxima[-1]
                self._maxima.append([max(previous[i], previous[i + width])
                                     for i in range(len(row) - 2 * width + 1)])
                width *= 2
        power = (high - low + 1).bit_length() - 1
        row = self._maxima[power]
        return max(row[low], row[high - (1 << power) + 1])


def build_timeline(route: str, orders: list[Order], administrations: list[Administration],
                   now: datetime, knowledge: Knowledge) -> Timeline:
    mine = [o for o in orders if o.route == route]
    given = [a for a in administrations if a.route == route]
    last_given = _last_given_by_request(given)
    segments = [segment for o in mine
                if not o.is_draft and o.status in (*RUNNING, *ENDED, "unknown")
                and not o.dose.single_dose
                for segment in _record_segments(_segment(o, last_given, now, knowledge))]
    timeline = Timeline(route, now, segments, given)
    gap = timedelta(hours=knowledge.threshold("replacement_gap_hours"))
    inpatient = set(knowledge.order_categories["inpatient"])
    # A draft carrying only the medication of this service's own suggestion is that
    # suggestion (the taper from the current dose, or the current order continued): it
    # changes nothing when signed (cds.suggested_orders).
    drafts = [o for o in mine if o.is_draft and not o.dose.single_dose
              and o.medication_of_suggestion is None]
    _record_what_drafts_stop(timeline, drafts, now, inpatient)
    _resolve_successors(timeline, inpatient, gap)
    _apply_drafts(timeline, drafts, now, gap)
    timeline._levels = None  # the segments are final from here: index them on first use
    timeline.prn = _prn_use(timeline, knowledge)
    return timeline


def _last_given_by_request(given: list[Administration]) -> dict[str | None, datetime]:
    """The latest administration of each request reference (None: linked to none)."""
    latest: dict[str | None, datetime] = {}
    for administration in given:
        ref = administration.request_ref
        if ref not in latest or administration.at > latest[ref]:
            latest[ref] = administration.at
    return latest


def _segment(order: Order, last_given_by_request: dict[str | None, datetime], now: datetime,
             knowledge: Knowledge) -> Segment:
    level = order.dose.scheduled
    segment = Segment(order, order.start, None, level)
    if order.status in ENDED:
        planned = order.planned_end
        updated = order.last_updated
        if planned is not None and planned <= now and (
                updated is None or planned <= updated + timedelta(hours=1)):
            segment.end = planned
        elif updated is not None:
            segment.end, segment.end_estimated = updated, True
        elif order.validity_end is not None and order.validity_end <= now:
            # Completed or stopped with its prescription run out: the supply ended then.
            segment.end, segment.end_estimated = order.validity_end, True
        else:
            segment.end_unknown = True
    elif order.planned_end is not None:
        segment.end = order.planned_end
    if order.status == "on-hold":
        segment.held = True
        segment.held_since = order.last_updated
        segment.held_estimated = order.last_updated is not None
    # Doses given after the recorded end: the course went on (e.g. a lapsed prescription).
    # The latest dose given under this order, or under none (a dict, not a pass over
    # every administration per order: issue 26.2).
    linked = [at for at in (last_given_by_request.get(order.ref),
                            last_given_by_request.get(None)) if at is not None]
    last_given = max(linked) if linked else None
    continues = timedelta(hours=knowledge.threshold("administration_continues_hours"))
    given_after_end = last_given is not None and (
        segment.end_unknown or (segment.end is not None and last_given > segment.end))
    if given_after_end and not segment.held:
        if now - last_given <= continues and order.status not in ENDED:
            # A running order given recently continues, whatever its planned end said.
            segment.end, segment.end_unknown, segment.end_estimated = None, False, False
        else:
            segment.end = max(last_given, segment.end or last_given)
            segment.end_unknown, segment.end_estimated = False, True
    return segment


def _record_segments(whole: Segment) -> list[Segment]:
    """A recorded order whose sequenced steps carry their dates (a taper signed as one
    order) delivers step by step; its end, when earlier, cuts the schedule short."""
    steps = _dated_steps(whole.order, whole.start)
    if len(steps) < 2:
        return [whole]
    pieces = []
    for begin, end, level in steps:
        if whole.end is not None and begin is not None and begin >= whole.end:
            break
        last = whole.end if end is None or (whole.end is not None and whole.end < end) else end
        piece = Segment(whole.order, begin, last, level, end_estimated=whole.end_estimated,
                        held_since=whole.held_since, held=whole.held,
                        held_estimated=whole.held_estimated)
        pieces.append(piece)
    if pieces and whole.end_unknown:
        pieces[-1].end, pieces[-1].end_unknown = None, True
    return pieces or [whole]


def _resolve_successors(timeline: Timeline, inpatient: set[str], gap: timedelta) -> None:
    """A later order of the route ends the earlier one it replaces (see module docstring)."""
    # An order without authoredOn came before the dated ones that follow it (a later
    # order naming it, or standing beside it, replaces it like any other).
    undated = datetime.min.replace(tzinfo=timeline.now.tzinfo)
    ordered = sorted(timeline.segments, key=lambda s: s.start or undated)
    # The later segments an earlier one is weighed against, found by binary search
    # instead of a pass over every later one (issue 26.2): of its own kind (an as-needed
    # order added beside a scheduled one replaces nothing), dated, and authored at least
    # SAME_REGIMEN after it (parts of one regimen are authored together); the other
    # steps of its own order's schedule are skipped a run at a time.
    kinds: dict[bool, tuple[list[int], list[datetime]]] = {}
    for index, segment in enumerate(ordered):
        positions, starts = kinds.setdefault(segment.order.dose.as_needed_only, ([], []))
        positions.append(index)
        starts.append(segment.start or undated)
    run_ends = {kind: _run_ends(ordered, positions) for kind, (positions, _) in kinds.items()}
    for index, earlier in enumerate(ordered):
        kind = earlier.order.dose.as_needed_only
        positions, starts = kinds[kind]
        first = bisect_right(positions, index)
        if earlier.start is None:
            first = bisect_right(starts, undated, lo=first)
        else:
            first = bisect_left(starts, earlier.start + SAME_REGIMEN, lo=first)
        for later in _others_from(ordered, positions, run_ends[kind], first, earlier.order):
            if later.start is None or later.order is earlier.order:
                continue  # undated, or the next step of the same order's schedule
            if earlier.end is not None and earlier.end <= later.start - gap:
                break
            if earlier.end is not None and earlier.end <= later.start:
                earlier.end = later.start  # ended just before its successor: a replacement
                break
            linked = later.order.prior_ref == earlier.order.ref
            lapsed = (earlier.order.validity_end is not None
                      and earlier.order.validity_end <= later.start)
            same_dose = (earlier.level is not None and later.level is not None
                         and abs(earlier.level - later.level) < _EPS)
            running = earlier.order.status in RUNNING and earlier.end is None \
                and not earlier.end_unknown
            # An inpatient order standing in for the home regimen during a stay.
            admission = bool(inpatient & set(later.order.categories)
                             and not inpatient & set(earlier.order.categories))
            if not (linked or lapsed or same_dose or admission) and running \
                    and later.order.status in RUNNING:
                timeline.ambiguity = Ambiguity((earlier.order,), later.order,
                                               _sum(earlier.level, later.level))
                timeline.listings.append((earlier, later))
            elif same_dose and not (linked or lapsed or admission) and running \
                    and later.order.status in RUNNING:
                timeline.duplicates.append((earlier, later))
                timeline.listings.append((earlier, later))
            earlier.end, earlier.end_unknown = later.start, False
            earlier.end_estimated = earlier.end_estimated and not linked
            break


def _steps_from(timeline: Timeline, order: Order, moment: datetime, draft: Order
                ) -> list[Segment]:
    """The segments of `order` a draft changes from `moment`: every step of a schedule
    written as one order, the one running then and those still to come (they never start).
    Returns the ones that began by then, for the caller to end."""
    steps = [s for s in timeline.segments if s.order is order]
    for later_step in [s for s in steps if s.start is not None and s.start > moment]:
        later_step.end, later_step.draft, later_step.changed_by = later_step.start, True, draft
    return [s for s in steps if s.start is None or s.start <= moment]


def _others_from(ordered: list[Segment], positions: list[int], run_ends: list[int],
                 first: int, order: Order) -> Iterator[Segment]:
    """ordered[p] for p in positions[first:], except segments of `order`: a schedule
    written as thousands of dated steps is passed over a run of its steps at a time,
    not step by step for each of them (quadratic)."""
    at = first
    while at < len(positions):
        segment = ordered[positions[at]]
        if segment.order is order:
            at = run_ends[at]
            continue
        yield segment
        at += 1


def _run_ends(ordered: list[Segment], positions: list[int]) -> list[int]:
    """For each index into `positions`, the index just past the run of segments of the
    same order that it belongs to."""
    ends = [0] * len(positions)
    for at in range(len(positions) - 1, -1, -1):
        same = at + 1 < len(positions) and \
            ordered[positions[at + 1]].order is ordered[positions[at]].order
        ends[at] = ends[at + 1] if same else at + 1
    return ends


def _apply_drafts(timeline: Timeline, drafts: list[Order], now: datetime, gap: timedelta
                  ) -> None:
    """The orders being signed change the timeline from now on."""
    if not drafts:
        return
    running = [s for s in timeline.segments if s.active_at(now) or (s.held and s.end is None)]
    by_ref = {s.order.ref: s for s in timeline.segments}
    # Orders this signing itself stops or holds: a new order beside them replaces them;
    # it cannot be "added" to them.
    ending = {ref for d in drafts if d.is_stop_marker or d.status == "on-hold"
              for ref in (d.ref, d.prior_ref) if ref}
    for draft in drafts:
        if draft.ref in timeline.withdrawn:
            continue
        target = by_ref.get(draft.ref) or by_ref.get(draft.prior_ref or "")
        targets = [target] if target is not None else running
        if draft.is_stop_marker or draft.status == "on-hold":
            if target is not None:
                _stop_a_duplicate(timeline, target, draft, now)
                targets = _steps_from(timeline, target.order, now, draft)
            for segment in targets:
                if segment.end_unknown or (segment.end is not None and segment.end <= now):
                    continue  # already ended (replaced, stopped): the draft changes nothing
                segment.draft, segment.changed_by = True, draft
                if draft.is_stop_marker:
                    segment.end = now
                else:
                    segment.held, segment.held_since = True, now
            continue
        start = max(draft.start or now, now) if draft.start and draft.start > now else now
        if target is not None and draft.ref == target.order.ref and _same_dose(draft, target):
            # The same order edited: an end date added or moved is a scheduled stop.
            if draft.planned_end is not None and (target.end is None
                                                  or draft.planned_end < target.end):
                target.end, target.draft = draft.planned_end, True
                target.scheduled_end = draft.planned_end > now
                target.changed_by = draft
            continue
        if target is not None:
            targets = _steps_from(timeline, target.order, start, draft)
        if target is None and running and not draft.dose.as_needed_only:
            scheduled = [s for s in running if not s.order.dose.as_needed_only]
            if scheduled:
                if not all(s.order.ref in ending for s in scheduled):
                    timeline.ambiguity = Ambiguity(
                        tuple(s.order for s in scheduled), draft,
                        _sum(*(s.level for s in scheduled), draft.dose.scheduled))
                targets = scheduled
        elif target is None:
            targets = []
        if target is None and not draft.dose.as_needed_only:
            # An order ended just before this one: the draft replaces it (not a restart).
            chosen = {id(s) for s in targets}
            targets += [s for s in timeline.segments if s.end is not None
                        and start - gap <= s.end <= start and not s.held
                        and not s.order.dose.as_needed_only and id(s) not in chosen]
        for segment in targets:
            if segment.end is None or segment.end > start or segment.end >= start - gap:
                segment.end, segment.draft, segment.end_unknown = start, True, False
                segment.changed_by = draft
        timeline.segments.extend(_draft_segments(draft, start))


def _record_what_drafts_stop(timeline: Timeline, drafts: list[Order], now: datetime,
                             inpatient: set[str]) -> None:
    """A draft that stops, cancels or holds an order the record does not hold (the EHR sent
    the changed order only as the draft) is read as its own record, from its authoredOn at
    its own dose, so the stop has something to end: when nothing else of the route runs,
    or when it is the hospital order continuing a home regimen. Beside a running order of
    the same dose, a cancelled draft, or one stopped as a duplicate, is a second listing
    withdrawn: nothing the patient receives changes. Otherwise the stop acts on what runs."""
    known = {s.order.ref for s in timeline.segments}
    for draft in drafts:
        if not (draft.is_stop_marker or draft.status == "on-hold") or draft.do_not_perform \
                or draft.ref in known or (draft.prior_ref or "") in known:
            continue
        if draft.start is not None and draft.start > now:
            continue  # a future order withdrawn before it began
        running = [s for s in timeline.segments if s.active_at(now)
                   and not s.order.dose.as_needed_only]
        same = any(s.level is not None and draft.dose.scheduled is not None
                   and abs(s.level - draft.dose.scheduled) < _EPS for s in running)
        if running and same and (draft.status == "cancelled"
                                 or draft.stop_reason == "duplicate"):
            timeline.withdrawn.add(draft.ref)
            continue
        continues_home = bool(inpatient & set(draft.categories)) and not any(
            inpatient & set(s.order.categories) for s in running)
        if running and not continues_home:
            continue
        own = replace(draft, is_draft=False, status="active")
        timeline.segments.append(Segment(own, draft.start, None, draft.dose.scheduled))
        known.add(draft.ref)


def _stop_a_duplicate(timeline: Timeline, target: Segment, draft: Order, now: datetime) -> None:
    """Stopping one of two unlinked orders that both stay active in the record, which the
    timeline read as the later replacing the earlier.

    Cancelled (never given) or stopped as a duplicate, one of a same-dose pair: a second
    listing withdrawn, the other continues and nothing changes. Otherwise, stopping either
    of a same-dose pair, or the earlier (the one read as replaced) of any pair, is read as
    two supplies: the other continues and the total drops by the stopped one; the reading
    that nothing changes (one regimen listed twice, or already replaced) is kept for the
    card to name. Never the reading that silences the card."""
    for earlier, later in timeline.listings:
        if target not in (earlier, later):
            continue
        partner = earlier if target is later else later
        same_dose = (earlier, later) in timeline.duplicates
        if partner.order.status not in RUNNING or (partner.end is not None
                                                   and partner.end <= now
                                                   and partner is not earlier):
            continue
        if same_dose and (draft.status == "cancelled" or draft.stop_reason == "duplicate"):
            if target is later:
                # The listing withdrawn never delivered; the earlier one runs on.
                earlier.end, earlier.end_estimated = None, False
                later.end = later.start
            return
        if not same_dose and target is later:
            return  # stopping the newer order: a stop under the replacement reading
        earlier.end, earlier.end_estimated = None, False  # still active in the record
        timeline.ambiguity = Ambiguity((partner.order,), target.order,
                                       _sum(partner.level, target.level), kind="duplicate")
        return


def _draft_segments(draft: Order, start: datetime) -> list[Segment]:
    """A draft as segments: one per sequenced step when its steps carry their dates (a
    taper written as one order), else one from `start`."""
    steps = _dated_steps(draft, start)
    if len(steps) > 1:
        return [Segment(draft, max(begin or start, start), end, level, draft=True)
                for begin, end, level in steps]
    end = draft.planned_end
    return [Segment(draft, start, end, draft.dose.scheduled, draft=True,
                    scheduled_end=end is not None and end > start)]


def _dated_steps(order: Order, start: datetime | None
                 ) -> list[tuple[datetime | None, datetime | None, float | None]]:
    """(start, end, daily dose) of each sequenced step, when every step has its dates."""
    steps = order.dose.steps
    bounds = step_bounds(order.resource, order.start if order.start is not None else start)
    if not steps or len(bounds) != len(steps):
        return []
    return [(begin or start, end, level) for level, (begin, end) in zip(steps, bounds,
                                                                         strict=True)]


def _same_dose(draft: Order, segment: Segment) -> bool:
    return (draft.dose.scheduled is not None and segment.level is not None
            and abs(draft.dose.scheduled - segment.level) < _EPS)


def _prn_use(timeline: Timeline, knowledge: Knowledge) -> PrnUse | None:
    """Regular or sporadic use of an as-needed-only course, from administrations."""
    prn = [s for s in timeline.segments if s.order.dose.as_needed_only]
    scheduled = [s for s in timeline.segments if not s.order.dose.as_needed_only]
    if not prn or any(s.active_at(timeline.now) or s.end is None for s in scheduled):
        return None
    window = int(knowledge.threshold("prn_use_window_days"))
    since = timeline.now - timedelta(days=window)
    refs = {s.order.ref for s in prn}
    given = [a for a in timeline.administrations if a.at >= since
             and (a.request_ref in refs or a.request_ref is None)]
    maximum = max((s.order.dose.as_needed_max or 0.0) for s in prn) or None
    if not timeline.administrations:
        bound = _supply_bound(prn, maximum, timeline.now, knowledge)
        if bound is not None:
            return bound
        for segment in prn:  # taken or not, nobody knows: its daily dose is unknown
            segment.level = None
        return PrnUse(maximum, 0, window, None, None)
    days = len({a.at.date() for a in given})
    amounts = [a.amount for a in given if a.amount is not None]
    regular = days >= knowledge.threshold("prn_regular_use_fraction") * window
    average = round(sum(amounts) / window, 2) if amounts else None
    if regular:
        for segment in prn:  # taken regularly: a daily exposure at the average given
            segment.level = average
    return PrnUse(maximum, days, window, regular, average)


def _supply_bound(prn: list[Segment], maximum: float | None, now: datetime,
                  knowledge: Knowledge) -> PrnUse | None:
    """Sporadic use shown by the supply: 20 tablets over five months cannot have been
    taken on most days, whatever was taken. Only an upper bound, so it can only ever
    show sporadic use, never regular use."""
    supplied = 0.0
    days = 0.0
    for segment in prn:
        order = segment.order
        per_use = order.dose.as_needed_per_use  # mg, oral only (the supply is in mg)
        if order.route != "oral" or order.supplied_mg is None or not per_use \
                or segment.start is None:
            return None
        supplied += order.supplied_mg / per_use
        days += max(0.0, days_between(segment.start, segment.end or now))
    if days < 1 or supplied >= knowledge.threshold("prn_regular_use_fraction") * days:
        return None
    return PrnUse(maximum, 0, round(days), False, None, supply_days=int(supplied))


def _sum(*levels: float | None) -> float | None:
    return None if any(v is None for v in levels) else round(sum(levels), 4)  # type: ignore[arg-type]
