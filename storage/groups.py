"""Groups the bot is (or was) in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.db import Executor, Row, from_db_required, to_db


@dataclass(frozen=True)
class GroupRecord:
    chat_id: int
    title: str
    type: str
    area: str | None
    active: bool
    bot_status: str
    can_pin: bool
    migrated_to: int | None
    added_at: dt.datetime
    updated_at: dt.datetime


def _record(row: Row) -> GroupRecord:
    return GroupRecord(
        chat_id=row["chat_id"],
        title=row["title"],
        type=row["type"],
        area=row["area"],
        active=bool(row["active"]),
        bot_status=row["bot_status"],
        can_pin=bool(row["can_pin"]),
        migrated_to=row["migrated_to"],
        added_at=from_db_required(row["added_at"]),
        updated_at=from_db_required(row["updated_at"]),
    )


async def upsert(
    db: Executor,
    *,
    chat_id: int,
    title: str,
    type: str,
    active: bool,
    bot_status: str,
    can_pin: bool,
    now: dt.datetime,
) -> None:
    await db.execute(
        """
        INSERT INTO groups(chat_id, title, type, active, bot_status, can_pin, added_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(chat_id) DO UPDATE SET
            title = excluded.title, type = excluded.type, active = excluded.active,
            bot_status = excluded.bot_status, can_pin = excluded.can_pin, updated_at = excluded.updated_at
        """,
        (chat_id, title, type, int(active), bot_status, int(can_pin), to_db(now), to_db(now)),
    )


async def touch(db: Executor, *, chat_id: int, title: str, type: str, now: dt.datetime) -> None:
    """Seen a message in a group: make sure it is recorded (the bot may predate this database)."""
    await db.execute(
        """
        INSERT INTO groups(chat_id, title, type, added_at, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(chat_id) DO UPDATE SET title = excluded.title, type = excluded.type
        WHERE groups.title <> excluded.title OR groups.type <> excluded.type
        """,
        (chat_id, title, type, to_db(now), to_db(now)),
    )


async def get(db: Executor, chat_id: int) -> GroupRecord | None:
    row = await db.fetchone("SELECT * FROM groups WHERE chat_id = ?", (chat_id,))
    return _record(row) if row else None


async def migrate(db: Executor, *, old_id: int, new_id: int, now: dt.datetime) -> None:
    """A group became a supergroup: its record (area, settings) moves to the new id."""
    old = await get(db, old_id)
    if old is None:
        return
    await db.execute(
        """
        INSERT INTO groups(chat_id, title, type, area, active, bot_status, can_pin, added_at, updated_at)
        SELECT ?, title, 'supergroup', area, active, bot_status, can_pin, added_at, ? FROM groups WHERE chat_id = ?
        ON CONFLICT(chat_id) DO UPDATE SET area = COALESCE(groups.area, excluded.area),
            active = excluded.active, updated_at = excluded.updated_at
        """,
        (new_id, to_db(now), old_id),
    )
    await db.execute(
        "UPDATE groups SET active = 0, migrated_to = ?, updated_at = ? WHERE chat_id = ?",
        (new_id, to_db(now), old_id),
    )


async def set_area(db: Executor, chat_id: int, area: str | None, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE groups SET area = ?, updated_at = ? WHERE chat_id = ?", (area, to_db(now), chat_id)
    )


async def set_active(db: Executor, chat_id: int, active: bool, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE groups SET active = ?, updated_at = ? WHERE chat_id = ?", (int(active), to_db(now), chat_id)
    )


async def list_active(db: Executor, areas: list[str] | None = None) -> list[GroupRecord]:
    if areas is None:
        rows = await db.fetchall("SELECT * FROM groups WHERE active = 1 ORDER BY chat_id")
    else:
        if not areas:
            return []
        marks = ",".join("?" * len(areas))
        rows = await db.fetchall(
            f"SELECT * FROM groups WHERE active = 1 AND area IN ({marks}) ORDER BY chat_id", areas
        )
    return [_record(r) for r in rows]


async def areas(db: Executor) -> list[tuple[str, int]]:
    """Known area tags with their count of active groups."""
    rows = await db.fetchall(
        "SELECT area, COUNT(*) FROM groups WHERE active = 1 AND area IS NOT NULL GROUP BY area ORDER BY area"
    )
    return [(r[0], r[1]) for r in rows]


async def get_many(db: Executor, chat_ids: list[int]) -> dict[int, GroupRecord]:
    """Several groups in one query, by chat id (missing ones left out)."""
    found: dict[int, GroupRecord] = {}
    for start in range(0, len(chat_ids), 500):
        chunk = chat_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in await db.fetchall(f"SELECT * FROM groups WHERE chat_id IN ({marks})", chunk):
            found[row["chat_id"]] = _record(row)
    return found
