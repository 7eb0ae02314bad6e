"""Feedback is acknowledged only once it is durable, and retried deliveries are stored once.

Client threads post feedback and retry until they get a 200 (as a CDS client should);
meanwhile the whole server process group is killed with SIGKILL and restarted on the
same database. Afterwards every acknowledged entry is in the database exactly once,
and so is every entry whose acknowledgement was lost in the crash and then retried.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from cds.storage import Store
from tests.support.live import LiveServer
from tests.support.postgres import fresh_database

FEEDBACK_PATH = "/cds-services/baclofen-order-sign/feedback"
CLIENTS = 6
KILLS = 2
TRAFFIC_SECONDS = 1.2  # traffic before each kill
RETRY_GIVE_UP_SECONDS = 45.0


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    posted: set[str] = field(default_factory=set)
    lost_acknowledgements: int = 0  # a request that got no answer (connection cut)
    duplicates_reported: int = 0  # the server said a retried entry was already stored
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Target:
    base_url: str


def document(cards: list[str], now: datetime) -> dict:
    return {"feedback": [
        {"card": card, "outcome": "overridden",
         "outcomeTimestamp": (now - timedelta(seconds=i)).isoformat(),
         "overrideReason": {"userComment": f"entry {i} of a batch"}}
        for i, card in enumerate(cards)
    ]}


def client(target: Target, stop: threading.Event, tally: Tally, number: int) -> None:
    session = requests.Session()
    sent = 0
    while not stop.is_set():
        # Batches of 1-3 entries: a batch is stored in one transaction, all or nothing.
        cards = [str(uuid.uuid4()) for _ in range(1 + (number + sent) % 3)]
        body = document(cards, datetime.now(UTC))
        sent += 1
        with tally.lock:
            tally.posted.update(cards)
        give_up = time.monotonic() + RETRY_GIVE_UP_SECONDS
        while time.monotonic() < give_up:
            try:
                answer = session.post(target.base_url + FEEDBACK_PATH, json=body, timeout=10)
            except requests.RequestException:
                with tally.lock:
                    tally.lost_acknowledgements += 1
                session = requests.Session()
                time.sleep(0.05)
                continue
            if answer.status_code == 200:
                with tally.lock:
                    tally.acknowledged.update(cards)
                    tally.duplicates_reported += answer.json()["duplicates"]
                break
            assert answer.status_code == 503, f"unexpected {answer.status_code}: {answer.text}"
            time.sleep(0.05)
        else:
            raise AssertionError("feedback was never acknowledged after the restarts")


def run_kill_test(database_url: str, output_dir: Path) -> Tally:
    env = {"CDS_AUTH": "off", "CDS_DATABASE_URL": database_url}
    server = LiveServer(env, workers=2).start(output_dir / "durability-0.log")
    target, stop, tally = Target(server.base_url), threading.Event(), Tally()
    errors: list[BaseException] = []

    def guarded(number: int) -> None:
        try:
            client(target, stop, tally, number)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        for kill in range(1, KILLS + 1):
            time.sleep(TRAFFIC_SECONDS)
            server.stop(signal.SIGKILL)  # the whole process group: master and workers
            server = LiveServer(env, workers=2).start(output_dir / f"durability-{kill}.log")
            target.base_url = server.base_url
        time.sleep(TRAFFIC_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(timeout=RETRY_GIVE_UP_SECONDS + 15)
    finally:
        stop.set()
        server.stop()
    assert not errors, errors[0]
    return tally


def check_exactly_once(database_url: str, tally: Tally) -> None:
    rows = Store(database_url).feedback_rows()
    counts = Counter(row["card_uuid"] for row in rows)
    missing = tally.acknowledged - set(counts)
    assert not missing, f"{len(missing)} acknowledged entries were lost"
    repeated = [card for card, n in counts.items() if n > 1]
    assert not repeated, f"{len(repeated)} entries were stored more than once"
    assert set(counts) <= tally.posted
    assert tally.acknowledged == tally.posted  # clients retried until every one was acked
    print(
        f"\nkill test ({Store(database_url).dialect}): {KILLS} SIGKILLs, "
        f"{len(tally.acknowledged)} entries acknowledged, {len(rows)} rows stored, "
        f"{tally.lost_acknowledgements} requests cut off, "
        f"{tally.duplicates_reported} retried entries recognised as already stored"
    )


@pytest.mark.slow
def test_no_acknowledged_feedback_is_lost_on_sqlite(tmp_path, output_dir):
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    tally = run_kill_test(url, output_dir)
    assert len(tally.acknowledged) > 50  # the test really exercised the server
    check_exactly_once(url, tally)


@pytest.mark.slow
@pytest.mark.postgres
def test_no_acknowledged_feedback_is_lost_on_postgres(output_dir):
    with fresh_database() as url:
        tally = run_kill_test(url, output_dir)
        assert len(tally.acknowledged) > 50
        check_exactly_once(url, tally)
