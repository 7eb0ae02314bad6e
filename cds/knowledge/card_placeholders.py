"""Which placeholders a card's summary, actions and record line can fill.

cds/cards/builder.py gives most placeholders a value on every card. Some it fills only
inside one line of the detail (a sign's label and evidence, an order, a word template,
the taper texts), and some only when the subject has what they describe (a pump alarm, a
recent dose increase). Named in a summary or an action where they have no value, they
leave gaps at the bedside ("(, 0, 30 - 0 mg/day ...)"). So the loader refuses a line's
placeholder in these texts, and a subject's placeholder unless the text's `when` names
the fact that brings its value.
"""

from __future__ import annotations

import string
from typing import Any

from cds.knowledge.errors import KnowledgeError

_ORDER_LINE = "detail.order_line"
_WORDS = "the word templates of detail.words"
_TAPER = "the taper texts of a kind's taper_plan"

# placeholder -> the only texts that have its value
LINE_ONLY: dict[str, str] = {
    "label": "detail.sign_line and detail.risk_line",
    "evidence": "detail.sign_line and detail.risk_line",
    "source": "detail.risk_line",
    "order_line": "detail.earlier_line",
    "just_before_text": "detail.lowered_line",
    "draft_word": _ORDER_LINE, "status": _ORDER_LINE, "product": _ORDER_LINE,
    "dose_text": _ORDER_LINE, "dates_text": _ORDER_LINE,
    "route_text": "detail.order_line and detail.weak_recognition",
    "recognition": "detail.order_line and detail.weak_recognition",
    "addition_total_text": "detail.ambiguity", "addition_above_max": "detail.ambiguity",
    "prn_max_text": "detail.prn_line", "prn_use_text": "detail.prn_line",
    **dict.fromkeys(("duration", "n", "date", "amount", "text", "before", "after", "unit",
                     "window", "basis", "when", "steps"), _WORDS),
    **dict.fromkeys(("target", "start", "days", "plan", "reason", "min_days", "max_step",
                     "interval", "high_min_days", "form_text"), _TAPER),
}

# placeholder -> the facts of which the text's `when` must name one
NEEDS_FACT: dict[str, tuple[str, ...]] = {
    "pump_alarm_text": ("pump_alarm", "pump_battery_low"),
    "depletion_when": ("pump_refill_overdue", "pump_depletion_soon"),
    "pump_procedure_ago": ("recent_pump_procedure",),
    "increase_ago": ("recent_increase",),
    "weak_recognition_text": ("recognition_weak",),
    "renal_evidence": ("renal_impairment",),
}

_FORMATTER = string.Formatter()


def check_card_text(text: str, when: Any, where: str) -> None:
    """Refuse a placeholder this card text would show empty (text and `when` as in
    cards.yaml; the loader has already checked that every name exists)."""
    for _, name, _, _ in _FORMATTER.parse(text):
        if name in LINE_ONLY:
            raise KnowledgeError(where, f"placeholder '{{{name}}}' has a value only in "
                                        f"{LINE_ONLY[name]}, never in a card's summary, "
                                        "actions or record line")
        facts = NEEDS_FACT.get(name or "")
        if facts and not _requires_one_of(when, facts):
            raise KnowledgeError(where, f"placeholder '{{{name}}}' has a value only when "
                                        f"{' or '.join(facts)} holds: name it in this text's "
                                        "`when`")


def _requires_one_of(when: Any, facts: tuple[str, ...]) -> bool:
    """Whether the condition list `when` (all must hold) can only hold with one of `facts`."""
    if isinstance(when, str):
        return when in facts
    if isinstance(when, list):
        return any(_requires_one_of(item, facts) for item in when)
    if isinstance(when, dict) and "all" in when:
        return _requires_one_of(when["all"], facts)
    if isinstance(when, dict) and "any" in when:
        return bool(when["any"]) and all(_requires_one_of(item, facts) for item in when["any"])
    return False
