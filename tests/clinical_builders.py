"""Small builders of FHIR R4 JSON for the clinical tests; dates relative to an injected now.

Every builder returns plain JSON (dicts), shaped like what EHRs send in CDS Hooks
prefetch and draftOrders. Times are `datetime`s (or days/hours before NOW) so tests read
as clinical stories: "an order authored 120 days ago, stopped 2 days ago".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
LOCAL = "http://hospital.example.org/fhir/CodeSystem/flowsheet-row"
STATUS_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
TIMING = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"

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
ROUTE_ORAL = "26643006"
ROUTE_INTRATHECAL = "72607000"
ROUTE_GASTROSTOMY = "127490009"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ago(days: float = 0, hours: float = 0, now: datetime = NOW) -> str:
    return iso(now - timedelta(days=days, hours=hours))


def at(days: float = 0, hours: float = 0, now: datetime = NOW) -> datetime:
    """The moment `days` and `hours` before `now` (negative: after)."""
    return now - timedelta(days=days, hours=hours)


def coding(system: str, code: str, display: str | None = None) -> dict:
    out = {"system": system, "code": code}
    if display is not None:
        out["display"] = display
    return out


def concept(*codings: dict, text: str | None = None) -> dict:
    out: dict = {}
    if codings:
        out["coding"] = list(codings)
    if text is not None:
        out["text"] = text
    return out


def route(code: str = ROUTE_ORAL, display: str | None = None) -> dict:
    return concept(coding(SNOMED, code, display))


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


def sig_dosage(text: str, **extra) -> dict:
    """A free-text-only dosage instruction."""
    return {"text": text, **extra}


def rate_dosage(value: float, unit: str = "ug/d", **extra) -> dict:
    """An intrathecal infusion rate."""
    return {"doseAndRate": [{"rateQuantity": {"value": value, "unit": unit, "system": UCUM,
                                              "code": unit}}], **extra}


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


def request_with(medication: dict | None = None, rid: str = "mr1", status: str = "active",
                 authored: datetime | None = None, dosages: list[dict] | None = None,
                 **extra) -> dict:
    """A MedicationRequest with any medicationCodeableConcept (or none: pass extra)."""
    out: dict = {"resourceType": "MedicationRequest", "id": rid, "status": status,
                 "intent": "order", "subject": {"reference": "Patient/p1"}}
    if medication is not None:
        out["medicationCodeableConcept"] = medication
    if authored is not None:
        out["authoredOn"] = iso(authored)
    out["dosageInstruction"] = dosages if dosages is not None else [dosage()]
    out.update(extra)
    return out


def daily_order(rid: str, mg_per_day: float, start: datetime | None, status: str = "active",
                *, rxcui: str = "197391", last_updated: datetime | None = None,
                end: datetime | None = None, validity_end: datetime | None = None,
                prior: str | None = None, as_needed: bool = False,
                categories: tuple[str, ...] = (), encounter: str | None = None,
                **extra) -> dict:
    """An oral order of `mg_per_day` mg once a day (structured), authored at `start`.

    `end` sets timing.repeat.boundsPeriod.end (the dosage's planned end)."""
    dose = dosage(mg_per_day, "mg", frequency=1)
    if end is not None:
        dose["timing"]["repeat"]["boundsPeriod"] = {"end": iso(end)}
    if as_needed:
        dose["asNeededBoolean"] = True
    out = baclofen_request(rid, rxcui, status, dosages=[dose], **extra)
    if start is None:
        del out["authoredOn"]
    else:
        out["authoredOn"] = iso(start)
    if last_updated is not None:
        out["meta"] = {"lastUpdated": iso(last_updated)}
    if validity_end is not None:
        out["dispenseRequest"] = {"validityPeriod": {"start": iso(start or NOW),
                                                     "end": iso(validity_end)}}
    if prior is not None:
        out["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
    if categories:
        out["category"] = [concept(coding(CATEGORY, c)) for c in categories]
    if encounter is not None:
        out["encounter"] = {"reference": f"Encounter/{encounter}"}
    return out


def pump_order(rid: str = "it1", mcg_per_day: float = 400, start: datetime | None = None,
               status: str = "active", rxcui: str = "1666613", **extra) -> dict:
    """An intrathecal order: a pump product with a rate in mcg/day."""
    out = baclofen_request(rid, rxcui, status, dosages=[rate_dosage(mcg_per_day)], **extra)
    out["authoredOn"] = iso(start or at(days=200))
    return out


def medication(mid: str, code: dict | None = None, form: str | None = None,
               ingredients: list[dict] | None = None) -> dict:
    out: dict = {"resourceType": "Medication", "id": mid}
    if code is not None:
        out["code"] = code
    if form is not None:
        out["form"] = {"text": form}
    if ingredients is not None:
        out["ingredient"] = ingredients
    return out


def ingredient(item: dict, amount: float, unit: str, per: float = 1, per_unit: str = "mL"
               ) -> dict:
    return {"itemCodeableConcept": item,
            "strength": {"numerator": {"value": amount, "unit": unit, "system": UCUM,
                                       "code": unit},
                         "denominator": {"value": per, "unit": per_unit, "system": UCUM,
                                         "code": per_unit}}}


def administration(aid: str, when: datetime, request: str | None = None,
                   medication_concept: dict | None = None, amount: float | None = None,
                   unit: str = "mg", route_code: str | None = None,
                   status: str = "completed") -> dict:
    out: dict = {"resourceType": "MedicationAdministration", "id": aid, "status": status,
                 "medicationCodeableConcept": medication_concept or concept(
                     coding(RXNORM, "197391", PRODUCTS["197391"])),
                 "subject": {"reference": "Patient/p1"}, "effectiveDateTime": iso(when)}
    if request is not None:
        out["request"] = {"reference": f"MedicationRequest/{request}"}
    dose: dict = {}
    if amount is not None:
        dose["dose"] = {"value": amount, "unit": unit, "system": UCUM, "code": unit}
    if route_code is not None:
        dose["route"] = route(route_code)
    if dose:
        out["dosage"] = dose
    return out


def observation(loinc: str, value: float, unit: str, hours_ago: float = 1, oid: str = "o1",
                **extra) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": ago(hours=hours_ago),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            **extra}


def coded_observation(code: dict, oid: str = "o1", hours_ago: float = 1, **value) -> dict:
    """An Observation with any code and any value[x] (valueString=..., valueDateTime=...)."""
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": code,
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": ago(hours=hours_ago),
            **value}


def bp_panel(systolic: float, diastolic: float = 70, hours_ago: float = 1, oid: str = "bp",
             panel: str = "85354-9") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": concept(coding(LOINC, panel)), "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": ago(hours=hours_ago),
            "component": [
                {"code": concept(coding(LOINC, "8480-6")),
                 "valueQuantity": {"value": systolic, "unit": "mmHg", "system": UCUM,
                                   "code": "mm[Hg]"}},
                {"code": concept(coding(LOINC, "8462-4")),
                 "valueQuantity": {"value": diastolic, "unit": "mmHg", "system": UCUM,
                                   "code": "mm[Hg]"}}]}


def condition(system: str, code: str, display: str = "", days_ago: float = 400,
              cid: str = "c1", **extra) -> dict:
    return {"resourceType": "Condition", "id": cid,
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"coding": [{"system": system, "code": code, "display": display}]},
            "subject": {"reference": "Patient/p1"}, "onsetDateTime": ago(days_ago), **extra}


def text_condition(text: str, days_ago: float = 1, cid: str = "ct") -> dict:
    out = condition(SNOMED, "0", days_ago=days_ago, cid=cid)
    out["code"] = {"text": text}
    return out


def verification(resource: dict, code: str) -> dict:
    """The resource with verificationStatus set (refuted, entered-in-error, confirmed)."""
    return {**resource, "verificationStatus": concept(coding(
        "http://terminology.hl7.org/CodeSystem/condition-ver-status", code))}


def patient(pid: str = "p1", birth: str | None = "1960-01-01", **extra) -> dict:
    out: dict = {"resourceType": "Patient", "id": pid}
    if birth is not None:
        out["birthDate"] = birth
    out.update(extra)
    return out


def allergy(code: dict, aid: str = "al1", **extra) -> dict:
    return {"resourceType": "AllergyIntolerance", "id": aid, "code": code,
            "patient": {"reference": "Patient/p1"}, **extra}


def pump_device(did: str = "dev1", name: str = "SynchroMed II",
                type_text: str = "Implantable intrathecal drug infusion pump",
                properties: list[dict] | None = None, **extra) -> dict:
    out: dict = {"resourceType": "Device", "id": did, "status": "active",
                 "type": {"text": type_text}, "deviceName": [{"name": name,
                                                              "type": "manufacturer-name"}],
                 "patient": {"reference": "Patient/p1"}}
    if properties is not None:
        out["property"] = properties
    out.update(extra)
    return out


def device_property(type_text: str, *, text: str | None = None, ml: float | None = None
                    ) -> dict:
    out: dict = {"type": {"text": type_text}}
    if text is not None:
        out["valueCode"] = [{"text": text}]
    if ml is not None:
        out["valueQuantity"] = [{"value": ml, "unit": "mL", "system": UCUM, "code": "mL"}]
    return out


def pump_procedure(pid: str = "pr1", when: datetime | None = None, cpt: str = "62369",
                   display: str = "Electronic analysis of programmable pump; with "
                                  "reprogramming and refill",
                   note: str | None = None, status: str = "completed") -> dict:
    out: dict = {"resourceType": "Procedure", "id": pid, "status": status,
                 "code": concept(coding(CPT, cpt, display), text=display),
                 "subject": {"reference": "Patient/p1"},
                 "performedDateTime": iso(when or at(days=30))}
    if note is not None:
        out["note"] = [{"text": note}]
    return out


def flowsheet(name: str, oid: str = "fs1", hours_ago: float = 1, **value) -> dict:
    """A site flowsheet Observation known only by its name (no standard code)."""
    return coded_observation(concept(coding(LOCAL, name.upper().replace(" ", "-"), name),
                                     text=name), oid, hours_ago, **value)


def quantity(value: float, unit: str, code: str | None = None) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def as_draft(resource: dict, status: str = "draft") -> dict:
    """A draft order (context.draftOrders) of the same shape."""
    return {**resource, "status": status}


def drop_keys(resource: dict, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in keys}
