"""Feedback from CDS clients: validated, then stored durably before it is acknowledged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cds import envelope
from cds.storage import FeedbackEntry, Store


def parse_feedback(service_id: str, document: Any) -> list[FeedbackEntry]:
    envelope.validate(document, "feedback")
    entries = []
    for item in document["feedback"]:
        override = item.get("overrideReason") or {}
        reason = override.get("reason") or {}
        timestamp = item["outcomeTimestamp"].replace("z", "Z").replace("t", "T")
        entries.append(
            FeedbackEntry(
                service_id=service_id,
                card_uuid=item["card"],
                outcome=item["outcome"],
                accepted_suggestions=tuple(s["id"] for s in item.get("acceptedSuggestions") or []),
                override_system=reason.get("system"),
                override_code=reason.get("code"),
                override_display=reason.get("display"),
                user_comment=override.get("userComment"),
                outcome_timestamp=datetime.fromisoformat(timestamp),
            )
        )
    return entries


def record_feedback(store: Store, service_id: str, document: Any
                    ) -> tuple[dict, list[FeedbackEntry]]:
    """Store the entries (committed before we answer); the receipt and what was parsed."""
    entries = parse_feedback(service_id, document)
    stored = store.save_feedback(entries)
    receipt = {"received": len(entries), "stored": stored, "duplicates": len(entries) - stored}
    return receipt, entries
