"""Safe card text: every value placed into a card text is escaped here.

Card texts come from rules/cards.yaml (trusted); the values filling their placeholders
may come from the request (a medication's name, a condition's text, an alarm reading).
In `detail` (GitHub Flavored Markdown) a value is one line, capped in length, with every
character that could open a link, image, heading, emphasis, table, autolink or HTML
escaped. In `summary` (plain text) such characters are dropped. Only markdown the
engine itself builds (the taper table) is passed through, as `Markdown`.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

MAX_VALUE_CHARS = 400
SUMMARY_LIMIT = 139  # the spec requires fewer than 140 characters
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_MARKDOWN = re.compile(r"([\\`*_\[\]{}#|~!])")
# What renderers turn into links without any markup (issue 26.6): a scheme (GFM and
# linkify: http, https, ftp, mailto, xmpp; browsers and EHR viewers: the rest), "www.",
# a bare domain ("evil.com/phish": linkify knows every top-level domain) and an e-mail
# address. The character that makes each one a link is escaped in detail (markdown) and
# replaced by a look-alike that no renderer links in summaries and labels (plain text).
_AUTOLINK = re.compile(r"(?i)\b(https?|ftps?|mailto|javascript|data|xmpp|tel|sms|file)(:)"
                       r"|(www)(\.)|(?<=\w)(\.)(?=[a-z])|(?<=\w)(@)(?=\w)")
_PLAIN_LOOK_ALIKE = {":": "\ua789", ".": "\u2024", "@": "\uff20"}  # ꞉ ․ ＠
# Words of letters, digits and punctuation GFM never reads as markup, one space apart.
_INERT = re.compile(r"[A-Za-z0-9,.;:%/+=()'-]+(?: [A-Za-z0-9,.;:%/+=()'-]+)*")
_PLAIN_DROP = re.compile(r"[<>\[\]{}()*_#|`~\\!]")
_FORMATTER = string.Formatter()


class Markdown(str):
    """Markdown the engine built itself (the taper table): inserted as is."""


def one_line(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escape_markdown(value: Any) -> str:
    """A value as inert GFM text: no link, image, heading, emphasis, table or HTML."""
    if isinstance(value, Markdown):
        return str(value)
    text = str(value)
    # Most values (doses, dates, counts) have nothing to escape or fold: the full
    # treatment below would return them unchanged.
    if len(text) <= MAX_VALUE_CHARS and _INERT.fullmatch(text) and not _AUTOLINK.search(text):
        return text
    return escaped(text)


def escaped(text: str) -> str:
    """The full treatment: one line, HTML and markdown characters escaped, no autolink."""
    text = one_line(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN.sub(r"\\\1", text)
    return _AUTOLINK.sub(lambda m: f"{_prefix(m)}\\{_trigger(m)}", text)


def _prefix(match: re.Match[str]) -> str:
    return match.group(1) or match.group(3) or ""


def _trigger(match: re.Match[str]) -> str:
    return match.group(2) or match.group(4) or match.group(5) or match.group(6)


def plain(value: Any) -> str:
    """A value for plain-text fields (summary, labels): markup characters dropped, and
    nothing a renderer would turn into a link (see _AUTOLINK)."""
    text = " ".join(_PLAIN_DROP.sub(" ", one_line(str(value))).split())
    return _AUTOLINK.sub(lambda m: _prefix(m) + _PLAIN_LOOK_ALIKE[_trigger(m)], text)


def fill(template: str, values: Mapping[str, Any], markdown: bool = True) -> str:
    """`template` (trusted, from rules/) with every placeholder's value escaped."""
    out: list[str] = []
    for literal, name, spec, _conversion in _FORMATTER.parse(template):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name, "")
        if spec:
            value = format(value, spec)
        out.append(escape_markdown(value) if markdown else plain(value))
    return "".join(out)


def word(template: str, **values: Any) -> str:
    """A small word template of rules/cards.yaml (detail.words) with its values; a name it
    does not know stays empty (the loader already refused formats and conversions)."""
    return "".join(literal + ("" if name is None else str(values.get(name, "")))
                   for literal, name, _spec, _conversion in _FORMATTER.parse(template))


def summary(template: str, values: Mapping[str, Any]) -> str:
    text = " ".join(fill(template, values, markdown=False).split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1].rstrip() + "…"


LARGEST_NUMBER_SHOWN = 1e9  # beyond it a card says "more than 1,000,000,000"


def number(value: float | None) -> str:
    """A number as a clinician reads it: never in exponent notation ("6e+07 mg/day" for a
    record of a million tablets, issue 26.5), an absurd magnitude bounded."""
    if value is None or math.isnan(value):
        return "?"
    rounded = round(value, 2)
    if abs(rounded) < 1e6:
        return f"{rounded:g}"  # up to six digits: the plain form
    if abs(rounded) >= LARGEST_NUMBER_SHOWN:
        return f"{'more' if rounded > 0 else 'less'} than " \
               f"{'' if rounded > 0 else '-'}{LARGEST_NUMBER_SHOWN:,.0f}"
    return f"{rounded:,.0f}"


def date_text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def end_text(moment: datetime, words: Mapping[str, Any]) -> str:
    """When something ends. An end at midnight UTC is how a date-only end ("through
    2026-11-27") is held, so it is shown as the end of the day before."""
    if moment.hour == moment.minute == moment.second == moment.microsecond == 0:
        return word(words["end_of_day"], date=(moment - timedelta(days=1)).strftime("%Y-%m-%d"))
    return word(words["end_at"], date=date_text(moment))


def duration(seconds: float, words: Mapping[str, str]) -> str:
    """'30 minutes', '5 hours', '3 days', '6 weeks', '8 months', '2 years'."""
    seconds = abs(seconds)
    hours = seconds / 3600
    days = hours / 24
    if hours < 1:
        minutes = max(1, round(seconds / 60))
        return word(words["minute" if minutes == 1 else "minutes"], n=minutes)
    if hours < 48:
        return word(words["hour" if round(hours) == 1 else "hours"], n=round(hours))
    if days < 14:
        return word(words["days"], n=round(days))
    if days < 60:
        return word(words["weeks"], n=round(days / 7))
    if days < 730:
        return word(words["months"], n=round(days / 30.44))
    return word(words["years"], n=round(days / 365.25))
