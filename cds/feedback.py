"""Feedback from CDS clients: validated, tied to the cards each client received, within a
quota, then stored durably before it is acknowledged.

Integrity rules (docs/security.md):
- feedback about a card we issued to another client (another issuer or tenant), or
  through another service, is refused (403) and nothing of the batch is stored;
- feedback about a card we have no record of is stored but marked unverified: it may
  be a card issued a moment ago by another instance whose record is still on its way,
  and the report counts feedback only when it matches a card issued to the same
  client, so unverified feedback never moves anyone's rates;
- accepted suggestions must be ones the card offered: about a card on record, an id it
  did not carry is refused (400, nothing of the batch stored); about a card not yet on
  record, the report keeps such an answer out of the rates (cds/report.py);
- outcomeTimestamp must be a real instant, no later than now plus clock skew, not older
  than MAX_AGE, and not before the card was issued;
- each entry may take at most MAX_ENTRY_BYTES once stored (413): one entry with 65,000
  suggestion ids stored 5.8 MB;
- each client may store at most `feedback_quota_per_hour` entries and
  `feedback_bytes_per_hour` bytes an hour (429), counted in the transaction that stores
  them (cds/storage.py), so concurrent batches cannot pass it together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cds import envelope
from cds.caller import LOCAL_TRIAL_CLIENT, CdsClient
from cds.errors import ClientError
from cds.serving_model import off_the_loop
from cds.storage import FeedbackEntry, FeedbackQuota, OverQuota, Store

CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
QUOTA_WINDOW = timedelta(hours=1)
# An entry of every field at its longest (a 4,000-character comment in 4-byte characters,
# the override reason, a few dozen suggestion ids) fits with room to spare.
MAX_ENTRY_BYTES = 32 * 1024


class QuotaExceeded(ClientError):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(429, "This client has sent more feedback this hour than the service "
                              "accepts; retry later.")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class FeedbackPolicy:
    quota_per_hour: int
    bytes_per_hour: int = 20 * 1024 * 1024


def parse_feedback(service_id: str, document: Any, client: CdsClient = LOCAL_TRIAL_CLIENT,
                   now: datetime | None = None) -> list[FeedbackEntry]:
    envelope.validate(document, "feedback")
    now = now or datetime.now(UTC)
    entries = []
    for index, item in enumerate(document["feedback"]):
        _check_size(item, index)
        override = item.get("overrideReason") or {}
        reason = override.get("reason") or {}
        timestamp = _outcome_timestamp(item["outcomeTimestamp"], index, now)
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
                client_iss=client.iss,
                client_tenant=client.tenant,
            )
        )
    return entries


def _check_size(item: dict, index: int) -> None:
    """Before anything is built from it: an entry must fit MAX_ENTRY_BYTES as stored."""
    override = item.get("overrideReason") or {}
    reason = override.get("reason") or {}
    texts = [item.get("card"), reason.get("system"), reason.get("code"), reason.get("display"),
             override.get("userComment"),
             *(s.get("id") for s in item.get("acceptedSuggestions") or [])]
    size = sum(len(t.encode("utf-8", "replace")) + 4 for t in texts if isinstance(t, str))
    if size > MAX_ENTRY_BYTES:
        location = f"$.feedback[{index}]"
        raise ClientError(413, f"{location} would take {size} bytes; an entry may take at "
                               f"most {MAX_ENTRY_BYTES}.", location=location)


def _outcome_timestamp(text: str, index: int, now: datetime) -> datetime:
    """The instant in UTC. Year 1 or 9999 with an offset is valid RFC 3339 but falls off
    datetime's range when converted (OverflowError): the client's mistake, so a 400. A
    time far in the future would make every later real outcome invisible (the report
    counts each card's latest feedback), so the window is bounded both ways."""
    location = f"$.feedback[{index}].outcomeTimestamp"
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ClientError(400, f"{location} is not a representable instant",
                          location=location) from None
    if moment > now + CLOCK_SKEW:
        raise ClientError(400, f"{location} lies in the future", location=location)
    if moment < now - MAX_AGE:
        raise ClientError(400, f"{location} is older than {MAX_AGE.days} days",
                          location=location)
    return moment


def _check_against_issued(entries: list[FeedbackEntry], issued: Mapping[str, dict],
                          client: CdsClient) -> None:
    for index, entry in enumerate(entries):
        card = issued.get(entry.card_uuid)
        if card is None:
            continue
        location = f"$.feedback[{index}].card"
        if (card["client_iss"], card["client_tenant"], card["service_id"]) != (
                client.iss, client.tenant, entry.service_id):
            raise ClientError(403, f"{location} names a card this service did not issue to "
                                   "this client.", location=location)
        offered = _suggestion_ids(card.get("suggestions"))
        for position, suggestion in enumerate(entry.accepted_suggestions):
            if suggestion not in offered:
                location = f"$.feedback[{index}].acceptedSuggestions[{position}].id"
                raise ClientError(400, f"{location} names a suggestion this card did not "
                                       "offer.", location=location)
        issued_at = _as_utc(card["issued_at"])
        if entry.outcome_timestamp < issued_at - CLOCK_SKEW:
            location = f"$.feedback[{index}].outcomeTimestamp"
            raise ClientError(400, f"{location} is before the card was issued",
                              location=location)


def _suggestion_ids(stored: str | None) -> set[str]:
    """The uuids of the suggestions an issued card carried (stored as JSON)."""
    return {s["uuid"] for s in json.loads(stored or "[]") if isinstance(s, dict) and s.get("uuid")}


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_feedback(store: Store, service_id: str, document: Any,
                    client: CdsClient = LOCAL_TRIAL_CLIENT,
                    policy: FeedbackPolicy | None = None,
                    ) -> tuple[dict, list[FeedbackEntry]]:
    """Store the entries (committed before we answer); the receipt and what was stored."""
    now = datetime.now(UTC)
    entries = parse_feedback(service_id, document, client, now)
    issued = off_the_loop(store.issued_cards_by_uuid, {e.card_uuid for e in entries})
    _check_against_issued(entries, issued, client)
    quota = None
    if policy is not None:
        quota = FeedbackQuota(client.iss, client.tenant, now - QUOTA_WINDOW,
                              policy.quota_per_hour, policy.bytes_per_hour)
    try:
        stored = off_the_loop(store.save_feedback, entries, quota)
    except OverQuota:
        raise QuotaExceeded(retry_after_seconds=int(QUOTA_WINDOW.total_seconds() // 4)) from None
    receipt = {"received": len(entries), "stored": stored, "duplicates": len(entries) - stored}
    unverified = sum(e.card_uuid not in issued for e in entries)
    if unverified:
        receipt["unverified"] = unverified
    return receipt, entries
