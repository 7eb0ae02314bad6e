"""Issue 26.4 against the real server: concurrent feedback batches cannot pass a client's
quota together (two workers, SQLite; the quota is 55 and 50 entries are stored, then 20
batches of 5 arrive at once: main stored up to 65). Counts rows, never times."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime

import requests

from tests.support.live import LiveServer

FEEDBACK = "/cds-services/baclofen-order-sign/feedback"


def _batch(size: int) -> dict:
    return {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                          "outcomeTimestamp": datetime.now(UTC).isoformat()}
                         for _ in range(size)]}


def test_concurrent_batches_stay_within_the_quota(tmp_path):
    database = tmp_path / "quota.db"
    server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{database}",
                         "CDS_LOG_LEVEL": "WARNING", "CDS_FEEDBACK_QUOTA_PER_HOUR": "55"},
                        workers=2).start(tmp_path / "server.log")
    url = server.base_url + FEEDBACK
    try:
        for _ in range(10):
            assert requests.post(url, json=_batch(5), timeout=30).status_code == 200
        for _round in range(5):  # the race was a matter of timing: give it chances
            start = threading.Barrier(20)
            statuses: list[int] = []

            def send(body: dict, start: threading.Barrier = start,
                     statuses: list[int] = statuses) -> None:
                start.wait()
                statuses.append(requests.post(url, json=body, timeout=60).status_code)

            threads = [threading.Thread(target=send, args=(_batch(5),)) for _ in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert set(statuses) <= {200, 429}
    finally:
        server.stop()
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT count(*) FROM feedback").fetchone()[0]
    assert stored == 55
