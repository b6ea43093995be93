"""JOB_CONCURRENCY slots: how many files are analysed at once.

A slot bounds the work of analysing, not the waiting for bytes: a job that reads a web
upload as it arrives gives its slot back whenever the upload's next bytes are not there yet
(a slow or stalled client), and takes one again when they are. Taking one again, it goes
before every job that has not started yet. That keeps the number of started analyses (each
with its engine thread and a few MiB of state) within JOB_CONCURRENCY plus the uploads in
flight: a job that has not started gets a slot only when no paused job wants one, and then
each paused job is one whose upload is still arriving.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    def __init__(self, count: int) -> None:
        self.count = count
        self.held = 0
        self._resuming: deque[asyncio.Future[None]] = deque()
        self._starting: deque[asyncio.Future[None]] = deque()

    @property
    def resuming(self) -> int:
        """Paused jobs waiting to take a slot again (they go first)."""
        return sum(not waiter.done() for waiter in self._resuming)

    async def take(self, *, resuming: bool = False) -> None:
        if self.held < self.count and not self._resuming and (resuming or not self._starting):
            self.held += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._resuming if resuming else self._starting
        line.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed over just as it was cancelled: pass it on
            elif waiter in line:  # give() may have dropped it already, as cancelled
                line.remove(waiter)
            raise

    def give(self) -> None:
        """Hand the slot to the next in line, paused jobs first, or free it."""
        for line in (self._resuming, self._starting):
            while line:
                waiter = line.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # `held` stays: the slot changes hands
                    return
        self.held -= 1


class Slot:
    """One job's hold on a slot: given back and taken again while it waits for bytes."""

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self.held = False

    async def take(self, *, resuming: bool = False) -> None:
        await self._slots.take(resuming=resuming)
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self._slots.give()
