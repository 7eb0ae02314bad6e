"""A normal caller's latency while other peers load the service (issues 25.3 and 26.3).

    .venv/bin/python -m bench.peers [--seconds 10] [--scenario NAME ...] [--json FILE]

Starts `baclofen-cds serve` with its defaults (one gevent worker per core, SQLite, local
trial) for each scenario, starts the peers, then times a normal caller: the realistic
order-sign call of bench.run, each on a new connection (so accepting it is part of its
time), one after another. Over loopback only, bounded in time.

Scenarios (peers run in their own processes, so they never share the caller's
interpreter lock):

- `alone`: no peers, for reference;
- `8 fixture-list peers`: 8 clients looping on `GET /preview/fixtures`;
- `8 readyz pollers`: 8 clients looping on `GET /readyz`;
- `8 idle peers`: 8 connections that send nothing, reopened whenever the service closes one;
- `8 large-call peers`: 8 clients looping on the 1.3 MB order-sign call of bench.run;
- `300-connection flood`: 300 connections opened at once that send nothing, held open;
- `300 idle connections a second`: that many new silent connections every second.

Targets (docs/security.md, "Limits"): p99 under 100 ms with 8 peers of any kind, under
250 ms in either flood; no failed normal call. Exits 1 when a scenario misses its target,
so a before/after comparison is one command each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import selectors
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.load import LoadResult
from bench.payloads import SCENARIOS
from bench.run import BIN, Server, _free_port, _machine

NORMAL = "order-sign realistic (300 obs, 20 MR)"
LARGE = "order-sign large (2000 obs, 100 MR)"


def _looping_client(port: int, method: str, path: str, body: bytes | None, until: float,
                    queue: mp.Queue) -> None:
    """A keep-alive client sending the same request back to back; counts answers."""
    headers = {"Content-Type": "application/json"} if body else {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses: dict[int, int] = {}
    errors = 0
    while time.time() < until:
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            time.sleep(0.01)
    queue.put({"statuses": statuses, "errors": errors})


def _silent_connections(port: int, count: int, per_second: float, until: float,
                        queue: mp.Queue) -> None:
    """`count` connections that never send a byte, reopened when the service closes one;
    with `per_second`, that many new ones every second instead (held until closed)."""
    selector = selectors.DefaultSelector()
    opened = closed_by_service = refused = 0

    def open_one() -> None:
        nonlocal opened, refused
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_READ)
            opened += 1
        except OSError:
            refused += 1
            sock.close()

    if not per_second:
        for _ in range(count):
            open_one()
    next_batch = time.time()
    while time.time() < until:
        if per_second and time.time() >= next_batch:
            for _ in range(max(1, int(per_second / 10))):
                open_one()
            next_batch += 0.1
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            try:
                data = sock.recv(4096)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                closed_by_service += 1
                if not per_second:
                    open_one()
    held = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    queue.put({"opened": opened, "closed_by_service": closed_by_service, "held_at_end": held,
               "refused": refused})


def _normal_caller(port: int, path: str, body: bytes, start: float, seconds: float,
                   queue: mp.Queue) -> None:
    while time.time() < start:
        time.sleep(0.01)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        finally:
            connection.close()
        if ok:
            latencies.append((time.perf_counter() - began) * 1000)
        else:
            errors += 1
        time.sleep(0.005)  # a caller, not a load generator
    queue.put((latencies, errors))


def _peers(name: str, port: int, until: float, queue: mp.Queue,
           bodies: dict[str, bytes]) -> list[mp.Process]:
    def many(count: int, method: str, path: str, body: bytes | None = None
             ) -> list[mp.Process]:
        return [mp.Process(target=_looping_client, args=(port, method, path, body, until, queue))
                for _ in range(count)]

    if name == "alone":
        return []
    if name == "8 fixture-list peers":
        return many(8, "GET", "/preview/fixtures")
    if name == "8 readyz pollers":
        return many(8, "GET", "/readyz")
    if name == "8 large-call peers":
        return many(8, "POST", "/cds-services/baclofen-order-sign", bodies[LARGE])
    if name == "8 idle peers":
        return [mp.Process(target=_silent_connections, args=(port, 8, 0, until, queue))]
    if name == "300-connection flood":
        return [mp.Process(target=_silent_connections, args=(port, 300, 0, until, queue))]
    if name == "300 idle connections a second":
        return [mp.Process(target=_silent_connections, args=(port, 0, 300, until, queue))]
    raise ValueError(name)


TARGET_MS = {"300-connection flood": 250.0, "300 idle connections a second": 250.0}
SCENARIO_NAMES = ("alone", "8 fixture-list peers", "8 readyz pollers", "8 idle peers",
                  "8 large-call peers", "300-connection flood", "300 idle connections a second")


def run_scenario(name: str, seconds: float, bodies: dict[str, bytes],
                 start_server: Callable[[], Server]) -> dict:
    server = start_server()
    try:
        queue: mp.Queue = mp.Queue()
        warm_up = 2.0
        start = time.time() + warm_up
        until = start + seconds + 1.0
        peers = _peers(name, server.port, until, queue, bodies)
        for peer in peers:
            peer.start()
        results: mp.Queue = mp.Queue()
        caller = mp.Process(target=_normal_caller,
                            args=(server.port, "/cds-services/baclofen-order-sign",
                                  bodies[NORMAL], start, seconds, results))
        caller.start()
        latencies, errors = results.get(timeout=seconds + warm_up + 120)
        caller.join()
        peer_reports = [queue.get(timeout=60) for _ in peers]
        for peer in peers:
            peer.join(timeout=30)
    finally:
        server.stop()
    normal = LoadResult(latencies, errors, seconds)
    target = TARGET_MS.get(name, 100.0)
    p99 = normal.percentile(99)
    return {
        "scenario": name, "calls": len(latencies), "errors": errors,
        "median_ms": round(normal.median, 1), "p99_ms": round(p99, 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "target_p99_ms": target, "met": bool(latencies) and not errors and p99 < target,
        "peers": _merge_peer_reports(peer_reports),
    }


def _merge_peer_reports(reports: list[dict]) -> dict:
    merged: dict = {}
    for report in reports:
        for key, value in report.items():
            if isinstance(value, dict):
                inner = merged.setdefault(key, {})
                for k, v in value.items():
                    inner[str(k)] = inner.get(str(k), 0) + v
            else:
                merged[key] = merged.get(key, 0) + value
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--scenario", action="append", choices=SCENARIO_NAMES)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    bodies = {name: json.dumps(SCENARIOS[name][1](now)).encode() for name in (NORMAL, LARGE)}
    tmp = Path(tempfile.mkdtemp(prefix="baclofen-peers-"))

    def start_server() -> Server:
        port = _free_port()
        database = tmp / f"peers-{port}.db"
        return Server([str(BIN / "baclofen-cds"), "serve", "--host", "127.0.0.1", "--port",
                       str(port)],
                      {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{database}",
                       "CDS_LOG_LEVEL": "WARNING"}, port)

    rows = []
    for name in args.scenario or SCENARIO_NAMES:
        row = run_scenario(name, args.seconds, bodies, start_server)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"\nnormal caller under peers: {_machine()} workers={os.cpu_count()} (serve defaults)")
    print("| scenario | calls | errors | median ms | p99 ms | max ms | target p99 | met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['calls']} | {r['errors']} | {r['median_ms']} | "
              f"{r['p99_ms']} | {r['max_ms']} | < {r['target_p99_ms']:g} | "
              f"{'yes' if r['met'] else 'NO'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": _machine(), "rows": rows}, indent=2))
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
