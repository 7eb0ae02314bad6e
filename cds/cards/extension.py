"""Our `extension` on cards, suggestions and responses: the key and how to read it back."""

from __future__ import annotations

# Our reverse-domain key for CDS Hooks `extension` objects (cards and responses).
EXTENSION_KEY = "org.baclofen-cds"


def card_kind(card: dict) -> str:
    """The kind of one of our cards (emergency-evaluation, supervised-taper, ...)."""
    ext = card.get("extension") or {}
    return str((ext.get(EXTENSION_KEY) or {}).get("kind", "unknown"))


def suggestion_kind(suggestion: dict) -> str:
    """The stable name of one of our suggestions ("" when it has none)."""
    ext = suggestion.get("extension") or {}
    return str((ext.get(EXTENSION_KEY) or {}).get("suggestion", ""))
