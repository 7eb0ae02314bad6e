"""Small value types shared by fact extraction, the taper planner and card building."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Our reverse-domain key for CDS Hooks `extension` objects (cards and responses).
EXTENSION_KEY = "org.baclofen-cds"

DoseForm = Literal["tablet", "solution", "suspension", "granules", "injection", "unknown"]
Route = Literal["oral", "intrathecal", "unknown"]


@dataclass(frozen=True)
class Product:
    """A baclofen product as far as it could be recognised from an order.

    `strength_mg` is per tablet or granule packet; `concentration_mg_per_ml` is for
    liquids and injections. Either is None when the order does not say and no
    known product code tells us (never assumed: liquids come in 1, 2 and 5 mg/mL).
    """

    name: str
    form: DoseForm = "unknown"
    route: Route = "unknown"
    strength_mg: float | None = None
    concentration_mg_per_ml: float | None = None
    rxcui: str | None = None

    @property
    def is_liquid(self) -> bool:
        return self.form in ("solution", "suspension")

    @property
    def is_intrathecal(self) -> bool:
        return self.route == "intrathecal" or self.form == "injection"


@dataclass
class ClinicalData:
    """Everything the clinical engine may look at for one hook call.

    `resources` are FHIR R4 resources (plain JSON dicts) from prefetch or the FHIR
    server, Bundles already flattened, each already checked against its
    fhir.resources model. `draft_orders` are the resources of context.draftOrders.
    """

    resources: list[dict]
    draft_orders: list[dict]


def card_kind(card: dict) -> str:
    """The kind of one of our cards (emergency-evaluation, supervised-taper, ...)."""
    ext = card.get("extension") or {}
    return str((ext.get(EXTENSION_KEY) or {}).get("kind", "unknown"))


def suggestion_kind(suggestion: dict) -> str:
    """The stable name of one of our suggestions ("" when it has none)."""
    ext = suggestion.get("extension") or {}
    return str((ext.get(EXTENSION_KEY) or {}).get("suggestion", ""))
