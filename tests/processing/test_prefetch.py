"""The prefetch thread: order kept, bites bounded, errors handed over, early exit clean."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from processing.prefetch import prefetched, read_ahead


def test_items_come_in_order_in_lists_of_at_most_most() -> None:
    """Every item once, in order, in lists no longer than asked."""
    with prefetched(range(1000), depth=8, most=4) as prefetcher:
        got = list(prefetcher.batches())
    assert [item for batch in got for item in batch] == list(range(1000))
    assert all(1 <= len(batch) <= 4 for batch in got)


def test_a_slow_consumer_takes_what_was_produced_meanwhile() -> None:
    """Items produced while the consumer was busy come together, up to `most`."""
    all_queued, release = threading.Event(), threading.Event()

    def items() -> Iterator[int]:
        yield from range(6)
        all_queued.set()  # the producer asks for the next item once it queued the last
        release.wait(5)

    with prefetched(items(), depth=8, most=4) as prefetcher:
        batches = prefetcher.batches()
        assert all_queued.wait(5)
        first, second = next(batches), next(batches)
        release.set()
        assert list(batches) == []
    assert (first, second) == ([0, 1, 2, 3], [4, 5])


def test_an_error_while_producing_comes_out_after_the_items_before_it() -> None:
    """The consumer sees the items produced, then the producer's exception."""

    def items() -> Iterator[int]:
        yield from range(5)
        raise ValueError("bad block")

    seen: list[int] = []

    def consume() -> None:
        with prefetched(items(), depth=2, most=3) as prefetcher:
            for batch in prefetcher.batches():
                seen.extend(batch)

    with pytest.raises(ValueError, match="bad block"):
        consume()
    assert seen == list(range(5))


def test_leaving_early_stops_the_producer() -> None:
    """Breaking out of the loop ends the worker thread instead of leaving it blocked."""
    with prefetched(iter(range(10**9)), depth=2, most=2) as prefetcher:
        next(prefetcher.batches())
    assert not [t for t in threading.enumerate() if t.name == "csv-prefetch"]


def test_a_worker_ahead_of_its_consumer_does_the_spare_work() -> None:
    """Once `most` items wait for the consumer, the worker applies `spare` to the next ones."""
    all_queued, release = threading.Event(), threading.Event()

    def items() -> Iterator[int]:
        yield from range(1, 6)
        all_queued.set()
        release.wait(5)

    with prefetched(items(), depth=8, most=2, spare=lambda item: -item) as prefetcher:
        batches = prefetcher.batches()
        assert all_queued.wait(5)
        got = [next(batches), next(batches), next(batches)]
        release.set()
        assert list(batches) == []
    assert got == [[1, 2], [-3, -4], [-5]]


def test_a_worker_that_is_not_ahead_leaves_the_spare_work_to_the_consumer() -> None:
    """A consumer that takes each item as it comes gets every item untouched."""
    taken = threading.Semaphore(0)

    def items() -> Iterator[int]:
        for item in range(1, 6):
            yield item
            assert taken.acquire(timeout=5)  # the consumer took it

    got: list[int] = []
    with prefetched(items(), depth=8, most=2, spare=lambda item: -item) as prefetcher:
        for batch in prefetcher.batches():
            got += batch
            for _ in batch:
                taken.release()
    assert got == [1, 2, 3, 4, 5]


def test_a_consumer_asking_for_full_batches_waits_for_them() -> None:
    """With full_batches set, each batch is `most` items, though the queue holds one at a
    time; cleared, the consumer takes the next item as soon as it is there."""
    taken = threading.Semaphore(0)

    def items() -> Iterator[int]:
        for item in range(10):
            yield item
            if item == 8:  # 9 comes only once the consumer took 8
                assert taken.acquire(timeout=5)

    got: list[list[int]] = []
    with prefetched(items(), depth=1, most=4) as prefetcher:
        prefetcher.full_batches = True
        for batch in prefetcher.batches():
            got.append(batch)
            prefetcher.full_batches = batch[-1] < 7
            if 8 in batch:
                taken.release()
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8], [9]]


def test_read_ahead_gives_the_same_chunks_and_does_not_wait_for_a_stuck_source() -> None:
    """Every chunk in order; leaving early returns at once, though the source is blocked."""
    assert list(read_ahead(iter([b"a", b"bc", b"d"]), depth=2)) == [b"a", b"bc", b"d"]
    stuck, started = threading.Event(), threading.Event()

    def source() -> Iterator[bytes]:
        yield b"first"
        started.set()
        stuck.wait(30)  # a pipe whose writer went quiet
        yield b"never read"

    chunks = read_ahead(source(), depth=2)
    assert next(chunks) == b"first"
    assert started.wait(5)
    workers = [t for t in threading.enumerate() if t.name == "csv-prefetch"]
    chunks.close()  # type: ignore[attr-defined]  # a generator: returns without waiting on the blocked worker
    assert workers
    assert all(worker.is_alive() for worker in workers)
    stuck.set()
    for worker in workers:
        worker.join(5)
