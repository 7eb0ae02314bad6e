"""Intrathecal pump state (cds.facts.pump): the reservoir's depletion date from a refill or a
reading, alarms, battery, and staying quiet when the record does not support a claim."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from cds.assessment import ClinicalEngine
from cds.facts.orders import OrderReader
from cds.facts.pump import PumpReader, PumpState
from cds.facts.record import PatientRecord
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    NOW,
    ROUTE_INTRATHECAL,
    RXNORM,
    administration,
    at,
    coding,
    concept,
    device_property,
    flowsheet,
    patient,
    pump_device,
    pump_order,
    pump_procedure,
    quantity,
)

K = load_knowledge()
PUMPS = PumpReader(K)
ORDERS = OrderReader(K)
ENGINE = ClinicalEngine(K)
MARGIN = K.threshold("pump_low_reservoir_margin_ml")
WARNING_DAYS = K.threshold("pump_refill_warning_days")


def state(resources: Iterable[dict], dose_mcg: float | None = None,
          concentration: float | None = None, now: datetime = NOW) -> PumpState:
    resources = list(resources)
    record = PatientRecord(resources, [])
    on_record = PUMPS.on_record(resources)
    orders = ORDERS.orders(record, on_record)
    given = ORDERS.administrations(record, orders, on_record)
    return PUMPS.read(resources, given, dose_mcg, concentration, now)


def flags(pump: PumpState, now: datetime = NOW) -> dict[str, Any]:
    return pump.flags(now, WARNING_DAYS)


def refill(when: datetime, ml: float = 20, rxcui: str = "1666613", aid: str = "refill"
           ) -> dict:
    """A pump refill recorded as a MedicationAdministration of intrathecal baclofen."""
    return administration(aid, when, None, concept(coding(RXNORM, rxcui)), ml, "mL",
                          ROUTE_INTRATHECAL)


def days_left(volume: float, mcg_per_ml: float, mcg_per_day: float) -> float:
    return (volume - MARGIN) * mcg_per_ml / mcg_per_day


def cards(resources: list[dict]) -> list[tuple[str, str]]:
    found = ENGINE.assess("patient-view", {"patientId": "p1"},
                          PatientRecord([patient(), *resources], []), NOW)
    return [(f.kind.kind, f.kind.indicator) for f in found.findings]


# ---------------------------------------------------------------- is there a pump


@pytest.mark.parametrize("resource", [
    pump_device(), pump_device(name="Prometra II", type_text="implant"),
    pump_device(name="", type_text="Intrathecal baclofen pump"),
    pump_procedure(), pump_procedure(cpt="62362", display="Implantation of programmable pump"),
    pump_procedure(cpt="x", display="ITB pump refill"),
])
def test_pump_on_record(resource: dict) -> None:
    assert PUMPS.on_record([resource])


@pytest.mark.parametrize("resource", [
    pump_device(name="Omnipod", type_text="insulin pump"),
    pump_device() | {"status": "entered-in-error"},
    pump_procedure(status="not-done"), pump_procedure(cpt="44950", display="Appendectomy"),
])
def test_no_pump_on_record(resource: dict) -> None:
    assert not PUMPS.on_record([resource])


# ---------------------------------------------------------------- depletion date


def test_depletion_from_a_refill_administration() -> None:
    refilled = at(days=84)
    pump = state([pump_device(), refill(refilled)], dose_mcg=450)
    expected = refilled + timedelta(days=days_left(20, 2000, 450))
    assert pump.depletion_at == expected
    assert "refill of 20 mL" in pump.basis and "2000 mcg/mL" in pump.basis
    assert flags(pump)["pump_refill_overdue"] and flags(pump)["pump_delivery_at_risk"]
    assert flags(pump)["days_to_depletion"] == pytest.approx(-4.0, abs=0.1)


@pytest.mark.parametrize(("refilled_days_ago", "overdue", "soon"), [
    (10, False, False), (70, False, False), (75, False, True), (84, True, False),
])
def test_overdue_soon_or_fine(refilled_days_ago: float, overdue: bool, soon: bool) -> None:
    # 20 mL of 2000 mcg/mL at 450 mcg/day lasts 80 days to the 2 mL alarm volume
    found = flags(state([pump_device(), refill(at(days=refilled_days_ago))], dose_mcg=450))
    assert (found["pump_refill_overdue"], found["pump_depletion_soon"]) == (overdue, soon)


def test_depletion_from_a_procedure_note() -> None:
    done = at(days=60)
    note = "Refilled 20 mL baclofen 1000 mcg/mL; 350 mcg/day."
    pump = state([pump_device(), pump_procedure(when=done, note=note)], dose_mcg=350)
    assert pump.depletion_at == done + timedelta(days=days_left(20, 1000, 350))
    assert pump.last_procedure_at == done


@pytest.mark.parametrize(("written", "mcg_per_ml"), [
    ("2 mg/mL", 2000), ("2,000 mcg/mL", 2000), ("500 mcg/ml", 500), ("1000 micrograms/mL", 1000),
])
def test_concentration_written_in_the_note(written: str, mcg_per_ml: float) -> None:
    done = at(days=10)
    pump = state([pump_procedure(when=done, note=f"Refilled 20 mL of {written}")], dose_mcg=400)
    assert pump.depletion_at == done + timedelta(days=days_left(20, mcg_per_ml, 400))


def test_concentration_from_the_order_when_the_note_omits_it() -> None:
    done = at(days=10)
    pump = state([pump_procedure(when=done, note="Refilled 20 mL.")], dose_mcg=400,
                 concentration=2.0)
    assert pump.depletion_at == done + timedelta(days=days_left(20, 2000, 400))


def test_depletion_from_a_reservoir_reading() -> None:
    read_at = at(hours=3)
    volume = flowsheet("Intrathecal pump reservoir volume", hours_ago=3,
                       valueQuantity=quantity(10, "mL"))
    pump = state([pump_device(), volume], dose_mcg=250, concentration=2.0)
    assert pump.depletion_at == read_at + timedelta(days=days_left(10, 2000, 250))
    assert "reservoir 10 mL" in pump.basis


def test_reservoir_already_below_the_alarm_volume_is_overdue() -> None:
    volume = flowsheet("Intrathecal pump reservoir volume", hours_ago=3,
                       valueQuantity=quantity(1.6, "mL"))
    pump = state([pump_device(), volume], dose_mcg=250, concentration=2.0)
    assert pump.depletion_at == at(hours=3) and flags(pump)["pump_refill_overdue"]


def test_the_latest_refill_or_reading_counts() -> None:
    older = refill(at(days=84), aid="old")
    newer = refill(at(days=5), aid="new")
    pump = state([pump_device(), older, newer], dose_mcg=450)
    assert pump.depletion_at == at(days=5) + timedelta(days=days_left(20, 2000, 450))


def test_programmed_daily_dose_reading_when_the_order_has_none() -> None:
    dose = flowsheet("Intrathecal pump programmed daily dose", oid="dose", hours_ago=24 * 84,
                     valueQuantity=quantity(450, "mcg/day", "ug/d"))
    pump = state([pump_device(), dose, refill(at(days=84))])
    assert pump.daily_dose_mcg == 450 and flags(pump)["pump_refill_overdue"]


def test_the_pump_alarm_volume_of_the_device() -> None:
    device = pump_device(properties=[device_property("Low reservoir alarm threshold", ml=4)])
    pump = state([device, refill(at(days=10))], dose_mcg=450)
    assert pump.depletion_at == at(days=10) + timedelta(days=(20 - 4) * 2000 / 450)


def test_depletion_through_the_engine_from_the_order_dose() -> None:
    found = cards([pump_order(mcg_per_day=450, start=at(days=300)), pump_device(),
                   refill(at(days=84))])
    assert found == [("pump-delivery-risk", "warning")]


# ---------------------------------------------------------------- alarms and battery


@pytest.mark.parametrize("resource", [
    flowsheet("Intrathecal pump alarm", valueString="Low reservoir alarm (single tone)"),
    flowsheet("Pump alarm", valueCodeableConcept=concept(text="Critical alarm: motor stall")),
    pump_device(properties=[device_property("Active alarm", text="LOW RESERVOIR")]),
    pump_device(statusReason=[{"text": "Low reservoir alarm active"}]),
])
def test_alarms(resource: dict) -> None:
    pump = state([pump_device(did="d0"), resource])
    assert pump.alarm and flags(pump)["pump_alarm"] and flags(pump)["pump_delivery_at_risk"]


@pytest.mark.parametrize("value", ["No alarms", "none", "cleared", "Normal"])
def test_alarm_readings_that_say_all_is_well(value: str) -> None:
    assert state([pump_device(), flowsheet("Intrathecal pump alarm", valueString=value)]).alarm \
        is None


def test_alarm_without_a_volume_is_an_alarm_without_a_date() -> None:
    device = pump_device(properties=[device_property("Active alarm", text="LOW RESERVOIR")])
    pump = state([device], dose_mcg=400, concentration=2.0)
    assert pump.alarm and pump.depletion_at is None
    assert flags(pump)["pump_delivery_at_risk"] and not flags(pump)["pump_refill_overdue"]


def test_battery_at_its_replacement_indicator() -> None:
    pump = state([pump_device(), flowsheet("Intrathecal pump battery status", valueString="ERI")])
    assert pump.battery_low == "eri" and pump.alarm is None
    assert flags(pump)["pump_battery_low"] and flags(pump)["pump_delivery_at_risk"]


@pytest.mark.parametrize("value", ["OK", "Good (3.2 years remaining)"])
def test_battery_fine(value: str) -> None:
    pump = state([pump_device(), flowsheet("Intrathecal pump battery status", valueString=value)])
    assert pump.battery_low is None and not flags(pump)["pump_delivery_at_risk"]


@pytest.mark.parametrize("device", [
    pump_device(properties=[device_property("Battery status",
                                            text="ERI - elective replacement indicator")]),
    pump_device(statusReason=[{"text": "Battery at elective replacement indicator (ERI)"}]),
])
def test_battery_eri_on_the_device(device: dict) -> None:
    pump = state([device])
    assert pump.battery_low is not None and pump.alarm is None


CHECK = "Electronic analysis of programmable pump; without reprogramming or refill"


@pytest.mark.parametrize("resources", [
    [pump_device() | {"note": [{"text": "Pump battery at ERI on last interrogation"}]}],
    [pump_device(), pump_procedure(when=at(days=20), note="Refilled 20 mL. Interrogation: "
                                   "battery at elective replacement indicator (ERI).")],
    [pump_device(), pump_procedure(cpt="62367", display=CHECK, when=at(days=3))
     | {"outcome": concept(text="Battery at end of service: replace pump")}],
])
def test_battery_at_replacement_written_in_notes(resources: list[dict]) -> None:
    """Where pump checks are documented (a procedure's outcome or notes, the device's
    notes), not only in a flowsheet: a missed battery end stops delivery."""
    pump = state(resources)
    assert pump.battery_low is not None and flags(pump)["pump_delivery_at_risk"]
    assert cards(resources) == [("pump-delivery-risk", "warning")]


@pytest.mark.parametrize("resources", [
    # the latest check says the battery is fine
    [pump_device(), pump_procedure("pr1", when=at(days=90), note="Battery at ERI."),
     pump_procedure("pr2", cpt="62367", display=CHECK, when=at(days=2),
                    note="Battery OK, 6 years remaining.")],
    # a new pump since
    [pump_device(), pump_procedure("pr1", when=at(days=90), note="Battery at ERI."),
     pump_procedure("pr2", cpt="62362", display="Implantation of programmable pump",
                    when=at(days=10))],
    # negated, or a note about something else
    [pump_device(), pump_procedure(when=at(days=5), note="Battery not at ERI.")],
    [pump_device(), pump_procedure(when=at(days=5), note="Catheter replaced; pump refilled.")],
    # a negation written after the finding
    [pump_device() | {"note": [{"text": "Implanted 2021; battery elective replacement "
                                         "indicator not reached. No alarms."}]}],
    [pump_device(), flowsheet("Intrathecal pump battery status", valueString="ERI not reached")],
])
def test_battery_notes_that_do_not_say_replacement_is_due(resources: list[dict]) -> None:
    assert state(resources).battery_low is None


# ---------------------------------------------------------------- nothing to compute: quiet


@pytest.mark.parametrize(("resources", "dose", "concentration"), [
    ([pump_device()], 450, 2.0),  # no refill or reading on record
    ([pump_device(), pump_procedure(when=at(days=200), note="Refilled.")], 450, 2.0),  # volume?
    ([pump_device(), pump_procedure(when=at(days=200), note="Refilled 20 mL")], 450, None),
    ([pump_device(), refill(at(days=200))], None, None),  # daily dose unknown
    ([pump_device(), refill(at(days=200), rxcui="308516")], 450, None),  # conc. unknown
    ([pump_device(), pump_procedure(when=at(days=-5), note="Refill 20 mL of 2 mg/mL")], 450,
     None),  # a refill planned, not done
    ([pump_device(), pump_procedure(when=at(days=200), note="Refilled 20 mL of 2 mg/mL",
                                    status="not-done")], 450, None),
])
def test_no_depletion_date_when_the_record_does_not_support_one(
        resources: list[dict], dose: float | None, concentration: float | None) -> None:
    pump = state(resources, dose, concentration)
    assert pump.depletion_at is None and pump.basis == ""
    assert not any(flags(pump)[k] for k in ("pump_refill_overdue", "pump_depletion_soon",
                                             "pump_delivery_at_risk"))


def test_unknown_volume_stays_quiet_through_the_engine() -> None:
    order = pump_order(start=at(days=300))
    order["dosageInstruction"] = [{"text": "per pump programming"}]
    found = cards([order, pump_device(), pump_procedure(when=at(days=200), note="Refilled.")])
    assert found == []


def test_refill_on_time_stays_quiet_through_the_engine() -> None:
    found = cards([pump_order(mcg_per_day=450, start=at(days=300)), pump_device(),
                   refill(at(days=10))])
    assert found == []


@pytest.mark.parametrize("resources", [
    ["x", None], [{"resourceType": "Device", "deviceName": "x", "type": 3}],
    [{"resourceType": "Procedure", "status": "completed", "code": {"text": "pump refill"},
      "performedPeriod": "x"}],
    [{"resourceType": "Observation", "status": "final", "code": {"text": "pump volume"},
      "effectiveDateTime": "x", "valueQuantity": {"value": "20", "unit": "mL"}}],
])
def test_malformed_pump_records_never_raise(resources: list[Any]) -> None:
    pump = state([pump_device(), *resources], dose_mcg=400, concentration=2.0)
    assert pump.depletion_at is None
