"""CDS Hooks 2.0 suggestions for the supervised-taper card.

The card offers at most one of (selectionBehavior "at-most-one"):
- "Replace the stop with a supervised taper" (recommended): one `update` action that turns
  the draft stop or cut order into the taper MedicationRequest (same resource id).
- "Keep the current dose": delete the draft stop/cut order only.
Their wording is card text, so it lives in rules/cards.yaml (supervised-taper.taper_plan).

Why one `update` and not `delete` + `create`: real clients apply suggestions differently.
The CDS Hooks Sandbox applies only the first action of a suggestion (a `delete` first
leaves its draft empty: the order is lost); a client that applies actions one by one and
stops early would keep a cut order beside a new taper (two baclofen orders). A single
update has no order to get wrong: a client that applies all actions ends with exactly the
taper, and the Sandbox keeps its draft, with the taper's medication (it applies no dose
or timing from any action). Evidence: docs/integrators.md, tools/sandbox-e2e.

Intrathecal baclofen gets no suggestions: there is no oral plan to create, and the
card's detail carries `intrathecal_detail()` instead (keep the pump running; reduce by
reprogramming under the pump team).
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from cds.cards.extension import EXTENSION_KEY
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
) -> list[dict[str, Any]]:
    """The two suggestions for a draft stop (or large cut) of oral baclofen.

    `taper_request` is the taper order (cds.taper.fhir); the recommended suggestion sends it
    as an update of `draft_order_ref` ("MedicationRequest/<id>" or a bare id)."""
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
    replace = {
        "label": texts[f"replace_{which}"].format(**values),
        "uuid": str(uuid.uuid4()),
        "isRecommended": True,
        # A stable name for governance counts: labels carry doses and durations.
        "extension": {EXTENSION_KEY: {"suggestion": "replace-with-taper"}},
        # One action, so no client can apply half of it (see the module docstring).
        "actions": [
            {"type": "update",
             "description": texts.get("update", texts["create"]).format(**values),
             "resource": draft_into_taper(taper_request, resource_id)},
        ],
    }
    keep = {
        "label": texts["keep"].format(**values),
        "uuid": str(uuid.uuid4()),
        "isRecommended": False,
        "extension": {EXTENSION_KEY: {"suggestion": "keep-current-dose"}},
        "actions": [{"type": "delete", "description": texts[f"keep_{which}"].format(**values),
                     "resourceId": resource_id}],
    }
    return [replace, keep]


def intrathecal_detail(params: TaperParams) -> str:
    """What the taper card says, without suggestions, for intrathecal baclofen."""
    return params.intrathecal_advice
