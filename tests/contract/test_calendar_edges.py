"""Dates at the ends of the calendar, in every date field of every clinical fixture, never
give a 500.

EHRs write 9999-12-31 for "no end" and 0001-01-01 for "unknown"; with a zone offset the
first is past the last UTC instant Python can hold and the second before the first. Each
was an OverflowError somewhere in the timeline (a step back one second, a course gap, a
planned end from a duration) before those dates were read as no date. Every date field
of each fixture is set to one edge at a time, all at once, so the whole pipeline (facts,
timeline, events, pump, cards) meets it; each answer must be a valid CDS Hooks response.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from cds.app import create_app
from cds.config import Settings
from cds.fixtures import list_fixtures, load_fixture
from tests.contract.test_fuzz_boundary import put
from tests.support.openapi import check_response

NOW = datetime.now(UTC)
EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z",
         "0001-01-01", "9999-12-31", "9999", "0001"]
DATE_FIELDS = {"authoredOn", "effectiveDateTime", "effectiveInstant", "issued", "start",
               "end", "lastUpdated", "onsetDateTime", "recordedDate", "birthDate",
               "deceasedDateTime", "occurrenceDateTime", "performedDateTime", "date",
               "abatementDateTime", "whenHandedOver", "whenPrepared", "authoredDate"}
FIXTURES = list_fixtures()


def date_fields(node: Any, path: tuple = ()) -> list[tuple]:
    found: list[tuple] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in DATE_FIELDS and isinstance(value, str):
                found.append((*path, key))
            found += date_fields(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += date_fields(value, (*path, index))
    return found


@pytest.fixture(scope="module")
def one_app(tmp_path_factory):
    database = tmp_path_factory.mktemp("calendar-edges") / "cds.db"
    return create_app(Settings(database_url=f"sqlite:///{database}", auth_enabled=False)
                      ).test_client()


@pytest.mark.parametrize("fixture_path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_calendar_edges_in_every_date_field(one_app, fixture_path):
    fixture = load_fixture(fixture_path, NOW)
    fields = date_fields(fixture.request)
    path = f"/cds-services/{fixture.service}"
    for edge in EDGES:
        request = copy.deepcopy(fixture.request)
        for field in fields:
            put(request, field, edge)
        response = one_app.post(path, json=request)
        assert response.status_code == 200, (edge, response.get_data()[:300])
        check_response("POST", path, response.status_code, response.get_json())


def test_the_fixtures_have_date_fields_to_set():
    counted = sum(bool(date_fields(load_fixture(p, NOW).request)) for p in FIXTURES)
    assert counted >= len(FIXTURES) * 0.9
