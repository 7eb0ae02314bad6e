"""Risk factors for a discontinuation, and renal impairment named as a toxicity confounder."""

from cds.facts.discontinuation import find_discontinuations
from cds.facts.orders import collect_baclofen_orders
from cds.facts.record import PatientRecord
from cds.facts.risk import assess_risk, patient_context
from rules import load_knowledge
from tests.clinical_builders import (
    ICD10,
    NOW,
    SNOMED,
    ago,
    baclofen_request,
    condition,
    dosage,
    observation,
)

K = load_knowledge()


def profile(resources, drafts):
    data = PatientRecord(list(resources), list(drafts))
    (event,) = find_discontinuations("order-sign", {}, collect_baclofen_orders(data, K), NOW, K)
    return assess_risk(event, patient_context(data.resources, K, NOW), K)


def keys(risk):
    return [f.key for f in risk.factors]


def test_short_standard_dose_course_is_standard_risk():
    current = baclofen_request(days_ago=30)
    risk = profile([current, {"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"}],
                   [dict(current, status="stopped")])
    assert risk.level == "standard" and risk.factors == () and risk.toxicity_confounders == ()


def test_dose_exposure_age_and_conditions():
    current = baclofen_request(days_ago=400, dosages=[dosage(20, "mg", frequency=4)])
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": ago(days=72 * 365.25)[:10]}
    risk = profile([current, patient,
                    condition(SNOMED, "24700007", "Multiple sclerosis", cid="ms"),
                    condition(ICD10, "S24.112A", "Complete lesion at T2-T6", cid="sci"),
                    condition(SNOMED, "84757009", "Epilepsy", cid="ep")],
                   [dict(current, status="stopped")])
    assert risk.level == "high"
    assert keys(risk) == ["high_dose", "long_exposure", "spinal_cord_injury_t6_or_above",
                          "multiple_sclerosis", "seizure_disorder", "age"]


def test_above_label_maximum():
    current = baclofen_request(dosages=[dosage(30, "mg", frequency=3)])
    assert "above_label_max" in keys(profile([current], [dict(current, status="stopped")]))


def test_intrathecal_route_is_a_risk_factor():
    pump = baclofen_request(rxcui="1666613", dosages=[{"doseAndRate": [
        {"rateQuantity": {"value": 400, "code": "ug/d"}}]}])
    risk = profile([pump], [dict(pump, status="stopped")])
    assert keys(risk)[0] == "intrathecal"


def test_resolved_condition_is_not_a_risk_factor():
    current = baclofen_request(days_ago=20)
    resolved = condition(SNOMED, "84757009", "Epilepsy")
    resolved["clinicalStatus"]["coding"][0]["code"] = "resolved"
    assert keys(profile([current, resolved], [dict(current, status="stopped")])) == []


def test_low_egfr_and_ckd_are_toxicity_confounders_not_risk_factors():
    current = baclofen_request(days_ago=20)
    risk = profile([current, observation("62238-1", 38, "mL/min/{1.73_m2}", hours_ago=48),
                    condition(SNOMED, "433144002", "Chronic kidney disease stage 3")],
                   [dict(current, status="stopped")])
    assert [f.key for f in risk.toxicity_confounders] == ["renal_impairment", "low_egfr"]
    assert risk.factors == ()
    assert "eGFR 38" in risk.toxicity_confounders[1].evidence
