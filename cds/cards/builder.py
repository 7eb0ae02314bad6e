"""A finding becomes a CDS Hooks 2.0 card; every sentence comes from rules/cards.yaml."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from cds.cards.extension import EXTENSION_KEY
from cds.cards.text import (
    Markdown,
    date_text,
    duration,
    end_text,
    fill,
    number,
    plain,
    summary,
    word,
)
from cds.facts.orders import Order
from cds.facts.patient import measured_text
from cds.facts.signs import Sign
from cds.findings import Finding
from cds.knowledge import Knowledge
from cds.knowledge.model import Variant
from cds.taper import proposal as taper_proposal

TAPER_KINDS = ("supervised-taper",)


def build_card(finding: Finding, knowledge: Knowledge, handout: Any = None) -> dict:
    """`handout` (cds.handout.link.CardLinks) adds the patient handout's links."""
    kind = finding.kind
    values = card_values(finding, knowledge)
    proposal = (taper_proposal.taper_proposal(finding, knowledge)
                if kind.kind in TAPER_KINDS else None)
    primary = kind.references[0][0]
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary(_first(kind.summary, finding.facts), values),
        "indicator": kind.indicator,
        "detail": detail(finding, knowledge, values, proposal),
        "source": {
            "label": knowledge.card_service["label"],
            "url": knowledge.reference_url(primary),
            "topic": {"system": knowledge.card_service["topic_system"], **kind.topic},
        },
        "links": [
            {"label": plain(f"{knowledge.references[ref].short}: {section}"),
             "url": knowledge.reference_url(ref), "type": "absolute"}
            for ref, section in kind.references
        ],
        "overrideReasons": [
            {"system": knowledge.card_service["override_system"], "code": r["code"],
             "display": r["display"]}
            for r in kind.override_reasons
        ],
        "extension": {EXTENSION_KEY: {
            "kind": kind.kind, "event": finding.facts["event"], "route": finding.route,
            "riskLevel": "high" if finding.facts["risk_high"] else "standard",
            "rules": finding.rules,
        }},
    }
    if handout is not None:
        card["links"] += handout.links(finding, proposal)
    if proposal is not None and proposal.suggestions:
        card["suggestions"] = proposal.suggestions
        card["selectionBehavior"] = "at-most-one"
    return card


def _first(variants: tuple[Variant, ...], facts: dict) -> str:
    return next(v.text for v in variants if v.applies(facts))


def _all(variants: tuple[Variant, ...], facts: dict) -> list[str]:
    return [v.text for v in variants if v.applies(facts)]


# ---------------------------------------------------------------- values


def card_values(finding: Finding, knowledge: Knowledge) -> dict[str, Any]:
    """Every placeholder value for this finding (raw: the text helpers escape them)."""
    subject = finding.subject
    facts = finding.facts
    words = knowledge.detail_texts["words"]
    event = subject.event
    now = finding.assessed_at
    unit = unit_of(subject)
    values: dict[str, Any] = {k: _show(v) for k, v in facts.items()}
    values.update({k: number(v) for k, v in knowledge.threshold_values.items()})
    dose = facts["daily_dose"] if facts["dose_known"] else None
    values["daily_dose_text"] = dose_text(dose, unit, words)
    most = facts.get("most_daily_dose") or 0.0
    values["most_dose_text"] = values["daily_dose_text"] if dose is None or most <= dose \
        else word(words["up_to"], amount=dose_text(most, unit, words))
    values["new_dose_text"] = dose_text(event.after, unit, words)
    values["previous_dose_text"] = dose_text(subject.history.previous_level, unit, words)
    values["event_verb"] = words["event_verb"][event.kind]
    values["event_phrase"] = "" if event.kind == "none" else \
        word(words["event_phrase"], event_verb=words["event_verb"][event.kind])
    if event.at is not None:
        ago = duration((now - event.at).total_seconds(), words["durations"])
        values["event_ago"] = ago
        values["event_ago_short"] = word(words["ago"], duration=ago)
        values["event_date"] = end_text(event.at, words) if event.scheduled_end \
            else date_text(event.at)
    else:
        values["event_ago"] = values["event_ago_short"] = words["unknown_time"]
        values["event_date"] = words["unknown_time"]
    values["estimated_suffix"] = words["estimated_suffix"] if event.estimated else ""
    exposure = facts["exposure_days"] if facts["exposure_known"] else None
    values["exposure"] = duration(exposure * 86400, words["durations"]) if exposure is not None \
        else words["unknown_exposure"]
    values["course_start"] = date_text(subject.course_start)[:10]
    days = round(facts["exposure_days"])
    values["exposure_days_text"] = f"{days} day" if days == 1 else f"{days} days"
    values["sign_list"] = sign_list(_headline_signs(finding))
    values["steps_text"] = steps_text(finding, words, unit)
    values["risk_level"] = words["risk_levels"]["high" if facts["risk_high"] else "standard"]
    values.update({f"{key}_evidence": text for key, text in subject.patient.evidence.items()})
    values["draft_dose_reason"] = next(
        (s.order.dose.unknown_reason for s in subject.timeline.segments
         if s.order.is_draft and not s.order.dose.known and s.order.dose.unknown_reason), "")
    values["current_dose_reason"] = next(
        (s.order.dose.unknown_reason or "" for s in subject.timeline.segments
         if s.unreadable_dose_replaced), "")
    values["hours_without_text"] = duration(facts["hours_without_baclofen"] * 3600,
                                            words["durations"])
    values["renal_evidence"] = subject.patient.evidence.get("renal_impairment", "")
    values["renal_severe_evidence"] = subject.patient.evidence.get(
        "renal_impairment_severe", values["renal_evidence"])
    values["unreadable_text"] = "; ".join(
        f'{u.reading} {number(u.value)} in "{u.unit}"' for u in subject.patient.unreadable)
    values["renal_dose_note"] = words["renal_dose_note"] if facts["renal_impairment"] else ""
    reason = words["stop_reasons"].get(event.stop_reason, words["stop_reasons"]["other"])
    values["stop_reason_text"] = (word(words["stop_reason_with_text"], reason=reason,
                                                                        text=event.stop_reason_text)
                                  if event.stop_reason_text else reason)
    values["high_interval"] = knowledge.taper.high.interval_days
    values["it_cut_percent"] = number(100 * knowledge.threshold("intrathecal_large_cut_fraction"))
    ambiguity = subject.timeline.ambiguity
    if ambiguity is not None:
        values["addition_total_text"] = dose_text(ambiguity.addition_total, unit, words)
        above = (ambiguity.addition_total or 0) > knowledge.threshold("label_max_mg_per_day") \
            and subject.route == "oral"
        values["addition_above_max"] = fill(knowledge.detail_texts["addition_above_max"],
                                            values) if above else ""
    prn = subject.timeline.prn
    values["new_dose_suffix"] = ""
    if event.kind == "omission":
        prn_max = sum(o.dose.as_needed_max or 0 for o in event.orders if o.dose.as_needed_only)
        if prn_max:
            # Our own words and a dose: kept as written (a leading space would be folded away).
            values["new_dose_suffix"] = Markdown(word(words["new_dose_as_needed"],
                amount=dose_text(prn_max, unit, words)))
    if prn is not None:
        values["prn_max_text"] = dose_text(prn.max_per_day, unit, words)
        if prn.supply_days is not None:
            use, days = "supply", prn.supply_days
        else:
            use = "unknown" if prn.regular is None else "regular" if prn.regular else "sporadic"
            days = prn.days_given
        values["prn_use_text"] = word(words["prn_use"][use], days=days, window=prn.window_days)
    pump = subject.pump
    if pump is not None:
        values["pump_alarm_text"] = pump.alarm or pump.battery_low or ""
        if pump.depletion_at is not None:
            seconds = (pump.depletion_at - now).total_seconds()
            template = words["depletion"]["past" if seconds <= 0 else "future"]
            values["depletion_when"] = word(template,
                duration=duration(seconds, words["durations"]), date=date_text(pump.depletion_at))
        if pump.last_procedure_at is not None:
            values["pump_procedure_ago"] = word(words["ago"], duration=duration(
                (now - pump.last_procedure_at).total_seconds(), words["durations"]))
    if subject.history.recent_increase_at is not None:
        values["increase_ago"] = word(words["ago"], duration=duration(
            (now - subject.history.recent_increase_at).total_seconds(), words["durations"]))
    weak = next((o for o in [*event.orders, *(s.order for s in subject.timeline.running())]
                 if o.recognition.weak), None)
    if weak is not None:
        values["weak_recognition_text"] = fill(knowledge.detail_texts["weak_recognition"], {
            "route_text": words["route_text"][weak.route],
            "recognition": weak.recognition.route_evidence})
    values["rule_titles"] = "; ".join(r.title for r in knowledge.rules if r.id in finding.rules)
    values["threshold_text"] = threshold_text(finding, knowledge)
    return values


def _show(value: Any) -> Any:
    return number(value) if isinstance(value, float) else value


def unit_of(subject: Any) -> str:
    return "ug/d" if subject.route == "intrathecal" else "mg/d"


def dose_text(amount: float | None, unit: str, words: dict) -> str:
    if amount is None:
        return words["unknown_dose"]
    return f"{number(amount)} {words['dose_units'].get(unit, unit)}"


def _headline_signs(finding: Finding) -> list[Sign]:
    subject = finding.subject
    severity = subject.severity
    if finding.kind.kind == "possible-toxicity":
        order = ("toxicity", "either")
    else:
        order = ("withdrawal", "either", "toxicity")
    ranked = sorted(subject.signs, key=lambda s: (
        order.index(s.points_to) if s.points_to in order else 9, severity[s.key] != "severe"))
    return [s for s in ranked if s.points_to in order]


def sign_list(signs: list[Sign]) -> str:
    # The short form of each label: "marked creatine kinase rise", not its explanation.
    labels = list(dict.fromkeys(s.label.split(" (")[0] for s in signs))
    if not labels:
        return ""
    if len(labels) > 2:
        return ", ".join(labels[:2]) + " and more"
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def steps_text(finding: Finding, words: dict, unit: str) -> str:
    judged = [j for j in finding.subject.history.judged if j.step.at is not None]
    recent = judged[-4:]
    parts = []
    now = finding.assessed_at
    for j in recent:
        template = words["step_being_signed"] if j.step.draft else words["step"]
        # A step being signed takes effect now, or on its own date when it lies ahead.
        when = date_text(j.step.at)[:10]
        if j.step.draft:
            when = "now" if j.step.at <= now + timedelta(hours=1) else f"on {when}"
        parts.append(word(template, before=number(j.step.before), after=number(j.step.after),
                                     unit=words["dose_units"].get(unit, unit), date=when))
    return "; ".join(parts)


_SYMBOL = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


def threshold_text(finding: Finding, knowledge: Knowledge) -> str:
    """The thresholds behind the card, as a clinician reads them: 'fever: body temperature
    ≥ 38 °C (local policy)', never an internal name."""
    parts: list[str] = []
    seen: set[str] = set()
    for sign in finding.subject.signs:
        for reading in knowledge.signs[sign.key].readings:
            if not reading.threshold or reading.threshold in seen:
                continue
            seen.add(reading.threshold)
            threshold = knowledge.thresholds[reading.threshold]
            unit = knowledge.unit_display.get(threshold.unit, threshold.unit)
            name = reading.code_set.about.split(",")[0].split(" (")[0]
            parts.append(f"{knowledge.signs[sign.key].label.split(' (')[0]}: {name} "
                         f"{_SYMBOL.get(reading.compare or '', '')} {number(threshold.value)}"
                         f"{' ' + unit if unit else ''} ({_origin(threshold)})")
    if finding.kind.kind in TAPER_KINDS or finding.kind.kind == "intrathecal-stop":
        for key in ("min_exposure_days", "large_cut_fraction" if finding.route == "oral"
                    else "intrathecal_large_cut_fraction"):
            threshold = knowledge.thresholds[key]
            value = (f"{number(100 * threshold.value)}%" if threshold.unit == "1"
                     else f"{number(threshold.value)} {_unit_words(threshold.unit)}")
            parts.append(f"{threshold.label or key}: {value} ({_origin(threshold)})")
    return "; ".join(parts) or "none"


def _origin(threshold: Any) -> str:
    return "local policy" if threshold.source.is_local_policy else "label"


def _unit_words(unit: str) -> str:
    return {"d": "days", "h": "hours", "mg/d": "mg/day"}.get(unit, unit)


# ---------------------------------------------------------------- detail


def detail(finding: Finding, knowledge: Knowledge, values: dict[str, Any],
           proposal: taper_proposal.TaperProposal | None) -> str:
    texts = knowledge.detail_texts
    headings = texts["headings"]
    subject = finding.subject
    facts = finding.facts
    lines: list[str] = [f"**{fill(headings['record'], values)}**", ""]
    record = [fill(_first_detail_event(knowledge, facts), values)]
    if subject.event.just_before is not None:
        record.append(fill(texts["lowered_line"], {
            **values, "just_before_text": dose_text(subject.event.just_before, unit_of(subject),
                                                    texts["words"])}))
    ambiguity = subject.timeline.ambiguity
    if ambiguity is not None and subject.event.kind != "none":
        record.append(fill(texts["ambiguity_duplicate" if ambiguity.kind == "duplicate"
                                 else "ambiguity"], values))
    for order in _shown_orders(finding):
        record.append(order_line(order, finding, knowledge, values))
    exposure_key = ("exposure_known" if facts["exposure_known"] else
                    "exposure_at_least" if subject.course_start else "exposure_unknown")
    record.append(fill(texts[exposure_key], values))
    if subject.timeline.prn is not None and "prn_use_text" in values:
        record.append(fill(texts["prn_line"], values))
    if "weak_recognition_text" in values:
        record.append(values["weak_recognition_text"])
    for unreadable in subject.patient.unreadable:
        record.append(fill(texts["unreadable_line"], {
            "reading": unreadable.reading, "value": number(unreadable.value),
            "unit": unreadable.unit, "date": date_text(unreadable.at)[:10]}))
    if subject.pump is not None and subject.pump.depletion_at is not None:
        record.append(fill(texts["words"]["pump_basis"], {
            "basis": subject.pump.basis, "when": values.get("depletion_when", "")}))
    lines += [f"- {line}" for line in record]
    severity = subject.severity
    groups = (
        ("severe_signs", [s for s in subject.signs if s.points_to in ("withdrawal", "either")
                          and severity[s.key] == "severe"]),
        ("toxicity_signs", [s for s in subject.signs if s.points_to == "toxicity"]),
        ("early_signs", [s for s in subject.signs if s.points_to in ("withdrawal", "either")
                         and severity[s.key] == "early"]),
    )
    groups += (("signs_before", subject.signs_before),)
    for heading, signs in groups:
        if signs:
            lines += ["", f"**{fill(headings[heading], values)}**", ""]
            lines += [f"- {fill(texts['sign_line'], {'label': s.label, 'evidence': s.evidence})}"
                      for s in signs]
            if heading == "signs_before":
                lines.append(f"- {fill(texts['signs_before_note'], values)}")
    if finding.kind.withdrawal_risk:
        lines += ["", f"**{fill(headings['risk'], values)}**", ""]
        if subject.risk_factors:
            lines += [f"- {fill(texts['risk_line'], {'label': f.label, 'evidence': f.evidence, 'source': f.source})}"  # noqa: E501
                      for f in subject.risk_factors]
        else:
            lines.append(f"- {fill(texts['no_risk_factor'], values)}")
    if facts["renal_impairment"]:
        lines.append(f"- {fill(texts['renal_line'], values)}")
    lines += ["", f"**{fill(headings['actions'], values)}**", ""]
    lines += [f"- {fill(action, values)}" for action in _all(finding.kind.actions, facts)]
    if finding.kind.kind in TAPER_KINDS and not facts["dose_known"]:
        lines += ["", fill(finding.kind.texts["dose_unknown"], values)]
    if proposal is not None:
        plan = taper_proposal.plan_lines(proposal, finding, knowledge)
        lines += ["", *plan] if plan else []
    lines += ["", f"**{fill(headings['basis'], values)}**", "",
              fill(texts["basis_line"], values)]
    return "\n".join(lines)


def _first_detail_event(knowledge: Knowledge, facts: dict) -> str:
    for variant in knowledge.detail_texts["event_variants"]:
        if variant.applies(facts):
            return variant.text
    raise AssertionError("the loader guarantees a last variant without `when`")


def _shown_orders(finding: Finding) -> list[Order]:
    subject = finding.subject
    drafts = [s.order for s in subject.timeline.segments if s.order.is_draft]
    shown = list(dict.fromkeys([*subject.event.orders, *drafts, *subject.course[-3:]]))
    if not shown:
        shown = [s.order for s in subject.timeline.running()][-3:]
    # An order that reached us only as the draft is shown once, as the draft.
    drafts = {o.ref for o in shown if o.is_draft}
    return [o for o in shown if o.is_draft or o.ref not in drafts][:5]


def order_line(order: Order, finding: Finding, knowledge: Knowledge, values: dict) -> str:
    words = knowledge.detail_texts["words"]
    dose = order.dose
    unit = dose.unit
    if dose.as_needed_only:
        amount = word(words["as_needed"], amount=dose_text(dose.as_needed_max, unit, words))
    elif dose.known and len(dose.steps) >= 2:  # one order holding dated steps
        amount = word(words["schedule_steps"], steps=" → ".join(number(x) for x in dose.steps),
                      unit=words["dose_units"].get(unit, unit))
    elif dose.known:
        amount = dose_text(dose.scheduled, unit, words)
        weight = finding.subject.patient.measurements.get("body_weight")
        if dose.per_kg and weight is not None:
            amount += word(words["per_kg"], weight=measured_text(weight, knowledge))
        if dose.administrations_per_day and order.route == "oral":
            per_day = number(dose.administrations_per_day)
            amount += ", " + word(words["frequency"].get(per_day, words["frequency"]["other"]),
                n=per_day)
    else:
        amount = word(words["dose_unknown_reason"], reason=dose.unknown_reason or "?")
    dates = [word(words["dates"]["authored"], date=date_text(order.start)[:10])
             if order.start else words["dates"]["none"]]
    # An order of several dated steps has a segment per step: the last one ends it.
    segments = [s for s in finding.subject.timeline.segments if s.order is order]
    segment = segments[-1] if segments else None
    if segment is not None and segment.end is not None:
        key = "ended_estimated" if segment.end_estimated else (
            "ends" if segment.end > finding.assessed_at else "ended")
        if segment.changed_by is not None and segment.changed_by.is_draft \
                and not segment.order.is_draft and segment.end >= finding.assessed_at:
            key = "replaced"  # ends now because the order being signed takes its place
        elif segment.changed_by is None and order.status == "active" and not order.is_draft:
            key = "taken_over"  # still active in the record; a later order took over
        when = date_text(segment.end) if segment.end_estimated else end_text(segment.end, words)
        dates.append(word(words["dates"][key], date=when))
    if segment is not None and segment.held and segment.held_since is not None:
        dates.append(word(words["dates"]["held"], date=date_text(segment.held_since)))
    if order.validity_end is not None and order.validity_end < finding.assessed_at \
            and order.status in ("active", "on-hold"):
        lapsed = date_text(order.validity_end)[:10]
        dates.append(word(words["dates"]["validity_lapsed"], date=lapsed))
    return fill(knowledge.detail_texts["order_line"], {
        "draft_word": words["order_word"]["draft" if order.is_draft else "record"],
        "status": order.status,
        "product": _product_text(order),
        "route_text": words["route_text"].get(order.route, order.route),
        "dose_text": amount,
        "dates_text": ", ".join(dates),
        "recognition": order.recognition.path,
    })


def _product_text(order: Order) -> str:
    concept = order.resource.get("medicationCodeableConcept")
    text = concept.get("text") if isinstance(concept, dict) else None
    if not isinstance(text, str):
        text = order.product.name
    return text
