"""Every clinical fixture through ClinicalEngine.assess directly, and every card validated."""

import json
from datetime import UTC, datetime

import pytest

from cds.assessment import ClinicalEngine
from cds.facts.record import PatientRecord
from cds.fixtures import list_fixtures, load_fixture, resolve_time_tokens
from cds.knowledge import load_knowledge

K = load_knowledge()
ENGINE = ClinicalEngine(K)
NOW = datetime.now(UTC)  # fixtures are relative to now: they must pass on any day
SERVICES = {"baclofen-order-sign", "baclofen-order-select", "baclofen-patient-view",
            "baclofen-encounter-start", "baclofen-encounter-discharge"}
PREFETCH_KEYS = {"patient", "medications", "observations", "conditions", "encounter"}
KINDS = {"emergency-evaluation", "supervised-taper", "intrathecal-stop", "intrathecal-early-signs"}


def flatten(value) -> list[dict]:
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [e["resource"] for e in value.get("entry") or [] if "resource" in e]
    return [value]


def clinical_data(request: dict) -> PatientRecord:
    resources = [r for v in request["prefetch"].values() for r in flatten(v)]
    drafts = flatten(request["context"].get("draftOrders"))
    return PatientRecord([r for r in resources if K.is_relevant(r)], drafts)


def validate_card(card: dict) -> None:
    assert isinstance(card["uuid"], str) and card["uuid"]
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    assert card["source"]["topic"]["code"] and card["source"]["topic"]["system"]
    assert card["detail"].strip() and "**Sources**" in card["detail"]
    assert card["extension"]["org.baclofen-cds"]["kind"] in KINDS
    for reason in card.get("overrideReasons", []):
        assert reason["display"] and reason["code"] and reason["system"].startswith("https://")
    for link in card.get("links", []):
        assert link["label"] and link["url"].startswith("https://") and link["type"] == "absolute"
    if "suggestions" in card:
        assert card["selectionBehavior"] == "at-most-one"


def test_there_are_enough_fixtures():
    assert len(list_fixtures()) >= 25


@pytest.mark.parametrize("path", list_fixtures(), ids=lambda p: p.stem)
def test_fixture_yields_its_expected_cards(path):
    fixture = load_fixture(path, NOW)
    assert fixture.service in SERVICES
    assert set(fixture.request["prefetch"]) == PREFETCH_KEYS
    request = fixture.request
    assessment = ENGINE.assess(request["hook"], request["context"], clinical_data(request), NOW)
    found = [{"kind": c["extension"]["org.baclofen-cds"]["kind"], "indicator": c["indicator"]}
             for c in assessment.cards]
    assert found == fixture.expect["cards"], [c["summary"] for c in assessment.cards]
    for card in assessment.cards:
        validate_card(card)


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


def _cards_of(stem: str) -> list[dict]:
    (path,) = [p for p in list_fixtures() if p.stem == stem]
    request = load_fixture(path, NOW).request
    return ENGINE.assess(request["hook"], request["context"], clinical_data(request), NOW).cards


def test_low_egfr_card_names_toxicity_as_the_alternative():
    (card,) = _cards_of("21-low-egfr-confusion")
    assert "Consider baclofen toxicity" in card["detail"] and "eGFR 28" in card["detail"]


def test_intrathecal_emergency_says_check_the_pump_and_oral_is_no_substitute():
    (card,) = _cards_of("17-intrathecal-pump-failure-signs")
    assert "pump" in card["summary"]
    assert "oral baclofen alone is not a reliable substitute" in card["detail"]
    assert "Creatine kinase 6800" in card["detail"]


def test_liquid_concentration_is_shown_from_the_product():
    (card,) = _cards_of("16-solution-1mg-per-ml-order-select")
    assert "30 mg/day" in card["summary"]
