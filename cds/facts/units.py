"""Quantities in the units the rules compare in, using the tables of rules/terminology.yaml."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cds.knowledge import Knowledge


def number(value: Any) -> float | None:
    """A finite real number, or None (booleans, NaN, infinities and text are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def quantity(container: Any, key: str = "valueQuantity") -> tuple[float | None, str | None]:
    """(value, unit as sent) of a Quantity field; the unit is the UCUM code, else the text."""
    q = container.get(key) if isinstance(container, Mapping) else None
    if not isinstance(q, Mapping):
        return None, None
    unit = q.get("code") or q.get("unit")
    return number(q.get("value")), unit if isinstance(unit, str) else None


def convert(value: float | None, unit: str | None, target: str, knowledge: Knowledge,
            code_set: str | None = None) -> float | None:
    """`value` in `unit` expressed in `target` (a UCUM unit of the rules), or None."""
    if value is None:
        return None
    if unit is None or not unit.strip():
        return value if target in knowledge.unitless_units else None
    source = knowledge.unit_aliases.get(unit.strip().lower())
    if source is None:
        return None
    if source == target:
        return value
    for start, end, factor, offset, limited_to in knowledge.unit_conversions:
        if start == source and end == target and (not limited_to or code_set in limited_to):
            return value * factor + offset
    return None
