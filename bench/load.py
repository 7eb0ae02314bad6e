"""A small closed-loop load generator: N processes, keep-alive connections, fixed body."""

from __future__ import annotations

import http.client
import multiprocessing as mp
import statistics
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    latencies_ms: list[float]
    errors: int
    seconds: float

    def merge(self, other: LoadResult) -> LoadResult:
        return LoadResult(self.latencies_ms + other.latencies_ms, self.errors + other.errors,
                          self.seconds + other.seconds)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def _worker(port: int, path: str, body: bytes, seconds: float, queue: mp.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
                continue
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
    conn.close()
    queue.put((latencies, errors))


def run_load(port: int, path: str, body: bytes, concurrency: int, seconds: float) -> LoadResult:
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_worker, args=(port, path, body, seconds, queue))
             for _ in range(concurrency)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        worker_latencies, worker_errors = queue.get(timeout=seconds + 120)
        latencies.extend(worker_latencies)
        errors += worker_errors
    for p in procs:
        p.join()
    return LoadResult(latencies, errors, time.perf_counter() - started)
