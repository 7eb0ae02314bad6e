"""What the patient actually receives (issue 22): duplicates read as one regimen, stops that
arrive only as the draft, omissions a hospital stay implies, a finished taper."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cds.facts.events import omission_during_stay, route_history
from cds.facts.orders import OrderReader
from cds.facts.record import PatientRecord
from cds.facts.stay import Stay, current_stay, find_stays
from cds.facts.subjects import FactExtractor
from cds.facts.timeline import Timeline, build_timeline
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    NOW,
    as_draft,
    at,
    daily_order,
    iso,
    patient,
    request_with,
)

K = load_knowledge()
READER = OrderReader(K)
EXTRACTOR = FactExtractor(K)
INPATIENT = K.order_categories["inpatient"]


def timeline(resources: Iterable[dict], drafts: Iterable[dict] = (), now: datetime = NOW
             ) -> Timeline:
    record = PatientRecord(list(resources), list(drafts))
    orders = READER.orders(record, False)
    return build_timeline("oral", orders, READER.administrations(record, orders, False), now, K)


def event(resources: Iterable[dict], drafts: Iterable[dict] = (), hook: str = "order-sign",
          context: dict | None = None):
    found = EXTRACTOR.extract(hook, context or {"patientId": "p1"},
                              PatientRecord([patient(), *resources], list(drafts)), NOW)
    (subject,) = [s for s in found.subjects if s.route == "oral"]
    return subject.event, subject


# -- duplicates


def test_stopping_a_home_order_its_hospital_twin_continues_changes_nothing():
    home = daily_order("home", 30, at(days=400), categories=("community",))
    ward = daily_order("ward", 30, at(days=2), categories=("inpatient",), encounter="e1")
    stop = as_draft(home, status="stopped")
    found, subject = event([home, ward], [stop], context={"patientId": "p1",
                                                          "encounterId": "e1"})
    assert found.kind == "none"
    assert subject.timeline.level_at(NOW) == 30


def test_stopping_one_of_two_unlinked_same_dose_orders_names_both_readings():
    first = daily_order("neuro", 30, at(days=300), categories=("community",))
    second = daily_order("gp", 30, at(days=45), categories=("outpatient",))
    found, subject = event([first, second], [as_draft(second, status="stopped")])
    assert (found.kind, found.before, found.after) == ("cut", 60, 30)
    ambiguity = subject.timeline.ambiguity
    assert ambiguity is not None and ambiguity.kind == "duplicate"
    assert subject.facts["ambiguity"] == "duplicate"


def test_a_cancelled_duplicate_beside_the_same_running_dose_withdraws_a_listing():
    ward = daily_order("ward", 30, at(days=3), categories=("inpatient",))
    duplicate = as_draft(daily_order("dup", 30, at(hours=0.2), categories=("inpatient",)),
                         status="cancelled")
    tl = timeline([ward], [duplicate])
    assert tl.withdrawn == {"MedicationRequest/dup"}
    assert tl.level_at(NOW) == 30 and not tl.steps()[-1].is_drop


# -- a stop that arrives only as the draft


def test_a_stop_only_in_the_draft_is_read_from_the_draft_itself():
    draft = as_draft(daily_order("bac", 60, at(days=240)), status="stopped")
    found, subject = event([], [draft])
    assert (found.kind, found.before, found.after, found.draft) == ("stop", 60, 0, True)
    assert subject.facts["exposure_days"] >= 239


def test_a_hold_only_in_the_draft_is_a_hold():
    draft = as_draft(daily_order("bac", 40, at(days=150)), status="on-hold")
    found, _ = event([], [draft])
    assert (found.kind, found.before) == ("hold", 40)


def test_a_hospital_order_held_in_the_draft_continues_the_home_regimen():
    home = daily_order("home", 45, at(days=900), categories=("community",))
    ward = as_draft(daily_order("ward", 45, at(days=6), categories=("inpatient",)),
                    status="on-hold")
    found, _ = event([home], [ward])
    assert (found.kind, found.before) == ("hold", 45)


# -- a hospital stay


def other_drug(rid: str, days_ago: float, status: str = "active", encounter: str = "e1"
               ) -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": status,
            "intent": "order", "subject": {"reference": "Patient/p1"},
            "category": [{"coding": [{"code": "inpatient"}]}],
            "encounter": {"reference": f"Encounter/{encounter}"},
            "medicationCodeableConcept": {"text": "piperacillin"},
            "authoredOn": iso(at(days=days_ago))}


def test_a_stay_is_read_from_hospital_orders_of_other_medicines():
    (stay,) = find_stays([other_drug("pip", 4), other_drug("hep", 3)], NOW, INPATIENT)
    assert stay == Stay("Encounter/e1", at(days=4), False, "hospital orders")


def test_a_stay_is_read_from_an_encounter_in_progress():
    encounter = {"resourceType": "Encounter", "id": "e2", "status": "in-progress",
                 "class": {"code": "IMP"}, "period": {"start": iso(at(days=2))}}
    stays = find_stays([encounter], NOW, INPATIENT)
    assert current_stay(stays, "Encounter/e2") == Stay("Encounter/e2", at(days=2))


def test_finished_hospital_orders_alone_are_no_stay_under_way():
    assert find_stays([other_drug("old", 60, status="completed")], NOW, INPATIENT) == ()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(
    st.sampled_from(["resourceType", "status", "category", "encounter", "authoredOn",
                     "class", "period", "effectivePeriod", "effectiveDateTime", "context",
                     "id"]),
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers()),
              st.sampled_from(["MedicationRequest", "Encounter", "MedicationAdministration",
                               "active", "in-progress", "IMP"]),
              st.dictionaries(st.sampled_from(["code", "start", "end", "reference"]),
                              st.one_of(st.text(max_size=3), st.lists(st.text(max_size=2))))),
    max_size=8), max_size=6))
def test_any_json_is_read_without_an_exception(resources):
    find_stays(resources, NOW, INPATIENT)


def test_home_baclofen_neither_ordered_nor_given_days_into_a_stay_is_an_omission():
    home = daily_order("home", 60, at(days=1500), categories=("community",))
    found, _ = event([home, other_drug("pip", 4)], hook="patient-view",
                     context={"patientId": "p1", "encounterId": "e1"})
    assert (found.kind, found.before, found.draft) == ("omission", 60, False)
    assert found.at == at(days=4)


def test_no_omission_early_in_a_stay_or_when_doses_are_charted():
    home = daily_order("home", 60, at(days=1500), categories=("community",))
    tl = timeline([home])
    early = Stay("Encounter/e1", NOW - timedelta(hours=3))
    assert omission_during_stay(tl, early, READER.is_inpatient, K) is None
    given_dose = {"resourceType": "MedicationAdministration", "status": "completed",
                  "effectiveDateTime": iso(at(hours=3)),
                  "request": {"reference": "MedicationRequest/home"},
                  "dosage": {"dose": {"value": 20, "unit": "mg"}}}
    charted = timeline([home, given_dose])
    assert omission_during_stay(charted, Stay("Encounter/e1", at(days=3)),
                                READER.is_inpatient, K) is None


# -- a finished taper


def taper_chain(doses: list[float], days_apart: float) -> list[dict]:
    count = len(doses)
    orders = []
    for index, dose in enumerate(doses):
        start = at(days=(count - index) * days_apart)
        status = "active" if index == count - 1 else "completed"
        order = daily_order(f"t{index}", dose, start, status,
                            prior=f"t{index - 1}" if index else None)
        if index < count - 1:
            order["meta"] = {"lastUpdated": iso(at(days=(count - index - 1) * days_apart))}
        orders.append(order)
    return orders


def test_stopping_the_last_low_step_of_a_documented_taper_is_its_planned_end():
    orders = taper_chain([60, 30, 15, 5], days_apart=7)
    found, _ = event(orders, [as_draft(orders[-1], status="stopped")])
    assert found.kind == "none"


def test_a_pseudo_taper_in_two_days_is_still_abrupt():
    orders = taper_chain([80, 5], days_apart=2)
    found, _ = event(orders, [as_draft(orders[-1], status="stopped")])
    assert found.kind == "stop"


def test_a_stop_midway_through_a_taper_is_not_its_end():
    orders = taper_chain([60, 30], days_apart=3)
    found, _ = event(orders, [as_draft(orders[-1], status="stopped")])
    # measured from the highest dose of the last week: 60 mg/day three days ago
    assert found.kind == "stop" and found.before == 60


def test_weight_based_doses_use_the_latest_body_weight():
    weight = {"resourceType": "Observation", "id": "w", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
              "effectiveDateTime": iso(at(days=10)),
              "valueQuantity": {"value": 18, "unit": "kg", "code": "kg"}}
    per_kg = request_with({"text": "Ozobax 1 mg/mL oral solution"}, rid="k",
                          authored=at(days=200),
                          dosages=[{"timing": {"repeat": {"frequency": 3, "period": 1,
                                                          "periodUnit": "d"}},
                                    "doseAndRate": [{"doseQuantity": {
                                        "value": 0.3, "unit": "mg/kg", "code": "mg/kg"}}]}])
    found, subject = event([weight], [as_draft(per_kg, status="stopped")])
    assert found.before == 16.2
    found, subject = event([], [as_draft(per_kg, status="stopped")])
    assert subject.facts["dose_known"] is False and subject.facts["dose_needs_weight"]


def test_route_history_of_a_stop_in_the_draft_only():
    draft = as_draft(daily_order("bac", 30, at(days=100)), status="stopped")
    record = PatientRecord([], [draft])
    orders = READER.orders(record, False)
    tl = build_timeline("oral", orders, [], NOW, K)
    assert route_history(tl, "order-sign", K, "standard").event.kind == "stop"
