"""Realistic benchmark requests, built relative to now: a year of vital signs and labs."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# (LOINC code, display, unit, typical value, spread)
VITALS = [
    ("8310-5", "Body temperature", "Cel", 36.8, 0.3),
    ("8867-4", "Heart rate", "/min", 78, 8),
    ("9279-1", "Respiratory rate", "/min", 16, 2),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 124, 10),
    ("2708-6", "Oxygen saturation", "%", 97, 1),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.9, 0.1),
    ("8302-2", "Body height", "cm", 172, 0.5),  # not read by the rules
    ("29463-7", "Body weight", "kg", 80, 2),  # not read by the rules
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 95, 10),  # not read
]

OTHER_DRUGS = [
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("197806", "ibuprofen 600 MG Oral Tablet"),
    ("313782", "acetaminophen 325 MG Oral Tablet"),
    ("861007", "metformin hydrochloride 500 MG Oral Tablet"),
]


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def observation(code: str, display: str, unit: str, value: float, when: datetime) -> dict:
    return {
        "resourceType": "Observation",
        "id": str(uuid.uuid4()),
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": "Patient/bench-patient"},
        "effectiveDateTime": _iso(when),
        "valueQuantity": {"value": round(value, 1), "unit": unit,
                          "system": "http://unitsofmeasure.org", "code": unit},
    }


def medication_request(rxcui: str, display: str, status: str, authored: datetime,
                       per_day: int = 3, tablets: float = 1) -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": str(uuid.uuid4()),
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/bench-patient"},
        "authoredOn": _iso(authored),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui,
                                                  "display": display}], "text": display},
        "dosageInstruction": [{
            "text": f"{tablets:g} tablet by mouth {per_day} times daily",
            "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral"}]},
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": tablets, "unit": "tablet"}}],
        }],
    }


def condition(code: str, display: str, onset: datetime) -> dict:
    return {
        "resourceType": "Condition",
        "id": str(uuid.uuid4()),
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": "Patient/bench-patient"},
        "onsetDateTime": _iso(onset),
    }


CONDITIONS = [
    ("24700007", "Multiple sclerosis"), ("38341003", "Hypertension"),
    ("44054006", "Type 2 diabetes mellitus"), ("221360009", "Spasticity"),
    ("195967001", "Asthma"), ("35489007", "Depressive disorder"),
    ("267036007", "Dyspnea"), ("271737000", "Anemia"),
    ("68566005", "Urinary tract infection"), ("55822004", "Hyperlipidemia"),
]


def bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]}


def patient_history(now: datetime, observations: int, medication_requests: int,
                    conditions: int, baclofen: bool, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    obs = []
    for i in range(observations):
        code, display, unit, typical, spread = VITALS[i % len(VITALS)]
        when = now - timedelta(days=365 * i / max(observations, 1), hours=rng.random() * 6)
        obs.append(observation(code, display, unit, rng.gauss(typical, spread), when))
    meds = []
    for i in range(medication_requests):
        rxcui, display = OTHER_DRUGS[i % len(OTHER_DRUGS)]
        status = "active" if i < 4 else rng.choice(["completed", "stopped"])
        meds.append(medication_request(rxcui, display, status,
                                       now - timedelta(days=rng.randint(10, 700))))
    if baclofen:
        meds[0] = medication_request("197391", "baclofen 10 MG Oral Tablet", "active",
                                     now - timedelta(days=240), per_day=3, tablets=2)
    conds = [condition(code, display, now - timedelta(days=800 + i))
             for i, (code, display) in enumerate((CONDITIONS * 10)[:conditions])]
    return {
        "patient": {"resourceType": "Patient", "id": "bench-patient", "gender": "female",
                    "birthDate": (now - timedelta(days=365 * 52)).date().isoformat()},
        "medications": bundle(meds),
        "observations": bundle(obs),
        "conditions": bundle(conds),
        # Every prefetch key the services declare, as an EHR that honours them sends them.
        **{key: bundle([]) for key in ("allergies", "devices", "procedures", "administrations")},
    }


def order_sign_stop(now: datetime, observations: int, medication_requests: int) -> dict:
    prefetch = patient_history(now, observations, medication_requests, 10, baclofen=True)
    active = prefetch["medications"]["entry"][0]["resource"]
    stop = {**active, "id": "draft-stop-1", "status": "stopped", "authoredOn": _iso(now)}
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/bench-prescriber",
            "patientId": "bench-patient",
            "draftOrders": {"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": stop}]},
        },
        "prefetch": prefetch,
    }


def patient_view_no_baclofen(now: datetime, observations: int = 300) -> dict:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/bench-prescriber", "patientId": "bench-patient"},
        "prefetch": patient_history(now, observations, 20, 10, baclofen=False),
    }


SCENARIOS = {
    # name: (service id, request builder)
    "order-sign realistic (300 obs, 20 MR)": (
        "baclofen-order-sign", lambda now: order_sign_stop(now, 300, 20)),
    "order-sign large (2000 obs, 100 MR)": (
        "baclofen-order-sign", lambda now: order_sign_stop(now, 2000, 100)),
    "patient-view no baclofen (300 obs)": (
        "baclofen-patient-view", lambda now: patient_view_no_baclofen(now)),
}
