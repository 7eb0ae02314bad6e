"""A CDS client applying the taper card's suggestions to its draft orders.

Each taper fixture goes through the HTTP endpoint; the test then behaves like an EHR:
it takes the request's draftOrders, applies the chosen suggestion with
cds.suggestion_clients (the one code path the preview page and tools/sandbox-e2e use too)
and checks what the clinician would sign.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.cards.extension import EXTENSION_KEY
from cds.fixtures import list_fixtures, load_fixture
from cds.suggestion_clients import CLIENTS, apply_suggestion
from tests.support.sandbox import sandbox_draft_order

NOW = datetime.now(UTC)  # fixtures are relative to now: they must pass on any day
TAPER_FIXTURES = [p for p in list_fixtures() if p.stem.startswith("taper-")]
ORDER_PATH = "/cds-services/baclofen-order-sign"


def _taper_card(client, request: dict) -> dict:
    response = client.post(ORDER_PATH, json=request)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    (card,) = [c for c in response.get_json()["cards"]
               if c["extension"]["org.baclofen-cds"]["kind"] == "supervised-taper"]
    return card


def _name(suggestion: dict) -> str:
    return suggestion["extension"][EXTENSION_KEY]["suggestion"]


def _draft_resources(request: dict) -> list[dict]:
    return [copy.deepcopy(e["resource"]) for e in request["context"]["draftOrders"]["entry"]]


def _mg_per_administration(dosage: dict, concentration: float | None) -> float:
    (dose_and_rate,) = dosage["doseAndRate"]
    quantity = dose_and_rate["doseQuantity"]
    if quantity["code"] == "mL":
        assert concentration, "a liquid taper needs the product's concentration"
        return quantity["value"] * concentration
    assert quantity["code"] == "mg"
    return quantity["value"]


def taper_steps(order: dict, concentration: float | None) -> list[dict]:
    """One entry per sequence: daily mg and its period (dosages sharing a sequence add up)."""
    steps: dict[int, dict] = {}
    for dosage in order["dosageInstruction"]:
        repeat = dosage["timing"]["repeat"]
        assert repeat["period"] == 1 and repeat["periodUnit"] == "d"
        daily = _mg_per_administration(dosage, concentration) * repeat["frequency"]
        step = steps.setdefault(dosage["sequence"], {"daily_mg": 0.0,
                                                     "bounds": repeat["boundsPeriod"]})
        assert step["bounds"] == repeat["boundsPeriod"]
        step["daily_mg"] = round(step["daily_mg"] + daily, 3)
    return [steps[n] for n in sorted(steps)]


@pytest.mark.parametrize("path", TAPER_FIXTURES, ids=lambda p: p.stem)
def test_applying_the_recommended_suggestion_leaves_one_valid_taper(client, path):
    fixture = load_fixture(path, NOW)
    expect = fixture.expect["taper"]
    card = _taper_card(client, fixture.request)
    (recommended,) = [s for s in card["suggestions"] if s.get("isRecommended")]
    drafts = _draft_resources(fixture.request)
    replaced = [r for r in drafts if expect["kind"] == "cut" or r["status"] == "stopped"]
    assert replaced, "the fixture holds the draft stop or cut"

    result = apply_suggestion(drafts, recommended)

    assert all(r.get("status") != "stopped" for r in result), "the stop order is gone"
    (taper,) = [r for r in result if r["resourceType"] == "MedicationRequest"]
    # One update turned the draft itself into the taper: same id, nothing else to sign.
    assert [taper["id"]] == [r["id"] for r in replaced]
    assert [a["type"] for a in recommended["actions"]] == ["update"]
    MedicationRequest.model_validate(taper)
    assert (taper["status"], taper["intent"]) == ("draft", "order")
    assert taper["subject"]["reference"] == f"Patient/{fixture.request['context']['patientId']}"
    steps = taper_steps(taper, expect.get("concentration_mg_per_ml"))
    levels = [s["daily_mg"] for s in steps]
    assert levels == sorted(levels, reverse=True), f"doses go up: {levels}"
    assert levels[0] <= expect["start_daily_mg"]
    assert steps[0]["bounds"]["start"] == NOW.date().isoformat()
    # Each step starts the day after the previous one ends: no gap, no overlap.
    for before, after in zip(steps, steps[1:], strict=False):
        assert date.fromisoformat(after["bounds"]["start"]) == \
            date.fromisoformat(before["bounds"]["end"]) + timedelta(days=1)
    if expect["ends_at_mg"] == 0:
        assert "end" in steps[-1]["bounds"] and levels[-1] > 0  # nothing after the last step
        assert (date.fromisoformat(steps[-1]["bounds"]["end"]) - NOW.date()).days + 1 >= 14
    else:
        assert levels[-1] == expect["ends_at_mg"] and "end" not in steps[-1]["bounds"]
        assert all(level > expect["ends_at_mg"] for level in levels[:-1])
    # The taper takes over the current order, so the EHR does not run both: it names the
    # order as prior, or it is that order (a stop drafted on the order's own id).
    active = fixture.request["prefetch"]["medications"]["entry"][0]["resource"]
    if taper["id"] == active["id"]:
        assert "priorPrescription" not in taper
    else:
        assert taper["priorPrescription"]["reference"] == f"MedicationRequest/{active['id']}"


@pytest.mark.parametrize("ehr", CLIENTS)
@pytest.mark.parametrize("which", ["replace-with-taper", "keep-current-dose"])
@pytest.mark.parametrize("path", TAPER_FIXTURES, ids=lambda p: p.stem)
def test_signing_what_a_client_made_of_either_suggestion_raises_no_new_card(client, ehr,
                                                                          which, path):
    """Signing the result: a client that applies the whole suggestion signs the taper (or
    the current order), and the engine sees it for what it is; the Sandbox, which applies
    only the medication, leaves the clinician's own pill count and dates, and the draft is
    recognised by its marked medication as the suggestion accepted."""
    fixture = load_fixture(path, NOW)
    request = copy.deepcopy(fixture.request)
    if ehr == "sandbox":  # what the Sandbox can draft: a new order of pills (a cut)
        request["context"]["draftOrders"]["entry"] = [{"resource": sandbox_draft_order(
            request["context"]["patientId"], "197391", "Baclofen 10 MG Oral Tablet", 1)}]
    card = _taper_card(client, request)
    (suggestion,) = [s for s in card["suggestions"] if _name(s) == which]
    result = apply_suggestion(_draft_resources(request), suggestion, ehr)
    request["context"]["draftOrders"]["entry"] = [{"resource": r} for r in result]
    response = client.post(ORDER_PATH, json=request)
    assert response.status_code == 200
    assert response.get_json()["cards"] == []


@pytest.mark.parametrize("path", TAPER_FIXTURES, ids=lambda p: p.stem)
def test_keeping_the_dose_leaves_an_order_equal_to_the_current_one(client, path):
    fixture = load_fixture(path, NOW)
    card = _taper_card(client, fixture.request)
    (keep,) = [s for s in card["suggestions"] if not s.get("isRecommended")]
    assert keep["label"].startswith("Keep the current dose")
    assert [a["type"] for a in keep["actions"]] == ["update"]
    drafts = _draft_resources(fixture.request)
    (order,) = apply_suggestion(drafts, keep)
    current = fixture.request["prefetch"]["medications"]["entry"][0]["resource"]
    MedicationRequest.model_validate(order)
    assert order["id"] == drafts[0]["id"]
    assert order["dosageInstruction"] == current["dosageInstruction"]
    # The same medication (a text-only one gains baclofen's ingredient codes), marked.
    kept, recorded = order["medicationCodeableConcept"], current["medicationCodeableConcept"]
    assert all(c in kept["coding"] for c in recorded.get("coding", []))
    assert kept["text"].startswith(recorded.get("text") or recorded["coding"][0]["display"])
    if order["id"] == current["id"]:  # the stop was drafted on the order itself: undone
        assert order["status"] == current["status"] == "active"
    else:
        assert order["priorPrescription"]["reference"] == f"MedicationRequest/{current['id']}"


def test_every_fixture_with_a_taper_suggestion_applies_cleanly(client):
    """All scenarios (contained and referenced medications, liquids, as-needed orders)."""
    applied = []
    for path in list_fixtures():
        fixture = load_fixture(path, NOW)
        if not fixture.service.startswith("baclofen-order-"):
            continue
        path_of_service = f"/cds-services/{fixture.service}"
        response = client.post(path_of_service, json=fixture.request).get_json()
        for card in response["cards"]:
            for suggestion in card.get("suggestions") or []:
                if not suggestion.get("isRecommended"):
                    continue
                drafts = _draft_resources(fixture.request)
                result = apply_suggestion(drafts, suggestion)
                # One new order; the other drafts (a stop of the order the taper takes
                # over, unrelated orders) stay as the clinician wrote them.
                (taper,) = [r for r in result if r not in drafts]
                assert all(r in drafts for r in result if r is not taper), path.stem
                MedicationRequest.model_validate(taper)
                levels = [s["daily_mg"] for s in taper_steps(taper, _concentration(taper))]
                assert levels == sorted(levels, reverse=True), path.stem
                request = copy.deepcopy(fixture.request)
                request["context"]["draftOrders"]["entry"] = [{"resource": r} for r in result]
                again = client.post(path_of_service, json=request).get_json()["cards"]
                assert again == [], (path.stem, [c["summary"] for c in again])
                applied.append(path.stem)
    assert len(applied) >= 12, applied


def _concentration(taper: dict) -> float | None:
    """mg/mL read back from the order's own step text, e.g. '3 mL (15 mg)'."""
    first = taper["dosageInstruction"][0]
    quantity = first["doseAndRate"][0]["doseQuantity"]
    if quantity["code"] != "mL":
        return None
    mg = float(first["text"].split("(")[-1].split(" mg")[0])
    return mg / quantity["value"]
