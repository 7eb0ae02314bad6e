"""Is this MedicationRequest baclofen, which product, which route, and how did we know?"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from cds.product import Product
from rules import Knowledge
from rules.knowledge import concept_text

# Match paths, most to least trustworthy; reported on the card's evidence.
PATH_RXNORM_PRODUCT = "rxnorm-product"
PATH_INGREDIENT_CODE = "ingredient-code"
PATH_MEDICATION = "medication-reference"
PATH_CONTAINED = "contained-medication"
PATH_BRAND = "brand-name"
PATH_TEXT = "text"

_CONCENTRATION = re.compile(r"(\d+(?:\.\d+)?)\s*mg\s*/\s*(\d+(?:\.\d+)?)?\s*ml")
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b")
_FORM_WORDS = (
    ("injection", "injection"), ("intrathecal", "injection"), ("suspension", "suspension"),
    ("solution", "solution"), ("granule", "granules"), ("tablet", "tablet"),
)


@dataclass(frozen=True)
class Recognition:
    """A baclofen order recognised: its product (with route) and the path that matched."""

    product: Product
    match_path: str


class MedicationIndex:
    """Medication resources by reference: "Medication/id" and fullUrl forms."""

    def __init__(self, medications: list[dict]) -> None:
        self._by_ref: dict[str, dict] = {}
        for med in medications:
            if isinstance(med.get("id"), str):
                self._by_ref[f"Medication/{med['id']}"] = med

    def resolve(self, reference: str, request: dict) -> tuple[dict | None, str]:
        if reference.startswith("#"):
            for item in request.get("contained") or []:
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item, PATH_CONTAINED
            return None, PATH_CONTAINED
        key = "Medication/" + reference.rstrip("/").split("/")[-1]
        if "Medication/" not in reference:
            return None, PATH_MEDICATION
        return self._by_ref.get(key), PATH_MEDICATION


def recognise_baclofen(
    request: dict, medications: MedicationIndex, knowledge: Knowledge
) -> Recognition | None:
    """Recognise baclofen in a MedicationRequest (never raises on malformed input)."""
    try:
        return _recognise(request, medications, knowledge)
    except (AttributeError, TypeError, ValueError):
        return None


def _recognise(request: dict, medications: MedicationIndex, knowledge: Knowledge):
    concept = request.get("medicationCodeableConcept")
    medication: dict | None = None
    via = None
    if isinstance(concept, dict):
        found = _from_concept(concept, knowledge)
    else:
        ref = request.get("medicationReference")
        reference = ref.get("reference") if isinstance(ref, dict) else None
        found = None
        if isinstance(reference, str):
            medication, via = medications.resolve(reference, request)
        if medication is not None:
            found = _from_medication(medication, knowledge)
        elif isinstance(ref, dict) and isinstance(ref.get("display"), str):
            found = _from_concept({"text": ref["display"]}, knowledge)
    if found is None:
        return None
    product, path = found
    if via is not None:
        path = f"{via}/{path}"
    return Recognition(_with_route(product, request, knowledge), path)


def _from_medication(med: dict, knowledge: Knowledge) -> tuple[Product, str] | None:
    found = _from_concept(med.get("code"), knowledge) if isinstance(med.get("code"), dict) else None
    if found is None:
        for ingredient in med.get("ingredient") or []:
            item = ingredient.get("itemCodeableConcept") if isinstance(ingredient, dict) else None
            if isinstance(item, dict) and knowledge.is_baclofen_concept(item):
                found = (Product(name=concept_text(item) or "baclofen"), "ingredient")
                break
    if found is None:
        return None
    product, path = found
    form = _form_of(med.get("form"))
    if form != "unknown" and product.form == "unknown":
        product = replace(product, form=form)
    return _with_ingredient_strength(product, med, knowledge), path


def _from_concept(concept: Any, knowledge: Knowledge) -> tuple[Product, str] | None:
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    for coding in codings:
        if coding.get("system") == knowledge.systems["rxnorm"]:
            product = knowledge.products_by_rxcui.get(coding.get("code"))
            if product is not None:
                return product, PATH_RXNORM_PRODUCT
    text = concept_text(concept)
    for coding in codings:
        if knowledge.baclofen_ingredient.matches_coding(coding):
            name = coding.get("display") or "baclofen"
            return _product_from_text(text, name), PATH_INGREDIENT_CODE
    for brand in knowledge.brands:  # listed most specific first
        if brand["name"] in text:
            product = _product_from_text(text, brand["name"].title())
            return replace(
                product,
                form=product.form if product.form != "unknown" else brand["form"],
                route=brand["route"],
            ), PATH_BRAND
    if any(name in text for name in knowledge.generic_names):
        return _product_from_text(text, "baclofen"), PATH_TEXT
    return None


def _product_from_text(text: str, name: str) -> Product:
    """Form and an explicitly written strength from a name like 'baclofen 10 MG Oral Tablet'."""
    form = next((f for word, f in _FORM_WORDS if word in text), "unknown")
    strength = concentration = None
    conc = _CONCENTRATION.search(text)
    if conc:
        per_ml = float(conc.group(2)) if conc.group(2) else 1.0
        concentration = float(conc.group(1)) / per_ml if per_ml else None
    elif form in ("tablet", "granules"):
        single = _STRENGTH.search(text)
        strength = float(single.group(1)) if single else None
    return Product(name=name, form=form, strength_mg=strength,
                   concentration_mg_per_ml=concentration)


def _form_of(concept: Any) -> str:
    if not isinstance(concept, dict):
        return "unknown"
    text = concept_text(concept)
    return next((f for word, f in _FORM_WORDS if word in text), "unknown")


def _with_ingredient_strength(product: Product, med: dict, knowledge: Knowledge) -> Product:
    """Medication.ingredient.strength (a Ratio) gives mg per tablet or mg per mL."""
    for ingredient in med.get("ingredient") or []:
        if not isinstance(ingredient, dict):
            continue
        item = ingredient.get("itemCodeableConcept")
        ingredients = med.get("ingredient") or []
        if len(ingredients) > 1 and not knowledge.is_baclofen_concept(item):
            continue
        ratio = ingredient.get("strength")
        if not isinstance(ratio, dict):
            continue
        num, den = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        mg = mass_in_mg(num.get("value"), _unit(num))
        den_value = den.get("value", 1)
        if mg is None or not isinstance(den_value, int | float) or den_value <= 0:
            continue
        den_unit = _unit(den).lower()
        if den_unit in ("ml", "milliliter"):
            return replace(product, concentration_mg_per_ml=mg / den_value)
        if den_unit in ("l",):
            return replace(product, concentration_mg_per_ml=mg / (den_value * 1000))
        return replace(product, strength_mg=mg / den_value)
    return product


def _with_route(product: Product, request: dict, knowledge: Knowledge) -> Product:
    """Route: any injection is intrathecal; otherwise the dosage route, then brand/product."""
    if product.form == "injection":
        return replace(product, route="intrathecal")
    for dosage in request.get("dosageInstruction") or []:
        route = dosage.get("route") if isinstance(dosage, dict) else None
        if knowledge.intrathecal_routes.matches_concept(route):
            return replace(product, route="intrathecal")
        if knowledge.oral_routes.matches_concept(route):
            return replace(product, route="oral")
    if product.route != "unknown":
        return product
    if product.form in ("tablet", "solution", "suspension", "granules"):
        return replace(product, route="oral")
    return product


def _unit(quantity: dict) -> str:
    unit = quantity.get("code") or quantity.get("unit") or ""
    return unit if isinstance(unit, str) else ""


def mass_in_mg(value: Any, unit: str) -> float | None:
    """A mass in mg, mcg or g -> mg; anything else is None."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return None
    factor = {"mg": 1.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001, "g": 1000.0}.get(unit.lower())
    return value * factor if factor is not None else None
