"""Issue 26.4: the feedback quota counts bytes as well as entries, bounds each entry, and
holds under concurrency (20 concurrent batches of 5 against a quota of 50 stored 55).

The concurrency test runs against SQLite here and against PostgreSQL when
CDS_TEST_POSTGRES_URL is set (.ci/run): the quota is checked in the transaction that
stores the entries, under the client's lock."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cds.feedback import MAX_ENTRY_BYTES
from cds.storage import FeedbackEntry, FeedbackQuota, OverQuota, Store
from tests.support.postgres import fresh_database, postgres_url

FEEDBACK = "/cds-services/baclofen-order-sign/feedback"


def overridden(card: str, comment: str | None = None) -> dict:
    reason = {"reason": {"code": "x"}}
    if comment is not None:
        reason["userComment"] = comment
    return {"card": card, "outcome": "overridden", "overrideReason": reason,
            "outcomeTimestamp": datetime.now(UTC).isoformat()}


def test_an_entry_with_65000_suggestion_ids_is_refused_and_nothing_is_stored(app):
    client = app.test_client()
    entry = {"card": str(uuid.uuid4()), "outcome": "accepted",
             "outcomeTimestamp": datetime.now(UTC).isoformat(),
             "acceptedSuggestions": [{"id": str(uuid.uuid4())} for _ in range(65_000)]}
    response = client.post(FEEDBACK, json={"feedback": [overridden("fine"), entry]})
    assert response.status_code == 413
    assert response.get_json()["issue"][0]["expression"] == ["$.feedback[1]"]
    assert app.extensions["cds"].store.feedback_rows() == []


def test_an_entry_at_the_schema_limits_fits(app):
    entry = overridden(str(uuid.uuid4()), "\U0001F600" * 4000)  # 16,000 bytes of comment
    entry["overrideReason"]["reason"] = {"system": "s" * 1024, "code": "c" * 256,
                                         "display": "d" * 1024}
    assert app.test_client().post(FEEDBACK, json={"feedback": [entry]}).status_code == 200
    assert MAX_ENTRY_BYTES >= 32 * 1024


def test_bytes_per_hour_are_a_quota_of_their_own(make_app):
    client = make_app(feedback_bytes_per_hour=64 * 1024).test_client()
    batch = {"feedback": [overridden(str(uuid.uuid4()), "x" * 4000) for _ in range(10)]}
    assert client.post(FEEDBACK, json=batch).status_code == 200  # about 40 KB
    batch = {"feedback": [overridden(str(uuid.uuid4()), "x" * 4000) for _ in range(10)]}
    response = client.post(FEEDBACK, json=batch)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    small = {"feedback": [overridden(str(uuid.uuid4()))]}
    assert client.post(FEEDBACK, json=small).status_code == 200  # room for a small one


def _entries(count: int) -> list[FeedbackEntry]:
    when = datetime.now(UTC)
    return [FeedbackEntry("baclofen-order-sign", str(uuid.uuid4()), "overridden", (), None,
                          "x", None, None, when, "https://ehr.example.org", "t")
            for _ in range(count)]


def _concurrent_batches(url: str) -> int:
    stores = [Store(url) for _ in range(4)]
    stores[0].create_schema()
    stores[0].save_feedback(_entries(30))
    quota = FeedbackQuota("https://ehr.example.org", "t",
                          datetime.now(UTC) - timedelta(hours=1), 50, 10**9)
    stored: list[int] = []
    refused: list[int] = []
    start = threading.Barrier(20)

    def batch(index: int) -> None:
        entries = _entries(5)
        start.wait()
        try:
            stored.append(stores[index % 4].save_feedback(entries, quota))
        except OverQuota:
            refused.append(5)

    threads = [threading.Thread(target=batch, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = len(stores[0].feedback_rows())
    for store in stores:
        store.engine.dispose()
    assert sum(stored) + sum(refused) == 100
    return rows


def test_concurrent_batches_cannot_pass_the_quota_together_sqlite(tmp_path):
    assert _concurrent_batches(f"sqlite:///{tmp_path / 'quota.db'}") == 50


@pytest.mark.postgres
@pytest.mark.skipif(postgres_url() is None, reason="CDS_TEST_POSTGRES_URL is not set")
def test_concurrent_batches_cannot_pass_the_quota_together_postgres():
    with fresh_database() as url:
        assert _concurrent_batches(url) == 50
