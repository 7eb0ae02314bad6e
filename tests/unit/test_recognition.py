"""Baclofen recognition (cds.facts.recognition): every product of rules/products.yaml, every
path (product code, ingredient code, brand, text, Medication), and the route, which never
falls through to oral for anything intrathecal."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts.recognition import (
    PATH_INGREDIENT_CODE,
    PATH_NAME,
    PATH_PRODUCT_CODE,
    PATH_TEXT,
    MedicationIndex,
    Recogniser,
    Recognition,
)
from cds.facts.record import PatientRecord
from cds.facts.subjects import FactExtractor
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    ROUTE_GASTROSTOMY,
    ROUTE_INTRATHECAL,
    ROUTE_ORAL,
    RXNORM,
    SNOMED,
    administration,
    at,
    baclofen_request,
    coding,
    concept,
    ingredient,
    medication,
    patient,
    pump_device,
    pump_procedure,
    rate_dosage,
    request_with,
    route,
    sig_dosage,
)

K = load_knowledge()
RECOGNISER = Recogniser(K)
PRODUCT_CODES = [(p.id, c.code.code) for p in K.products.values() for c in p.codes]
INTRATHECAL_WORDS = K.text_recognition["intrathecal_words"]


def recognise(holder: dict, medications: tuple[dict, ...] = (), pump: bool = False
              ) -> Recognition | None:
    return RECOGNISER.recognise(holder, MedicationIndex(list(medications)), pump)


def by_text(text: str, dosages: list[dict] | None = None, pump: bool = False
            ) -> Recognition | None:
    return recognise(request_with(concept(text=text), dosages=dosages or []), pump=pump)


def by_reference(med: dict, dosages: list[dict] | None = None) -> Recognition | None:
    request = request_with(None, dosages=dosages or [],
                           medicationReference={"reference": f"Medication/{med['id']}"})
    return recognise(request, (med,))


# ---------------------------------------------------------------- product codes


@pytest.mark.parametrize(("product_id", "code"), PRODUCT_CODES)
def test_every_product_code_with_its_display(product_id: str, code: str) -> None:
    entry = K.products[product_id]
    found = recognise(request_with(concept(coding(RXNORM, code, entry.name)), dosages=[]))
    assert found is not None and found.path == PATH_PRODUCT_CODE
    assert (found.product.route, found.product.form) == (entry.route, entry.form)
    assert found.product.strength_mg == entry.strength_mg
    assert found.product.concentration_mg_per_ml == entry.concentration_mg_per_ml
    assert not found.weak


@pytest.mark.parametrize(("product_id", "code"), PRODUCT_CODES)
def test_every_product_code_without_a_display(product_id: str, code: str) -> None:
    found = recognise(request_with(concept(coding(RXNORM, code)), dosages=[]))
    assert found is not None and found.product.route == K.products[product_id].route


def test_table_covers_every_intrathecal_concentration() -> None:
    mcg = {round(p.concentration_mg_per_ml * 1000) for p in K.products.values()
           if p.route == "intrathecal" and p.concentration_mg_per_ml}
    assert mcg == {50, 500, 1000, 2000}


def test_product_code_needs_its_system() -> None:
    assert recognise(request_with(concept(coding(SNOMED, "197391")), dosages=[])) is None


def test_pump_code_is_intrathecal_whatever_the_coded_route() -> None:
    found = recognise(request_with(concept(coding(RXNORM, "1666613")),
                                   dosages=[{"route": route(ROUTE_ORAL)}]))
    assert found.product.route == "intrathecal" and found.route_evidence == "product code"


# ---------------------------------------------------------------- ingredient, brand, text


@pytest.mark.parametrize("code", [coding(RXNORM, "1292"), coding(SNOMED, "387342009"),
                                  coding(SNOMED, "6102009")])
def test_ingredient_codes(code: dict) -> None:
    found = recognise(request_with(concept(code), dosages=[]))
    assert found.path == PATH_INGREDIENT_CODE and found.product.route == "oral"


def test_ingredient_code_with_the_strength_in_its_display() -> None:
    found = recognise(request_with(concept(coding(RXNORM, "1292", "baclofen 15 MG Oral Tablet")),
                                   dosages=[]))
    assert found.path == PATH_INGREDIENT_CODE
    assert (found.product.form, found.product.strength_mg) == ("tablet", 15)


def test_ingredient_code_matches_only_with_its_system() -> None:
    assert recognise(request_with(concept(coding(RXNORM, "387342009")), dosages=[])) is None


@pytest.mark.parametrize(("text", "route_", "form", "mg", "mg_per_ml"), [
    ("Ozobax 5 mg/5 mL", "oral", "solution", None, 1),
    ("Ozobax DS oral solution", "oral", "solution", None, 2),
    ("FLEQSUVY oral suspension", "oral", "suspension", None, 5),
    ("Lyvispah 10 mg granules", "oral", "granules", 10, None),
    ("Gablofen 2000 mcg/mL", "intrathecal", "injection", None, 2),
    ("Lioresal Intrathecal 500 mcg/mL", "intrathecal", "injection", None, 0.5),
    ("Gablofen", "intrathecal", "injection", None, None),
])
def test_brand_names(text: str, route_: str, form: str, mg: float | None,
                     mg_per_ml: float | None) -> None:
    found = by_text(text)
    assert found.path == PATH_NAME
    assert (found.product.route, found.product.form) == (route_, form)
    assert found.product.strength_mg == mg
    assert found.product.concentration_mg_per_ml == mg_per_ml


@pytest.mark.parametrize(("text", "form", "mg"), [
    ("BACLOFEN 10MG TAB", "tablet", 10), ("baclofen 10 mg tab", "tablet", 10),
    ("Lioresal 10 mg tablet", "tablet", 10), ("baclofen oral solution", "solution", None),
    ("Baclofen", "unknown", None), ("Kemstro 10 mg", "unknown", None),
])
def test_baclofen_word_as_last_resort(text: str, form: str, mg: float | None) -> None:
    found = by_text(text)
    assert found.path == PATH_TEXT
    assert (found.product.route, found.product.form, found.product.strength_mg) == (
        "oral", form, mg)


@pytest.mark.parametrize(("text", "mg"), [
    ("baclofen oral tablet (whole tablets of 5, 10, 15, 20 mg)", None),
    ("baclofen 10 mg and 20 mg tablets", None),
    ("baclofen 10 and 20 mg tablets", None),
    ("baclofen tablet 5 mg or 10 mg", None),
    ("baclofen 5mg/10mg tablet", None),
    ("baclofen 10 MG Oral Tablet, 10 mg", 10),  # the same strength twice is one strength
    ("baclofen 10 mg tablet, 30 mg/day", 10),  # a rate is not a strength
    ("baclofen 2.5 mg tablet", 2.5),
])
def test_a_text_listing_several_strengths_names_no_single_strength(text: str,
                                                                   mg: float | None) -> None:
    """A count of tablets of "5, 10, 15, 20 mg" is no dose: reading the first (or last)
    strength of the list would turn the service's own taper product into 20 mg tablets."""
    for holder in (concept(text=text), concept(coding(RXNORM, "1292", text))):
        found = recognise(request_with(holder, dosages=[]))
        assert (found.product.form, found.product.strength_mg) == ("tablet", mg), text


def test_a_text_and_a_display_naming_different_strengths_name_none() -> None:
    holder = concept(coding(RXNORM, "1292", "baclofen 20 MG Oral Tablet"),
                     text="baclofen 10 mg tablet")
    assert recognise(request_with(holder, dosages=[])).product.strength_mg is None


@pytest.mark.parametrize("medication_concept", [
    concept(coding(RXNORM, "313365", "tizanidine 4 MG Oral Tablet")),
    concept(text="cyclobenzaprine 10 mg"), concept(text="baclo"), concept(),
])
def test_other_medicines_are_not_baclofen(medication_concept: dict) -> None:
    assert recognise(request_with(medication_concept, dosages=[])) is None
    assert not RECOGNISER.is_baclofen_concept(medication_concept)


def test_is_baclofen_concept_by_code_ingredient_and_word() -> None:
    assert RECOGNISER.is_baclofen_concept(concept(coding(RXNORM, "1666613")))
    assert RECOGNISER.is_baclofen_concept(concept(coding(SNOMED, "387342009")))
    assert RECOGNISER.is_baclofen_concept(concept(text="GABLOFEN refill"))
    assert not RECOGNISER.is_baclofen_concept("baclofen")


# ---------------------------------------------------------------- Medication resources


def test_medication_by_reference_with_ingredient_strength_per_ml() -> None:
    med = medication("ozobax", concept(text="Baclofen oral solution"), form="oral solution",
                     ingredients=[ingredient(concept(text="baclofen"), 5, "mg", 5, "mL")])
    found = by_reference(med)
    assert found.path == f"{PATH_TEXT} (via Medication)"
    assert found.product.concentration_mg_per_ml == 1.0 and found.product.route == "oral"


def test_medication_by_reference_known_only_by_its_ingredient() -> None:
    med = medication("tabs", form="tablet", ingredients=[
        ingredient(concept(coding(RXNORM, "1292")), 10, "mg", 1, "{tbl}")])
    found = by_reference(med)
    assert found.path == f"{PATH_INGREDIENT_CODE} (via Medication)"
    assert (found.product.form, found.product.strength_mg) == ("tablet", 10)


def test_medication_by_reference_injection_with_strength_per_20_ml() -> None:
    med = medication("it", concept(text="BACLOFEN (INTRATHECAL) 10 MG/20 ML INJ"),
                     ingredients=[ingredient(concept(coding(RXNORM, "1292")), 10, "mg", 20)])
    found = by_reference(med)
    assert found.product.route == "intrathecal"
    assert found.product.concentration_mg_per_ml == pytest.approx(0.5)


def test_multi_ingredient_medication_reads_the_baclofen_strength() -> None:
    med = medication("combo", concept(text="compounded baclofen cream"), ingredients=[
        ingredient(concept(text="lidocaine"), 50, "mg", 1, "mL"),
        ingredient(concept(text="baclofen"), 20, "mg", 1, "mL")])
    assert by_reference(med).product.concentration_mg_per_ml == 20


def test_contained_medication_by_product_code() -> None:
    request = request_with(None, dosages=[], medicationReference={"reference": "#m"},
                           contained=[medication("m", concept(coding(RXNORM, "2593376")))])
    found = recognise(request)
    assert found.path == f"{PATH_PRODUCT_CODE} (via Medication)"
    assert found.product.concentration_mg_per_ml == 5


def test_contained_medication_with_ingredient_strength() -> None:
    request = request_with(None, dosages=[], medicationReference={"reference": "#m"},
                           contained=[medication("m", concept(text="baclofen suspension"),
                                                 ingredients=[ingredient(
                                                     concept(text="baclofen"), 25, "mg", 5)])])
    found = recognise(request)
    assert found.product.form == "suspension"
    assert found.product.concentration_mg_per_ml == 5


def test_reference_display_when_the_medication_is_not_sent() -> None:
    request = request_with(None, dosages=[], medicationReference={
        "reference": "Medication/absent", "display": "baclofen 10 mg tablet"})
    assert recognise(request).product.strength_mg == 10


def test_unresolvable_reference_without_display_is_not_baclofen() -> None:
    request = request_with(None, dosages=[],
                           medicationReference={"reference": "Medication/missing"})
    assert recognise(request) is None


def test_medication_administration_is_recognised_like_an_order() -> None:
    given = administration("ma", at(days=1), medication_concept=concept(text="Gablofen"),
                           amount=20, unit="mL", route_code=ROUTE_INTRATHECAL)
    assert recognise(given).product.route == "intrathecal"


# ---------------------------------------------------------------- route


@pytest.mark.parametrize(("code", "expected"), [
    (ROUTE_INTRATHECAL, "intrathecal"), ("418418000", "intrathecal"), (ROUTE_ORAL, "oral"),
    (ROUTE_GASTROSTOMY, "oral"), ("127492001", "oral"),
])
def test_route_from_the_coded_route(code: str, expected: str) -> None:
    found = by_text("baclofen", dosages=[{"route": route(code)}])
    assert found.product.route == expected
    assert found.route_evidence == "coded route" and not found.weak


def test_coded_intrathecal_route_wins_over_tablet_words() -> None:
    found = by_text("baclofen 10 mg tablet", dosages=[{"route": route(ROUTE_INTRATHECAL)}])
    assert found.product.route == "intrathecal"


@pytest.mark.parametrize("dosages", [
    [sig_dosage("intrathecal via pump")], [{"route": {"text": "Intrathecal"}}],
    [sig_dosage("per ITB pump"), ], [{"patientInstruction": "IT pump refill"}],
    [rate_dosage(300)],
])
def test_route_from_the_order_words_or_microgram_doses(dosages: list[dict]) -> None:
    found = by_text("baclofen", dosages=dosages)
    assert found.product.route == "intrathecal" and found.weak


def test_implanted_pump_on_record_makes_an_unknown_form_intrathecal() -> None:
    found = by_text("baclofen", pump=True)
    assert found.product.route == "intrathecal"
    assert found.route_evidence == "an implanted pump on record" and found.weak


@pytest.mark.parametrize("context", [pump_device(), pump_procedure(when=at(days=40))])
def test_pump_device_or_procedure_in_the_record_places_the_order(context: dict) -> None:
    order = request_with(concept(text="Baclofen"), authored=at(days=100),
                         dosages=[sig_dosage("per pump programming")])
    found = FactExtractor(K).extract("patient-view", {"patientId": "p1"},
                                     PatientRecord([patient(), order, context], []), at())
    assert [s.route for s in found.subjects] == ["intrathecal"]
    assert found.subjects[0].facts["recognition_weak"]


def test_implanted_pump_does_not_move_tablets_off_the_mouth() -> None:
    assert by_text("baclofen 10 mg tablet", pump=True).product.route == "oral"


def test_unknown_form_without_any_intrathecal_evidence_is_oral() -> None:
    found = by_text("baclofen")
    assert found.product.route == "oral" and found.route_evidence == "no route stated"


@pytest.mark.parametrize("word", INTRATHECAL_WORDS)
def test_each_intrathecal_word_in_the_product_text_is_never_oral(word: str) -> None:
    assert by_text(f"baclofen {word}").product.route == "intrathecal"


@pytest.mark.parametrize("word", INTRATHECAL_WORDS)
def test_each_intrathecal_word_in_the_sig_is_never_oral(word: str) -> None:
    shouted = word.upper() if word.isascii() else word  # "µ".upper() is a Greek capital mu
    found = by_text("baclofen", dosages=[sig_dosage(f"give {shouted} as directed")])
    assert found.product.route == "intrathecal"


@pytest.mark.parametrize("text", ["baclofen injectable solution",
                                  "Baclofen Injectable Solution 0.05 MG/ML",
                                  "baclofen 2 mg/mL inj", "baclofen 500 mcg/ml", "baclofen vial",
                                  "baclofen prefilled syringe", "baclofen ampule",
                                  "baclofen 50 µg/ml", "baclofen refill kit"])
def test_injections_are_intrathecal(text: str) -> None:
    assert by_text(text).product.route == "intrathecal"


@pytest.mark.parametrize("text", ["baclofen injection", "Gablofen", "baclofen intrathecal"])
def test_form_words_and_brands_win_over_a_coded_oral_route(text: str) -> None:
    assert by_text(text, dosages=[{"route": route(ROUTE_ORAL)}]).product.route == "intrathecal"


@pytest.mark.parametrize(("text", "sig"), [
    ("baclofen 500 mcg/mL", "per pump programming"),
    ("baclofen ITB", "per pump programming"),
    ("baclofen refill kit", "per protocol"),
    ("baclofen", "intrathecal, per pump programming"),
])
@pytest.mark.parametrize("code", [ROUTE_ORAL, ROUTE_GASTROSTOMY])
def test_intrathecal_words_win_over_a_coded_oral_route(text: str, sig: str, code: str) -> None:
    found = by_text(text, dosages=[{"text": sig, "route": route(code)}])
    assert found.product.route == "intrathecal"


@pytest.mark.parametrize("text", ["Baclofen 2000 mcg/mL", "Baclofen ITB refill kit",
                                  "baclofen (it pump)"])
@pytest.mark.parametrize("contained", [False, True])
def test_intrathecal_words_in_a_medication_resource(text: str, contained: bool) -> None:
    med = medication("m1", concept(text=text))
    if contained:
        found = recognise(request_with(None, dosages=[], medicationReference={"reference": "#m1"},
                                       contained=[med]))
    else:
        found = by_reference(med)
    assert found.product.route == "intrathecal"


@pytest.mark.parametrize("text", ["baclofen 2000mcg/mL", "BACLOFEN 500MCG/ML",
                                  "baclofen 50ug/mL"])
def test_micrograms_per_ml_glued_to_the_number(text: str) -> None:
    assert by_text(text).product.route == "intrathecal"


@pytest.mark.parametrize("dosages", [
    [sig_dosage("400 mcg/day intrathecally")],
    [sig_dosage("continuous infusion via pump")],
    [{"text": "per protocol", "route": {"text": "Intraspinal"}}],
])
def test_route_words_of_the_terminology(dosages: list[dict]) -> None:
    assert by_text("baclofen", dosages=dosages).product.route == "intrathecal"


# ---------------------------------------------------------------- robustness


@pytest.mark.parametrize("junk", [
    {"medicationCodeableConcept": "baclofen"},
    {"medicationCodeableConcept": {"coding": "baclofen"}},
    {"medicationReference": "Medication/x"},
    {"medicationCodeableConcept": {"coding": [None, 3]}},
    {"contained": "x", "medicationReference": {"reference": "#a"}},
    {"medicationReference": {"reference": 7}},
])
def test_malformed_requests_never_raise(junk: dict[str, Any]) -> None:
    assert recognise({"resourceType": "MedicationRequest", **junk}) is None


@pytest.mark.parametrize("dosages", [["x"], [{"route": "oral"}], [{"route": {"coding": "x"}}],
                                     [{"doseAndRate": ["x", None]}]])
def test_malformed_dosages_never_raise(dosages: list[Any]) -> None:
    request = baclofen_request(rxcui="197391", dosages=dosages)
    assert recognise(request) is not None
