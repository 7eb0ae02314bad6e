"""Public endpoints cheap enough that looping on them cannot slow others (issue 26.3).

Counts the work behind each answer, never its time: `/preview/fixtures` used to read and
resolve every fixture file per request (60-80 ms of CPU), `/readyz` made two disk-synced
database writes per probe. bench/peers.py measures a normal caller beside such loops.
"""

from __future__ import annotations

import cds.fixtures
from cds.web import health, preview


def test_the_fixture_list_is_read_once_per_process(client, monkeypatch):
    preview._listing.cache_clear()
    reads = []
    original = cds.fixtures.load_fixture
    monkeypatch.setattr(cds.fixtures, "load_fixture",
                        lambda path, now: reads.append(path) or original(path, now))
    answers = [client.get("/preview/fixtures") for _ in range(20)]
    assert all(a.status_code == 200 for a in answers)
    listed = answers[0].get_json()["fixtures"]
    assert len(listed) == len(cds.fixtures.list_fixtures()) > 100
    assert len(reads) == len(listed), "each fixture is read once, not once per request"
    assert all(a.get_json() == answers[0].get_json() for a in answers)
    one = client.get(f"/preview/fixtures/{listed[0]['name']}").get_json()
    assert one["request"]["hook"] == listed[0]["hook"]  # dates resolved per request


def test_readyz_writes_to_the_database_at_most_once_per_interval(app, monkeypatch):
    store = app.extensions["cds"].store
    writes = []
    original = store.check_writable
    monkeypatch.setattr(store, "check_writable", lambda: writes.append(1) or original())
    clock = [1000.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: clock[0])
    client = app.test_client()
    assert all(client.get("/readyz").status_code == 200 for _ in range(50))
    assert len(writes) == 1
    clock[0] += health.READY_CHECK_SECONDS  # then the next probe checks again
    assert client.get("/readyz").status_code == 200
    assert len(writes) == 2
