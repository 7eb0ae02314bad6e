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
