"""Baclofen recognition: every path, the route, and the product's strength."""

import pytest

from cds.facts.recognition import MedicationIndex, recognise_baclofen
from cds.knowledge import load_knowledge
from tests.clinical_builders import RXNORM, SNOMED, baclofen_request

K = load_knowledge()


def recognise(request, medications=()):
    return recognise_baclofen(request, MedicationIndex(list(medications)), K)


def test_known_rxnorm_product_gives_strength_and_route():
    found = recognise(baclofen_request(rxcui="197391"))
    assert found.match_path == "rxnorm-product"
    assert found.product.strength_mg == 10
    assert found.product.route == "oral"


def test_rxnorm_ingredient_code_with_strength_written_in_the_display():
    request = baclofen_request()
    request["medicationCodeableConcept"] = {"coding": [
        {"system": RXNORM, "code": "1292", "display": "baclofen 15 MG Oral Tablet"}]}
    found = recognise(request)
    assert found.match_path == "ingredient-code"
    assert found.product.strength_mg == 15 and found.product.form == "tablet"


def test_snomed_substance_matches_only_with_its_system():
    request = baclofen_request()
    request["medicationCodeableConcept"] = {"coding": [{"system": SNOMED, "code": "387342009"}]}
    assert recognise(request).match_path == "ingredient-code"
    request["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "387342009"}]}
    assert recognise(request) is None


def test_medication_reference_resolved_from_prefetch_with_ingredient_strength():
    request = baclofen_request()
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "Medication/med-ozobax"}
    medication = {
        "resourceType": "Medication", "id": "med-ozobax",
        "code": {"text": "Baclofen oral solution"},
        "form": {"text": "oral solution"},
        "ingredient": [{"itemCodeableConcept": {"text": "baclofen"},
                        "strength": {"numerator": {"value": 5, "code": "mg"},
                                     "denominator": {"value": 5, "code": "mL"}}}],
    }
    found = recognise(request, [medication])
    assert found.match_path == "medication-reference/text"
    assert found.product.concentration_mg_per_ml == 1.0
    assert found.product.route == "oral"


def test_contained_medication():
    request = baclofen_request()
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "#m"}
    request["contained"] = [{"resourceType": "Medication", "id": "m", "code": {"coding": [
        {"system": RXNORM, "code": "2593376"}]}}]
    found = recognise(request)
    assert found.match_path == "contained-medication/rxnorm-product"
    assert found.product.concentration_mg_per_ml == 5


def test_unresolvable_reference_is_not_baclofen():
    request = baclofen_request()
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "Medication/missing"}
    assert recognise(request) is None


@pytest.mark.parametrize(("text", "route"), [
    ("Gablofen 2000 mcg/mL", "intrathecal"),
    ("Lioresal Intrathecal refill", "intrathecal"),
    ("Ozobax DS", "oral"),
    ("FLEQSUVY oral suspension", "oral"),
])
def test_brand_names(text, route):
    request = baclofen_request(dosages=[])
    request["medicationCodeableConcept"] = {"text": text}
    found = recognise(request)
    assert found.match_path == "brand-name"
    assert found.product.route == route


def test_free_text_last_resort_and_non_baclofen():
    request = baclofen_request()
    request["medicationCodeableConcept"] = {"text": "BACLOFEN 10MG TAB"}
    assert recognise(request).match_path == "text"
    request["medicationCodeableConcept"] = {"coding": [
        {"system": RXNORM, "code": "313365", "display": "tizanidine 4 MG Oral Tablet"}]}
    assert recognise(request) is None


def test_injection_is_always_intrathecal_and_route_code_is_read():
    assert recognise(baclofen_request(rxcui="1666613")).product.route == "intrathecal"
    request = baclofen_request()
    request["medicationCodeableConcept"] = {"text": "baclofen"}
    request["dosageInstruction"][0]["route"] = {"coding": [{"system": SNOMED,
                                                            "code": "72607000"}]}
    assert recognise(request).product.is_intrathecal


@pytest.mark.parametrize("junk", [
    {"medicationCodeableConcept": "baclofen"},
    {"medicationCodeableConcept": {"coding": "baclofen"}},
    {"medicationReference": "Medication/x"},
    {"medicationCodeableConcept": {"coding": [None, 3]}},
    {"contained": "x", "medicationReference": {"reference": "#a"}},
])
def test_malformed_requests_never_raise(junk):
    request = {"resourceType": "MedicationRequest", **junk}
    assert recognise(request) is None
