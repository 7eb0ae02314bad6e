"""Prefetch fallback to the client's FHIR server (a faked server on 127.0.0.1)."""

from __future__ import annotations

import logging
import time

import pytest

from cds.fhir_client import NOT_FETCHED
from tests.support.fake_fhir import bundle, json_answer, slow_answer
from tests.support.openapi import check_response
from tests.support.requests import (
    baclofen_request,
    declared_prefetch_keys,
    hook_request,
    patient,
    searched_paths,
)

TOKEN = "secret-access-token-123"


def fallback_request(fake_fhir, keep: tuple[str, ...] = ()) -> dict:
    request = hook_request("patient-view")
    request["prefetch"] = {k: v for k, v in request["prefetch"].items() if k in keep}
    request["fhirServer"] = fake_fhir.base_url
    request["fhirAuthorization"] = {
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "baclofen-cds",
    }
    return request


SEARCHED = searched_paths("patient-view")  # key -> "/Observation"


def serve_everything(fake_fhir, medications=None) -> None:
    assert set(declared_prefetch_keys("patient-view")) == {"patient", *SEARCHED}
    fake_fhir.routes.update({path: json_answer(bundle([])) for path in SEARCHED.values()})
    fake_fhir.routes.update({
        "/Patient/": json_answer(patient()),
        "/MedicationRequest": json_answer(bundle(medications or [])),
    })


ALL_BUT_MEDICATIONS = tuple(k for k in ("patient", *SEARCHED) if k != "medications")


def call(client, request):
    response = client.post("/cds-services/baclofen-patient-view", json=request)
    check_response("POST", "/cds-services/baclofen-patient-view", response.status_code,
                   response.get_json())
    return response


def test_missing_prefetch_is_fetched_with_the_bearer_token(client, fake_fhir):
    serve_everything(fake_fhir)
    response = call(client, fallback_request(fake_fhir))
    assert response.status_code == 200
    paths = sorted(r.path.split("?")[0] for r in fake_fhir.seen)
    assert paths == sorted([*SEARCHED.values(), "/Patient/pat-1"])
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_fhir.seen)
    fetched = response.get_json()["extension"]["org.baclofen-cds"]["fetchedFromFhirServer"]
    assert fetched == sorted(["patient", *SEARCHED])


def test_present_keys_are_not_fetched(client, fake_fhir):
    serve_everything(fake_fhir)
    call(client, fallback_request(fake_fhir, keep=ALL_BUT_MEDICATIONS))
    assert [r.path.split("?")[0] for r in fake_fhir.seen] == ["/MedicationRequest"]


def test_operation_outcome_in_prefetch_is_refetched(client, fake_fhir):
    serve_everything(fake_fhir)
    request = fallback_request(fake_fhir, keep=ALL_BUT_MEDICATIONS)
    request["prefetch"]["medications"] = {"resourceType": "OperationOutcome", "issue": []}
    assert call(client, request).status_code == 200
    assert [r.path.split("?")[0] for r in fake_fhir.seen] == ["/MedicationRequest"]


def test_bundle_next_links_are_followed(client, fake_fhir):
    serve_everything(fake_fhir)
    page2 = f"{fake_fhir.base_url}/page2"
    fake_fhir.routes["/MedicationRequest"] = json_answer(bundle([], next_url=page2))
    fake_fhir.routes["/page2"] = json_answer(bundle([]))
    assert call(client, fallback_request(fake_fhir)).status_code == 200
    assert any(r.path == "/page2" for r in fake_fhir.seen)


def test_endless_next_links_stop_at_the_page_cap(make_app, fake_fhir):
    client = make_app(fhir_max_pages=3).test_client()
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = json_answer(
        bundle([], next_url=f"{fake_fhir.base_url}/MedicationRequest?page=next"))
    response = call(client, fallback_request(fake_fhir))
    assert response.status_code == 200
    assert sum(r.path.startswith("/MedicationRequest") for r in fake_fhir.seen) == 3
    assert response.get_json()["extension"]["org.baclofen-cds"]["truncatedData"] == [
        "medications"]


def test_next_link_to_another_origin_is_not_followed(client, fake_fhir):
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = json_answer(
        bundle([], next_url="http://127.0.0.2:1/steal-token"))
    response = call(client, fallback_request(fake_fhir))
    assert response.status_code == 200
    assert response.get_json()["extension"]["org.baclofen-cds"]["truncatedData"] == [
        "medications"]


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_fhir_server_errors_on_required_data_give_412(client, fake_fhir, status, caplog):
    caplog.set_level(logging.INFO, logger="cds.gather")
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = json_answer(
        {"resourceType": "OperationOutcome"}, status=status)
    response = call(client, fallback_request(fake_fhir))
    assert response.status_code == 412
    # The client learns only that the data could not be had; the operator's log says why.
    assert NOT_FETCHED in response.get_json()["issue"][0]["diagnostics"]
    assert str(status) not in response.get_json()["issue"][0]["diagnostics"]
    assert "medications failed: http_status" in caplog.text


def test_fhir_server_error_on_optional_data_is_reported(client, fake_fhir):
    serve_everything(fake_fhir)
    fake_fhir.routes["/Observation"] = json_answer({"resourceType": "OperationOutcome"}, 500)
    response = call(client, fallback_request(fake_fhir))
    assert response.status_code == 200
    unavailable = response.get_json()["extension"]["org.baclofen-cds"]["unavailableData"]
    assert unavailable == [{"prefetchKey": "observations", "reason": NOT_FETCHED}]


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"hello": "world"}', b"[1,2,3]"])
def test_garbage_from_fhir_server_gives_412_not_500(client, fake_fhir, body):
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = lambda _r: (200, body, {})
    assert call(client, fallback_request(fake_fhir)).status_code == 412


def test_slow_fhir_server_is_cut_off_at_the_deadline(make_app, fake_fhir):
    client = make_app(fhir_deadline=1.0, fhir_read_timeout=5.0).test_client()
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = slow_answer(4.0, bundle([]))
    started = time.monotonic()
    response = call(client, fallback_request(fake_fhir))
    assert time.monotonic() - started < 2.5
    assert response.status_code == 412


def test_unreachable_fhir_server_gives_412(client, fake_fhir):
    request = fallback_request(fake_fhir)
    fake_fhir.stop()
    assert call(client, request).status_code == 412


def test_dropped_connection_gives_412(client, fake_fhir):
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = lambda _r: (-1, b"", {})
    assert call(client, fallback_request(fake_fhir)).status_code == 412


def test_oversized_fhir_answer_is_refused(make_app, fake_fhir):
    client = make_app(fhir_max_response_bytes=10_000).test_client()
    serve_everything(fake_fhir)
    big = bundle([baclofen_request(f"mr-{i}", "active", __import__("datetime").datetime.now())
                  for i in range(100)])
    fake_fhir.routes["/MedicationRequest"] = json_answer(big)
    response = call(client, fallback_request(fake_fhir))
    assert response.status_code == 412
    assert NOT_FETCHED in response.get_json()["issue"][0]["diagnostics"]


def test_token_never_appears_in_responses_or_logs(client, fake_fhir, caplog):
    serve_everything(fake_fhir)
    fake_fhir.routes["/MedicationRequest"] = json_answer({"resourceType": "OperationOutcome"}, 401)
    response = call(client, fallback_request(fake_fhir))
    assert TOKEN not in response.get_data(as_text=True)
    assert TOKEN not in caplog.text


def test_no_access_token_means_no_fhir_call(client, fake_fhir):
    serve_everything(fake_fhir)
    request = fallback_request(fake_fhir)
    del request["fhirAuthorization"]
    response = call(client, request)
    assert response.status_code == 412
    assert "access token" in response.get_json()["issue"][0]["diagnostics"]
    assert fake_fhir.seen == []


def test_open_fhir_server_can_be_allowed_by_the_operator(make_app, fake_fhir):
    client = make_app(fhir_allow_without_token=True).test_client()
    serve_everything(fake_fhir)
    request = fallback_request(fake_fhir)
    del request["fhirAuthorization"]
    assert call(client, request).status_code == 200
    assert all("authorization" not in r.headers for r in fake_fhir.seen)
