"""Users who talked to the bot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.db import Executor, Row, from_db_required, to_db


@dataclass(frozen=True)
class UserRecord:
    id: int
    first_name: str
    last_name: str
    username: str | None
    language_code: str | None
    lang: str | None
    private_chat: bool
    blocked: bool
    subscribed: bool
    area: str | None
    first_seen: dt.datetime
    last_seen: dt.datetime

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or (f"@{self.username}" if self.username else str(self.id))


def _record(row: Row) -> UserRecord:
    return UserRecord(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        username=row["username"],
        language_code=row["language_code"],
        lang=row["lang"],
        private_chat=bool(row["private_chat"]),
        blocked=bool(row["blocked"]),
        subscribed=bool(row["subscribed"]),
        area=row["area"],
        first_seen=from_db_required(row["first_seen"]),
        last_seen=from_db_required(row["last_seen"]),
    )


async def touch(
    db: Executor,
    *,
    user_id: int,
    first_name: str,
    last_name: str | None,
    username: str | None,
    language_code: str | None,
    now: dt.datetime,
    private_chat: bool,
) -> None:
    """Record that the user was seen (insert or refresh). A private message also unblocks."""
    await db.execute(
        """
        INSERT INTO users(id, first_name, last_name, username, language_code, private_chat, first_seen, last_seen)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET
            first_name = excluded.first_name,
            last_name = excluded.last_name,
            username = excluded.username,
            language_code = COALESCE(excluded.language_code, users.language_code),
            private_chat = MAX(users.private_chat, excluded.private_chat),
            blocked = CASE WHEN excluded.private_chat = 1 THEN 0 ELSE users.blocked END,
            last_seen = excluded.last_seen
        """,
        (
            user_id,
            first_name or "",
            last_name or "",
            username,
            language_code,
            int(private_chat),
            to_db(now),
            to_db(now),
        ),
    )


async def get(db: Executor, user_id: int) -> UserRecord | None:
    row = await db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
    return _record(row) if row else None


async def find_by_username(db: Executor, username: str) -> UserRecord | None:
    row = await db.fetchone("SELECT * FROM users WHERE lower(username) = lower(?)", (username.lstrip("@"),))
    return _record(row) if row else None


async def set_lang(db: Executor, user_id: int, lang: str | None) -> None:
    await db.execute("UPDATE users SET lang = ? WHERE id = ?", (lang, user_id))


async def set_blocked(db: Executor, user_id: int, blocked: bool) -> None:
    await db.execute("UPDATE users SET blocked = ? WHERE id = ?", (int(blocked), user_id))


async def set_subscribed(db: Executor, user_id: int, subscribed: bool) -> None:
    await db.execute("UPDATE users SET subscribed = ? WHERE id = ?", (int(subscribed), user_id))


async def set_area(db: Executor, user_id: int, area: str | None) -> None:
    await db.execute("UPDATE users SET area = ? WHERE id = ?", (area, user_id))


async def reachable_subscribers(db: Executor, area: str | None = None) -> list[int]:
    """Users with an open private chat who did not block the bot nor opt out."""
    sql = "SELECT id FROM users WHERE private_chat = 1 AND blocked = 0 AND subscribed = 1"
    params: tuple[object, ...] = ()
    if area is not None:
        sql += " AND area = ?"
        params = (area,)
    return [row[0] for row in await db.fetchall(sql + " ORDER BY id", params)]


async def get_many(db: Executor, user_ids: list[int]) -> dict[int, UserRecord]:
    if not user_ids:
        return {}
    marks = ",".join("?" * len(user_ids))
    rows = await db.fetchall(f"SELECT * FROM users WHERE id IN ({marks})", user_ids)
    return {row["id"]: _record(row) for row in rows}
