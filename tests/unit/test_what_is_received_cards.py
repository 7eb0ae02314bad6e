"""The cards of the issue-22 classes say what a careful clinician wants (each fixture's
`should_say`): the essentials asserted here fail on the service before this round."""

from __future__ import annotations

from datetime import UTC, datetime

from cds.assessment import ClinicalEngine
from cds.cards.extension import card_kind
from cds.fixtures import list_fixtures, load_fixture
from cds.knowledge import load_knowledge
from tests.support.fixtures import clinical_data

K = load_knowledge()
ENGINE = ClinicalEngine(K)
NOW = datetime.now(UTC)


def cards(stem: str) -> list[dict]:
    path = next(p for p in list_fixtures() if p.stem.startswith(stem))
    request = load_fixture(path, NOW).request
    return ENGINE.assess(request["hook"], request["context"],
                         clinical_data(request, K, NOW), NOW).cards


def one(stem: str) -> tuple[dict, str]:
    (card,) = cards(stem)
    return card, card["summary"] + "\n" + card["detail"]


def test_duplicates_are_one_regimen_and_an_ambiguous_pair_names_both_readings():
    assert cards("probe3-01-") == []
    card, text = one("probe3-03-")
    assert "from 60 mg/day to 30 mg/day" in text and "120 mg/day" not in text
    card, text = one("probe3-04-")
    assert "one regimen listed twice" in text and "60 mg/day" in text
    assert "suggestions" not in card  # no taper that would raise the total


def test_implied_omission_in_a_sedated_patient_is_a_withdrawal_emergency():
    card, text = one("probe3-07-")
    assert card["indicator"] == "critical"
    assert "neither ordered nor given in this hospital stay" in text
    assert "by nasogastric or feeding tube" in text
    assert "Sedation (" in text and "toxicity" not in card["summary"].lower()


def test_a_stop_in_the_draft_only_is_never_silent():
    assert card_kind(one("probe3-15-")[0]) == "supervised-taper"
    card, text = one("probe3-17-")
    assert card_kind(card) == "intrathecal-stop" and "450 mcg/day" in text


def test_reduced_consciousness_after_an_interruption_keeps_withdrawal_treatment():
    card, text = one("probe3-20-")
    assert "Protect the airway first" in text and "Give baclofen back" in text
    assert "exclude overdose before giving baclofen" not in text
    card, text = one("probe3-22-")
    assert card["indicator"] == "critical" and "altered mental status" in text
    card, text = one("probe3-21-")
    assert "Restore intrathecal delivery" in text
    card, text = one("probe3-23-")  # eGFR 19: an overdose is plausible, both are named
    assert card_kind(card) == "withdrawal-or-toxicity" and "Give no baclofen" in text


def test_units_decide_and_weights_give_mg_per_day():
    card, text = one("probe3-26-")
    assert card_kind(card) == "renal-dose" and "estimated from creatinine 4.5 mg/dL" in text
    card, text = one("probe3-27-")
    assert '310 in the unit "units"' in text
    card, text = one("probe3-28-")
    assert "16.2 mg/day" in text and "body weight 18 kg" in text
    card, text = one("probe3-30-")
    assert "no body weight is on record" in text and "suggestions" not in card


def test_kidney_function_before_symptoms():
    for stem in ("probe3-32-", "probe3-33-", "probe3-36-", "probe3-37-"):
        card, text = one(stem)
        assert card_kind(card) == "renal-dose" and card["indicator"] == "warning", stem
        assert "reduce" in text.lower()
    assert cards("probe3-34-") == [] and cards("probe3-35-") == []


def test_oral_withdrawal_cards_name_the_differential():
    assert "neuroleptic malignant syndrome" in one("probe3-38-")[1]
    assert "malignant hyperthermia" in one("probe3-39-")[1]
    assert "Sepsis is on record" in one("probe3-40-")[1]
    assert cards("probe3-41-") == []


def test_a_finished_taper_is_a_taper():
    assert cards("probe3-42-") == [] and cards("probe3-43-") == []
    assert card_kind(one("probe3-46-")[0]) == "taper-adjust"


def test_the_taper_order_matches_how_the_patient_takes_baclofen():
    def taper_order(stem: str) -> dict:
        card, _ = one(stem)
        (replace,) = [s for s in card["suggestions"] if s["isRecommended"]]
        return replace["actions"][0]["resource"]

    granules = taper_order("probe3-47-")
    assert "granules" in granules["medicationCodeableConcept"]["text"].lower()
    assert granules["dosageInstruction"][0]["route"]["coding"][0]["code"] == "26643006"
    tablets = taper_order("probe3-49-")
    assert "tablet" in tablets["medicationCodeableConcept"]["text"].lower()
    for stem in ("probe3-50-", "probe3-51-"):
        card, text = one(stem)
        assert card_kind(card) == "withdrawal-monitoring" and "suggestions" not in card
    assert "Angioedema" in one("probe3-50-")[1]


def test_coded_intrathecal_route_and_a_planned_explant():
    _, text = one("probe3-53-")
    assert "check the product" not in text and "320 mcg/day" in text
    _, text = one("probe3-54-")
    assert "reprogramming" not in text and "bridge is already running" in text


def test_stopping_the_earlier_of_two_unlinked_orders_names_both_readings():
    card, text = one("probe5-03-")
    assert "if both are taken, 90 mg/day drops to 60 mg/day" in card["summary"]
    assert "already replaced by the other" in text and "suggestions" not in card


def test_discharge_orders_are_the_list_that_goes_home():
    card, text = one("probe5-08-")
    assert "discharge orders" in text and "home medication list still shows baclofen" in text


def test_a_slow_pulse_with_high_pressure_above_t6_is_autonomic_dysreflexia():
    card, text = one("probe5-40-")
    assert card["indicator"] == "critical" and "autonomic dysreflexia pattern" in text
    assert "Signs of central depression" not in text
