"""What a baclofen product can deliver, and finding a product by RxCUI or text."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache, reduce
from typing import Literal

from cds.product import Product
from cds.taper.params import DeliverableProduct, TaperParams

DeliveryKind = Literal["tablet", "granules", "liquid", "mg"]

_UNIT_NOUN = {"tablet": "tablet", "granules": "packet"}

# Doses are compared in thousandths of a mg so float noise never decides deliverability.
_MICRO = 1000


def _micro(mg: float) -> int:
    return int(round(mg * _MICRO))


def format_number(value: float) -> str:
    """12.0 -> '12', 7.5 -> '7.5', 0.25 -> '0.25'."""
    return f"{round(value, 3):g}"


@dataclass(frozen=True)
class Delivery:
    """The smallest doses a product can give, and how to describe a dose of it.

    `unit_mg` is the granularity of one administration: the greatest common divisor of
    tablet/packet strengths, or the liquid measuring increment at the concentration.
    """

    kind: DeliveryKind
    unit_mg: float
    strengths_mg: tuple[float, ...] = ()
    concentration_mg_per_ml: float | None = None
    description: str = ""

    def is_deliverable(self, dose_mg: float) -> bool:
        if dose_mg <= 0:
            return False
        if self.kind in ("tablet", "granules"):
            return _fewest_units(_micro(dose_mg), self._largest_first) is not None
        ratio = dose_mg / self.unit_mg
        return abs(ratio - round(ratio)) < 1e-6

    def units_of(self, dose_mg: float) -> Counter[float] | None:
        """Fewest whole tablets/packets adding up to `dose_mg`, or None if impossible."""
        found = _fewest_units(_micro(dose_mg), self._largest_first)
        return None if found is None else Counter(dict(found))

    @cached_property
    def _largest_first(self) -> tuple[float, ...]:
        return tuple(sorted(self.strengths_mg, reverse=True))

    def ml_of(self, dose_mg: float) -> float:
        if self.concentration_mg_per_ml is None:
            raise ValueError("not a liquid with a known concentration")
        return round(dose_mg / self.concentration_mg_per_ml, 3)

    def amount_text(self, dose_mg: float) -> str:
        """What to give at one administration, e.g. '1 x 20 mg + 1 x 5 mg tablets (25 mg)'."""
        mg = format_number(dose_mg)
        if self.kind == "liquid":
            return f"{format_number(self.ml_of(dose_mg))} mL ({mg} mg)"
        if self.kind == "mg":
            return f"{mg} mg"
        units = self.units_of(dose_mg)
        if units is None:
            raise ValueError(f"{mg} mg is not deliverable as whole {self.kind}")
        noun = _UNIT_NOUN[self.kind]
        parts = [
            f"{count} x {format_number(strength)} mg"
            for strength, count in sorted(units.items(), reverse=True)
        ]
        plural = "s" if sum(units.values()) > 1 else ""
        return f"{' + '.join(parts)} {noun}{plural} ({mg} mg)"


@lru_cache(maxsize=4096)  # pure and called often while planning; a card plans per request
def _fewest_units(
    amount: int, strengths: tuple[float, ...]
) -> tuple[tuple[float, int], ...] | None:
    micro = [_micro(s) for s in strengths]
    step = reduce(math.gcd, micro)
    if amount <= 0 or amount % step:
        return None
    slots = amount // step
    # best[i] = fewest units making i*step, with the strength used last.
    best: list[tuple[int, int] | None] = [None] * (slots + 1)
    best[0] = (0, -1)
    for i in range(1, slots + 1):
        for index, value in enumerate(micro):
            size = value // step
            prev = best[i - size] if size <= i else None
            if prev is not None and (best[i] is None or prev[0] + 1 < best[i][0]):
                best[i] = (prev[0] + 1, index)
    if best[slots] is None:
        return None
    counts: Counter[float] = Counter()
    i = slots
    while i:
        index = best[i][1]
        counts[strengths[index]] += 1
        i -= micro[index] // step
    return tuple(counts.items())


def _entry_for_form(form: str, params: TaperParams) -> DeliverableProduct | None:
    for entry in params.products:
        if entry.form == form:
            return entry
    return None


def delivery_for(product: Product, params: TaperParams) -> Delivery:
    """How doses of `product` are measured. Unknown products are planned in mg."""
    if product.form in ("tablet", "granules"):
        entry = _entry_for_form(product.form, params)
        if entry is not None:
            strengths = entry.strengths_mg
            return Delivery(
                kind=product.form,
                unit_mg=reduce(math.gcd, (_micro(s) for s in strengths)) / _MICRO,
                strengths_mg=strengths,
                description=f"whole {_UNIT_NOUN[product.form]}s of "
                + ", ".join(format_number(s) for s in strengths)
                + " mg",
            )
    if product.is_liquid and product.concentration_mg_per_ml:
        increment = params.liquid_measuring_increment_ml
        concentration = product.concentration_mg_per_ml
        return Delivery(
            kind="liquid",
            unit_mg=round(increment * concentration, 6),
            concentration_mg_per_ml=concentration,
            description=f"{format_number(concentration)} mg/mL liquid measured in "
            f"{format_number(increment)} mL steps",
        )
    unit = params.unknown_product_unit_mg
    return Delivery(
        kind="mg",
        unit_mg=unit,
        strengths_mg=(unit,),
        description=f"mg, in multiples of {format_number(unit)} mg (product not known)",
    )


def _product_from_entry(entry: DeliverableProduct, rxcui: str | None = None) -> Product:
    strength = concentration = None
    name = entry.name
    for code in entry.codes:
        if code.rxcui == rxcui:
            strength = code.strength_mg
            concentration = code.concentration_mg_per_ml
    if entry.form in ("solution", "suspension"):
        concentration = entry.concentration_mg_per_ml
    if strength is not None:
        name = f"baclofen {format_number(strength)} mg oral {entry.form}"
    if entry.form == "injection" and concentration is not None:
        name = f"baclofen {format_number(concentration)} mg/mL intrathecal injection"
    return Product(
        name=name,
        form=entry.form,  # type: ignore[arg-type]  # validated against DoseForm by the schema
        route=entry.route,  # type: ignore[arg-type]
        strength_mg=strength,
        concentration_mg_per_ml=concentration,
        rxcui=rxcui,
    )


def find_product(query: str, params: TaperParams) -> Product | None:
    """A product from an RxCUI ('197391') or text ('ozobax', '5 mg/mL suspension')."""
    text = " ".join(query.lower().split())
    if not text:
        return None
    if text.isdigit():
        for entry in params.products:
            if any(code.rxcui == text for code in entry.codes):
                return _product_from_entry(entry, text)
        return None
    # Longest alias found in the text wins, so "ozobax ds" beats "ozobax".
    matches = [
        (len(alias), entry)
        for entry in params.products
        for alias in entry.aliases
        if alias == text or alias in text
    ]
    if not matches:
        return None
    return _product_from_entry(max(matches, key=lambda match: match[0])[1])
