"""The flood limiter on its own: a 429 to a bulk send holds the other bulk sends, never the replies."""

import asyncio
import random
import time

import pytest

from bot.core.ratelimit import BULK_PAUSE_MAX, JITTER_UNKNOWN, FloodLimiter, _Send, _Window


async def _admitted_after(limiter: FloodLimiter, chat_id: int, *, bulk: bool) -> float:
    start = time.monotonic()
    limiter.release(await limiter.acquire(chat_id, bulk=bulk))
    return time.monotonic() - start


async def test_429_on_a_bulk_send_pauses_bulk_but_not_replies():
    limiter = FloodLimiter()
    limiter.pause_bulk(0.4)
    reply_wait, bulk_wait = await asyncio.gather(
        _admitted_after(limiter, 42, bulk=False), _admitted_after(limiter, -1001, bulk=True)
    )
    assert reply_wait < 0.1
    assert 0.35 < bulk_wait < 1.0


async def test_bulk_pause_is_capped():
    limiter = FloodLimiter()
    limiter.pause_bulk(3600)  # a group's long retry_after must not stall the whole broadcast
    assert limiter._delay(-1001, True, time.monotonic()) <= BULK_PAUSE_MAX


def _window_with(admitted: list[float], answered: bool = True) -> _Window:
    window = _Window(1.0)
    for t in admitted:
        send = _Send(t)
        send.answered = answered
        window.add(send)
    return window


def test_a_send_counts_from_its_admission_not_its_answer():
    # 30 sends admitted in the first 0.3 s, each answered 150 ms later (Telegram far away): the 31st
    # may go once the first is period + jitter old, not period after its answer.
    window = _window_with([i * 0.01 for i in range(30)])
    assert window.wait_for(30, 0.5, jitter=0.02) == pytest.approx(1.02 - 0.5)
    assert window.wait_for(30, 1.03, jitter=0.02) == 0.0
    # A send still in flight keeps counting, however old it is.
    stuck = _window_with([0.0] + [4.5 + i * 0.01 for i in range(29)])
    stuck.sends[0].answered = False
    assert stuck.wait_for(30, 5.0, jitter=0.02) > 0
    stuck.sends[0].answered = True
    assert stuck.wait_for(30, 5.0, jitter=0.02) == 0.0


def test_jitter_is_learnt_from_round_trips():
    limiter = FloodLimiter()
    assert limiter.jitter == JITTER_UNKNOWN  # cautious until enough round trips were seen
    limiter._rtts.extend([0.15, 0.151, 0.152] * 5)
    assert limiter.jitter == pytest.approx(0.01)  # a steady network: the floor
    limiter._rtts.extend([0.05, 0.3])
    # Half the spread of round trips: only the way there moves an arrival...
    assert limiter.jitter == pytest.approx(0.125)
    # ... until Telegram answers 429: then the whole spread, for a while.
    limiter.saw_flood_limit()
    assert limiter.jitter == pytest.approx(0.25)
    limiter._cautious_until = 0.0
    assert limiter.jitter == pytest.approx(0.125)


@pytest.mark.parametrize("spread", [0.0, 0.1, 0.25])
def test_arrivals_never_exceed_the_limit_whatever_the_jitter(spread: float):
    """Admit 600 sends as fast as the window allows while each reaches the server after a random
    one-way delay within `spread`: the server never sees more than 30 in any one second."""
    rng = random.Random(7)
    window, now, arrivals = _Window(1.0), 0.0, []
    jitter = max(spread, 0.02)
    for _ in range(600):
        now += window.wait_for(30, now, jitter)
        send = _Send(now)
        window.add(send)
        delay = 0.1 + rng.uniform(0, spread)
        arrivals.append(now + delay)
        send.answered = True  # answered at once after arriving: time only moves forward below
        now += 1e-4
    arrivals.sort()
    j = 0
    for i, t in enumerate(arrivals):
        while arrivals[j] <= t - 1.0:
            j += 1
        assert i - j + 1 <= 30
    assert len(arrivals) / (arrivals[-1] - arrivals[0]) > 25  # and it still sends near the limit
