"""How `serve` runs the app: gunicorn workers of the gevent class by default.

Why gevent (measured in docs/performance.md): a hook call with prefetch is CPU-bound for
a few milliseconds, but a peer can hold a connection for seconds, sending headers or a
body a byte at a time, and a call that falls back to a slow FHIR server waits for up to
the deadline. Thread workers give each of those a thread: two slow peers stopped a
2 x 1 service for 22 s. A gevent worker parks a waiting connection or fetch as a
greenlet (1,000 per worker) and runs the CPU-bound calls one at a time, as one thread
per worker did, so the CPU-bound throughput stays where it was.

gevent must patch the standard library before anything imports ssl, threading's users or
psycopg (which picks its wait function at import), so `baclofen-cds serve` patches first
thing, in the gunicorn master, before any other module of ours is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

WORKER_CLASSES = ("gevent", "gthread")
# What each choice means to gunicorn (cds/gevent_worker.py: why not plain "gevent").
GUNICORN_WORKER_CLASS = {
    "gevent": "cds.gevent_worker.LeastConnectionsGeventWorker",
    "gthread": "gthread",
}
DEFAULT_WORKER_CLASS = "gevent"
# Threads per worker for the gthread class (ignored by gevent).
DEFAULT_THREADS = 1
# A gevent worker's connections at once; each costs a greenlet, not a thread. When a
# worker holds this many, a new connection replaces the one that has waited longest
# without sending a request (cds/gevent_worker.py). `serve --worker-connections`.
WORKER_CONNECTIONS = 1000
LISTEN_BACKLOG = 4096  # cds/server.py says why
# Seconds a peer has to complete a TLS handshake and send a request's headers (gunicorn's
# keep-alive timeout bounds header reading in async workers), to send its body
# (cds/web/json_body.py), and to take each part of a response (a socket time limit).
HEADER_SECONDS = 5
BODY_SECONDS = 10
SEND_SECONDS = 15  # longer than BODY_SECONDS, so that a slow body is answered 408


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def worker_class_from(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """The worker class `serve` will use, read before argparse runs (see the module doc)."""
    env = dict(os.environ if env is None else env)
    chosen = env.get("CDS_WORKER_CLASS") or DEFAULT_WORKER_CLASS
    for index, arg in enumerate(argv):
        if arg == "--worker-class" and index + 1 < len(argv):
            chosen = argv[index + 1]
        elif arg.startswith("--worker-class="):
            chosen = arg.split("=", 1)[1]
    return chosen


def patch_for_gevent() -> None:
    from gevent import monkey

    monkey.patch_all()


def off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """Run a blocking call (a database commit that may fsync) so it cannot stall the
    worker: under gevent in a real thread of the hub's pool, while the calling greenlet
    waits cooperatively; otherwise directly. A WAL checkpoint's fsync on the event loop
    held every connection of the worker for 100 ms and more."""
    if not under_gevent():
        return function(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(function, args)


def under_gevent() -> bool:
    """True in a gevent-patched process (a `serve` worker by default)."""
    import sys

    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))
