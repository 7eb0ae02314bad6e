"""Measurements: the unit decides, an unreadable unit is named, eGFR by CKD-EPI 2021."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds.facts.measurements import MeasurementReader, ckd_epi_2021
from cds.knowledge import load_knowledge

K = load_knowledge()
NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"
EQUATION = K.equations["ckd_epi_2021_creatinine"]


def observation(code: str, value: float, unit: str | None, hours_ago: float = 2,
                oid: str = "o") -> dict:
    quantity = {"value": value}
    if unit is not None:
        quantity.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "effectiveDateTime": (NOW - timedelta(hours=hours_ago)).isoformat(),
            "valueQuantity": quantity}


def read(observations: list[dict], gender: str | None = "male", age: int | None = 68):
    unreadable: list = []
    patient = {"resourceType": "Patient", "gender": gender} if gender else None
    found = MeasurementReader(K).read(observations, patient, age, NOW, unreadable)
    return found, unreadable


@pytest.mark.parametrize(("code", "value", "unit", "mg_dl"), [
    ("2160-0", 398, "umol/L", 4.50),  # molar unit under the mass-concentration code
    ("14682-9", 398, "umol/L", 4.50),
    ("2160-0", 4.5, "mg/dL", 4.5),
    ("14682-9", 4.5, "mg/dL", 4.5),  # mass unit under the molar code
    ("2160-0", 70, "µmol/L", 0.79),
    ("14682-9", 0.46, "mmol/L", 5.20),  # issue 22.5: a valid UCUM prefix, 460 umol/L
    ("2160-0", 45, "mg/L", 4.5),
])
def test_creatinine_is_read_by_its_unit_whatever_the_code(code, value, unit, mg_dl):
    found, unreadable = read([observation(code, value, unit)])
    assert found["serum_creatinine"].value == pytest.approx(mg_dl, abs=0.01)
    assert unreadable == []


def test_a_unit_that_cannot_be_read_is_named_and_not_used():
    found, unreadable = read([observation("2160-0", 310, "units")])
    assert "serum_creatinine" not in found and "egfr" not in found
    (named,) = unreadable
    assert (named.reading, named.value, named.unit, named.measurement) == (
        "Creatinine", 310, "units", "serum_creatinine")
    assert named.as_json() == {"reading": "Creatinine", "unit": "units"}


def test_a_missing_unit_is_named_too():
    _, unreadable = read([observation("2160-0", 3.2, None)])
    assert [u.unit for u in unreadable] == ["no unit"]


def test_the_latest_readable_reading_counts():
    found, _ = read([observation("2160-0", 1.0, "mg/dL", hours_ago=48, oid="old"),
                     observation("2160-0", 2.4, "mg/dL", hours_ago=2, oid="new")])
    assert found["serum_creatinine"].value == 2.4


@pytest.mark.parametrize(("value", "unit", "kg"), [
    (18.0, "kg", 18.0), (44, "[lb_av]", 19.96), (44, "lb", 19.96), (18400, "g", 18.4)])
def test_body_weight_in_kg(value, unit, kg):
    found, _ = read([observation("29463-7", value, unit)])
    assert found["body_weight"].value == pytest.approx(kg, abs=0.01)


@pytest.mark.parametrize(("creatinine", "age", "sex", "egfr"), [
    # CKD-EPI 2021 (Inker 2021) worked by hand: 142 x min(Scr/k,1)^a x max(Scr/k,1)^-1.2
    # x 0.9938^age (x 1.012 female)
    (1.0, 60, "male", 86.2),
    (1.0, 60, "female", 64.5),
    (4.5, 68, "male", 13.3),
    (0.6, 30, "female", 123.8),
])
def test_ckd_epi_2021(creatinine, age, sex, egfr):
    assert ckd_epi_2021(creatinine, age, sex, EQUATION) == pytest.approx(egfr, abs=0.2)


def test_egfr_is_estimated_from_creatinine_only_when_none_is_on_record():
    found, _ = read([observation("2160-0", 398, "umol/L")])
    assert found["egfr"].estimated and found["egfr"].value == pytest.approx(13.3, abs=0.2)
    found, _ = read([observation("2160-0", 398, "umol/L"),
                     observation("62238-1", 40, "mL/min/{1.73_m2}", oid="e")])
    assert not found["egfr"].estimated and found["egfr"].value == 40


@pytest.mark.parametrize(("gender", "age"), [(None, 68), ("unknown", 68), ("male", None),
                                             ("male", 12)])
def test_no_estimate_without_a_known_sex_and_an_adult_age(gender, age):
    found, _ = read([observation("2160-0", 4.5, "mg/dL")], gender=gender, age=age)
    assert "egfr" not in found
