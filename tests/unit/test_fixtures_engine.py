"""Every clinical fixture through ClinicalEngine.assess directly, every card validated, and the
safety promises checked on every response."""

import json
import re
from datetime import UTC, datetime

import pytest

from cds.assessment import ClinicalEngine
from cds.cards.extension import card_kind
from cds.fixtures import list_fixtures, load_fixture, resolve_time_tokens
from cds.knowledge import load_knowledge
from cds.services import build_services
from tests.support.cards import response_problems
from tests.support.fixtures import clinical_data

K = load_knowledge()
ENGINE = ClinicalEngine(K)
NOW = datetime.now(UTC)  # fixtures are relative to now: they must pass on any day
SERVICES = {s.id: s for s in build_services([])}
RANK = {"critical": 0, "warning": 1, "info": 2}
# What a card must never say when breathing or consciousness is depressed (issue 13).
RESTART_OR_BRIDGE = re.compile(r"\b(restart\w*|resum\w*|restor\w*|reinstat\w*|bridg\w*)\b",
                               re.IGNORECASE)


def assess(stem_or_path) -> tuple:
    path = stem_or_path if not isinstance(stem_or_path, str) else next(
        p for p in list_fixtures() if p.stem == stem_or_path)
    fixture = load_fixture(path, NOW)
    request = fixture.request
    return fixture, ENGINE.assess(request["hook"], request["context"],
                                  clinical_data(request, K, NOW), NOW)


def validate_card(card: dict) -> None:
    assert isinstance(card["uuid"], str) and card["uuid"]
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] and card["source"]["url"].startswith("https://")
    assert card["source"]["topic"]["code"] and card["source"]["topic"]["system"]
    assert card["detail"].strip() and "**What to do**" in card["detail"]
    assert card_kind(card) in K.cards
    assert card["overrideReasons"], "every card kind offers override reasons"
    for reason in card["overrideReasons"]:
        assert reason["display"] and reason["code"] and reason["system"].startswith("https://")
    for link in card.get("links", []):
        assert link["label"] and link["url"].startswith("https://") and link["type"] == "absolute"
    if "suggestions" in card:
        assert card["selectionBehavior"] == "at-most-one"


def test_there_are_enough_fixtures():
    assert len(list_fixtures()) >= 90


@pytest.mark.parametrize("path", list_fixtures(), ids=lambda p: p.stem)
def test_fixture_yields_its_expected_cards(path):
    fixture, assessment = assess(path)
    assert fixture.service in SERVICES
    service = SERVICES[fixture.service]
    assert fixture.request["hook"] == service.hook
    assert set(fixture.request["prefetch"]) <= {p.key for p in service.prefetch}
    found = sorted(((card_kind(c), c["indicator"]) for c in assessment.cards),
                   key=lambda kc: (RANK[kc[1]], kc[0]))
    expected = sorted(((c["kind"], c["indicator"]) for c in fixture.expect["cards"]),
                      key=lambda kc: (RANK[kc[1]], kc[0]))
    assert found == expected, [c["summary"] for c in assessment.cards]
    for card in assessment.cards:
        validate_card(card)
    # The whole response as a client reads it: valid FHIR in every suggested resource too.
    assert response_problems({"cards": assessment.cards}) == []


def test_no_card_advises_baclofen_or_bridging_when_breathing_or_consciousness_is_depressed():
    """Issue 13: with respiratory depression or depressed consciousness on record, no card
    text or suggestion says restart, resume, restore or bridge (every fixture is scanned)."""
    depressed = []
    for path in list_fixtures():
        _, assessment = assess(path)
        if not any(s.facts["consciousness_or_breathing_depressed"]
                   for s in assessment.facts.subjects):
            continue
        depressed.append(path.stem)
        for card in assessment.cards:
            text = json.dumps({k: card.get(k) for k in ("summary", "detail", "suggestions")})
            match = RESTART_OR_BRIDGE.search(text)
            assert match is None, (path.stem, card["summary"], match and match.group(0))
    assert len(depressed) >= 8, depressed


def test_time_tokens_resolve_relative_to_now():
    now = datetime(2031, 3, 10, 8, 30, 15, 123000, tzinfo=UTC)
    resolved = resolve_time_tokens(
        {"a": "@now", "b": ["@now-30d", "@now+2h", "@now-15m", "@now-1w"], "c": "@today-14d",
         "d": "@today", "e": "@nowhere", "f": "x@now"}, now)
    assert resolved == {
        "a": "2031-03-10T08:30:15Z",
        "b": ["2031-02-08T08:30:15Z", "2031-03-10T10:30:15Z", "2031-03-10T08:15:15Z",
              "2031-03-03T08:30:15Z"],
        "c": "2031-02-24", "d": "2031-03-10", "e": "@nowhere", "f": "x@now"}


def test_fixtures_hold_no_unresolved_tokens():
    for path in list_fixtures():
        text = json.dumps(load_fixture(path, NOW).request)
        assert '"@now' not in text and '"@today' not in text, path.stem


def test_fixture_expectations_use_only_known_keys():
    for path in list_fixtures():
        expect = load_fixture(path, NOW).expect
        assert set(expect) <= {"cards", "note", "should_say", "provenance", "status", "taper"}, \
            path.stem


def test_low_egfr_card_names_both_readings():
    _, assessment = assess("21-low-egfr-confusion")
    (card,) = assessment.cards
    assert card_kind(card) == "withdrawal-or-toxicity"
    assert "Kidneys impaired" in card["detail"]
    assert "Withdrawal or baclofen toxicity?" in card["summary"]


def test_pump_overdose_card_removes_the_drug_and_never_restores_delivery():
    _, assessment = assess("probe1-p14-16-overdose-after-refill")
    (card,) = assessment.cards
    assert "remove the residual drug from the reservoir" in card["detail"]
    assert not RESTART_OR_BRIDGE.search(card["detail"])


def test_pump_failure_card_says_check_the_pump_and_oral_is_no_substitute():
    _, assessment = assess("probe1-p14-01-unlisted-2000-stopped-fever-shock")
    (card,) = assessment.cards
    assert "pump" in card["summary"]
    assert "oral baclofen alone is not a reliable substitute" in card["detail"]


def test_liquid_concentration_is_shown_from_the_product():
    _, assessment = assess("16-solution-1mg-per-ml-order-select")
    (card,) = assessment.cards
    assert "30 mg/day" in card["summary"]


def test_ambiguous_new_order_names_both_readings():
    _, assessment = assess("probe1-p12-07-new-order-old-active-80-to-20")
    (card,) = assessment.cards
    assert "if it is added, the total is 100 mg/day" in card["detail"]
    assert "above the labelled maximum" in card["detail"]


def test_estimated_stop_time_is_said_to_be_an_estimate():
    _, assessment = assess("probe1-p12-01-stopped-no-end-date-no-signs")
    (card,) = assessment.cards
    assert "estimated" in card["detail"]
