"""The flood limiter on its own: a 429 to a bulk send holds the other bulk sends, never the replies."""

import asyncio
import time

from bot.core.ratelimit import BULK_PAUSE_MAX, FloodLimiter


async def _admitted_after(limiter: FloodLimiter, chat_id: int, *, bulk: bool) -> float:
    start = time.monotonic()
    await limiter.acquire(chat_id, bulk=bulk)
    limiter.release(chat_id, bulk=bulk)
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
