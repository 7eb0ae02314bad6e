"""Heavy peers and normal callers (issue 25.3): calls in flight are bounded per client
(429 beyond), and a small call goes before large ones queued ahead of it.

`baclofen-cds serve` on loopback, one gevent worker so that every call meets in one
queue. These count outcomes (statuses, the order answers arrive in), never time them;
bench/peers.py measures a normal caller's latency beside heavy peers.
"""

from __future__ import annotations

import json
import selectors
import socket
from datetime import UTC, datetime

import pytest

from bench.payloads import SCENARIOS
from tests.support.live import LiveServer

LARGE = "order-sign large (2000 obs, 100 MR)"
NORMAL = "order-sign realistic (300 obs, 20 MR)"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admission")
    server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'db'}",
                         "CDS_LOG_LEVEL": "WARNING", "CDS_MAX_CALLS_PER_CLIENT": "3"},
                        workers=1)
    server.start(tmp / "server.log")
    yield server
    server.stop()


def _head(port: int, length: int) -> bytes:
    return (f"POST /cds-services/baclofen-order-sign HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def _status(sock: socket.socket) -> tuple[int, bytes]:
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def _body(name: str) -> bytes:
    return json.dumps(SCENARIOS[name][1](datetime.now(UTC))).encode()


def test_calls_beyond_a_clients_limit_are_answered_429(service):
    body = _body(NORMAL)
    # Three calls in flight: their bodies are on the way (half sent).
    held = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
        sock.sendall(_head(service.port, len(body)) + body[: len(body) // 2])
        held.append(sock)
    statuses = []
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
            sock.sendall(_head(service.port, len(body)) + body)
            status, head = _status(sock)
            statuses.append(status)
            if status == 429:
                assert b"Retry-After: 1" in head
    assert statuses == [429] * 4, statuses
    for sock in held:  # the held calls complete, and then the client is admitted again
        sock.sendall(body[len(body) // 2:])
        assert _status(sock)[0] == 200
        sock.close()
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(_head(service.port, len(body)) + body)
        assert _status(sock)[0] == 200


def test_a_small_call_goes_before_large_calls_queued_ahead_of_it(service):
    large, small = _body(LARGE), _body(NORMAL)
    selector = selectors.DefaultSelector()
    # Three large calls (the client's limit) sent whole, then a small one from another
    # client address (127.0.0.2 is loopback too), each on its own connection.
    socks = []
    for index in range(3):
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=60)
        sock.sendall(_head(service.port, len(large)) + large)
        socks.append(("large", index, sock))
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=60,
                                    source_address=("127.0.0.2", 0))
    sock.sendall(_head(service.port, len(small)) + small)
    socks.append(("small", 0, sock))
    for entry in socks:
        selector.register(entry[2], selectors.EVENT_READ, entry)
    order = []
    while len(order) < len(socks):
        for key, _ in selector.select(timeout=60):
            kind, index, sock = key.data
            status, _ = _status(sock)
            assert status == 200
            order.append(kind)
            selector.unregister(sock)
            sock.close()
    # First come, first served answered the small call last. Now at most the large call
    # already under way goes before it.
    assert order.index("small") <= 1, order
