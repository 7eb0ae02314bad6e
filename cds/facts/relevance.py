"""Which raw resources are worth a fhir.resources model: only those that can become facts.

Checking a resource against its model costs ~0.1-0.4 ms; an inpatient has hundreds of
vital signs inside the look-back window. A normal reading can never be a withdrawal sign
(signs are thresholds on single readings, cds/facts/signs.py), so only readings that
would be a sign are modelled, plus eGFR, which the renal risk reads whatever its value.
"""

from __future__ import annotations

from datetime import datetime

from cds.facts.signs import observation_signs
from rules import Knowledge


def worth_modelling(resource: dict, knowledge: Knowledge, now: datetime) -> bool:
    if not knowledge.is_relevant(resource, now):
        return False
    if resource.get("resourceType") != "Observation":
        return True
    if knowledge.observations["egfr"].matches_concept(resource.get("code")):
        return True
    try:
        return bool(observation_signs(resource, knowledge, now))
    except (AttributeError, TypeError, ValueError):
        return True  # let the model check report what is wrong with it
