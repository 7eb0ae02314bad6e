"""gunicorn's gevent worker, with the connection limits a public listener needs.

**Least connections across workers.** A gevent worker accepts whenever its event loop is
idle, even for a moment between two requests, so one worker could take every keep-alive
connection that arrives at once and serve them one after another while another worker
sat idle (at concurrency 4 in bench.run: p99 245 ms). Each worker publishes how many
connections it holds in memory shared by all workers (WorkerLoads); a worker holding
more than the least loaded one waits a little before accepting, longer the more it
holds beyond it (up to MAX_DELAY), so the less loaded worker, woken by the same
connection, takes it first. Workers holding the same number accept at once: a flood of
connections that send nothing (issue 26.3: 300 a second, when every held connection
delayed each accept, made normal calls wait 7-8 s) is accepted as fast as it comes.
Connections are accepted one per wake-up, and the worker yields after each request so
that its connections are served in turn (tests/system/test_serving_fairness.py).

**The same time limits on every listener** (issue 26.1; docs/security.md, Limits): a TLS
handshake must complete within HEADER_SECONDS (the plain listener's limit for a
request's headers; 2,100 silent TLS connections used to stay open and starve every TLS
call), a response must be taken by the client within SEND_SECONDS (a client that never
read kept its connection for ever), and when a worker holds its maximum of connections,
a new one takes the place of the connection that has waited longest without sending a
request. Each such close is counted in `cds_connections_dropped_total{reason}`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import time
from collections.abc import Iterator
from multiprocessing.sharedctypes import RawArray

import gevent
from gevent.server import StreamServer
from gunicorn.workers import base_async, ggevent

from cds.serving_model import HEADER_SECONDS, SEND_SECONDS

DELAY_PER_CONNECTION = 0.002  # seconds, per connection held beyond the least loaded worker
MAX_DELAY = 0.010
MAX_WORKER_SLOTS = 256  # workers alive at once, restarts included


class WorkerLoads:
    """Connections held by each live worker, in memory the master shares with every worker
    it forks. The master gives each worker a slot before forking it and frees the slot
    when the worker exits; each worker writes only its own slot."""

    def __init__(self, slots: int = MAX_WORKER_SLOTS) -> None:
        self.held = RawArray(ctypes.c_long, slots)
        self.in_use = RawArray(ctypes.c_byte, slots)
        self.slot: int | None = None  # this process's, in a worker

    def claim(self) -> int | None:
        """In the master, before a fork: a free slot for the new worker (None: none left,
        the worker then accepts without weighing the others)."""
        for slot in range(len(self.in_use)):
            if not self.in_use[slot]:
                self.in_use[slot], self.held[slot] = 1, 0
                return slot
        return None

    def release(self, slot: int | None) -> None:
        if slot is not None:
            self.in_use[slot], self.held[slot] = 0, 0

    def publish(self, held: int) -> None:
        if self.slot is not None:
            self.held[self.slot] = held

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections any other live worker holds (None: no other worker)."""
        fewest = None
        for slot in range(len(self.in_use)):
            if self.in_use[slot] and slot != self.slot:
                held = self.held[slot]
                fewest = held if fewest is None or held < fewest else fewest
        return fewest


LOADS = WorkerLoads()  # made in the master when gunicorn loads this worker class


class Connections:
    """This worker's connections: how many it holds, and which of them have not sent a
    request yet (the ones to close first when the worker is full)."""

    def __init__(self) -> None:
        self.held = 0
        # greenlet -> (accepted at, the connection's file descriptor)
        self.waiting: dict[gevent.Greenlet, tuple[float, int]] = {}

    def opened(self) -> None:
        self.held += 1
        LOADS.publish(self.held)

    def closed(self) -> None:
        self.held -= 1
        LOADS.publish(self.held)

    def request_started(self) -> None:
        self.waiting.pop(gevent.getcurrent(), None)

    def shed_longest_waiting(self) -> bool:
        """Close the connection that has waited longest without sending a request."""
        if not self.waiting:
            return False
        greenlet = min(self.waiting, key=lambda g: self.waiting[g][0])
        _since, fd = self.waiting.pop(greenlet)
        with contextlib.suppress(OSError):
            # Through a duplicate of its descriptor, not the socket object the greenlet
            # reads (which TLS replaces, and whose own shutdown would fail the waiting
            # read with an error that gets logged): the read sees the connection end, and
            # the greenlet closes it as after any peer's goodbye. The descriptor is the
            # greenlet's until it ends, and it leaves `waiting` before then.
            duplicate = socket.socket(fileno=os.dup(fd))
            try:
                duplicate.shutdown(socket.SHUT_RDWR)
            finally:
                duplicate.close()
        _dropped("shed")
        return True


CONNECTIONS = Connections()


def _dropped(reason: str) -> None:
    from cds.metrics import CONNECTIONS_DROPPED

    CONNECTIONS_DROPPED.labels(reason).inc()


class LeastConnectionsStreamServer(StreamServer):
    _delayed_once = False
    # why: gevent accepts up to 100 waiting connections per wake-up, so connections that
    # arrive together would all go to the first worker awake; one at a time, each accept
    # is weighed against the connections the workers already hold.
    max_accept = 1

    def init_socket(self) -> None:
        super().init_socket()
        inner = self._handle

        def counted(client: socket.socket, address) -> None:  # noqa: ANN001
            CONNECTIONS.waiting[gevent.getcurrent()] = (time.monotonic(), client.fileno())
            try:
                inner(client, address)
            finally:
                CONNECTIONS.waiting.pop(gevent.getcurrent(), None)
                CONNECTIONS.closed()

        self._handle = counted

    def do_handle(self, *args) -> None:  # noqa: ANN002
        CONNECTIONS.opened()  # counted from the accept, before its greenlet runs
        try:
            super().do_handle(*args)
        except BaseException:
            CONNECTIONS.closed()
            raise

    def _do_read(self) -> None:
        if self.full():
            # Its slot frees when its greenlet ends; the base class waits for that.
            CONNECTIONS.shed_longest_waiting()
        fewest = LOADS.fewest_elsewhere()
        # Strict while the workers hold a few connections each (keep-alive clients, whose
        # calls queue behind each other); a sixteenth's leeway once they hold many, so a
        # flood is not accepted in turns, each worker waiting for the other's next accept.
        beyond = CONNECTIONS.held - fewest - fewest // 16 if fewest is not None else 0
        delay = min(MAX_DELAY, DELAY_PER_CONNECTION * max(0, beyond))
        if delay and not self._delayed_once:
            self.stop_accepting()
            self._timer = self.loop.timer(delay)
            self._timer.start(self._accept_after_delay)
            return
        self._delayed_once = False
        super()._do_read()

    def _accept_after_delay(self) -> None:
        # Still there after the delay: no less loaded worker took it, so this one does.
        self._delayed_once = True
        self._start_accepting_if_started()

    def wrap_socket_and_handle(self, client_socket: socket.socket, address) -> None:  # noqa: ANN001
        """TLS: the handshake within HEADER_SECONDS, as a plain request's headers."""
        try:
            with gevent.Timeout(HEADER_SECONDS):
                tls = self.wrap_socket(client_socket, **{**self.ssl_args,
                                                         "do_handshake_on_connect": False})
                tls.do_handshake()
        except gevent.Timeout:
            _dropped("tls_handshake")
            client_socket.close()
            return
        except OSError:  # not TLS, or the peer went away: nothing to answer
            client_socket.close()
            return
        try:
            self.handle(tls, address)
        finally:
            tls.close()


class LeastConnectionsGeventWorker(ggevent.GeventWorker):
    def run(self) -> None:
        ggevent.StreamServer = LeastConnectionsStreamServer  # run() builds its servers by name
        LOADS.slot = getattr(self, "load_slot", None)
        super().run()

    def handle(self, listener, client, addr) -> None:  # noqa: ANN001
        # GeventWorker.handle makes the socket blocking without a time limit; a send that
        # the client does not take within SEND_SECONDS ends the connection instead.
        client.settimeout(SEND_SECONDS)
        base_async.AsyncWorker.handle(self, listener, client, addr)

    @contextlib.contextmanager
    def timeout_ctx(self) -> Iterator[None]:
        """The wait for a request's headers (gunicorn's keep-alive timeout), counted when
        it ends the connection."""
        timer = gevent.Timeout(self.cfg.keepalive)
        timer.start()
        try:
            yield
        except gevent.Timeout as expired:
            if expired is not timer:
                raise
            # No request within HEADER_SECONDS: a silent connection, or a keep-alive one
            # left idle. The parser's request stays None, and gunicorn closes.
            _dropped("idle")
        finally:
            timer.close()

    def handle_request(self, listener_name, req, sock, addr):  # noqa: ANN001
        CONNECTIONS.request_started()
        try:
            super().handle_request(listener_name, req, sock, addr)
        except TimeoutError:
            _dropped("response_not_read")
            raise StopIteration from None  # gunicorn closes the connection quietly
        # why: a keep-alive client that sends its next request at once would otherwise be
        # served again before the loop looks at other connections' ready requests
        # (gevent.sleep(0) resumes before the loop polls; idle() waits until it has).
        gevent.idle()
