"""Benchmark `baclofen-cds serve` against a bare-Flask ceiling in the same run.

    .venv/bin/python -m bench.run [--seconds 12] [--rounds 3] [--workers N] [--threads N]
                                  [--scenario NAME ...] [--concurrency 1,4]

Over loopback only. Prints median/p90/p99 latency, throughput, peak RSS per worker,
and our throughput as a ratio of the ceiling's for the same scenario and concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench.load import LoadResult, run_load
from bench.payloads import SCENARIOS
from cds.serving_model import (
    DEFAULT_THREADS,
    GUNICORN_WORKER_CLASS,
    WORKER_CLASSES,
    default_workers,
    worker_class_from,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {' '.join(command)}")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def peak_rss_mb(self) -> float:
        peaks = []
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return max(peaks) if peaks else float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)


def _row(name: str, conc: int, ours: LoadResult, ceiling: LoadResult, rss: float) -> dict:
    return {
        "scenario": name, "concurrency": conc,
        "median_ms": round(ours.median, 2), "p90_ms": round(ours.percentile(90), 2),
        "p99_ms": round(ours.percentile(99), 2), "throughput_rps": round(ours.throughput, 1),
        "errors": ours.errors, "ceiling_rps": round(ceiling.throughput, 1),
        "ceiling_p99_ms": round(ceiling.percentile(99), 2),
        "ratio_to_ceiling": round(ours.throughput / ceiling.throughput, 3)
        if ceiling.throughput else None,
        "peak_rss_mb_per_worker": round(rss, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=12.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleave ours and the ceiling in this many slices")
    # The same defaults as `baclofen-cds serve`, so the benchmark runs it as users do.
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--worker-class", choices=WORKER_CLASSES, default=worker_class_from([]))
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run only this scenario (repeatable; default: all)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="baclofen-bench-"))

    ours_port = _free_port()
    ours = Server([str(BIN / "baclofen-cds"), "serve", "--host", "127.0.0.1", "--port",
                   str(ours_port), "--workers", str(args.workers), "--threads",
                   str(args.threads), "--worker-class", args.worker_class],
                  {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
                   "CDS_LOG_LEVEL": "WARNING"}, ours_port)
    bodies = {}
    card_bytes = 2000
    try:
        for name, (service, build) in SCENARIOS.items():
            if args.scenario and name not in args.scenario:
                continue
            body = json.dumps(build(now)).encode()
            response = requests.post(f"http://127.0.0.1:{ours_port}/cds-services/{service}",
                                     data=body, headers={"Content-Type": "application/json"},
                                     timeout=30)
            response.raise_for_status()
            bodies[name] = (service, body, len(response.content))
            card_bytes = max(card_bytes, len(response.content))
    except Exception:
        ours.stop()
        raise
    ceiling_port = _free_port()
    ceiling = Server([str(BIN / "python"), "-m", "gunicorn", "bench.ceiling:app", "-b",
                      f"127.0.0.1:{ceiling_port}", "-w", str(args.workers), "--threads",
                      str(args.threads), "-k", GUNICORN_WORKER_CLASS[args.worker_class]],
                     {"BENCH_CARD_BYTES": str(card_bytes)}, ceiling_port)
    rows = []
    try:
        for name, (service, body, size) in bodies.items():
            path = f"/cds-services/{service}"
            for conc in concurrencies:
                run_load(ours_port, path, body, conc, min(2.0, args.seconds))  # warm-up
                run_load(ceiling_port, path, body, conc, min(2.0, args.seconds))
                # Interleaved rounds: a shared host's slow patches hit both sides alike.
                slice_seconds = args.seconds / args.rounds
                ours_result = LoadResult([], 0, 0.0)
                ceiling_result = LoadResult([], 0, 0.0)
                for _ in range(args.rounds):
                    ours_result = ours_result.merge(
                        run_load(ours_port, path, body, conc, slice_seconds))
                    ceiling_result = ceiling_result.merge(
                        run_load(ceiling_port, path, body, conc, slice_seconds))
                row = _row(name, conc, ours_result, ceiling_result, ours.peak_rss_mb())
                row["request_kb"] = round(len(body) / 1024, 1)
                row["response_bytes"] = size
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    finally:
        ours.stop()
        ceiling.stop()
    _print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": _machine(), "rows": rows}, indent=2))
    return 0


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "date": datetime.now(UTC).isoformat()}


def _print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\nbaclofen-cds benchmark: {_machine()} workers={args.workers} "
          f"worker_class={args.worker_class} threads={args.threads} "
          f"seconds={args.seconds} rounds={args.rounds}")
    header = ("scenario", "conc", "req KB", "median ms", "p90 ms", "p99 ms", "req/s",
              "ceiling req/s", "ratio", "peak RSS MB", "errors")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(v) for v in (
            r["scenario"], r["concurrency"], r["request_kb"], r["median_ms"], r["p90_ms"],
            r["p99_ms"], r["throughput_rps"], r["ceiling_rps"], r["ratio_to_ceiling"],
            r["peak_rss_mb_per_worker"], r["errors"])) + " |")


if __name__ == "__main__":
    sys.exit(main())
