"""The one points ledger (志愿分). Append-only: corrections are new rows, never edits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.db import Executor, from_db_required, to_db


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    user_id: int
    delta: int
    reason: str
    ref: str | None
    note: str | None
    area: str | None
    actor_id: int | None
    created_at: dt.datetime


async def append(
    db: Executor,
    *,
    user_id: int,
    delta: int,
    reason: str,
    now: dt.datetime,
    ref: str | None = None,
    note: str | None = None,
    area: str | None = None,
    actor_id: int | None = None,
    idem_key: str | None = None,
) -> bool:
    """Add an entry. With an idem_key the same credit is only ever written once: False if it was."""
    changed = await db.execute(
        "INSERT INTO points_ledger(user_id, delta, reason, ref, note, area, actor_id, idem_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(idem_key) DO NOTHING",
        (user_id, delta, reason, ref, note, area, actor_id, idem_key, to_db(now)),
    )
    return changed > 0


async def balance(db: Executor, user_id: int) -> int:
    return int(
        await db.fetchval("SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE user_id = ?", (user_id,))
    )


async def history(db: Executor, user_id: int, limit: int = 10) -> list[LedgerEntry]:
    rows = await db.fetchall(
        "SELECT * FROM points_ledger WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, limit)
    )
    return [
        LedgerEntry(
            r["id"],
            r["user_id"],
            r["delta"],
            r["reason"],
            r["ref"],
            r["note"],
            r["area"],
            r["actor_id"],
            from_db_required(r["created_at"]),
        )
        for r in rows
    ]


async def earned_between(
    db: Executor, start: dt.datetime, end: dt.datetime, area: str | None = None
) -> list[tuple[int, int]]:
    """(user_id, points earned) in [start, end), positive entries only (redemptions don't lower rank)."""
    sql = (
        "SELECT user_id, SUM(delta) AS earned FROM points_ledger"
        " WHERE delta > 0 AND created_at >= ? AND created_at < ?"
    )
    params: list[object] = [to_db(start), to_db(end)]
    if area is not None:
        sql += " AND area = ?"
        params.append(area)
    sql += " GROUP BY user_id ORDER BY earned DESC, MIN(created_at), user_id"
    return [(r[0], r[1]) for r in await db.fetchall(sql, params)]
