"""Which raw resources are worth modelling (cds.facts.relevance): everything the facts can
use is kept, normal readings and unrelated records are not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds.facts.record import PatientRecord
from cds.facts.relevance import Relevance
from cds.facts.subjects import FactExtractor
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    ICD10,
    LOINC,
    NOW,
    RXNORM,
    SNOMED,
    administration,
    allergy,
    at,
    baclofen_request,
    bp_panel,
    coded_observation,
    coding,
    concept,
    condition,
    daily_order,
    flowsheet,
    medication,
    observation,
    patient,
    pump_device,
    pump_procedure,
    quantity,
    request_with,
    text_condition,
)

K = load_knowledge()
RELEVANCE = Relevance(K)
OLDEST_SIGN_DAYS = (K.threshold("lookback_days") + 1 + K.threshold("recent_sign_hours") / 24)


def kept(resource: object) -> bool:
    return bool(RELEVANCE.select([resource], NOW))  # type: ignore[list-item]


@pytest.mark.parametrize("resource", [
    patient(), {"resourceType": "Encounter", "id": "e"}, medication("m"),
    baclofen_request(), request_with(None, medicationReference={"reference": "Medication/x"}),
    request_with(concept(text="Gablofen refill")), administration("a", at(days=1)),
    observation("8310-5", 39, "Cel"), observation("8310-5", 102, "[degF]"),
    observation("8333-7", 38.4, "Cel"), bp_panel(80), observation("9279-1", 8, "/min"),
    observation("62238-1", 90, "mL/min/{1.73_m2}", hours_ago=24 * 300),
    observation("2160-0", 0.9, "mg/dL"),
    coded_observation(concept(coding(LOINC, "82810-3"))),
    flowsheet("Intrathecal pump alarm", valueString="none"),
    flowsheet("Intrathecal pump reservoir volume", valueQuantity=quantity(10, "mL")),
    flowsheet("Intrathecal pump battery status", valueString="OK"),
    flowsheet("Intrathecal pump programmed daily dose", valueQuantity=quantity(400, "ug/d")),
    condition(SNOMED, "91175000", "Seizure"), condition(ICD10, "G35", "MS"),
    condition(ICD10, "N18.4", "CKD 4"), text_condition("hospice"),
    allergy(concept(coding(SNOMED, "387342009"))), pump_device(), pump_procedure(),
], ids=lambda r: f"{r.get('resourceType')}-{r.get('id')}")
def test_kept(resource: dict) -> None:
    assert kept(resource)


@pytest.mark.parametrize("resource", [
    observation("8310-5", 37, "Cel"), bp_panel(120), observation("8867-4", 80, "/min"),
    observation("8310-5", 39, "Cel", hours_ago=24 * (OLDEST_SIGN_DAYS + 1)),
    observation("2345-7", 100, "mg/dL"), condition(ICD10, "J18.9", "Pneumonia"),
    allergy(concept(coding(RXNORM, "7980", "penicillin"))),
    pump_device(name="Omnipod", type_text="insulin pump"),
    pump_procedure(cpt="44950", display="Appendectomy"),
    request_with(concept(coding(RXNORM, "313365", "tizanidine 4 MG Oral Tablet"))),
    administration("a", at(days=1), medication_concept=concept(text="acetaminophen")),
    {"resourceType": "Flag", "id": "f"}, {"id": "no-type"},
], ids=lambda r: f"{r.get('resourceType')}-{r.get('id')}")
def test_dropped(resource: dict) -> None:
    assert not kept(resource)


def test_order_is_kept_and_the_list_keeps_its_order() -> None:
    resources = [observation("8310-5", 37, "Cel", oid="normal"), baclofen_request(rid="b"),
                 observation("8310-5", 39, "Cel", oid="fever"), patient()]
    assert [r.get("id") for r in RELEVANCE.select(resources, NOW)] == ["b", "fever", "p1"]


def test_sign_at_the_edge_of_the_window_is_kept() -> None:
    edge = observation("8310-5", 39, "Cel", hours_ago=24 * OLDEST_SIGN_DAYS - 2)
    assert kept(edge)


def test_unreadable_json_goes_on_to_the_model_check() -> None:
    class Exploding(dict):
        def get(self, *args: object) -> object:
            raise TypeError("unreadable")

    weird = Exploding(resourceType="Observation")
    assert RELEVANCE.select([weird], NOW) == [weird]


def test_selection_never_changes_the_facts() -> None:
    resources = [
        patient(), daily_order("a", 60, at(days=300), "stopped", last_updated=at(days=2)),
        observation("8310-5", 39.4, "Cel", oid="t"), observation("8310-5", 37.0, "Cel", oid="n",
                                                                hours_ago=5),
        observation("8867-4", 128, "/min", oid="hr"), bp_panel(118, oid="bp"),
        observation("62238-1", 45, "mL/min/{1.73_m2}", oid="e", hours_ago=400),
        condition(ICD10, "G35", "MS"), condition(ICD10, "J18.9", "Pneumonia", cid="pna"),
        text_condition("seizure", days_ago=0.5, cid="sz"),
    ]
    extractor = FactExtractor(K)
    context = {"patientId": "p1"}
    every = extractor.extract("patient-view", context, PatientRecord(resources, []), NOW)
    selected = RELEVANCE.select(resources, NOW)
    chosen = extractor.extract("patient-view", context, PatientRecord(selected, []), NOW)
    assert every.rule_facts() == chosen.rule_facts()
    assert len(selected) < len(resources)


def test_relevance_is_cheap_for_the_no_baclofen_call() -> None:
    vitals = [observation("8867-4", 70 + i % 20, "/min", oid=f"hr{i}", hours_ago=i)
              for i in range(200)]
    assert RELEVANCE.select(vitals, NOW + timedelta(hours=1)) == []
