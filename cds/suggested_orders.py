"""What this service writes into the orders it suggests, and how it knows them again.

The supervised-taper card's suggestions turn the draft order into the taper, or into the
current order continued ("keep the current dose"). Each such order carries:
- an identifier of this service (IDENTIFIER_SYSTEM; value "<kind>/<suggestion uuid>"),
  kept by a client that applies the whole resource;
- a mark at the end of its medication text naming what it is (MARKS), kept by a client
  that takes only the medication of a suggestion (the CDS Hooks Sandbox keeps the text
  and the first code, and nothing else: cds.suggestion_clients).

How a draft is then read (cds.facts.recognition):
- with a dose of its own (a dose in mass or volume, a dosage text), a status that stops
  or holds it, or our identifier (the client took the whole resource), it is judged on
  what it says, like any order. A mark or an identifier never silences a readable cut
  or stop: a taper edited into an abrupt one, or an identifier pasted onto an abrupt
  order, still gets its card.
- with a marked medication and no dose of its own, it is a client's draft with only our
  medication applied: its pill count, frequency and dates are what the clinician drafted
  before accepting, not the suggestion's. It is read as the suggestion it names (the
  taper from the current dose, or the current order continued): nothing changes when it
  is signed. The limit: such a client cannot show the service a later edit of those
  fields either (docs/integrators.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

SuggestedKind = Literal["taper", "keep"]
IDENTIFIER_SYSTEM = "https://baclofen-cds.org/fhir/sid/suggested-order"
MARKS: dict[SuggestedKind, str] = {
    "taper": "supervised taper (baclofen-cds)",
    "keep": "current dose continued (baclofen-cds)",
}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# UCUM (and common) units of mass and volume: a dose stated in them is the order's own.
_MASS_OR_VOLUME = {"mg", "ug", "mcg", "µg", "g", "ml", "l", "milligram", "milligrams",
                   "microgram", "micrograms", "milliliter", "milliliters", "millilitre",
                   "millilitres"}


def marked_text(text: str, kind: SuggestedKind) -> str:
    """A medication text with the mark of `kind` at its end."""
    return f"{text.rstrip(' ,')}, {MARKS[kind]}"


def marked_concept(concept: Mapping[str, Any], kind: SuggestedKind) -> dict[str, Any]:
    """The concept with its text marked and an RxNorm coding first (a client that keeps
    one coding keeps the first, and the Sandbox labels it RxNorm whatever it is)."""
    codings = [dict(c) for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    codings.sort(key=lambda c: c.get("system") != RXNORM)  # stable: the rest keep their order
    text = concept.get("text") if isinstance(concept.get("text"), str) else None
    text = text or next((c["display"] for c in codings if isinstance(c.get("display"), str)),
                        "baclofen")
    result: dict[str, Any] = {"coding": codings} if codings else {}
    result["text"] = marked_text(text, kind)
    return result


def identifier(kind: SuggestedKind, suggestion_uuid: str) -> dict[str, str]:
    return {"system": IDENTIFIER_SYSTEM, "value": f"{kind}/{suggestion_uuid}"}


def mark_of(concept: Any) -> SuggestedKind | None:
    """The suggestion a medication concept's text is marked with, if any."""
    text = concept.get("text") if isinstance(concept, Mapping) else None
    if not isinstance(text, str):
        return None
    folded = " ".join(text.lower().split())
    return next((kind for kind, mark in MARKS.items() if mark in folded), None)


def medication_only(order: Mapping[str, Any]) -> SuggestedKind | None:
    """The suggestion whose medication alone this MedicationRequest carries: a marked
    medication, none of our identifiers, and no dose of its own (module docstring)."""
    kind = mark_of(order.get("medicationCodeableConcept"))
    if kind is None or _has_our_identifier(order) or _states_a_dose(order) \
            or _stops(order):
        return None
    return kind


def _has_our_identifier(order: Mapping[str, Any]) -> bool:
    identifiers = order.get("identifier")
    if not isinstance(identifiers, list):
        return False
    return any(isinstance(i, Mapping) and i.get("system") == IDENTIFIER_SYSTEM
               for i in identifiers)


def _stops(order: Mapping[str, Any]) -> bool:
    """A status or flag that stops or holds the order says so itself."""
    return order.get("status") not in ("draft", "active", None) or \
        order.get("doNotPerform") is True


def _states_a_dose(order: Mapping[str, Any]) -> bool:
    """A dosage text, or a dose or rate in mass or volume (every dose this service writes
    is in mg or mL, so a count of pills cannot be ours)."""
    dosages = order.get("dosageInstruction")
    for dosage in dosages if isinstance(dosages, list) else []:
        if not isinstance(dosage, Mapping):
            continue
        if any(isinstance(dosage.get(k), str) and dosage[k].strip()
               for k in ("text", "patientInstruction")):
            return True
        rates = dosage.get("doseAndRate")
        for rate in rates if isinstance(rates, list) else []:
            if isinstance(rate, Mapping) and any(_in_mass_or_volume(q) for q in _quantities(rate)):
                return True
        if _in_mass_or_volume(dosage.get("maxDosePerAdministration")):
            return True
    return False


def _quantities(rate: Mapping[str, Any]) -> list[Any]:
    found = [rate.get("doseQuantity"), rate.get("rateQuantity")]
    for key in ("doseRange", "rateRange"):
        span = rate.get(key)
        if isinstance(span, Mapping):
            found += [span.get("low"), span.get("high")]
    ratio = rate.get("rateRatio")
    if isinstance(ratio, Mapping):
        found.append(ratio.get("numerator"))
    return found


def _in_mass_or_volume(quantity: Any) -> bool:
    if not isinstance(quantity, Mapping):
        return False
    return any(isinstance(quantity.get(k), str) and quantity[k].strip().lower() in _MASS_OR_VOLUME
               for k in ("code", "unit"))
