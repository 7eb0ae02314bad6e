"""Read a resource that breaks its R4 model only where the clinical reading does not look.

Real clients send orders that fail the R4 model in places unrelated to what this service
reads: the CDS Hooks Sandbox gives MedicationRequest.category and reasonCode as single
objects (their STU3 cardinality). Skipping such an order would hide a baclofen stop, so:

- a single object where the model wants a list of them is read as a list of one;
- an element this service never reads (UNREAD_ELEMENTS) that still breaks the model is
  ignored: dropped from what the facts see;
- anything else (status, medication, dosage, ...) still skips the resource, as before.

What was adjusted is reported by element name only: never values, never the names of
elements the model does not know (those are client text and are only counted).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

# Elements of the resources in draft orders that no fact, rule or card reads. Everything
# not listed here is read (or changes the meaning of what is read, like modifierExtension)
# and must match the model for the resource to be used.
UNREAD_ELEMENTS: dict[str, frozenset[str]] = {
    "MedicationRequest": frozenset({
        "fhir_comments", "meta", "language", "text", "extension", "identifier",
        "reportedBoolean", "reportedReference", "priority", "performer", "performerType",
        "recorder", "reasonCode", "reasonReference", "instantiatesCanonical",
        "instantiatesUri", "groupIdentifier", "insurance", "note", "substitution",
        "detectedIssue", "eventHistory", "supportingInformation",
        # Read for the encounter hooks, but only as a list: any other shape already reads
        # as "no category", so dropping it changes nothing.
        "category",
    }),
    "Medication": frozenset({
        "fhir_comments", "meta", "language", "text", "extension", "identifier",
        "manufacturer", "batch",
    }),
}


@dataclass(frozen=True)
class Adjustment:
    """What was done to one resource so it could be read. Element names only."""

    resource_type: str
    ignored: tuple[str, ...] = ()
    read_as_list: tuple[str, ...] = ()
    unrecognised: int = 0  # elements the R4 model does not define, dropped

    def as_json(self) -> dict:
        out: dict[str, Any] = {"resourceType": self.resource_type}
        if self.ignored:
            out["ignoredElements"] = list(self.ignored)
        if self.read_as_list:
            out["readAsList"] = list(self.read_as_list)
        if self.unrecognised:
            out["unrecognisedElements"] = self.unrecognised
        return out


def is_missing(fault: Any) -> bool:
    """A required element left out. fhir.resources reports its own required elements
    (e.g. MedicationRequest.intent) as "model_field_validation.missing"."""
    kind = fault["type"]
    return kind == "missing" or kind.endswith(".missing")


def _faults(error: ValidationError, lenient_missing: bool) -> list[dict]:
    return [e for e in error.errors() if not (lenient_missing and is_missing(e))]


def _path_text(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not isinstance(p, int))


def _wrap_in_list(resource: dict, loc: tuple) -> bool:
    """Replace the object at `loc` by a list holding it; False if it is not an object."""
    parent: Any = resource
    for step in loc[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return False
    last = loc[-1]
    if not isinstance(parent, dict) or not isinstance(parent.get(last), dict):
        return False
    parent[last] = [parent[last]]
    return True


def repair(
    model: Any, resource: dict, error: ValidationError, *, lenient_missing: bool
) -> tuple[dict, Adjustment] | None:
    """A copy of `resource` that matches `model` after the adjustments above, or None."""
    kind = resource.get("resourceType")
    unread = UNREAD_ELEMENTS.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
    known = {f.alias or name for name, f in model.model_fields.items()} | set(model.model_fields)
    fixed = copy.deepcopy(resource)
    ignored: set[str] = set()
    as_list: set[str] = set()
    unrecognised: set[str] = set()
    faults = _faults(error, lenient_missing)
    # A few rounds: an object read as a list may then show a fault inside it.
    for _ in range(3):
        for fault in faults:
            loc = tuple(fault["loc"])
            top = str(loc[0]) if loc else ""
            if fault["type"] == "list_type" and _wrap_in_list(fixed, loc):
                as_list.add(_path_text(loc))
            elif top not in known and fault["type"] == "extra_forbidden":
                unrecognised.add(top)
                fixed.pop(top, None)
            elif top and top.lstrip("_") in unread:  # "_note" carries note's extensions
                ignored.add(top)
                fixed.pop(top, None)
            else:
                return None
        try:
            model.model_validate(fixed)
        except ValidationError as again:
            faults = _faults(again, lenient_missing)
        except (ValueError, TypeError, RecursionError):
            return None
        else:
            faults = []
        if not faults:
            # An element first read as a list and then dropped is reported as ignored only.
            kept = {p for p in as_list if p.split(".")[0] not in ignored}
            return fixed, Adjustment(kind, tuple(sorted(ignored)), tuple(sorted(kept)),
                                     len(unrecognised))
    return None
