"""Read a free-text sig ("1 tab PO TID", "15 mg four times daily", "5 mg every 8 hours as
needed, max 15 mg/day") into amounts the dose arithmetic can use.

A small grammar, because no maintained sig parser exists on PyPI: the words it knows
(frequencies, number words, as-needed phrases) are data in rules/terminology.yaml; this
module only finds them. Anything it cannot read stays unknown, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cds.knowledge import Knowledge

_NUMBER = r"(\d+(?:\.\d+)?|\d+\s*/\s*\d+)"
_AMOUNT = re.compile(
    _NUMBER + r"\s*(mg|milligrams?|mcg|micrograms?|ug|ml|milliliters?|millilitres?|"
    r"tabs?|tablets?|tbl|pills?|caps?|capsules?|packets?)\b(?:\s*\(\s*" + _NUMBER
    + r"\s*(mg|mcg)\s*(?:total)?\s*\))?")
_EVERY_HOURS = re.compile(r"\b(?:every|q)\s*" + _NUMBER + r"\s*(?:-\s*\d+\s*)?(?:hours?|hrs?|h)\b")
_TIMES = re.compile(r"\b" + _NUMBER + r"\s*(?:x|times)\s*(?:a|per|each|/)?\s*(?:day|daily|d)\b")
_PER_DAY_MAX = re.compile(
    _NUMBER + r"\s*(mg|mcg)\s*(?:/|per|a|in\s*24\s*h(?:ou)?rs?)\s*(?:day|d)?\b")
_UNIT_KIND = {"mg": "mg", "milligram": "mg", "milligrams": "mg", "mcg": "mcg", "microgram": "mcg",
              "micrograms": "mcg", "ug": "mcg", "ml": "ml", "milliliter": "ml",
              "milliliters": "ml", "millilitre": "ml", "millilitres": "ml"}


@dataclass(frozen=True)
class Sig:
    """What one free-text sig says. Any part may be unknown (None)."""

    amount: float | None  # per administration
    unit: str | None  # "mg", "mcg", "ml" or "unit" (tablets, packets)
    per_day: float | None
    as_needed: bool
    max_per_day_mg: float | None  # "max 15 mg/day", "up to 3 times a day" x amount in mg


def _number(text: str, knowledge: Knowledge) -> float | None:
    text = text.strip()
    if "/" in text:
        top, bottom = (part.strip() for part in text.split("/", 1))
        return float(top) / float(bottom) if float(bottom) else None
    return float(text)


def _words_to_digits(text: str, knowledge: Knowledge) -> str:
    for word, value in sorted(knowledge.sig_words["numbers"].items(), key=lambda w: -len(w[0])):
        text = re.sub(rf"\b{re.escape(word)}\b", f"{value:g}", text)
    return text


def read_sig(text: str, knowledge: Knowledge) -> Sig:
    lowered = " " + " ".join(text.lower().replace(",", " , ").split()) + " "
    as_needed = any(f" {w} " in lowered or f" {w}," in lowered
                    for w in knowledge.sig_words["as_needed"])
    padded = _words_to_digits(lowered, knowledge)
    amount = unit = None
    match = _AMOUNT.search(padded)
    if match:
        if match.group(3):  # "2 tablets (20 mg)": the stated mg wins
            amount, unit = _number(match.group(3), knowledge), _UNIT_KIND[match.group(4)]
        else:
            amount = _number(match.group(1), knowledge)
            unit = _UNIT_KIND.get(match.group(2).rstrip("s") if match.group(2) not in _UNIT_KIND
                                  else match.group(2), "unit")
    per_day = _per_day(padded, knowledge)
    max_per_day = None
    up_to = any(f" {w} " in padded for w in knowledge.sig_words["up_to"])
    for limit in _PER_DAY_MAX.finditer(padded):
        if up_to and (match is None or limit.start() != match.start()):
            value = _number(limit.group(1), knowledge)
            max_per_day = value / 1000 if limit.group(2) == "mcg" else value
    if max_per_day is None and as_needed and per_day and amount and unit == "mg":
        max_per_day = amount * per_day  # "10 mg up to three times a day as needed"
    return Sig(amount, unit, per_day, as_needed, max_per_day)


def _per_day(text: str, knowledge: Knowledge) -> float | None:
    hours = _EVERY_HOURS.search(text)
    if hours:
        every = _number(hours.group(1), knowledge)
        return 24 / every if every else None
    times = _TIMES.search(text)
    if times:
        return _number(times.group(1), knowledge)
    for phrase, value in sorted(knowledge.sig_words["per_day"].items(), key=lambda p: -len(p[0])):
        if re.search(rf"(?<![\w.]){re.escape(phrase)}(?![\w])", text):
            return value
    return None
