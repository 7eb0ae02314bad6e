"""CodeIndex answers what CodeSet.matches_concept answers, set by set, in one pass.

Concepts are every CodeableConcept in the clinical fixtures plus generated ones mixing
codes of rules/terminology.yaml, unknown codes, words of the sets and negations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.fixtures import list_fixtures, load_fixture
from cds.knowledge import load_knowledge
from cds.knowledge.model import CodeIndex

K = load_knowledge()
SETS = list(K.code_sets.values()) + [r.codes for r in K.risk_factors.values() if r.codes]
CODES = sorted({(system, code) for s in SETS for system, code in s.exact})
PREFIXED = sorted({(system, prefix + "9") for s in SETS for system, prefix in s.prefixes})
WORDS = sorted({w.strip() for s in SETS for w in s.words if w.strip()})


def _concepts(value: Any) -> list[dict]:
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("coding"), list) or "text" in value and len(value) <= 2:
            found.append(value)
        for item in value.values():
            found += _concepts(item)
    elif isinstance(value, list):
        for item in value:
            found += _concepts(item)
    return found


FIXTURE_CONCEPTS = [c for path in list_fixtures()
                    for c in _concepts(load_fixture(path, datetime.now(UTC)).request)]

codings = st.one_of(
    st.sampled_from(CODES + PREFIXED).map(lambda sc: {"system": sc[0], "code": sc[1]}),
    st.fixed_dictionaries({"system": st.sampled_from(["http://loinc.org", "urn:local"]),
                           "code": st.text(max_size=6)}),
    st.just("not a coding"),
)
texts = st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(["no", "not", "denies"]),
                           st.text(max_size=8)), max_size=4).map(" ".join)
concepts = st.fixed_dictionaries({}, optional={"coding": st.lists(codings, max_size=3),
                                               "text": texts})


def reference(concept: Any, codes_first: bool) -> set[int]:
    by_set = {i for i, s in enumerate(INDEX.sets) if s.matches_concept(concept)}
    if not codes_first:
        return by_set
    coded = {i for i, s in enumerate(INDEX.sets)
             if any(s.matches_coding(c) for c in (concept.get("coding") or [])
                    if isinstance(concept, dict) and isinstance(concept.get("coding"), list))}
    return coded or by_set


INDEX = CodeIndex(SETS)
FULL = CodeIndex(SETS, codes_first=False)


def test_fixture_concepts_match_as_set_by_set() -> None:
    assert len(FIXTURE_CONCEPTS) > 500
    for concept in FIXTURE_CONCEPTS:
        assert set(FULL.positions(concept)) == reference(concept, codes_first=False), concept
        assert set(INDEX.positions(concept)) == reference(concept, codes_first=True), concept


@settings(max_examples=400, deadline=None, derandomize=True)
@given(concepts)
def test_generated_concepts_match_as_set_by_set(concept: dict) -> None:
    assert set(FULL.positions(concept)) == reference(concept, codes_first=False)
    assert set(INDEX.positions(concept)) == reference(concept, codes_first=True)


def test_a_negated_word_matches_no_set() -> None:
    pregnant = INDEX.where([K.code_sets["pregnant_answer"]])
    assert pregnant <= FULL.positions({"text": "pregnant"})
    assert not pregnant & FULL.positions({"text": "not pregnant"})


@pytest.mark.parametrize(("code_set", "text", "expected"), [
    ("pump_reading_normal", "catheter broken", False),  # "ok" inside "broken"
    ("pump_battery_low", "battery good, next check period 6 months", False),  # "eri"
    ("pump_battery_low", "eri reached", True),
    ("pump_alarm", "two alarms active", True),  # a plural still counts
    ("pump_alarm", "no alarms", False),  # negated
])
def test_words_match_whole(code_set: str, text: str, expected: bool) -> None:
    assert K.code_sets[code_set].matches_text(text) is expected


@settings(max_examples=200, deadline=None, derandomize=True)
@given(concepts)
def test_a_remembered_answer_is_the_answer(concept: dict) -> None:
    """The second ask of a concept is answered from the memo: it must not differ."""
    for index, codes_first in ((INDEX, True), (FULL, False)):
        first = set(index.positions(concept))
        assert set(index.positions(dict(concept))) == first == reference(concept, codes_first)


def test_concepts_that_cannot_be_remembered_are_still_answered() -> None:
    # A list where a string belongs (hostile or broken input) makes no memo key.
    word = next(w for w in WORDS if len(w) > 3)
    for concept in ({"text": [word]}, {"coding": [{"system": ["x"], "code": "1"}]},
                    {"coding": [{"system": "urn:local", "code": "1", "display": {"a": 1}}],
                     "text": word}, {"coding": "not a list", "text": word}):
        assert set(FULL.positions(concept)) == reference(concept, codes_first=False), concept


@pytest.mark.parametrize("coding", [
    {"system": ["http://loinc.org"], "code": "8310-5"}, {"system": "http://loinc.org",
                                                          "code": {"a": 1}},
    {"system": None, "code": "8310-5"}, {"system": 7, "code": 7}])
def test_a_lone_coding_that_is_not_text_matches_nothing(coding: dict) -> None:
    # The one-lookup path must not hash it (a list is unhashable): such a coding matches
    # no set, in an index with ICD-10-CM prefix sets and in one without.
    without_prefixes = CodeIndex([s for s in SETS if not s.prefixes])
    concept = {"coding": [coding]}
    assert set(INDEX.positions(concept)) == reference(concept, codes_first=True) == set()
    assert set(without_prefixes.positions(concept)) == set()


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import cds.knowledge.model as model

    monkeypatch.setattr(model, "MEMO_SIZE", 50)
    index = CodeIndex(SETS)
    for n in range(500):
        index.positions({"coding": [{"system": "urn:local", "code": str(n)}],
                         "text": f"reading {n}"})
        assert len(index._memo) <= 50
