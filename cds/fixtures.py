"""Clinical scenario fixtures: real-shaped CDS Hooks requests with their expected cards.

A fixture file (fhir_fixtures/*.json) holds {title, description, service, expect, request}.
Dates never rot: any JSON string that is exactly a relative token is resolved at load
time against an injected `now`:

    "@now", "@now-30d", "@now+2h", "@now-15m", "@now-3w"  -> ISO date-time (UTC)
    "@today", "@today-14d"                                -> ISO date
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fhir_fixtures"
_TOKEN = re.compile(r"^@(now|today)(?:([+-])(\d+)([dhmw]))?$")
_UNIT = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}


@dataclass(frozen=True)
class Fixture:
    name: str  # file stem
    title: str
    description: str
    service: str
    expect: dict
    request: dict


# One scenario per kind of card, for a first look (fixtures list, the preview page).
SHOWCASE = (
    "01-oral-stop-long-term",
    "03-oral-large-cut",
    "13-fever-fahrenheit-after-stop",
    "17-intrathecal-pump-failure-signs",
    "18-intrathecal-stop-order",
    "22-omission-at-admission",
    "probe2-p13-01-oral-overdose-intentional",
    "probe2-p14-02-refill-overdue-no-signs",
    "probe2-p12-12-taper-mild-withdrawal-signs",
    "probe2-p13-12-pregnant-34-weeks-renewal",
)


@dataclass(frozen=True)
class FixtureGroup:
    name: str
    about: str
    names: tuple[str, ...]  # file stems, in listing order
    brief: bool = False  # listed as a count unless every fixture is asked for


# Groups in listing order; a fixture goes to the first whose prefix its name has.
_GROUPS = (
    ("showcase", "start here: one scenario per kind of card", None, False),
    ("scenarios", "the numbered clinical scenarios, cards and deliberate silences", "", False),
    ("taper", "taper plans checked step by step (expect.taper)", "taper-", False),
    ("sandbox", "requests as the CDS Hooks Sandbox sends them", "sandbox-", False),
)
# Each probe round (probe<N>-...): realistic patients written from the labels by a reviewer
# who had not seen the code, kept as fixtures; listed as a count unless asked for.
_PROBE_ROUND = re.compile(r"^probe(\d+)-")


def fixture_groups(directory: Path | None = None) -> list[FixtureGroup]:
    """Every fixture once, grouped: the showcase first, the long probe rounds last."""
    stems = [path.stem for path in list_fixtures(directory)]
    showcase = tuple(name for name in SHOWCASE if name in stems)
    rest = [name for name in stems if name not in showcase]
    rounds = sorted({int(m.group(1)) for m in map(_PROBE_ROUND.match, rest) if m})
    probe_groups = [(f"probe round {n}", "independent probes written from the labels by a "
                     "reviewer who had not seen the code", f"probe{n}-", True) for n in rounds]
    prefixed = [prefix for _, _, prefix, _ in (*_GROUPS, *probe_groups) if prefix]
    groups = [FixtureGroup("showcase", _GROUPS[0][1], showcase)]
    for name, about, prefix, brief in (*_GROUPS[1:], *probe_groups):
        if prefix:
            members = tuple(n for n in rest if n.startswith(prefix))
        else:  # the numbered ones: everything no prefix claims
            members = tuple(n for n in rest if not n.startswith(tuple(prefixed)))
        groups.append(FixtureGroup(name, about, members, brief))
    return [group for group in groups if group.names]


def list_fixtures(directory: Path | None = None) -> list[Path]:
    return sorted((directory or FIXTURE_DIR).glob("*.json"))


def load_fixture(path: Path | str, now: datetime) -> Fixture:
    path = Path(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    doc = resolve_time_tokens(raw, now if now.tzinfo else now.replace(tzinfo=UTC))
    return Fixture(path.stem, doc["title"], doc["description"], doc["service"],
                   doc["expect"], doc["request"])


def resolve_time_tokens(value: Any, now: datetime) -> Any:
    """Replace every relative date token in a JSON value (recursively)."""
    if isinstance(value, dict):
        return {k: resolve_time_tokens(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_time_tokens(v, now) for v in value]
    if isinstance(value, str) and value.startswith("@"):
        match = _TOKEN.match(value)
        if match:
            base, sign, amount, unit = match.groups()
            offset = timedelta(**{_UNIT[unit]: int(amount)}) if unit else timedelta()
            moment = now.astimezone(UTC) + (-offset if sign == "-" else offset)
            if base == "today":
                return moment.date().isoformat()
            return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return value
