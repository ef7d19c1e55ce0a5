"""The one points ledger (志愿分). Append-only: corrections are new rows, never edits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.db import Executor, Row, from_db, from_db_required, to_db


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
    """(user_id, points earned) in [start, end): every entry but redemptions (spending points does not
    lower a rank, while a moderator's correction of a wrong credit does); only users above zero."""
    sql = (
        "SELECT user_id, SUM(delta) AS earned FROM points_ledger"
        " WHERE reason <> 'redeem' AND created_at >= ? AND created_at < ?"
    )
    params: list[object] = [to_db(start), to_db(end)]
    if area is not None:
        sql += " AND area = ?"
        params.append(area)
    sql += " GROUP BY user_id HAVING earned > 0 ORDER BY earned DESC, MIN(created_at), user_id"
    return [(r[0], r[1]) for r in await db.fetchall(sql, params)]


# -- redeem codes (a courier shows a one-time code at a station) ------------------------------------


@dataclass(frozen=True)
class RedeemCode:
    id: int
    code: str
    user_id: int
    points: int
    expires_at: dt.datetime
    used_at: dt.datetime | None
    used_by: int | None
    created_at: dt.datetime


def _code(row: Row) -> RedeemCode:
    return RedeemCode(
        id=row["id"],
        code=row["code"],
        user_id=row["user_id"],
        points=row["points"],
        expires_at=from_db_required(row["expires_at"]),
        used_at=from_db(row["used_at"]),
        used_by=row["used_by"],
        created_at=from_db_required(row["created_at"]),
    )


async def code_is_live(db: Executor, code: str, now: dt.datetime) -> bool:
    """Whether an unused, unexpired code with this value exists (a new code must not collide)."""
    found = await db.fetchval(
        "SELECT 1 FROM redeem_codes WHERE code = ? AND used_at IS NULL AND expires_at > ? LIMIT 1",
        (code, to_db(now)),
    )
    return found is not None


async def expire_codes_of(db: Executor, user_id: int, now: dt.datetime) -> int:
    """End a user's live codes (a new request replaces them)."""
    return await db.execute(
        "UPDATE redeem_codes SET expires_at = ? WHERE user_id = ? AND used_at IS NULL AND expires_at > ?",
        (to_db(now), user_id, to_db(now)),
    )


async def insert_code(
    db: Executor, *, code: str, user_id: int, points: int, expires_at: dt.datetime, now: dt.datetime
) -> RedeemCode:
    row = await db.fetchone(
        "INSERT INTO redeem_codes(code, user_id, points, expires_at, created_at) VALUES (?, ?, ?, ?, ?)"
        " RETURNING *",
        (code, user_id, points, to_db(expires_at), to_db(now)),
    )
    assert row is not None
    return _code(row)


async def find_code(db: Executor, code: str, now: dt.datetime) -> RedeemCode | None:
    """The live row with this code if there is one, else the most recent row with it."""
    row = await db.fetchone(
        "SELECT * FROM redeem_codes WHERE code = ?"
        " ORDER BY (used_at IS NULL AND expires_at > ?) DESC, id DESC LIMIT 1",
        (code, to_db(now)),
    )
    return _code(row) if row else None


async def use_code(db: Executor, code_id: int, used_by: int, now: dt.datetime) -> bool:
    """Mark a live code used; False if it was used or expired meanwhile."""
    changed = await db.execute(
        "UPDATE redeem_codes SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?",
        (to_db(now), used_by, code_id, to_db(now)),
    )
    return changed > 0


# -- idempotency keys (a credit taken back by an undo may be earned again) ----------------------------


async def by_idem_key(db: Executor, idem_key: str) -> LedgerEntry | None:
    r = await db.fetchone("SELECT * FROM points_ledger WHERE idem_key = ?", (idem_key,))
    if r is None:
        return None
    return LedgerEntry(
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


async def count_idem_prefix(db: Executor, prefix: str) -> int:
    """Entries whose idem_key starts with `prefix` (no LIKE wildcards expected in it)."""
    return int(
        await db.fetchval(
            "SELECT COUNT(*) FROM points_ledger WHERE idem_key >= ? AND idem_key < ?",
            (prefix, prefix + "\uffff"),
        )
    )
