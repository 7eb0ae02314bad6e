"""Issued cards are recorded for governance off the request path.

Each hook call that returns cards used to commit a row to the database before
answering. With several workers on one SQLite file those commits queue on its single
write lock (SQLite's busy handler sleeps a millisecond or more), which cost ~15% of
throughput at concurrency 4. A background thread per process now writes them in
batches. What this gives up: a process killed outright loses the cards of its last few
milliseconds from the counts. Nothing a client was told was stored is lost (feedback is
still committed before it is acknowledged).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterable

from cds.serving_model import off_the_loop
from cds.storage import IssuedCard, StorageError, Store

log = logging.getLogger(__name__)


class IssuedCardRecorder:
    def __init__(self, store: Store, max_batch: int = 500) -> None:
        self._store = store
        self._max_batch = max_batch
        self._pending: list[IssuedCard] = []
        self._condition = threading.Condition()
        self._writing = False
        self._thread: threading.Thread | None = None
        self._pid_started: int | None = None

    def record(self, cards: Iterable[IssuedCard]) -> None:
        cards = list(cards)
        if not cards:
            return
        with self._condition:
            self._pending.extend(cards)
            self._start_if_needed()
            self._condition.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything recorded so far is written (True) or the timeout passes."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._pending and not self._writing, timeout=timeout)

    def _start_if_needed(self) -> None:
        import os

        # Started in the process that records (a gunicorn worker), never inherited by fork.
        if self._thread is None or self._pid_started != os.getpid():
            self._pid_started = os.getpid()
            self._thread = threading.Thread(target=self._run, name="issued-cards",
                                            daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._pending))
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._writing = True
            try:
                off_the_loop(self._store.record_cards, batch)
            except StorageError as error:
                # The clinician had the cards; only the governance count misses them.
                log.warning("issued cards not recorded: %s", error)
            except Exception:  # noqa: BLE001 - the writer thread must outlive any one batch
                log.exception("issued cards not recorded")
            finally:
                with self._condition:
                    self._writing = False
                    self._condition.notify_all()
