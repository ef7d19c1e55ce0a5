"""Broadcast notices. Deliveries are outbox rows (batch 'bc:<id>'), written with the notice."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from storage.db import Executor, Row, from_db, from_db_required, to_db


@dataclass(frozen=True)
class Broadcast:
    id: int
    author_id: int
    text: str
    photo_file_id: str | None
    audience: str
    areas: list[str]
    urgent: bool
    pin: bool
    state: str
    requested_at: dt.datetime | None
    send_at: dt.datetime
    total: int
    progress_chat_id: int | None
    progress_message_id: int | None
    lang: str
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def batch(self) -> str:
        return batch_name(self.id)


def batch_name(broadcast_id: int) -> str:
    return f"bc:{broadcast_id}"


def _record(row: Row) -> Broadcast:
    return Broadcast(
        id=row["id"],
        author_id=row["author_id"],
        text=row["text"],
        photo_file_id=row["photo_file_id"],
        audience=row["audience"],
        areas=json.loads(row["areas"]),
        urgent=bool(row["urgent"]),
        pin=bool(row["pin"]),
        state=row["state"],
        requested_at=from_db(row["requested_at"]),
        send_at=from_db_required(row["send_at"]),
        total=row["total"],
        progress_chat_id=row["progress_chat_id"],
        progress_message_id=row["progress_message_id"],
        lang=row["lang"],
        created_at=from_db_required(row["created_at"]),
        finished_at=from_db(row["finished_at"]),
    )


async def create(
    db: Executor,
    *,
    author_id: int,
    text: str,
    photo_file_id: str | None,
    audience: str,
    areas: list[str],
    urgent: bool,
    pin: bool,
    requested_at: dt.datetime | None,
    send_at: dt.datetime,
    total: int,
    progress_chat_id: int | None,
    progress_message_id: int | None,
    lang: str,
    now: dt.datetime,
) -> int:
    return await db.fetchval(
        "INSERT INTO broadcasts(author_id, text, photo_file_id, audience, areas, urgent, pin, requested_at, send_at,"
        " total, progress_chat_id, progress_message_id, lang, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " RETURNING id",
        (
            author_id,
            text,
            photo_file_id,
            audience,
            json.dumps(areas, ensure_ascii=False),
            int(urgent),
            int(pin),
            to_db(requested_at),
            to_db(send_at),
            total,
            progress_chat_id,
            progress_message_id,
            lang,
            to_db(now),
        ),
    )


async def get(db: Executor, broadcast_id: int) -> Broadcast | None:
    row = await db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
    return _record(row) if row else None


async def recent(db: Executor, limit: int = 10, author_id: int | None = None) -> list[Broadcast]:
    if author_id is None:
        rows = await db.fetchall("SELECT * FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = await db.fetchall(
            "SELECT * FROM broadcasts WHERE author_id = ? ORDER BY id DESC LIMIT ?", (author_id, limit)
        )
    return [_record(r) for r in rows]


async def unfinished(db: Executor) -> list[Broadcast]:
    rows = await db.fetchall("SELECT * FROM broadcasts WHERE state IN ('queued', 'sending') ORDER BY id")
    return [_record(r) for r in rows]


async def set_state(
    db: Executor, broadcast_id: int, old: tuple[str, ...], new: str, now: dt.datetime
) -> bool:
    """Compare-and-set; True when this call made the change."""
    marks = ",".join("?" * len(old))
    finished = to_db(now) if new in ("done", "cancelled") else None
    changed = await db.execute(
        f"UPDATE broadcasts SET state = ?, finished_at = COALESCE(?, finished_at) WHERE id = ? AND state IN ({marks})",
        (new, finished, broadcast_id, *old),
    )
    return changed == 1


async def set_progress_message(db: Executor, broadcast_id: int, chat_id: int, message_id: int) -> None:
    await db.execute(
        "UPDATE broadcasts SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
        (chat_id, message_id, broadcast_id),
    )
