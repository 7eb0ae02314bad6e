"""Keep-alive connections are shared out between gevent workers and served in turn.

An EHR keeps connections open and sends its next call as soon as an answer arrives. Two
things made some connections wait 100-400 ms per call while others were answered over
and over (bench.run at concurrency 4: p99 150-200 ms at a 5 ms median): a gevent worker
accepted every connection waiting at once, so connections opened together landed on one
worker; and a connection whose next request was already waiting was served again before
the worker's event loop looked at the others. The worker now accepts one connection at a
time and yields after each request (cds/gevent_worker.py).

This counts, not times: four clients on two workers (bench.run's concurrency 4), each
sending the realistic order-sign call back to back; each connection must get a fair share
of the answers. Before the change the least-served got 9-36% of the busiest one's.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import time
from datetime import UTC, datetime

import pytest

from bench.payloads import SCENARIOS
from tests.support.live import LiveServer

CLIENTS = 4
SECONDS = 4.0
FAIR_SHARE = 0.5  # the least-served connection gets at least half the busiest one's answers
WORKERS = 2
CONNECT_SPACING = 0.05  # seconds


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fairness")
    server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'db'}",
                         "CDS_LOG_LEVEL": "WARNING"}, workers=WORKERS)
    server.start(tmp / "server.log")
    yield server
    server.stop()


def _client(port: int, path: str, body: bytes, connect_at: float, start_at: float,
            queue: mp.Queue) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    while time.time() < connect_at:
        time.sleep(0.005)
    connection.connect()
    while time.time() < start_at:  # all connections open before any request
        time.sleep(0.01)
    answered, statuses = 0, set()
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        statuses.add(response.status)
        answered += 1
    connection.close()
    queue.put((answered, sorted(statuses)))


def test_keep_alive_connections_get_fair_shares(service):
    service_id, build = SCENARIOS["order-sign realistic (300 obs, 20 MR)"]
    body = json.dumps(build(datetime.now(UTC))).encode()
    queue: mp.Queue = mp.Queue()
    # Connections opened a moment apart, as an EHR's are, then all busy at once.
    connect_at = time.time() + 1.0
    start_at = connect_at + CLIENTS * CONNECT_SPACING + 0.5
    clients = [mp.Process(target=_client, args=(service.port, f"/cds-services/{service_id}",
                                                 body, connect_at + i * CONNECT_SPACING,
                                                 start_at, queue))
               for i in range(CLIENTS)]
    for client in clients:
        client.start()
    results = [queue.get(timeout=SECONDS + 60) for _ in clients]
    for client in clients:
        client.join()
    counts = sorted(answered for answered, _ in results)
    assert all(statuses == [200] for _, statuses in results), results
    assert counts[0] >= 20, f"too few answers to judge fairness: {counts}"
    assert counts[0] >= FAIR_SHARE * counts[-1], (
        f"answers per keep-alive connection on {WORKERS} workers: {counts}; the least served got "
        f"{counts[0] / counts[-1]:.0%} of the busiest one's")
