"""The patient record one hook call brings: what fact extraction reads."""

from __future__ import annotations

from dataclasses import dataclass

from cds.facts.stay import Stay


@dataclass
class PatientRecord:
    """Everything the clinical engine may look at for one hook call.

    `resources` are FHIR R4 resources (plain JSON dicts) from prefetch or the FHIR
    server, Bundles already flattened, each already checked against its
    fhir.resources model. `draft_orders` are the resources of context.draftOrders.
    `stays`: the hospital stays under way, read from every resource of the request before
    the relevance filter dropped what the facts do not model (None: read them from
    `resources`).
    """

    resources: list[dict]
    draft_orders: list[dict]
    stays: tuple[Stay, ...] | None = None
