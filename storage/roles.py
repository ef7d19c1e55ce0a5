"""Granted roles (moderator, captain, station_keeper), optionally scoped to an area."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from storage.db import Executor, from_db_required, to_db


@dataclass(frozen=True)
class RoleGrant:
    user_id: int
    role: str
    area: str  # '' = every area
    granted_by: int | None
    granted_at: dt.datetime


async def grant(
    db: Executor, *, user_id: int, role: str, area: str, granted_by: int | None, now: dt.datetime
) -> bool:
    """True when newly granted, False when the user already had it."""
    changed = await db.execute(
        "INSERT INTO roles(user_id, role, area, granted_by, granted_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(user_id, role, area) DO NOTHING",
        (user_id, role, area, granted_by, to_db(now)),
    )
    return changed > 0


async def revoke(db: Executor, *, user_id: int, role: str, area: str | None) -> int:
    """Revoke one scoped grant, or every grant of that role when area is None."""
    if area is None:
        return await db.execute("DELETE FROM roles WHERE user_id = ? AND role = ?", (user_id, role))
    return await db.execute(
        "DELETE FROM roles WHERE user_id = ? AND role = ? AND area = ?", (user_id, role, area)
    )


async def for_user(db: Executor, user_id: int) -> list[RoleGrant]:
    rows = await db.fetchall("SELECT * FROM roles WHERE user_id = ? ORDER BY role, area", (user_id,))
    return [
        RoleGrant(r["user_id"], r["role"], r["area"], r["granted_by"], from_db_required(r["granted_at"]))
        for r in rows
    ]


async def all_grants(db: Executor, role: str | None = None) -> list[RoleGrant]:
    if role:
        rows = await db.fetchall("SELECT * FROM roles WHERE role = ? ORDER BY role, area, user_id", (role,))
    else:
        rows = await db.fetchall("SELECT * FROM roles ORDER BY role, area, user_id")
    return [
        RoleGrant(r["user_id"], r["role"], r["area"], r["granted_by"], from_db_required(r["granted_at"]))
        for r in rows
    ]


async def holders(db: Executor, role: str, area: str | None = None) -> list[int]:
    """Users holding `role` globally or for `area`."""
    rows = await db.fetchall(
        "SELECT DISTINCT user_id FROM roles WHERE role = ? AND (area = '' OR area = ?) ORDER BY user_id",
        (role, area or ""),
    )
    return [r[0] for r in rows]
