"""A fixture's request as the clinical engine sees it: the service's own relevance filter
(cds.facts.relevance), never a separate one written for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from cds.facts.record import PatientRecord
from cds.facts.relevance import Relevance
from cds.facts.stay import find_stays
from cds.knowledge import Knowledge, load_knowledge
from cds.resources import flatten


@cache
def _default() -> Knowledge:
    return load_knowledge()


def clinical_data(request: dict, knowledge: Knowledge | None = None,
                  now: datetime | None = None) -> PatientRecord:
    knowledge = knowledge or _default()
    resources = [r for v in (request.get("prefetch") or {}).values() for r in flatten(v)]
    drafts = flatten((request.get("context") or {}).get("draftOrders"))
    now = now or datetime.now(UTC)
    selected = Relevance(knowledge).select(resources, now)
    stays = find_stays(resources, now, knowledge.order_categories["inpatient"])
    return PatientRecord(selected, drafts, stays)
