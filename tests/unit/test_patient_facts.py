"""Patient facts of rules/patient.yaml and risk factors of rules/risk.yaml
(cds.facts.patient): what a real record shows, and what it must not be read to show."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from cds.facts.patient import PatientFacts, PatientReader
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    ICD10,
    LOINC,
    NOW,
    RXNORM,
    SNOMED,
    ago,
    allergy,
    coded_observation,
    coding,
    concept,
    condition,
    observation,
    patient,
    text_condition,
    verification,
)

K = load_knowledge()
READER = PatientReader(K)
EGFR_UNIT = "mL/min/{1.73_m2}"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


def read(resources: Iterable[dict]) -> PatientFacts:
    return READER.read(list(resources), NOW)


def flag(key: str, resources: Iterable[dict]) -> bool:
    return read(resources).flags[key]


def pregnancy_status(answer: dict, hours_ago: float = 1, oid: str = "ps") -> dict:
    return coded_observation(concept(coding(LOINC, "82810-3", "Pregnancy status")), oid,
                             hours_ago, valueCodeableConcept=answer)


PREGNANT = concept(coding(SNOMED, "77386006", "Pregnancy"))
NOT_PREGNANT = concept(coding(SNOMED, "60001007", "Not pregnant"))


# ---------------------------------------------------------------- every fact is defined


def test_every_patient_fact_is_reported_yes_or_no() -> None:
    assert set(read([]).flags) == set(K.patient_facts)
    assert not any(read([]).flags.values())


# ---------------------------------------------------------------- deceased and age


@pytest.mark.parametrize(("extra", "expected"), [
    ({"deceasedBoolean": True}, True), ({"deceasedDateTime": ago(1)}, True),
    ({"deceasedBoolean": False}, False), ({}, False), ({"deceasedDateTime": "soon"}, False),
])
def test_deceased(extra: dict[str, Any], expected: bool) -> None:
    assert flag("deceased", [patient(**extra)]) is expected


def test_deceased_evidence_names_the_date() -> None:
    assert read([patient(deceasedDateTime=ago(1))]).evidence["deceased"] == \
        "deceased 2030-06-14"


@pytest.mark.parametrize(("birth", "age"), [("1960-06-15", 70), ("1960-06-16", 69),
                                            ("1960", 70), (None, None), ("2031-01-01", None)])
def test_age_at_now(birth: str | None, age: int | None) -> None:
    assert read([patient(birth=birth)]).age_years == age


# ---------------------------------------------------------------- renal function


@pytest.mark.parametrize(("value", "unit", "impaired"), [
    (45, EGFR_UNIT, True), (59, "mL/min/1.73m2", True), (60, EGFR_UNIT, False),
    (90, EGFR_UNIT, False), (14, "mL/min", True),
])
def test_renal_impairment_by_egfr(value: float, unit: str, impaired: bool) -> None:
    assert flag("renal_impairment", [observation("62238-1", value, unit)]) is impaired


@pytest.mark.parametrize("code", [c.code for c in K.code_sets["egfr"].codes])
def test_every_egfr_code(code: str) -> None:
    assert flag("renal_impairment", [observation(code, 30, EGFR_UNIT)])


def test_only_the_latest_egfr_counts() -> None:
    old_low = observation("62238-1", 40, EGFR_UNIT, hours_ago=300, oid="old")
    new_ok = observation("62238-1", 75, EGFR_UNIT, hours_ago=2, oid="new")
    assert not flag("renal_impairment", [old_low, new_ok])
    assert flag("renal_impairment", [new_ok | {"effectiveDateTime": ago(hours=300)},
                                     old_low | {"effectiveDateTime": ago(hours=2)}])


@pytest.mark.parametrize(("code", "value", "unit", "impaired"), [
    ("2160-0", 2.0, "mg/dL", True), ("2160-0", 1.5, "mg/dL", True),
    ("2160-0", 1.4, "mg/dL", False), ("38483-4", 4.1, "mg/dL", True),
    ("14682-9", 177, "umol/L", True), ("14682-9", 177, "µmol/L", True),
    ("14682-9", 120, "umol/L", False),
])
def test_renal_impairment_by_creatinine_without_egfr(code: str, value: float, unit: str,
                                                     impaired: bool) -> None:
    assert flag("renal_impairment", [observation(code, value, unit)]) is impaired


def test_creatinine_evidence_is_in_mg_per_dl() -> None:
    evidence = read([observation("14682-9", 177, "umol/L")]).evidence["renal_impairment"]
    assert "mg/dL" in evidence and evidence.startswith("Creatinine 2")


@pytest.mark.parametrize("creatinine", [observation("2160-0", 2.0, "mg/dL"),
                                        observation("14682-9", 300, "umol/L")])
def test_creatinine_is_not_read_when_an_egfr_is_on_record(creatinine: dict) -> None:
    egfr = observation("62238-1", 75, EGFR_UNIT, oid="e")
    assert not flag("renal_impairment", [creatinine, egfr])


def test_mass_creatinine_in_molar_units_is_read_by_its_unit() -> None:
    # 300 umol/L sent under the mass-concentration code: the unit decides (3.39 mg/dL),
    # never read as 300 mg/dL and never dropped (issue 22, "units decide, not codes")
    evidence = read([observation("2160-0", 300, "umol/L")]).evidence["renal_impairment"]
    assert "3.39 mg/dL" in evidence and "300 mg" not in evidence


def test_creatinine_in_a_unit_that_cannot_be_read_is_named_not_dropped() -> None:
    facts = read([observation("2160-0", 310, "units")])
    assert "renal_impairment" not in facts.evidence
    assert [(u.reading, u.value, u.unit) for u in facts.unreadable] == [
        ("Creatinine", 310, "units")]


@pytest.mark.parametrize(("system", "code"), [
    (SNOMED, "709044004"), (SNOMED, "431857002"), (SNOMED, "46177005"), (SNOMED, "14669001"),
    (SNOMED, "105502003"), (ICD10, "N18.4"), (ICD10, "N18.6"), (ICD10, "N17.9"),
    (ICD10, "Z99.2"),
])
def test_renal_impairment_by_coded_ckd_aki_or_dialysis(system: str, code: str) -> None:
    assert flag("renal_impairment", [condition(system, code, "kidney disease")])


def test_resolved_aki_is_not_current() -> None:
    aki = condition(ICD10, "N17.9", "AKI") | {"clinicalStatus": concept(coding(CLINICAL,
                                                                               "resolved"))}
    assert not flag("renal_impairment", [aki])


# ---------------------------------------------------------------- pregnancy


@pytest.mark.parametrize("cond", [
    condition(SNOMED, "77386006", "Pregnancy"), condition(ICD10, "Z33.1", "Pregnant state"),
    condition(ICD10, "Z3A.36", "36 weeks gestation"), condition(ICD10, "O09.523", "high risk"),
])
def test_pregnancy_by_condition(cond: dict) -> None:
    assert flag("pregnant", [cond])


def test_pregnancy_status_observation_answered_pregnant() -> None:
    assert flag("pregnant", [pregnancy_status(PREGNANT)])


@pytest.mark.parametrize("answers", [
    [pregnancy_status(NOT_PREGNANT)],
    [pregnancy_status(PREGNANT, hours_ago=2000, oid="old"), pregnancy_status(NOT_PREGNANT)],
])
def test_pregnancy_status_answered_not_pregnant(answers: list[dict]) -> None:
    assert not flag("pregnant", answers)


@pytest.mark.parametrize(("days_from_now", "expected"), [(30, True), (-30, False)])
def test_pregnancy_by_expected_delivery_date(days_from_now: float, expected: bool) -> None:
    edd = coded_observation(concept(coding(LOINC, "11778-8")), valueDateTime=ago(-days_from_now))
    assert flag("pregnant", [edd]) is expected


@pytest.mark.parametrize(("code", "days_ago", "expected"), [
    ("49051-6", 3, True), ("11885-1", 100, True), ("18185-9", 3, True), ("49051-6", 300, False),
])
def test_pregnancy_by_a_recent_gestational_age(code: str, days_ago: float, expected: bool
                                               ) -> None:
    assert flag("pregnant", [observation(code, 36, "wk", hours_ago=24 * days_ago)]) is expected


def test_delivered_pregnancy_is_not_current() -> None:
    done = condition(SNOMED, "77386006", "Pregnancy") | {
        "clinicalStatus": concept(coding(CLINICAL, "resolved"))}
    assert not flag("pregnant", [done])


# ---------------------------------------------------------------- allergy, comfort, swallowing


@pytest.mark.parametrize("code", [
    concept(coding(SNOMED, "387342009")), concept(coding(RXNORM, "1292", "baclofen")),
    concept(text="Baclofen"), concept(coding(RXNORM, "197391")),
])
def test_allergy_to_baclofen(code: dict) -> None:
    assert flag("baclofen_allergy", [allergy(code)])


def test_allergy_evidence_names_the_reaction() -> None:
    found = read([allergy(concept(coding(SNOMED, "387342009")), reaction=[
        {"manifestation": [concept(coding(SNOMED, "41291007", "Angioedema"))]}])])
    assert found.evidence["baclofen_allergy"] == "allergy to baclofen (Angioedema)"


@pytest.mark.parametrize("resource", [
    verification(allergy(concept(coding(SNOMED, "387342009"))), "refuted"),
    verification(allergy(concept(coding(SNOMED, "387342009"))), "entered-in-error"),
    allergy(concept(coding(SNOMED, "387342009")),
            clinicalStatus=concept(coding(ALLERGY_CLINICAL, "inactive"))),
    allergy(concept(coding(SNOMED, "387342009")),
            clinicalStatus=concept(coding(ALLERGY_CLINICAL, "resolved"))),
    allergy(concept(coding(RXNORM, "7980", "penicillin"))),
])
def test_refuted_inactive_or_other_allergies(resource: dict) -> None:
    assert not flag("baclofen_allergy", [resource])


def test_allergy_as_a_problem_list_finding() -> None:
    assert flag("baclofen_allergy", [condition(SNOMED, "294234003", "Allergy to baclofen")])


@pytest.mark.parametrize("cond", [
    condition(SNOMED, "103735009", "Palliative care"), condition(SNOMED, "133918004", "Comfort"),
    condition(SNOMED, "300936002", "Terminal illness"), condition(ICD10, "Z51.5", "Palliative"),
    text_condition("Hospice"), text_condition("Comfort measures only"),
])
def test_comfort_care(cond: dict) -> None:
    assert flag("comfort_care", [cond])


@pytest.mark.parametrize("cond", [
    condition(SNOMED, "40739000", "Dysphagia"), condition(ICD10, "R13.12", "Dysphagia"),
    text_condition("NPO after midnight"), text_condition("Nil by mouth"),
    text_condition("unable to swallow tablets"),
])
def test_swallowing_problem(cond: dict) -> None:
    assert flag("swallowing_problem", [cond])


def test_refuted_conditions_show_no_fact() -> None:
    assert not flag("swallowing_problem",
                    [verification(condition(SNOMED, "40739000", "Dysphagia"), "refuted")])


def test_catheter_problem_only_when_recent() -> None:
    assert flag("catheter_problem", [condition(ICD10, "T85.610A", "breakdown", days_ago=1)])
    assert not flag("catheter_problem", [condition(ICD10, "T85.610A", "breakdown",
                                                   days_ago=30)])


# ---------------------------------------------------------------- risk factors


def risk(resources: Iterable[dict] = (), **facts: Any) -> dict[str, str]:
    base: dict[str, Any] = {name: None for name in K.fact_fields}
    base.update(facts)
    return {f.key: f.evidence for f in READER.risk_factors(base, read(resources))}


def test_intrathecal_route_is_a_risk_factor() -> None:
    assert risk(route="intrathecal") == {"intrathecal": "intrathecal route"}


@pytest.mark.parametrize(("dose", "expected"), [
    (90.0, {"above_label_max"}), (80.0, {"high_dose"}), (60.0, {"high_dose"}), (59.0, set()),
])
def test_dose_factors_by_mouth(dose: float, expected: set[str]) -> None:
    assert set(risk(route="oral", daily_dose=dose)) == expected


def test_dose_factors_do_not_apply_to_a_pump_dose_in_micrograms() -> None:
    assert set(risk(route="intrathecal", daily_dose=400.0)) == {"intrathecal"}


def test_dose_evidence_reads_plainly() -> None:
    assert risk(route="oral", daily_dose=90.0)["above_label_max"] == \
        "90 mg/day, above the labelled 80 mg/day"


def test_long_exposure_only_when_known() -> None:
    assert "long_exposure" in risk(exposure_known=True, exposure_days=60.0)
    assert "long_exposure" not in risk(exposure_known=True, exposure_days=59.0)
    assert "long_exposure" not in risk(exposure_known=False, exposure_days=600.0)


def test_older_age() -> None:
    assert risk(age_known=True, age_years=65) == {"older_age": "age 65"}
    assert risk(age_known=True, age_years=64) == {}


@pytest.mark.parametrize(("cond", "factor"), [
    (condition(ICD10, "S14.109A", "Cervical cord injury"), "spinal_cord_injury_t6_or_above"),
    (condition(ICD10, "S24.102A", "T2-T6 cord injury"), "spinal_cord_injury_t6_or_above"),
    (condition(ICD10, "S24.111S", "Complete lesion T1"), "spinal_cord_injury_t6_or_above"),
    (condition(ICD10, "S24.103A", "T7-T10 cord injury"), "spinal_cord_injury"),
    (condition(SNOMED, "90584004", "Spinal cord injury"), "spinal_cord_injury"),
    (condition(SNOMED, "87486003", "Aphasia"), "communication_difficulty"),
    (condition(ICD10, "R47.01", "Aphasia"), "communication_difficulty"),
    (condition(ICD10, "G35", "Multiple sclerosis"), "multiple_sclerosis"),
    (condition(SNOMED, "24700007", "Multiple sclerosis"), "multiple_sclerosis"),
    (condition(ICD10, "G80.0", "Spastic quadriplegic CP"), "cerebral_palsy"),
    (text_condition("History of baclofen withdrawal (2019)"), "prior_withdrawal"),
    (text_condition("ITB withdrawal after catheter break"), "prior_withdrawal"),
])
def test_risk_factors_from_the_problem_list(cond: dict, factor: str) -> None:
    assert set(risk([cond])) == {factor}


def test_a_specific_factor_replaces_the_general_one() -> None:
    found = risk([condition(ICD10, "S24.102A", "T4 injury"),
                  condition(SNOMED, "90584004", "Spinal cord injury", cid="c2")])
    assert set(found) == {"spinal_cord_injury_t6_or_above"}


def test_factor_evidence_is_the_condition_label() -> None:
    assert risk([condition(ICD10, "G35", "Secondary progressive MS")]) == {
        "multiple_sclerosis": "Secondary progressive MS"}


@pytest.mark.parametrize("cond", [
    verification(condition(ICD10, "G35", "MS"), "refuted"),
    condition(ICD10, "G35", "MS") | {"clinicalStatus": concept(coding(CLINICAL, "inactive"))},
    condition("http://example.org/local", "G35", "MS"),
])
def test_refuted_inactive_or_uncoded_conditions_are_no_risk(cond: dict) -> None:
    assert risk([cond]) == {}


def test_facts_and_conditions_combine() -> None:
    found = risk([condition(ICD10, "G35", "MS")], route="oral", daily_dose=80.0,
                 exposure_known=True, exposure_days=400.0, age_known=True, age_years=70)
    assert set(found) == {"multiple_sclerosis", "high_dose", "long_exposure", "older_age"}


@pytest.mark.parametrize("resources", [
    ["x", None, 5], [{"resourceType": "Condition", "code": "G35"}],
    [{"resourceType": "Observation", "status": "final", "code": {"coding": "x"}}],
    [{"resourceType": "AllergyIntolerance", "code": {"coding": [None]}}],
    [{"resourceType": "Patient", "birthDate": 1960}],
])
def test_malformed_resources_never_raise(resources: list[Any]) -> None:
    assert not any(READER.read(resources, NOW).flags.values())
