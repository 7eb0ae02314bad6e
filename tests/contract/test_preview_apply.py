"""POST /preview/apply: the preview page's Accept, applying a suggestion as a client would.

Anything a client can send gets a 200 with the request as applied, or a clear 400/415:
never a 500, and the body given is what comes back, changed only in its draft orders.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from cds.fixtures import FIXTURE_DIR, load_fixture
from cds.suggestion_clients import apply_suggestion

PATH = "/preview/apply"


@pytest.fixture
def taper(client) -> tuple[dict, dict]:
    """A Sandbox-shaped order-sign request and its recommended taper suggestion."""
    request = load_fixture(FIXTURE_DIR / "sandbox-order-sign-cut.json",
                           datetime.now(UTC)).request
    (card,) = client.post("/cds-services/baclofen-order-sign", json=request).get_json()["cards"]
    (recommended,) = [s for s in card["suggestions"] if s.get("isRecommended")]
    return request, recommended


@pytest.mark.parametrize("ehr", ["full", "sandbox"])
def test_the_request_comes_back_with_its_drafts_as_the_client_leaves_them(client, taper, ehr):
    request, suggestion = taper
    response = client.post(PATH, json={"request": request, "suggestion": suggestion,
                                       "client": ehr})
    assert response.status_code == 200
    applied = response.get_json()["request"]
    drafts = [e["resource"] for e in request["context"]["draftOrders"]["entry"]]
    assert [e["resource"] for e in applied["context"]["draftOrders"]["entry"]] == \
        apply_suggestion(drafts, suggestion, ehr)
    unchanged = copy.deepcopy(applied)
    unchanged["context"]["draftOrders"] = request["context"]["draftOrders"]
    assert unchanged == request


def _bad_bodies(request: dict, suggestion: dict) -> list[object]:
    no_drafts = copy.deepcopy(request)
    del no_drafts["context"]["draftOrders"]
    junk_entry = copy.deepcopy(request)
    junk_entry["context"]["draftOrders"]["entry"] = [{"resource": "x"}]
    other_id = copy.deepcopy(suggestion)
    other_id["actions"][0]["resource"]["id"] = "not-a-draft"
    return [
        [], "text", {"request": request}, {"suggestion": suggestion},
        {"request": no_drafts, "suggestion": suggestion},
        {"request": junk_entry, "suggestion": suggestion},
        {"request": request, "suggestion": suggestion, "client": "epic"},
        {"request": request, "suggestion": {"actions": [{"type": "delete"}] * 51}},
        {"request": request, "suggestion": other_id},
        {"request": request, "suggestion": {"actions": [None]}},
    ]


def test_what_cannot_be_applied_is_a_400_that_says_why(client, taper):
    for body in _bad_bodies(*taper):
        response = client.post(PATH, json=body)
        assert response.status_code == 400, body
        assert response.get_json()["issue"][0]["diagnostics"]


def test_only_json_is_read(client):
    assert client.post(PATH, data="request=1",
                       content_type="application/x-www-form-urlencoded").status_code == 415
