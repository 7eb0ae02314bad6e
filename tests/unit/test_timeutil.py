"""FHIR date and dateTime parsing: every form FHIR allows, as an aware UTC instant; a
malformed value is unknown (None), never an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds.facts.timeutil import LATEST, days_after, parse_fhir_datetime, parse_period_end


@pytest.mark.parametrize(("text", "expected"), [
    ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-03", datetime(2026, 3, 1, tzinfo=UTC)),
    ("2026-03-05", datetime(2026, 3, 5, tzinfo=UTC)),
    ("2026-03-05T10:20:30Z", datetime(2026, 3, 5, 10, 20, 30, tzinfo=UTC)),
    ("2026-03-05T10:20:30+00:00", datetime(2026, 3, 5, 10, 20, 30, tzinfo=UTC)),
    ("2026-03-05T10:20:30.250Z", datetime(2026, 3, 5, 10, 20, 30, 250000, tzinfo=UTC)),
    ("2026-03-05T10:20:30+02:00", datetime(2026, 3, 5, 8, 20, 30, tzinfo=UTC)),
    ("2026-03-05T23:30:00-05:00", datetime(2026, 3, 6, 4, 30, tzinfo=UTC)),
    # FHIR requires a zone; one without is read as UTC, not the server's local time.
    ("2026-03-05T10:20:30", datetime(2026, 3, 5, 10, 20, 30, tzinfo=UTC)),
    (" 2026-03-05T10:20:30Z ", datetime(2026, 3, 5, 10, 20, 30, tzinfo=UTC)),
])
def test_fhir_forms(text, expected):
    parsed = parse_fhir_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "", "   ", "2026-13-01", "2026-02-30", "2026-02-30T10:00:00Z", "2026-03-05T25:00:00Z",
    "2026-03-05T10:20:30ZZ", "yesterday", "2026-3", "20-03-05", None, 20260305, [], {},
    # Sentinels and calendar ends: no date a record means, and no arithmetic may leave
    # the calendar from them (0001-01-01T00:00+01:00 is before the first UTC instant).
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31", "9999-12",
    "9999", "0001-01-01", "0001", "0999-12-31T23:59:59Z",
])
def test_malformed_is_unknown(text):
    assert parse_fhir_datetime(text) is None


@given(st.datetimes(min_value=datetime(1001, 1, 1), max_value=datetime(8998, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)),
                                               timezone(timedelta(hours=5, minutes=30))])))
def test_any_instant_round_trips_in_utc(moment):
    parsed = parse_fhir_datetime(moment.isoformat())
    assert parsed == moment and parsed.tzinfo is UTC
    zulu = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert parse_fhir_datetime(zulu) == moment


def test_a_date_only_period_end_includes_its_day():
    assert parse_period_end("2026-12-03") == datetime(2026, 12, 4, tzinfo=UTC)
    assert parse_period_end("2026-12") == datetime(2027, 1, 1, tzinfo=UTC)


def test_a_period_ending_in_year_9999_has_no_end():
    assert parse_period_end("9999-12-31") is None
    assert parse_period_end("9999") is None


@pytest.mark.parametrize("days", [1e9, -1e9, 1e300, float("inf"), float("nan"), 3_000_000])
def test_a_duration_past_the_calendar_gives_no_date(days):
    assert days_after(datetime(2026, 1, 1, tzinfo=UTC), days) is None


def test_a_duration_inside_the_calendar_is_added():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert days_after(start, 30) == datetime(2026, 1, 31, tzinfo=UTC)
    assert days_after(start, 0.5) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert days_after(LATEST - timedelta(days=1), 2) is None
