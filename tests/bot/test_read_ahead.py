"""The engine's view of an async source: read ahead on the loop, errors and closing kept, and
an upload's job slot held only while the engine has work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.errors import SourceError
from bot.jobs.read_ahead import READ_AHEAD_CHUNKS, Paced, ReadAhead
from bot.jobs.slots import Slot, Slots
from bot.sources import SourceInfo, UploadSource
from processing import AnalysisCancelledError


class Counted:
    """How many chunks have been taken from a source, to be waited on."""

    def __init__(self) -> None:
        self.read = 0
        self._changed = asyncio.Condition()

    async def note(self) -> None:
        self.read += 1
        async with self._changed:
            self._changed.notify_all()

    async def reaches(self, count: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self.read >= count)

    async def passing(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            await self.note()
            yield chunk


class Source(Counted):
    """Numbered chunks; records how many were read and whether it was closed."""

    def __init__(self, chunks: int, fail_after: int | None = None) -> None:
        super().__init__()
        self.total = chunks
        self.fail_after = fail_after
        self.closed = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            for number in range(self.total):
                if number == self.fail_after:
                    raise SourceError("the download stopped")
                await self.note()
                yield b"%d\n" % number
        finally:
            self.closed.set()


class WatchedSlot(Slot):
    """A job's slot whose giving back can be waited on."""

    def __init__(self, slots: Slots) -> None:
        super().__init__(slots)
        self.given = asyncio.Event()

    def give(self) -> None:
        super().give()
        self.given.set()

    async def given_back(self, timeout_s: float = 5.0) -> None:
        """Until the slot is given back (it may have been given already)."""
        async with asyncio.timeout(timeout_s):
            while self.held:
                self.given.clear()
                await self.given.wait()


def started(chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    reader = ReadAhead(chunks, loop, threading.Event())
    reader.start()
    return reader.chunks()


async def test_the_source_is_read_ahead_while_the_engine_works() -> None:
    """With the engine busy on its first chunk, the loop goes on reading up to the limit."""
    source = Source(100)
    chunks = started(source.chunks(), asyncio.get_running_loop())
    first = await asyncio.to_thread(next, chunks)
    await source.reaches(1 + READ_AHEAD_CHUNKS + 1)
    for _ in range(100):  # the reading task runs on this loop: let it overrun, if it could
        await asyncio.sleep(0)
    assert first == b"0\n"
    assert source.read == 1 + READ_AHEAD_CHUNKS + 1  # taken, queued, and one waiting to go in
    rest = await asyncio.to_thread(list, chunks)
    assert [first, *rest] == [b"%d\n" % number for number in range(100)]
    await asyncio.wait_for(source.closed.wait(), 5)


async def test_chunks_read_ahead_reach_the_engine_while_the_loop_is_busy() -> None:
    """What was read ahead is the engine's without a trip through the event loop: here the
    loop is held until the engine has taken every queued chunk (on a 2-core machine busy
    parsing, the loop is often late, and each trip kept the parser waiting)."""
    loop = asyncio.get_running_loop()
    source = Source(100)
    chunks = started(source.chunks(), loop)
    first = await asyncio.to_thread(next, chunks)
    await source.reaches(1 + READ_AHEAD_CHUNKS + 1)
    taken = threading.Event()

    def engine() -> list[bytes]:
        queued = [next(chunks) for _ in range(READ_AHEAD_CHUNKS)]
        taken.set()
        return queued

    queued = loop.run_in_executor(None, engine)
    assert taken.wait(timeout=10)  # holds the loop: nothing on it runs meanwhile
    rest = await asyncio.to_thread(list, chunks)
    assert [first, *await queued, *rest] == [b"%d\n" % number for number in range(100)]


async def test_a_source_error_reaches_the_engine_as_itself() -> None:
    """The chunks before the failure, then the source's own error (its words reach the user)."""
    source = Source(10, fail_after=3)
    chunks = started(source.chunks(), asyncio.get_running_loop())
    seen: list[bytes] = []

    def consume() -> None:
        for chunk in chunks:
            seen.append(chunk)

    with pytest.raises(SourceError, match="the download stopped"):
        await asyncio.to_thread(consume)
    assert seen == [b"0\n", b"1\n", b"2\n"]


async def test_an_engine_that_stops_early_closes_the_source() -> None:
    """Leaving after one chunk stops the reading task and closes the download."""
    source = Source(10_000)
    chunks = started(source.chunks(), asyncio.get_running_loop())
    await asyncio.to_thread(next, chunks)
    await asyncio.to_thread(chunks.close)  # type: ignore[attr-defined]  # a generator
    await asyncio.wait_for(source.closed.wait(), 5)
    assert source.read < 10_000


async def paced_reader() -> tuple[Slots, WatchedSlot, UploadSource, ReadAhead, Counted]:
    """One slot, held by a job reading an upload as it arrives; and how many of the
    upload's chunks have been read ahead."""
    slots = Slots(1)
    slot = WatchedSlot(slots)
    await slot.take()
    upload = UploadSource(SourceInfo(kind="upload", name="a.csv", label="a.csv"))
    read_ahead = Counted()
    reader = ReadAhead(
        read_ahead.passing(upload.chunks()),
        asyncio.get_running_loop(),
        threading.Event(),
        paced=Paced(upload, slot),
    )
    reader.start()
    return slots, slot, upload, reader, read_ahead


async def test_an_uploads_slot_is_given_back_only_once_the_engine_has_nothing_to_do() -> None:
    """Bytes late while the engine still works on chunks read ahead: the slot stays; once it
    has taken them all and waits, the slot goes, and comes back before the next bytes reach
    it."""
    slots, slot, upload, reader, read_ahead = await paced_reader()
    chunks = reader.chunks()
    for number in range(3):
        await upload.put(b"%d\n" % number)
    await read_ahead.reaches(3)  # all three read ahead, none taken yet
    for _ in range(50):
        await asyncio.sleep(0)
    assert slot.held, "the engine has three chunks to work on"
    taken = [await asyncio.to_thread(next, chunks) for _ in range(3)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert slot.held, "the engine still works on the third chunk"
    waiting = asyncio.create_task(asyncio.to_thread(next, chunks))  # asks for a fourth
    await slot.given_back()  # the engine waits, the upload too
    other = Slot(slots)
    await asyncio.wait_for(other.take(), 5)  # the slot is free for another job
    await upload.put(b"3\n")
    for _ in range(50):
        await asyncio.sleep(0)
    assert not waiting.done(), "the bytes wait for the slot, held by the other job"
    other.give()
    assert await asyncio.wait_for(waiting, 5) == b"3\n"
    assert slot.held
    assert taken == [b"0\n", b"1\n", b"2\n"]
    await upload.finish()
    assert await asyncio.to_thread(list, chunks) == []
    await reader.close()


async def test_closing_the_reader_leaves_no_slot_taken() -> None:
    """An engine that stopped early (a bad header) while its upload's bytes kept coming: once
    the reader is closed, nothing of it takes a slot again."""
    slots, slot, upload, reader, _ = await paced_reader()
    chunks = reader.chunks()
    await upload.put(b"first\n")
    await asyncio.to_thread(next, chunks)
    engine = asyncio.create_task(asyncio.to_thread(next, chunks))  # waits for more
    await slot.given_back()
    holder = Slot(slots)
    await holder.take()
    await upload.put(b"more\n")  # the pump now waits to take the slot again
    for _ in range(50):
        await asyncio.sleep(0)
    await reader.close()
    holder.give()
    assert slots.held == 0
    with pytest.raises(AnalysisCancelledError):
        await engine  # the engine's thread is told to stop too
