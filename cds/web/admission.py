"""Admission of hook calls: a bound per client, and turns on the worker's CPU.

**Calls in flight per client** (issue 25.3). One client may have at most
`CDS_MAX_CALLS_PER_CLIENT` hook calls in a worker at once (16 by default); one more is
answered 429 with Retry-After before its body is read. A client is the authenticated
issuer and tenant, or the peer address when authentication is off (the local trial).
This bounds what one client can hold of a worker: its memory (a body may be 5 MB) and
its queue, whatever the others do.

**Turns on the CPU** (issues 25.3 and 26.2). A gevent worker runs one call's CPU-bound
part at a time; which call goes next used to be whichever became ready first, so a
normal call waited behind every large call ready before it (with 8 peers sending 1.3 MB
records: p99 0.6 s). A call whose body has arrived now asks for a turn, and turns go
out whenever the worker has nothing else to do (its event loop is idle: the previous
call finished, or is waiting on a FHIR server), smallest body first (the CPU a call
needs grows with its record). A call also gives its turn back between its steps
(cds/pipeline.py), so a small call waits for at most one step of a large one; a call
waiting STARVING_SECONDS since it first asked goes first, so large calls are delayed,
never starved.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

from flask import Flask, g, request

from cds.errors import ClientError
from cds.serving_model import under_gevent

HOOK_ENDPOINT = "hooks.invoke"
# A call waiting this long since it first asked goes before smaller ones.
STARVING_SECONDS = 2.0
RETRY_AFTER_SECONDS = 1
IDLE_WAIT_SECONDS = 0.001


class TooManyCalls(ClientError):
    def __init__(self, limit: int) -> None:
        super().__init__(429, f"This client has {limit} calls in progress here, the most this "
                              "service takes at once from one client; retry shortly.")
        self.retry_after_seconds = RETRY_AFTER_SECONDS


@dataclass
class CallsInFlight:
    """Hook calls in progress in this worker, per client."""

    limit: int
    by_client: Counter[str] = field(default_factory=Counter)

    def enter(self, client: str) -> None:
        if self.by_client[client] >= self.limit:
            raise TooManyCalls(self.limit)
        self.by_client[client] += 1

    def leave(self, client: str) -> None:
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]


def _client_key() -> str:
    principal = g.get("principal")
    if principal is not None:
        return f"iss:{principal.iss}|{principal.tenant or ''}"
    return f"addr:{request.remote_addr or ''}"


def register_admission(app: Flask) -> None:
    """After authentication (the client is known), before the handler reads a body."""
    calls = CallsInFlight(app.extensions["cds"].settings.max_calls_per_client)

    @app.before_request
    def _admit():
        if request.endpoint != HOOK_ENDPOINT:
            return None
        key = _client_key()
        calls.enter(key)
        g.admitted_client = key
        return None

    @app.teardown_request
    def _leave(_error=None):
        key = g.pop("admitted_client", None)
        if key is not None:
            calls.leave(key)


class CpuTurns:
    """Turns on this worker's CPU, smallest call first (module docstring)."""

    def __init__(self) -> None:
        # (body bytes, first asked at, arrival order, event set when granted)
        self._waiting: list[tuple[int, float, int, object]] = []
        self._order = itertools.count()
        self._granter = None

    def wait(self, body_bytes: int, first_asked: float) -> None:
        """Return when the call's turn comes (at once outside gevent)."""
        if not under_gevent():
            return
        from gevent.event import Event

        granted = Event()
        self._waiting.append((body_bytes, first_asked, next(self._order), granted))
        self._ensure_granter()
        granted.wait()

    def _ensure_granter(self) -> None:
        import gevent

        if self._granter is None or self._granter.dead:
            self._granter = gevent.spawn(self._grant_when_idle)

    def _grant_when_idle(self) -> None:
        import gevent

        while self._waiting:
            # Everything ready to run has run (bodies read, calls finished or waiting on
            # a FHIR server): the CPU is free. Never longer than IDLE_WAIT_SECONDS, so
            # that a worker whose loop is never idle still hands out turns.
            with gevent.Timeout(IDLE_WAIT_SECONDS, False):
                gevent.idle()
            if self._waiting:
                chosen = self._next()
                self._waiting.remove(chosen)
                chosen[3].set()  # type: ignore[attr-defined]

    def _next(self) -> tuple[int, float, int, object]:
        """The smallest call, unless one has waited STARVING_SECONDS since it first asked
        (then the one waiting longest): large calls are delayed, never starved."""
        oldest = min(self._waiting, key=lambda w: (w[1], w[2]))
        if time.monotonic() - oldest[1] >= STARVING_SECONDS:
            return oldest
        return min(self._waiting, key=lambda w: (w[0], w[2]))


class Turns:
    """One call's turns: the first when its body has arrived, then one per step."""

    def __init__(self, body_bytes: int) -> None:
        self.body_bytes = body_bytes
        self.first_asked = time.monotonic()

    def wait(self) -> None:
        CPU_TURNS.wait(self.body_bytes, self.first_asked)


CPU_TURNS = CpuTurns()  # one per worker process


