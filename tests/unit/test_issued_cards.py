"""Issued cards are written off the request path, in batches, and survive a flush."""

from __future__ import annotations

import threading

from cds.issued_cards import IssuedCardRecorder
from cds.storage import IssuedCard, Store


def card(i: int) -> IssuedCard:
    return IssuedCard(f"card-{i}", "baclofen-order-sign", "order-sign", "supervised-taper",
                      "warning", ((f"s-{i}", "Replace the stop"),))


def test_every_recorded_card_is_written_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'cards.db'}")
    store.create_schema()
    recorder = IssuedCardRecorder(store, max_batch=7)

    def produce(offset: int) -> None:
        for i in range(50):
            recorder.record([card(offset + i)])

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorder.flush(timeout=10)
    uuids = [r["card_uuid"] for r in store.issued_card_rows()]
    assert sorted(uuids) == sorted(f"card-{k * 1000 + i}" for k in range(4) for i in range(50))


def test_a_storage_failure_does_not_stop_the_writer(tmp_path):
    broken = Store("sqlite:////nonexistent-dir/cards.db")
    recorder = IssuedCardRecorder(broken)
    recorder.record([card(1)])
    assert recorder.flush(timeout=10)  # logged, not raised; the thread is still alive
    recorder.record([card(2)])
    assert recorder.flush(timeout=10)
