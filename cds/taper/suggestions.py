"""CDS Hooks 2.0 suggestions for the supervised-taper card.

The card offers at most one of (selectionBehavior "at-most-one"):
- "Replace the stop with a supervised taper" (recommended): delete the draft stop or
  cut order and create the taper MedicationRequest. Actions in one suggestion are
  applied together (both or neither), so the patient is never left with neither order.
- "Keep the current dose": delete the draft stop/cut order only.

Intrathecal baclofen gets no suggestions: there is no oral plan to create, and the
card's detail carries `intrathecal_detail()` instead (keep the pump running; reduce by
reprogramming under the pump team).
"""

from __future__ import annotations

import uuid
from typing import Any

from cds.taper.params import TaperParams
from cds.taper.planner import TaperPlan
from cds.taper.products import format_number
from cds.taper.render import plan_summary


def _relative_reference(draft_order_ref: str) -> str:
    # CDS Hooks resourceId is a relative reference ("MedicationRequest/<id>").
    return draft_order_ref if "/" in draft_order_ref else f"MedicationRequest/{draft_order_ref}"


def build_taper_suggestions(
    plan: TaperPlan, taper_request: dict[str, Any], draft_order_ref: str, is_cut: bool
) -> list[dict[str, Any]]:
    """The two suggestions for a draft stop (or large cut) of oral baclofen."""
    if is_cut != (plan.kind == "cut"):
        raise ValueError("a cut needs a plan that ends at the new dose, a stop one ending at 0")
    resource_id = _relative_reference(draft_order_ref)
    start_dose = f"{format_number(plan.start_daily_mg)} mg/day"
    if is_cut:
        target = f"{format_number(plan.target_mg)} mg/day"
        replace_label = (
            f"Replace the cut with a supervised taper to {target} over {plan.duration_days} days"
        )
        delete_text = f"Remove the draft order that cuts baclofen from {start_dose} to {target}"
        keep_text = "Remove the draft order that cuts the dose; the current order continues"
    else:
        replace_label = f"Replace the stop with a supervised taper over {plan.duration_days} days"
        delete_text = "Remove the draft order that stops baclofen at once"
        keep_text = "Remove the draft stop order; the current baclofen order continues"
    replace = {
        "label": replace_label,
        "uuid": str(uuid.uuid4()),
        "isRecommended": True,
        "actions": [
            {"type": "delete", "description": delete_text, "resourceId": resource_id},
            {
                "type": "create",
                "description": f"Order the taper (draft, for review): {plan_summary(plan)}",
                "resource": taper_request,
            },
        ],
    }
    keep = {
        "label": f"Keep the current dose ({start_dose})",
        "uuid": str(uuid.uuid4()),
        "isRecommended": False,
        "actions": [{"type": "delete", "description": keep_text, "resourceId": resource_id}],
    }
    return [replace, keep]


def intrathecal_detail(params: TaperParams) -> str:
    """What the taper card says, without suggestions, for intrathecal baclofen."""
    return params.intrathecal_advice
