"""Properties of recognition over generated product texts and routes: nothing whose text
holds an intrathecal word of rules/products.yaml (intrathecal_words), or whose coded route
is intrathecal, is ever read as oral; and through the clinical engine, no such stopped
order ever gets the oral supervised-taper card.

The words may be glued to a number ("2000mcg/mL") or plural ("vials"), may sit in a
referenced or contained Medication, and may stand beside a coded oral or tube route.
Examples at the end pin the cases these properties first found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds.assessment import ClinicalEngine
from cds.facts.recognition import MedicationIndex, Recogniser
from cds.facts.record import PatientRecord
from cds.knowledge import load_knowledge
from tests.clinical_builders import (
    NOW,
    ROUTE_INTRATHECAL,
    RXNORM,
    SNOMED,
    as_draft,
    at,
    coding,
    concept,
    iso,
    medication,
    observation,
    patient,
    pump_device,
    request_with,
)

K = load_knowledge()
RECOGNISER = Recogniser(K)
ENGINE = ClinicalEngine(K)
WORDS = tuple(dict.fromkeys([*K.text_recognition["intrathecal_words"],
                             *K.code_sets["route_intrathecal"].words]))
ORAL_ROUTES = ("26643006", "127490009", "127492001")
NAMES = tuple(K.text_recognition["baclofen_names"])
INTRATHECAL_ROUTES = tuple(c.code for c in K.code_sets["route_intrathecal"].codes)
ORAL_CARD = "supervised-taper"

PROPERTY = settings(max_examples=250, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
ENGINE_PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                           suppress_health_check=[HealthCheck.too_slow])

# Words that say nothing about the route, and oral-sounding ones: an intrathecal word
# must win over them.
FILLERS = ("10 mg", "20 mL", "5 mg/5 mL", "2 mg/mL", "tablet", "oral", "solution", "PO",
           "three times daily", "as directed", "per protocol", "(generic)", "USP", "PF",
           "preservative free", "refill", "pump", "", "for spasticity", "1 each", "x1")
SEPARATORS = (" ", "  ", ", ", " (", ") ", " - ", "; ", " / ")


def _case(draw: st.DrawFn, word: str) -> str:
    word = draw(st.sampled_from([word, word + "s", "2000" + word]))  # plural, glued
    if not word.isascii():  # "µ".upper() is a Greek capital mu: no EHR writes that
        return word
    return draw(st.sampled_from([word, word.upper(), word.title()]))


@st.composite
def phrases(draw: st.DrawFn, required: tuple[str, ...]) -> str:
    """A product or sig text: the required words among fillers, each word set apart."""
    parts = [_case(draw, w) for w in required]
    parts += draw(st.lists(st.sampled_from(FILLERS), max_size=3))
    parts = draw(st.permutations(parts))
    out = ""
    for part in parts:
        out += draw(st.sampled_from(SEPARATORS)) + part
    return out.strip(" ,;/-()") or parts[0]


@dataclass
class Written:
    request: dict
    where: str  # where the intrathecal evidence is written
    medications: tuple[dict, ...] = ()


@st.composite
def intrathecal_requests(draw: st.DrawFn) -> Written:
    """A baclofen MedicationRequest whose text holds an intrathecal word somewhere the
    order itself says it, or whose coded route is intrathecal."""
    name = draw(st.sampled_from(NAMES))
    word = draw(st.sampled_from(WORDS))
    where = draw(st.sampled_from(["product text", "product display", "sig", "instruction",
                                  "route text", "reference display", "coded route",
                                  "referenced medication", "contained medication"]))
    product = draw(phrases((name, word) if where in (
        "product text", "product display", "reference display", "referenced medication",
        "contained medication") else (name,)))
    medications: tuple[dict, ...] = ()
    dosage: dict = {}
    extra: dict = {}
    medication_concept: dict | None = concept(text=product)
    if where == "product display":
        code = draw(st.sampled_from([coding(RXNORM, "1292", product),
                                     coding(SNOMED, "387342009", product),
                                     coding(RXNORM, "99999999", product)]))
        medication_concept = concept(code)
    elif where == "reference display":
        medication_concept = None
        extra["medicationReference"] = {"reference": "Medication/not-sent", "display": product}
    elif where == "referenced medication":
        medication_concept = None
        medications = (medication("m1", concept(text=product)),)
        extra["medicationReference"] = {"reference": "Medication/m1"}
    elif where == "contained medication":
        medication_concept = None
        extra["contained"] = [medication("m1", concept(text=product))]
        extra["medicationReference"] = {"reference": "#m1"}
    elif where == "sig":
        dosage["text"] = draw(phrases((word,)))
    elif where == "instruction":
        dosage["patientInstruction"] = draw(phrases((word,)))
    elif where == "route text":
        dosage["route"] = {"text": _case(draw, word)}
    if where == "coded route":
        dosage["route"] = concept(coding(SNOMED, draw(st.sampled_from(INTRATHECAL_ROUTES))))
    else:
        if where != "route text" and draw(st.booleans()):  # a coded oral route beside
            dosage["route"] = concept(coding(SNOMED, draw(st.sampled_from(ORAL_ROUTES))))
        if draw(st.booleans()):
            dosage.setdefault("text", draw(st.sampled_from(FILLERS)))
    request = request_with(medication_concept, dosages=[dosage] if dosage else [], **extra)
    return Written(request, where, medications)


def _route(written: Written, pump: bool = False) -> str:
    found = RECOGNISER.recognise(written.request, MedicationIndex(list(written.medications)),
                                 pump)
    assert found is not None, written
    return found.product.route


@PROPERTY
@given(intrathecal_requests(), st.booleans())
def test_intrathecal_words_and_routes_are_never_read_as_oral(written: Written, pump: bool
                                                             ) -> None:
    assert _route(written, pump) == "intrathecal", written.request


@PROPERTY
@given(intrathecal_requests())
def test_the_administration_of_such_a_product_is_never_oral(written: Written) -> None:
    given_ = {k: v for k, v in written.request.items() if k != "dosageInstruction"}
    dosages = written.request["dosageInstruction"]
    if not dosages:
        return
    given_ = {**given_, "resourceType": "MedicationAdministration", "status": "completed",
              "dosage": dosages[0], "effectiveDateTime": iso(at(days=1))}
    if written.where in ("sig", "instruction", "route text"):
        return  # an administration's dosage text is not an order's sig
    found = RECOGNISER.recognise(given_, MedicationIndex(list(written.medications)), False)
    assert found is not None and found.product.route == "intrathecal", given_


# ---------------------------------------------------------------- through the engine


@dataclass
class Stopped:
    hook: str
    resources: list[dict]
    drafts: list[dict]
    written: Written


@st.composite
def stopped_intrathecal_orders(draw: st.DrawFn) -> Stopped:
    written = draw(intrathecal_requests())
    order = written.request
    order["id"] = "it"
    order["authoredOn"] = iso(at(days=draw(st.integers(30, 800))))
    if draw(st.booleans()) and order["dosageInstruction"]:
        order["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": {
            "value": draw(st.sampled_from([10, 20, 2])), "unit": "mg", "code": "mg"}}]
        order["dosageInstruction"][0]["timing"] = {"repeat": {"frequency": 3, "period": 1,
                                                              "periodUnit": "d"}}
    hook = draw(st.sampled_from(["patient-view", "encounter-start", "order-sign",
                                 "order-select"]))
    drafts: list[dict] = []
    if hook.startswith("order-"):
        drafts.append(as_draft(order, draw(st.sampled_from(["stopped", "cancelled"]))))
    else:
        order["status"] = draw(st.sampled_from(["stopped", "completed"]))
        if draw(st.integers(0, 3)):
            order["meta"] = {"lastUpdated": iso(NOW - timedelta(
                hours=draw(st.integers(1, 13 * 24))))}
    resources = [patient(), order, *written.medications]
    if draw(st.booleans()):
        resources.append(pump_device())
    for sign in draw(st.lists(st.sampled_from(["fever", "tachycardia", "hypotension",
                                               "slow-breathing"]), max_size=2, unique=True)):
        code, value, unit = {"fever": ("8310-5", 39.4, "Cel"),
                             "tachycardia": ("8867-4", 128, "/min"),
                             "hypotension": ("8480-6", 82, "mm[Hg]"),
                             "slow-breathing": ("9279-1", 7, "/min")}[sign]
        resources.append(observation(code, value, unit, hours_ago=2, oid=sign))
    return Stopped(hook, resources, drafts, written)


@ENGINE_PROPERTY
@given(stopped_intrathecal_orders())
def test_no_stopped_intrathecal_order_gets_the_oral_taper_card(case: Stopped) -> None:
    found = ENGINE.assess(case.hook, {"patientId": "p1"},
                          PatientRecord(case.resources, case.drafts), NOW)
    assert all(s.route == "intrathecal" for s in found.facts.subjects), case.written.request
    kinds = [f.kind.kind for f in found.findings]
    assert ORAL_CARD not in kinds, (kinds, case.written.request)


def test_the_engine_property_sees_cards() -> None:
    """The property above is not vacuous: such a stop does get the intrathecal card."""
    order = request_with(concept(text="Baclofen intrathecal 2000 mcg/mL"), status="stopped",
                         authored=at(days=300), dosages=[{"text": "per pump programming"}],
                         meta={"lastUpdated": iso(at(days=1))})
    found = ENGINE.assess("patient-view", {"patientId": "p1"},
                          PatientRecord([patient(), order], []), NOW)
    assert [f.kind.kind for f in found.findings] == ["intrathecal-stop"]


# ---------------------------------------------------------------- examples


def _stopped_card(request: dict, medications: tuple[dict, ...] = ()) -> list[str]:
    request = {**request, "status": "stopped", "authoredOn": iso(at(days=300)),
               "meta": {"lastUpdated": iso(at(days=1))}}
    found = ENGINE.assess("patient-view", {"patientId": "p1"},
                          PatientRecord([patient(), request, *medications], []), NOW)
    return [f.kind.kind for f in found.findings]


PUMP_SIG = {"text": "per pump programming"}


@pytest.mark.parametrize("text", ["Baclofen 2000mcg/mL", "baclofen 40 mg/20 mL vials",
                                  "baclofen 10 mg/5 mL ampules", "baclofen injections",
                                  "baclofen prefilled syringes"])
def test_glued_and_plural_intrathecal_words(text: str) -> None:
    assert ORAL_CARD not in _stopped_card(request_with(concept(text=text), dosages=[PUMP_SIG]))


@pytest.mark.parametrize(("text", "sig"), [
    ("Baclofen 2000 mcg/mL", "per pump programming"),
    ("Baclofen ITB refill kit", "per pump programming"),
    ("Baclofen", "intrathecal infusion per pump programming"),
])
def test_coded_oral_route_with_intrathecal_words(text: str, sig: str) -> None:
    dosage = {"text": sig, "route": concept(coding(SNOMED, "26643006"))}
    assert ORAL_CARD not in _stopped_card(request_with(concept(text=text), dosages=[dosage]))


@pytest.mark.parametrize("text", ["Baclofen 2000 mcg/mL", "Baclofen ITB refill kit"])
def test_intrathecal_words_in_the_medication_resource(text: str) -> None:
    request = request_with(None, dosages=[PUMP_SIG],
                           medicationReference={"reference": "Medication/m1"})
    assert ORAL_CARD not in _stopped_card(request, (medication("m1", concept(text=text)),))


def test_coded_intrathecal_route_on_an_oral_looking_text() -> None:
    dosage = {"text": "10 mg three times daily",
              "route": concept(coding(SNOMED, ROUTE_INTRATHECAL))}
    kinds = _stopped_card(request_with(concept(text="baclofen 10 mg tablet"), dosages=[dosage]))
    assert ORAL_CARD not in kinds
