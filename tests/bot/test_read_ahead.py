"""The engine's view of an async source: read ahead on the loop, errors and closing kept."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from bot.errors import SourceError
from bot.jobs import READ_AHEAD_CHUNKS, _blocking


class Source:
    """Numbered chunks; records how many were read and whether it was closed."""

    def __init__(self, chunks: int, fail_after: int | None = None) -> None:
        self.total = chunks
        self.fail_after = fail_after
        self.read = 0
        self.closed = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            for number in range(self.total):
                if number == self.fail_after:
                    raise SourceError("the download stopped")
                self.read += 1
                yield b"%d\n" % number
        finally:
            self.closed.set()


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


async def test_the_source_is_read_ahead_while_the_engine_works() -> None:
    """With the engine busy on its first chunk, the loop goes on reading up to the limit."""
    source = Source(100)
    chunks = _blocking(source.chunks(), asyncio.get_running_loop(), threading.Event())
    first = await asyncio.to_thread(next, chunks)
    await until(lambda: source.read == 1 + READ_AHEAD_CHUNKS + 1)
    for _ in range(100):  # the reading task runs on this loop: let it overrun, if it could
        await asyncio.sleep(0)
    assert first == b"0\n"
    assert source.read == 1 + READ_AHEAD_CHUNKS + 1  # taken, queued, and one waiting to go in
    rest = await asyncio.to_thread(list, chunks)
    assert [first, *rest] == [b"%d\n" % number for number in range(100)]
    await until(source.closed.is_set)


async def test_chunks_read_ahead_reach_the_engine_while_the_loop_is_busy() -> None:
    """What was read ahead is the engine's without a trip through the event loop: here the
    loop is held until the engine has taken every queued chunk (on a 2-core machine busy
    parsing, the loop is often late, and each trip kept the parser waiting)."""
    loop = asyncio.get_running_loop()
    source = Source(100)
    chunks = _blocking(source.chunks(), loop, threading.Event())
    first = await asyncio.to_thread(next, chunks)
    await until(lambda: source.read == 1 + READ_AHEAD_CHUNKS + 1)
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
    chunks = _blocking(source.chunks(), asyncio.get_running_loop(), threading.Event())
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
    chunks = _blocking(source.chunks(), asyncio.get_running_loop(), threading.Event())
    await asyncio.to_thread(next, chunks)
    await asyncio.to_thread(chunks.close)
    await until(source.closed.is_set)
    assert source.read < 10_000
