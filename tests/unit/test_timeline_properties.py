"""Properties of the timeline and its events over generated oral order histories.

- The daily dose is never negative, whatever the record says.
- A history that follows the taper policy of rules/taper.yaml (each step at most the
  policy step for the risk, no sooner than the policy interval, the first step from a
  steady dose smaller than large_cut_fraction, ending with a stop from at most
  taper_final_max_mg_per_day) never yields an event.
- A drop of at least large_cut_fraction of a dose held steady over the reference window
  always yields an event (stop, cut or fast-step), however the record writes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds.facts.events import judge_steps, route_history
from cds.facts.orders import OrderReader
from cds.facts.record import PatientRecord
from cds.facts.subjects import FactExtractor
from cds.facts.timeline import Timeline, build_timeline
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    NOW,
    administration,
    as_draft,
    daily_order,
    dosage,
    iso,
    patient,
)

K = load_knowledge()
READER = OrderReader(K)
EXTRACTOR = FactExtractor(K)
LARGE = K.threshold("large_cut_fraction")
FINAL_MAX = K.threshold("taper_final_max_mg_per_day")
WINDOW_DAYS = int(K.threshold("reference_window_days"))
LOOKBACK_DAYS = K.threshold("lookback_days")
STEP_GAP_DAYS = int(K.threshold("taper_step_gap_max_days"))
REPLACEMENT_GAP_HOURS = K.threshold("replacement_gap_hours")
HISTORY_HOOKS = ("patient-view", "encounter-start", "encounter-discharge")
DRAFT_HOOKS = ("order-select", "order-sign")
UNIT = 2.5  # doses move in steps a 5 mg tablet split in two can give

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Record:
    resources: list[dict]
    drafts: list[dict] = field(default_factory=list)
    now: datetime = NOW
    hook: str = "patient-view"
    risk: str = "standard"
    note: str = ""  # how the record was written, for failure messages


def timeline_of(record: Record) -> Timeline:
    data = PatientRecord(record.resources, record.drafts)
    orders = READER.orders(data, False)
    given_ = READER.administrations(data, orders, False)
    return build_timeline("oral", orders, given_, record.now, K)


def day(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


# ---------------------------------------------------------------- 1. never negative


@st.composite
def any_history(draw: st.DrawFn) -> Record:
    now = NOW
    count = draw(st.integers(1, 5))
    resources: list[dict] = []
    ids: list[str] = []
    for index in range(count):
        rid = f"o{index}"
        start_days = draw(st.one_of(st.none(), st.floats(0, 400)))
        start = None if start_days is None else day(now, start_days)
        status = draw(st.sampled_from(["active", "completed", "stopped", "on-hold", "cancelled",
                                       "entered-in-error", "unknown"]))
        dose = draw(st.sampled_from([0, 0.5, 2.5, 5, 10, 15, 20, 30, 45, 60, 80, 90, 120, 200]))
        extra: dict = {}
        if draw(st.booleans()):
            extra["last_updated"] = day(now, draw(st.floats(-1, start_days or 30)))
        if draw(st.booleans()):
            extra["end"] = day(now, draw(st.floats(-60, 400)))
        if draw(st.booleans()):
            extra["validity_end"] = day(now, draw(st.floats(-60, 400)))
        if ids and draw(st.booleans()):
            extra["prior"] = draw(st.sampled_from(ids))
        extra["as_needed"] = draw(st.integers(0, 4)) == 0
        resources.append(daily_order(rid, dose, start, status, **extra))
        ids.append(rid)
    for index in range(draw(st.integers(0, 4))):
        resources.append(administration(
            f"g{index}", day(now, draw(st.floats(0, 30))),
            draw(st.one_of(st.none(), st.sampled_from(ids))),
            amount=draw(st.sampled_from([None, 5, 10, 20]))))
    drafts: list[dict] = []
    for index in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["stop", "hold", "new", "edit-end", "schedule", "cancel"]))
        target = draw(st.sampled_from(ids))
        dose = draw(st.sampled_from([0, 5, 10, 20, 45, 80]))
        if kind in ("stop", "hold", "cancel"):
            status = {"stop": "stopped", "hold": "on-hold", "cancel": "cancelled"}[kind]
            drafts.append(as_draft(daily_order(target, dose, day(now, 100)), status))
        elif kind == "edit-end":
            drafts.append(as_draft(daily_order(target, dose, day(now, 100),
                                               end=day(now, -draw(st.floats(0, 10)))), "active"))
        elif kind == "new":
            prior = target if draw(st.booleans()) else None
            drafts.append(as_draft(daily_order(f"d{index}", dose,
                                               day(now, -draw(st.floats(0, 5))), prior=prior)))
        else:
            levels = draw(st.lists(st.sampled_from([5, 10, 15, 30, 45]), min_size=2, max_size=4))
            drafts.append(as_draft(_schedule(f"t{index}", levels, now, draw(st.integers(1, 7)))))
    hook = draw(st.sampled_from(HISTORY_HOOKS + DRAFT_HOOKS))
    return Record(resources, drafts, now, hook, draw(st.sampled_from(["standard", "high"])))


def _schedule(rid: str, levels: list[float], first: datetime, days_each: int) -> dict:
    steps = []
    for index, mg in enumerate(levels):
        begin = first + timedelta(days=index * days_each)
        step = dict(dosage(mg, "mg", frequency=1), sequence=index + 1)
        step["timing"]["repeat"]["boundsPeriod"] = {
            "start": iso(begin), "end": iso(begin + timedelta(days=days_each))}
        steps.append(step)
    out = daily_order(rid, levels[0], first)
    out["dosageInstruction"] = steps
    return out


def _non_negative(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and value >= 0)


@PROPERTY
@given(any_history())
def test_daily_dose_is_never_negative(record: Record) -> None:
    tl = timeline_of(record)
    moments = [record.now, record.now + timedelta(days=30)]
    moments += [m for s in tl.segments for m in (s.start, s.end, s.held_since) if m]
    for moment in moments:
        assert _non_negative(tl.level_at(moment)), moment
        assert _non_negative(tl.level_at(moment - timedelta(seconds=1))), moment
    assert all(_non_negative(s.level) for s in tl.segments)
    for step in tl.steps():
        assert _non_negative(step.before) and _non_negative(step.after), step
    for judged in judge_steps(tl, K, record.risk):
        assert _non_negative(judged.reference)
    event = route_history(tl, record.hook, K, record.risk).event
    assert _non_negative(event.before) and _non_negative(event.after)
    if tl.ambiguity is not None:
        assert _non_negative(tl.ambiguity.addition_total)


@PROPERTY
@given(any_history())
def test_rule_facts_about_the_dose_are_never_negative(record: Record) -> None:
    found = EXTRACTOR.extract(record.hook, {"patientId": "p1", "encounterId": "enc1"},
                              PatientRecord([patient(), *record.resources], record.drafts),
                              record.now)
    for subject in found.subjects:
        facts = subject.facts
        assert facts["daily_dose"] >= 0 and facts["new_daily_dose"] >= 0
        assert facts["exposure_days"] >= 0 and facts["event_age_hours"] >= 0
        if facts["event"] != "none":
            assert 0 <= facts["cut_percent"] <= 100, facts


# ---------------------------------------------------------------- 2. a policy taper is quiet


@st.composite
def policy_tapers(draw: st.DrawFn) -> Record:
    risk = draw(st.sampled_from(["standard", "high"]))
    policy = K.taper.policy(risk)
    max_units = int(policy.max_step_mg_per_day // UNIT)
    dose = draw(st.integers(4, 36)) * UNIT  # 10 to 90 mg/day
    levels = [dose]
    # The first step leaves a steady dose: smaller than a large cut of it.
    first_units = min(max_units, math.ceil(LARGE * dose / UNIT) - 1)
    levels.append(dose - draw(st.integers(1, first_units)) * UNIT)
    while levels[-1] > FINAL_MAX and len(levels) < 10:
        levels.append(max(UNIT, levels[-1] - draw(st.integers(1, max_units)) * UNIT))
    finished = levels[-1] <= FINAL_MAX and draw(st.booleans())
    changes = len(levels) - 1 + finished  # each step down, and the final stop
    gaps = [draw(st.integers(policy.interval_days, STEP_GAP_DAYS)) for _ in range(changes - 1)]
    lead = draw(st.integers(WINDOW_DAYS, 400))
    as_drafts = draw(st.booleans())  # the last change is being signed now
    after = 0 if as_drafts else draw(st.integers(0, STEP_GAP_DAYS))
    now = NOW
    change_days = [after]  # days before now of each change, latest first
    for gap in reversed(gaps):
        change_days.insert(0, change_days[0] + gap)
    first_change = change_days[0]
    ways = [draw(st.sampled_from(["linked", "completed-meta", "planned-end", "stopped-late",
                                  "unlinked-active"])) for _ in levels]
    resources: list[dict] = []
    drafts: list[dict] = []
    starts = [day(now, first_change + lead)] + [day(now, d) for d in change_days]
    for index, level in enumerate(levels):
        rid = f"s{index}"
        order = daily_order(rid, level, starts[index])
        nxt = starts[index + 1] if index + 1 < len(starts) else None
        way = ways[index + 1] if index + 1 < len(levels) else None
        if way == "linked":
            order["status"] = "completed"
        elif way == "completed-meta":
            order["status"] = "completed"
            hours = draw(st.floats(0, REPLACEMENT_GAP_HOURS - 0.5))
            order["meta"] = {"lastUpdated": iso(nxt - timedelta(hours=hours))}
        elif way == "planned-end":
            order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"end": iso(nxt)}
        elif way == "stopped-late":
            order["status"] = "stopped"
            order["meta"] = {"lastUpdated": iso(nxt + timedelta(minutes=30))}
        if index and ways[index] == "linked":
            order["priorPrescription"] = {"reference": f"MedicationRequest/s{index - 1}"}
        resources.append(order)
    last = resources[-1]
    if finished:
        stop_at = starts[-1]
        if as_drafts:
            drafts.append(as_draft(last, "stopped"))
        elif draw(st.booleans()):
            last["status"] = "stopped"
            last["meta"] = {"lastUpdated": iso(stop_at)}
        else:
            last["status"] = "completed"
            last["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
                "end": iso(stop_at)}
    elif as_drafts:
        resources.pop()
        last["priorPrescription"] = {"reference": f"MedicationRequest/s{len(levels) - 2}"}
        drafts.append(as_draft(last))
        resources[-1].pop("meta", None)
        resources[-1]["status"] = "active"
        resources[-1]["dosageInstruction"][0]["timing"]["repeat"].pop("boundsPeriod", None)
    hook = draw(st.sampled_from(DRAFT_HOOKS if as_drafts else HISTORY_HOOKS))
    note = f"levels={levels} gaps={gaps} finished={finished} ways={ways} lead={lead}"
    return Record(resources, drafts, now, hook, risk, note)


@PROPERTY
@given(policy_tapers())
def test_a_taper_that_follows_the_policy_never_yields_an_event(record: Record) -> None:
    tl = timeline_of(record)
    history = route_history(tl, record.hook, K, record.risk)
    judged = [(j.step.before, j.step.after, j.verdict) for j in history.judged]
    assert all(v == "policy" for *_, v in judged), (record.note, judged)
    assert history.event.kind == "none", (record.note, history.event)


@PROPERTY
@given(policy_tapers().filter(lambda r: r.risk == "high" and r.hook == "patient-view"))
def test_a_weekly_policy_taper_is_quiet_through_fact_extraction(record: Record) -> None:
    found = EXTRACTOR.extract(record.hook, {"patientId": "p1"},
                              PatientRecord([patient(), *record.resources], record.drafts),
                              record.now)
    (subject,) = found.subjects
    assert subject.facts["event"] == "none", record.note


# ---------------------------------------------------------------- 3. a large drop is an event


HISTORY_WAYS = ("stopped-meta", "completed-planned-end", "active-planned-end", "linked-new",
                "unlinked-new", "completed-then-new")
DRAFT_WAYS = ("draft-stop", "draft-cancel", "draft-do-not-perform", "draft-edit-end",
              "draft-new-linked", "draft-new-unlinked")
STOPS_ONLY = ("stopped-meta", "completed-planned-end", "active-planned-end", "draft-stop",
              "draft-cancel", "draft-do-not-perform", "draft-edit-end")


@st.composite
def large_drops(draw: st.DrawFn) -> Record:
    dose = draw(st.integers(1, 80)) * UNIT  # 2.5 to 200 mg/day
    way = draw(st.sampled_from(HISTORY_WAYS + DRAFT_WAYS))
    if way in STOPS_ONLY:
        after = 0.0
    else:
        most = math.floor((1 - LARGE) * dose / UNIT + 1e-9)  # the smallest large cut
        after = draw(st.one_of(st.just(most), st.integers(0, most))) * UNIT
    held_days = draw(st.integers(WINDOW_DAYS, 400))
    drafting = way.startswith("draft")
    since_drop = 0.0 if drafting else draw(st.floats(0, LOOKBACK_DAYS - 0.01))
    now = NOW
    drop = day(now, since_drop)
    if way == "draft-edit-end":
        drop = now + timedelta(days=draw(st.floats(0, 5)))
    steady_start = drop - timedelta(days=held_days)
    resources: list[dict] = []
    if draw(st.booleans()):  # the steady dose is a renewal of an earlier order
        earlier = steady_start - timedelta(days=draw(st.integers(30, 300)))
        resources.append(daily_order("older", dose, earlier, "completed",
                                     last_updated=steady_start))
    current = daily_order("cur", dose, steady_start)
    resources.append(current)
    drafts: list[dict] = []
    repeat = current["dosageInstruction"][0]["timing"]["repeat"]
    if way == "stopped-meta":
        current.update(status="stopped", meta={"lastUpdated": iso(drop)})
    elif way == "completed-planned-end":
        current["status"] = "completed"
        repeat["boundsPeriod"] = {"end": iso(drop)}
    elif way == "active-planned-end":
        repeat["boundsPeriod"] = {"end": iso(drop)}
    elif way == "linked-new":
        resources.append(daily_order("new", after, drop, prior="cur"))
    elif way == "unlinked-new":
        resources.append(daily_order("new", after, drop))
    elif way == "completed-then-new":
        current.update(status="completed", meta={"lastUpdated": iso(drop)})
        resources.append(daily_order("new", after, drop))
    elif way == "draft-stop":
        drafts.append(as_draft(current, "stopped"))
    elif way == "draft-cancel":
        drafts.append(as_draft(current, "cancelled"))
    elif way == "draft-do-not-perform":
        drafts.append(as_draft(daily_order("dnp", dose, now, prior="cur", doNotPerform=True)))
    elif way == "draft-edit-end":
        drafts.append(as_draft(daily_order("cur", dose, steady_start, end=drop), "active"))
    elif way == "draft-new-linked":
        drafts.append(as_draft(daily_order("new", after, now, prior="cur")))
    else:
        drafts.append(as_draft(daily_order("new", after, now)))
    hook = draw(st.sampled_from(DRAFT_HOOKS if drafting else HISTORY_HOOKS))
    risk = draw(st.sampled_from(["standard", "high"]))
    return Record(resources, drafts, now, hook, risk,
                  f"{way}: {dose} -> {after} mg/day, held {held_days} d, {since_drop:.2f} d ago")


@PROPERTY
@given(large_drops())
def test_a_large_drop_from_a_steady_dose_is_always_an_event(record: Record) -> None:
    history = route_history(timeline_of(record), record.hook, K, record.risk)
    assert history.event.kind in ("stop", "cut", "fast-step"), (record.note, history.event)


@PROPERTY
@given(large_drops())
def test_a_large_drop_is_an_event_through_fact_extraction(record: Record) -> None:
    found = EXTRACTOR.extract(record.hook, {"patientId": "p1"},
                              PatientRecord([patient(), *record.resources], record.drafts),
                              record.now)
    (subject,) = found.subjects
    assert subject.facts["event"] in ("stop", "cut", "fast-step"), record.note
