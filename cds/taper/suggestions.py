"""CDS Hooks 2.0 suggestions for the supervised-taper card.

The card offers at most one of (selectionBehavior "at-most-one"):
- "Replace the stop with a supervised taper" (recommended): one `update` action that turns
  the draft stop or cut order into the taper MedicationRequest (same resource id).
- "Keep the current dose": one `update` that turns the draft back into the current order
  (its medication and dosage as recorded), so the clinician is left with a signable order
  equal to the current one; a `delete` of the draft only when the current order is not
  in the request to copy.
Their wording is card text, so it lives in rules/cards.yaml (supervised-taper.taper_plan).

Why one `update` and not `delete` + `create`: real clients apply suggestions differently.
The CDS Hooks Sandbox applies only the first action it can use, and from an update or
create only the medication's text and first code (a `delete` first leaves its draft
empty while its form still shows the order); a client that applies actions one by one
and stops early would keep a cut order beside a new taper (two baclofen orders). A single
update has no order to get wrong: a client that applies all actions ends with exactly the
suggested order. Both suggested orders carry this service's identifier and a marked
medication (cds.suggested_orders), so a draft that received only the medication is read
as the suggestion accepted, not as the pill count left in it. Evidence:
docs/integrators.md, tools/sandbox-e2e, cds.suggestion_clients.

Intrathecal baclofen gets no suggestions: there is no oral plan to create, and the
card's detail carries `intrathecal_detail()` instead (keep the pump running; reduce by
reprogramming under the pump team).
"""

from __future__ import annotations

import copy
import uuid
from functools import lru_cache
from typing import Any

from cds.cards.extension import EXTENSION_KEY
from cds.suggested_orders import identifier, marked_concept
from cds.taper.params import TaperParams
from cds.taper.planner import TaperPlan
from cds.taper.products import format_number
from cds.taper.render import plan_summary


def _relative_reference(draft_order_ref: str) -> str:
    # CDS Hooks resourceId is a relative reference ("MedicationRequest/<id>").
    return draft_order_ref if "/" in draft_order_ref else f"MedicationRequest/{draft_order_ref}"


def draft_into_taper(taper_request: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """The taper as the new content of the draft order: an `update` names the resource it
    changes by its id. When the draft is the recorded order itself (a stop drafted on the
    same id), the taper replaces it in place, so it cannot also name it as prior."""
    order = dict(taper_request)
    order["id"] = resource_id.rsplit("/", 1)[-1]
    prior = (order.get("priorPrescription") or {}).get("reference")
    if prior == resource_id:
        del order["priorPrescription"]
    return order


# What a copy of the current order keeps: the regimen, not the record's bookkeeping (its
# id, status, dates of authoring, identifiers, validity and narrative belong to the old one).
_REGIMEN_FIELDS = ("resourceType", "intent", "category", "priority", "contained",
                   "medicationCodeableConcept", "medicationReference", "subject",
                   "encounter", "reasonCode", "courseOfTherapyType", "dosageInstruction",
                   "substitution")


def current_order_continued(current: dict[str, Any], resource_id: str, draft: dict[str, Any],
                            suggestion_uuid: str, codings_if_none: tuple[dict, ...] = ()
                            ) -> dict[str, Any]:
    """The draft turned back into the current order: the recorded order itself when the
    draft is that order (a stop drafted on its id), else a new order of the same regimen
    that takes it over (priorPrescription), as the clinician drafting it (requester). A
    medication known by its text alone gets `codings_if_none` (baclofen's ingredient
    codes): a client that applies a medication by its code needs one."""
    rid = resource_id.rsplit("/", 1)[-1]
    if current.get("id") == rid:
        order = copy.deepcopy(current)
    else:
        order = {k: copy.deepcopy(current[k]) for k in _REGIMEN_FIELDS if k in current}
        order.update({"id": rid, "status": "draft"})
        if isinstance(current.get("id"), str) and current["id"]:  # else it cannot be named
            order["priorPrescription"] = {"reference": f"MedicationRequest/{current['id']}"}
        if isinstance(draft.get("requester"), dict):
            order["requester"] = copy.deepcopy(draft["requester"])
        supply = current.get("dispenseRequest")
        if isinstance(supply, dict):
            kept = {k: copy.deepcopy(v) for k, v in supply.items() if k != "validityPeriod"}
            if kept:  # FHIR forbids an empty element
                order["dispenseRequest"] = kept
    concept = order.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        if not concept.get("coding") and codings_if_none:
            concept = {**concept, "coding": [dict(c) for c in codings_if_none]}
        order["medicationCodeableConcept"] = marked_concept(concept, "keep")
    order["identifier"] = [*(order.get("identifier") or []), identifier("keep", suggestion_uuid)]
    return order


@lru_cache(maxsize=1)
def default_texts() -> dict[str, str]:
    """The suggestion texts from rules/cards.yaml (card text lives with the rules)."""
    from cds.knowledge import load_knowledge

    return load_knowledge().cards["supervised-taper"].texts["taper_plan"]["suggestions"]


def build_taper_suggestions(
    plan: TaperPlan,
    taper_request: dict[str, Any],
    draft_order_ref: str,
    is_cut: bool,
    texts: dict[str, str] | None = None,
    current: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ingredient_coding: tuple[dict[str, str], ...] = (),
) -> list[dict[str, Any]]:
    """The two suggestions for a draft stop (or large cut) of oral baclofen.

    `taper_request` is the taper order (cds.taper.fhir); the recommended suggestion sends it
    as an update of `draft_order_ref` ("MedicationRequest/<id>" or a bare id). `current` is
    (the recorded order the draft replaces, the draft order) when the request holds both:
    then "keep the current dose" turns the draft back into that order."""
    if is_cut != (plan.kind == "cut"):
        raise ValueError("a cut needs a plan that ends at the new dose, a stop one ending at 0")
    texts = texts or default_texts()
    resource_id = _relative_reference(draft_order_ref)
    values = {
        "start": f"{format_number(plan.start_daily_mg)} mg/day",
        "target": f"{format_number(plan.target_mg)} mg/day",
        "days": plan.duration_days,
        "plan": plan_summary(plan),
    }
    which = "cut" if is_cut else "stop"
    replace_uuid, keep_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    taper = draft_into_taper(taper_request, resource_id)
    taper["identifier"] = [*(taper.get("identifier") or []), identifier("taper", replace_uuid)]
    replace = {
        "label": texts[f"replace_{which}"].format(**values),
        "uuid": replace_uuid,
        "isRecommended": True,
        # A stable name for governance counts: labels carry doses and durations.
        "extension": {EXTENSION_KEY: {"suggestion": "replace-with-taper"}},
        # One action, so no client can apply half of it (see the module docstring).
        "actions": [
            {"type": "update",
             "description": texts.get("update", texts["create"]).format(**values),
             "resource": taper},
        ],
    }
    keep_description = texts[f"keep_{which}"].format(**values)
    if current is not None:
        recorded, draft = current
        keep_action = {"type": "update", "description": keep_description,
                       "resource": current_order_continued(recorded, resource_id, draft,
                                                           keep_uuid, ingredient_coding)}
    else:
        keep_action = {"type": "delete", "description": keep_description,
                       "resourceId": resource_id}
    keep = {
        "label": texts["keep"].format(**values),
        "uuid": keep_uuid,
        "isRecommended": False,
        "extension": {EXTENSION_KEY: {"suggestion": "keep-current-dose"}},
        "actions": [keep_action],
    }
    return [replace, keep]


def intrathecal_detail(params: TaperParams) -> str:
    """What the taper card says, without suggestions, for intrathecal baclofen."""
    return params.intrathecal_advice
