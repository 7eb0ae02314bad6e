"""Feedback from CDS clients: validated, then stored durably before it is acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cds import envelope
from cds.errors import ClientError
from cds.storage import FeedbackEntry, Store


def parse_feedback(service_id: str, document: Any) -> list[FeedbackEntry]:
    envelope.validate(document, "feedback")
    entries = []
    for index, item in enumerate(document["feedback"]):
        override = item.get("overrideReason") or {}
        reason = override.get("reason") or {}
        timestamp = _outcome_timestamp(item["outcomeTimestamp"], index)
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
                outcome_timestamp=timestamp,
            )
        )
    return entries


def _outcome_timestamp(text: str, index: int) -> datetime:
    """The instant in UTC. Year 1 or 9999 with an offset is valid RFC 3339 but falls off
    datetime's range when converted (OverflowError): the client's mistake, so a 400."""
    location = f"$.feedback[{index}].outcomeTimestamp"
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ClientError(400, f"{location} is not a representable instant",
                          location=location) from None


def record_feedback(store: Store, service_id: str, document: Any
                    ) -> tuple[dict, list[FeedbackEntry]]:
    """Store the entries (committed before we answer); the receipt and what was parsed."""
    entries = parse_feedback(service_id, document)
    stored = store.save_feedback(entries)
    receipt = {"received": len(entries), "stored": stored, "duplicates": len(entries) - stored}
    return receipt, entries
