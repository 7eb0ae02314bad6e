"""Feedback: validated, stored durably, idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.openapi import check_response

PATH = "/cds-services/baclofen-order-sign/feedback"


def entry(**overrides):
    base = {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden",
            "outcomeTimestamp": (datetime.now(UTC) - timedelta(minutes=3)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")}
    base.update(overrides)
    return base


def send(client, body, path=PATH):
    response = client.post(path, json=body)
    check_response("POST", path, response.status_code, response.get_json())
    return response


def test_accepted_feedback_is_stored(client, app):
    body = {"feedback": [entry(outcome="accepted", acceptedSuggestions=[{"id": "sug-1"}])]}
    response = send(client, body)
    assert response.status_code == 200
    # No card with that uuid was issued here: stored, marked unverified (cds/feedback.py).
    assert response.get_json() == {"received": 1, "stored": 1, "duplicates": 0,
                                   "unverified": 1}
    rows = app.extensions["cds"].store.feedback_rows()
    assert [(r["outcome"], r["accepted_suggestions"]) for r in rows] == [("accepted", '["sug-1"]')]


def test_override_reason_is_stored(client, app):
    reason = {"reason": {"system": "https://baclofen-cds.org/fhir/CodeSystem/override-reason",
                         "code": "taper-elsewhere", "display": "Taper managed elsewhere"},
              "userComment": "neurology"}
    assert send(client, {"feedback": [entry(overrideReason=reason)]}).status_code == 200
    row = app.extensions["cds"].store.feedback_rows()[0]
    assert (row["override_code"], row["user_comment"]) == ("taper-elsewhere", "neurology")


def test_repeated_delivery_is_stored_once(client, app):
    body = {"feedback": [entry(), entry()]}
    assert send(client, body).get_json() == {"received": 2, "stored": 1, "duplicates": 1,
                                             "unverified": 2}
    assert send(client, body).get_json()["stored"] == 0
    assert len(app.extensions["cds"].store.feedback_rows()) == 1


@pytest.mark.parametrize(
    "bad, where",
    [
        (entry(outcome="accepted"), "acceptedSuggestions"),
        (entry(outcome="ignored"), "outcome"),
        (entry(outcomeTimestamp="yesterday"), "outcomeTimestamp"),
        (entry(outcomeTimestamp="2026-01-31 10:05"), "outcomeTimestamp"),
        ({"outcome": "overridden", "outcomeTimestamp": "2026-01-31T10:05:31Z"}, "card"),
    ],
)
def test_invalid_feedback_is_400_and_nothing_is_stored(client, app, bad, where):
    response = send(client, {"feedback": [entry(), bad]})
    assert response.status_code == 400
    assert where in response.get_json()["issue"][0]["diagnostics"] + str(
        response.get_json()["issue"][0].get("expression"))
    assert app.extensions["cds"].store.feedback_rows() == []


def test_feedback_for_unknown_service_is_404(client):
    assert send(client, {"feedback": [entry()]}, path="/cds-services/nope/feedback"
                ).status_code == 404


def test_feedback_needs_an_array(client):
    assert send(client, {"feedback": []}).status_code == 400
    assert send(client, {"card": "x"}).status_code == 400
