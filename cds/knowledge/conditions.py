"""The condition language of rules/: what a clinician writes after `when:`.

One condition is a string or a small mapping:

    "withdrawal_severe > 0"           a fact compared with a number
    "exposure_days >= min_exposure_days"   ... or with a threshold from thresholds.yaml
    "event in [stop, hold, cut]"      an enumerated fact against listed values
    "route == oral"                   ... against one value
    "draft"  /  "not draft"           a yes/no fact
    {any: [ ... ]}  {all: [ ... ]}  {not: ...}   groups

A list of conditions means all of them. Conditions are checked against the fact
catalogue when rules/ is loaded (unknown fact, wrong kind of value, unknown threshold
or value: start-up refuses), then evaluated in Python (card wording, risk factors) or
compiled into durable_rules expressions (the rule set): one grammar for both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cds.knowledge.errors import KnowledgeError

OPERATORS = ("==", "!=", ">=", "<=", ">", "<")
_COMPARISON = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
_MEMBERSHIP = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s+in\s+\[(.*)\]\s*$")
_FLAG = re.compile(r"^\s*(not\s+)?([a-z_][a-z0-9_]*)\s*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class FactField:
    """One fact the engine provides about a subject, as rules may name it."""

    name: str
    kind: str  # "flag" (yes/no), "number", "count" or "choice"
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Condition:
    """A parsed condition: a tree of ("all"|"any"|"not"|"cmp"|"in", ...) nodes."""

    node: tuple
    text: str  # as written, for messages and the review sheet

    def holds(self, facts: Mapping[str, Any]) -> bool:
        return _holds(self.node, facts)

    def to_durable(self, m: Any) -> Any:
        """A durable_rules expression over the fact proxy `m`."""
        return _durable(self.node, m)


def parse_conditions(raw: Any, fields: Mapping[str, FactField], thresholds: Mapping[str, float],
                     where: str) -> Condition:
    """Parse `when:` (a list means all), checking every name against `fields`/`thresholds`."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise KnowledgeError(where, "needs at least one condition")
    node = ("all", tuple(_parse(item, fields, thresholds, where) for item in items))
    return Condition(node, describe(raw))


def describe(raw: Any) -> str:
    """The condition as a reviewer reads it: 'a and b', 'any of (c, d)'."""
    if isinstance(raw, list):
        return " and ".join(describe(r) for r in raw)
    if isinstance(raw, Mapping):
        (key, value), = raw.items()
        if key == "not":
            return f"not ({describe(value)})"
        joiner = " or " if key == "any" else " and "
        return "(" + joiner.join(describe(v) for v in value) + ")"
    return str(raw).strip()


def _parse(item: Any, fields: Mapping[str, FactField], thresholds: Mapping[str, float],
           where: str) -> tuple:
    if isinstance(item, Mapping):
        if len(item) != 1:
            raise KnowledgeError(where, "a condition group has one key (any/all/not), "
                                        f"got {item!r}")
        (key, value), = item.items()
        if key == "not":
            return ("not", _parse(value, fields, thresholds, where))
        if key not in ("any", "all") or not isinstance(value, list) or not value:
            raise KnowledgeError(where, f"'{key}' must be any/all with a non-empty list")
        return (key, tuple(_parse(v, fields, thresholds, where) for v in value))
    if not isinstance(item, str):
        raise KnowledgeError(where, f"a condition is text or a group, got {item!r}")
    if match := _MEMBERSHIP.match(item):
        name, listed = match.groups()
        field = _field(name, fields, where, item)
        values = tuple(v.strip() for v in listed.split(",") if v.strip())
        if field.kind != "choice" or not values:
            raise KnowledgeError(where, f"'{item}': 'in [...]' needs a choice fact and values")
        for value in values:
            _check_choice(field, value, where, item)
        return ("in", name, values)
    if match := _COMPARISON.match(item):
        name, op, raw_value = match.groups()
        field = _field(name, fields, where, item)
        value = _value(field, op, raw_value, thresholds, where, item)
        return ("cmp", name, op, value)
    if match := _FLAG.match(item):
        negated, name = match.groups()
        field = _field(name, fields, where, item)
        if field.kind != "flag":
            raise KnowledgeError(where, f"'{item}': '{name}' is not a yes/no fact; compare it")
        return ("cmp", name, "==", not negated)
    raise KnowledgeError(where, f"cannot read the condition '{item}'")


def _field(name: str, fields: Mapping[str, FactField], where: str, item: str) -> FactField:
    field = fields.get(name)
    if field is None:
        raise KnowledgeError(where, f"'{item}': no fact named '{name}' (see the fact catalogue)")
    return field


def _check_choice(field: FactField, value: str, where: str, item: str) -> None:
    if value not in field.choices:
        raise KnowledgeError(where, f"'{item}': '{value}' is not one of {', '.join(field.choices)}")


def _value(field: FactField, op: str, raw: str, thresholds: Mapping[str, float], where: str,
           item: str) -> Any:
    if field.kind == "flag":
        if op not in ("==", "!=") or raw not in ("true", "false"):
            raise KnowledgeError(where, f"'{item}': a yes/no fact compares with == true/false")
        return raw == "true"
    if field.kind == "choice":
        if op not in ("==", "!="):
            raise KnowledgeError(where, f"'{item}': a choice compares with == or != only")
        _check_choice(field, raw, where, item)
        return raw
    if _NUMBER.match(raw):
        number = float(raw)
    elif raw in thresholds:
        number = float(thresholds[raw])
    else:
        raise KnowledgeError(where, f"'{item}': '{raw}' is neither a number nor a threshold")
    if not math.isfinite(number):
        raise KnowledgeError(where, f"'{item}': the value must be finite")
    return number


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}


def _holds(node: tuple, facts: Mapping[str, Any]) -> bool:
    kind = node[0]
    if kind == "all":
        return all(_holds(n, facts) for n in node[1])
    if kind == "any":
        return any(_holds(n, facts) for n in node[1])
    if kind == "not":
        return not _holds(node[1], facts)
    if kind == "in":
        return facts.get(node[1]) in node[2]
    _, name, op, value = node
    actual = facts.get(name)
    if actual is None:
        return False
    try:
        return bool(_COMPARE[op](actual, value))
    except TypeError:
        return False


def _durable(node: tuple, m: Any) -> Any:
    kind = node[0]
    if kind in ("all", "any"):
        parts = [_durable(n, m) for n in node[1]]
        expression = parts[0]
        for part in parts[1:]:
            expression = (expression & part) if kind == "all" else (expression | part)
        return expression
    if kind == "not":
        return _negate(node[1], m)
    if kind == "in":
        return _durable(("any", tuple(("cmp", node[1], "==", v) for v in node[2])), m)
    _, name, op, value = node
    attr = getattr(m, name)
    return {"==": lambda: attr == value, "!=": lambda: attr != value, ">": lambda: attr > value,
            ">=": lambda: attr >= value, "<": lambda: attr < value,
            "<=": lambda: attr <= value}[op]()


_OPPOSITE = {"==": "!=", "!=": "==", ">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def _negate(node: tuple, m: Any) -> Any:
    """durable_rules has no 'not' over an expression: push the negation down (De Morgan)."""
    kind = node[0]
    if kind == "all":
        return _durable(("any", tuple(("not", n) for n in node[1])), m)
    if kind == "any":
        return _durable(("all", tuple(("not", n) for n in node[1])), m)
    if kind == "not":
        return _durable(node[1], m)
    if kind == "in":
        return _durable(("all", tuple(("cmp", node[1], "!=", v) for v in node[2])), m)
    _, name, op, value = node
    return _durable(("cmp", name, _OPPOSITE[op], value), m)


def names_in(condition: Condition) -> set[str]:
    """Every fact a condition reads (for the review sheet and cross-reference checks)."""
    found: set[str] = set()

    def walk(node: tuple) -> None:
        if node[0] in ("all", "any"):
            for n in node[1]:
                walk(n)
        elif node[0] == "not":
            walk(node[1])
        else:
            found.add(node[1])

    walk(condition.node)
    return found
