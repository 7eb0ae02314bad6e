"""The taper planner's parameters, built from rules/taper.yaml and rules/products.yaml.

The knowledge loader validates both files and calls `build_taper_params`; the planner
only reads the result. Nothing here is a clinical value of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cds.knowledge.errors import KnowledgeError

Risk = Literal["standard", "high"]


@dataclass(frozen=True)
class StepPolicy:
    max_step_mg_per_day: float
    interval_days: int
    min_duration_days: int


@dataclass(frozen=True)
class DeliverableCode:
    rxcui: str
    strength_mg: float | None
    concentration_mg_per_ml: float | None


@dataclass(frozen=True)
class DeliverableProduct:
    """A product the planner can deliver doses of, derived from rules/products.yaml's rows
    (cds.knowledge.model.ProductEntry): the tablets of several strengths are one."""

    id: str
    name: str
    form: str
    route: str
    strengths_mg: tuple[float, ...]
    concentration_mg_per_ml: float | None
    aliases: tuple[str, ...]
    codes: tuple[DeliverableCode, ...]


@dataclass(frozen=True)
class TaperParams:
    standard: StepPolicy
    high: StepPolicy
    minimum_reductions: int
    labelled_max_daily_mg: float
    # A first step cutting this fraction of the dose is what the service calls abrupt
    # (thresholds.yaml large_cut_fraction): its own plans start below it.
    large_cut_fraction: float
    min_dose_per_administration_mg: float
    default_administrations_per_day: int
    liquid_measuring_increment_ml: float
    unknown_product_unit_mg: float
    products: tuple[DeliverableProduct, ...]
    tube_product_id: str
    oral_route: dict[str, str]  # FHIR Coding (system, code, display)
    tube_route: dict[str, str]
    nasal_tube_route: dict[str, str] | None
    nasal_tube_words: tuple[str, ...]
    ingredient_coding: tuple[dict[str, str], ...]
    intrathecal_advice: str

    def policy(self, risk: Risk) -> StepPolicy:
        return self.high if risk == "high" else self.standard

    def product(self, product_id: str) -> DeliverableProduct:
        for entry in self.products:
            if entry.id == product_id:
                return entry
        raise KeyError(product_id)


def _coding(raw: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(raw[key]) for key in ("system", "code", "display")}


def _aliases(entry: Any) -> tuple[str, ...]:
    words = [*entry.names, entry.form]
    if entry.concentration_mg_per_ml:
        conc = f"{entry.concentration_mg_per_ml:g} mg/ml"
        words += [conc, f"{conc} {entry.form}", f"{conc} oral {entry.form}"]
    if entry.form == "tablet":
        words += ["tab", "tablets", "baclofen tablet"]
    if entry.form == "injection":
        words += ["intrathecal", "injection", "pump"]
    return tuple(dict.fromkeys(w.lower() for w in words))


def build_taper_params(doc: Mapping[str, Any], products: Mapping[str, Any],
                       thresholds: Mapping[str, Any]) -> TaperParams:
    """TaperParams from the validated taper document and the product table."""

    def policy(risk: str) -> StepPolicy:
        step = doc["steps"][risk]
        return StepPolicy(float(step["max_step_mg_per_day"]), int(step["interval_days"]),
                          int(doc["minimum_duration_days"][risk]["value"]))

    def product(product_id: str, where: str, form: str | None = None) -> Any:
        entry = products.get(product_id)
        if entry is None:
            raise KnowledgeError(f"taper.yaml: {where}", f"no product '{product_id}' in "
                                                         "products.yaml")
        if form is not None and entry.form != form:
            raise KnowledgeError(f"taper.yaml: {where}", f"'{product_id}' is not a {form}")
        return entry

    tablets = [product(pid, "tablet_products", "tablet") for pid in doc["tablet_products"]]
    usable = [t for t in tablets if t.strength_usable]
    if not usable:
        raise KnowledgeError("taper.yaml: tablet_products",
                             "no tablet strength has a usable code in products.yaml")
    tablet_entry = DeliverableProduct(
        id="tablet", name="baclofen oral tablet", form="tablet", route="oral",
        strengths_mg=tuple(sorted(float(t.strength_mg) for t in usable)),
        concentration_mg_per_ml=None,
        aliases=tuple(dict.fromkeys(a for t in usable for a in _aliases(t))),
        codes=tuple(DeliverableCode(c.code.code, float(t.strength_mg), None)
                    for t in usable for c in t.codes if c.usable_for_dose))
    granules = product(doc["granule_product"], "granule_product", "granules")
    entries = [tablet_entry, DeliverableProduct(
        id=granules.id, name=granules.name, form="granules", route="oral",
        strengths_mg=tuple(float(s) for s in granules.packet_strengths_mg),
        concentration_mg_per_ml=None, aliases=_aliases(granules), codes=())]
    for entry in products.values():
        if entry.form in ("solution", "suspension", "injection"):
            entries.append(DeliverableProduct(
                id=entry.id, name=entry.name, form=entry.form, route=entry.route,
                strengths_mg=(), concentration_mg_per_ml=entry.concentration_mg_per_ml,
                aliases=_aliases(entry),
                codes=tuple(DeliverableCode(c.code.code, None, entry.concentration_mg_per_ml)
                            for c in entry.codes if c.usable_for_dose)))
    tube = product(doc["tube_product"], "tube_product")
    if tube.form not in ("solution", "suspension"):
        raise KnowledgeError("taper.yaml: tube_product", "the tube product must be an oral liquid")
    return TaperParams(
        standard=policy("standard"),
        high=policy("high"),
        minimum_reductions=int(doc["minimum_reductions"]["value"]),
        labelled_max_daily_mg=float(thresholds["label_max_mg_per_day"].value),
        large_cut_fraction=float(thresholds["large_cut_fraction"].value),
        min_dose_per_administration_mg=float(doc["min_dose_per_administration_mg"]["value"]),
        default_administrations_per_day=int(doc["default_administrations_per_day"]["value"]),
        liquid_measuring_increment_ml=float(doc["liquid_measuring_increment_ml"]["value"]),
        unknown_product_unit_mg=float(doc["unknown_product_unit_mg"]["value"]),
        products=tuple(entries),
        tube_product_id=tube.id,
        oral_route=_coding(doc["oral_route"]),
        tube_route=_coding(doc["tube_route"]),
        nasal_tube_route=_coding(doc["nasal_tube_route"]) if "nasal_tube_route" in doc else None,
        nasal_tube_words=tuple(w.lower() for w in doc.get("nasal_tube_words", ())),
        ingredient_coding=tuple(_coding(c) for c in doc["ingredient_coding"]),
        intrathecal_advice=" ".join(doc["intrathecal_advice"]["text"].split()),
    )
