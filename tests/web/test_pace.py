"""An upload's pace (bot/web/pace.py): which rule a slow client breaks, and that only the time
spent waiting for the client counts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.errors import TooSlowError
from bot.web.pace import Pace, PaceRules


def trickle(piece: bytes, every_s: float) -> Callable[[], Awaitable[bytes]]:
    """A client that sends `piece` every `every_s` seconds, for ever."""

    async def read() -> bytes:
        await asyncio.sleep(every_s)
        return piece

    return read


async def read_until_refused(pace: Pace, read: Callable[[], Awaitable[bytes]]) -> TooSlowError:
    with pytest.raises(TooSlowError) as refused:
        await read_many(pace, read)
    return refused.value


async def read_many(pace: Pace, read: Callable[[], Awaitable[bytes]]) -> None:
    """10,000 reads through the pace: far more than any rule here lets through."""
    for _ in range(10_000):
        await pace.read(read)


async def test_a_client_that_goes_quiet_breaks_the_idle_rule() -> None:
    """Nothing at all for the idle time: the idle rule, in the words the job fails with."""
    pace = Pace(PaceRules(idle_s=0.2, max_s=60, min_bytes_per_s=0, window_s=60))
    never = asyncio.Event()

    async def silent() -> bytes:
        await never.wait()
        return b""

    refused = await read_until_refused(pace, silent)
    assert refused.rule == "idle"
    assert refused.reason == (
        "the upload stalled: nothing arrived for 0.2 seconds, so the connection was closed; "
        "please upload the file again"
    )


async def test_a_trickle_under_the_minimum_rate_breaks_the_rate_rule_after_one_window() -> None:
    """Ten bytes every 50 ms (200 B/s) against a minimum of 1,000 B/s over 0.5 s: refused
    once a whole window has gone by, never by the idle rule, with the bytes it sent."""
    pace = Pace(PaceRules(idle_s=5, max_s=60, min_bytes_per_s=1000, window_s=0.5))
    refused = await read_until_refused(pace, trickle(b"x" * 10, 0.05))
    assert refused.rule == "rate"
    assert pace.received_bytes >= 50  # at least a window's worth of pieces went by first
    assert refused.reason.startswith("the upload was too slow: ")
    assert "bytes arrived in the last 0.5 seconds, less than the 1,000 bytes a second" in (
        refused.reason
    )


async def test_a_steady_client_over_the_minimum_is_never_refused_for_its_rate() -> None:
    """100 KB/s against 1,000 B/s: the rate rule stays quiet; the overall rule ends it."""
    pace = Pace(PaceRules(idle_s=5, max_s=0.6, min_bytes_per_s=1000, window_s=0.2))
    refused = await read_until_refused(pace, trickle(b"x" * 1000, 0.01))
    assert refused.rule == "overall"
    assert refused.reason.startswith("the upload took too long: it was still arriving after")


async def test_time_the_service_does_not_read_never_counts() -> None:
    """Between reads the service is busy (a slot, S3) for longer than every rule allows:
    the client, answering each read at once, breaks none."""
    pace = Pace(PaceRules(idle_s=0.1, max_s=0.1, min_bytes_per_s=10_000, window_s=0.1))

    async def at_once() -> bytes:
        return b"x"

    for _ in range(5):
        assert await pace.read(at_once) == b"x"
        await asyncio.sleep(0.15)  # the service, not the client, takes its time here
    assert pace.received_bytes == 5


async def test_the_end_of_the_body_is_not_refused() -> None:
    """b"" (the body's end) is answered as it is."""
    pace = Pace(PaceRules(idle_s=1, max_s=1, min_bytes_per_s=1, window_s=1))

    async def ended() -> bytes:
        return b""

    assert await pace.read(ended) == b""


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (3600, "1 hour"),
        (7200, "2 hours"),
        (600, "10 minutes"),
        (60, "60 seconds"),
        (90, "90 seconds"),
    ],
)
def test_durations_in_the_words_of_a_refusal(seconds: float, words: str) -> None:
    """The overall rule's sentence names the limit as people say it."""
    assert f"after {words}," in PaceRules(max_s=seconds).took_too_long()


def test_a_rate_in_kilobytes_when_it_is_whole() -> None:
    """10240 B/s reads as 10 KB a second."""
    assert "the 10 KB a second an upload" in PaceRules(min_bytes_per_s=10240).too_slow(5)
