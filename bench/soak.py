"""Bounded soak test: mixed traffic at `baclofen-cds serve` on 127.0.0.1 for N minutes.

    .venv/bin/python -m bench.soak [--minutes 3] [--clients 8] [--workers 2] [--threads 4]
                                   [--database-url postgresql+psycopg://...]

Traffic: order-sign with a realistic history, patient-view, a FHIR-server fallback call
(against a local fake), feedback, discovery, and a malformed request. Every window
reports requests, errors (5xx, unexpected statuses, transport errors), latency
percentiles and the server's resident memory; at the end, latency drift (last window
against the first after warm-up) and memory growth. Not part of CI; exits 1 when any
error was seen or a --max-* bound was exceeded.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench.payloads import SCENARIOS, patient_view_no_baclofen
from bench.run import BIN, Server, _free_port
from tests.support.fake_fhir import FakeFhirServer, bundle, json_answer

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Window:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Traffic:
    """Request kinds with weights and the statuses each may answer."""

    def __init__(self, fhir_base_url: str) -> None:
        now = datetime.now(UTC)
        service, build = SCENARIOS["order-sign realistic (300 obs, 20 MR)"]
        self.order_sign = (f"/cds-services/{service}", json.dumps(build(now)).encode())
        self.patient_view = ("/cds-services/baclofen-patient-view",
                             json.dumps(patient_view_no_baclofen(now)).encode())
        fallback = patient_view_no_baclofen(now)
        fallback["prefetch"] = {}
        fallback["fhirServer"] = fhir_base_url
        fallback["fhirAuthorization"] = {"access_token": "soak", "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read",
                                         "subject": "soak"}
        self.fallback = ("/cds-services/baclofen-patient-view", json.dumps(fallback).encode())
        self.kinds = [("order-sign", 40), ("patient-view", 25), ("fallback", 10),
                      ("feedback", 10), ("discovery", 10), ("malformed", 5)]

    def pick(self, rng: random.Random) -> str:
        return rng.choices([k for k, _ in self.kinds], [w for _, w in self.kinds])[0]

    def send(self, session: requests.Session, base: str, kind: str) -> bool:
        """Send one request of `kind`; True when the answer is one it may give."""
        json_header = {"Content-Type": "application/json"}
        if kind == "discovery":
            return session.get(base + "/cds-services", timeout=30).status_code == 200
        if kind == "feedback":
            body = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                                  "outcomeTimestamp": datetime.now(UTC).isoformat()}]}
            answer = session.post(base + "/cds-services/baclofen-order-sign/feedback", json=body,
                                  timeout=30)
            return answer.status_code == 200
        if kind == "malformed":
            answer = session.post(base + "/cds-services/baclofen-order-sign", data=b'{"hook": ',
                                  headers=json_header, timeout=30)
            return answer.status_code == 400
        path, body = {"order-sign": self.order_sign, "patient-view": self.patient_view,
                      "fallback": self.fallback}[kind]
        return session.post(base + path, data=body, headers=json_header,
                            timeout=30).status_code == 200


def rss_mb(server: Server) -> float:
    """Resident memory of the gunicorn master and its workers, in MB."""
    total = 0
    for pid in [server.proc.pid, *server.worker_pids()]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=15.0, help="seconds per report line")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--max-drift", type=float, default=None,
                        help="fail when last-window p50 / first-window p50 exceeds this")
    parser.add_argument("--max-rss-growth-mb", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="cds-soak-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'soak.db'}"
    fhir = FakeFhirServer(default=json_answer(bundle([]))).start()
    fhir.routes["/Patient/"] = json_answer({"resourceType": "Patient", "id": "soak"})
    port = _free_port()
    server = Server([str(BIN / "baclofen-cds"), "serve", "--host", "127.0.0.1", "--port",
                     str(port), "--workers", str(args.workers), "--threads", str(args.threads)],
                    {"CDS_AUTH": "off", "CDS_DATABASE_URL": database_url,
                     "CDS_LOG_LEVEL": "WARNING",
                     # One local client sends all the feedback; the quota is not soaked here.
                     "CDS_FEEDBACK_QUOTA_PER_HOUR": str(10**9)}, port)
    base = f"http://127.0.0.1:{port}"
    traffic = Traffic(fhir.base_url)
    windows: list[Window] = [Window()]
    lock = threading.Lock()
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while not stop.is_set():
            kind = traffic.pick(rng)
            started = time.perf_counter()
            try:
                ok = traffic.send(session, base, kind)
            except requests.RequestException:
                ok = False
                session = requests.Session()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                window = windows[-1]
                window.latencies_ms.append(elapsed)
                window.by_kind[kind] = window.by_kind.get(kind, 0) + 1
                window.errors += 0 if ok else 1

    print(f"soak: {args.minutes:g} min, {args.clients} clients, {args.workers} workers x "
          f"{args.threads} threads, database {database_url.split(':', 1)[0]}")
    print(f"{'t (s)':>6} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'RSS MB':>8}")
    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(args.clients)]
    rows = []
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(args.window, max(0.0, end - time.monotonic())))
            with lock:
                window = windows[-1]
                windows.append(Window())
            row = {
                "t_s": round(time.monotonic() - started),
                "requests": len(window.latencies_ms),
                "errors": window.errors,
                "p50_ms": round(percentile(window.latencies_ms, 50), 2),
                "p95_ms": round(percentile(window.latencies_ms, 95), 2),
                "p99_ms": round(percentile(window.latencies_ms, 99), 2),
                "rss_mb": round(rss_mb(server), 1),
                "by_kind": window.by_kind,
            }
            rows.append(row)
            print(f"{row['t_s']:>6} {row['requests']:>9} {row['errors']:>7} {row['p50_ms']:>8} "
                  f"{row['p95_ms']:>8} {row['p99_ms']:>8} {row['rss_mb']:>8}", flush=True)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=35)
        server.stop()
        fhir.stop()

    # The first window includes warm-up (imports, first models, caches): compare from the second.
    steady = rows[1:] if len(rows) > 2 else rows
    errors = sum(r["errors"] for r in rows)
    drift = steady[-1]["p50_ms"] / steady[0]["p50_ms"] if steady[0]["p50_ms"] else float("nan")
    growth = steady[-1]["rss_mb"] - steady[0]["rss_mb"]
    summary = {
        "minutes": args.minutes, "clients": args.clients, "workers": args.workers,
        "threads": args.threads, "requests": sum(r["requests"] for r in rows),
        "errors": errors, "p50_drift": round(drift, 3), "rss_growth_mb": round(growth, 1),
        "median_p50_ms": round(statistics.median(r["p50_ms"] for r in steady), 2),
        "windows": rows,
    }
    print(f"\nrequests {summary['requests']}, errors {errors}, p50 drift x{drift:.2f} "
          f"(last steady window / first), RSS growth {growth:+.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    failed = errors > 0
    if args.max_drift is not None and drift > args.max_drift:
        print(f"soak: latency drift x{drift:.2f} exceeds --max-drift {args.max_drift}")
        failed = True
    if args.max_rss_growth_mb is not None and growth > args.max_rss_growth_mb:
        print(f"soak: RSS grew {growth:.1f} MB, over --max-rss-growth-mb {args.max_rss_growth_mb}")
        failed = True
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
