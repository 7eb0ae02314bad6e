"""The service knows the orders it suggested (cds.suggested_orders), and only as far as is safe.

Drafts shaped as the CDS Hooks Sandbox drafts them (a new order of pills beside the current
one, a stop as End Date today), for a patient on 20 mg tablets three times a day and one
on an oral solution: after accepting either suggestion, as a full client or as the
Sandbox, the next order-sign raises no new card. But a mark or our identifier never hides
what an order says itself: a taper edited into an abrupt cut, an identifier pasted onto
an abrupt order, a marked medication with a dose of its own are judged like any order.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from cds.cards.extension import EXTENSION_KEY
from cds.fixtures import FIXTURE_DIR, load_fixture
from cds.suggested_orders import IDENTIFIER_SYSTEM, MARKS, medication_only
from cds.suggestion_clients import CLIENTS, apply_suggestion
from tests.support.sandbox import sandbox_draft_order

NOW = datetime.now(UTC)
ORDER_PATH = "/cds-services/baclofen-order-sign"
TABLETS = "01-oral-stop-long-term"  # 20 mg three times a day, 60 mg/day
LIQUID = "taper-stop-liquid-2mg-per-ml"  # 2 mg/mL, 7.5 mL three times a day, 45 mg/day
DRAFTS = {  # name: (RxCUI, product, tablets a time, times a day, ends today)
    "cut to 10 mg tablets": ("197391", "Baclofen 10 MG Oral Tablet", 1, 1, False),
    "cut to 20 mg tablets": ("197392", "Baclofen 20 MG Oral Tablet", 1, 1, False),
    "stop": ("197392", "Baclofen 20 MG Oral Tablet", 1, 3, True),
}
SCENARIOS = [(TABLETS, name) for name in DRAFTS] + [(LIQUID, "cut to 10 mg tablets")]


def sandbox_request(scenario: str, draft_name: str) -> dict:
    fixture = load_fixture(FIXTURE_DIR / f"{scenario}.json", NOW)
    patient_id = fixture.request["context"]["patientId"]
    rxcui, product, pills, times, ends_today = DRAFTS[draft_name]
    draft = sandbox_draft_order(patient_id, rxcui, product, times)
    draft.pop("reasonCode")  # Rx Sign never sends it
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = pills
    if ends_today:
        draft["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
            "end": NOW.date().isoformat()}
    return {"hookInstance": "5f0a3f1e-6c1d-4e55-8a3b-2b0c4d5e6f70", "hook": "order-sign",
            "context": {"patientId": patient_id, "userId": "Practitioner/COREPRACTITIONER1",
                        "draftOrders": {"resourceType": "Bundle",
                                        "entry": [{"resource": draft}]}},
            "prefetch": copy.deepcopy(fixture.request["prefetch"])}


def cards(client, request: dict) -> list[dict]:
    response = client.post(ORDER_PATH, json=request)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()["cards"]


def suggestion(card_list: list[dict], name: str) -> dict:
    (card,) = [c for c in card_list if c["extension"][EXTENSION_KEY]["kind"] == "supervised-taper"]
    (found,) = [s for s in card["suggestions"]
                if s["extension"][EXTENSION_KEY]["suggestion"] == name]
    return found


def with_drafts(request: dict, drafts: list[dict]) -> dict:
    again = copy.deepcopy(request)
    again["context"]["draftOrders"]["entry"] = [{"resource": d} for d in drafts]
    return again


def draft(request: dict) -> dict:
    return request["context"]["draftOrders"]["entry"][0]["resource"]


@pytest.mark.parametrize("ehr", CLIENTS)
@pytest.mark.parametrize("which", ["replace-with-taper", "keep-current-dose"])
@pytest.mark.parametrize(("scenario", "draft_name"), SCENARIOS)
def test_accepting_either_suggestion_ends_the_warning(client, scenario, draft_name, which, ehr):
    request = sandbox_request(scenario, draft_name)
    accepted = suggestion(cards(client, request), which)
    applied = apply_suggestion([draft(request)], accepted, ehr)
    assert cards(client, with_drafts(request, applied)) == []


@pytest.mark.parametrize(("scenario", "draft_name"), SCENARIOS)
def test_the_suggested_orders_are_coded_rxnorm_first_and_marked(client, scenario, draft_name):
    request = sandbox_request(scenario, draft_name)
    found = cards(client, request)
    for name, kind in (("replace-with-taper", "taper"), ("keep-current-dose", "keep")):
        (action,) = suggestion(found, name)["actions"]
        resource = action["resource"]
        concept = resource["medicationCodeableConcept"]
        assert concept["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
        assert concept["text"].endswith(MARKS[kind])
        assert any(i["system"] == IDENTIFIER_SYSTEM and i["value"].startswith(f"{kind}/")
                   for i in resource["identifier"])
    taper = suggestion(found, "replace-with-taper")["actions"][0]["resource"]
    if scenario == TABLETS:  # tablets of several strengths: the ingredient, dose in mg
        assert taper["medicationCodeableConcept"]["coding"][0]["code"] == "1292"
    else:  # the solution the patient takes, by its own code
        assert taper["medicationCodeableConcept"]["coding"][0]["code"] == "2667941"


def test_the_sandbox_keeps_the_current_medication_after_keep_the_current_dose(client):
    request = sandbox_request(TABLETS, "cut to 10 mg tablets")
    keep = suggestion(cards(client, request), "keep-current-dose")
    (kept,) = apply_suggestion([draft(request)], keep, "sandbox")
    assert kept["medicationCodeableConcept"]["coding"][0]["code"] == "197392"  # as mr-01
    assert kept["dosageInstruction"], "a signable order, not an emptied draft"
    assert medication_only(kept) == "keep"


# ---------------------------------------------------------------- what is never silenced


def test_an_identifier_pasted_onto_an_abrupt_cut_does_not_silence_it(client):
    request = sandbox_request(TABLETS, "cut to 20 mg tablets")
    taper = suggestion(cards(client, request), "replace-with-taper")["actions"][0]["resource"]
    cut = copy.deepcopy(draft(request))
    cut["identifier"] = taper["identifier"]
    assert _kinds(cards(client, with_drafts(request, [cut]))) == ["supervised-taper"]


def test_the_taper_edited_into_an_abrupt_cut_is_judged_on_what_it_says(client):
    request = sandbox_request(TABLETS, "cut to 20 mg tablets")
    accepted = suggestion(cards(client, request), "replace-with-taper")
    (taper,) = apply_suggestion([draft(request)], accepted, "full")
    # The clinician keeps the order (identifier, marked medication) but writes 10 mg once a
    # day from today instead of the steps: a cut from 60 to 10 mg/day.
    first = copy.deepcopy(taper["dosageInstruction"][0])
    first["doseAndRate"][0]["doseQuantity"]["value"] = 10
    first["timing"]["repeat"]["frequency"] = 1
    first["timing"]["repeat"]["boundsPeriod"].pop("end", None)
    first.pop("text")
    taper["dosageInstruction"] = [first]
    assert medication_only(taper) is None
    assert _kinds(cards(client, with_drafts(request, [taper]))) == ["supervised-taper"]


@pytest.mark.parametrize("own_dose", [
    {"doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg",
                                       "system": "http://unitsofmeasure.org", "code": "mg"}}]},
    {"text": "1 tablet once a day"},
])
def test_a_marked_medication_with_a_dose_of_its_own_is_judged_on_it(client, own_dose):
    request = sandbox_request(TABLETS, "cut to 20 mg tablets")
    keep = suggestion(cards(client, request), "keep-current-dose")
    (order,) = apply_suggestion([draft(request)], keep, "sandbox")  # 20 mg tablets, marked
    order["dosageInstruction"][0].update(copy.deepcopy(own_dose))
    assert medication_only(order) is None
    assert _kinds(cards(client, with_drafts(request, [order]))) == ["supervised-taper"]


def test_a_marked_medication_on_a_stopped_order_is_a_stop(client):
    request = sandbox_request(TABLETS, "cut to 20 mg tablets")
    keep = suggestion(cards(client, request), "keep-current-dose")
    (order,) = apply_suggestion([draft(request)], keep, "sandbox")
    order["status"] = "stopped"
    order["id"] = "mr-01"  # the recorded order, stopped
    assert medication_only(order) is None
    assert _kinds(cards(client, with_drafts(request, [order]))) == ["supervised-taper"]


def _kinds(card_list: list[dict]) -> list[str]:
    return [c["extension"][EXTENSION_KEY]["kind"] for c in card_list]


CAPTURED = FIXTURE_DIR.parent / "tools" / "sandbox-e2e" / "captured"


@pytest.mark.parametrize("name", ["order-sign-after-accepting-cut",
                                  "order-sign-after-accepting-stop",
                                  "order-sign-after-accepting-keep-cut",
                                  "order-sign-after-accepting-keep-stop"])
def test_the_real_sandboxs_next_order_sign_after_accepting_gets_no_card(client, name):
    """Requests a real Sandbox build sent after a clinician accepted this service's
    suggestion (captured by tools/sandbox-e2e): its pill count, frequency and End Date
    are the draft's own, its medication ours. Any day: the draft changes nothing."""
    body = json.loads((CAPTURED / f"{name}.json").read_text())["body"]
    body.pop("fhirServer", None)  # the capture's placeholder, never reachable
    assert medication_only(draft(body)) in ("taper", "keep")
    assert cards(client, body) == []
