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

# Raw JSON the checks cannot read goes on to the model check, which reports it.
_UNREADABLE = (TypeError, AttributeError, ValueError, KeyError, RecursionError)


def select_worth_modelling(resources: list[dict], knowledge: Knowledge, now: datetime
                           ) -> list[dict]:
    """The resources the rules can read, in order. A tight loop: it sees every resource
    of a request, a year of vital signs included."""
    selected = []
    observation_hit = knowledge.observation_relevance
    cutoff = knowledge.relevance_cutoff(now)
    for resource in resources:
        try:
            if resource.get("resourceType") == "Observation":
                hit = observation_hit(resource, cutoff)
                if hit is None or (hit and not observation_signs(resource, knowledge, now)):
                    continue  # not read, or a reading in range: never a sign
            elif not knowledge.is_relevant(resource, now):
                continue
        except _UNREADABLE:
            pass
        selected.append(resource)
    return selected
