"""Taper versus abrupt: draft stops and cuts, ended orders, omissions, exposure."""

import pytest

from cds.facts.discontinuation import find_discontinuations
from cds.facts.orders import collect_baclofen_orders
from cds.facts.record import PatientRecord
from rules import load_knowledge
from tests.clinical_builders import NOW, ago, baclofen_request, dosage

K = load_knowledge()


def events(hook, resources=(), drafts=(), context=None):
    data = PatientRecord(list(resources), list(drafts))
    orders = collect_baclofen_orders(data, K)
    return find_discontinuations(hook, context or {"patientId": "p1"}, orders, NOW, K)


def test_draft_stop_of_current_order():
    current = baclofen_request("mr1", days_ago=120)
    (event,) = events("order-sign", [current], [dict(current, status="stopped")])
    assert event.kind == "stop" and event.route == "oral"
    assert event.current_daily == 30 and event.target_daily == 0
    assert 119 < event.exposure_days < 121
    assert event.draft_order["id"] == "mr1"


def test_cancel_and_do_not_perform_are_stops():
    current = baclofen_request("mr1")
    assert events("order-sign", [current], [dict(current, status="cancelled")])[0].kind == "stop"
    assert events("order-select", [current], [dict(current, doNotPerform=True)])[0].kind == "stop"


def test_entered_in_error_is_never_a_discontinuation():
    current = baclofen_request("mr1")
    assert events("order-sign", [current], [dict(current, status="entered-in-error")]) == []
    assert events("patient-view", [dict(current, status="entered-in-error")]) == []


def test_large_cut_is_abrupt_small_step_is_not():
    current = baclofen_request("mr1", dosages=[dosage(20, "mg", frequency=3)])  # 60 mg/day
    half = baclofen_request("mr2", days_ago=0, dosages=[dosage(10, "mg", frequency=3)],
                            priorPrescription={"reference": "MedicationRequest/mr1"})
    (event,) = events("order-sign", [current], [half])
    assert event.kind == "cut" and event.target_daily == 30
    assert event.cut_fraction == pytest.approx(0.5)
    step = dict(half, dosageInstruction=[dosage(15, "mg", frequency=3)])  # 45 mg/day
    assert events("order-sign", [current], [step]) == []


def test_draft_that_is_itself_a_taper_plan_is_not_abrupt():
    current = baclofen_request("mr1", dosages=[dosage(20, "mg", frequency=3)])
    plan = [dict(dosage(v, "mg"), sequence=i) for i, v in enumerate([15, 10, 5], start=1)]
    taper = baclofen_request("mr2", days_ago=0, dosages=plan,
                             priorPrescription={"reference": "MedicationRequest/mr1"})
    assert events("order-sign", [current], [taper]) == []


def test_stop_at_the_end_of_a_taper_is_not_abrupt():
    earlier = baclofen_request("mr0", status="completed", days_ago=60,
                               dosages=[dosage(10, "mg", frequency=3)],
                               dispenseRequest={"validityPeriod": {"start": ago(60),
                                                                   "end": ago(10)}})
    last = baclofen_request("mr1", days_ago=10, rxcui="430902",
                            dosages=[dosage(5, "mg", frequency=2)])
    assert events("order-sign", [earlier, last], [dict(last, status="stopped")]) == []


def test_new_start_is_not_a_discontinuation():
    assert events("order-sign", [], [baclofen_request("mr9", days_ago=0)]) == []


def test_unknown_dose_stop_still_counts():
    current = baclofen_request("mr1", dosages=[{"text": "as directed"}])
    (event,) = events("order-sign", [current], [dict(current, status="stopped")])
    assert not event.dose_known and event.kind == "stop"


def test_ended_order_within_lookback_counts_once_ended_long_ago_does_not():
    recent = baclofen_request("mr1", status="stopped", days_ago=200, dispenseRequest={
        "validityPeriod": {"start": ago(200), "end": ago(3)}})
    (event,) = events("patient-view", [recent])
    assert event.kind == "ended" and 196 < event.exposure_days < 198
    old = baclofen_request("mr1", status="stopped", days_ago=200, dispenseRequest={
        "validityPeriod": {"start": ago(200), "end": ago(40)}})
    assert events("patient-view", [old]) == []


def test_ended_order_with_active_successor_is_not_a_stop():
    ended = baclofen_request("mr1", status="completed", days_ago=100, dispenseRequest={
        "validityPeriod": {"start": ago(100), "end": ago(2)}})
    renewal = baclofen_request("mr2", days_ago=2)
    assert events("patient-view", [ended, renewal]) == []


def test_exposure_follows_the_chain_of_earlier_orders():
    first = baclofen_request("mr0", status="completed", days_ago=300, dispenseRequest={
        "validityPeriod": {"start": ago(300), "end": ago(91)}})
    second = baclofen_request("mr1", days_ago=90)
    (event,) = events("order-sign", [first, second], [dict(second, status="stopped")])
    assert 299 < event.exposure_days < 301


def test_omission_at_admission_and_continuation():
    home = baclofen_request("home1", days_ago=400,
                            category=[{"coding": [{"code": "community"}]}])
    ctx = {"patientId": "p1", "encounterId": "enc1"}
    (event,) = events("encounter-start", [home], context=ctx)
    assert event.kind == "omission" and event.current_daily == 30
    inpatient = baclofen_request("in1", days_ago=0, encounter={"reference": "Encounter/enc1"})
    assert events("encounter-start", [home, inpatient], context=ctx) == []
    assert events("encounter-discharge", [home], context={"patientId": "p1"}) == []


def test_stop_draft_with_its_own_id_stops_the_current_order():
    # EHRs often send the discontinue as a new MedicationRequest that does not link back.
    current = baclofen_request("mr1", days_ago=120)  # 30 mg/day
    stop = dict(current, id="draft-stop", status="stopped")
    (event,) = events("order-sign", [current], [stop])
    assert event.kind == "stop"
    assert event.current_daily == 30 and event.target_daily == 0
    assert event.draft_order["id"] == "draft-stop"
