"""Updates handled concurrently, in arrival order per user and per chat.

PTB runs one update at a time unless `ApplicationBuilder.concurrent_updates` gets an update
processor. With Telegram 50–300 ms away, one at a time caps the bot at a few updates a second: a
handler that awaits one Bot API call holds everyone behind it. `KeyedUpdateProcessor` runs updates of
different users and chats at once (at most `max_running` handlers at a time), while the updates of one
user, and of one chat, run one after another in the order they arrived. That is what a conversation,
a draft, a double tap and a per-chat reply order need: nothing of one person or one group ever
overtakes itself.

How: every update, when PTB hands it over (in arrival order: the fetcher starts one task per update
in order, and PTB's own semaphore is set so high it never makes one wait), chains itself behind the
last update of each of its keys (`("user", id)`, `("chat", id)`), then waits for those predecessors
and for a running slot. Predecessors always arrived earlier, so the chains can't deadlock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# PTB's semaphore bounds how many update tasks exist; ours bounds how many run. Waiting updates are
# cheap (a task each), so PTB's bound only guards memory against a flood.
_QUEUED_MAX = 100_000


def update_keys(update: object) -> tuple[tuple[str, int], ...]:
    """The user and the chat an update belongs to (either may be missing, e.g. a poll)."""
    if not isinstance(update, Update):
        return ()
    keys: list[tuple[str, int]] = []
    if update.effective_user is not None:
        keys.append(("user", update.effective_user.id))
    if update.effective_chat is not None:
        keys.append(("chat", update.effective_chat.id))
    return tuple(keys)


class KeyedUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_running: int) -> None:
        super().__init__(_QUEUED_MAX)
        if max_running < 1:
            raise ValueError("max_running must be positive")
        self.max_running = max_running
        self._running = asyncio.Semaphore(max_running)
        self._tails: dict[tuple[str, int], asyncio.Future[None]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        # No await before the chaining: this runs in arrival order.
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = update_keys(update)
        before = [self._tails[k] for k in keys if k in self._tails]
        for key in keys:
            self._tails[key] = done
        started = False
        try:
            for predecessor in before:
                await asyncio.shield(predecessor)
            async with self._running:
                started = True
                await coroutine
        finally:
            if not started and hasattr(coroutine, "close"):
                coroutine.close()  # cancelled while waiting (shutdown): never started, never will
            done.set_result(None)
            for key in keys:
                if self._tails.get(key) is done:
                    del self._tails[key]

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
