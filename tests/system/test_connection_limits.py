"""The same connection limits on the TLS and the plain listener (issues 26.1 and 26.3).

`baclofen-cds serve` on loopback, gevent workers. These count outcomes, never time them:
which connections the service closed, what /metrics counted, how many ordinary calls
were answered. The waits are bounds a loaded machine cannot reach (each limit plus 20 s
or more); the limits themselves are in cds/serving_model.py.
"""

from __future__ import annotations

import contextlib
import re
import resource
import selectors
import socket
import time
from pathlib import Path

import pytest
import requests

from cds.serving_model import HEADER_SECONDS, SEND_SECONDS
from tests.support.live import LiveServer
from tests.support.tls import self_signed_loopback_cert

SLACK = 20.0  # seconds beyond a limit before a connection still open counts as kept


def _server(tmp: Path, name: str, workers: int = 2, tls: bool = False,
            args: list[str] | None = None) -> LiveServer:
    extra = list(args or [])
    cert = None
    if tls:
        cert, key = self_signed_loopback_cert(tmp)
        extra += ["--certfile", str(cert), "--keyfile", str(key)]
    server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / name}.db",
                         "CDS_LOG_LEVEL": "WARNING"}, workers=workers, args=extra, tls_cert=cert)
    return server.start(tmp / f"{name}.log")


def _dropped(server: LiveServer) -> dict[str, float]:
    text = requests.get(server.base_url + "/metrics", verify=server.verify, timeout=30).text
    return {m[1]: float(m[2]) for m in re.finditer(
        r'^cds_connections_dropped_total\{reason="(\w+)"\} (\S+)$', text, re.M)}


def _silent(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]


def _closed_by_service(socks: list[socket.socket], within: float) -> int:
    """How many of `socks` the service closes within `within` seconds (they send nothing)."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + within
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            try:
                data = key.fileobj.recv(4096)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                closed += 1
    selector.close()
    return closed


@pytest.fixture
def more_files():
    """Thousands of sockets in this process (and the server it starts)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except (ValueError, OSError):
        if hard < wanted:
            pytest.skip(f"needs {wanted} open files; the hard limit here is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_tls_handshake_that_never_completes_is_closed_within_the_header_limit(tmp_path):
    server = _server(tmp_path, "tls-handshake", tls=True)
    try:
        silent = _silent(server.port, 30)
        closed = _closed_by_service(silent, HEADER_SECONDS + SLACK)
        for sock in silent:
            sock.close()
        assert closed == 30, f"only {closed} of 30 silent TLS connections were closed"
        assert _dropped(server).get("tls_handshake", 0) >= 30
        assert requests.get(server.base_url + "/healthz", verify=server.verify,
                            timeout=30).status_code == 200
    finally:
        server.stop()


def test_silent_connections_beyond_the_workers_capacity_do_not_shut_callers_out(
        tmp_path, more_files):
    # The case: 2,100 connections that send nothing against two workers of 1,000
    # connections each, on the TLS listener (they used to stay open for ever there).
    server = _server(tmp_path, "flood", tls=True)
    try:
        silent = _silent(server.port, 2100)
        answered = 0
        for _ in range(10):
            with contextlib.suppress(requests.RequestException):
                answered += requests.get(server.base_url + "/healthz", verify=server.verify,
                                         timeout=30).status_code == 200
        shed = _dropped(server).get("shed", 0)
        for sock in silent:
            sock.close()
        assert answered == 10, f"{answered} of 10 calls answered beside 2,100 silent ones"
        # Room was made by closing silent connections, not by waiting for their time limit.
        assert shed >= 100
    finally:
        server.stop()


def test_a_client_that_never_reads_its_responses_is_dropped(tmp_path):
    server = _server(tmp_path, "never-reads")
    try:
        fixtures = requests.get(server.base_url + "/preview/fixtures", timeout=30).json()
        name = fixtures["fixtures"][0]["name"]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        request = (f"GET /preview/fixtures/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                   ).encode()
        sock.sendall(request * 2000)  # pipelined, tens of megabytes of answers, never read
        deadline = time.monotonic() + SEND_SECONDS + SLACK
        while time.monotonic() < deadline and not _dropped(server).get("response_not_read"):
            time.sleep(1)
        assert _dropped(server).get("response_not_read", 0) >= 1
        sock.setblocking(False)
        with contextlib.suppress(OSError):  # what it had buffered, then the end
            while sock.recv(1 << 20):
                pass
        sock.close()
        assert requests.get(server.base_url + "/healthz", timeout=30).status_code == 200
    finally:
        server.stop()
