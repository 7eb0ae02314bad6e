"""Cards a clinician reads in a hurry (issue 22, item 10): every card of every fixture is
free of internal names, UCUM codes, doubled words and '1 days'."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from cds.assessment import ClinicalEngine
from cds.fixtures import list_fixtures, load_fixture
from cds.knowledge import load_knowledge
from tests.support.fixtures import clinical_data

K = load_knowledge()
ENGINE = ClinicalEngine(K)
NOW = datetime.now(UTC)
UNWANTED = {
    "an internal name": re.compile(r"\b[a-z]+_[a-z_]+\b"),
    "a rules file": re.compile(r"rules/|\.yaml\b"),
    "a UCUM code": re.compile(r"\d (Cel|\[degF\])\b|mm\[Hg\]|\{score\}|\{1\.73_m2\}"),
    "a doubled word": re.compile(r"\b([a-z]{2,}) \1\b", re.IGNORECASE),
    "a plural of one": re.compile(r"\b1 (minutes|hours|days|weeks|months|years)\b"),
    "how it was recognised": re.compile(r"recognised by"),
}


def _cards(path) -> list[dict]:
    request = load_fixture(path, NOW).request
    return ENGINE.assess(request["hook"], request["context"],
                         clinical_data(request, K, NOW), NOW).cards


@pytest.mark.parametrize("path", list_fixtures(), ids=lambda p: p.stem)
def test_card_text_reads_as_people_write(path):
    for card in _cards(path):
        for field in ("summary", "detail"):
            text = card[field].replace("\\_", "_").replace("\\[", "[").replace(
                "\\]", "]").replace("\\{", "{").replace("\\}", "}")
            for what, pattern in UNWANTED.items():
                found = pattern.search(text)
                assert found is None, (field, what, found and found.group(0))


def test_the_wording_check_catches_what_it_looks_for():
    """The patterns fire on the texts the service used to write."""
    for text in ("Thresholds: fever_celsius = 38 Cel (local policy)",
                 "Schedule drawn from rules/taper.yaml", "allergy allergy to baclofen",
                 "On baclofen at least 1 days", "recognised by the word baclofen",
                 "Systolic blood pressure 176 mm[Hg]"):
        assert any(p.search(text) for p in UNWANTED.values()), text


def test_a_toxicity_card_has_no_withdrawal_risk_heading():
    (card,) = _cards(next(p for p in list_fixtures()
                          if p.stem == "probe3-55-esrd-missed-dialysis-baclofen-coma"))
    assert "Withdrawal risk" not in card["detail"]
