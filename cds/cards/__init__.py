"""Findings become CDS Hooks 2.0 cards, worded from rules/cards."""

from cds.cards.builder import build_card
from cds.cards.extension import EXTENSION_KEY, card_kind, suggestion_kind

__all__ = ["EXTENSION_KEY", "build_card", "card_kind", "suggestion_kind"]
