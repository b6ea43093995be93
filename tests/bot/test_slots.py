"""Job slots (bot/slots.py): a paused job taking its slot again goes first, and a cancelled
wait never loses or doubles a slot."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.slots import Slot, Slots


async def test_a_paused_job_takes_the_next_slot_before_jobs_not_started() -> None:
    """One slot, held; a job not started waits first, a paused one after it: the slot, once
    given, goes to the paused one."""
    slots = Slots(1)
    holder = Slot(slots)
    await holder.take()
    order: list[str] = []

    async def wait(name: str, *, resuming: bool) -> None:
        slot = Slot(slots)
        await slot.take(resuming=resuming)
        order.append(name)
        slot.give()

    fresh = asyncio.create_task(wait("fresh", resuming=False))
    await asyncio.sleep(0)  # the fresh job is in line first
    paused = asyncio.create_task(wait("paused", resuming=True))
    await asyncio.sleep(0)
    assert slots.resuming == 1
    assert order == []
    holder.give()
    await asyncio.gather(fresh, paused)
    assert order == ["paused", "fresh"]
    assert slots.held == 0


async def test_a_job_not_started_waits_while_a_paused_one_wants_the_slot() -> None:
    """A free slot is not taken past a paused job in line."""
    slots = Slots(1)
    first = Slot(slots)
    await first.take()
    resumer = asyncio.create_task(Slot(slots).take(resuming=True))
    await asyncio.sleep(0)
    late = Slot(slots)
    starting = asyncio.create_task(late.take())
    await asyncio.sleep(0)
    first.give()
    await resumer
    await asyncio.sleep(0)
    assert not starting.done()
    assert slots.held == 1
    starting.cancel()


async def test_a_cancelled_wait_gives_nothing_back_and_loses_nothing() -> None:
    """Cancelled in line: the slot count is unchanged; cancelled as the slot was handed over:
    the slot passes on."""
    slots = Slots(1)
    holder = Slot(slots)
    await holder.take()
    waiting = Slot(slots)
    task = asyncio.create_task(waiting.take())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slots.held == 1
    assert not waiting.held

    handed = Slot(slots)
    handed_task = asyncio.create_task(handed.take())
    after = Slot(slots)
    after_task = asyncio.create_task(after.take())
    await asyncio.sleep(0)
    holder.give()  # handed over to the first in line...
    handed_task.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await handed_task
    await asyncio.wait_for(after_task, 1)
    assert after.held
    assert slots.held == 1
    after.give()
    assert slots.held == 0


async def test_giving_twice_frees_one_slot() -> None:
    """A job's hold is given back once, however often it says so."""
    slots = Slots(2)
    slot = Slot(slots)
    await slot.take()
    slot.give()
    slot.give()
    assert slots.held == 0


async def test_cancelled_then_passed_over_in_the_same_turn_is_still_a_cancellation() -> None:
    """A wait cancelled just before the slot is given (a shutdown while a job ends): the
    waiter sees CancelledError, the slot goes to the next in line."""
    slots = Slots(1)
    holder = Slot(slots)
    await holder.take()
    first, second = Slot(slots), Slot(slots)
    first_task = asyncio.create_task(first.take())
    second_task = asyncio.create_task(second.take())
    await asyncio.sleep(0)
    first_task.cancel()
    holder.give()  # in the same turn: the cancelled waiter is passed over
    with pytest.raises(asyncio.CancelledError):
        await first_task
    await asyncio.wait_for(second_task, 1)
    assert second.held
    assert not first.held
    assert slots.held == 1
