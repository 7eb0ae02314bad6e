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
records: p99 0.6 s). A call whose body has arrived now asks for a turn; one call holds
it at a time, and it passes to the smallest call waiting (the CPU a call needs grows
with its record). Between its steps (cds/pipeline.py) the holder lets a waiting call
with at most half its body go first, so a small call waits for at most one step of a
large one (calls of a size do not alternate: that only made them end together); it gives
the turn back before it may wait on a FHIR server and when it ends; a call waiting
STARVING_SECONDS since it first asked goes first, so large calls are delayed, never
starved. A call that asks while nobody holds or waits takes the turn at once: turns
cost nothing without contention (the first design waited for an idle event loop at
every turn, about a sixth of the realistic call's throughput at concurrency 4).
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
# Between steps a call lets a waiting call go first when that one's body is at most
# 1/SMALLER_FACTOR of its own.
SMALLER_FACTOR = 2


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
    """Turns on this worker's CPU, smallest call first (module docstring).

    One call holds the turn at a time. A call that asks while nobody holds it and nobody
    waits takes it at once (no switch: the uncontended case costs nothing). The holder,
    between its steps, first lets calls that are ready read their bodies and ask (one
    pass of the event loop), then keeps the turn unless a much smaller or a starving
    call waits, and then hands it to whichever call goes next, itself included. A call
    gives the turn back when it ends or before it waits on the network
    (cds/web/hooks.py), so a FHIR server's answer never holds the CPU from the others."""

    def __init__(self) -> None:
        # (body bytes, first asked at, arrival order, the call, event set when granted)
        self._waiting: list[tuple[int, float, int, object, object]] = []
        self._order = itertools.count()
        self.holder: object | None = None

    def wait(self, call: object, body_bytes: int, first_asked: float,
             between_steps: bool = False) -> None:
        """Return when `call` holds the turn (at once outside gevent)."""
        if not under_gevent():
            return
        import gevent
        from gevent.event import Event

        if between_steps:
            # One pass of the event loop, I/O polled without blocking (sleep(0) runs
            # only greenlets already ready; a timer would block the poll for a whole
            # millisecond): connections waiting are accepted, bodies read, and those
            # calls ask for the turn now. Bounded, in case the loop is never idle.
            with gevent.Timeout(IDLE_WAIT_SECONDS, False):
                gevent.idle()
        if self.holder in (None, call) and not self._waiting:
            self.holder = call
            return
        if self.holder is call and not self._worth_yielding(body_bytes):
            return
        granted = Event()
        entry = (body_bytes, first_asked, next(self._order), call, granted)
        self._waiting.append(entry)
        if self.holder is call or self.holder is None:
            self._hand_over()
        if self.holder is not call:
            granted.wait()

    def release(self, call: object) -> None:
        """`call` ended or waits on the network: the next call in line goes."""
        if self.holder is call:
            self.holder = None
            if self._waiting:
                self._hand_over()

    def _worth_yielding(self, body_bytes: int) -> bool:
        """Between steps, the holder lets a waiting call go first only when that call is
        much smaller, or starving. Taking turns among calls of a size slows them all:
        they end together, their clients send again together, and the worker idles
        while the next bodies arrive (a sixth of the throughput at concurrency 4)."""
        now = time.monotonic()
        return any(size * SMALLER_FACTOR <= body_bytes or now - asked >= STARVING_SECONDS
                   for size, asked, *_ in self._waiting)

    def _hand_over(self) -> None:
        chosen = self._next()
        self._waiting.remove(chosen)
        self.holder = chosen[3]
        chosen[4].set()  # type: ignore[attr-defined]

    def _next(self) -> tuple[int, float, int, object, object]:
        """The smallest call, unless one has waited STARVING_SECONDS since it first asked
        (then the one waiting longest): large calls are delayed, never starved."""
        oldest = min(self._waiting, key=lambda w: (w[1], w[2]))
        if time.monotonic() - oldest[1] >= STARVING_SECONDS:
            return oldest
        return min(self._waiting, key=lambda w: (w[0], w[2]))


class Turns:
    """One call's turns: the first when its body has arrived, then one per step; given
    back before network waits and when the call ends."""

    def __init__(self, body_bytes: int) -> None:
        self.body_bytes = body_bytes
        self.first_asked = time.monotonic()
        self.asked = False

    def wait(self) -> None:
        CPU_TURNS.wait(self, self.body_bytes, self.first_asked, between_steps=self.asked)
        self.asked = True

    def release(self) -> None:
        CPU_TURNS.release(self)


CPU_TURNS = CpuTurns()  # one per worker process


