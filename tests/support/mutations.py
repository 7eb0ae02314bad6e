"""Mutated hook requests, as the security re-test made them (issue 25.2): a clinical
fixture with one to three of its values changed: a type swapped, a null, an extreme
number, an odd string, a key dropped, a list emptied or a value wrapped in a list.
Seeded: the same seed gives the same cases, so a failure names a case that reproduces.
Used by tests/contract/test_fuzz_fixtures.py (in CI) and bench/fuzz.py (longer runs).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cds.fixtures import list_fixtures, load_fixture

EXTREME_NUMBERS = [0, -1, 1, 1e308, -1e308, 5e-324, -5e-324, 2**53 + 1, 2**63, -(2**63),
                   10**30, 1e15, 1e16, 1e-20, 0.1, 12345678901234567890, int("9" * 400)]
ODD_STRINGS = ["", " ", "NaN", "Infinity", "null", "true", "0", "-1", "1e400", "\x00",
               "\u202e\u2066", "😀" * 50, "x" * 10_000, "1" * 5_000, "1x" * 2_000,
               "@now", "@today-100000d", "0001-01-01T00:00:00+14:00",
               "9999-12-31T23:59:59-14:00", "2026-02-30", "T", "Z", "--", "http://",
               "Medication/", "#", "#x", "Patient/", "MedicationRequest/../../x",
               "[evil.com](https://evil.com/phish)", "<img src=x onerror=alert(1)>",
               "mg", "tid", "q0h", "0 mg", "1/0 tab", "every 0 hours", "Bundle",
               "OperationOutcome", "NoSuchThing", "MedicationRequest"]


@dataclass(frozen=True)
class Case:
    index: int
    fixture: str
    service: str
    edits: tuple[str, ...]  # "path: what", for the failure message
    request: dict


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replacement(rng: random.Random, old: Any) -> tuple[str, Any]:
    kind = rng.choice(["type", "null", "number", "string", "drop", "empty", "wrap", "number",
                       "string"])
    if kind == "type":
        choices = [{}, [], True, 7, 7.5, "text", {"a": [1, {"b": None}]}]
        return "type swap", rng.choice([c for c in choices if type(c) is not type(old)])
    if kind == "null":
        return "null", None
    if kind == "number":
        return "extreme number", rng.choice(EXTREME_NUMBERS)
    if kind == "string":
        return "odd string", rng.choice(ODD_STRINGS)
    if kind == "empty":
        return "emptied", [] if not isinstance(old, dict) else {}
    if kind == "wrap":
        return "wrapped in a list", [old, old]
    return "dropped", _DROP


_DROP = object()


def _set(document: Any, path: tuple, value: Any) -> None:
    *parents, last = path
    node = document
    for key in parents:
        node = node[key]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value


def mutated_requests(count: int, seed: int = 25_2) -> Iterator[Case]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    fixtures = [load_fixture(path, now) for path in list_fixtures()]
    for index in range(count):
        fixture = rng.choice(fixtures)
        request = copy.deepcopy(fixture.request)
        edits = []
        for _ in range(rng.randint(1, 3)):
            paths = [p for p in _paths(request) if p]
            if not paths:
                break
            path = rng.choice(paths)
            parent = request
            for key in path[:-1]:
                parent = parent[key]
            what, value = _replacement(rng, parent[path[-1]])
            _set(request, path, value)
            edits.append(f"{'.'.join(str(p) for p in path)}: {what}")
        yield Case(index, fixture.name, fixture.service, tuple(edits), request)
