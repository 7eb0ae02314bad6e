"""What the clinician reads first: summaries that do not overstate."""

from __future__ import annotations

from datetime import UTC, datetime

from cds.fixtures import list_fixtures, load_fixture

NOW = datetime.now(UTC)
FIXTURES = {p.stem: p for p in list_fixtures()}


def cards_for(client, name):
    fixture = load_fixture(FIXTURES[name], NOW)
    return client.post(f"/cds-services/{fixture.service}", json=fixture.request).get_json()[
        "cards"]


def test_low_egfr_summary_names_toxicity_before_withdrawal(client):
    (card,) = cards_for(client, "21-low-egfr-confusion")
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Withdrawal or baclofen toxicity?")
    assert len(card["summary"]) < 140
    assert "Give no baclofen and no benzodiazepine" in card["detail"]
    assert "adjust any baclofen dose to renal function" in card["detail"]


def test_without_renal_impairment_the_summary_is_plain_withdrawal(client):
    (card,) = cards_for(client, "13-fever-fahrenheit-after-stop")
    assert "toxicity" not in card["summary"]
    assert card["summary"].endswith("evaluate now for withdrawal")
