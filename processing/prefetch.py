"""Run an iterator ahead in a worker thread, so producing and consuming overlap."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_S = 0.1


class _Done:
    pass


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Prefetcher(Generic[T]):
    def __init__(
        self, items: Iterable[T], depth: int, most: int, spare: Callable[[T], T] | None
    ) -> None:
        self._items = items
        self._most = most
        self._spare = spare
        self._queue: queue.Queue[T | _Done | _Failed] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.full_batches = False  # set by the consumer: wait for `most` items, not the next
        self._thread = threading.Thread(target=self._produce, name="csv-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: T | _Done | _Failed) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if self._spare is not None and self._queue.qsize() >= self._most:
                    item = self._spare(item)
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the consumer, who re-raises it
            self._put(_Failed(error))
            return
        self._put(_Done())

    def batches(self) -> Iterator[list[T]]:
        """Up to `most` items at a time: the next one, waited for, and those already there;
        or, while `full_batches` is set, `most` items (fewer only at the end)."""
        ended: _Done | _Failed | None = None
        while ended is None:
            batch: list[T] = []
            item = self._queue.get()
            while True:
                if isinstance(item, _Done | _Failed):
                    ended = item
                    break
                batch.append(item)
                if len(batch) >= self._most:
                    break
                if self.full_batches:
                    item = self._queue.get()
                    continue
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield batch
        if isinstance(ended, _Failed):
            raise ended.error

    def close(self, wait: bool) -> None:
        self._stop.set()
        if wait:
            self._thread.join()


@contextmanager
def prefetched(
    items: Iterable[T],
    *,
    depth: int,
    most: int,
    spare: Callable[[T], T] | None = None,
    wait_on_exit: bool = True,
) -> Iterator[_Prefetcher[T]]:
    """Produce `items` in a worker thread, at most `depth` items ahead of the consumer, who
    gets them from `batches()` in lists of up to `most`: the next item, waited for, and those
    already produced. A consumer slower than its producer takes full bites; one that keeps up
    takes what came while it worked, unless it sets `full_batches`.

    `spare`, when given, is work the worker does on an item instead of the consumer, when
    `most` items or more already wait for the consumer (the worker is ahead, and would
    otherwise wait): the consumer gets spare(item) then, the item as it was otherwise. So
    the two threads share such work by how busy they are.

    Exceptions raised while producing come out of the consumer's loop. Leaving the block
    early stops the worker after its current item, and waits for that unless `wait_on_exit`
    is false (the worker is a daemon thread: a read blocked on a stalled pipe cannot hold up
    the consumer's exit).
    """
    prefetcher = _Prefetcher(items, depth, most, spare)
    try:
        yield prefetcher
    finally:
        prefetcher.close(wait_on_exit)


def read_ahead(chunks: Iterable[bytes], *, depth: int) -> Iterator[bytes]:
    """The same chunks, read up to `depth` ahead in a thread of their own.

    For a pipe, whose writer is another process: the parser no longer waits for the writer,
    nor the writer for room in the pipe, while both compete for the same cores.
    """
    with prefetched(chunks, depth=depth, most=depth, wait_on_exit=False) as prefetcher:
        for batch in prefetcher.batches():
            yield from batch
