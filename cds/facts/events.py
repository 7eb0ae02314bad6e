"""Events from a route's timeline: what happened to baclofen, judged against the policy.

Each drop of the daily dose is judged in time order against the service's own taper
policy (rules/taper.yaml steps for the patient's risk; intrathecal thresholds in
rules/thresholds.yaml):
- a stop is an event unless it ends a taper that followed the policy, from a low dose;
- a cut of `large_cut_fraction` of the dose held over the reference window is an event,
  unless it is a policy step continuing a taper;
- a step larger than the policy step, or sooner than the policy interval after the
  previous step, is "faster than policy";
- every other drop is a policy step: a taper, which stays quiet.
A hold is always an event. At a care transition, a home or in-hospital regimen that the
new orders leave out (or cut sharply) is an omission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cds.facts.orders import Order
from cds.facts.stay import Stay
from cds.facts.timeline import Step, Timeline
from cds.knowledge import Knowledge

DRAFT_HOOKS = ("order-select", "order-sign")
HISTORY_HOOKS = ("patient-view", "encounter-start")
_RANK = {"stop": 0, "hold": 1, "cut": 2, "fast-step": 3, "omission": 4}
_EPS = 1e-6


@dataclass
class JudgedStep:
    step: Step
    verdict: str  # stop | cut | fast-step | policy
    reference: float | None  # the highest daily dose over the reference window


@dataclass
class RouteEvent:
    kind: str  # none | stop | hold | cut | fast-step | omission
    at: datetime | None = None
    estimated: bool = False
    draft: bool = False
    scheduled_end: bool = False
    before: float | None = None  # the dose held before (reference over the window)
    after: float | None = None
    orders: tuple[Order, ...] = ()
    stop_reason: str = "none"
    stop_reason_text: str = ""
    just_before: float | None = None  # the dose right before, when lower than `before`


@dataclass
class RouteHistory:
    """What the timeline shows for one route, as the rules and cards need it."""

    event: RouteEvent
    judged: list[JudgedStep] = field(default_factory=list)
    taper_in_progress: bool = False
    previous_level: float | None = None  # before the latest policy step
    recent_increase_at: datetime | None = None
    recent_restart: bool = False


def judge_steps(timeline: Timeline, knowledge: Knowledge, risk: str) -> list[JudgedStep]:
    """Every drop of the daily dose, judged against the policy, oldest first."""
    oral = timeline.route == "oral"
    policy = knowledge.taper.policy(risk) if oral else None
    max_step = policy.max_step_mg_per_day if policy else None
    interval = timedelta(days=policy.interval_days if policy else
                         knowledge.threshold("intrathecal_step_interval_days"))
    large = knowledge.threshold("large_cut_fraction" if oral else "intrathecal_large_cut_fraction")
    final_max = knowledge.threshold("taper_final_max_mg_per_day") if oral else 0.0
    window = timedelta(days=knowledge.threshold("reference_window_days"))
    gap = timedelta(days=knowledge.threshold("taper_step_gap_max_days"))
    judged: list[JudgedStep] = []
    last_policy_step: datetime | None = None
    last_drop: datetime | None = None
    for step in timeline.steps():
        if not step.is_drop or step.at is None:
            continue
        before, after = step.before, step.after
        # A step inside one taper schedule order continues the taper that order is, even
        # when the order it took over is not in the record (only the schedule was sent).
        in_taper = (last_policy_step is not None and _days(last_policy_step, step.at) <= gap.days
                    ) or _inside_one_schedule(step)
        # Steps are planned in days: compare calendar days, not seconds.
        interval_ok = last_drop is None or _days(last_drop, step.at) >= interval.days or \
            _days(last_drop, step.at) > gap.days
        # In a taper, after its last step was held the policy interval, the dose the patient
        # is used to is the one held since; sooner, the whole window counts (two quick steps
        # are one cut).
        since = step.at - window
        if in_taper and interval_ok and last_policy_step is not None:
            since = max(since, last_policy_step)
        reference = _reference(timeline, step.at, since)
        size_ok = before is not None and after is not None and (
            max_step is None or before - after <= max_step + _EPS)
        if step.hold:
            verdict = "hold"
        elif after == 0:
            ends_taper = oral and in_taper and size_ok and interval_ok and before is not None \
                and before <= final_max + _EPS
            verdict = "policy" if ends_taper else "stop"
            if verdict == "stop" and oral and _ends_its_own_schedule(step, judged, final_max):
                # The planned end of a taper written as one order: if the stop is wrong, it
                # is the schedule's pace that is wrong, not a stop.
                verdict = "fast-step"
        elif reference and after is not None and (reference - after) / reference >= large - _EPS \
                and not (oral and in_taper and size_ok and interval_ok):
            verdict = "cut"
        elif not size_ok or not interval_ok:
            verdict = "fast-step"
        elif not oral and before and after is not None and (before - after) / before >= \
                large - _EPS:
            verdict = "cut"
        else:
            verdict = "policy"
        judged.append(JudgedStep(step, verdict, reference))
        last_drop = step.at
        if verdict == "policy":
            last_policy_step = step.at
    if oral:
        # Judged by the label-based standard minimum, whatever this patient's own plan would be.
        standard = knowledge.taper.policy("standard")
        _documented_taper_end(timeline, judged, knowledge, standard.min_duration_days,
                              timedelta(days=standard.interval_days), gap, final_max)
    return judged


def _documented_taper_end(timeline: Timeline, judged: list[JudgedStep], knowledge: Knowledge,
                          min_days: int, interval: timedelta, gap: timedelta,
                          final_max: float) -> None:
    """A stop from a low dose that ends a documented taper is its planned end, whatever the
    size of the steps before it: a run of step-downs, each held at least the standard
    interval and no further apart than the taper gap, with no rise between them, at least
    the minimum number of reductions, lasting at least the standard minimum duration (the
    non-US label's 1-2 weeks). The whole run is then a taper (policy steps), so neither the
    stop nor an earlier step of it is read as abrupt."""
    if not judged:
        return
    last = judged[-1]
    if last.step.after != 0 or last.step.before is None or last.step.before > final_max + _EPS:
        return
    rises = [s.at for s in timeline.steps() if s.at is not None and s.before is not None
             and s.after is not None and s.after > s.before + _EPS]
    run = [last]
    for earlier in reversed(judged[:-1]):
        later = run[-1]
        held = _days(earlier.step.at, later.step.at)
        if held < interval.days or held > gap.days or any(
                earlier.step.at < at < later.step.at for at in rises):
            break
        run.append(earlier)
    minimum = knowledge.taper.minimum_reductions
    if len(run) < minimum or _days(run[-1].step.at, last.step.at) < min_days:
        return
    for step in run:
        step.verdict = "policy"


def _ends_its_own_schedule(step: Step, judged: list[JudgedStep], final_max: float) -> bool:
    """A stop from a low dose that is the last step of a taper schedule order (sequenced,
    dated steps going down) whose earlier steps are on the timeline too."""
    schedules = [o for o in step.orders if o.dose.is_taper_schedule]
    if len(schedules) != 1 or step.before is None or step.before > final_max + _EPS:
        return False
    order = schedules[0]
    return any(order in j.step.orders for j in judged)


def _inside_one_schedule(step: Step) -> bool:
    return len(step.orders) == 1 and step.orders[0].dose.is_taper_schedule


def _days(earlier: datetime, later: datetime) -> int:
    return (later.date() - earlier.date()).days


def _reference(timeline: Timeline, moment: datetime, start: datetime) -> float | None:
    """The highest daily dose held from `start` until `moment`."""
    return timeline.highest_level(start, moment)


def route_history(timeline: Timeline, hook: str, knowledge: Knowledge, risk: str
                  ) -> RouteHistory:
    now = timeline.now
    judged = judge_steps(timeline, knowledge, risk)
    history = RouteHistory(RouteEvent("none"), judged)
    gap = timedelta(days=knowledge.threshold("taper_step_gap_max_days"))
    policy_steps = [j for j in judged if j.verdict == "policy" and j.step.at <= now]
    if policy_steps and now - policy_steps[-1].step.at <= gap:
        history.taper_in_progress = True
        history.previous_level = policy_steps[-1].step.before
    _recent_changes(timeline, knowledge, history)
    # At order-select and order-sign an oral history is judged by what is being signed
    # (a past change was judged when it was made); a pump's is always read whole: its
    # delivery does not stop or restart with the orders, and a recorded stop of it is
    # as urgent when an unrelated order is signed as when the chart is opened.
    if hook in DRAFT_HOOKS and timeline.route == "oral":
        candidates = [j for j in judged if j.step.draft and j.verdict != "policy"]
    else:
        since = now - timedelta(days=knowledge.threshold("lookback_days"))
        candidates = [j for j in judged if j.verdict != "policy" and j.step.at is not None
                      and since <= j.step.at <= now + timedelta(minutes=5)]
    event = _worst(candidates, timeline)
    if event is None and (hook in (*HISTORY_HOOKS, "encounter-discharge")
                          or timeline.route == "intrathecal"):
        event = _unknown_time_stop(timeline)
    if event is None:
        event = _current_hold(timeline, hook)
    if event is not None:
        history.event = event
        if event.kind in ("stop", "cut", "fast-step"):
            history.taper_in_progress = False
    return history


def _worst(candidates: list[JudgedStep], timeline: Timeline) -> RouteEvent | None:
    if not candidates:
        return None
    schedule = _one_schedule(candidates)
    if schedule is not None:
        # Steps of one taper order being signed: what is wrong is its pace, read as a whole
        # (the first step too large or too soon), not one of its steps as a cut or a stop.
        first, last = candidates[0], candidates[-1]
        return RouteEvent("fast-step", first.step.at, False, True, False,
                          first.reference if first.reference is not None else first.step.before,
                          last.step.after, (schedule,))
    chosen = min(candidates, key=lambda j: (_RANK.get(j.verdict, 9), -j.step.at.timestamp()))
    step = chosen.step
    reason_order = next((o for o in step.orders if o.stop_reason != "none"), None)
    before = chosen.reference if chosen.reference is not None else step.before
    lowered = step.before if step.before is not None and before is not None \
        and step.before < before - _EPS else None
    return RouteEvent(chosen.verdict, step.at, step.estimated, step.draft, step.scheduled_end,
                      before, step.after, step.orders,
                      reason_order.stop_reason if reason_order else "none",
                      reason_order.stop_reason_text if reason_order else "", lowered)


def _one_schedule(candidates: list[JudgedStep]) -> Order | None:
    """The draft taper schedule every candidate step comes from, if there is exactly one."""
    found = None
    for judged in candidates:
        # A stop of a schedule carries its steps too, but what it does is stop it.
        schedules = [o for o in judged.step.orders
                     if o.is_draft and not o.is_stop_marker and o.dose.is_taper_schedule]
        if len(schedules) != 1 or (found is not None and schedules[0] is not found):
            return None
        found = schedules[0]
    return found


def _unknown_time_stop(timeline: Timeline) -> RouteEvent | None:
    """Stopped, time not on record, nothing running since: a stop of unknown time."""
    if timeline.running():
        return None
    stopped = timeline.unknown_stops()
    if not stopped:
        return None
    latest = max(stopped, key=lambda s: (s.start is not None, s.start or timeline.now))
    order = latest.order
    return RouteEvent("stop", None, False, False, False, latest.level, 0.0, (order,),
                      order.stop_reason, order.stop_reason_text)


def _current_hold(timeline: Timeline, hook: str) -> RouteEvent | None:
    held = [s for s in timeline.held_segments() if s.held_since is None]
    if not held:
        return None  # holds with a time were judged as steps
    segment = held[-1]
    return RouteEvent("hold", None, False, segment.draft, False, segment.level, 0.0,
                      (segment.order,), segment.order.stop_reason,
                      segment.order.stop_reason_text)


def _recent_changes(timeline: Timeline, knowledge: Knowledge, history: RouteHistory) -> None:
    now = timeline.now
    increase_since = now - timedelta(days=knowledge.threshold("recent_increase_days"))
    restart_since = now - timedelta(days=knowledge.threshold("recent_restart_days"))
    for step in timeline.steps():
        if step.at is None or step.at > now or step.before is None or step.after is None:
            continue
        if step.after > step.before + _EPS and step.at >= increase_since:
            if step.before > 0:
                history.recent_increase_at = step.at
            elif step.at >= restart_since and any(
                    s.end is not None and s.end <= step.at for s in timeline.segments):
                history.recent_restart = True


def omission(timeline: Timeline, hook: str, encounter_ref: str | None, drafts: list[Order],
             encounter_orders_signed: bool, is_inpatient, knowledge: Knowledge,
             discharge_list: bool = False) -> RouteEvent | None:
    """At a care transition: the regimen the new orders leave out or cut sharply.

    order-sign of medication orders for an encounter (admission orders): home baclofen
    against this encounter's baclofen orders. encounter-discharge: what was given in
    hospital (or at home) against the orders that continue after discharge.
    """
    now = timeline.now
    running = [s for s in timeline.segments
               if s.start is not None and s.start <= now and (s.end is None or s.end > now)
               and not s.draft]
    large = knowledge.threshold("large_cut_fraction" if timeline.route == "oral"
                                else "intrathecal_large_cut_fraction")
    if hook in DRAFT_HOOKS:
        if encounter_ref is None or not encounter_orders_signed:
            return None
        home = [s for s in running if not is_inpatient(s.order, encounter_ref)]
        here = [o for o in drafts if o.route == timeline.route] + [
            s.order for s in running if is_inpatient(s.order, encounter_ref)]
        reference = _scheduled([s.level for s in home])
        evidence = tuple(s.order for s in home)
    elif hook == "encounter-discharge":
        # Given in hospital: a stay's order still running, or completed at discharge.
        completed_since = now - timedelta(
            hours=knowledge.threshold("discharge_completed_within_hours"))
        inpatient = [s for s in timeline.segments if not s.draft
                     and is_inpatient(s.order, encounter_ref) and s.start is not None
                     and s.start <= now and (s.end is None or s.end > now or (
                         s.order.status == "completed" and s.end >= completed_since))]
        # What goes home: orders the record keeps active outside the stay, by their status
        # (on the timeline the admission order stood in for the home order meanwhile).
        # When discharge orders exist, they are the list that goes home: a home listing
        # still active but not carried onto them is not counted as continuing.
        here = list(dict.fromkeys(
            s.order for s in timeline.segments
            if not s.draft and not is_inpatient(s.order, encounter_ref)
            and s.order.status == "active"
            and (s.order.planned_end is None or s.order.planned_end > now)
            and (not discharge_list or "discharge" in s.order.categories)))
        reference = _scheduled([s.level for s in inpatient]) or _scheduled(
            [s.level for s in running])
        evidence = tuple(s.order for s in inpatient)
        if not inpatient:
            return None
    else:
        return None
    if not reference:
        return None
    continuing = sum(o.dose.scheduled or 0.0 for o in here if not o.is_stop_marker
                     and o.status not in ("stopped", "cancelled", "completed"))
    if continuing > (1 - large) * reference + _EPS:
        return None
    return RouteEvent("omission", now, False, hook in DRAFT_HOOKS, False, reference,
                      continuing, evidence + tuple(here))


def omission_during_stay(timeline: Timeline, stay: Stay | None, is_inpatient,
                         knowledge: Knowledge) -> RouteEvent | None:
    """A stay under way long enough for doses to be missed, a home regimen still listed,
    and no hospital order of the route, no draft continuing it and no dose charted since
    the stay began: the home regimen has not been given since admission."""
    now = timeline.now
    if stay is None or now - stay.start < timedelta(
            hours=knowledge.threshold("omission_after_hours")):
        return None
    ref = stay.encounter_ref
    home = [s for s in timeline.segments if s.active_at(now) and not s.draft
            and not s.order.dose.as_needed_only and not is_inpatient(s.order, ref)]
    if not home:
        return None
    margin = timedelta(days=1)
    if any(is_inpatient(s.order, ref) and (s.start is None or s.start >= stay.start - margin)
           for s in timeline.segments):
        return None  # the stay has its own order: its changes are judged as steps
    if any(s.order.is_draft and not s.order.is_stop_marker for s in timeline.segments):
        return None  # an order of the route is being signed now
    if any(a.at >= stay.start for a in timeline.administrations):
        return None  # doses charted during the stay: it is being given
    level = _scheduled([s.level for s in home])
    if not level:
        return None
    return RouteEvent("omission", stay.start, False, False, False, level, 0.0,
                      tuple(s.order for s in home))


def _scheduled(levels: list[float | None]) -> float | None:
    known = [v for v in levels if v is not None]
    return round(sum(known), 4) if known else None
