"""Issue 15 finding 3: slow peers must not starve other calls.

`baclofen-cds serve` with its defaults (one worker per core, gevent) on loopback. A
separate process keeps 16 connections sending a request slowly (header lines, or body
bytes, one every half second) and 8 hook calls stuck on a FHIR server that never
answers. Meanwhile this test makes ordinary calls, each with its prefetch, and asks
/healthz: the p99 of each must stay under 100 ms (the bound the issue sets).

Robust on a shared 2-core machine: 600 samples of each (p99 is the 6th slowest), paced,
after a warm-up; the failure message gives the whole distribution and what the slow
peers did, so a failure says whether the service starved or the machine stalled.
Figures are written to test-output/slow-peers-<kind>.json (docs/performance.md).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cds.serving_model import default_workers
from tests.support.live import ROOT, LiveServer
from tests.support.requests import stop_order_request

SAMPLES = 600
PAUSE = 0.005  # between samples: an EHR's calls arrive, they are not a closed loop
P99_BOUND_MS = 100.0
SLOW_CONNECTIONS = 16
STUCK_CALLS = 8


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow-peers")
    server = LiveServer({"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'db'}",
                         "CDS_LOG_LEVEL": "WARNING"}, workers=default_workers())
    server.start(tmp / "server.log")
    yield server
    server.stop()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "median_ms": round(statistics.median(values), 2),
            "p90_ms": round(percentile(values, 90), 2), "p99_ms": round(percentile(values, 99), 2),
            "max_ms": round(max(values), 2)}


TIMEOUT = 5.0  # a call not answered by then counts as taking this long
WARM_UP = 20


def timed(call) -> float:
    """Milliseconds until a good answer; TIMEOUT for no answer (a starved service)."""
    started = time.perf_counter()
    try:
        response = call()
    except requests.RequestException:
        return TIMEOUT * 1000
    assert response.status_code == 200, response.text[:300]
    return (time.perf_counter() - started) * 1000


def measure(service: LiveServer, samples: int) -> tuple[list[float], list[float]]:
    session = requests.Session()
    session.trust_env = False
    url = service.base_url + "/cds-services/baclofen-order-sign"
    hook_ms, health_ms = [], []
    for index in range(samples + WARM_UP):
        hook_elapsed = timed(lambda: session.post(url, json=stop_order_request(),
                                                  timeout=TIMEOUT))
        health_elapsed = timed(lambda: session.get(service.base_url + "/healthz",
                                                   timeout=TIMEOUT))
        starved = max(hook_elapsed, health_elapsed) >= TIMEOUT * 1000
        if index >= WARM_UP or starved:  # warm-up skips first-call costs, never a timeout
            hook_ms.append(hook_elapsed)
            health_ms.append(health_elapsed)
        if starved and sum(v >= TIMEOUT * 1000 for v in hook_ms + health_ms) >= 3:
            break  # starved: enough evidence, no need to wait out every sample
        time.sleep(PAUSE)
    return hook_ms, health_ms


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["header", "body"])
def test_slow_peers_and_stuck_fhir_calls_do_not_starve_other_calls(service, kind, output_dir):
    peers = subprocess.Popen(
        [sys.executable, "-m", "tests.support.slow_peers", "--port", str(service.port),
         "--kind", kind, "--connections", str(SLOW_CONNECTIONS),
         "--stuck-calls", str(STUCK_CALLS), "--seconds", "300"],  # until terminated
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(peers.stdout.readline())["ready"]
        time.sleep(2.0)  # every slow connection open, every stuck call waiting
        hook_ms, health_ms = measure(service, SAMPLES)
    finally:
        peers.terminate()
        counts_line = peers.communicate(timeout=30)[0].strip().splitlines()
    counts = json.loads(counts_line[-1]) if counts_line and "{" in counts_line[-1] else {}
    figures = {"kind": kind, "slow_connections": SLOW_CONNECTIONS, "stuck_calls": STUCK_CALLS,
               "workers": default_workers(), "hook_call": summary(hook_ms),
               "healthz": summary(health_ms), "peers": counts}
    Path(output_dir / f"slow-peers-{kind}.json").write_text(json.dumps(figures, indent=2))
    message = (f"with {SLOW_CONNECTIONS} slow-{kind} connections and {STUCK_CALLS} calls "
               f"stuck on a silent FHIR server: {json.dumps(figures)}")
    assert figures["hook_call"]["p99_ms"] < P99_BOUND_MS, message
    assert figures["healthz"]["p99_ms"] < P99_BOUND_MS, message
