"""Withdrawal signs: thresholds, UCUM temperature conversion, statuses and times."""

import pytest

from cds.facts.signs import find_signs, to_celsius
from cds.knowledge import load_knowledge
from tests.clinical_builders import ICD10, LOINC, NOW, SNOMED, condition, observation

K = load_knowledge()


def keys(resources, now=NOW):
    return [s.key for s in find_signs(resources, K, now)]


@pytest.mark.parametrize(("value", "unit", "celsius"), [
    (38.5, "Cel", 38.5), (101.3, "[degF]", 38.5), (98.6, "[degF]", 37.0), (311.65, "K", 38.5),
    (38.5, "°C", 38.5),
])
def test_to_celsius(value, unit, celsius):
    assert to_celsius(value, unit) == pytest.approx(celsius)


def test_to_celsius_rejects_unknown_units():
    assert to_celsius(38, "mmol/L") is None
    assert to_celsius("38", "Cel") is None


def test_fever_in_fahrenheit_is_detected_and_shown_converted():
    (sign,) = find_signs([observation("8310-5", 102.2, "[degF]")], K, NOW)
    assert sign.key == "fever" and sign.severity == "severe"
    assert "39.0 Cel" in sign.evidence


def test_normal_values_are_not_signs():
    normal = [observation("8310-5", 37.2, "Cel"), observation("8310-5", 99.0, "[degF]"),
              observation("8867-4", 88, "/min"), observation("8480-6", 118, "mm[Hg]"),
              observation("9269-2", 15, "{score}"), observation("2157-6", 180, "U/L")]
    assert keys(normal) == []


def test_vital_and_lab_thresholds():
    found = keys([observation("8867-4", 128, "/min", hours_ago=3),
                  observation("9269-2", 12, "{score}", hours_ago=2),
                  observation("2157-6", 4200, "U/L", hours_ago=1)])
    assert found == ["tachycardia", "altered_mental_status", "marked_ck_rise"]


def test_systolic_from_blood_pressure_panel():
    panel = observation("85354-9", 0, "mm[Hg]")
    del panel["valueQuantity"]
    panel["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 82, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 50, "code": "mm[Hg]"}}]
    (sign,) = find_signs([panel], K, NOW)
    assert sign.key == "hypotension" and sign.severity == "severe_if_intrathecal"


def test_coded_conditions_are_signs():
    found = keys([condition(SNOMED, "419284004", "Altered mental status", days_ago=1, cid="a"),
                  condition(ICD10, "R56.9", "Unspecified convulsions", days_ago=0.5, cid="b"),
                  condition(SNOMED, "240131006", "Rhabdomyolysis", days_ago=0.2, cid="c")])
    assert found == ["altered_mental_status", "seizure", "marked_ck_rise"]


def test_status_system_and_future_time_are_respected():
    wrong_system = observation("8310-5", 39.5, "Cel")
    wrong_system["code"]["coding"][0]["system"] = "http://example.org/local"
    assert keys([dict(observation("8310-5", 39.5, "Cel"), status="entered-in-error"),
                 wrong_system,
                 observation("8310-5", 39.5, "Cel", hours_ago=-5)]) == []
    refuted = condition(SNOMED, "91175000", "Seizure", days_ago=1)
    refuted["verificationStatus"] = {"coding": [{"code": "refuted"}]}
    assert keys([refuted]) == []


def test_malformed_observations_are_skipped():
    assert keys([{"resourceType": "Observation", "status": "final", "code": "x"},
                 {"resourceType": "Observation", "status": "final",
                  "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
                  "effectiveDateTime": "yesterday", "valueQuantity": {"value": 40}},
                 "garbage"]) == []
