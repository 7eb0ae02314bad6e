"""Feedback report for CDS governance: per card kind, how often cards were shown, accepted
(and with which suggestion) and overridden (and why).

Counting rules, chosen so the rates cannot exceed 100%:
- "shown" counts the cards this service issued (table issued_cards) since the date;
- each shown card counts once, by its latest feedback (outcomeTimestamp, then arrival),
  so a card first overridden and later accepted counts as accepted;
- feedback about cards outside the window (or never recorded) is reported as
  `unmatched_feedback`, not mixed into any kind.
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
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time was written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_report(store: Store, since: datetime | None = None) -> FeedbackReport:
    issued = store.issued_card_rows(since)
    by_uuid: dict[str, dict] = {row["card_uuid"]: row for row in issued}
    kinds: dict[str, KindReport] = {}
    for row in issued:
        kinds.setdefault(row["kind"], KindReport(row["kind"])).shown += 1

    latest: dict[str, dict] = {}
    unmatched = 0
    for row in store.feedback_rows():
        if row["card_uuid"] not in by_uuid:
            unmatched += 1
            continue
        key = (_as_utc(row["outcome_timestamp"]), row["id"])
        current = latest.get(row["card_uuid"])
        if current is None or key > (_as_utc(current["outcome_timestamp"]), current["id"]):
            latest[row["card_uuid"]] = row

    for card_uuid, row in latest.items():
        card = by_uuid[card_uuid]
        report = kinds[card["kind"]]
        if row["outcome"] == "accepted":
            report.accepted += 1
            # Group by the suggestion's stable name; labels vary with dose and duration.
            labels = {s["uuid"]: s.get("kind") or s["label"]
                      for s in json.loads(card["suggestions"] or "[]")}
            for suggestion in json.loads(row["accepted_suggestions"] or "[]"):
                report.accepted_by_suggestion[labels.get(suggestion, "unknown suggestion")] += 1
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
    code, display = row.get("override_code"), row.get("override_display")
    if code and display:
        return f"{code}: {display}"
    return code or display or NO_REASON


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


def render_csv(report: FeedbackReport) -> str:
    """Long format (one number per row), easy to pivot in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
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
