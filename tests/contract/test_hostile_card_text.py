"""Request text never reaches a card as live markdown or HTML.

Every free-text field the facts read (medication names and displays, sigs, condition
and observation texts, device names and statuses, procedure notes, allergy reactions,
stop reasons) gets hostile markdown and HTML appended; the cards are then rendered the
way an EHR would render them (CommonMark with GFM tables and autolinks, markdown-it-py)
and must hold no link, image, heading or HTML element that came from the request.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from markdown_it import MarkdownIt

from cds.fixtures import FIXTURE_DIR, load_fixture

NOW = datetime.now(UTC)
HOSTILE = (" [click me](https://evil.example/phish) <img src=x onerror=alert(1)>\n"
           "# FAKE HEADING: give 10x dose ![img](https://evil.example/track.png) "
           "<svg onload=alert(1)> www.evil.example javascript:alert(1) **bold** "
           "<https://evil.example/auto>\n| a | b |\n|---|---|\n> quoted")
# Keys whose string values are free text somewhere in FHIR (codes and ids are left alone,
# so the records still mean what they meant).
TEXT_KEYS = {"text", "display", "valueString", "name", "patientInstruction", "comment"}
# Fixtures whose cards cover every kind of card text: oral, pump, toxicity, mixed,
# omission, taper with a plan, allergy, pregnancy, reminder.
FIXTURES = [
    "01-oral-stop-long-term", "13-fever-fahrenheit-after-stop", "19-intrathecal-early-signs",
    "21-low-egfr-confusion", "27-ended-recently-no-signs", "taper-stop-tablets",
    "probe1-p12-24-discharge-omits-baclofen", "probe1-p13-12-angioedema-allergy-stop-order-sign",
    "probe1-p13-16-early-pregnancy-7-weeks-renewal", "probe2-p14-02-refill-overdue-no-signs",
    "probe2-p13-01-oral-overdose-intentional", "probe2-p12-15-encounter-start-at-risk-reminder",
]
RENDER = MarkdownIt("commonmark", {"linkify": True, "html": True}).enable(["linkify", "table"])
ALLOWED_TAGS = {"p", "strong", "em", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
                "td", "br", "code"}


def poison(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v + HOSTILE if k in TEXT_KEYS and isinstance(v, str) else poison(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [poison(v) for v in value]
    return value


def rendered_tags(markdown: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", RENDER.render(markdown))}


@pytest.mark.parametrize("name", FIXTURES)
def test_hostile_request_text_stays_inert_in_every_card(client, name: str) -> None:
    fixture = load_fixture(FIXTURE_DIR / f"{name}.json", NOW)
    clean = client.post(f"/cds-services/{fixture.service}", json=fixture.request).get_json()
    request = copy.deepcopy(fixture.request)
    request["prefetch"] = poison(request.get("prefetch"))
    request["context"] = poison(request["context"])
    response = client.post(f"/cds-services/{fixture.service}", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    cards = response.get_json()["cards"]
    # The poison changes no meaning: the same cards, so their texts were really tested.
    assert [c["extension"]["org.baclofen-cds"]["kind"] for c in cards] == [
        c["extension"]["org.baclofen-cds"]["kind"] for c in clean["cards"]]
    assert cards, "the fixture must give a card for the text to be checked"
    reached = False
    for card in cards:
        html = RENDER.render(card["detail"])
        reached = reached or "evil.example" in html
        assert rendered_tags(card["detail"]) <= ALLOWED_TAGS, (name, html[:2000])
        for text in (card["summary"], *(s["label"] for s in card.get("suggestions", []))):
            assert not re.search(r"[<>\[\]]|\]\(|javascript:", text), text
        for link in card.get("links", []):
            assert "evil" not in link["url"]
    # The poison did reach the card (escaped): a test that never saw it would prove nothing.
    assert reached, name
