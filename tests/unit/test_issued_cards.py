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


class CountingStore:
    """A Store stand-in that counts the batches it is given."""

    def __init__(self) -> None:
        self.batches: list[list[IssuedCard]] = []

    def record_cards(self, cards: list[IssuedCard]) -> None:
        self.batches.append(list(cards))


def test_cards_recorded_close_together_are_written_as_one_batch():
    store = CountingStore()
    recorder = IssuedCardRecorder(store, gather_seconds=60)  # type: ignore[arg-type]
    for i in range(20):
        recorder.record([card(i)])
    # A flush does not wait out the gathering: it returns long before 60 s.
    assert recorder.flush(timeout=10)
    assert [len(b) for b in store.batches] == [20]


def test_a_full_batch_is_written_without_waiting_for_a_flush():
    store = CountingStore()
    recorder = IssuedCardRecorder(store, max_batch=5, gather_seconds=60)  # type: ignore[arg-type]
    written = threading.Event()
    store.record_cards = lambda cards: (store.batches.append(list(cards)), written.set())
    recorder.record([card(i) for i in range(5)])
    assert written.wait(timeout=10)
    assert [len(b) for b in store.batches] == [5]


def test_an_in_memory_database_is_one_database_for_the_writer_thread():
    # `baclofen-cds evaluate` runs on "sqlite://": the writer thread must see its tables.
    store = Store("sqlite://")
    store.create_schema()
    recorder = IssuedCardRecorder(store)
    recorder.record([card(1)])
    assert recorder.flush(timeout=10)
    assert [r["card_uuid"] for r in store.issued_card_rows()] == ["card-1"]
