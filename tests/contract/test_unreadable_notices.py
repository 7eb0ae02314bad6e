"""Values the rules would use but cannot read are named in the response (issue 22 item 5,
issue 23 item 4), through the real app; never a value or an identifier."""

from __future__ import annotations

from datetime import UTC, datetime

from cds.fixtures import list_fixtures, load_fixture

NOW = datetime.now(UTC)


def _call(client, stem: str) -> dict:
    (path,) = [p for p in list_fixtures() if p.stem == stem]
    fixture = load_fixture(path, NOW)
    response = client.post(f"/cds-services/{fixture.service}", json=fixture.request)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()


def _notices(body: dict) -> dict:
    return body.get("extension", {}).get("org.baclofen-cds", {})


def test_a_creatinine_in_a_unit_that_cannot_be_read_is_named(client):
    body = _call(client, "probe3-27-creatinine-unit-unreadable")
    assert _notices(body)["unreadableValues"] == [{"reading": "Creatinine", "unit": "units"}]
    (card,) = body["cards"]
    assert '310 in the unit \\"units\\"' in card["detail"] or "310 in the unit" in card["detail"]


def _dose_unreadable_card(client, stem: str, order: str) -> dict:
    """The one dose-unreadable card of a fixture, after checking the extension names the
    unreadable dose as the `order` ('being-signed' or 'current')."""
    body = _call(client, stem)
    assert _notices(body)["unreadableDoses"] == [{
        "resourceType": "MedicationRequest", "order": order,
        "reason": "dose missing or in a unit that cannot become mg"}]
    (card,) = body["cards"]
    assert card["extension"]["org.baclofen-cds"]["kind"] == "dose-unreadable"
    return card


def test_a_dose_that_cannot_be_read_is_named_and_gets_a_card(client):
    card = _dose_unreadable_card(client, "sandbox-order-sign-unreadable-dose", "being-signed")
    assert "60 mg/day" in card["summary"]


def test_readable_values_add_no_notice(client):
    assert "unreadableValues" not in _notices(_call(client, "01-oral-stop-long-term"))


def test_a_current_dose_that_cannot_be_read_is_named_when_a_new_order_replaces_it(client):
    """The Sandbox's 10 mg draft beside a 'take as directed' order: the change cannot be
    judged, so the card asks for the current dose and the extension names it."""
    card = _dose_unreadable_card(client, "sandbox-order-sign-cut-from-unreadable-dose",
                                 "current")
    assert "current baclofen order could not be read" in card["summary"]
    assert "10 mg/day" in card["summary"]
