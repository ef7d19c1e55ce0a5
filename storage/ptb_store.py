"""Rows behind python-telegram-bot's persistence: conversation states, user_data, chat_data (JSON)."""

from __future__ import annotations

import json
from typing import Any

from storage.db import Executor


async def load_conversations(db: Executor, name: str) -> dict[tuple[int | str, ...], object]:
    rows = await db.fetchall("SELECT key, state FROM ptb_conversations WHERE name = ?", (name,))
    return {tuple(json.loads(r["key"])): json.loads(r["state"]) for r in rows}


async def save_conversation(
    db: Executor, name: str, key: tuple[int | str, ...], state: object | None
) -> None:
    encoded_key = json.dumps(list(key))
    if state is None:
        await db.execute("DELETE FROM ptb_conversations WHERE name = ? AND key = ?", (name, encoded_key))
    else:
        await db.execute(
            "INSERT INTO ptb_conversations(name, key, state) VALUES (?, ?, ?)"
            " ON CONFLICT(name, key) DO UPDATE SET state = excluded.state",
            (name, encoded_key, json.dumps(state)),
        )


async def load_data(db: Executor, table: str) -> dict[int, dict[Any, Any]]:
    column = _column(table)
    rows = await db.fetchall(f"SELECT {column}, data FROM {table}")
    return {r[0]: json.loads(r[1]) for r in rows}


async def save_data(db: Executor, table: str, key: int, data: dict[Any, Any]) -> None:
    column = _column(table)
    if not data:
        await db.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
        return
    await db.execute(
        f"INSERT INTO {table}({column}, data) VALUES (?, ?) ON CONFLICT({column}) DO UPDATE SET data = excluded.data",
        (key, json.dumps(data, ensure_ascii=False)),
    )


async def drop_data(db: Executor, table: str, key: int) -> None:
    await db.execute(f"DELETE FROM {table} WHERE {_column(table)} = ?", (key,))


def _column(table: str) -> str:
    columns = {"ptb_user_data": "user_id", "ptb_chat_data": "chat_id"}
    if table not in columns:
        raise ValueError(table)
    return columns[table]
