"""Turn prefetch values, fetched data and draft orders into checked FHIR resources.

Only resource types and codes the rules can use are modelled (checking a resource
with fhir.resources costs ~0.4 ms; a year of vital signs is thousands of them).
A resource that fails its model is skipped and reported, never fatal; an order that
fails it only in elements the service does not read is read without them and the
adjustment reported (cds.tolerant_reading).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from pydantic import ValidationError

from cds.tolerant_reading import Adjustment, is_missing, repair

# R4B models for resources whose R4 (4.0.1) JSON shape is unchanged in R4B; see
# docs/fhir-versions.md for the differences we checked.
MODELS: dict[str, Any] = {
    "MedicationRequest": MedicationRequest,
    "Medication": Medication,
    "Observation": Observation,
    "Condition": Condition,
    "Patient": Patient,
    "Encounter": Encounter,
    "MedicationAdministration": MedicationAdministration,
    "AllergyIntolerance": AllergyIntolerance,
    "Device": Device,
    "Procedure": Procedure,
}

Relevance = Callable[[dict], bool]


@dataclass
class SkippedResource:
    resource_type: str
    reason: str

    def as_json(self) -> dict:
        return {"resourceType": self.resource_type, "reason": self.reason}


@dataclass
class CheckedResources:
    resources: list[dict] = field(default_factory=list)
    skipped: list[SkippedResource] = field(default_factory=list)
    adjusted: list[Adjustment] = field(default_factory=list)
    models_built: Counter[str] = field(default_factory=Counter)  # by resourceType


def flatten(value: Any) -> list[dict]:
    """A prefetch value (resource, searchset Bundle or null) as a list of resources."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        if not isinstance(entries, list):
            return []
        return [
            e["resource"]
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value]


def _error_fields(error: ValidationError) -> str:
    # Field locations only: pydantic's messages can quote the offending (clinical) value.
    locations = sorted({".".join(str(p) for p in e["loc"] if not isinstance(p, int))
                        for e in error.errors()})
    shown = ", ".join(loc or "(root)" for loc in locations[:5])
    more = f" and {len(locations) - 5} more" if len(locations) > 5 else ""
    return f"does not match the FHIR R4 {error.title} model at {shown}{more}"


def _only_missing(error: ValidationError) -> bool:
    return all(is_missing(e) for e in error.errors())


def _relevant(is_relevant: Relevance, resource: dict) -> bool:
    try:
        return is_relevant(resource)
    except (TypeError, AttributeError, ValueError, KeyError, RecursionError):
        # The relevance check reads raw, unchecked JSON (e.g. a coding whose code is a
        # list). A shape it cannot read goes on to the model check, which rejects and
        # reports it, instead of failing the whole request.
        return True


def _known_type(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        get_fhir_model_class(value)
    except (ValueError, KeyError):
        return False
    return True


def _without_unknown_contained(resource: dict) -> dict | None:
    """A copy without the contained resources of a type FHIR does not define (the R4B
    models fail on them with a KeyError), or None when there are none to drop."""
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return None
    kept = [c for c in contained if isinstance(c, dict) and _known_type(c.get("resourceType"))
            and _without_unknown_contained(c) is None]
    if len(kept) == len(contained):
        return None
    return {**resource, "contained": kept}


def _checked(model: Any, resource: dict, out: CheckedResources, lenient_missing: bool
             ) -> dict | None:
    """The resource as the facts may read it (repaired if need be), or None (skipped)."""
    cleaned = _without_unknown_contained(resource)
    if cleaned is not None:
        # No fact reads a resource of a type FHIR does not define: only a Medication
        # contained in an order is read. Dropped and reported, as other ignored elements.
        resource = cleaned
        out.adjusted.append(Adjustment(resource["resourceType"], ignored=("contained",)))
    try:
        model.model_validate(resource)
    except ValidationError as error:
        if lenient_missing and _only_missing(error):
            return resource
        repaired = repair(model, resource, error, lenient_missing=lenient_missing)
        if repaired is None:
            out.skipped.append(SkippedResource(resource["resourceType"], _error_fields(error)))
            return None
        resource, adjustment = repaired
        out.adjusted.append(adjustment)
    return resource


def check_resources(
    candidates: Iterable[dict],
    is_relevant: Relevance | None = None,
    *,
    lenient_missing: bool = False,
    into: CheckedResources | None = None,
) -> CheckedResources:
    """Keep relevant resources that match their model (`is_relevant` None: all of them).

    `lenient_missing` keeps resources whose only faults are missing required fields:
    clients such as the CDS Hooks Sandbox send sparse draft orders, and fact
    extraction reads whatever is there.
    """
    out = into or CheckedResources()
    for resource in candidates:
        kind = resource.get("resourceType")
        model = MODELS.get(kind) if isinstance(kind, str) else None
        if model is None or (is_relevant is not None and not _relevant(is_relevant, resource)):
            continue
        out.models_built[kind] += 1
        try:
            checked = _checked(model, resource, out, lenient_missing)
        # The models raise more than ValidationError on hostile input (a contained resource
        # of an unknown resourceType: KeyError, a 500 until issue 26.5): whatever they
        # raise costs this resource, reported, never the call.
        except Exception as error:  # noqa: BLE001
            out.skipped.append(SkippedResource(kind, f"could not be read ({type(error).__name__})"))
            continue
        if checked is not None:
            out.resources.append(checked)
    return out
