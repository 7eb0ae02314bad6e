"""Issue 15 finding 5: feedback was tied to nothing. Now each issued card records the
client it went to, and only that client's feedback about it counts; timestamps must be
real and recent; each client has a quota.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cds.app import create_app
from cds.config import Settings
from cds.storage import IssuedCard
from tests.support.clients import PUBLIC_BASE, ClientKeys, write_trust_file
from tests.support.openapi import check_response
from tests.support.requests import stop_order_request

SERVICE = "/cds-services/baclofen-order-sign"
FEEDBACK = SERVICE + "/feedback"
HOSPITAL_A = ClientKeys("https://ehr.example.org", tenants=("hospital-a", "hospital-b"))
OTHER_EHR = ClientKeys("https://other-ehr.example.org")


@pytest.fixture
def app(tmp_path):
    trust = write_trust_file(tmp_path, HOSPITAL_A, OTHER_EHR)
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'cds.db'}",
                               auth_enabled=True, trust_file=str(trust),
                               public_base_urls=(PUBLIC_BASE,), feedback_quota_per_hour=20))


def issue_card(app, client: ClientKeys, tenant: str | None = None) -> dict:
    response = app.test_client().post(SERVICE, json=stop_order_request(),
                                      headers=client.headers(SERVICE, tenant))
    assert response.status_code == 200
    app.extensions["cds"].pipeline.recorder.flush()
    return response.get_json()["cards"][0]


def send(app, client: ClientKeys, entries: list[dict], tenant: str | None = None):
    response = app.test_client().post(FEEDBACK, json={"feedback": entries},
                                      headers=client.headers(FEEDBACK, tenant))
    check_response("POST", FEEDBACK, response.status_code, response.get_json(),
                   response.headers)
    return response


def overridden(card_uuid: str, at: datetime | None = None) -> dict:
    return {"card": card_uuid, "outcome": "overridden",
            "outcomeTimestamp": (at or datetime.now(UTC)).isoformat()}


def report(app) -> dict:
    app.extensions["cds"].pipeline.recorder.flush()
    kinds = app.extensions["cds"].store
    from cds.report import build_report, report_json

    return report_json(build_report(kinds))


def test_another_client_cannot_answer_for_a_card_it_did_not_receive(app):
    card = issue_card(app, HOSPITAL_A, "hospital-a")
    assert send(app, OTHER_EHR, [overridden(card["uuid"])]).status_code == 403
    # Same issuer, another tenant: also someone else's card.
    assert send(app, HOSPITAL_A, [overridden(card["uuid"])], "hospital-b").status_code == 403
    assert app.extensions["cds"].store.feedback_rows() == []
    assert send(app, HOSPITAL_A, [overridden(card["uuid"])], "hospital-a").status_code == 200


def test_a_batch_with_one_foreign_card_is_refused_whole(app):
    own = issue_card(app, OTHER_EHR)
    foreign = issue_card(app, HOSPITAL_A, "hospital-a")
    response = send(app, OTHER_EHR, [overridden(own["uuid"]), overridden(foreign["uuid"])])
    assert response.status_code == 403
    assert "$.feedback[1].card" in response.get_json()["issue"][0]["diagnostics"]
    assert app.extensions["cds"].store.feedback_rows() == []


def test_feedback_about_unknown_cards_is_stored_unverified_and_not_counted(app):
    card = issue_card(app, OTHER_EHR)
    response = send(app, OTHER_EHR, [overridden("never-issued-card"), overridden(card["uuid"])])
    assert response.status_code == 200
    assert response.get_json() == {"received": 2, "stored": 2, "duplicates": 0, "unverified": 1}
    document = report(app)
    assert sum(k["overridden"] for k in document["kinds"]) == 1
    assert document["unmatchedFeedback"] == 1


def test_future_outcome_timestamp_cannot_hide_later_answers(app):
    """A 9999-01-01 timestamp used to be the card's 'latest' answer for ever."""
    card = issue_card(app, OTHER_EHR)
    response = send(app, OTHER_EHR, [overridden(card["uuid"], datetime(9999, 1, 1, tzinfo=UTC))])
    assert response.status_code == 400
    assert "future" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("age", [timedelta(days=31), timedelta(days=3650)])
def test_outcome_timestamps_long_past_are_refused(app, age):
    response = send(app, OTHER_EHR, [overridden("c-1", datetime.now(UTC) - age)])
    assert response.status_code == 400


def test_outcome_before_the_card_was_issued_is_refused(app):
    card = issue_card(app, OTHER_EHR)
    response = send(app, OTHER_EHR, [overridden(card["uuid"],
                                                datetime.now(UTC) - timedelta(hours=2))])
    assert response.status_code == 400
    assert "before the card was issued" in response.get_json()["issue"][0]["diagnostics"]


def test_each_client_has_a_quota_and_gets_429_with_retry_after(app):
    entries = [overridden(f"card-{i}") for i in range(15)]
    assert send(app, OTHER_EHR, entries).status_code == 200
    response = send(app, OTHER_EHR, [overridden(f"more-{i}") for i in range(10)])
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    # Another client's quota is its own.
    assert send(app, HOSPITAL_A, [overridden("a-1")], "hospital-a").status_code == 200


def test_quota_holds_with_authentication_off(make_app):
    """100k rows in 12 s with auth off: the local trial has a quota too."""
    client = make_app(feedback_quota_per_hour=5).test_client()
    body = {"feedback": [overridden(f"c-{i}") for i in range(5)]}
    assert client.post(FEEDBACK, json=body).status_code == 200
    assert client.post(FEEDBACK, json={"feedback": [overridden("one-more")]}).status_code == 429


def accepted(card_uuid: str, *suggestion_ids: str) -> dict:
    return {"card": card_uuid, "outcome": "accepted",
            "acceptedSuggestions": [{"id": s} for s in suggestion_ids],
            "outcomeTimestamp": datetime.now(UTC).isoformat()}


def test_accepting_a_suggestion_the_card_did_not_offer_is_refused(app):
    """Issue 27.3: an id the card never carried was stored as an acceptance, and the
    report counted the card as accepted."""
    card = issue_card(app, OTHER_EHR)
    offered = [s["uuid"] for s in card["suggestions"]]
    assert offered  # the stop-order card offers a taper
    for ids in (["made-up-suggestion"], [offered[0], "made-up-suggestion"], [card["uuid"]]):
        response = send(app, OTHER_EHR, [accepted(card["uuid"], *ids)])
        assert response.status_code == 400
        location = f"$.feedback[0].acceptedSuggestions[{len(ids) - 1}].id"
        assert response.get_json()["issue"][0]["expression"] == [location]
        assert "made-up" not in response.get_data(as_text=True)
    assert app.extensions["cds"].store.feedback_rows() == []
    assert sum(k["accepted"] for k in report(app)["kinds"]) == 0
    # The suggestion the card did offer is an acceptance, counted.
    assert send(app, OTHER_EHR, [accepted(card["uuid"], offered[0])]).status_code == 200
    assert sum(k["accepted"] for k in report(app)["kinds"]) == 1


def test_a_batch_with_one_unoffered_suggestion_is_refused_whole(app):
    card = issue_card(app, OTHER_EHR)
    good = accepted(card["uuid"], card["suggestions"][0]["uuid"])
    other = issue_card(app, OTHER_EHR)
    response = send(app, OTHER_EHR, [good, accepted(other["uuid"], "made-up-suggestion")])
    assert response.status_code == 400
    assert app.extensions["cds"].store.feedback_rows() == []


def test_a_foreign_card_is_a_403_before_its_suggestions_are_looked_at(app):
    """Another client learns nothing about what someone else's card offered."""
    card = issue_card(app, HOSPITAL_A, "hospital-a")
    response = send(app, OTHER_EHR, [accepted(card["uuid"], "made-up-suggestion")])
    assert response.status_code == 403


def test_an_unoffered_suggestion_stored_before_its_card_is_kept_out_of_the_rates(app):
    """Feedback about a card not yet on record (issued a moment ago by another instance)
    is stored unverified; once the card is on record, an acceptance of a suggestion it
    did not offer still never counts."""
    store = app.extensions["cds"].store
    receipt = send(app, OTHER_EHR, [accepted("card-on-its-way", "made-up-suggestion")])
    assert receipt.get_json()["unverified"] == 1
    store.record_cards([IssuedCard(
        "card-on-its-way", "baclofen-order-sign", "order-sign", "supervised-taper", "warning",
        (("s-taper", "Order a taper", "replace-with-taper"),), client_iss=OTHER_EHR.iss)])
    (taper,) = report(app)["kinds"]
    assert (taper["shown"], taper["accepted"], taper["overridden"]) == (1, 0, 0)
    assert taper["acceptedBySuggestion"] == {}
    assert report(app)["unmatchedFeedback"] == 1
