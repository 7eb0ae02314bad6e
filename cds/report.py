"""Feedback report for CDS governance: per card kind, how often cards were shown, accepted
(and with which suggestion) and overridden (and why).

Counting rules, chosen so the rates cannot exceed 100% and no client can move them:
- "shown" counts the cards this service issued (table issued_cards) since the date;
- feedback counts only when it came from the client the card was issued to (same
  issuer and tenant; with authentication off, every call is the same local client);
- each shown card counts once, by its latest feedback (outcomeTimestamp, then arrival),
  so a card first overridden and later accepted counts as accepted;
- accepted suggestions are grouped by the suggestion's stable name (or its label) as
  issued on the card; override reasons by the code the card offered, with the display
  text of the card we issued, whatever text the client sent back; a code the card did
  not offer is counted as "a reason the card did not offer";
- feedback matching no card issued in the window to its sender is `unmatched_feedback`,
  and so is a card's latest answer when it accepts a suggestion the card did not offer
  (feedback stored before its card was on record; cds/feedback.py refuses it after):
  that card then counts as shown without feedback.
Everything is selected in SQL (cds/storage.py): the report reads one row per answered
card in the window.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from cds.storage import Store

NO_REASON = "no reason given"
NOT_OFFERED = "a reason the card did not offer"


@dataclass
class KindReport:
    kind: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    accepted_by_suggestion: Counter[str] = field(default_factory=Counter)
    overridden_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def without_feedback(self) -> int:
        return self.shown - self.accepted - self.overridden

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.shown if self.shown else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.shown if self.shown else None


@dataclass
class FeedbackReport:
    since: datetime | None
    generated_at: datetime
    kinds: list[KindReport]
    unmatched_feedback: int = 0


def parse_since(text: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time; a naive time is taken as UTC."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # In UTC here, as the database compares it: year 1 at +14:00 falls off the
        # calendar (OverflowError: a 500 until issue 26.5).
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO date-time "
                         "within the calendar") from None


def build_report(store: Store, since: datetime | None = None) -> FeedbackReport:
    kinds = {kind: KindReport(kind, shown=count)
             for kind, count in store.shown_by_kind(since).items()}
    unmatched = store.unmatched_feedback_count(since)
    for row in store.latest_feedback_per_card(since):
        report = kinds.setdefault(row["kind"], KindReport(row["kind"]))
        if row["outcome"] == "accepted":
            # Group by the suggestion's stable name; labels vary with dose and duration.
            labels = {s["uuid"]: s.get("kind") or s["label"]
                      for s in json.loads(row["suggestions"] or "[]")}
            accepted = json.loads(row["accepted_suggestions"] or "[]")
            if not accepted or any(suggestion not in labels for suggestion in accepted):
                unmatched += 1  # not an answer to the card as issued
                continue
            report.accepted += 1
            for suggestion in accepted:
                report.accepted_by_suggestion[labels[suggestion]] += 1
        elif row["outcome"] == "overridden":
            report.overridden += 1
            report.overridden_by_reason[_reason_text(row)] += 1

    return FeedbackReport(
        since=since,
        generated_at=datetime.now(UTC),
        kinds=sorted(kinds.values(), key=lambda k: k.kind),
        unmatched_feedback=unmatched,
    )


def _reason_text(row: dict) -> str:
    """The reason as our card offered it: the client's own display text is never shown
    (it is free text from outside), and a client sending only system and code gets the
    display of the card we issued."""
    code = row.get("override_code")
    if not code:
        return NO_REASON
    offered = json.loads(row.get("override_reasons") or "[]")
    system = row.get("override_system")
    for reason in offered:
        if reason.get("code") == code and system in (None, reason.get("system")):
            return f"{code}: {reason.get('display')}"
    return NOT_OFFERED


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def report_json(report: FeedbackReport) -> dict[str, Any]:
    return {
        "since": report.since.isoformat() if report.since else None,
        "generatedAt": report.generated_at.isoformat(),
        "kinds": [
            {
                "kind": k.kind,
                "shown": k.shown,
                "accepted": k.accepted,
                "overridden": k.overridden,
                "withoutFeedback": k.without_feedback,
                "acceptanceRate": k.acceptance_rate,
                "overrideRate": k.override_rate,
                "acceptedBySuggestion": dict(k.accepted_by_suggestion.most_common()),
                "overriddenByReason": dict(k.overridden_by_reason.most_common()),
            }
            for k in report.kinds
        ],
        "unmatchedFeedback": report.unmatched_feedback,
    }


def render_table(report: FeedbackReport) -> str:
    window = f"since {report.since.isoformat()}" if report.since else "all time"
    lines = [f"Feedback report ({window})", ""]
    if not report.kinds:
        lines.append("No cards were shown in this period.")
    headers = ("Card kind", "Shown", "Accepted", "Overridden", "No feedback", "Accept %",
               "Override %")
    rows = [
        (k.kind, str(k.shown), str(k.accepted), str(k.overridden), str(k.without_feedback),
         _percent(k.acceptance_rate), _percent(k.override_rate))
        for k in report.kinds
    ]
    if rows:
        widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
        fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
        lines.append(fmt.format(*headers))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(fmt.format(*row) for row in rows)
    for k in report.kinds:
        details = [f"  accepted: {label} ({count})"
                   for label, count in k.accepted_by_suggestion.most_common()]
        details += [f"  overridden: {reason} ({count})"
                    for reason, count in k.overridden_by_reason.most_common()]
        if details:
            lines += ["", f"{k.kind}:", *details]
    if report.unmatched_feedback:
        lines += ["", f"Feedback about cards not shown in this period: {report.unmatched_feedback}"]
    return "\n".join(lines) + "\n"


CSV_HEADER = ("kind", "measure", "detail", "count", "rate")


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, out: io.StringIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: tuple) -> None:
        self._writer.writerow([_cell(value) for value in row])


def render_csv(report: FeedbackReport) -> str:
    """Long format (one number per row), easy to pivot in a spreadsheet; text cells that
    a spreadsheet would take for a formula are quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = _SafeWriter(out)
    writer.writerow(CSV_HEADER)
    for k in report.kinds:
        writer.writerow((k.kind, "shown", "", k.shown, ""))
        writer.writerow((k.kind, "accepted", "", k.accepted, _rate(k.acceptance_rate)))
        for label, count in k.accepted_by_suggestion.most_common():
            writer.writerow((k.kind, "accepted", label, count, ""))
        writer.writerow((k.kind, "overridden", "", k.overridden, _rate(k.override_rate)))
        for reason, count in k.overridden_by_reason.most_common():
            writer.writerow((k.kind, "overridden", reason, count, ""))
        writer.writerow((k.kind, "no feedback", "", k.without_feedback, ""))
    if report.unmatched_feedback:
        writer.writerow(("", "unmatched feedback", "", report.unmatched_feedback, ""))
    return out.getvalue()


def _rate(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.4f}"
