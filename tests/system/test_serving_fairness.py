"""Keep-alive connections are shared out between gevent workers and served in turn.

An EHR keeps connections open and sends its next call as soon as an answer arrives. Two
things made some connections wait 100-400 ms per call while others were answered over
and over (bench.run at concurrency 4: p99 150-200 ms at a 5 ms median): a gevent worker
accepted every connection waiting at once, so connections opened together landed on one
worker; and a connection whose next request was already waiting was served again before
the worker's event loop looked at the others. The worker now accepts one connection at a
time, later the more it holds, and yields after each request (cds/gevent_worker.py).

These tests check that structure, not shares of a timed run: a run of a few seconds
measured how much CPU each client process got as much as how the server served it, and
failed on a busy machine. The worker is stopped (SIGSTOP) while the requests are queued,
so what it does next depends on its code alone. bench.run measures the shares and tails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

from cds import gevent_worker
from tests.support.live import LiveServer
from tests.support.requests import stop_order_request

CONNECTIONS = 3
PIPELINED = 6  # requests queued on each connection while the worker is stopped
PATH = "/cds-services/baclofen-order-sign"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fairness")
    server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'db'}"},
                        workers=1)
    server.start(tmp / "server.log")
    yield server
    server.stop()


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, f"expected one worker, found {children}"
    return int(children[0])


def request_bytes(hook_instance: str) -> bytes:
    body = json.dumps({**stop_order_request(), "hookInstance": hook_instance}).encode()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def read_responses(connection: socket.socket, count: int) -> list[int]:
    """The status of each of `count` HTTP/1.1 responses read in turn from one connection."""
    stream = connection.makefile("rb")
    statuses = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        stream.read(length)
        statuses.append(status)
    return statuses


def served_order(log: Path, owners: dict[str, int]) -> list[int]:
    """Which connection each logged request came from, in the order the worker served them."""
    order = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("hookInstance") in owners:
                order.append(owners[entry["hookInstance"]])
    return order


def longest_run(order: list[int]) -> int:
    longest = run = 0
    for index, owner in enumerate(order):
        run = run + 1 if index and order[index - 1] == owner else 1
        longest = max(longest, run)
    return longest


def test_a_worker_serves_its_keep_alive_connections_in_turn(service):
    connections = [socket.create_connection(("127.0.0.1", service.port), timeout=30)
                   for _ in range(CONNECTIONS)]
    try:
        for connection in connections:  # accepted, and each waiting for its next request
            connection.sendall(request_bytes(str(uuid.uuid4())))
            assert read_responses(connection, 1) == [200]
        owners: dict[str, int] = {}
        worker = worker_pid(service.proc.pid)
        os.kill(worker, signal.SIGSTOP)
        try:
            # Every request is in the worker's socket buffers before it runs again, so
            # the order it serves them in is its own choice, whatever the machine's load.
            for index, connection in enumerate(connections):
                for _ in range(PIPELINED):
                    hook_instance = str(uuid.uuid4())
                    owners[hook_instance] = index
                    connection.sendall(request_bytes(hook_instance))
        finally:
            os.kill(worker, signal.SIGCONT)
        for connection in connections:
            assert read_responses(connection, PIPELINED) == [200] * PIPELINED
    finally:
        for connection in connections:
            connection.close()
    deadline = time.monotonic() + 10
    while len(order := served_order(service.log_path, owners)) < len(owners):
        assert time.monotonic() < deadline, f"only {len(order)} requests logged"
        time.sleep(0.1)
    # Without the yield after each request, one connection's queue is served to its end
    # (a run of PIPELINED) before the next connection is looked at.
    assert longest_run(order) <= 2, f"served in this order of connections: {order}"
    assert set(order[:CONNECTIONS * 2]) == set(range(CONNECTIONS)), order


class _FakeTimer:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.callback = None

    def start(self, callback) -> None:  # noqa: ANN001
        self.callback = callback


class _Probe(gevent_worker.LeastConnectionsStreamServer):
    """The accept decision alone: no socket, no loop."""

    def __init__(self) -> None:  # noqa: D107 - StreamServer's needs a listener
        self.accepted = 0
        self.stopped = False
        self.timers: list[_FakeTimer] = []
        self.loop = self

    def __repr__(self) -> str:
        return f"<_Probe accepted={self.accepted} stopped={self.stopped}>"

    def full(self) -> bool:
        return False

    def timer(self, delay: float) -> _FakeTimer:
        self.timers.append(_FakeTimer(delay))
        return self.timers[-1]

    def stop_accepting(self) -> None:
        self.stopped = True

    def _start_accepting_if_started(self, _event=None) -> None:  # noqa: ANN001
        self.stopped = False


@pytest.fixture
def accepts(monkeypatch):
    monkeypatch.setattr(gevent_worker.StreamServer, "_do_read",
                        lambda self: setattr(self, "accepted", self.accepted + 1))

    def loads(held: int, fewest_elsewhere: int | None) -> _Probe:
        monkeypatch.setattr(gevent_worker.CONNECTIONS, "held", held)
        monkeypatch.setattr(gevent_worker.LOADS, "fewest_elsewhere", lambda: fewest_elsewhere)
        return _Probe()

    return loads


@pytest.mark.parametrize(("held", "fewest"), [(0, 0), (3, 3), (3, 5), (7, None)])
def test_a_worker_no_busier_than_the_least_loaded_accepts_at_once(accepts, held, fewest):
    probe = accepts(held, fewest)  # None: no other worker (or none has said yet)
    probe._do_read()
    assert probe.accepted == 1 and not probe.timers and not probe.stopped


@pytest.mark.parametrize(("held", "fewest"), [(1, 0), (3, 0), (50, 0), (40, 20)])
def test_a_busier_worker_waits_longer_the_more_it_holds_then_accepts(accepts, held, fewest):
    probe = accepts(held, fewest)
    probe._do_read()
    assert probe.accepted == 0 and probe.stopped
    beyond = held - fewest - fewest // 16
    delay = probe.timers[0].delay
    assert delay == min(gevent_worker.MAX_DELAY, gevent_worker.DELAY_PER_CONNECTION * beyond)
    assert delay > 0
    probe.timers[0].callback()  # nobody took the connection meanwhile: this worker does
    assert not probe.stopped
    probe._do_read()
    assert probe.accepted == 1
    probe._do_read()  # the next connection is weighed again
    assert probe.accepted == 1 and len(probe.timers) == 2


def test_a_flood_gets_a_sixteenth_s_leeway(accepts):
    probe = accepts(16 * 10 + 10, 16 * 10)  # within 1/16 of the least loaded: no wait
    probe._do_read()
    assert probe.accepted == 1 and not probe.timers


def test_one_connection_is_accepted_per_wake_up():
    assert gevent_worker.LeastConnectionsStreamServer.max_accept == 1
