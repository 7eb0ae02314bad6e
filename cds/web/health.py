"""`/healthz` (the process answers) and `/readyz` (it can do its work).

/readyz writes to the database, as every authenticated call does (the JWT replay
store): on a full disk it answers 503. The write (two commits, each synced to disk) is
made at most once every READY_CHECK_SECONDS per worker, away from the event loop, and
every probe in between reads its result: pollers on the public port used to cost two
disk-synced writes each (issue 26.3: 4 pollers made a normal call wait 450 ms).
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify

from cds.serving_model import off_the_loop
from cds.storage import Store

bp = Blueprint("health", __name__)

READY_CHECK_SECONDS = 5.0


class DatabaseReadiness:
    """Whether the database takes writes, as last checked (at most READY_CHECK_SECONDS
    ago). One probe at a time writes; the others read the last answer meanwhile (the
    first probes of a process wait for the first answer)."""

    def __init__(self, max_age: float = READY_CHECK_SECONDS) -> None:
        self.max_age = max_age
        self._store: Store | None = None
        self._checked_at: float | None = None
        self._writable = False
        self._checking = threading.Lock()  # cooperative under gevent's patching

    def writable(self, store: Store) -> bool:
        if store is not self._store:  # another database: nothing known about it yet
            self._store, self._checked_at = store, None
        if self._fresh():
            return self._writable
        if not self._checking.acquire(blocking=self._checked_at is None):
            return self._writable  # another probe is checking; its answer comes shortly
        try:
            if not self._fresh():
                self._writable = off_the_loop(store.check_writable)
                self._checked_at = time.monotonic()
            return self._writable
        finally:
            self._checking.release()

    def _fresh(self) -> bool:
        return self._checked_at is not None and \
            time.monotonic() - self._checked_at < self.max_age


@bp.get("/healthz")
def alive():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def ready():
    core = current_app.extensions["cds"]
    checks = {
        "rules": core.knowledge is not None and core.engine is not None,
        "database": core.readiness.writable(core.store),
    }
    status = 200 if all(checks.values()) else 503
    return jsonify({"status": "ready" if status == 200 else "not ready", "checks": checks}), status
