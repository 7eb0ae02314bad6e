"""Issue 27.1: context ids follow FHIR's id grammar before any prefetch template is filled.

A patientId of "." or ".." used to pass the check for dot segments: the template
Patient/{{context.patientId}} became Patient/. or Patient/.., which URL joining turns into
`GET {base}/Patient/` (a search of every patient, read as "the patient") or `GET {base}/`,
sent with the EHR's access token.
"""

from __future__ import annotations

import time

import pytest

from cds.app import create_app
from cds.config import Settings
from cds.fhir_client import FetchLimits, FhirClient, FhirFetchError
from cds.fhir_servers import FhirServerPolicy
from tests.support.fake_fhir import FakeFhirServer, bundle, json_answer
from tests.support.openapi import check_response
from tests.support.requests import HOOK_SERVICE, hook_request, patient

TOKEN = "secret-access-token-123"
DOT_SEGMENTS = [".", ".."]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """One app for the module (building one takes a second): these calls change nothing
    that another test here reads."""
    database = tmp_path_factory.mktemp("context-ids") / "cds.db"
    settings = Settings(database_url=f"sqlite:///{database}", auth_enabled=False)
    return create_app(settings).test_client()


def fallback_request(hook: str, fake_fhir, **context) -> dict:
    """No prefetch at all: everything would be fetched from the FHIR server."""
    request = hook_request(hook, prefetch={}, **context)
    request["fhirServer"] = fake_fhir.base_url + "/r4"
    request["fhirAuthorization"] = {
        "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "baclofen-cds",
    }
    return request


@pytest.fixture(scope="module")
def fhir_server():
    """A FHIR server that answers every read and search (stopping one takes half a
    second, so the module shares it)."""
    server = FakeFhirServer(default=json_answer(bundle([]))).start()
    server.routes["/r4/Patient/"] = json_answer(patient())
    server.routes["/r4/Encounter/"] = json_answer({"resourceType": "Encounter", "id": "e",
                                                    "status": "in-progress"})
    yield server
    server.stop()


@pytest.fixture
def fake_fhir(fhir_server):
    fhir_server.seen.clear()
    return fhir_server


def post(client, hook: str, request: dict):
    path = f"/cds-services/{HOOK_SERVICE[hook]}"
    response = client.post(path, json=request)
    check_response("POST", path, response.status_code, response.get_json())
    return response


@pytest.mark.parametrize("hook", sorted(HOOK_SERVICE))
@pytest.mark.parametrize("value", DOT_SEGMENTS)
def test_a_dot_segment_patient_id_is_a_400_and_nothing_is_fetched(client, fake_fhir, hook,
                                                                   value):
    response = post(client, hook, fallback_request(hook, fake_fhir, patientId=value))
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["$.context.patientId"]
    assert fake_fhir.seen == []


@pytest.mark.parametrize("hook", ["encounter-start", "encounter-discharge", "patient-view"])
@pytest.mark.parametrize("value", DOT_SEGMENTS)
def test_a_dot_segment_encounter_id_is_a_400(client, fake_fhir, hook, value):
    response = post(client, hook, fallback_request(hook, fake_fhir, encounterId=value))
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["$.context.encounterId"]
    assert fake_fhir.seen == []


@pytest.mark.parametrize("value", [
    "Practitioner/.", "Practitioner/..", "Practitioner", "Practitioner/a/b", "/prac-1",
    "practitioner/prac-1", "Practitioner/prac 1",
])
def test_user_id_must_be_a_reference_to_a_fhir_id(client, fake_fhir, value):
    response = post(client, "patient-view",
                    fallback_request("patient-view", fake_fhir, userId=value))
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["$.context.userId"]
    assert fake_fhir.seen == []


@pytest.mark.parametrize("value", [
    "pat 1", "pat/1", "pat%2F1", "pat-1\n", "x" * 65, "", "pät-1", "pat?1", "pat#1",
])
def test_other_values_outside_the_fhir_id_grammar_are_a_400(client, fake_fhir, value):
    response = post(client, "patient-view",
                    fallback_request("patient-view", fake_fhir, patientId=value))
    assert response.status_code == 400
    assert fake_fhir.seen == []


def test_the_refusal_does_not_echo_the_value(client, fake_fhir):
    marker = "smith-john-1955-03-14 MRN 00417"  # a space: not a FHIR id
    response = post(client, "patient-view",
                    fallback_request("patient-view", fake_fhir, patientId=marker))
    assert response.status_code == 400
    assert "smith" not in response.get_data(as_text=True)
    assert "FHIR id" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("value", ["pat.1", "...", "A-1.b", "x" * 64])
def test_ids_with_dots_that_are_not_dot_segments_are_read_as_given(client, fake_fhir, value):
    response = post(client, "patient-view",
                    fallback_request("patient-view", fake_fhir, patientId=value))
    assert response.status_code == 200
    reads = [r.path for r in fake_fhir.seen if r.path.startswith("/r4/Patient/")]
    assert reads == [f"/r4/Patient/{value}"]


def test_the_fhir_client_refuses_a_dot_segment_whatever_fills_the_template(fake_fhir):
    """Defence in depth below the schema: a relative URL with a dot segment is never
    joined onto the base (joining resolves it away, past the allow-list check)."""
    base = fake_fhir.base_url + "/r4"
    permit = FhirServerPolicy(()).permit(base, None)
    fhir = FhirClient(base, TOKEN, FetchLimits(1.0, 1.0, 2, 1_000_000),
                      time.monotonic() + 5, permit)
    for relative in ("Patient/.", "Patient/..", "Patient/../Observation?patient=x", "./Patient"):
        with pytest.raises(FhirFetchError) as refused:
            fhir.search(relative)
        assert refused.value.kind == "not_allowed"
    assert fake_fhir.seen == []
    assert fhir.search("Patient/pat.1").resources[0]["resourceType"] == "Patient"
