"""gunicorn's gevent worker, accepting new connections by least connections.

A gevent worker accepts whenever its event loop is idle, even for a moment between two
requests, so one worker could take every keep-alive connection that arrives at once and
serve them one after another while another worker sat idle (at concurrency 4 in
bench.run: p99 245 ms and a quarter less throughput than one thread per worker). Here a
worker that already holds connections waits a little before accepting, longer the more
it holds, so an idle worker, woken by the same connection, takes it first. An idle
worker accepts at once; a busy one at most MAX_DELAY later. Connections are accepted one
per wake-up, and the worker yields after each request so that its connections are
served in turn (tests/system/test_serving_fairness.py).
"""

from __future__ import annotations

import gevent
from gevent.server import StreamServer
from gunicorn.workers import ggevent

DELAY_PER_CONNECTION = 0.002  # seconds
MAX_DELAY = 0.010


class LeastConnectionsStreamServer(StreamServer):
    _delayed_once = False
    # why: gevent accepts up to 100 waiting connections per wake-up, so connections that
    # arrive together would all go to the first worker awake; one at a time, each accept
    # is weighed against the connections this worker already holds.
    max_accept = 1

    def _do_read(self) -> None:
        held = len(self.pool) if self.pool is not None else 0
        delay = min(MAX_DELAY, DELAY_PER_CONNECTION * held)
        if delay and not self._delayed_once:
            self.stop_accepting()
            self._timer = self.loop.timer(delay)
            self._timer.start(self._accept_after_delay)
            return
        self._delayed_once = False
        super()._do_read()

    def _accept_after_delay(self) -> None:
        # Still there after the delay: no idle worker took it, so this one does.
        self._delayed_once = True
        self._start_accepting_if_started()


class LeastConnectionsGeventWorker(ggevent.GeventWorker):
    def run(self) -> None:
        ggevent.StreamServer = LeastConnectionsStreamServer  # run() builds its servers by name
        super().run()

    def handle_request(self, listener_name, req, sock, addr):  # noqa: ANN001
        super().handle_request(listener_name, req, sock, addr)
        # why: a keep-alive client that sends its next request at once would otherwise be
        # served again before the loop looks at other connections' ready requests
        # (gevent.sleep(0) resumes before the loop polls; idle() waits until it has).
        gevent.idle()
