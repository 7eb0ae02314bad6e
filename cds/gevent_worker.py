"""gunicorn's gevent worker, accepting new connections by least connections.

A gevent worker accepts whenever its event loop is idle, even for a moment between two
requests, so one worker could take every keep-alive connection that arrives at once and
serve them one after another while another worker sat idle (at concurrency 4 in
bench.run: p99 245 ms and a quarter less throughput than one thread per worker). Here a
worker that already holds connections waits a little before accepting, longer the more
it holds, so an idle worker, woken by the same connection, takes it first. An idle
worker accepts at once; a busy one at most MAX_DELAY later.
"""

from __future__ import annotations

from gevent.server import StreamServer
from gunicorn.workers import ggevent

DELAY_PER_CONNECTION = 0.002  # seconds
MAX_DELAY = 0.010


class LeastConnectionsStreamServer(StreamServer):
    _delayed_once = False

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
