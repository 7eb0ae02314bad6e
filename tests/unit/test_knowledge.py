"""The knowledge files load, every threshold has a source, and site overrides are validated."""

import json

import pytest

from rules import KnowledgeError, load_knowledge


def test_every_threshold_has_a_source_and_rationale():
    knowledge = load_knowledge()
    for key, meta in knowledge.threshold_meta.items():
        assert meta["source"], key
        assert meta.get("rationale"), key


def test_design_choices_are_labelled_local_policy_not_label_facts():
    meta = load_knowledge().threshold_meta
    assert meta["high_dose_mg_per_day"]["source"] == "local policy"
    assert meta["min_exposure_days"]["source"] == "local policy"
    assert "label" in meta["label_max_mg_per_day"]["source"].lower()


def test_yaml_override_changes_a_threshold(tmp_path):
    override = tmp_path / "site.yaml"
    override.write_text("thresholds:\n  high_dose_mg_per_day: 50\n  min_exposure_days: 28\n")
    knowledge = load_knowledge(str(override))
    assert knowledge.threshold("high_dose_mg_per_day") == 50
    assert knowledge.threshold("min_exposure_days") == 28
    assert knowledge.fingerprint != load_knowledge().fingerprint


def test_json_override_is_accepted(tmp_path):
    override = tmp_path / "site.json"
    override.write_text(json.dumps({"thresholds": {"fever_celsius": 38.3}}))
    assert load_knowledge(str(override)).threshold("fever_celsius") == 38.3


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"thresholds": {"fever_celcius": 38.5}}, "fever_celcius"),
        ({"thresholds": {"min_exposure_days": "two weeks"}}, "min_exposure_days"),
        ({"thresholds": {"min_exposure_days": 7.5}}, "min_exposure_days"),
        ({"thresholds": {"large_cut_fraction": 2}}, "large_cut_fraction"),
        ({"thresholds": {"fever_celsius": 35}}, "fever_celsius"),
        ({"limits": {}}, "limits"),
        ({"thresholds": {"label_max_mg_per_day": 120}}, "label_max_mg_per_day"),
    ],
)
def test_bad_override_names_the_key(tmp_path, content, named):
    override = tmp_path / "site.json"
    override.write_text(json.dumps(content))
    with pytest.raises(KnowledgeError, match=named):
        load_knowledge(str(override))


def test_unreadable_or_malformed_override_is_an_error(tmp_path):
    with pytest.raises(KnowledgeError, match="cannot read"):
        load_knowledge(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(KnowledgeError, match="not valid"):
        load_knowledge(str(bad))


def _obs(system, code, **extra):
    return {"resourceType": "Observation", "code": {"coding": [{"system": system, "code": code}]},
            **extra}


def test_relevance_matches_system_and_code_together():
    knowledge = load_knowledge()
    assert knowledge.is_relevant(_obs("http://loinc.org", "2157-6"))
    # 2157-6 is also a CDC race code: the system decides.
    assert not knowledge.is_relevant(_obs("urn:oid:2.16.840.1.113883.6.238", "2157-6"))
    assert not knowledge.is_relevant(_obs("http://loinc.org", "2339-0"))  # glucose


def test_relevance_of_medication_requests_and_other_resources():
    knowledge = load_knowledge()
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"

    def request(**extra):
        return {"resourceType": "MedicationRequest", **extra}

    assert knowledge.is_relevant(request(medicationCodeableConcept={
        "coding": [{"system": rx, "code": "197391"}]}))
    assert knowledge.is_relevant(request(medicationCodeableConcept={"text": "Gablofen refill"}))
    assert knowledge.is_relevant(request(medicationReference={"reference": "Medication/m1"}))
    assert knowledge.is_relevant(request(
        medicationReference={"reference": "#m"},
        contained=[{"resourceType": "Medication", "id": "m", "code": {"text": "baclofen"}}]))
    assert not knowledge.is_relevant(request(medicationCodeableConcept={
        "coding": [{"system": rx, "code": "10368", "display": "tizanidine"}]}))
    assert not knowledge.is_relevant(request(medicationCodeableConcept="baclofen"))
    for rtype in ("Patient", "Encounter", "Medication"):
        assert knowledge.is_relevant({"resourceType": rtype})
    assert not knowledge.is_relevant({"resourceType": "Procedure"})
    assert not knowledge.is_relevant(["not", "a", "resource"])


def test_condition_relevance_includes_icd10_families():
    knowledge = load_knowledge()
    cond = {"resourceType": "Condition", "code": {"coding": [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G35"}]}}
    assert knowledge.is_relevant(cond)
    cond["code"]["coding"][0]["code"] = "E11.9"
    assert not knowledge.is_relevant(cond)


def test_prefetch_tokens():
    knowledge = load_knowledge()
    assert "http://loinc.org|8310-5" in knowledge.observation_code_tokens()
    assert "http://snomed.info/sct|24700007" in knowledge.condition_code_tokens()
    assert all("|" in t for t in knowledge.condition_code_tokens())


@pytest.mark.parametrize("code", [
    [], 7, "text", {"coding": 5}, {"coding": [3, None]}, {"coding": [{"system": [], "code": {}}]},
    {"coding": [{"system": "http://loinc.org", "code": ["8310-5"]}], "text": 9},
])
def test_relevance_never_raises_on_malformed_codes(code):
    from datetime import UTC, datetime

    k = load_knowledge()
    now = datetime.now(UTC)
    for rtype in ("Observation", "Condition"):
        assert k.is_relevant({"resourceType": rtype, "code": code}, now) in (True, False)
    request = {"resourceType": "MedicationRequest", "medicationCodeableConcept": code,
               "contained": code}
    assert k.is_relevant(request, now) in (True, False)
