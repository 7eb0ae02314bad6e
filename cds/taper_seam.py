"""The seam where the taper planner (issue 4) plugs its suggestions into the taper card.

`taper_suggestions` receives a supervised-taper Finding (current daily dose, product,
administrations per day, route, risk level and factors, exposure days, target dose,
draft order and its reference) and returns CDS Hooks Suggestion objects. Until the
planner lands it offers none, and the card carries no suggestions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds.findings import Finding
    from rules import Knowledge


def taper_suggestions(finding: Finding, knowledge: Knowledge) -> list[dict]:
    """CDS Hooks suggestions for a supervised taper; none until the planner is plugged in."""
    return []
