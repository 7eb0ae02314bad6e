"""The public CDS Hooks Sandbox as a client: its published test key, its JWTs, its requests.

Everything here is copied from github.com/cds-hooks/sandbox (commit 3b7e255, 2026-03-31):
- SANDBOX_PRIVATE_KEY_PEM is keys/ecprivkey.pem. It is the Sandbox's *published test key*:
  the Sandbox is a browser-only tool, so its private key is public and anyone can sign
  tokens as the Sandbox. It is here only to prove the service accepts the Sandbox's
  tokens; never trust it where real patient data are served (docs/trust-sandbox.yaml).
- SANDBOX_JWKS is build/.well-known/jwks.json, the public half.
- sandbox_jwt() builds the token as src/retrieve-data-helpers/jwt-generator.js does.
- sparse_draft_order() / sandbox_draft_order() follow createFhirResource in
  src/reducers/medication-reducers.js, with its shapes kept as they are (category and
  reasonCode as single objects, no Bundle.type).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import jwt

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"

# The Sandbox's published test key (keys/ecprivkey.pem), public by design; see above.
SANDBOX_PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDI5xiX1DMwqcEVSI9k
oGKMNX+WwS2fqhYVU6q0XJdtj/5XrdYIFhh3Gwuj09yWvzihZANiAAR3D8kZHycH
Yjpe943FQ6XaqTr31k8szadgjlJNJ2ISX1q8CSubcKR9gxuuuOvyVoFKbeYsT6fX
Ng2Vr9qITdxvedmwvnVFsLvKzDerxokvEab6HHv1E8xikhMOOnuSDPI=
-----END PRIVATE KEY-----
"""

SANDBOX_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "use": "sig",
            "crv": "P-384",
            "kid": SANDBOX_KID,
            "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
            "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
            "alg": "ES384",
        }
    ]
}


def sandbox_jwt(audience: str, jku: str = SANDBOX_JKU) -> str:
    """A token as the Sandbox signs it: ES384; header alg, typ, kid, jku; claims iss, aud,
    exp (+300 s), iat, jti. `jku` is replaceable so a test can serve the key set locally."""
    now = round(time.time())
    claims = {"iss": SANDBOX_ISS, "aud": audience, "exp": now + 300, "iat": now,
              "jti": str(uuid.uuid4())}
    return jwt.encode(claims, SANDBOX_PRIVATE_KEY_PEM, algorithm="ES384",
                      headers={"typ": "JWT", "kid": SANDBOX_KID, "jku": jku})


def sparse_draft_order(patient_id: str) -> dict:
    """What the Sandbox drafts before a medication is chosen: no medication, no intent."""
    return {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "status": "draft",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": datetime.now(UTC).date().isoformat(),
    }


def sandbox_draft_order(patient_id: str, rxcui: str, name: str, times_a_day: int = 3) -> dict:
    """A chosen medication with dose, frequency and supply, shaped exactly as the Sandbox
    builds it (including its single-object category and reasonCode)."""
    order = sparse_draft_order(patient_id)
    order["dosageInstruction"] = [{
        "timing": {"repeat": {"frequency": times_a_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org",
                                          "code": "{pill}"}}],
    }]
    order["dispenseRequest"] = {"expectedSupplyDuration": {
        "value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}
    order["intent"] = "order"
    order["category"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
        "code": "community"}]}
    order["medicationCodeableConcept"] = {
        "text": name,
        "coding": [{"display": name, "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": rxcui}],
    }
    order["reasonCode"] = {"coding": [{"system": "http://snomed.info/sct", "code": "24700007",
                                       "display": "Multiple sclerosis"}]}
    return order


def draft_orders_context(patient_id: str, order: dict, selection: bool = False) -> dict:
    context = {"patientId": patient_id, "userId": "Practitioner/COREPRACTITIONER1",
               "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]}}
    if selection:
        context["selections"] = [f"MedicationRequest/{order['id']}"]
    return context
