"""Builders for CDS Hooks requests used across the contract tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

HOOK_SERVICE = {
    "order-sign": "baclofen-order-sign",
    "order-select": "baclofen-order-select",
    "patient-view": "baclofen-patient-view",
    "encounter-start": "baclofen-encounter-start",
    "encounter-discharge": "baclofen-encounter-discharge",
}

BACLOFEN_10MG = {
    "coding": [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "197391",
            "display": "baclofen 10 MG Oral Tablet",
        }
    ],
    "text": "baclofen 10 mg tablet",
}


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_bundle() -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": []}


def patient(pid: str = "pat-1") -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}


def baclofen_request(
    rid: str, status: str, authored: datetime, per_dose_tablets: float = 1, times_per_day: int = 3
) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/pat-1"},
        "authoredOn": iso(authored),
        "medicationCodeableConcept": BACLOFEN_10MG,
        "dosageInstruction": [
            {
                "text": f"{per_dose_tablets:g} tablet by mouth {times_per_day} times daily",
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006",
                                      "display": "Oral route"}]},
                "timing": {"repeat": {"frequency": times_per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": per_dose_tablets, "unit": "tablet",
                                                  "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                                                  "code": "TAB"}}],
            }
        ],
    }


@cache
def _declared() -> dict[str, dict[str, str]]:
    from cds.knowledge import load_knowledge
    from cds.services import build_services, observation_code_tokens

    services = build_services(observation_code_tokens(load_knowledge()))
    return {s.hook: {p.key: p.template for p in s.prefetch} for s in services}


def declared_prefetch_keys(hook: str) -> tuple[str, ...]:
    return tuple(_declared()[hook])


def searched_paths(hook: str) -> dict[str, str]:
    """Prefetch key -> the FHIR path its template asks for ("/Observation")."""
    return {key: "/" + template.split("?")[0].split("/")[0]
            for key, template in _declared()[hook].items() if "?" in template}


def hook_request(hook: str, prefetch: dict | None = None, **context: Any) -> dict:
    ctx: dict[str, Any] = {"userId": "Practitioner/prac-1", "patientId": "pat-1"}
    if hook in ("encounter-start", "encounter-discharge"):
        ctx["encounterId"] = "enc-1"
    if hook in ("order-sign", "order-select"):
        ctx["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    if hook == "order-select":
        ctx["selections"] = ["MedicationRequest/draft-1"]
    ctx.update(context)
    request: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": ctx,
    }
    if prefetch is None:
        # Every key the service declares for the hook, as an EHR that honours them sends.
        prefetch = {key: empty_bundle() for key in declared_prefetch_keys(hook)}
        prefetch["patient"] = patient()
        if "encounter" in prefetch:
            prefetch["encounter"] = None
    request["prefetch"] = prefetch
    return request


def stop_order_request(now: datetime | None = None) -> dict:
    """order-sign: a patient on baclofen 30 mg/day for months; the draft stops it."""
    now = now or datetime.now(UTC)
    active = baclofen_request("home-1", "active", now - timedelta(days=180))
    stop = baclofen_request("draft-1", "stopped", now - timedelta(days=180))
    request = hook_request("order-sign")
    request["prefetch"]["medications"] = {
        "resourceType": "Bundle", "type": "searchset", "entry": [{"resource": active}]
    }
    request["context"]["draftOrders"] = {
        "resourceType": "Bundle", "type": "collection", "entry": [{"resource": stop}]
    }
    return request
