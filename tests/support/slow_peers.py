"""Slow peers against a service on loopback, run as their own process so that their
threads never compete with the measuring test for its interpreter lock.

    python -m tests.support.slow_peers --port 8080 --kind header --connections 16 \
        --stuck-calls 8 --seconds 20

- `--connections` sockets that send a request slowly: header lines (`header`) or body
  bytes (`body`) one every half second, reconnecting whenever the service closes them;
- `--stuck-calls` hook calls at a time whose fhirServer (started here, on loopback)
  accepts connections and never answers, each reissued as soon as it is answered.

Prints one JSON line of counts when done. Bounded in time; loopback only.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import socket
import threading
import time

import requests

from tests.support.requests import hook_request

DRIP_SECONDS = 0.5
STOP = threading.Event()  # set by SIGTERM or when --seconds have passed


def running(stop: float) -> bool:
    return not STOP.is_set() and time.monotonic() < stop


class SilentFhirServer:
    """Accepts, reads the request, never answers; lets go of sockets after a while."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._held: collections.deque = collections.deque()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append((time.monotonic(), conn))
            while self._held and time.monotonic() - self._held[0][0] > 10:
                self._held.popleft()[1].close()


def slow_request(port: int, kind: str, stop: float, counts: collections.Counter) -> None:
    while running(stop):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            counts["connect_failed"] += 1
            time.sleep(DRIP_SECONDS)
            continue
        counts["connections"] += 1
        try:
            sock.sendall(b"POST /cds-services/baclofen-patient-view HTTP/1.1\r\n"
                         b"Host: 127.0.0.1\r\n")
            if kind == "body":
                sock.sendall(b"Content-Type: application/json\r\n"
                             b"Content-Length: 1000000\r\n\r\n{\"hook\": \"")
            while running(stop):
                time.sleep(DRIP_SECONDS)
                sock.sendall(b"X-Slow: 1\r\n" if kind == "header" else b"x")
                counts["drips"] += 1
        except OSError:
            counts["closed_by_service"] += 1  # cut by a header or body timeout: reconnect
        finally:
            sock.close()


def stuck_call(port: int, fhir_port: int, stop: float, counts: collections.Counter) -> None:
    session = requests.Session()
    session.trust_env = False
    while running(stop):
        request = hook_request("patient-view")
        request["prefetch"] = {}
        request["fhirServer"] = f"http://127.0.0.1:{fhir_port}/fhir"
        request["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer",
                                        "expires_in": 300, "scope": "patient/*.read",
                                        "subject": "baclofen-cds"}
        try:
            response = session.post(f"http://127.0.0.1:{port}/cds-services/"
                                    "baclofen-patient-view", json=request, timeout=30)
            counts[f"stuck_call_{response.status_code}"] += 1
        except requests.RequestException:
            counts["stuck_call_error"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["header", "body"], required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stuck-calls", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    stop = time.monotonic() + args.seconds
    counts: collections.Counter = collections.Counter()
    fhir = SilentFhirServer()
    threads = [threading.Thread(target=slow_request, args=(args.port, args.kind, stop, counts))
               for _ in range(args.connections)]
    threads += [threading.Thread(target=stuck_call, args=(args.port, fhir.port, stop, counts))
                for _ in range(args.stuck_calls)]
    for thread in threads:
        thread.start()
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    print(json.dumps({"ready": True}), flush=True)
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.2)
    counts["fhir_connections_accepted"] = fhir.accepted
    print(json.dumps(dict(counts)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
