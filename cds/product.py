"""A baclofen product as recognised from an order: shared by facts, taper planning and cards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
