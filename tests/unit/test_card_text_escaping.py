"""cds/cards/text.py: a value placed into card markdown is inert, and the shortcut for
values with nothing to escape returns exactly what the full treatment would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.cards.text import MAX_VALUE_CHARS, Markdown, escape_markdown, escaped

# Characters that matter to GFM, HTML, autolinks and line folding, plus ordinary ones.
TRICKY = list("\\`*_[]{}#|~!&<>:./-() '\"\t\n\r\x00\u2028\u202e@=+%;,") + [
    "http:", "HTTPS:", "www.", "WWW.", "javascript:", "data:", "mailto:", "ftp:", "  "]
values = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(alphabet="abcXYZ019", max_size=6)),
             max_size=15).map("".join),
    st.integers().map(str), st.floats(allow_nan=False).map(str),
    st.text(alphabet="ab1 .", min_size=MAX_VALUE_CHARS - 2, max_size=MAX_VALUE_CHARS + 3),
)


@given(values)
@settings(max_examples=3000, deadline=None)
def test_the_shortcut_returns_what_the_full_treatment_returns(value):
    assert escape_markdown(value) == escaped(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("20 mg/day", "20 mg/day"),
    ("2026-11-27 10:00 UTC", "2026-11-27 10:00 UTC"),
    # Every dot of a domain too (issue 26.6: linkify links bare domains).
    ("[click](http://x.test)", "\\[click\\](http\\://x\\.test)"),
    ("see www.example.org", "see www\\.example\\.org"),
    ("<img src=x>", "&lt;img src=x&gt;"),
    ("# heading", "\\# heading"),
    ("two\nlines", "two lines"),
    ("  padded  ", "padded"),
    ("a_b*c", "a\\_b\\*c"),
])
def test_values_are_inert(value, expected):
    assert escape_markdown(value) == expected


def test_engine_markdown_passes_through():
    table = Markdown("| day | dose |\n|---|---|")
    assert escape_markdown(table) == str(table)


def test_long_values_are_cut():
    assert len(escape_markdown("1" * (MAX_VALUE_CHARS + 50))) == MAX_VALUE_CHARS
