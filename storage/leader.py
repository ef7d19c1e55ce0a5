"""The active instance's lease (two instances on one PostgreSQL database, one of them active).

One row per lease name. `acquire` takes the lease when nobody holds it or the holder's lapsed, and
renews it for its own holder; both engines decide it in one statement (an upsert whose update applies
only then), so of two instances asking at once exactly one gets it.
"""

from __future__ import annotations

import datetime as dt

from storage.db import Executor, to_db


async def acquire(db: Executor, name: str, holder: str, now: dt.datetime, ttl: dt.timedelta) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl; False while another holds it."""
    stamp = to_db(now)
    changed = await db.execute(
        "INSERT INTO leader_lease(name, holder, until, acquired_at, renewed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until,"
        " acquired_at = CASE WHEN leader_lease.holder = excluded.holder"
        " THEN leader_lease.acquired_at ELSE excluded.acquired_at END,"
        " renewed_at = excluded.renewed_at"
        " WHERE leader_lease.holder = excluded.holder OR leader_lease.until < ?",
        (name, holder, to_db(now + ttl), stamp, stamp, stamp),
    )
    return changed == 1


async def release(db: Executor, name: str, holder: str) -> bool:
    """Give the lease up (a clean stop): the other instance takes over at once."""
    return await db.execute("DELETE FROM leader_lease WHERE name = ? AND holder = ?", (name, holder)) == 1


async def holder(db: Executor, name: str) -> tuple[str, str] | None:
    """(holder, until) of the lease, if any."""
    row = await db.fetchone("SELECT holder, until FROM leader_lease WHERE name = ?", (name,))
    return (row[0], row[1]) if row else None
