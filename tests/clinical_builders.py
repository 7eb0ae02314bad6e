"""Small builders of FHIR JSON for the clinical tests; dates relative to an injected now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)  # any fixed instant: tests compute from it

PRODUCTS = {
    "430902": "baclofen 5 MG Oral Tablet",
    "197391": "baclofen 10 MG Oral Tablet",
    "197392": "baclofen 20 MG Oral Tablet",
    "250976": "baclofen 1 MG/ML Oral Solution",
    "2667941": "baclofen 2 MG/ML Oral Solution",
    "2593376": "baclofen 5 MG/ML Oral Suspension",
    "1666613": "20 ML baclofen 2 MG/ML Injection",
}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ago(days: float = 0, hours: float = 0, now: datetime = NOW) -> str:
    return iso(now - timedelta(days=days, hours=hours))


def dosage(value: float | None = 10, unit: str = "mg", frequency: int = 3, period: float = 1,
           period_unit: str = "d", **extra) -> dict:
    out: dict = {"text": "as directed",
                 "timing": {"repeat": {"frequency": frequency, "period": period,
                                       "periodUnit": period_unit}}}
    if value is not None:
        out["doseAndRate"] = [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM,
                                                "code": unit}}]
    out.update(extra)
    return out


def baclofen_request(rid: str = "mr1", rxcui: str = "197391", status: str = "active",
                     days_ago: float = 120, dosages: list[dict] | None = None, **extra) -> dict:
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui,
                                                  "display": PRODUCTS.get(rxcui, "baclofen")}]},
        "subject": {"reference": "Patient/p1"},
        "authoredOn": ago(days_ago),
        "dosageInstruction": dosages if dosages is not None else [dosage()],
        **extra,
    }


def observation(loinc: str, value: float, unit: str, hours_ago: float = 1, oid: str = "o1",
                **extra) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": ago(hours=hours_ago),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            **extra}


def condition(system: str, code: str, display: str = "", days_ago: float = 400,
              cid: str = "c1", **extra) -> dict:
    return {"resourceType": "Condition", "id": cid,
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "subject": {"reference": "Patient/p1"}, "onsetDateTime": ago(days_ago), **extra}
