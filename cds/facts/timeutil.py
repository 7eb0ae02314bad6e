"""FHIR date/dateTime parsing that never raises: a malformed value is simply unknown."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

SECONDS_PER_DAY = 86400.0
# Dates a record means lie well inside these years. One outside (9999-12-31 as "no end",
# 0001-01-01 as "unknown") is read as no date, so that no arithmetic on a date from a
# request (a step back, a look-back window, a duration added) can leave the calendar.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _in_calendar(moment: datetime) -> datetime | None:
    return moment if EARLIEST <= moment < LATEST else None


def days_after(moment: datetime, days: float) -> datetime | None:
    """`moment` + `days` (a duration from a request: any size), or None when that is no
    date a record means."""
    if not math.isfinite(days) or abs(days) > (LATEST - EARLIEST).days:
        return None
    return _in_calendar(moment + timedelta(days=days))


def parse_fhir_datetime(value: Any) -> datetime | None:
    """FHIR date or dateTime -> aware UTC datetime; partial dates take their first instant."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    size = len(text)
    try:
        if size == 10:
            return _in_calendar(datetime.combine(date.fromisoformat(text), datetime.min.time(),
                                                 tzinfo=UTC))
        elif size == 7:
            return _in_calendar(datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC))
        elif size == 4:
            return _in_calendar(datetime(int(text), 1, 1, tzinfo=UTC))
        else:  # a dateTime
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is UTC:  # "Z" and "+00:00" both parse to the UTC singleton
        return _in_calendar(parsed)
    if parsed.tzinfo is None:
        # why: FHIR requires a zone; assume UTC, not local
        return _in_calendar(parsed.replace(tzinfo=UTC))
    try:
        return _in_calendar(parsed.astimezone(UTC))
    except OverflowError:  # 0001-01-01T00:00+01:00 lies before the first UTC instant
        return None


def parse_period_end(value: Any) -> datetime | None:
    """A FHIR Period.end: a partial date includes its whole day, month or year (FHIR R4
    datatypes, Period), so '2026-12-03' ends at the first instant of 2026-12-04."""
    start = parse_fhir_datetime(value)
    if start is None:
        return None
    text = value.strip()
    if len(text) == 4:
        return start.replace(year=start.year + 1)
    if len(text) == 7:
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    if len(text) == 10:
        return start + timedelta(days=1)
    return start


def aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_DAY


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def age_in_years(birth_date: Any, now: datetime) -> int | None:
    born = parse_fhir_datetime(birth_date)
    if born is None or born > now:
        return None
    years = now.year - born.year
    if (now.month, now.day) < (born.month, born.day):
        years -= 1
    return years


def fmt_date(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "date unknown"


def fmt_datetime(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "time unknown"

