"""Requests shaped exactly like the public CDS Hooks Sandbox's get a 200.

The Sandbox (github.com/cds-hooks/sandbox) calls discovery, resolves prefetch itself and
leaves out keys it could not fill, signs ES384 JWTs whose jku names its public JWK Set
(https://sandbox.cds-hooks.org/.well-known/jwks.json), and drafts orders sparsely (status
draft, no medication or intent until one is chosen). tools/sandbox-e2e drives a real build.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests

from tests.support import paths
from tests.support.outbound import OutboundTrap
from tests.support.requests import baclofen_request, declared_prefetch_keys, patient
from tests.support.sandbox import (
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_JWKS,
    SANDBOX_PRIVATE_KEY_PEM,
    draft_orders_context,
    sandbox_draft_order,
    sandbox_jwt,
    sparse_draft_order,
)

ROOT = paths.ROOT
PATIENT = "pat-1"
ORDER = "/cds-services/baclofen-order-sign"


def sandbox_prefetch(on_baclofen: bool) -> dict:
    """What the Sandbox resolved itself: patient and medications; observations and
    conditions left out, as when its FHIR server could not answer those searches."""
    entries = []
    if on_baclofen:
        entries = [{"resource": baclofen_request("home-1", "active",
                                                 datetime.now(UTC) - timedelta(days=120))}]
    return {
        "patient": patient(PATIENT),
        "medications": {"resourceType": "Bundle", "type": "searchset", "entry": entries},
    }


def sandbox_request(hook: str, context: dict, on_baclofen: bool = False) -> dict:
    # No fhirServer: this service must answer from the prefetch it was given.
    return {"hookInstance": "7f1c2a9e-3b4d-4f5a-9c8e-1d2b3a4c5d6e", "hook": hook,
            "context": context, "prefetch": sandbox_prefetch(on_baclofen)}


ORDERS = {
    "sparse (no medication, no intent)": lambda: sparse_draft_order(PATIENT),
    "baclofen chosen (Sandbox shapes)": lambda: sandbox_draft_order(
        PATIENT, "197391", "Baclofen 10 MG Oral Tablet"),
    "other drug chosen": lambda: sandbox_draft_order(
        PATIENT, "313782", "Acetaminophen 325 MG Oral Tablet"),
}


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("order_name", list(ORDERS))
@pytest.mark.parametrize("on_baclofen", [False, True])
def test_sandbox_draft_orders_get_200_and_no_card(client, hook, order_name, on_baclofen):
    order = ORDERS[order_name]()
    context = draft_orders_context(PATIENT, order, selection=hook == "order-select")
    response = client.post(f"/cds-services/baclofen-{hook}",
                           json=sandbox_request(hook, context, on_baclofen),
                           headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_json()
    # Nothing in these drafts stops, cuts or ends baclofen: no warning to show.
    assert response.get_json()["cards"] == []


def test_sandbox_draft_is_read_with_its_single_object_elements_as_lists(client):
    """The Sandbox's STU3-shaped category and reasonCode do not hide its draft any more:
    the draft is read, and the response names the elements read as lists (names only)."""
    order = sandbox_draft_order(PATIENT, "197391", "Baclofen 10 MG Oral Tablet")
    context = draft_orders_context(PATIENT, order)
    response = client.post(ORDER, json=sandbox_request("order-sign", context, True))
    assert response.status_code == 200
    extension = response.get_json()["extension"]["org.baclofen-cds"]
    assert "skippedResources" not in extension
    assert extension["adjustedResources"] == [{"resourceType": "MedicationRequest",
                                               "readAsList": ["category", "reasonCode"]}]
    assert "Multiple sclerosis" not in response.get_data(as_text=True)


def test_sandbox_patient_view_with_partial_prefetch(client):
    context = {"patientId": PATIENT, "userId": "Practitioner/COREPRACTITIONER1"}
    response = client.post("/cds-services/baclofen-patient-view",
                           json=sandbox_request("patient-view", context, on_baclofen=True))
    assert response.status_code == 200
    body = response.get_json()
    assert body["cards"] == []
    missing = {u["prefetchKey"] for u in body["extension"]["org.baclofen-cds"]["unavailableData"]}
    # The Sandbox prefetches what its mock FHIR server answers: the patient and orders.
    assert missing == set(declared_prefetch_keys("patient-view")) - {"patient", "medications"}


def test_published_private_key_matches_published_jwks():
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(SANDBOX_JWKS["keys"][0]))
    token = sandbox_jwt("https://example.org/cds-services")
    # leeway: the Sandbox rounds iat to the nearest second, so it can be 0.5 s ahead.
    claims = jwt.decode(token, key, algorithms=["ES384"], leeway=5,
                        audience="https://example.org/cds-services")
    assert claims["iss"] == SANDBOX_ISS
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES384", "typ": "JWT", "kid": SANDBOX_JWKS["keys"][0]["kid"],
                      "jku": SANDBOX_JKU}
    assert "PRIVATE KEY" in SANDBOX_PRIVATE_KEY_PEM


@pytest.fixture
def outbound_trap():
    trap = OutboundTrap().start()
    # The trap works: an outbound HTTPS call through it is seen (and refused).
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get(SANDBOX_JKU, proxies={"https": trap.url}, timeout=5)
    assert [r.split()[:2] for r in trap.requests] == [["CONNECT", "sandbox.cds-hooks.org:443"]]
    trap.requests.clear()
    yield trap
    trap.stop()


def test_sandbox_jwt_is_accepted_offline_with_the_trust_entry_in_docs(live_server,
                                                                        outbound_trap):
    """Tokens signed as the real Sandbox signs them (jku = its public JWK Set URL) are
    verified with the key in docs/trust-sandbox.yaml: nothing is fetched from outside."""
    trust = ROOT / "docs" / "trust-sandbox.yaml"
    server = live_server({"CDS_AUTH": "on", "CDS_TRUST_FILE": str(trust),
                          **outbound_trap.proxy_env()})

    def call(method: str, path: str, body: dict | None = None, token: str | None = "sandbox"):
        url = server.base_url + path
        headers = {"Accept": "application/json"}
        if token == "sandbox":
            headers["Authorization"] = f"Bearer {sandbox_jwt(url)}"
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, url, json=body, headers=headers, timeout=10)

    assert jwt.get_unverified_header(sandbox_jwt(server.base_url))["jku"] == SANDBOX_JKU
    discovery = call("GET", "/cds-services")
    assert discovery.status_code == 200
    assert {s["id"] for s in discovery.json()["services"]} >= {"baclofen-order-select",
                                                                  "baclofen-order-sign"}

    sparse = draft_orders_context(PATIENT, sparse_draft_order(PATIENT))
    response = call("POST", ORDER, sandbox_request("order-sign", sparse, on_baclofen=True))
    assert response.status_code == 200
    assert response.json()["cards"] == []

    # Authentication really is on: no token, or a token for another URL, is refused.
    assert call("POST", ORDER, sandbox_request("order-sign", sparse), token=None) \
        .status_code == 401
    other_aud = sandbox_jwt(server.base_url + "/cds-services/other")
    assert call("POST", ORDER, sandbox_request("order-sign", sparse), token=other_aud) \
        .status_code == 401
    assert outbound_trap.requests == [], "the service fetched the Sandbox's JWK Set"
