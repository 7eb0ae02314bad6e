"""Schemathesis over openapi.yaml against a live `baclofen-cds serve` on 127.0.0.1.

Valid and invalid requests generated from the document; every answer must conform to
it (status, media type, body schema) and none may be a 5xx. Bounded: a few dozen
examples per operation so the file runs well under two minutes.
"""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from cds import envelope
from cds.auth.keys_cli import public_jwk
from tests.support import paths
from tests.support.fake_fhir import FakeFhirServer, bundle, json_answer
from tests.support.live import LiveServer
from tests.support.requests import HOOK_SERVICE, patient

SPEC = paths.ROOT / "openapi.yaml"
# Valid and invalid requests are both generated and every answer is checked (no 5xx,
# documented status, media type, body schema, headers, authentication required, and that
# the service accepts exactly the requests the document calls valid: openapi.yaml takes
# its request schemas from cds/schemas, the ones the service validates with).
# A schema-valid request may still lack the data to decide: 412 is the spec's answer
# (CDS Hooks 2.0, prefetch), so it counts as accepting the request.
CONFIG = SchemathesisConfig.from_str("""
[checks.positive_data_acceptance]
expected-statuses = [200, 401, 404, 412]
""")
# The catch-all for unknown service ids overlaps the concrete service paths (a generated
# "invalid" id can be a real one); its 404 is covered by tests/contract/test_contract.py.
# A generated handout token is schema-valid but never a sealed plan (400 by design), so
# the handout page has its own fuzzing: tests/contract/test_handout.py.
schema = schemathesis.openapi.from_path(SPEC, config=CONFIG).exclude(
    operation_id=["invokeUnknownService", "patientHandout"])

EXAMPLES_PER_OPERATION = 100
ISS = "https://ehr.example.org"


@pytest.fixture(scope="module")
def signing_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def fhir():
    """Generated requests may name any fhirServer; every one is pointed here instead,
    so the fuzzing also drives the FHIR fallback and never leaves the machine."""
    server = FakeFhirServer(default=json_answer(bundle([]))).start()
    server.routes["/Patient/"] = json_answer(patient())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory, signing_key):
    """Authentication on, as deployed: the document requires it, and schemathesis checks
    that calls without a token are refused."""
    tmp = tmp_path_factory.mktemp("fuzz-contract")
    trust = tmp / "trust.json"
    jwks = {"keys": [public_jwk(signing_key.public_key(), "ec-1")]}
    trust.write_text(json.dumps({"issuers": [{"iss": ISS, "jwks": jwks}]}))
    server = LiveServer({
        "CDS_AUTH": "on",
        "CDS_TRUST_FILE": str(trust),
        "CDS_DATABASE_URL": f"sqlite:///{tmp / 'fuzz.db'}",
        "CDS_FHIR_DEADLINE": "1",
        "CDS_FEEDBACK_QUOTA_PER_HOUR": str(10**9),  # quotas: test_feedback_integrity.py
    })
    server.start(tmp / "server.log")
    yield server
    server.stop()


def bearer(key, url: str) -> str:
    """A fresh client JWT for one call (each jti is accepted once)."""
    now = int(time.time())
    claims = {"iss": ISS, "aud": url, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return "Bearer " + jwt.encode(claims, key, algorithm="ES384", headers={"kid": "ec-1"})


REAL_IDS = sorted(set(HOOK_SERVICE.values()))


def is_rfc3339(value: object) -> bool:
    try:
        return isinstance(value, str) and envelope._is_rfc3339(value)
    except ValueError:
        return False


def aim(case, fhir_base_url: str) -> None:
    """Keep generated data, but make it reach the code worth fuzzing, on this machine."""
    body = case.body
    if isinstance(body, dict):
        server = body.get("fhirServer")
        if isinstance(server, str) and server.lower().startswith(("http:", "https:")):
            # Only http(s) could leave the machine; other junk stays to be refused.
            body["fhirServer"] = fhir_base_url
    entries = body.get("feedback") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and is_rfc3339(entry.get("outcomeTimestamp")):
            # Valid per the schema, but the service also wants it recent (no later than
            # now, at most 30 days old: tests/contract/test_feedback_integrity.py).
            entry["outcomeTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    service_id = (case.path_parameters or {}).get("serviceId")
    # A random service id is a 404 before anything else runs: send 3 in 4 cases to a
    # real service (the one for the generated hook when there is one).
    if isinstance(service_id, str) and len(service_id) % 4:
        hook = body.get("hook") if isinstance(body, dict) else None
        real = HOOK_SERVICE.get(hook) if isinstance(hook, str) else None
        case.path_parameters["serviceId"] = real or REAL_IDS[len(service_id) % len(REAL_IDS)]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
def test_every_answer_conforms_to_openapi(case, service, fhir, signing_key):
    aim(case, fhir.base_url)
    token = bearer(signing_key, service.base_url + case.formatted_path)
    case.call_and_validate(base_url=service.base_url, headers={"Authorization": token},
                           timeout=15)
