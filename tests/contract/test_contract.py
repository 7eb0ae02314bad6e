"""The CDS Hooks 2.0 contract through the Flask test client: discovery, invocation, errors."""

from __future__ import annotations

import re

import pytest

from cds.services import observation_code_tokens
from tests.support.cards import empty_or_null_paths
from tests.support.openapi import check_response
from tests.support.requests import HOOK_SERVICE, hook_request, stop_order_request

ALLOWED_TOKEN = re.compile(
    r"\{\{(context\.[A-Za-z]+|userPractitionerId|userPractitionerRoleId|userPatientId|"
    r"userRelatedPersonId)\}\}"
)


def post(client, path, body=None, **kwargs):
    response = client.post(path, json=body, **kwargs) if body is not None else client.post(
        path, **kwargs)
    check_response("POST", path, response.status_code, response.get_json(), response.headers)
    return response


def test_discovery_lists_one_service_per_hook(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    check_response("GET", "/cds-services", 200, response.get_json())
    services = response.get_json()["services"]
    assert empty_or_null_paths(response.get_json()) == []  # req 3
    assert sorted(s["hook"] for s in services) == sorted(HOOK_SERVICE)
    for service in services:
        assert service["id"] == HOOK_SERVICE[service["hook"]]
        assert service["title"] and service["description"]
        assert isinstance(service["usageRequirements"], str)
        assert {"patient", "medications", "observations", "conditions"} <= set(service["prefetch"])


def test_order_hooks_have_their_own_ids_by_default(client):
    # Clients such as the CDS Hooks Sandbox key services by id: shared ids overwrite.
    services = client.get("/cds-services").get_json()["services"]
    ids = [s["id"] for s in services]
    assert len(ids) == len(set(ids))
    by_hook = {s["hook"]: s["id"] for s in services}
    assert by_hook["order-select"] == "baclofen-order-select"
    assert by_hook["order-sign"] == "baclofen-order-sign"


def test_order_select_and_order_sign_can_share_an_id(make_app):
    client = make_app(shared_order_service_id=True).test_client()
    services = client.get("/cds-services").get_json()["services"]
    hooks = {s["hook"] for s in services if s["id"] == "baclofen-order"}
    assert hooks == {"order-select", "order-sign"}
    request = stop_order_request()
    assert post(client, "/cds-services/baclofen-order", request).status_code == 200
    assert post(client, "/cds-services/baclofen-order-sign", request).status_code == 404


def test_prefetch_templates_use_only_allowed_tokens(client):
    for service in client.get("/cds-services").get_json()["services"]:
        for template in service["prefetch"].values():
            tokens = re.findall(r"\{\{[^}]*\}\}", template)
            assert tokens, template
            for token in tokens:
                assert ALLOWED_TOKEN.fullmatch(token), token
                if token.startswith("{{context."):
                    field = token[len("{{context."):-2]
                    assert field in ("patientId", "encounterId", "userId")


def test_observation_prefetch_is_derived_from_rule_codes(client, app):
    knowledge = app.extensions["cds"].knowledge
    template = client.get("/cds-services").get_json()["services"][0]["prefetch"]["observations"]
    for token in observation_code_tokens(knowledge):
        assert token in template


@pytest.mark.parametrize("hook", sorted(HOOK_SERVICE))
def test_every_hook_answers_a_valid_request(client, hook):
    response = post(client, f"/cds-services/{HOOK_SERVICE[hook]}", hook_request(hook))
    assert response.status_code == 200
    assert response.get_json()["cards"] == []


def test_stop_order_gets_a_card_with_uuid(client):
    response = post(client, "/cds-services/baclofen-order-sign", stop_order_request())
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards, "an abrupt stop of 30 mg/day after 6 months must warn"
    assert all(card.get("uuid") for card in cards)


# --- the error table -------------------------------------------------------------------


def test_malformed_json_is_400(client):
    response = post(client, "/cds-services/baclofen-order-sign", data=b"{not json",
                    content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["issue"][0]["diagnostics"]


def test_schema_violation_names_the_path(client):
    request = hook_request("order-sign")
    del request["context"]["draftOrders"]
    response = post(client, "/cds-services/baclofen-order-sign", request)
    assert response.status_code == 400
    issue = response.get_json()["issue"][0]
    assert "draftOrders" in issue["diagnostics"]
    assert issue["expression"] == ["$.context"]


def test_prefetch_value_must_be_resource_or_null(client):
    request = hook_request("patient-view")
    request["prefetch"]["patient"] = "Patient/123"
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["$.prefetch.patient"]


def test_fhir_authorization_without_server_is_400(client):
    request = hook_request("patient-view")
    request["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer",
                                    "expires_in": 300, "scope": "patient/*.read",
                                    "subject": "cds"}
    assert post(client, "/cds-services/baclofen-patient-view", request).status_code == 400


def test_wrong_hook_for_service_is_400(client):
    response = post(client, "/cds-services/baclofen-patient-view", hook_request("order-sign"))
    assert response.status_code == 400
    assert "patient-view" in response.get_json()["issue"][0]["diagnostics"]


def test_unknown_service_is_404(client):
    assert post(client, "/cds-services/no-such-service", hook_request("patient-view")
                ).status_code == 404


def test_wrong_method_is_405(client):
    response = client.get("/cds-services/baclofen-order-sign")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    check_response("POST", "/cds-services/baclofen-order-sign", 405, response.get_json())


def test_non_json_media_type_is_415(client):
    response = post(client, "/cds-services/baclofen-order-sign", data=b"hook=order-sign",
                    content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_oversized_body_is_413(make_app):
    client = make_app(max_body_bytes=2048).test_client()
    request = hook_request("patient-view")
    request["extension"] = {"padding": "x" * 5000}
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 413


def test_too_many_resources_is_413(make_app):
    client = make_app(max_resources=5).test_client()
    request = hook_request("patient-view")
    request["prefetch"]["observations"]["entry"] = [
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"text": "x"}}} for _ in range(10)
    ]
    assert post(client, "/cds-services/baclofen-patient-view", request).status_code == 413


def test_deep_nesting_is_400(client):
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    request = hook_request("patient-view")
    request["extension"] = deep
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 400
    assert "nests deeper" in response.get_json()["issue"][0]["diagnostics"]


def test_very_deep_nesting_does_not_crash(client):
    body = b"[" * 100_000 + b"]" * 100_000
    response = post(client, "/cds-services/baclofen-patient-view", data=body,
                    content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("body", [b"[]", b"42", b'"text"', b"null", b"{}"])
def test_non_object_bodies_are_400(client, body):
    response = post(client, "/cds-services/baclofen-order-sign", data=body,
                    content_type="application/json")
    assert response.status_code == 400


def test_error_bodies_carry_no_request_values(client):
    request = hook_request("order-sign")
    request["context"]["patientId"] = 12345678  # wrong type, and an identifier
    response = post(client, "/cds-services/baclofen-order-sign", request)
    assert response.status_code == 400
    assert "12345678" not in response.get_data(as_text=True)


def test_malformed_resource_is_skipped_and_reported(client):
    request = hook_request("patient-view")
    request["prefetch"]["patient"] = {"resourceType": "Patient", "gender": 17,
                                      "birthDate": "not-a-date"}
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 200
    skipped = response.get_json()["extension"]["org.baclofen-cds"]["skippedResources"]
    assert skipped[0]["resourceType"] == "Patient"
    assert "not-a-date" not in response.get_data(as_text=True)


def test_missing_required_prefetch_without_fhir_server_is_412(client):
    request = hook_request("patient-view")
    del request["prefetch"]["medications"]
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 412
    assert "medications" in response.get_json()["issue"][0]["diagnostics"]


def test_missing_optional_prefetch_is_reported_not_fatal(client):
    request = hook_request("patient-view")
    del request["prefetch"]["observations"]
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 200
    unavailable = response.get_json()["extension"]["org.baclofen-cds"]["unavailableData"]
    assert [u["prefetchKey"] for u in unavailable] == ["observations"]


def test_null_prefetch_means_no_data(client):
    request = hook_request("patient-view")
    request["prefetch"] = {k: None for k in request["prefetch"]}
    response = post(client, "/cds-services/baclofen-patient-view", request)
    assert response.status_code == 200
    assert "extension" not in response.get_json()


def test_cors_preflight_allows_authorization_and_content_type(client):
    response = client.options(
        "/cds-services/baclofen-order-sign",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"rules": True, "database": True}
    check_response("GET", "/readyz", 200, ready.get_json())


def test_readiness_fails_when_database_is_not_writable(app):
    from cds.storage import Store

    app.extensions["cds"].store = Store("sqlite:////nonexistent-dir/cds.db")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] is False
    check_response("GET", "/readyz", 503, response.get_json())


def test_unresolved_medication_reference_is_reported(client):
    request = stop_order_request()
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med-404"}
    response = post(client, "/cds-services/baclofen-order-sign", request)
    assert response.status_code == 200
    extension = response.get_json()["extension"]["org.baclofen-cds"]
    assert extension["unresolvedMedicationReferences"] == 1
