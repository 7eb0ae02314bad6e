"""Issue 15 finding 7: inputs that used to answer 500 now get a 4xx (or a clean 200).

- `resourceType` given as a list or an object anywhere in prefetch, draft orders or a
  FHIR server's answer (TypeError: unhashable type);
- feedback `outcomeTimestamp` near year 1 or 9999 with an offset (OverflowError);
- a non-finite number anywhere in a request body (the JSON parser refuses it).
JWT NumericDates (NaN, Infinity, 1e400) are in tests/unit/test_auth_verify.py.
"""

from __future__ import annotations

import pytest

from tests.support.fake_fhir import bundle, json_answer
from tests.support.openapi import check_response
from tests.support.requests import hook_request, patient, searched_paths, stop_order_request

SIGN = "/cds-services/baclofen-order-sign"
VIEW = "/cds-services/baclofen-patient-view"
WEIRD_TYPES = [["MedicationRequest"], {"a": 1}, 7, True]


def post(client, path, body):
    response = client.post(path, json=body)
    check_response("POST", path, response.status_code, response.get_json())
    return response


@pytest.mark.parametrize("weird", WEIRD_TYPES)
@pytest.mark.parametrize("key", ["medications", "observations", "conditions"])
def test_resource_type_that_is_not_a_string_in_a_prefetch_bundle_is_400(client, weird, key):
    request = stop_order_request()
    request["prefetch"][key] = bundle([{"resourceType": weird, "id": "x"}])
    response = post(client, SIGN, request)
    assert response.status_code == 400
    assert f"prefetch.{key}" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("weird", WEIRD_TYPES)
def test_resource_type_that_is_not_a_string_at_the_top_of_prefetch_is_400(client, weird):
    request = hook_request("patient-view")
    request["prefetch"]["patient"] = {**patient(), "resourceType": weird}
    assert post(client, VIEW, request).status_code == 400


@pytest.mark.parametrize("weird", WEIRD_TYPES)
def test_resource_type_that_is_not_a_string_in_draft_orders_is_400(client, weird):
    request = stop_order_request()
    request["context"]["draftOrders"]["entry"].append({"resource": {"resourceType": weird}})
    assert post(client, SIGN, request).status_code == 400


@pytest.mark.parametrize("weird", WEIRD_TYPES)
def test_resource_type_that_is_not_a_string_from_the_fhir_server_is_not_fhir(
        client, fake_fhir, weird):
    fake_fhir.routes.update({path: json_answer(bundle([]))
                             for path in searched_paths("patient-view").values()})
    fake_fhir.routes.update({
        "/Patient/": json_answer(patient()),
        "/Observation": json_answer(bundle([{"resourceType": weird}])),
    })
    request = hook_request("patient-view")
    request["prefetch"] = {}
    request["fhirServer"] = fake_fhir.base_url
    request["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer",
                                    "expires_in": 300, "scope": "patient/*.read",
                                    "subject": "baclofen-cds"}
    response = post(client, VIEW, request)
    assert response.status_code == 200
    unavailable = response.get_json()["extension"]["org.baclofen-cds"]["unavailableData"]
    assert [u["prefetchKey"] for u in unavailable] == ["observations"]


@pytest.mark.parametrize("timestamp", [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+14:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:00:00-14:00",
])
def test_outcome_timestamp_off_the_calendar_is_400(client, timestamp):
    body = {"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
                          "outcome": "overridden", "outcomeTimestamp": timestamp}]}
    response = post(client, SIGN + "/feedback", body)
    assert response.status_code == 400
    assert "outcomeTimestamp" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"NaN", b"Infinity", b"1" + b"0" * 400])
def test_non_finite_numbers_in_a_body_are_400(client, number):
    body = (b'{"hook": "patient-view", "hookInstance": "x", "context": {}, '
            b'"extension": {"n": ' + number + b"}}")
    response = client.post(VIEW, data=body, content_type="application/json")
    assert response.status_code == 400
