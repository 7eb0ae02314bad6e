"""Events from a route's timeline (cds.facts.events): each drop judged against the taper
policy of rules/taper.yaml and the thresholds of rules/thresholds.yaml; what each hook
reports; omissions at care transitions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from cds.facts.events import RouteEvent, RouteHistory, judge_steps, omission, route_history
from cds.facts.orders import OrderReader
from cds.facts.record import PatientRecord
from cds.facts.subjects import FactExtractor
from cds.facts.timeline import Timeline, build_timeline
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    NOW,
    RXNORM,
    STATUS_REASON,
    as_draft,
    at,
    coding,
    concept,
    daily_order,
    patient,
    pump_order,
    request_with,
)
from tests.unit.test_timeline import schedule

K = load_knowledge()
READER = OrderReader(K)
EXTRACTOR = FactExtractor(K)
STANDARD = K.taper.policy("standard")
HIGH = K.taper.policy("high")
FINAL_MAX = K.threshold("taper_final_max_mg_per_day")
LOOKBACK = K.threshold("lookback_days")
HOOKS = ("order-select", "order-sign", "patient-view", "encounter-start", "encounter-discharge")
ENC = "enc1"


def timeline(resources: Iterable[dict], drafts: Iterable[dict] = (), now: datetime = NOW,
             route: str = "oral") -> Timeline:
    record = PatientRecord(list(resources), list(drafts))
    orders = READER.orders(record, False)
    return build_timeline(route, orders, READER.administrations(record, orders, False), now, K)


def verdicts(tl: Timeline, risk: str = "standard") -> list[tuple[float, float, str]]:
    return [(j.step.before, j.step.after, j.verdict) for j in judge_steps(tl, K, risk)]


def history(resources: Iterable[dict], drafts: Iterable[dict] = (), hook: str = "patient-view",
            risk: str = "standard", route: str = "oral") -> RouteHistory:
    return route_history(timeline(resources, drafts, route=route), hook, K, risk)


def steps(doses: list[float], days_apart: float, last_days_ago: float, *, stop_after: float |
          None = None, route: str = "oral") -> list[dict]:
    """A chain of linked orders stepping through `doses`, the last one `last_days_ago`; with
    `stop_after`, the last order stopped that many days after it began."""
    out: list[dict] = []
    count = len(doses)
    for index, dose in enumerate(doses):
        start = at(days=last_days_ago + (count - 1 - index) * days_apart)
        prior = f"s{index - 1}" if index else None
        status = "active" if index == count - 1 else "completed"
        if route == "oral":
            order = daily_order(f"s{index}", dose, start, status, prior=prior)
        else:
            order = pump_order(f"s{index}", dose, start, status)
            if prior:
                order["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
        out.append(order)
    if stop_after is not None:
        out[-1]["status"] = "stopped"
        out[-1]["meta"] = {"lastUpdated": (at(days=last_days_ago - stop_after)).isoformat()}
    out.insert(0, daily_order("base", doses[0], at(days=400), "completed",
                              last_updated=at(days=last_days_ago + (count - 1) * days_apart))
               if route == "oral" else pump_order("base", doses[0], at(days=400), "completed",
                                                  meta={"lastUpdated": at(
                                                      days=last_days_ago + (count - 1)
                                                      * days_apart).isoformat()}))
    return out


# ---------------------------------------------------------------- judge_steps (oral)


def test_policy_sized_steps_at_the_policy_interval_are_a_taper() -> None:
    tl = timeline(steps([60, 45, 30, 15], STANDARD.interval_days, 1))
    assert verdicts(tl) == [(60, 45, "policy"), (45, 30, "policy"), (30, 15, "policy")]


def test_weekly_separate_orders_are_a_taper_for_a_high_risk_patient() -> None:
    tl = timeline(steps([60, 45, 30, 15], HIGH.interval_days, 1))
    assert [v for *_, v in verdicts(tl, "high")] == ["policy"] * 3


def test_stop_from_a_low_dose_ends_the_taper() -> None:
    tl = timeline(steps([45, 30, 15], 7, 8, stop_after=7))
    assert verdicts(tl)[-1] == (15, 0, "policy")
    assert FINAL_MAX >= 15


def test_stop_from_above_the_final_dose_is_a_stop_even_in_a_taper() -> None:
    tl = timeline(steps([60, 45, 30], 7, 8, stop_after=7))
    assert verdicts(tl)[-1] == (30, 0, "stop")


def test_stop_of_a_steady_dose_is_a_stop() -> None:
    tl = timeline([daily_order("a", 15, at(days=300), "stopped", last_updated=at(days=1))])
    assert verdicts(tl) == [(15, 0, "stop")]


def test_large_cut_from_a_steady_dose() -> None:
    tl = timeline([daily_order("a", 60, at(days=300)), daily_order("b", 15, at(days=1),
                                                                   prior="a")])
    assert verdicts(tl) == [(60, 15, "cut")]


def test_cut_is_measured_from_the_dose_held_over_the_reference_window() -> None:
    # 60 -> 45 (a policy step) then 45 -> 30 the next day: 50% below the 60 held this week
    tl = timeline(steps([60, 45, 30], 1, 1))
    judged = judge_steps(tl, K, "standard")
    assert judged[-1].verdict == "cut" and judged[-1].reference == 60


def test_step_larger_than_the_policy_step_is_fast() -> None:
    tl = timeline([daily_order("a", 120, at(days=300)), daily_order("b", 75, at(days=1),
                                                                    prior="a")])
    assert verdicts(tl) == [(120, 75, "fast-step")]  # 37.5%: not a large cut, but 45 > 15


def test_step_sooner_than_the_policy_interval_is_fast() -> None:
    soon = STANDARD.interval_days - 1
    tl = timeline(steps([90, 80, 70], soon, 1))
    assert verdicts(tl) == [(90, 80, "policy"), (80, 70, "fast-step")]


def test_the_interval_depends_on_the_risk() -> None:
    tl = timeline(steps([90, 80, 70], STANDARD.interval_days, 1))
    assert verdicts(tl, "standard")[-1][-1] == "policy"
    assert verdicts(tl, "high")[-1][-1] == "fast-step"


def test_steps_far_apart_are_judged_as_a_new_start() -> None:
    # 20 -> 10 halves the dose: a policy step inside a taper, a cut once the taper is over
    assert verdicts(timeline(steps([30, 20, 10], 7, 1)))[-1] == (20, 10, "policy")
    far = K.threshold("taper_step_gap_max_days") + 5
    assert verdicts(timeline(steps([30, 20, 10], far, 1)))[-1] == (20, 10, "cut")


def test_hold_is_always_a_hold() -> None:
    tl = timeline([daily_order("a", 15, at(days=300), "on-hold", last_updated=at(days=1))])
    assert verdicts(tl) == [(15, 0, "hold")]


def test_rapid_step_down_to_a_stop() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "completed", last_updated=at(days=2)),
                   daily_order("b", 15, at(days=2), "stopped", prior="a",
                               last_updated=at(days=1))])
    assert verdicts(tl) == [(60, 15, "cut"), (15, 0, "stop")]


# ---------------------------------------------------------------- judge_steps (intrathecal)


def test_intrathecal_cut_of_forty_percent() -> None:
    tl = timeline(steps([500, 300], 7, 1, route="intrathecal"), route="intrathecal")
    assert verdicts(tl) == [(500, 300, "cut")]


def test_intrathecal_weekly_ten_percent_wean_is_quiet() -> None:
    tl = timeline(steps([500, 450, 405], 7, 1, route="intrathecal"), route="intrathecal")
    assert [v for *_, v in verdicts(tl)] == ["policy", "policy"]


def test_intrathecal_small_steps_too_often_are_fast() -> None:
    tl = timeline(steps([500, 470, 445], 3, 1, route="intrathecal"), route="intrathecal")
    assert verdicts(tl) == [(500, 470, "policy"), (470, 445, "fast-step")]


def test_intrathecal_stop_and_hold() -> None:
    stopped = timeline([pump_order("a", 400, at(days=100), "stopped",
                                   meta={"lastUpdated": at(days=1).isoformat()})],
                       route="intrathecal")
    assert verdicts(stopped) == [(400, 0, "stop")]
    held = timeline([pump_order("a", 400, at(days=100), "on-hold",
                                meta={"lastUpdated": at(days=1).isoformat()})],
                    route="intrathecal")
    assert verdicts(held) == [(400, 0, "hold")]


# ---------------------------------------------------------------- route_history by hook


@pytest.mark.parametrize("hook", ["patient-view", "encounter-start", "encounter-discharge"])
def test_history_hooks_report_a_recent_stop(hook: str) -> None:
    found = history([daily_order("a", 60, at(days=300), "stopped", last_updated=at(days=2))],
                    hook=hook)
    assert found.event.kind == "stop" and found.event.estimated
    assert (found.event.before, found.event.after) == (60, 0)


@pytest.mark.parametrize("hook", ["patient-view", "encounter-start"])
def test_history_hooks_forget_stops_older_than_the_lookback(hook: str) -> None:
    old = at(days=LOOKBACK + 2)
    found = history([daily_order("a", 60, at(days=300), "stopped", last_updated=old)], hook=hook)
    assert found.event.kind == "none"


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_draft_hooks_judge_only_the_drafts(hook: str) -> None:
    recorded = [daily_order("a", 60, at(days=300), "stopped", last_updated=at(days=2))]
    assert history(recorded, hook=hook).event.kind == "none"
    home = daily_order("h", 60, at(days=300))
    found = history([home], [as_draft(home, "stopped")], hook=hook)
    assert found.event.kind == "stop" and found.event.draft and found.event.at == NOW


@pytest.mark.parametrize("hook", ["patient-view", "encounter-start", "encounter-discharge"])
def test_stop_of_unknown_time_at_history_hooks(hook: str) -> None:
    found = history([daily_order("a", 60, at(days=300), "stopped")], hook=hook)
    assert found.event.kind == "stop" and found.event.at is None
    assert found.event.before == 60


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_stop_of_unknown_time_is_not_a_draft_event(hook: str) -> None:
    assert history([daily_order("a", 60, at(days=300), "stopped")], hook=hook).event.kind \
        == "none"


def test_stop_of_unknown_time_with_a_course_running_since_is_no_event() -> None:
    found = history([daily_order("a", 60, at(days=300), "stopped"),
                     daily_order("b", 60, at(days=30))])
    assert found.event.kind == "none"


@pytest.mark.parametrize("hook", HOOKS)
def test_hold_without_a_time_at_every_hook(hook: str) -> None:
    found = history([daily_order("a", 60, at(days=300), "on-hold")], hook=hook)
    assert found.event.kind == "hold" and found.event.at is None


@pytest.mark.parametrize("hook", HOOKS)
def test_steady_course_is_no_event_at_any_hook(hook: str) -> None:
    found = history([daily_order("a", 60, at(days=300))], hook=hook)
    assert found.event == RouteEvent("none") and not found.taper_in_progress


def test_the_worst_event_wins() -> None:
    found = history([daily_order("a", 80, at(days=300), "completed", last_updated=at(days=3)),
                     daily_order("b", 60, at(days=3), "stopped", prior="a",
                                 last_updated=at(days=1))])
    assert [j.verdict for j in found.judged] == ["fast-step", "stop"]
    assert found.event.kind == "stop"
    assert found.event.before == 80  # the highest dose held over the window


def test_taper_in_progress_and_the_previous_level() -> None:
    found = history(steps([60, 45, 30], 7, 2))
    assert found.event.kind == "none" and found.taper_in_progress
    assert found.previous_level == 45


def test_taper_in_progress_ends_with_an_event() -> None:
    found = history(steps([60, 45, 30], 7, 2, stop_after=1))
    assert found.event.kind == "stop" and not found.taper_in_progress


def test_draft_policy_step_continues_the_taper_quietly() -> None:
    recorded = steps([60, 45], 7, 7)
    found = history(recorded, [as_draft(daily_order("next", 30, NOW, prior="s1"))],
                    hook="order-sign")
    assert found.event.kind == "none" and found.taper_in_progress


def test_a_policy_paced_schedule_sent_without_the_order_it_replaces_is_a_taper() -> None:
    """Only the taper schedule reaches the service (the stop it replaced was never in the
    record): its steps continue the taper it is; the last step's halving is no cut."""
    high_step, days = HIGH.max_step_mg_per_day, HIGH.interval_days
    doses = [FINAL_MAX * 2, FINAL_MAX]
    assert doses[0] - doses[1] <= high_step
    drafted = as_draft(schedule("tap", doses, NOW, days), "draft")
    found = history([], [drafted], hook="order-sign", risk="high")
    assert found.event.kind == "none", found.event


def test_a_schedule_stepping_faster_than_the_policy_is_fast_on_its_own() -> None:
    drafted = as_draft(schedule("tap", [60, 20], NOW, 2), "draft")
    found = history([], [drafted], hook="order-sign")
    assert found.event.kind == "fast-step"


def test_stopping_a_schedule_midway_is_a_stop_of_the_step_it_is_at() -> None:
    """A one-order taper (60, 45, 30, 15 a week each) stopped on day 10: a stop from 45, the
    dose held since its last step, not a too-fast schedule and not from the 60 before."""
    recorded = schedule("tap", [60, 45, 30, 15], at(days=12), 7)  # at 45 for 5 days
    found = history([recorded], [as_draft(recorded, "stopped")], hook="order-sign")
    assert (found.event.kind, found.event.before, found.event.after) == ("stop", 45, 0)
    assert found.event.just_before is None


def test_a_stop_soon_after_a_step_is_judged_from_the_dose_before_the_step() -> None:
    """Two days after stepping 60 -> 45 (sooner than the policy interval), a stop is a stop
    from 60, and the card can say it had been lowered to 45 just before."""
    recorded = schedule("tap", [60, 45, 30, 15], at(days=9), 7)  # at 45 for 2 days
    found = history([recorded], [as_draft(recorded, "stopped")], hook="order-sign")
    assert (found.event.kind, found.event.before, found.event.just_before) == ("stop", 60, 45)


def test_an_edit_of_a_schedule_replaces_every_step_still_to_come() -> None:
    """The same schedule order sent again with new steps from today: its old steps end
    (running) or never start (future), so the two are never summed."""
    recorded = schedule("tap", [60, 45, 30, 15], at(days=9), 7)
    edited = as_draft(schedule("tap", [45, 30, 15], NOW, 10), "draft")
    tl = timeline([recorded], [edited])
    assert [tl.level_at(at(days=-d)) for d in (1, 6, 11, 16, 21, 31)] == [45, 45, 30, 30, 15, 0]


def test_draft_large_cut_is_a_draft_cut() -> None:
    found = history([daily_order("a", 80, at(days=300))],
                    [as_draft(daily_order("b", 20, NOW))], hook="order-sign")
    assert (found.event.kind, found.event.before, found.event.after) == ("cut", 80, 20)
    assert found.event.draft


def test_draft_end_date_is_a_scheduled_stop() -> None:
    home = daily_order("a", 60, at(days=300))
    edit = as_draft(daily_order("a", 60, at(days=300), end=at(days=-3)), "active")
    found = history([home], [edit], hook="order-sign")
    assert found.event.kind == "stop" and found.event.scheduled_end
    assert found.event.at == at(days=-3)


def test_draft_hold() -> None:
    home = daily_order("a", 60, at(days=300))
    found = history([home], [as_draft(home, "on-hold")], hook="order-sign")
    assert found.event.kind == "hold" and found.event.draft


@pytest.mark.parametrize(("reason", "meaning"), [
    (concept(coding(STATUS_REASON, "salg")), "serious-reaction"),
    (concept(coding(STATUS_REASON, "drughigh")), "toxicity"),
    (concept(coding(STATUS_REASON, "surg")), "interruption"),
    (concept(text="Angioedema after the last dose"), "serious-reaction"),
    (concept(text="baclofen overdose"), "toxicity"),
    (concept(text="patient request"), "other"),
])
def test_stop_reason_rides_on_the_event(reason: dict, meaning: str) -> None:
    order = daily_order("a", 60, at(days=300), "stopped", last_updated=at(days=1),
                        statusReason=reason)
    assert history([order]).event.stop_reason == meaning


def test_recent_increase_and_restart() -> None:
    raised = history([daily_order("a", 30, at(days=100)),
                      daily_order("b", 60, at(days=5), prior="a")])
    assert raised.recent_increase_at == at(days=5) and not raised.recent_restart
    restarted = history([daily_order("a", 30, at(days=100), "stopped", last_updated=at(days=10)),
                         daily_order("b", 30, at(days=3))])
    assert restarted.recent_restart and restarted.recent_increase_at is None


# ---------------------------------------------------------------- omission at transitions


def home(dose: float = 80) -> dict:
    return daily_order("home", dose, at(days=500), categories=("community",))


def admission_draft(rid: str, dose: float | None = None, **extra: object) -> dict:
    """An admission order of this encounter (baclofen when `dose` is given)."""
    if dose is None:
        order = request_with(concept(coding(RXNORM, "198211", "simvastatin 40 MG Oral Tablet")),
                             rid=rid, authored=NOW, encounter={"reference": f"Encounter/{ENC}"})
        return as_draft(order)
    return as_draft(daily_order(rid, dose, NOW, categories=("inpatient",), encounter=ENC,
                                **extra))


def facts(hook: str, resources: list[dict], drafts: list[dict] = (), encounter: str | None = ENC
          ) -> dict:
    context = {"patientId": "p1", **({"encounterId": encounter} if encounter else {})}
    found = EXTRACTOR.extract(hook, context, PatientRecord([patient(), *resources],
                                                           list(drafts)), NOW)
    (subject,) = [s for s in found.subjects if s.route == "oral"]
    return subject.facts


def omission_at(hook: str, resources: list[dict], drafts: list[dict] = (),
                encounter: str | None = ENC, signed: bool = True) -> RouteEvent | None:
    record = PatientRecord(list(resources), list(drafts))
    orders = READER.orders(record, False)
    tl = build_timeline("oral", orders, READER.administrations(record, orders, False), NOW, K)
    return omission(tl, hook, f"Encounter/{encounter}" if encounter else None,
                    [o for o in orders if o.is_draft], signed, READER.is_inpatient, K)


def test_admission_orders_leaving_out_home_baclofen_are_an_omission() -> None:
    event = omission_at("order-sign", [home()], [admission_draft("simva")])
    assert event is not None and (event.kind, event.before, event.after) == ("omission", 80, 0)
    assert facts("order-sign", [home()], [admission_draft("simva")])["event"] == "omission"


def test_admission_as_needed_order_does_not_replace_a_scheduled_home_dose() -> None:
    drafts = [admission_draft("simva"), admission_draft("prn", 5, as_needed=True)]
    event = omission_at("order-sign", [home()], drafts)
    assert event is not None and event.after == 0
    assert facts("order-sign", [home()], drafts)["event"] == "omission"


def test_admission_orders_continuing_the_home_dose_are_no_omission() -> None:
    drafts = [admission_draft("simva"), admission_draft("cont", 80)]
    assert omission_at("order-sign", [home()], drafts) is None
    assert facts("order-sign", [home()], drafts)["event"] == "none"


def test_admission_orders_at_a_much_lower_dose_are_a_cut() -> None:
    drafts = [admission_draft("simva"), admission_draft("low", 30)]
    found = facts("order-sign", [home()], drafts)
    assert (found["event"], found["daily_dose"], found["new_daily_dose"]) == ("cut", 80, 30)


def test_no_omission_without_an_encounter_or_admission_orders() -> None:
    assert omission_at("order-sign", [home()], [admission_draft("simva")], encounter=None) is None
    assert omission_at("order-sign", [home()], [], signed=False) is None


@pytest.mark.parametrize("hook", ["patient-view", "encounter-start"])
def test_no_omission_is_judged_before_orders_exist(hook: str) -> None:
    assert omission_at(hook, [home()]) is None
    assert facts(hook, [home()])["event"] == "none"


def test_discharge_leaving_out_the_baclofen_given_in_hospital() -> None:
    stopped_home = daily_order("home", 60, at(days=500), "stopped", last_updated=at(hours=1),
                               categories=("community",))
    inpatient = daily_order("inpt", 60, at(days=6), categories=("inpatient",), encounter=ENC)
    event = omission_at("encounter-discharge", [stopped_home, inpatient])
    assert event is not None and (event.kind, event.before, event.after) == ("omission", 60, 0)
    assert facts("encounter-discharge", [stopped_home, inpatient])["event"] == "omission"


def test_discharge_with_a_discharge_prescription_at_the_hospital_dose() -> None:
    inpatient = daily_order("inpt", 60, at(days=6), categories=("inpatient",), encounter=ENC)
    discharge = daily_order("dc", 60, at(hours=1), categories=("discharge",), encounter=ENC)
    assert omission_at("encounter-discharge", [inpatient, discharge]) is None
    assert facts("encounter-discharge", [inpatient, discharge])["event"] == "none"


def test_discharge_with_nothing_given_in_hospital_is_no_omission() -> None:
    assert omission_at("encounter-discharge", [home()]) is None
    assert facts("encounter-discharge", [home()])["event"] == "none"


def test_discharge_with_the_home_order_still_active_is_no_omission() -> None:
    inpatient = daily_order("inpt", 60, at(days=5), categories=("inpatient",), encounter=ENC)
    assert facts("encounter-discharge", [home(60), inpatient])["event"] == "none"


def test_event_time_facts() -> None:
    found = facts("patient-view", [daily_order("a", 60, at(days=300), "stopped",
                                               last_updated=at(days=2))])
    assert found["event"] == "stop" and found["event_time_known"]
    assert found["event_time_estimated"] and found["event_age_hours"] == 48
    assert found["cut_percent"] == 100 and found["daily_dose"] == 60


def test_at_an_unknown_time_the_event_age_is_not_claimed() -> None:
    found = facts("patient-view", [daily_order("a", 60, at(days=300), "stopped")])
    assert found["event"] == "stop" and not found["event_time_known"]
    assert found["dose_known"] and found["daily_dose"] == 60


def test_reference_window_reaches_back_the_configured_days() -> None:
    # Steps larger than the policy's: no taper, so the whole window is the reference.
    window = K.threshold("reference_window_days")
    big = STANDARD.max_step_mg_per_day + 5
    doses = [60, 60 - big, 60 - big - 10]
    inside = timeline(steps(doses, window - 2, 1))
    assert judge_steps(inside, K, "standard")[-1].reference == 60
    outside = timeline(steps(doses, window + 1, 1))
    assert judge_steps(outside, K, "standard")[-1].reference == doses[1]


def test_in_a_policy_paced_taper_the_reference_is_the_dose_since_its_last_step() -> None:
    interval = STANDARD.interval_days
    tl = timeline(steps([60, 45, 30], interval, 1))
    assert [(j.verdict, j.reference) for j in judge_steps(tl, K, "standard")][-1] == \
        ("policy", 45)


def test_judging_never_looks_past_now_for_history_hooks() -> None:
    later = daily_order("a", 60, at(days=300), end=NOW + timedelta(days=5))
    assert history([later]).event.kind == "none"


@pytest.mark.parametrize("hook", ["patient-view", "order-sign"])
def test_stop_beside_an_as_needed_order_is_an_event(hook: str) -> None:
    scheduled = daily_order("a", 60, at(days=300))
    as_needed = daily_order("prn", 10, at(days=300), as_needed=True)
    if hook == "order-sign":
        found = history([scheduled, as_needed], [as_draft(scheduled, "stopped")], hook=hook)
    else:
        scheduled.update(status="stopped", meta={"lastUpdated": at(days=2).isoformat()})
        found = history([scheduled, as_needed], hook=hook)
    assert found.event.kind == "stop"


def test_stop_of_an_order_planned_to_run_on_is_an_event() -> None:
    found = history([daily_order("a", 80, at(days=300), "stopped", end=at(days=-30))])
    assert found.event.kind == "stop"


def test_cut_of_an_undated_order_is_an_event() -> None:
    found = history([daily_order("a", 60, None), daily_order("b", 20, at(days=2), prior="a")])
    assert found.event.kind == "cut"
