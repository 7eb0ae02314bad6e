"""Issue 26.5: inputs that answered 500 in the second security re-test, and log lines.

- numbers of 1e15 and more reaching the rules engine (durable_rules' JSON reader fails
  on "1e+16", and on anything Python writes with an exponent and no decimal point);
- a contained resource of a resourceType FHIR does not define (KeyError in the models);
- `/reports/feedback?since=0001-01-01T00:00:00+14:00` (OverflowError);
- a JWT NumericDate written as a 400- or 4,000-digit integer (tests/unit/test_auth_verify.py).
A dose of a million tablets is no longer written "6e+07 mg/day", and a defect's log line
holds neither the client's text nor more than MAX_RECORD_CHARS.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

import pytest

from cds.cards.text import number
from cds.fixtures import FIXTURE_DIR, load_fixture
from cds.log_bounds import MAX_RECORD_CHARS, BoundedFormatter
from cds.rules_engine import engine_number
from tests.support.openapi import check_response

NOW = datetime.now(UTC)
STOP = load_fixture(FIXTURE_DIR / "01-oral-stop-long-term.json", NOW)


def _orders(request: dict) -> list[dict]:
    return [request["context"]["draftOrders"]["entry"][0]["resource"],
            request["prefetch"]["medications"]["entry"][0]["resource"]]


def _kinds(response) -> list[str]:
    return [c["extension"]["org.baclofen-cds"]["kind"] for c in response.get_json()["cards"]]


@pytest.mark.parametrize("tablets", [1e6, 1e15, 1e16, 1e20, 1e300, 10**30, 9e-5, 5e-324])
def test_any_dose_number_gets_cards_not_a_500(client, tablets):
    request = copy.deepcopy(STOP.request)
    for order in _orders(request):
        order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = tablets
    response = client.post(f"/cds-services/{STOP.service}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    check_response("POST", f"/cds-services/{STOP.service}", 200, response.get_json())
    for card in response.get_json()["cards"]:
        assert "e+" not in card["summary"] and "e+" not in card["detail"]


def test_numbers_are_written_out_and_bounded_on_cards():
    assert number(60) == "60" and number(2.5) == "2.5" and number(123456.7) == "123457"
    assert number(6e7) == "60,000,000"
    assert number(6e16) == "more than 1,000,000,000"
    assert number(float("nan")) == "?"


@pytest.mark.parametrize("value", [1e16, 1e20, float("inf"), -float("inf"), float("nan"),
                                   9e-05, 1e-300])
def test_engine_numbers_are_numbers_durable_rules_reads(value):
    from cds.knowledge import load_knowledge
    from cds.rules_engine import RulesEngine

    RulesEngine(load_knowledge()).run([{"id": "oral", "daily_dose": value}])
    assert "e" not in repr(engine_number(value))


@pytest.mark.parametrize("contained", [
    [{"resourceType": "NoSuchThing", "id": "x"}],
    [{"resourceType": "Medication", "id": "m", "contained": [{"resourceType": "Bogus"}]}],
    [{"resourceType": "x" * 100_000}],
])
def test_a_contained_resource_of_an_unknown_type_is_set_aside_not_a_500(client, contained):
    clean = client.post(f"/cds-services/{STOP.service}", json=STOP.request)
    request = copy.deepcopy(STOP.request)
    for order in _orders(request):
        order["contained"] = contained
    response = client.post(f"/cds-services/{STOP.service}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert _kinds(response) == _kinds(clean) != []
    adjusted = response.get_json()["extension"]["org.baclofen-cds"]["adjustedResources"]
    assert {"resourceType": "MedicationRequest", "ignoredElements": ["contained"]} in adjusted


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_report_since_the_ends_of_the_calendar_is_400(client, since):
    response = client.get("/reports/feedback", query_string={"since": since})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["since"]


def test_a_defect_is_logged_bounded_and_without_the_clients_text(app, caplog):
    secret = "patient-text-" + "x" * 3_000_000

    @app.get("/__defect")
    def defect():
        raise ValueError(secret)

    with caplog.at_level(logging.ERROR, logger="cds.web"):
        response = app.test_client().get("/__defect")
    assert response.status_code == 500
    logged = "\\n".join(BoundedFormatter().format(r) for r in caplog.records)
    assert "unhandled error: builtins.ValueError" in logged and "in defect" in logged
    assert "patient-text" not in logged
    assert len(logged) < MAX_RECORD_CHARS


def test_every_log_record_is_cut_at_the_bound():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s", ("y" * 3_000_000,), None)
    text = BoundedFormatter("%(message)s").format(record)
    assert len(text) < MAX_RECORD_CHARS + 100 and text.endswith("characters cut]")
