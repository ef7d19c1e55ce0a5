"""Small facts the bot keeps about itself between runs (key -> text)."""

from __future__ import annotations

import datetime as dt

from storage.db import Executor, to_db


async def get(db: Executor, key: str) -> str | None:
    return await db.fetchval("SELECT value FROM bot_state WHERE key = ?", (key,))


async def put(db: Executor, key: str, value: str, now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO bot_state(key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, to_db(now)),
    )


async def put_if_absent(db: Executor, key: str, value: str, now: dt.datetime) -> str:
    """Store `value` unless the key has one already; returns what is stored (the first writer's)."""
    await db.execute(
        "INSERT INTO bot_state(key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING",
        (key, value, to_db(now)),
    )
    stored = await get(db, key)
    return value if stored is None else stored
