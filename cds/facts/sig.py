"""Read a free-text sig ("1 tab PO TID", "15 mg four times daily", "5 mg every 8 hours as
needed, max 15 mg/day") into amounts the dose arithmetic can use.

A small grammar, because no maintained sig parser exists on PyPI: the words it knows
(frequencies, number words, as-needed phrases) are data in rules/terminology.yaml; this
module only finds them. A sig is read clause by clause ("10 mg every morning and 20 mg
at bedtime"): scheduled clauses add up, an as-needed clause beside them adds nothing
scheduled. Anything it cannot read stays unknown, never guessed.

Every pattern runs in time linear in the sig (issue 25.1: a sig of 32,000 digits took
100 s). A search tries each start position in turn, so a pattern whose first element is
an unbounded run of digits rescans the rest of a digit run from every position inside it
(quadratic). The patterns that are not anchored by a word or a word boundary therefore
start only where no digit precedes: a match starting inside a digit run would also match
from the run's start, one position earlier (the run's digits all fit the same number), so
this changes no reading, and each run is scanned from one position only.
tests/unit/test_sig_linear.py holds the readings to the reader before the change;
bench/growth.py shows the time growing linearly at 1k, 10k and 100k characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cds.knowledge import Knowledge

_NUMBER = r"(\d*\.\d+|\d+(?:\.\d+)?|\d+\s*/\s*\d+)"
_UNIT = (r"(mg|milligrams?|mcg|micrograms?|ug|ml|milliliters?|millilitres?|tabs?|tablets?|tbl|"
         r"pills?|caps?|capsules?|packets?)")
# A sig longer than this is not read (its dose stays unknown): a sig is a line or two,
# and the bound keeps the work per resource small whatever a client sends.
MAX_SIG_CHARS = 1000
_RUN_START = r"(?<!\d)"  # see the module docstring
_AMOUNT = re.compile(
    _RUN_START + r"(?:" + _NUMBER + r"\s*x\s*)?" + _NUMBER + r"\s*" + _UNIT
    + r"\b(?:\s*\(\s*" + _NUMBER + r"\s*(mg|mcg)\s*(?:total)?\s*\))?")
_EVERY_HOURS = re.compile(r"\b(?:every|q)\s*" + _NUMBER
                          + r"\s*(?:-\s*\d+\s*)?(?:hours?|hrs?|h)\b")
_TIMES = re.compile(r"\b" + _NUMBER + r"\s*(?:\(\s*\d+\s*\)\s*)?(?:x|times)\s*(?:a|per|each|/)?"
                    r"\s*(?:day|daily|d)\b")
_PER_DAY_AMOUNT = re.compile(_RUN_START + _NUMBER + r"\s*(mg|mcg|ug)\s*(?:/\s*|per\s+|a\s+|"
                             r"in\s*24\s*h(?:ou)?rs?\s*)(?:day|d)\b")
_CLAUSES = re.compile(r"\s+and\s+|;")
_PER_KG = re.compile(r"\s*(?:/|per)\s*kg\b")  # right after an amount: "0.3 mg/kg"
_UNIT_KIND = {"mg": "mg", "milligram": "mg", "mcg": "mcg", "microgram": "mcg", "ug": "mcg",
              "ml": "ml", "milliliter": "ml", "millilitre": "ml"}


@dataclass(frozen=True)
class Sig:
    """What one free-text sig says. Any part may be unknown (None)."""

    amount: float | None  # per administration
    unit: str | None  # "mg", "mcg", "ml" or "unit" (tablets, packets)
    per_day: float | None
    as_needed: bool
    max_per_day_mg: float | None  # "max 15 mg/day", or "up to 3 times a day" x mg amount
    per_kg: bool = False  # the amount is per kg of body weight ("0.3 mg/kg")


@dataclass(frozen=True)
class _Clause:
    amount: float | None
    unit: str | None
    per_day: float | None
    as_needed: bool
    limit_mg: float | None
    per_kg: bool = False


def _number(text: str) -> float | None:
    text = text.strip()
    if "/" in text:
        top, bottom = (part.strip() for part in text.split("/", 1))
        return float(top) / float(bottom) if float(bottom) else None
    return float(text)


def _unit_kind(word: str) -> str:
    singular = word[:-1] if word.endswith("s") and word[:-1] in _UNIT_KIND else word
    return _UNIT_KIND.get(singular, "unit")


def _words_to_digits(text: str, knowledge: Knowledge) -> str:
    for pattern, digits in _number_words(tuple(knowledge.sig_words["numbers"].items())):
        text = pattern.sub(digits, text)
    return text


@lru_cache(maxsize=8)
def _number_words(numbers: tuple[tuple[str, float], ...]) -> list[tuple[re.Pattern[str], str]]:
    """Each number word as a compiled whole-word pattern with its digits, longest word
    first, applied one after another: an earlier replacement can complete a later word
    ("1/two" -> "1/2" -> "0.5"), so they are not folded into one pattern."""
    words = sorted(numbers, key=lambda item: -len(item[0]))
    return [(re.compile(rf"(?<![\w.]){re.escape(word)}(?![\w/])"), f"{value:g}")
            for word, value in words]


def read_sig(text: str, knowledge: Knowledge) -> Sig:
    if len(text) > MAX_SIG_CHARS:
        return Sig(None, None, None, False, None)
    return read_sig_text(text, knowledge)


def read_sig_text(text: str, knowledge: Knowledge) -> Sig:
    """The reading without the length bound (bench/growth.py times the patterns alone)."""
    lowered = " ".join(text.lower().replace(",", " , ").split())
    lowered = _words_to_digits(lowered, knowledge)  # before "and" splits "one and a half"
    clauses = [_clause(f" {part.strip()} ", knowledge) for part in _CLAUSES.split(lowered)
               if part.strip()]
    if not clauses:
        return Sig(None, None, None, False, None)
    scheduled = [c for c in clauses if not c.as_needed and c.amount is not None]
    as_needed = [c for c in clauses if c.as_needed]
    limit = next((c.limit_mg for c in clauses if c.limit_mg is not None), None)
    if len(scheduled) > 1:
        return _combined(scheduled, limit)
    if scheduled:
        first = scheduled[0]
        return Sig(first.amount, first.unit, first.per_day, False, limit, first.per_kg)
    if as_needed:
        first = as_needed[0]
        cap = limit
        if cap is None and first.per_day and first.amount is not None and first.unit == "mg" \
                and not first.per_kg:
            cap = first.amount * first.per_day  # "10 mg up to three times a day as needed"
        return Sig(first.amount, first.unit, first.per_day, True, cap, first.per_kg)
    first = clauses[0]
    return Sig(first.amount, first.unit, first.per_day, False, limit, first.per_kg)


def _combined(clauses: list[_Clause], limit: float | None) -> Sig:
    """'10 mg every morning and 20 mg at bedtime': 30 mg a day in two administrations."""
    units = {(c.unit, c.per_kg) for c in clauses}
    if len(units) != 1 or any(c.per_day is None for c in clauses):
        return Sig(None, None, None, False, limit)  # parts that cannot be added: unknown
    per_day = sum(c.per_day for c in clauses)  # type: ignore[misc]
    total = sum(c.amount * c.per_day for c in clauses)  # type: ignore[operator]
    unit, per_kg = units.pop()
    return Sig(total / per_day, unit, per_day, False, limit, per_kg)


def _clause(text: str, knowledge: Knowledge) -> _Clause:
    as_needed = any(f" {w} " in text or f" {w}," in text for w in knowledge.sig_words["as_needed"])
    padded = text
    up_to = any(f" {w} " in padded for w in knowledge.sig_words["up_to"])
    limit = None
    if up_to:
        for found in _PER_DAY_AMOUNT.finditer(padded):
            value = _number(found.group(1))
            limit = value / 1000 if found.group(2) in ("mcg", "ug") and value else value
    daily = None if up_to else _PER_DAY_AMOUNT.search(padded)
    if daily is not None:  # "400 mcg/day continuous", "30 mg per day"
        return _Clause(_number(daily.group(1)), _UNIT_KIND[daily.group(2)], 1.0, as_needed,
                       limit)
    amount = unit = None
    per_kg = False
    match = _AMOUNT.search(padded)
    if match:
        per_kg = bool(_PER_KG.match(padded, match.end()))
        count = _number(match.group(1)) if match.group(1) else 1.0
        if match.group(4):  # "2 tablets (20 mg)": the stated mg wins
            amount, unit = _number(match.group(4)), _UNIT_KIND[match.group(5)]
        else:
            base = _number(match.group(2))
            amount = base * count if base is not None and count is not None else None
            unit = _unit_kind(match.group(3))
    return _Clause(amount, unit, _per_day(padded, knowledge), as_needed, limit, per_kg)


def _per_day(text: str, knowledge: Knowledge) -> float | None:
    hours = _EVERY_HOURS.search(text)
    if hours:
        every = _number(hours.group(1))
        return 24 / every if every else None
    times = _TIMES.search(text)
    if times:
        return _number(times.group(1))
    for pattern, value in _per_day_phrases(tuple(knowledge.sig_words["per_day"].items())):
        if pattern.search(text):
            return value
    return None


@lru_cache(maxsize=8)
def _per_day_phrases(phrases: tuple[tuple[str, float], ...]
                     ) -> list[tuple[re.Pattern[str], float]]:
    """Each frequency phrase as a compiled whole-word pattern, longest phrase first."""
    ordered = sorted(phrases, key=lambda p: -len(p[0]))
    return [(re.compile(rf"(?<![\w.]){re.escape(phrase)}(?![\w])"), value)
            for phrase, value in ordered]
