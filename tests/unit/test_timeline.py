"""The baclofen timeline of one route (cds.facts.timeline): how every way an order ends,
pauses, renews or is replaced becomes the daily dose over time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from cds.facts.orders import OrderReader
from cds.facts.record import PatientRecord
from cds.facts.timeline import Timeline, build_timeline
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    NOW,
    administration,
    as_draft,
    at,
    baclofen_request,
    daily_order,
    dosage,
    iso,
    pump_order,
    sig_dosage,
)

K = load_knowledge()
READER = OrderReader(K)
GAP_HOURS = K.threshold("replacement_gap_hours")


def timeline(resources: Iterable[dict], drafts: Iterable[dict] = (), now: datetime = NOW,
             route: str = "oral", pump: bool = False) -> Timeline:
    record = PatientRecord(list(resources), list(drafts))
    orders = READER.orders(record, pump)
    given = READER.administrations(record, orders, pump)
    return build_timeline(route, orders, given, now, K)


def levels(tl: Timeline) -> list[tuple[float | None, float | None]]:
    return [(s.before, s.after) for s in tl.steps()]


def schedule(rid: str, doses: list[float], first: datetime, days_each: int,
             status: str = "active") -> dict:
    """One order holding a taper: sequenced steps, each with its dated boundsPeriod."""
    steps = []
    for index, mg in enumerate(doses):
        begin = first + timedelta(days=index * days_each)
        step = dict(dosage(mg, "mg", frequency=1), sequence=index + 1)
        step["timing"]["repeat"]["boundsPeriod"] = {
            "start": iso(begin), "end": iso(begin + timedelta(days=days_each))}
        steps.append(step)
    out = baclofen_request(rid, status=status, dosages=steps)
    out["authoredOn"] = iso(first)
    return out


# ---------------------------------------------------------------- stopped and completed


def test_stopped_with_last_updated_ends_then_as_an_estimate() -> None:
    tl = timeline([daily_order("a", 80, at(days=300), "stopped", last_updated=at(days=2))])
    (segment,) = tl.segments
    assert segment.end == at(days=2) and segment.end_estimated
    (start, stop) = tl.steps()
    assert (stop.at, stop.before, stop.after, stop.estimated) == (at(days=2), 80, 0, True)
    assert tl.level_at(at(days=3)) == 80 and tl.level_at(at(days=1)) == 0


@pytest.mark.parametrize("status", ["stopped", "completed"])
def test_ended_without_end_or_last_updated_ended_at_an_unknown_time(status: str) -> None:
    tl = timeline([daily_order("a", 80, at(days=300), status)])
    (segment,) = tl.segments
    assert segment.end is None and segment.end_unknown
    assert tl.unknown_stops() == [segment] and tl.running() == []
    assert tl.level_at(NOW) == 0


def test_completed_at_its_planned_end_is_not_an_estimate() -> None:
    tl = timeline([daily_order("a", 80, at(days=300), "completed", end=at(days=3),
                               last_updated=at(days=1))])
    (segment,) = tl.segments
    assert segment.end == at(days=3) and not segment.end_estimated


def test_stopped_long_before_its_planned_end_ends_at_last_updated() -> None:
    tl = timeline([daily_order("a", 80, at(days=300), "stopped", end=at(days=-30),
                               last_updated=at(days=1))])
    (segment,) = tl.segments
    assert segment.end == at(days=1) and segment.end_estimated


def test_completed_with_a_lapsed_prescription_ended_when_the_supply_did() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "completed", validity_end=at(days=5))])
    (segment,) = tl.segments
    assert segment.end == at(days=5) and segment.end_estimated and not segment.end_unknown


def test_planned_end_from_bounds_duration() -> None:
    request = daily_order("a", 30, at(days=10))
    request["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"] = {
        "value": 5, "unit": "d", "code": "d"}
    (segment,) = timeline([request]).segments
    assert segment.end == at(days=5)


def test_active_order_past_its_planned_end_has_ended() -> None:
    tl = timeline([daily_order("a", 80, at(days=300), end=at(days=3))])
    assert tl.segments[0].end == at(days=3) and tl.running() == []


def test_stopped_order_given_after_its_recorded_stop_ran_until_the_last_dose() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "stopped", last_updated=at(days=5)),
                   administration("g", at(days=1), "a", amount=20)])
    (segment,) = tl.segments
    assert segment.end == at(days=1) and segment.end_estimated


# ---------------------------------------------------------------- validity and administrations


def test_lapsed_validity_alone_does_not_end_an_active_order() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), validity_end=at(days=10))])
    assert tl.running() and tl.level_at(NOW) == 60 and tl.steps()[-1].after == 60


def test_lapsed_validity_with_continuing_administrations_keeps_running() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), validity_end=at(days=10)),
                   administration("g", at(hours=5), "a", amount=20)])
    assert tl.running() and tl.level_at(NOW) == 60


def test_recent_doses_keep_an_order_running_past_its_planned_end() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), end=at(days=3)),
                   administration("g", at(hours=6), "a", amount=20)])
    assert tl.segments[0].end is None and tl.level_at(NOW) == 60


def test_old_doses_after_the_planned_end_move_the_end_only() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), end=at(days=10)),
                   administration("g", at(days=6), "a", amount=20)])
    (segment,) = tl.segments
    assert segment.end == at(days=6) and segment.end_estimated


# ---------------------------------------------------------------- holds


def test_on_hold_since_last_updated() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "on-hold", last_updated=at(days=1))])
    (segment,) = tl.segments
    assert segment.held and segment.held_since == at(days=1) and segment.held_estimated
    hold = tl.steps()[-1]
    assert (hold.at, hold.before, hold.after, hold.hold, hold.estimated) == (
        at(days=1), 60, 0, True, True)
    assert tl.held_segments() == [segment] and tl.running() == []


def test_on_hold_without_a_time_is_held_with_no_step() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "on-hold")])
    (segment,) = tl.segments
    assert segment.held and segment.held_since is None
    assert tl.held_segments() == [segment] and tl.level_at(NOW) == 0


# ---------------------------------------------------------------- renewals and replacements


def test_renewal_at_the_same_dose_is_not_added() -> None:
    tl = timeline([daily_order("a", 60, at(days=300)), daily_order("b", 60, at(days=30))])
    assert tl.level_at(NOW) == 60 and tl.ambiguity is None
    assert levels(tl) == [(0, 60)]


def test_renewal_after_a_lapsed_prescription_replaces_it() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), validity_end=at(days=20)),
                   daily_order("b", 45, at(days=10))])
    assert tl.ambiguity is None and tl.level_at(NOW) == 45


def test_linked_new_order_replaces_without_ambiguity() -> None:
    tl = timeline([daily_order("a", 80, at(days=300)),
                   daily_order("b", 20, at(days=2), prior="a")])
    assert tl.ambiguity is None
    assert levels(tl)[-1] == (80, 20) and tl.level_at(NOW) == 20


def test_unlinked_new_order_beside_an_active_one_is_ambiguous() -> None:
    tl = timeline([daily_order("a", 80, at(days=300)), daily_order("b", 20, at(days=2))])
    assert tl.ambiguity is not None
    assert [o.ref for o in tl.ambiguity.replaced] == ["MedicationRequest/a"]
    assert tl.ambiguity.new.ref == "MedicationRequest/b"
    assert tl.ambiguity.addition_total == 100  # the other reading: added, above the max
    assert tl.level_at(NOW) == 20  # the timeline keeps the replacement reading


def test_a_new_draft_beside_a_stop_of_the_current_order_in_the_same_signing_replaces_it() -> None:
    """The same signing stops the current order and adds the new one: it cannot be an
    addition, so no "if it is added" reading."""
    current = daily_order("a", 80, at(days=300))
    tl = timeline([current], [as_draft(current, "stopped"),
                              as_draft(daily_order("b", 40, NOW))])
    assert tl.ambiguity is None and levels(tl)[-1] == (80, 40)


def test_a_new_draft_beside_a_current_order_left_running_is_still_ambiguous() -> None:
    tl = timeline([daily_order("a", 80, at(days=300)),
                   daily_order("c", 10, at(days=300, hours=-0.5))],  # one regimen with a
                  [as_draft(daily_order("a", 80, at(days=300)), "stopped"),
                   as_draft(daily_order("b", 40, NOW))])
    assert tl.ambiguity is not None
    assert [o.ref for o in tl.ambiguity.replaced] == ["MedicationRequest/a",
                                                      "MedicationRequest/c"]


def test_sequenced_steps_with_durations_run_one_after_another() -> None:
    """"20 mg twice daily for 2 days, then 10 mg twice daily for 2 days": four days in
    two steps, not two days (each boundsDuration counts from the end of the step before)."""
    steps = []
    for index, mg in enumerate([40, 20]):
        step = dict(dosage(mg, "mg", frequency=1), sequence=index + 1)
        step["timing"]["repeat"]["boundsDuration"] = {"value": 2, "unit": "days",
                                                      "system": "http://unitsofmeasure.org",
                                                      "code": "d"}
        steps.append(step)
    taper = baclofen_request("t", status="draft", dosages=steps)
    taper["authoredOn"] = iso(NOW)
    tl = timeline([daily_order("a", 80, at(days=300))], [taper])
    assert [(s.level, s.start, s.end) for s in tl.segments if s.order.is_draft] == [
        (40, NOW, NOW + timedelta(days=2)),
        (20, NOW + timedelta(days=2), NOW + timedelta(days=4))]
    assert levels(tl)[-3:] == [(80, 40), (40, 20), (20, 0)]


def test_unlinked_new_order_after_the_old_one_completed_is_not_ambiguous() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "completed", last_updated=at(days=2)),
                   daily_order("b", 20, at(days=2))])
    assert tl.ambiguity is None and levels(tl)[-1] == (60, 20)


def test_inpatient_order_stands_in_for_the_home_order() -> None:
    tl = timeline([daily_order("home", 80, at(days=500), categories=("community",)),
                   daily_order("inpt", 60, at(days=2), categories=("inpatient",))])
    assert tl.ambiguity is None and tl.level_at(NOW) == 60


def test_orders_written_together_are_one_regimen_and_summed() -> None:
    tl = timeline([daily_order("am", 20, at(days=30)),
                   daily_order("pm", 10, at(days=30, hours=-0.5))])
    assert tl.level_at(NOW) == 30 and tl.ambiguity is None


def test_as_needed_order_beside_a_scheduled_one_is_not_a_replacement() -> None:
    tl = timeline([daily_order("a", 60, at(days=300)),
                   daily_order("prn", 10, at(days=2), as_needed=True)])
    assert tl.ambiguity is None
    assert tl.level_at(NOW) == 60


def test_replacement_within_the_gap_is_not_a_stop_and_restart() -> None:
    stopped = at(hours=GAP_HOURS / 2)
    tl = timeline([daily_order("a", 60, at(days=300), "stopped", last_updated=stopped),
                   daily_order("b", 45, at(hours=1))])
    assert levels(tl) == [(0, 60), (60, 45)]


def test_replacement_beyond_the_gap_is_a_stop_then_a_restart() -> None:
    stopped = at(hours=GAP_HOURS + 6)
    tl = timeline([daily_order("a", 60, at(days=300), "stopped", last_updated=stopped),
                   daily_order("b", 45, at(hours=1))])
    assert levels(tl) == [(0, 60), (60, 0), (0, 45)]


def test_other_routes_stay_off_the_timeline() -> None:
    tl = timeline([daily_order("a", 60, at(days=300)), pump_order("it", 400, at(days=100))])
    assert [s.order.ref for s in tl.segments] == ["MedicationRequest/a"]
    pump = timeline([daily_order("a", 60, at(days=300)), pump_order("it", 400, at(days=100))],
                    route="intrathecal")
    assert pump.level_at(NOW) == 400


def test_single_doses_are_not_a_course() -> None:
    bolus = pump_order("bolus", 0, at(days=1))
    bolus["dosageInstruction"] = [sig_dosage("50 mcg intrathecal bolus x1")]
    assert timeline([bolus], route="intrathecal").segments == []


def test_entered_in_error_and_cancelled_orders_never_count() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "entered-in-error"),
                   daily_order("b", 60, at(days=300), "cancelled")])
    assert tl.segments == []


# ---------------------------------------------------------------- as needed


def test_as_needed_only_course_without_administrations_is_unknown() -> None:
    tl = timeline([daily_order("prn", 10, at(days=60), as_needed=True)])
    assert tl.prn is not None and tl.prn.regular is None
    assert tl.level_at(NOW) is None


def test_as_needed_taken_every_day_is_a_daily_exposure() -> None:
    window = int(K.threshold("prn_use_window_days"))
    given = [administration(f"g{d}", at(days=d, hours=2), "prn", amount=10)
             for d in range(window)]
    tl = timeline([daily_order("prn", 10, at(days=60), as_needed=True), *given])
    assert tl.prn.regular is True and tl.prn.days_given == window
    assert tl.level_at(NOW) == pytest.approx(10)


def test_as_needed_taken_sporadically_is_no_exposure() -> None:
    given = [administration(f"g{d}", at(days=d, hours=2), "prn", amount=10) for d in (1, 9)]
    tl = timeline([daily_order("prn", 10, at(days=60), as_needed=True), *given])
    assert tl.prn.regular is False and tl.level_at(NOW) == 0


# ---------------------------------------------------------------- drafts


def test_draft_stop_marker_ends_the_order_now() -> None:
    home = daily_order("a", 80, at(days=300))
    tl = timeline([home], [as_draft(home, "stopped")])
    assert tl.segments[0].end == NOW and tl.segments[0].draft
    stop = tl.steps()[-1]
    assert (stop.at, stop.before, stop.after, stop.draft) == (NOW, 80, 0, True)


@pytest.mark.parametrize("marker", [
    {"status": "cancelled"}, {"status": "completed"}, {"doNotPerform": True},
])
def test_other_stop_markers_naming_the_order(marker: dict) -> None:
    draft = as_draft({**daily_order("x", 80, NOW, prior="a"), **marker},
                     marker.get("status", "draft"))
    tl = timeline([daily_order("a", 80, at(days=300))], [draft])
    assert tl.level_at(NOW) == 0 and tl.segments[0].changed_by is not None


def test_draft_hold() -> None:
    home = daily_order("a", 80, at(days=300))
    tl = timeline([home], [as_draft(home, "on-hold")])
    (segment,) = tl.segments
    assert segment.held and segment.held_since == NOW and segment.draft
    assert tl.steps()[-1].hold


def test_draft_edit_adding_an_end_date_is_a_scheduled_stop() -> None:
    home = daily_order("a", 80, at(days=300))
    edit = daily_order("a", 80, at(days=300), end=at(days=-2))
    tl = timeline([home], [as_draft(edit, "active")])
    (segment,) = tl.segments
    assert segment.end == at(days=-2) and segment.scheduled_end and segment.draft
    assert tl.steps()[-1].scheduled_end


def test_draft_edit_at_the_same_dose_without_an_end_changes_nothing() -> None:
    home = daily_order("a", 80, at(days=300))
    tl = timeline([home], [as_draft(home, "active")])
    assert levels(tl) == [(0, 80)] and tl.segments[0].end is None


def test_linked_draft_at_a_new_dose_replaces_from_now() -> None:
    tl = timeline([daily_order("a", 60, at(days=300))],
                  [as_draft(daily_order("b", 45, NOW, prior="a"))])
    assert levels(tl)[-1] == (60, 45) and tl.ambiguity is None


def test_unlinked_draft_beside_an_active_order_is_ambiguous() -> None:
    tl = timeline([daily_order("a", 80, at(days=300))], [as_draft(daily_order("b", 20, NOW))])
    assert tl.ambiguity is not None and tl.ambiguity.addition_total == 100
    assert levels(tl)[-1] == (80, 20)


def test_as_needed_draft_beside_a_scheduled_order_leaves_it_running() -> None:
    tl = timeline([daily_order("a", 80, at(days=300))],
                  [as_draft(daily_order("prn", 10, NOW, as_needed=True))])
    assert tl.ambiguity is None and tl.level_at(NOW + timedelta(days=1)) == 80


def test_draft_taper_schedule_with_dated_steps() -> None:
    tl = timeline([daily_order("a", 60, at(days=300))],
                  [as_draft(schedule("tap", [45, 30, 15], NOW, 7), "draft")])
    assert levels(tl)[1:] == [(60, 45), (45, 30), (30, 15), (15, 0)]
    assert [s.at for s in tl.steps()[1:]] == [NOW + timedelta(days=7 * i) for i in range(4)]
    assert all(s.draft for s in tl.steps()[1:])


def test_draft_starting_later_keeps_the_current_dose_until_then() -> None:
    tl = timeline([daily_order("a", 60, at(days=300))],
                  [as_draft(daily_order("b", 45, at(days=-3), prior="a"))])
    assert tl.level_at(NOW + timedelta(days=1)) == 60
    assert tl.level_at(NOW + timedelta(days=4)) == 45


def test_draft_replacement_within_the_gap_of_a_recent_stop() -> None:
    stopped = at(hours=GAP_HOURS / 2)
    tl = timeline([daily_order("a", 60, at(days=300), "stopped", last_updated=stopped)],
                  [as_draft(daily_order("b", 45, NOW))])
    assert levels(tl) == [(0, 60), (60, 45)]


def test_draft_after_a_stop_beyond_the_gap_is_a_restart() -> None:
    stopped = at(hours=GAP_HOURS + 6)
    tl = timeline([daily_order("a", 60, at(days=300), "stopped", last_updated=stopped)],
                  [as_draft(daily_order("b", 45, NOW))])
    assert levels(tl) == [(0, 60), (60, 0), (0, 45)]


def test_signed_taper_schedule_is_read_step_by_step() -> None:
    start = at(days=16)
    tl = timeline([daily_order("a", 60, at(days=300), "completed", last_updated=start),
                   schedule("tap", [45, 30, 15], start, 7)])
    assert tl.level_at(NOW) == 15  # week 3 of the schedule
    # ... and the schedule's last step ends in 5 days: the planned end of the taper.
    assert levels(tl)[1:] == [(60, 45), (45, 30), (30, 15), (15, 0)]
    assert tl.steps()[-1].at == start + timedelta(days=21)


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("resources", [
    [daily_order("a", 80, at(days=300), "stopped")],
    [daily_order("a", 80, None)],
    [daily_order("a", 80, at(days=300)), daily_order("b", 10, None)],
])
def test_orders_without_dates_never_break_the_timeline(resources: list[dict]) -> None:
    tl = timeline(resources)
    assert all((s.before or 0) >= 0 and (s.after or 0) >= 0 for s in tl.steps())


def test_stopped_order_with_a_future_planned_end_is_not_running() -> None:
    tl = timeline([daily_order("a", 80, at(days=300), "stopped", end=at(days=-30))])
    assert tl.running() == [] and tl.level_at(NOW) == 0


def test_as_needed_order_does_not_hide_the_stop_of_a_scheduled_one() -> None:
    tl = timeline([daily_order("a", 60, at(days=300), "stopped", last_updated=at(days=2)),
                   daily_order("prn", 10, at(days=300), as_needed=True)])
    assert any(s.at == at(days=2) and s.is_drop for s in tl.steps())


@pytest.mark.parametrize("prior", ["a", None])
def test_order_without_a_date_is_replaced_by_its_successor(prior: str | None) -> None:
    tl = timeline([daily_order("a", 60, None), daily_order("b", 20, at(days=2), prior=prior)])
    assert tl.level_at(NOW) == 20


# ---------------------------------------------------------------- as-needed supply


def _prn_with_supply(tablets: int, repeats: int, days: int) -> dict:
    order = daily_order("prn", 10, at(days=days), "stopped", as_needed=True,
                        last_updated=at(days=1))
    order["dispenseRequest"] = {"quantity": {"value": tablets, "unit": "tablet",
                                             "system": "http://unitsofmeasure.org",
                                             "code": "{tbl}"},
                                "numberOfRepeatsAllowed": repeats}
    return order


def test_a_small_supply_shows_sporadic_as_needed_use() -> None:
    tl = timeline([_prn_with_supply(20, 0, 150)])
    assert tl.prn is not None and tl.prn.regular is False and tl.prn.supply_days == 20


@pytest.mark.parametrize(("tablets", "repeats", "days"), [(90, 0, 30), (30, 5, 150)])
def test_a_supply_enough_for_regular_use_proves_nothing(tablets: int, repeats: int,
                                                        days: int) -> None:
    tl = timeline([_prn_with_supply(tablets, repeats, days)])
    assert tl.prn is not None and tl.prn.regular is None and tl.prn.supply_days is None
