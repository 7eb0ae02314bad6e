"""A taper plan as one FHIR R4 MedicationRequest: one dosageInstruction per step."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from cds.product import Product
from cds.taper.params import TaperParams
from cds.taper.planner import DosePart, TaperPlan, TaperStep
from cds.taper.render import plan_instructions

UCUM = "http://unitsofmeasure.org"


def _quantity(plan: TaperPlan, dose_mg: float) -> dict[str, Any]:
    # Liquids are ordered by volume (what the patient measures); everything else in mg.
    if plan.delivery.kind == "liquid":
        return {"value": plan.delivery.ml_of(dose_mg), "unit": "mL", "system": UCUM, "code": "mL"}
    return {"value": round(dose_mg, 3), "unit": "mg", "system": UCUM, "code": "mg"}


def _bounds(step: TaperStep) -> dict[str, str]:
    bounds = {"start": step.start.isoformat()}
    if step.end is not None:
        bounds["end"] = step.end.isoformat()
    return bounds


def _period_text(step: TaperStep) -> str:
    if step.end is None:
        return f"From {_date(step.start)}"
    return f"{_date(step.start)} to {_date(step.end)}"


def _date(day: date) -> str:
    return day.isoformat()


def _dosage(
    plan: TaperPlan, step: TaperStep, part: DosePart, route: dict[str, str]
) -> dict[str, Any]:
    return {
        "sequence": step.number,
        "text": f"Step {step.number}, {_period_text(step)}: {part.text}",
        "timing": {
            "repeat": {
                "boundsPeriod": _bounds(step),
                "frequency": part.times_per_day,
                "period": 1,
                "periodUnit": "d",
            }
        },
        "route": {"coding": [dict(route)], "text": route["display"]},
        "doseAndRate": [{"doseQuantity": _quantity(plan, part.dose_mg)}],
    }


def _medication_field(medication: dict[str, Any]) -> dict[str, Any]:
    """Accept a CodeableConcept, a Reference, or the order's own medication[x] field."""
    for key in ("medicationCodeableConcept", "medicationReference"):
        if key in medication:
            return {key: medication[key]}
    if "reference" in medication:
        return {"medicationReference": medication}
    return {"medicationCodeableConcept": medication}


def taper_medication_request(
    plan: TaperPlan,
    product: Product,
    patient_ref: str,
    medication: dict[str, Any],
    requester: dict[str, Any] | None = None,
    note_text: str | None = None,
    *,
    params: TaperParams,
    request_id: str | None = None,
    prior_prescription: str | None = None,
    route: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A draft MedicationRequest carrying the whole taper (FHIR R4 JSON).

    Steps are sequential dosageInstructions (`sequence` = step number); a day split
    into unequal doses gives two instructions sharing one sequence (taken together).
    `prior_prescription` ("MedicationRequest/<id>") names the current order the taper
    replaces, so the EHR ends that order when the taper is signed instead of running both.
    """
    steps = [*plan.steps, *([plan.maintenance] if plan.maintenance else [])]
    dosages = [
        _dosage(plan, step, part, route or params.oral_route)
        for step in steps for part in step.parts
    ]
    notes = [{"text": note_text}] if note_text else []
    notes.append({"text": f"{product.name}. {plan_instructions(plan)}"})
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": request_id or str(uuid.uuid4()),
        "status": "draft",
        "intent": "order",
        **_medication_field(medication),
        "subject": {"reference": patient_ref},
        "dosageInstruction": dosages,
        "note": notes,
    }
    if requester:
        request["requester"] = requester
    if prior_prescription:
        request["priorPrescription"] = {"reference": prior_prescription}
    return request
