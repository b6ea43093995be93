"""A job's async source as a plain iterator for the engine's thread, read ahead on the loop.

The goal: the network keeps going while the engine parses (asked for one chunk at a time, a
600 MB upload waited on the network between blocks), reads stay async, parsing stays off the
loop. The plan: a task on the event loop (`pump`) reads up to READ_AHEAD_CHUNKS ahead into a
thread-safe queue; the engine's thread takes from it, so a chunk already there costs it no
trip through the loop (one per chunk kept the parser of a large upload waiting, the loop
being busy receiving and the cores busy parsing; bench/README.md has the figure).

For an upload read as it arrives (`Paced`), the job's slot is held only while the engine can
work: when the engine has taken every chunk read so far and waits, and the upload's next
bytes have not come, the slot is given back; it is taken again (before any job that has not
started) once they come, before the engine gets them. So a slow client holds no slot, and
the analysing that slots bound never runs without one, but for what the engine's second
thread still does with the block it was handed (a few ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from bot.jobs.slots import Slot
from bot.sources import UploadSource
from processing import AnalysisCancelledError

READ_AHEAD_CHUNKS = 4  # of about 1 MiB each
CHUNK_WAIT_S = 0.25  # how often a thread blocked on the network re-checks for a stop request


@dataclass(frozen=True, slots=True)
class Paced:
    """An upload read as it arrives, the job's slot, and who to tell when it moves."""

    source: UploadSource
    slot: Slot
    on_pause: Callable[[], None] = lambda: None


@dataclass(frozen=True, slots=True)
class _SourceEnd:
    error: BaseException | None = None  # what reading the source raised, if anything


class ReadAhead:
    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        loop: asyncio.AbstractEventLoop,
        stop: threading.Event,
        *,
        paced: Paced | None = None,
    ) -> None:
        self._chunks = chunks
        self._loop = loop
        self._stop = stop
        self._paced = paced
        self._ahead: queue.SimpleQueue[bytes | _SourceEnd] = queue.SimpleQueue()
        self._room = asyncio.Semaphore(READ_AHEAD_CHUNKS)
        # How many chunks the pump has queued, and after how many the engine last found the
        # queue empty: equal means the engine waits with nothing to do (it is starved).
        self._queued = 0
        self._starved_after = -1
        self._changed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        """On the loop: begin reading ahead."""
        self._pump = asyncio.create_task(self._read_ahead())

    async def close(self) -> None:
        """Stop reading (which closes the HTTP response or S3 body) and wait until it has:
        nothing of the job's reading outlives it, its slot least of all."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # -- the engine's thread ------------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        taken = 0
        try:
            while True:
                try:
                    item = self._ahead.get_nowait()
                except queue.Empty:
                    if self._paced is not None:  # only a paced reading asks (a loop wake-up)
                        self._call(self._starved, taken)
                    item = self._wait()
                taken += 1
                if isinstance(item, _SourceEnd):
                    if item.error is not None:
                        raise item.error
                    return
                self._call(self._room.release)
                yield item
        finally:
            # Not awaited: this generator may be finalised on any thread; close() waits.
            pump = self._pump
            if pump is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(pump.cancel)

    def _wait(self) -> bytes | _SourceEnd:
        while True:
            try:
                return self._ahead.get(timeout=CHUNK_WAIT_S)
            except queue.Empty:
                pump = self._pump
                if self._stop.is_set() or (pump is not None and pump.cancelled()):
                    raise AnalysisCancelledError() from None

    def _call(self, callback: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the service is gone
            raise AnalysisCancelledError() from None

    # -- the loop -----------------------------------------------------------------------

    def _starved(self, taken: int) -> None:
        self._starved_after = taken
        self._changed.set()

    async def _read_ahead(self) -> None:
        """Each chunk takes a place in `room` before it is queued; the engine's thread gives
        the place back as it takes the chunk."""
        try:
            while True:
                if self._paced is not None:
                    await self._until_bytes(self._paced)
                try:
                    chunk = await anext(self._chunks)
                except StopAsyncIteration:
                    break
                await self._room.acquire()
                self._ahead.put(chunk)
                self._queued += 1
            self._ahead.put(_SourceEnd())
        except asyncio.CancelledError:
            raise
        except Exception as error:  # raised in the engine's thread, where the job handles it
            self._ahead.put(_SourceEnd(error))
        finally:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _until_bytes(self, paced: Paced) -> None:
        """Until the upload's next chunk is there; without the slot while the engine, too,
        has nothing to do."""
        source, slot = paced.source, paced.slot
        while not source.arrived():
            if self._starved_after == self._queued:
                slot.give()
                paced.on_pause()
                await source.arrival()
                await slot.take(resuming=True)
                paced.on_pause()
                return
            self._changed.clear()
            arrival = asyncio.ensure_future(source.arrival())
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({arrival, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                arrival.cancel()
                changed.cancel()
