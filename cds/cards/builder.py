"""Findings become CDS Hooks 2.0 cards, with texts from rules/cards.yaml."""

from __future__ import annotations

import uuid

from cds.cards.extension import EXTENSION_KEY
from cds.facts.orders import BaclofenOrder
from cds.facts.signs import Sign
from cds.facts.timeutil import fmt_date, fmt_datetime
from cds.findings import (
    KIND_EMERGENCY,
    KIND_INTRATHECAL_EARLY_SIGNS,
    KIND_INTRATHECAL_STOP,
    KIND_SUPERVISED_TAPER,
    Finding,
)
from cds.taper import proposal as taper
from cds.taper.suggestions import intrathecal_detail
from rules import Knowledge

SUMMARY_LIMIT = 139  # the spec requires fewer than 140 characters
UNIT_TEXT = {"mg/d": "mg/day", "ug/d": "mcg/day"}


def build_card(finding: Finding, knowledge: Knowledge) -> dict:
    texts = knowledge.cards
    kind_text = texts["kinds"][finding.kind]
    source = texts["source"]
    # One plan per card: the detail's table and the suggestions come from the same draw.
    proposal = (taper.taper_proposal(finding, knowledge)
                if finding.kind == KIND_SUPERVISED_TAPER else None)
    card: dict = {
        "uuid": str(uuid.uuid4()),
        "summary": summary_for(finding, knowledge),
        "indicator": kind_text["indicator"],
        "detail": detail_for(finding, knowledge, proposal),
        "source": {
            "label": source["label"],
            "url": source["url"],
            "topic": {"system": source["topic_system"], **kind_text["topic"]},
        },
        "links": [
            {"label": texts["references"][ref]["label"], "url": texts["references"][ref]["url"],
             "type": "absolute"}
            for ref in kind_text["references"]
        ],
        "extension": {EXTENSION_KEY: {
            "kind": finding.kind, "event": finding.event.kind, "route": finding.route,
            "riskLevel": finding.risk_level,
        }},
    }
    if "override_reasons" in kind_text:
        card["overrideReasons"] = [
            {"system": kind_text["override_system"], "code": r["code"], "display": r["display"]}
            for r in kind_text["override_reasons"]
        ]
    if proposal is not None and proposal.suggestions:
        card["suggestions"] = proposal.suggestions
        card["selectionBehavior"] = "at-most-one"
    return card


# ---------------------------------------------------------------- summary


def summary_for(finding: Finding, knowledge: Knowledge) -> str:
    texts = knowledge.cards
    kind_text = texts["kinds"][finding.kind]
    event = finding.event
    template = kind_text["summary"]
    if finding.kind in (KIND_EMERGENCY, KIND_INTRATHECAL_EARLY_SIGNS) and event.kind == \
            "intrathecal":
        template = kind_text.get("summary_intrathecal", template)
    elif finding.kind == KIND_EMERGENCY and finding.risk.toxicity_confounders:
        template = kind_text.get("summary_toxicity", template)
    if finding.kind == KIND_SUPERVISED_TAPER and event.kind == "omission":
        template = kind_text.get("summary_omission", template)
    cut = event.cut_fraction
    values = {
        "event": texts["events"][event.kind].format(cut_percent=round((cut or 0) * 100)),
        "sign_list": sign_list(finding.severe_signs or finding.early_signs),
        "exposure": exposure_text(event.exposure_days),
        "dose": dose_text(event.current_daily, event.dose_unit),
    }
    text = template.format(**values)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def sign_list(signs: list[Sign]) -> str:
    labels = list(dict.fromkeys(s.label for s in signs))
    if not labels:
        return "no signs"
    if len(labels) > 3:
        return ", ".join(labels[:3]) + " and more"
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def exposure_text(days: float | None) -> str:
    if days is None:
        return "an unknown time"
    if days < 14:
        return f"{days:.0f} days"
    if days < 60:
        return f"{days / 7:.0f} weeks"
    if days < 730:
        return f"{days / 30.44:.0f} months"
    return f"{days / 365.25:.0f} years"


def dose_text(amount: float | None, unit: str) -> str:
    if amount is None:
        return "an unknown dose"
    return f"{amount:g} {UNIT_TEXT.get(unit, unit)}"


# ---------------------------------------------------------------- detail (GFM markdown)


def detail_for(finding: Finding, knowledge: Knowledge,
               proposal: taper.TaperProposal | None = None) -> str:
    kind_text = knowledge.cards["kinds"][finding.kind]
    event = finding.event
    lines: list[str] = ["**What the record shows**", ""]
    lines += [f"- {line}" for line in _event_lines(finding)]
    if finding.severe_signs:
        lines += ["", "**Withdrawal signs**", ""]
        lines += [f"- {s.label}: {s.evidence}" for s in finding.severe_signs]
    if finding.early_signs:
        lines += ["", "**Early or minor signs**", ""]
        lines += [f"- {s.label}: {s.evidence}" for s in finding.early_signs]
    lines += ["", f"**Risk: {finding.risk_level}**", ""]
    if finding.risk_factors:
        lines += [f"- {f.label}: {f.evidence} (source: {f.source})" for f in finding.risk_factors]
    else:
        lines.append("- no listed risk factor found in the record")
    if finding.risk.toxicity_confounders and finding.kind == KIND_EMERGENCY:
        evidence = "; ".join(f.evidence for f in finding.risk.toxicity_confounders)
        lines += ["", "**Consider baclofen toxicity**", "",
                  kind_text["toxicity_note"].format(renal_evidence=evidence).strip()]
    elif finding.risk.toxicity_confounders:
        evidence = "; ".join(f.evidence for f in finding.risk.toxicity_confounders)
        lines += ["", f"Renal impairment is recorded ({evidence}): baclofen accumulates, so "
                  "confusion or drowsiness may be toxicity rather than withdrawal."]
    lines += ["", "**What to do**", ""]
    lines += [f"- {a}" for a in _actions(finding, kind_text)]
    if finding.kind == KIND_SUPERVISED_TAPER and not event.dose_known:
        lines += ["", kind_text["dose_unknown_note"].strip()]
    if proposal is not None:
        plan = taper.plan_lines(proposal, finding, kind_text["taper_plan"])
        lines += ["", *plan] if plan else []
    if finding.kind == KIND_INTRATHECAL_STOP:
        # No oral schedule for a pump: the planner's advice, from rules/taper.yaml.
        lines += ["", f"**{kind_text['reduction_heading']}**", "",
                  intrathecal_detail(taper.taper_params())]
    lines += ["", "**Sources**", ""]
    for ref in kind_text["references"]:
        item = knowledge.cards["references"][ref]
        lines.append(f"- [{item['label']}]({item['url']})")
    lines.append(f"- Thresholds: {_threshold_note(finding, knowledge)}")
    return "\n".join(lines)


def _actions(finding: Finding, kind_text: dict) -> list[str]:
    if finding.kind == KIND_EMERGENCY and finding.route == "intrathecal":
        return kind_text["actions_intrathecal"]
    if finding.kind == KIND_SUPERVISED_TAPER and finding.event.kind == "omission":
        return kind_text["actions_omission"] + kind_text["actions"][-1:]
    return kind_text["actions"]


def _event_lines(finding: Finding) -> list[str]:
    event = finding.event
    lines: list[str] = []
    dose = dose_text(event.current_daily, event.dose_unit)
    if event.kind == "stop":
        lines.append(f"Draft order stops baclofen; current dose {dose}.")
    elif event.kind == "cut":
        lines.append(f"Draft order cuts baclofen from {dose} to "
                     f"{dose_text(event.target_daily, event.dose_unit)} in one step.")
    elif event.kind == "ended":
        lines.append(f"Baclofen order ended {fmt_date(event.at)} with no baclofen since; "
                     f"last dose {dose}.")
    elif event.kind == "omission":
        lines.append(f"Home baclofen ({dose}) is active but not among this encounter's orders.")
    else:
        lines.append(f"Intrathecal baclofen is active ({dose}); pump or catheter failure "
                     "leaves no order behind.")
    for order in (event.evidence or event.course)[:3]:
        lines.append(_order_line(order))
    shown = {o.ref for o in event.evidence}
    earlier = [o for o in event.course if o.ref not in shown][-3:]
    lines += [f"Earlier: {_order_line(o)}" for o in earlier]
    if event.exposure_days is not None:
        lines.append(f"On baclofen about {event.exposure_days:.0f} days "
                     f"(since {fmt_date(min(o.start for o in event.course if o.start))}).")
    else:
        lines.append("How long baclofen has been taken is not recorded.")
    return lines


def _order_line(order: BaclofenOrder) -> str:
    product = order.product
    dose = dose_text(order.dose.amount, order.dose.unit)
    if order.dose.administrations_per_day:
        dose += f", {order.dose.administrations_per_day:g} times a day"
    if order.dose.as_needed:
        dose += ", as needed (counted at its maximum)"
    if not order.dose.known and order.dose.unknown_reason:
        dose += f" ({order.dose.unknown_reason})"
    draft = "draft " if order.is_draft else ""
    dates = f"authored {fmt_date(order.start)}" if order.start else "no date"
    if order.end:
        dates += f", ends {fmt_datetime(order.end)}"
    return (f"{draft}{order.ref} ({order.status}): {product.name}, {order.route} route, "
            f"{dose}; {dates}; recognised by {order.recognition.match_path}.")


def _threshold_note(finding: Finding, knowledge: Knowledge) -> str:
    keys = ["min_exposure_days", "large_cut_fraction", "high_dose_mg_per_day"]
    if finding.kind in (KIND_EMERGENCY, KIND_INTRATHECAL_EARLY_SIGNS, KIND_INTRATHECAL_STOP):
        keys = ["fever_celsius", "hypotension_systolic_mmhg", "recent_sign_hours"]
    parts = [f"{k} = {knowledge.threshold(k):g} ({knowledge.threshold_meta[k]['source']})"
             for k in keys]
    return "; ".join(parts) + "."
