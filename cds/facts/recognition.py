"""Is this medication baclofen, which product, which route, and how do we know?

Evidence, strongest first: a product code of rules/products.yaml (system and code), the
baclofen ingredient code, a brand or product name, the word baclofen. The route then
comes from the product (every injection is intrathecal), the order's coded route, the
words of the order (intrathecal, injection, mcg/mL, pump...), and last from context: an
implanted pump on record makes a baclofen order of unknown form intrathecal. Anything
intrathecal can never fall through to oral. A route known only from words or context is
`weak`, and the card says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from cds.facts.units import number
from cds.knowledge import Knowledge
from cds.knowledge.model import ProductEntry, concept_text
from cds.product import Product
from cds.suggested_orders import SuggestedKind, medication_only

PATH_PRODUCT_CODE = "product code"
PATH_INGREDIENT_CODE = "ingredient code"
PATH_NAME = "product name"
PATH_TEXT = "the word baclofen"
# A number starts only where no digit precedes: the same readings, in linear time
# (cds/facts/sig.py says why).
_CONCENTRATION = re.compile(
    r"(?<!\d)(\d+(?:[.,]\d+)?)\s*(mg|mcg|micrograms?|ug|µg)\s*(?:/|per|in)\s*(\d+(?:\.\d+)?)?"
    r"\s*(ml|millilit)")
# A strength, or a list of them sharing one unit ("5, 10, 15 or 20 mg"); not a rate (mg/day).
# The list is matched first and the unit looked for after it: each list is read once, so
# the reading is linear however long a list of numbers the text holds.
_NUMBER = r"\d+(?:\.\d+)?"
_NUMBER_LIST = re.compile(
    rf"(?<![\d.]){_NUMBER}(?:\s*(?:,|/|&|\band\b|\bor\b)\s*{_NUMBER})*")
_MG_AFTER = re.compile(r"\s*mg\b(?!\s*/\s*(?:d|day|kg|24))")


@dataclass(frozen=True)
class Recognition:
    product: Product
    path: str  # how baclofen was recognised (one of the PATH_ names, "via Medication")
    route_evidence: str  # what set the route ("product code", "coded route", "text", ...)
    weak: bool  # the route rests on words or context only
    # The suggestion of this service ("taper", "keep") whose medication alone this order
    # carries: a client applied our medication to its own draft (cds.suggested_orders).
    medication_of_suggestion: SuggestedKind | None = None


class MedicationIndex:
    """Medication resources by reference ("Medication/id"), and contained ones."""

    def __init__(self, medications: list[dict]) -> None:
        self._by_ref = {f"Medication/{m['id']}": m for m in medications
                        if isinstance(m.get("id"), str)}

    def resolve(self, reference: str, holder: Mapping) -> dict | None:
        if reference.startswith("#"):
            contained = holder.get("contained")
            for item in contained if isinstance(contained, list) else []:
                if isinstance(item, dict) and item.get("id") == reference[1:]:
                    return item
            return None
        if "Medication/" not in reference:
            return None
        return self._by_ref.get("Medication/" + reference.rstrip("/").split("/")[-1])


class Recogniser:
    """Recognition with the product table indexed once per knowledge."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.by_code = {(c.code.system, c.code.code): p for p in knowledge.products.values()
                        for c in p.codes}
        self.by_name = sorted(((n, p) for p in knowledge.products.values() for n in p.names),
                              key=lambda item: -len(item[0]))
        words = knowledge.text_recognition
        self.baclofen_names = tuple(w.lower() for w in words["baclofen_names"])
        # Product words (vial, mcg/mL, ITB) and route words (intraspinal, via pump) alike.
        self.intrathecal_words = tuple(dict.fromkeys(
            w.lower().strip() for w in [*words["intrathecal_words"],
                                        *knowledge.code_sets["route_intrathecal"].words]))
        self.form_words = {form: tuple(w.lower() for w in ws)
                           for form, ws in words["form_words"].items()}
        self.ingredient = knowledge.code_sets["baclofen_ingredient"]
        self.route_intrathecal = knowledge.code_sets["route_intrathecal"]
        self.route_oral = knowledge.code_sets["route_oral"]
        self.route_tube = knowledge.code_sets["route_enteral_tube"]

    # -- is it baclofen at all (cheap; also used to pick what to model)

    def is_baclofen_concept(self, concept: Any) -> bool:
        if not isinstance(concept, Mapping):
            return False
        codings = concept.get("coding")
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, Mapping) and (
                    (coding.get("system"), coding.get("code")) in self.by_code
                    or self.ingredient.matches_coding(coding)):
                return True
        return _has_word(concept_text(concept), self.baclofen_names)

    # -- full recognition

    def recognise(self, holder: Mapping, medications: MedicationIndex, pump_on_record: bool
                  ) -> Recognition | None:
        """`holder`: a MedicationRequest or MedicationAdministration. Never raises."""
        try:
            return self._recognise(holder, medications, pump_on_record)
        except (AttributeError, TypeError, ValueError, KeyError):
            return None

    def _recognise(self, holder: Mapping, medications: MedicationIndex, pump_on_record: bool
                   ) -> Recognition | None:
        found = None
        via = ""
        medication = None
        concept = holder.get("medicationCodeableConcept")
        if isinstance(concept, Mapping):
            found = self._from_concept(concept)
        else:
            ref = holder.get("medicationReference")
            reference = ref.get("reference") if isinstance(ref, Mapping) else None
            medication = medications.resolve(reference, holder) if isinstance(reference, str) \
                else None
            if medication is not None:
                found, via = self._from_medication(medication), " (via Medication)"
            elif isinstance(ref, Mapping) and isinstance(ref.get("display"), str):
                found = self._from_concept({"text": ref["display"]})
        if found is None:
            return None
        product, path = found
        recognition = self._with_route(product, path + via, holder, medication, pump_on_record)
        if holder.get("resourceType") == "MedicationRequest":
            suggested = medication_only(holder)
            if suggested is not None:
                recognition = replace(recognition, medication_of_suggestion=suggested)
        return recognition

    def _from_concept(self, concept: Mapping) -> tuple[Product, str] | None:
        codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
        for coding in codings:
            entry = self.by_code.get((coding.get("system"), coding.get("code")))
            if entry is not None:
                return _product(entry), PATH_PRODUCT_CODE
        text = concept_text(concept)
        if any(self.ingredient.matches_coding(c) for c in codings):
            return self._from_text(text, "baclofen"), PATH_INGREDIENT_CODE
        for name, entry in self.by_name:
            if _has_word(text, (name,)):
                return _merge(self._from_text(text, entry.name), _product(entry)), PATH_NAME
        if _has_word(text, self.baclofen_names):
            return self._from_text(text, "baclofen"), PATH_TEXT
        return None

    def _from_medication(self, med: Mapping) -> tuple[Product, str] | None:
        found = self._from_concept(med["code"]) if isinstance(med.get("code"), Mapping) else None
        ingredients = [i for i in med.get("ingredient") or [] if isinstance(i, Mapping)]
        if found is None:
            for ingredient in ingredients:
                item = ingredient.get("itemCodeableConcept")
                if isinstance(item, Mapping) and self.is_baclofen_concept(item):
                    found = (self._from_text(concept_text(item), "baclofen"), PATH_INGREDIENT_CODE)
                    break
        if found is None:
            return None
        product, path = found
        form = self._form(concept_text(med.get("form")))
        if form and product.form == "unknown":
            product = replace(product, form=form)
        return _with_strength(product, ingredients, self), path

    def _from_text(self, text: str, name: str) -> Product:
        """Form and a written strength or concentration, e.g. 'baclofen 2000 mcg/mL inj'."""
        form = self._form(text) or "unknown"
        strength = concentration = None
        conc = _CONCENTRATION.search(text)
        if conc:
            amount = float(conc.group(1).replace(",", ""))
            per_ml = float(conc.group(3)) if conc.group(3) else 1.0
            mg = amount if conc.group(2) == "mg" else amount / 1000
            concentration = mg / per_ml if per_ml else None
        elif form in ("tablet", "granules"):
            strength = _single_strength(text)
        return Product(name=name, form=form, strength_mg=strength,
                       concentration_mg_per_ml=concentration)

    def _form(self, text: str) -> str | None:
        if not text:
            return None
        for form, words in self.form_words.items():
            if _has_word(text, words):
                return form
        return None

    def _with_route(self, product: Product, path: str, holder: Mapping,
                    medication: Mapping | None, pump_on_record: bool) -> Recognition:
        if product.route == "intrathecal" or product.form == "injection":
            strong = path.startswith(PATH_PRODUCT_CODE)
            if not strong and self._coded_route(holder) == "intrathecal":
                # The product is named in text only, but the route is coded intrathecal:
                # recognised, not a guess to check.
                return Recognition(replace(product, route="intrathecal", form="injection"),
                                   path, "coded route", False)
            return Recognition(replace(product, route="intrathecal", form="injection"), path,
                               "product code" if strong else "the product's name", not strong)
        if path.startswith(PATH_PRODUCT_CODE) and product.route == "oral":
            # A product code of an oral product settles it: words such as "while ITB
            # delivery is restored" in the sig of an oral tablet are not its route.
            return Recognition(product, path, "product code", False)
        coded = self._coded_route(holder)
        if coded == "intrathecal":
            return Recognition(replace(product, route="intrathecal"), path, "coded route", False)
        text = " ".join((_all_text(holder), _medication_text(medication)))
        if _has_word(text, self.intrathecal_words) or _doses_in_micrograms(holder):
            # Intrathecal words beat a coded oral route: the pump product read as oral would
            # get the oral taper card, the safe reading is the one with the shorter clock.
            evidence = ("the words of the order, though its coded route is by mouth or tube"
                        if coded else "the words of the order")
            return Recognition(replace(product, route="intrathecal", form="injection"), path,
                               evidence, True)
        if coded is not None:
            return Recognition(replace(product, route=coded), path, "coded route", False)
        if product.route == "oral" or product.form in ("tablet", "solution", "suspension",
                                                         "granules"):
            return Recognition(replace(product, route="oral"), path, "product form", False)
        if pump_on_record:
            return Recognition(replace(product, route="intrathecal", form="injection"), path,
                               "an implanted pump on record", True)
        # A baclofen order of unknown form, no injection words, no pump: taken by mouth.
        return Recognition(replace(product, route="oral"), path, "no route stated", False)

    def _coded_route(self, holder: Mapping) -> str | None:
        dosages = holder.get("dosageInstruction")
        if not isinstance(dosages, list):
            dosage = holder.get("dosage")  # MedicationAdministration
            dosages = [dosage] if isinstance(dosage, Mapping) else []
        for dosage in dosages:
            route = dosage.get("route") if isinstance(dosage, Mapping) else None
            if not isinstance(route, Mapping):
                continue
            codings = route.get("coding") if isinstance(route.get("coding"), list) else []
            if any(self.route_intrathecal.matches_coding(c) for c in codings):
                return "intrathecal"
            if any(self.route_oral.matches_coding(c) or self.route_tube.matches_coding(c)
                   for c in codings):
                return "oral"
        return None


def _single_strength(text: str) -> float | None:
    """The one strength a text names. A text naming several ("whole tablets of 5, 10, 15,
    20 mg", "10 mg and 20 mg tablets", a text and a display that disagree) names no single
    strength: a count of its tablets is no dose in mg."""
    found = {float(n) for match in _NUMBER_LIST.finditer(text)
             if _MG_AFTER.match(text, match.end())
             for n in re.findall(_NUMBER, match.group(0))}
    return found.pop() if len(found) == 1 else None


def _product(entry: ProductEntry) -> Product:
    return Product(name=entry.name, form=entry.form, route=entry.route,  # type: ignore[arg-type]
                   strength_mg=entry.strength_mg,
                   concentration_mg_per_ml=entry.concentration_mg_per_ml,
                   rxcui=next((c.code.code for c in entry.codes), None))


def _merge(from_text: Product, entry: Product) -> Product:
    """A named product (Ozobax) with what the order's text adds (a strength)."""
    return replace(entry,
                   strength_mg=entry.strength_mg or from_text.strength_mg,
                   concentration_mg_per_ml=(entry.concentration_mg_per_ml
                                            or from_text.concentration_mg_per_ml),
                   form=entry.form if entry.form != "unknown" else from_text.form, rxcui=None)


def _with_strength(product: Product, ingredients: list[Mapping], recogniser: Recogniser
                   ) -> Product:
    """Medication.ingredient.strength (a Ratio): mg per tablet or mg per mL."""
    for ingredient in ingredients:
        item = ingredient.get("itemCodeableConcept")
        if len(ingredients) > 1 and not recogniser.is_baclofen_concept(item):
            continue
        ratio = ingredient.get("strength")
        if not isinstance(ratio, Mapping):
            continue
        numerator, denominator = ratio.get("numerator"), ratio.get("denominator")
        if not isinstance(numerator, Mapping):
            continue
        mg = mass_in_mg(number(numerator.get("value")), _unit(numerator))
        per = number((denominator or {}).get("value", 1)) if isinstance(denominator, Mapping) \
            else 1.0
        if mg is None or not per or per <= 0:
            continue
        per_unit = _unit(denominator).lower() if isinstance(denominator, Mapping) else ""
        if per_unit in ("ml", "milliliter"):
            return replace(product, concentration_mg_per_ml=mg / per)
        if per_unit == "l":
            return replace(product, concentration_mg_per_ml=mg / (per * 1000))
        return replace(product, strength_mg=mg / per)
    return product


def _unit(quantity: Mapping) -> str:
    unit = quantity.get("code") or quantity.get("unit") or ""
    return unit if isinstance(unit, str) else ""


def mass_in_mg(value: float | None, unit: str) -> float | None:
    """A mass in mg, mcg or g -> mg; anything else is None."""
    if value is None or value < 0:
        return None
    factor = {"mg": 1.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001, "g": 1000.0}.get(unit.lower())
    return value * factor if factor is not None else None


def _has_word(text: str, words: tuple[str, ...]) -> bool:
    """A word of `words` in `text`, also glued to a number ('2000mcg/mL') and with a plural
    or adverb ending ('vials', 'intrathecally'). `text` is lower case."""
    return bool(text and words) and _word_pattern(words).search(text) is not None


@lru_cache(maxsize=256)
def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z])(?:{alternatives})(?:s|es|ly)?(?![a-z0-9])")


def _medication_text(medication: Mapping | None) -> str:
    if not isinstance(medication, Mapping):
        return ""
    parts = [concept_text(medication.get("code")), concept_text(medication.get("form"))]
    for ingredient in medication.get("ingredient") or []:
        if isinstance(ingredient, Mapping):
            parts.append(concept_text(ingredient.get("itemCodeableConcept")))
    return " ".join(p for p in parts if p)


def _all_text(holder: Mapping) -> str:
    """The order's free text: medication text, dosage texts, notes (lower case)."""
    parts: list[str] = []
    concept = holder.get("medicationCodeableConcept")
    parts.append(concept_text(concept))
    ref = holder.get("medicationReference")
    if isinstance(ref, Mapping) and isinstance(ref.get("display"), str):
        parts.append(ref["display"].lower())
    for dosage in holder.get("dosageInstruction") or []:
        if isinstance(dosage, Mapping):
            for key in ("text", "patientInstruction"):
                if isinstance(dosage.get(key), str):
                    parts.append(dosage[key].lower())
            parts.append(concept_text(dosage.get("route")))
    return " ".join(p for p in parts if p)


def _doses_in_micrograms(holder: Mapping) -> bool:
    for dosage in holder.get("dosageInstruction") or []:
        for rate in (dosage.get("doseAndRate") or []) if isinstance(dosage, Mapping) else []:
            if not isinstance(rate, Mapping):
                continue
            for key in ("doseQuantity", "rateQuantity"):
                q = rate.get(key)
                unit = (q.get("code") or q.get("unit")) if isinstance(q, Mapping) else None
                if isinstance(unit, str) and unit.lower().startswith(("ug", "mcg", "µg")):
                    return True
    return False
