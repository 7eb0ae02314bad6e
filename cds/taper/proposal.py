"""Where the taper planner plugs into the supervised-taper card.

From a supervised-taper finding with a draft order to act on (a draft stop, cut or fast
step of oral baclofen) this draws the taper and turns it into what the card shows: the
schedule for the detail, and the CDS Hooks suggestions. A patient who cannot take
tablets by mouth gets the plan in the tube liquid of rules/taper.yaml. Every way a plan
cannot be drawn yields a reason for the card, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cds.cards.text import Markdown, fill
from cds.facts.orders import Order
from cds.product import Product
from cds.suggested_orders import RXNORM, marked_concept
from cds.taper.fhir import taper_medication_request
from cds.taper.planner import MAX_ADMINISTRATIONS_PER_DAY, IntrathecalNoOralPlan, plan_taper
from cds.taper.products import delivery_for, find_product, format_number
from cds.taper.render import plan_markdown
from cds.taper.suggestions import build_taper_suggestions

if TYPE_CHECKING:
    from cds.findings import Finding
    from cds.knowledge import Knowledge
    from cds.taper.planner import TaperPlan

PLANNED_EVENTS = ("stop", "cut", "fast-step")  # events with a draft the card can replace


@dataclass(frozen=True)
class TaperProposal:
    """A drawn plan with its suggestions, or the reason there is none (`reason` key)."""

    plan: TaperPlan | None = None
    suggestions: list[dict] = field(default_factory=list)
    reason: str | None = None  # key into the card's taper_plan.no_plan texts
    reason_detail: str = ""  # e.g. the planner's own explanation
    via_tube: bool = False


def _draft(finding: Finding) -> Order | None:
    event = finding.subject.event
    return next((o for o in event.orders if o.is_draft), None)


def taper_proposal(finding: Finding, knowledge: Knowledge) -> TaperProposal:
    subject = finding.subject
    event = subject.event
    facts = finding.facts
    if finding.route != "oral" or not event.draft or event.kind not in PLANNED_EVENTS:
        return TaperProposal(reason="not_planned")
    draft = _draft(finding)
    if draft is None:
        return TaperProposal(reason="not_planned")
    daily = event.before
    if not facts["dose_known"] or daily is None:
        return TaperProposal(reason="dose_unknown")
    ambiguity = subject.timeline.ambiguity
    if ambiguity is not None and ambiguity.kind == "duplicate":
        # Under the one-regimen reading the patient takes less than the taper would start at.
        return TaperProposal(reason="ambiguous_total",
                             reason_detail=f"{format_number(daily)} mg/day")
    params = knowledge.taper
    # The tube only when one is on record: trouble swallowing alone keeps the mouth route
    # (a liquid or granules), and the patient's own form is kept whenever it can go by tube.
    via_tube = bool(facts["feeding_tube"]) or _tube_route_of(subject, knowledge) is not None
    product = _planning_product(subject, params, via_tube)
    target = float(event.after or 0.0)
    risk = "high" if facts["risk_high"] else "standard"
    frequency = _whole_frequency(_administrations(subject))
    try:
        plan = plan_taper(daily, product, frequency, risk, finding.assessed_at.date(), params,
                          target)
    except IntrathecalNoOralPlan as exc:
        return TaperProposal(reason="not_planned", reason_detail=exc.advice)
    except ValueError as exc:
        # The planner's message names doses only (no patient data): safe on the card.
        return TaperProposal(reason="planner_refused", reason_detail=str(exc))
    patient_ref = finding.patient_ref or _subject_ref(draft.resource)
    draft_ref = draft.ref if not draft.ref.startswith("#") else None
    if patient_ref is None or draft_ref is None:
        return TaperProposal(plan=plan, reason="cannot_replace", via_tube=via_tube)
    request = taper_medication_request(
        plan, product, patient_ref, _medication(plan, product, draft, params, via_tube),
        draft.resource.get("requester") if isinstance(draft.resource.get("requester"), dict)
        else None, params=params, prior_prescription=_replaced(subject, draft),
        route=_tube_route(subject, knowledge) if via_tube else params.oral_route)
    texts = finding.kind.texts["taper_plan"]["suggestions"]
    is_cut = plan.kind == "cut"
    suggestions = build_taper_suggestions(plan, request, draft_ref, is_cut, texts,
                                          _current(subject, draft), params.ingredient_coding)
    return TaperProposal(plan=plan, suggestions=suggestions, via_tube=via_tube)


def _administrations(subject: Any) -> float | None:
    running = [s.order for s in subject.timeline.segments if s.order.dose.administrations_per_day
               and not s.order.is_draft]
    return running[-1].dose.administrations_per_day if running else None


def _tube_route_of(subject: Any, knowledge: Knowledge) -> dict[str, str] | None:
    """The enteral tube route the patient's own baclofen order is coded with, if any."""
    tube = knowledge.code_sets["route_enteral_tube"]
    for order in [s.order for s in subject.timeline.segments] + list(subject.event.orders):
        for dosage in order.resource.get("dosageInstruction") or []:
            route = dosage.get("route") if isinstance(dosage, dict) else None
            for coding in (route.get("coding") or []) if isinstance(route, dict) else []:
                if tube.matches_coding(coding):
                    return {k: coding[k] for k in ("system", "code", "display") if k in coding}
    return None


def _tube_route(subject: Any, knowledge: Knowledge) -> dict[str, str]:
    """The tube route: the one the patient's order already names, else a nasal tube's when
    the tube on record goes through the nose, else the default (gastrostomy)."""
    params = knowledge.taper
    own = _tube_route_of(subject, knowledge)
    if own is not None:
        return own
    evidence = subject.patient.evidence.get("feeding_tube", "").lower()
    if params.nasal_tube_route and any(w in evidence for w in params.nasal_tube_words):
        return params.nasal_tube_route
    return params.tube_route


def _planning_product(subject: Any, params: Any, via_tube: bool) -> Product:
    """The product the taper is drawn in: the course's own product (granules and liquids
    go by tube as they are), the tube liquid in place of tablets when a tube is used, or
    the product table's entry when the order alone does not say how doses are measured."""
    orders = [s.order for s in subject.timeline.segments if not s.order.is_draft]
    product = orders[-1].product if orders else subject.event.orders[0].product
    if via_tube and not (product.is_liquid or product.form == "granules"):
        return _tube_product(params)
    if delivery_for(product, params).kind != "mg" or not product.rxcui:
        return product
    return find_product(product.rxcui, params) or product


def _tube_product(params: Any) -> Product:
    entry = params.product(params.tube_product_id)
    return Product(name=entry.name, form=entry.form, route="oral",  # type: ignore[arg-type]
                   concentration_mg_per_ml=entry.concentration_mg_per_ml,
                   rxcui=entry.codes[0].rxcui if entry.codes else None)


def _whole_frequency(per_day: float | None) -> int | None:
    """Administrations a day as the planner takes them: whole, 1..6, else unknown."""
    if per_day is None or per_day != int(per_day):
        return None
    count = int(per_day)
    return count if 1 <= count <= MAX_ADMINISTRATIONS_PER_DAY else None


def _medication(plan: TaperPlan, product: Product, draft: Order, params: Any, via_tube: bool
                ) -> dict[str, Any]:
    """What the taper orders: tablets at ingredient level (the dose in mg, one order cannot
    name one product per strength); a liquid by its own code (one concentration). RxNorm
    coded first, the text marked as this service's taper (cds.suggested_orders)."""
    ingredient = [dict(c) for c in params.ingredient_coding]
    if plan.delivery.kind == "liquid":
        codings = [{"system": RXNORM, "code": product.rxcui, "display": product.name}] \
            if product.rxcui else ingredient
        concept = {"coding": codings, "text": product.name}
    else:
        concept = {"coding": ingredient,
                   "text": f"baclofen oral {plan.delivery.kind} ({plan.delivery.description})"}
    return {"medicationCodeableConcept": marked_concept(concept, "taper")}


def _current(subject: Any, draft: Order) -> tuple[dict, dict] | None:
    """(the recorded order the draft replaces, the draft), for "keep the current dose"."""
    ref = _replaced(subject, draft)
    recorded = next((o for o in subject.course if o.ref == ref and not o.is_draft), None)
    return (recorded.resource, draft.resource) if recorded is not None else None


def _replaced(subject: Any, draft: Order) -> str | None:
    """The recorded order the taper takes over: the one the draft names, else the newest
    recorded order of the course."""
    recorded = [o.ref for o in subject.course if not o.is_draft]
    for ref in (draft.prior_ref, draft.ref):
        if ref in recorded:
            return ref
    return recorded[-1] if recorded else draft.prior_ref


def _subject_ref(resource: dict) -> str | None:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    return reference if isinstance(reference, str) else None


def plan_lines(proposal: TaperProposal, finding: Finding, knowledge: Knowledge) -> list[str]:
    """Markdown lines for the card detail: the schedule table, or why there is none."""
    texts = finding.kind.texts["taper_plan"]
    headings = knowledge.detail_texts["headings"]
    if proposal.plan is None:
        if proposal.reason in (None, "not_planned"):
            return []
        message = fill(texts["no_plan"][proposal.reason], {"reason": proposal.reason_detail,
                                                           "start": proposal.reason_detail})
        return [f"**{fill(headings['no_plan'], {})}**", "", message]
    plan = proposal.plan
    lines = [f"**{fill(headings['plan'], {})}**", "", Markdown(plan_markdown(plan))]
    if plan.kind == "cut":
        lines += ["", fill(texts["ends_at_target"],
                           {"target": f"{format_number(plan.target_mg)} mg/day"})]
    if proposal.via_tube:
        lines += ["", fill(texts["via_tube"], {})]
    if plan.delivery.kind in ("tablet", "granules"):
        lines += ["", fill(texts["order_note"], {"form_text": plan.delivery.description})]
    if proposal.reason == "cannot_replace":
        lines += ["", fill(texts["no_plan"]["cannot_replace"], {})]
    params = knowledge.taper
    lines += ["", fill(texts["policy_note"], {
        "min_days": params.standard.min_duration_days,
        "max_step": format_number(params.standard.max_step_mg_per_day),
        "interval": params.standard.interval_days, "high_interval": params.high.interval_days,
        "high_min_days": params.high.min_duration_days})]
    return lines


