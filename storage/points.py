"""The one points ledger (志愿分). Append-only: corrections are new rows, never edits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
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


_APPEND = (
    "INSERT INTO points_ledger(user_id, delta, reason, ref, note, area, actor_id, idem_key, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(idem_key) DO NOTHING"
)


@dataclass(frozen=True)
class NewEntry:
    """An entry for append_many."""

    user_id: int
    delta: int
    reason: str
    created_at: dt.datetime
    ref: str | None = None
    note: str | None = None
    area: str | None = None
    actor_id: int | None = None
    idem_key: str | None = None


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
    """Add an entry. With an idem_key the same credit is only ever written once: False if it was.
    (The trigger points_month_totals adds it to the month's totals in the same statement.)"""
    changed = await db.execute(
        _APPEND, (user_id, delta, reason, ref, note, area, actor_id, idem_key, to_db(now))
    )
    return changed > 0


async def recorded(db: Executor, idem_key: str) -> bool:
    """Whether the entry with this idem_key was written (a credit given once)."""
    return await db.fetchval("SELECT 1 FROM points_ledger WHERE idem_key = ?", (idem_key,)) is not None


async def append_many(db: Executor, entries: Iterable[NewEntry]) -> int:
    """Many entries in one executemany (imports, benchmarks), through the same statement as append."""
    return await db.executemany(
        _APPEND,
        (
            (e.user_id, e.delta, e.reason, e.ref, e.note, e.area, e.actor_id, e.idem_key, to_db(e.created_at))
            for e in entries
        ),
    )


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


# -- the monthly rank -------------------------------------------------------------------------------
# Totals per month and user (points_month_users) and per month, area and user (points_month_areas),
# written by the trigger points_month_totals with every ledger row (0032_wall_and_rank.sql): what a
# user earned in a month is every entry but redemptions (spending points does not lower a rank, while
# a moderator's correction of a wrong credit does). A rank reads the top of an index and counts the
# users ahead of one user, never the month's ledger rows.


def _month_table(area: str | None) -> tuple[str, str, list[object]]:
    """(totals table, its extra WHERE, parameters) for the whole rank or one area's."""
    if area is None:
        return "points_month_users", "", []
    return "points_month_areas", " AND area = ?", [area]


async def month_ready(db: Executor, start: dt.datetime, end: dt.datetime) -> bool:
    """Are totals kept for exactly the month [start, end)?"""
    found = await db.fetchval(
        "SELECT 1 FROM points_months WHERE start_at = ? AND end_at = ?", (to_db(start), to_db(end))
    )
    return found is not None


async def build_month(db: Executor, start: dt.datetime, end: dt.datetime) -> bool:
    """Keep totals for the month [start, end) from now on, computed once from its ledger rows (in the
    caller's transaction). A month of another time zone overlapping it is dropped with its totals.
    False when it was already kept."""
    if await month_ready(db, start, end):
        return False
    lo, hi = to_db(start), to_db(end)
    await db.execute("DELETE FROM points_months WHERE start_at < ? AND end_at > ?", (hi, lo))  # cascades
    await db.execute("INSERT INTO points_months(start_at, end_at) VALUES (?, ?)", (lo, hi))
    await db.execute(
        "INSERT INTO points_month_users(month_start, user_id, earned, first_at)"
        " SELECT ?1, user_id, SUM(delta), MIN(created_at) FROM points_ledger"
        " WHERE reason <> 'redeem' AND created_at >= ?1 AND created_at < ?2 GROUP BY user_id",
        (lo, hi),
    )
    await db.execute(
        "INSERT INTO points_month_areas(month_start, area, user_id, earned, first_at)"
        " SELECT ?1, area, user_id, SUM(delta), MIN(created_at) FROM points_ledger"
        " WHERE reason <> 'redeem' AND area IS NOT NULL AND created_at >= ?1 AND created_at < ?2"
        " GROUP BY area, user_id",
        (lo, hi),
    )
    return True


async def month_top(
    db: Executor, start: dt.datetime, limit: int, area: str | None = None
) -> list[tuple[int, int]]:
    """(user_id, points earned) of the first ``limit`` users of the month starting at ``start`` (kept,
    see month_ready): most points first, then whoever started earning first, then the lower id; only
    users above zero."""
    table, where, params = _month_table(area)
    rows = await db.fetchall(
        f"SELECT user_id, earned FROM {table} WHERE month_start = ?{where} AND earned > 0"
        " ORDER BY earned DESC, first_at, user_id LIMIT ?",
        [to_db(start), *params, limit],
    )
    return [(r[0], r[1]) for r in rows]


async def month_place(
    db: Executor, start: dt.datetime, user_id: int, area: str | None = None
) -> tuple[int, int] | None:
    """(place, points earned) of one user in the month's rank; None when they earned nothing."""
    table, where, params = _month_table(area)
    month = to_db(start)
    own = await db.fetchone(
        f"SELECT earned, first_at FROM {table} WHERE month_start = ?{where} AND user_id = ?",
        [month, *params, user_id],
    )
    if own is None or own["earned"] <= 0:
        return None
    earned, first_at = own["earned"], own["first_at"]
    ahead = await db.fetchval(
        f"SELECT COUNT(*) FROM {table} WHERE month_start = ?{where} AND earned > 0 AND earned >= ?"
        " AND (earned > ? OR first_at < ? OR (first_at = ? AND user_id < ?))",
        [month, *params, earned, earned, first_at, first_at, user_id],
    )
    return int(ahead) + 1, int(earned)


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


async def live_codes(db: Executor, user_id: int, now: dt.datetime) -> list[RedeemCode]:
    """A user's unused, unexpired codes, newest first: the points they hold (index redeem_codes_user)."""
    rows = await db.fetchall(
        "SELECT * FROM redeem_codes WHERE user_id = ? AND used_at IS NULL AND expires_at > ? ORDER BY id DESC",
        (user_id, to_db(now)),
    )
    return [_code(r) for r in rows]


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
