"""The request-text patterns made linear for issue 25.1 read what they read before.

Medication strengths and concentrations (cds/facts/recognition.py), pump volumes and
concentrations (cds/facts/pump.py) and negated words (cds/knowledge/model.py) each
compared with the pattern or search they replaced, on generated texts. The time they
take is measured in bench/growth.py, never here.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from cds.facts import pump, recognition
from cds.knowledge import load_knowledge

K = load_knowledge()

OLD_CONCENTRATION = re.compile(
    r"(\d+(?:[.,]\d+)?)\s*(mg|mcg|micrograms?|ug|µg)\s*(?:/|per|in)\s*(\d+(?:\.\d+)?)?\s*(ml|millilit)")
_N = r"\d+(?:\.\d+)?"
# The multi-strength pattern of issue 23, before it was made linear: a list of numbers
# tried again from every number in it (a number starts where no digit or point precedes).
OLD_STRENGTHS = re.compile(
    rf"(?<![\d.]){_N}(?:\s*(?:,|/|&|\band\b|\bor\b)\s*{_N})*\s*mg\b(?!\s*/\s*(?:d|day|kg|24))")
OLD_VOLUME = re.compile(r"(\d+(?:\.\d+)?)\s*ml\b")
OLD_CONC = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*(mcg|micrograms?|ug|µg|mg)\s*/\s*ml")

_PIECES = st.sampled_from(["mg", "mcg", "ml", "mL", "/", "per", "in", ",", ".", " ", "x",
                           "2000", "1,000", "10", "0.5", "baclofen", "micrograms", "µg",
                           "millilitre", "(", ")", "-", "no", "fever", "not", "denies",
                           "negative for", "seizure", "seizures", "alarm", ";", "\t"])
_DIGITS = st.text("0123456789,.", min_size=1, max_size=12)
_TEXT = st.lists(st.one_of(_PIECES, _DIGITS), max_size=14).map("".join)


def _groups(pattern: re.Pattern[str], text: str):
    found = pattern.search(text)
    return found.groups() if found else None


def _old_single_strength(text: str) -> float | None:
    found = set()
    for match in OLD_STRENGTHS.finditer(text):
        found |= {float(n) for n in re.findall(_N, match.group(0))}
    return found.pop() if len(found) == 1 else None


@given(_TEXT)
@settings(max_examples=1500, deadline=None)
def test_medication_text_numbers_read_as_before(text: str) -> None:
    lowered = text.lower()
    assert _groups(recognition._CONCENTRATION, lowered) == _groups(OLD_CONCENTRATION, lowered)
    assert recognition._single_strength(lowered) == _old_single_strength(lowered)
    assert _groups(pump._VOLUME, lowered) == _groups(OLD_VOLUME, lowered)


@given(_TEXT)
@settings(max_examples=1500, deadline=None)
def test_pump_concentration_reads_as_before_unless_glued_to_a_decimal_comma(text: str
                                                                            ) -> None:
    lowered = text.lower()
    old = OLD_CONC.search(lowered)
    if old and re.search(r"\d,$", lowered[:old.start()]):
        # "1,5 mg/mL": the old pattern read 5 mg/mL; the new one reads nothing.
        return
    assert _groups(pump._CONC, lowered) == (old.groups() if old else None)


def test_a_decimal_comma_is_not_read_as_its_last_digits() -> None:
    assert pump._concentration("1,5 mg/ml") is None
    assert pump._concentration("2,000 mcg/ml") == 2.0
    assert pump._concentration("refill, 500 mcg/ml") == 0.5


def _old_matches_text(code_set, text: str) -> bool:
    padded = f" {text} "
    for found in code_set.word_pattern.finditer(padded):
        if code_set.negated is None or not code_set.negated.search(padded[:found.start()]):
            return True
    return False


WORDED = [s for s in K.code_sets.values() if s.word_pattern is not None and s.negated]
_NEGATION_TEXT = st.lists(st.one_of(
    st.sampled_from(["not", "no", "denies", "negative for", "ruled out", "without",
                     *(w for s in WORDED for w in s.words)]),
    _PIECES, st.text("abc -(", max_size=6)), max_size=20).map(" ".join)


@given(st.sampled_from(WORDED), _NEGATION_TEXT, st.sampled_from([" ", "  ", "\n", "-"]))
@settings(max_examples=2000, deadline=None)
def test_negated_words_read_as_before(code_set, text: str, joiner: str) -> None:
    text = text.replace(" ", joiner).lower()
    assert code_set.matches_text(text) == _old_matches_text(code_set, text), text
