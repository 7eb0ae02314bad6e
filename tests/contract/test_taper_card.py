"""The supervised-taper card: schedule in the detail, suggestions a clinician can read,
every path without a plan still a taper card, and feedback linked to the suggestion."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cds.assessment import ClinicalEngine
from cds.fixtures import list_fixtures, load_fixture
from cds.knowledge import load_knowledge
from tests.unit.test_fixtures_engine import clinical_data

NOW = datetime.now(UTC)  # fixtures are relative to now: they must pass on any day
K = load_knowledge()
ENGINE = ClinicalEngine(K)
TAPER_FIXTURES = [p for p in list_fixtures() if p.stem.startswith("taper-")]
ORDER_PATH = "/cds-services/baclofen-order-sign"
TABLE_HEADER = "| Step | From | To | Dose per administration | Times a day | Daily total |"


def _fixture(stem: str, now: datetime = NOW):
    (path,) = [p for p in list_fixtures() if p.stem == stem]
    return load_fixture(path, now)


def _cards(client, request: dict) -> list[dict]:
    response = client.post(ORDER_PATH, json=request)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()["cards"]


def _kind(card: dict) -> str:
    return card["extension"]["org.baclofen-cds"]["kind"]


def _is_uuid(value) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


def _readable(text) -> bool:
    """Words a clinician can read: a sentence, not a code or an id."""
    return isinstance(text, str) and len(text.split()) >= 4 and "urn:" not in text


@pytest.mark.parametrize("path", TAPER_FIXTURES, ids=lambda p: p.stem)
def test_taper_card_over_http_has_schedule_and_readable_suggestions(client, path):
    fixture = load_fixture(path, NOW)
    expect = fixture.expect["taper"]
    (card,) = _cards(client, fixture.request)
    assert _kind(card) == "supervised-taper"
    assert card["selectionBehavior"] == "at-most-one"
    detail = card["detail"]
    assert TABLE_HEADER in detail
    assert f"| 1 | {NOW.date().isoformat()} |" in detail  # first step starts on `now`
    assert f"({expect['risk']} risk schedule)" in detail
    if "warning" in expect:
        assert expect["warning"] in detail
    labels = [s["label"] for s in card["suggestions"]]
    assert [s.get("isRecommended") for s in card["suggestions"]] == [True, False]
    replace_word = "cut" if expect["kind"] == "cut" else "stop"
    assert labels[0].startswith(f"Replace the {replace_word} with a supervised taper")
    assert labels[1].startswith("Keep the current dose")
    draft_id = fixture.request["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    for suggestion in card["suggestions"]:
        assert _is_uuid(suggestion["uuid"]) and _readable(suggestion["label"])
        for action in suggestion["actions"]:
            assert _readable(action["description"]), action["description"]
            if action["type"] == "delete":
                assert action["resourceId"] == f"MedicationRequest/{draft_id}"
    (update,) = card["suggestions"][0]["actions"]
    assert update["type"] == "update" and update["resource"]["id"] == draft_id
    assert update["resource"]["dosageInstruction"][0]["text"].startswith("Step 1, ")
    first_dose = update["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert first_dose["code"] == expect["unit"]
    assert len({s["uuid"] for s in card["suggestions"]}) == 2


def test_large_cut_says_the_taper_ends_at_the_new_dose(client):
    (card,) = _cards(client, _fixture("taper-large-cut").request)
    assert "to 20 mg/day" in card["suggestions"][0]["label"]
    assert "ends at the new dose the draft order sets (20 mg/day)" in card["detail"]
    assert "| new dose |" in card["detail"] and "| stop |" not in card["detail"]


def test_liquid_taper_is_measured_in_ml_at_the_product_concentration(client):
    (card,) = _cards(client, _fixture("taper-stop-liquid-2mg-per-ml").request)
    assert "2 mg/mL liquid measured in 0.5 mL steps" in card["detail"]
    assert "5 mL (10 mg)" in card["detail"]


def test_plan_starts_on_the_assessment_date_not_the_wall_clock():
    later = NOW + timedelta(days=400)
    request = _fixture("taper-stop-tablets", later).request
    (card,) = ENGINE.assess(request["hook"], request["context"], clinical_data(request),
                            later).cards
    assert f"| 1 | {later.date().isoformat()} |" in card["detail"]
    taper = card["suggestions"][0]["actions"][0]["resource"]
    bounds = taper["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    assert bounds["start"] == later.date().isoformat()


def test_unknown_dose_gives_a_taper_card_without_a_plan(client):
    (card,) = _cards(client, _fixture("25-unknown-dose-stop").request)
    assert _kind(card) == "supervised-taper" and "taper" in card["summary"]
    assert "suggestions" not in card and "selectionBehavior" not in card
    assert "No taper schedule proposed" in card["detail"]
    assert "current daily dose is not known" in card["detail"]
    assert TABLE_HEADER not in card["detail"]


def test_a_target_the_product_cannot_deliver_still_gives_a_taper_card(client):
    """Planner ValueError (7 mg/day is no multiple of 5 mg): a reason, never a crash."""
    request = copy.deepcopy(_fixture("taper-large-cut").request)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {
        "value": 7, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    draft["dosageInstruction"][0]["timing"]["code"]["coding"][0]["code"] = "QD"
    draft["dosageInstruction"][0]["timing"]["code"]["text"] = "QD"
    (card,) = _cards(client, request)
    assert _kind(card) == "supervised-taper" and "taper" in card["summary"]
    assert "suggestions" not in card
    assert "No taper schedule could be drawn for this order" in card["detail"]
    assert "cannot be given in whole 5 mg amounts" in card["detail"]


def test_intrathecal_stop_card_has_pump_advice_and_no_suggestions(client):
    cards = _cards(client, _fixture("18-intrathecal-stop-order").request)
    (card,) = [c for c in cards if _kind(c) == "intrathecal-stop"]
    assert "suggestions" not in card
    assert "reprogramming the pump downwards" in card["detail"]
    assert TABLE_HEADER not in card["detail"]


def test_omission_card_draws_no_plan():
    """No draft order to replace: the card advises continuing; no schedule is invented."""
    request = _fixture("probe1-p12-24-discharge-omits-baclofen").request
    (card,) = ENGINE.assess(request["hook"], request["context"], clinical_data(request),
                            NOW).cards
    assert _kind(card) == "supervised-taper"
    assert "suggestions" not in card and TABLE_HEADER not in card["detail"]


def test_accepted_feedback_links_the_taper_card_to_its_suggestion(client, app):
    (card,) = _cards(client, _fixture("taper-stop-tablets").request)
    (recommended,) = [s for s in card["suggestions"] if s["isRecommended"]]
    feedback = {"feedback": [{
        "card": card["uuid"], "outcome": "accepted",
        "acceptedSuggestions": [{"id": recommended["uuid"]}],
        # The time of accepting, not of importing this module: on a loaded machine the
        # suite can reach this test more than the 5 minutes of allowed clock skew later.
        "outcomeTimestamp": datetime.now(UTC).replace(microsecond=0).isoformat()
        .replace("+00:00", "Z"),
    }]}
    response = client.post(f"{ORDER_PATH}/feedback", json=feedback)
    assert response.status_code == 200
    assert response.get_json() == {"received": 1, "stored": 1, "duplicates": 0}
    store = app.extensions["cds"].store
    assert app.extensions["cds"].pipeline.recorder.flush()  # issued cards are written async
    (issued,) = [r for r in store.issued_card_rows() if r["card_uuid"] == card["uuid"]]
    (stored,) = [r for r in store.feedback_rows() if r["card_uuid"] == card["uuid"]]
    assert issued["kind"] == "supervised-taper" and issued["service_id"] == "baclofen-order-sign"
    assert {"uuid": recommended["uuid"], "label": recommended["label"],
            "kind": "replace-with-taper"} in json.loads(issued["suggestions"])
    assert stored["outcome"] == "accepted"
    assert stored["accepted_suggestions"] == f'["{recommended["uuid"]}"]'
