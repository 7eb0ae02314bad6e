"""A long run of mutated fixture requests against `baclofen-cds serve` (issue 25.2).

    .venv/bin/python -m bench.fuzz [--cases 200000] [--seed 252] [--clients 4]

The same seeded mutations as tests/contract/test_fuzz_fixtures.py (tests/support/
mutations.py), sent over loopback by several clients to the real server with its
defaults (local trial). Prints the statuses and every case that answered 5xx or failed
to answer; exits 1 on any. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
from collections import Counter
from pathlib import Path

import requests

from bench.run import BIN, Server, _free_port
from tests.support.mutations import mutated_requests


def _client(port: int, cases: int, seed: int, part: int, parts: int, queue: mp.Queue) -> None:
    statuses: Counter[str] = Counter()
    failures = []
    with requests.Session() as session:
        for case in mutated_requests(cases, seed):
            if case.index % parts != part:
                continue
            try:
                answer = session.post(f"http://127.0.0.1:{port}/cds-services/{case.service}",
                                      data=json.dumps(case.request),
                                      headers={"Content-Type": "application/json"}, timeout=60)
                status = str(answer.status_code)
            except (requests.RequestException, ValueError) as error:
                status = type(error).__name__
            statuses[status] += 1
            if not status.isdigit() or int(status) >= 500:
                failures.append(f"case {case.index} ({case.fixture}) {status}: "
                                + "; ".join(case.edits))
    queue.put((statuses, failures))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=252)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="baclofen-fuzz-"))
    port = _free_port()
    server = Server([str(BIN / "baclofen-cds"), "serve", "--host", "127.0.0.1", "--port",
                     str(port)],
                    {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{tmp / 'fuzz.db'}",
                     "CDS_LOG_LEVEL": "WARNING", "CDS_FEEDBACK_QUOTA_PER_HOUR": "1000000000"},
                    port)
    queue: mp.Queue = mp.Queue()
    try:
        clients = [mp.Process(target=_client, args=(port, args.cases, args.seed, i,
                                                    args.clients, queue))
                   for i in range(args.clients)]
        for client in clients:
            client.start()
        statuses: Counter[str] = Counter()
        failures: list[str] = []
        for _ in clients:
            part_statuses, part_failures = queue.get()
            statuses.update(part_statuses)
            failures += part_failures
        for client in clients:
            client.join()
    finally:
        server.stop()
    print(json.dumps({"cases": args.cases, "seed": args.seed, "statuses": dict(statuses)}))
    for failure in failures[:50]:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
