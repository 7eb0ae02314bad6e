"""Issue 26.6: request text in a card never becomes a link, autolinks included: bare
domains of real top-level domains, e-mail addresses and xmpp:, as linkify (markdown-it,
GitHub-style autolinks) reads them, in detail (markdown) and in summaries and labels
(plain text, which EHR viewers linkify too)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

import pytest
from linkify_it import LinkifyIt
from markdown_it import MarkdownIt

from cds.cards.text import escape_markdown, plain
from cds.fixtures import FIXTURE_DIR, load_fixture

HOSTILE = (" evil.com/phish login.microsoftonline.com.evil.co/x bob@evil.com "
           "xmpp:bob@evil.com mailto:bob@evil.org //evil.net/p "
           "www.evil.io ftp://evil.com")
TEXT_KEYS = {"text", "display", "valueString", "name", "patientInstruction", "comment"}
RENDER = MarkdownIt("commonmark", {"linkify": True, "html": True}).enable(["linkify", "table"])
LINKIFY = LinkifyIt()
FIXTURES = ["01-oral-stop-long-term", "13-fever-fahrenheit-after-stop",
            "19-intrathecal-early-signs", "probe1-p12-24-discharge-omits-baclofen"]


def poison(value):
    if isinstance(value, dict):
        return {k: (v + HOSTILE if k in TEXT_KEYS and isinstance(v, str) else poison(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [poison(v) for v in value]
    return value


@pytest.mark.parametrize("text", HOSTILE.split())
def test_each_autolink_is_neutralised_in_markdown_and_in_plain_text(text):
    assert "<a " in RENDER.render(text) or LINKIFY.test(text), "a real autolink to start from"
    assert "<a " not in RENDER.render(escape_markdown(text))
    assert not LINKIFY.test(plain(text)), plain(text)


@pytest.mark.parametrize("name", FIXTURES)
def test_no_card_links_to_what_the_request_wrote(client, name):
    fixture = load_fixture(FIXTURE_DIR / f"{name}.json", datetime.now(UTC))
    request = copy.deepcopy(fixture.request)
    request["prefetch"] = poison(request.get("prefetch"))
    request["context"] = poison(request["context"])
    response = client.post(f"/cds-services/{fixture.service}", json=request)
    assert response.status_code == 200
    cards = response.get_json()["cards"]
    assert cards
    for card in cards:
        html = RENDER.render(card["detail"])
        assert not re.search(r"<a [^>]*evil", html), html[:2000]
        for text in (card["summary"], *(s["label"] for s in card.get("suggestions", []))):
            matches = LINKIFY.match(text) or []
            assert not [m for m in matches if "evil" in m.url], text
