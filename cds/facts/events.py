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
        reference = _reference(timeline, step.at, window)
        before, after = step.before, step.after
        in_taper = last_policy_step is not None and _days(last_policy_step, step.at) <= gap.days
        # Steps are planned in days: compare calendar days, not seconds.
        interval_ok = last_drop is None or _days(last_drop, step.at) >= interval.days or \
            _days(last_drop, step.at) > gap.days
        size_ok = before is not None and after is not None and (
            max_step is None or before - after <= max_step + _EPS)
        if step.hold:
            verdict = "hold"
        elif after == 0:
            ends_taper = oral and in_taper and size_ok and interval_ok and before is not None \
                and before <= final_max + _EPS
            verdict = "policy" if ends_taper else "stop"
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
    return judged


def _days(earlier: datetime, later: datetime) -> int:
    return (later.date() - earlier.date()).days


def _reference(timeline: Timeline, moment: datetime, window: timedelta) -> float | None:
    """The highest daily dose held over the window before `moment`."""
    return timeline.highest_level(moment - window, moment)


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
    chosen = min(candidates, key=lambda j: (_RANK.get(j.verdict, 9), -j.step.at.timestamp()))
    step = chosen.step
    reason_order = next((o for o in step.orders if o.stop_reason != "none"), None)
    before = chosen.reference if chosen.reference is not None else step.before
    return RouteEvent(chosen.verdict, step.at, step.estimated, step.draft, step.scheduled_end,
                      before, step.after, step.orders,
                      reason_order.stop_reason if reason_order else "none",
                      reason_order.stop_reason_text if reason_order else "")


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
             encounter_orders_signed: bool, is_inpatient, knowledge: Knowledge
             ) -> RouteEvent | None:
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
        inpatient = [s for s in running if is_inpatient(s.order, encounter_ref)]
        # What goes home: orders the record keeps active outside the stay, by their status
        # (on the timeline the admission order stood in for the home order meanwhile).
        here = list(dict.fromkeys(
            s.order for s in timeline.segments
            if not s.draft and not is_inpatient(s.order, encounter_ref)
            and s.order.status == "active"
            and (s.order.planned_end is None or s.order.planned_end > now)))
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


def _scheduled(levels: list[float | None]) -> float | None:
    known = [v for v in levels if v is not None]
    return round(sum(known), 4) if known else None
