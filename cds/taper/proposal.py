"""Where the taper planner plugs into the supervised-taper card.

From a supervised-taper Finding this draws the taper (cds.taper.planner) and turns it
into what the card shows: the schedule for the detail, and the CDS Hooks suggestions
(replace the draft stop/cut with the taper; keep the current dose). Only draft stops and
large cuts of oral baclofen get a plan: they have a draft order the EHR can replace.
Every way a plan cannot be drawn yields a reason for the card, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cds.product import Product
from cds.taper.fhir import taper_medication_request
from cds.taper.params import TaperParams, load_taper_params
from cds.taper.planner import MAX_ADMINISTRATIONS_PER_DAY, IntrathecalNoOralPlan, plan_taper
from cds.taper.products import delivery_for, find_product, format_number
from cds.taper.render import plan_markdown
from cds.taper.suggestions import build_taper_suggestions

if TYPE_CHECKING:
    from cds.findings import Finding
    from cds.taper.planner import TaperPlan
    from rules import Knowledge

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DRAFT_EVENTS = ("stop", "cut")  # events with a draft order the card can replace


@dataclass(frozen=True)
class TaperProposal:
    """A drawn plan with its suggestions, or the reason there is none (`reason` key)."""

    plan: TaperPlan | None = None
    suggestions: list[dict] = field(default_factory=list)
    reason: str | None = None  # key into the card's taper_plan texts
    reason_detail: str = ""  # e.g. the planner's own explanation


@lru_cache(maxsize=1)
def taper_params() -> TaperParams:
    """rules/taper.yaml, read and validated once per process."""
    return load_taper_params()


def taper_proposal(finding: Finding, knowledge: Knowledge) -> TaperProposal:
    if finding.route != "oral":
        return TaperProposal(reason="not_oral")
    if finding.event.kind not in DRAFT_EVENTS or finding.draft_order is None:
        return TaperProposal(reason="no_draft_order")
    daily = finding.current_daily_dose
    if not finding.dose_known or daily is None:
        return TaperProposal(reason="dose_unknown")
    if finding.assessed_at is None:
        return TaperProposal(reason="no_clock")
    params = taper_params()
    product = planning_product(finding.product, params)
    is_cut = finding.event.kind == "cut"
    target = float(finding.target_daily_dose or 0.0) if is_cut else 0.0
    try:
        plan = plan_taper(daily, product, whole_frequency(finding.administrations_per_day),
                          finding.risk_level, finding.assessed_at.date(), params, target)
    except IntrathecalNoOralPlan as exc:
        return TaperProposal(reason="intrathecal", reason_detail=exc.advice)
    except ValueError as exc:
        # The planner's message names doses only (no patient data): safe on the card.
        return TaperProposal(reason="planner_refused", reason_detail=str(exc))
    draft = finding.draft_order
    patient_ref = finding.patient_ref or _subject_ref(draft)
    draft_ref = finding.draft_order_ref
    if patient_ref is None or draft_ref is None:
        return TaperProposal(plan=plan, reason="cannot_replace")
    request = taper_medication_request(
        plan, product, patient_ref, medication_of(draft, product),
        draft.get("requester") if isinstance(draft.get("requester"), dict) else None,
        params=params, prior_prescription=replaced_order_ref(finding),
    )
    _copy_contained_medication(draft, request)
    texts = knowledge.cards["kinds"][finding.kind]["taper_plan"]["suggestions"]
    suggestions = build_taper_suggestions(plan, request, draft_ref, is_cut, texts)
    return TaperProposal(plan=plan, suggestions=suggestions)


def planning_product(product: Product, params: TaperParams) -> Product:
    """The finding's product, or the taper table's entry for its RxCUI when the finding
    alone does not say how doses are measured (e.g. a liquid without its concentration)."""
    if delivery_for(product, params).kind != "mg" or not product.rxcui:
        return product
    return find_product(product.rxcui, params) or product


def whole_frequency(administrations_per_day: float | None) -> int | None:
    """Administrations a day as the planner takes them: whole, 1..6, else unknown."""
    if administrations_per_day is None or administrations_per_day != int(administrations_per_day):
        return None
    count = int(administrations_per_day)
    return count if 1 <= count <= MAX_ADMINISTRATIONS_PER_DAY else None


def medication_of(draft: dict, product: Product) -> dict[str, Any]:
    """The draft order's medication[x], so the taper orders the same thing."""
    for key in ("medicationCodeableConcept", "medicationReference"):
        if isinstance(draft.get(key), dict):
            return {key: draft[key]}
    concept: dict[str, Any] = {"text": product.name}
    if product.rxcui:
        concept["coding"] = [{"system": RXNORM, "code": product.rxcui, "display": product.name}]
    return {"medicationCodeableConcept": concept}


def _copy_contained_medication(draft: dict, request: dict) -> None:
    # A reference to a contained Medication ("#med") only resolves inside its own order.
    reference = (request.get("medicationReference") or {}).get("reference")
    if not isinstance(reference, str) or not reference.startswith("#"):
        return
    contained = [r for r in draft.get("contained") or []
                 if isinstance(r, dict) and r.get("id") == reference[1:]]
    if contained:
        request["contained"] = contained


def replaced_order_ref(finding: Finding) -> str | None:
    """The current order the taper takes over: the one a replacement draft names as its
    priorPrescription, or the recorded order a draft stops (same id), else the newest
    recorded order of the course."""
    recorded = [o.ref for o in finding.event.course if not o.is_draft]
    prior = ((finding.draft_order or {}).get("priorPrescription") or {}).get("reference")
    for ref in (prior, finding.draft_order_ref):
        if isinstance(ref, str) and ref in recorded:
            return ref
    if isinstance(prior, str) and prior:
        return prior
    return recorded[-1] if recorded else None


def _subject_ref(draft: dict) -> str | None:
    reference = (draft.get("subject") or {}).get("reference")
    return reference if isinstance(reference, str) else None


def plan_lines(proposal: TaperProposal, finding: Finding, texts: dict) -> list[str]:
    """Markdown lines for the card detail: the schedule table, or why there is none."""
    if proposal.plan is None:
        if proposal.reason in (None, "not_oral", "no_draft_order"):
            return []
        message = texts["no_plan"][proposal.reason].format(reason=proposal.reason_detail)
        return [f"**{texts['heading_no_plan']}**", "", " ".join(message.split())]
    plan = proposal.plan
    lines = [f"**{texts['heading']}**", "", plan_markdown(plan)]
    if plan.kind == "cut":
        lines += ["", texts["ends_at_target"].format(
            target=f"{format_number(plan.target_mg)} mg/day").strip()]
    if proposal.reason == "cannot_replace":
        lines += ["", " ".join(texts["no_plan"]["cannot_replace"].split())]
    params = taper_params()
    lines += ["", " ".join(texts["policy_note"].format(
        min_days=params.standard.min_duration_days,
        max_step=format_number(params.standard.max_step_mg_per_day),
        interval=params.standard.interval_days, high_interval=params.high.interval_days,
        high_min_days=params.high.min_duration_days).split())]
    return lines
