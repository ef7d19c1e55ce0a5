"""Telegram flood limits, shared by replies and bulk sends, with replies first.

Telegram lets a bot send about 30 messages a second overall and 20 a minute into one group, and
answers 429 (retry_after) beyond that. PTB's AIORateLimiter uses leaky buckets and pauses *every*
request after one 429. Here instead:

* sliding windows (at most N sends in any window), which is what a strict server enforces;
* bulk sends (the outbox tags them with ``rate_limit_args={"bulk": True}``) have their own lower
  ceiling (``bulk_per_second``, default 25/s) so interactive replies always find room, and a bulk send
  waits while any interactive send is waiting;
* a 429 on a bulk send is raised to the outbox, which reschedules that one row; a 429 on a reply is
  waited out and retried a few times, pausing nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.core.ptb import retry_after_seconds

log = logging.getLogger(__name__)

# Endpoints that put a message into a chat (and count against the flood limits).
_COUNTED_PREFIXES = ("send", "copy", "forward", "edit", "pin")


BULK_PAUSE_MAX = 5.0  # seconds every bulk send waits after a 429 to one of them


class _Window:
    """Sends in flight plus the completion times of recent ones.

    Counting a send from the moment it is admitted until `period` after its answer arrived bounds
    what the server can see in any window of `period`, whatever the network or event-loop jitter:
    a send the server received in a window either was still in flight, or was answered less than
    `period` before, when the newest send of that window was admitted.
    """

    __slots__ = ("inflight", "period", "times")

    def __init__(self, period: float) -> None:
        self.period = period
        self.times: deque[float] = deque()
        self.inflight = 0

    def prune(self, now: float) -> None:
        edge = now - self.period
        while self.times and self.times[0] <= edge:
            self.times.popleft()

    def wait_for(self, limit: int, now: float) -> float:
        self.prune(now)
        used = len(self.times) + self.inflight
        if used < limit:
            return 0.0
        index = used - limit  # this many completions must age out first
        if index >= len(self.times):
            return 0.05  # waiting for answers in flight (a release wakes us earlier)
        return self.times[index] + self.period - now

    @property
    def idle(self) -> bool:
        return not self.times and not self.inflight


class FloodLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(
        self,
        *,
        overall_per_second: int = 30,
        bulk_per_second: float = 25.0,
        group_per_minute: int = 20,
        reply_retries: int = 3,
        safety: float = 0.0,
    ) -> None:
        self.overall_per_second = overall_per_second
        self.bulk_per_second = bulk_per_second
        self.group_per_minute = group_per_minute
        self.reply_retries = reply_retries
        # Windows slightly longer than Telegram's, to absorb network jitter between us and the server.
        self._overall = _Window(1.0 + safety)
        self._bulk = _Window(1.0 + safety)
        self._groups: dict[int, _Window] = {}
        self._group_period = 60.0 + 60 * safety
        self._interactive_waiting = 0
        self._bulk_paused_until = 0.0  # time.monotonic(); set by a 429 to a bulk send
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    # -- bookkeeping ------------------------------------------------------------------------

    def _group_window(self, chat_id: int) -> _Window:
        window = self._groups.get(chat_id)
        if window is None:
            if len(self._groups) > 4096:
                now = time.monotonic()
                for key in [k for k, w in self._groups.items() if (w.prune(now) or True) and w.idle]:
                    del self._groups[key]
            window = self._groups[chat_id] = _Window(self._group_period)
        return window

    def group_wait(self, chat_id: int) -> float:
        """Seconds until one more message fits into this group (0 for private chats)."""
        if chat_id >= 0:
            return 0.0
        return self._group_window(chat_id).wait_for(self.group_per_minute, time.monotonic())

    def pause_bulk(self, seconds: float) -> None:
        """A 429 came back for a bulk send: hold every bulk send for a moment (replies go on).

        Telegram does not say whether the limit hit was the group's or the bot's: the row itself
        waits the whole retry_after, the other rows at most BULK_PAUSE_MAX seconds of it.
        """
        until = time.monotonic() + min(max(seconds, 0.0), BULK_PAUSE_MAX)
        self._bulk_paused_until = max(self._bulk_paused_until, until)

    def _delay(self, chat_id: int | None, bulk: bool, now: float) -> float:
        delay = self._overall.wait_for(self.overall_per_second, now)
        if bulk and self._bulk_paused_until > now:
            delay = max(delay, self._bulk_paused_until - now)
        if chat_id is not None and chat_id < 0:
            delay = max(delay, self._group_window(chat_id).wait_for(self.group_per_minute, now))
        if bulk:
            delay = max(delay, self._bulk.wait_for(max(1, int(self.bulk_per_second)), now))
        return delay

    def _windows(self, chat_id: int | None, bulk: bool) -> list[_Window]:
        windows = [self._overall]
        if chat_id is not None and chat_id < 0:
            windows.append(self._group_window(chat_id))
        if bulk:
            windows.append(self._bulk)
        return windows

    def _record(self, chat_id: int | None, bulk: bool, now: float) -> None:
        for window in self._windows(chat_id, bulk):
            window.inflight += 1

    def release(self, chat_id: int | None, *, bulk: bool) -> None:
        """The send admitted by `acquire` got its answer (or was never made)."""
        now = time.monotonic()
        for window in self._windows(chat_id, bulk):
            window.inflight = max(0, window.inflight - 1)
            window.times.append(now)
        self._changed.set()

    async def acquire(self, chat_id: int | None, *, bulk: bool) -> None:
        """Wait until a send fits into every window, then admit it; call `release` after the answer."""
        if not bulk:
            self._interactive_waiting += 1
        try:
            while True:
                async with self._lock:
                    now = time.monotonic()
                    delay = self._delay(chat_id, bulk, now)
                    if bulk and self._interactive_waiting and delay == 0:
                        delay = 0.005  # replies first
                    if delay <= 0:
                        self._record(chat_id, bulk, now)
                        return
                    self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=delay)
        finally:
            if not bulk:
                self._interactive_waiting -= 1
                self._changed.set()

    # -- PTB hook ---------------------------------------------------------------------------

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if not endpoint.lower().startswith(_COUNTED_PREFIXES):
            return await callback(*args, **kwargs)
        if rate_limit_args and rate_limit_args.get("reserved"):
            return await callback(*args, **kwargs)  # the caller already waited in `acquire`
        bulk = bool(rate_limit_args and rate_limit_args.get("bulk"))
        chat_id: int | None = None
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(data.get("chat_id"))  # type: ignore[arg-type]
        attempts = 0
        while True:
            await self.acquire(chat_id, bulk=bulk)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if bulk or attempts >= self.reply_retries:
                    raise
                attempts += 1
                delay = retry_after_seconds(exc)
                log.warning("429 on %s to %s; retrying the reply in %.1fs", endpoint, chat_id, delay)
            finally:
                self.release(chat_id, bulk=bulk)
            await asyncio.sleep(float(delay) + 0.05)
