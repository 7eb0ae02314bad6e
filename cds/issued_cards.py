"""Issued cards are recorded for governance off the request path.

Each hook call that returns cards used to commit a row to the database before
answering. With several workers on one SQLite file those commits queue on its single
write lock (SQLite's busy handler sleeps a millisecond or more), which cost ~15% of
throughput at concurrency 4. A background thread per process now writes them in
batches. Each batch costs a connection, two PRAGMAs, the insert and two commits, so the
writer gathers cards for up to GATHER_SECONDS before writing (at one call at a time
each call was its own batch, ~7% of a worker's time); a flush (feedback is checked
against the cards) writes at once. What this gives up: a process killed outright loses
the cards of its last GATHER_SECONDS from the counts. Nothing a client was told was
stored is lost (feedback is still committed before it is acknowledged).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterable

from cds.log_bounds import defect_summary
from cds.serving_model import off_the_loop
from cds.storage import IssuedCard, StorageError, Store

log = logging.getLogger(__name__)

GATHER_SECONDS = 0.05


class IssuedCardRecorder:
    def __init__(self, store: Store, max_batch: int = 500,
                 gather_seconds: float = GATHER_SECONDS) -> None:
        self._store = store
        self._max_batch = max_batch
        self._gather_seconds = gather_seconds
        self._pending: list[IssuedCard] = []
        self._condition = threading.Condition()
        self._writing = False
        self._flushes_waiting = 0
        self._thread: threading.Thread | None = None
        self._pid_started: int | None = None

    def record(self, cards: Iterable[IssuedCard]) -> None:
        cards = list(cards)
        if not cards:
            return
        with self._condition:
            self._pending.extend(cards)
            self._start_if_needed()
            self._condition.notify_all()  # the writer, whatever else waits (a flush)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is written (True) or the timeout passes."""
        with self._condition:
            self._flushes_waiting += 1
            self._condition.notify_all()  # the writer stops gathering and writes now
            try:
                return self._condition.wait_for(
                    lambda: not self._pending and not self._writing, timeout=timeout)
            finally:
                self._flushes_waiting -= 1

    def _start_if_needed(self) -> None:
        import os

        # Started in the process that records (a gunicorn worker), never inherited by fork.
        if self._thread is None or self._pid_started != os.getpid():
            self._pid_started = os.getpid()
            self._thread = threading.Thread(target=self._run, name="issued-cards",
                                            daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _batch_is_due(self) -> bool:
        return len(self._pending) >= self._max_batch or self._flushes_waiting > 0

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._pending))
                self._condition.wait_for(self._batch_is_due, timeout=self._gather_seconds)
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._writing = True
            try:
                off_the_loop(self._store.record_cards, batch)
            except StorageError as error:
                # The clinician had the cards; only the governance count misses them.
                log.warning("issued cards not recorded: %s", error)
            except Exception as error:  # noqa: BLE001 - the writer must outlive any one batch
                log.error("issued cards not recorded: %s", defect_summary(error))
            finally:
                with self._condition:
                    self._writing = False
                    self._condition.notify_all()
