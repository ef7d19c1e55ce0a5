"""The one outbox: rows for everything sent later or sent to many.

State machine: pending -> sending -> sent | failed | unknown | pending (retry) ;
pending -> cancelled | expired | skipped.
`start_sending` moves one row to 'sending' right before its send (only from 'pending'), so a row is
never handed out twice. A row still 'sending' when the process starts was interrupted mid-send:
whether Telegram got it is unknown. Its producer chose at enqueue what happens then
(`NewMessage.resend_if_unknown`): reminders and urgent notices are sent again (a rare duplicate beats
a missed warning), every other row ends 'unknown' (reported as "delivery unknown", not as failed, so
nobody resends what arrived). See `recover_interrupted`.

Finished rows are kept `outbox.keep_days` and then pruned in small batches (`prune`); what features
still need of them stays in two compact tables (a tombstone per key, figures per batch).

Every frequent path is an index seek or a bounded range: enqueue (the unique key, a tombstone probe),
the fair pick of due rows (`fetch_due`, a walk of the pending-only queue index), prefix operations
(a range of the unique key, never LIKE), expiry and pruning.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from storage.db import Executor, Row, from_db, from_db_required, to_db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    dedup_key: str
    chat_id: int
    payload: dict[str, Any]
    batch: str | None
    priority: int
    due_at: dt.datetime
    expires_at: dt.datetime | None
    state: str
    attempts: int
    last_error: str | None
    message_id: int | None
    resend_if_unknown: bool = False


@dataclass(frozen=True)
class NewMessage:
    kind: str
    dedup_key: str
    chat_id: int
    payload: dict[str, Any]
    due_at: dt.datetime
    batch: str | None = None
    priority: int = 5
    expires_at: dt.datetime | None = None
    # When the process dies while this row is being sent, send it again (True) or report its delivery
    # as unknown (False, the default): True for reminders and urgent notices.
    resend_if_unknown: bool = False


#: Final states: a row in one of them is never sent again, and is pruned after `outbox.keep_days`.
FINISHED = ("sent", "failed", "skipped", "expired", "cancelled", "unknown")


def _record(row: Row) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        kind=row["kind"],
        dedup_key=row["dedup_key"],
        chat_id=row["chat_id"],
        payload=json.loads(row["payload"]),
        batch=row["batch"],
        priority=row["priority"],
        due_at=from_db_required(row["due_at"]),
        expires_at=from_db(row["expires_at"]),
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        message_id=row["message_id"],
        resend_if_unknown=bool(row["resend_if_unknown"]),
    )


def dump_payload(payload: dict[str, Any]) -> str:
    """A payload as stored (compare a planned payload with a stored one by this text)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True)


def _values(m: NewMessage, now: dt.datetime) -> tuple[object, ...]:
    return (
        m.kind,
        m.dedup_key,
        m.chat_id,
        dump_payload(m.payload),
        m.batch,
        m.priority,
        to_db(m.due_at),
        to_db(m.expires_at),
        to_db(now),
        to_db(now),
        int(m.resend_if_unknown),
    )


def prefix_range(prefix: str) -> tuple[str, str]:
    """The keys starting with `prefix` as a range [low, high) of the unique dedup_key index.

    Text compares by code point here (SQLite's BINARY collation on UTF-8), so the keys with the prefix
    are exactly those >= prefix and < the prefix with its last character bumped. Unlike `LIKE 'p%'`
    (case-insensitive, so no index) this is a seek plus the matching keys. A PostgreSQL variant needs
    the column in the "C" collation (or text_pattern_ops) for the same range.
    """
    if not prefix:
        raise ValueError("empty prefix")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


# The columns written by every insert; `?11` = resend_if_unknown. The tombstone probe keeps a key
# that was pruned from being queued again (see `prune`).
_COLUMNS = (
    "kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at, created_at, updated_at,"
    " resend_if_unknown"
)
# Typed (both engines read CAST): PostgreSQL cannot infer a bare parameter's type in a SELECT list.
_SELECT_VALUES = (
    "SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS BIGINT), CAST(?4 AS TEXT), CAST(?5 AS TEXT),"
    " CAST(?6 AS INTEGER), CAST(?7 AS TEXT), CAST(?8 AS TEXT), CAST(?9 AS TEXT), CAST(?10 AS TEXT),"
    " CAST(?11 AS INTEGER)"
)


async def enqueue(db: Executor, messages: Iterable[NewMessage], now: dt.datetime) -> int:
    """Insert rows; a dedup_key already present (or pruned, see `prune`) is left alone. Returns how
    many were new: the statement's own count of inserted rows (a key seek per row, no table count)."""
    rows = [_values(m, now) for m in messages]
    if not rows:
        return 0
    return await db.executemany(
        f"INSERT INTO outbox({_COLUMNS}) {_SELECT_VALUES}"
        " WHERE NOT EXISTS (SELECT 1 FROM outbox_tombstones WHERE dedup_key = ?2)"
        " ON CONFLICT(dedup_key) DO NOTHING",
        rows,
    )


async def mark_sent(db: Executor, row_id: int, message_id: int | None, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, updated_at = ?, last_error = NULL"
        " WHERE id = ? AND state = 'sending'",
        (message_id, to_db(now), to_db(now), row_id),
    )


async def mark_failed(db: Executor, row_id: int, error: str, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE outbox SET state = 'failed', last_error = ?, updated_at = ? WHERE id = ? AND state = 'sending'",
        (error, to_db(now), row_id),
    )


async def mark_skipped(db: Executor, row_id: int, reason: str, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE outbox SET state = 'skipped', last_error = ?, updated_at = ? WHERE id = ? AND state = 'sending'",
        (reason, to_db(now), row_id),
    )


async def retry_later(db: Executor, row_id: int, error: str, due_at: dt.datetime, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE outbox SET state = 'pending', last_error = ?, due_at = ?, updated_at = ?,"
        " claimed_by = NULL, lease_until = NULL WHERE id = ? AND state = 'sending'",
        (error, to_db(due_at), to_db(now), row_id),
    )


async def release(db: Executor, row_id: int, due_at: dt.datetime, now: dt.datetime) -> None:
    """Hand a claimed row back untouched (e.g. a 429 stopped the send before it happened)."""
    await db.execute(
        "UPDATE outbox SET state = 'pending', attempts = MAX(attempts - 1, 0), due_at = ?, updated_at = ?,"
        " claimed_by = NULL, lease_until = NULL"
        " WHERE id = ? AND state = 'sending'",
        (to_db(due_at), to_db(now), row_id),
    )


async def recover_interrupted(
    db: Executor, now: dt.datetime, *, max_attempts: int = 5, every_lease: bool = False
) -> tuple[int, int]:
    """Settle the rows whose delivery is in doubt; returns (sent again, marked unknown).

    A 'sending' row is in doubt once its lease (`start_sending`) lapsed: the process sending it died
    mid-request (a live one finishes a send well within the lease); a row another live instance is
    sending is never touched. Run at start-up and periodically by the active instance. A row whose
    producer asked for it (`resend_if_unknown`) goes back to 'pending' and is sent again, unless it has
    used up its attempts; every other one ends 'unknown'. `every_lease`: every 'sending' row is in
    doubt whatever its lease (the start of the only process that sends: SQLite's).
    """
    stamp = to_db(now)
    lapsed = (
        "(lease_until IS NULL OR lease_until < ? OR 1 = 1)"
        if every_lease
        else "(lease_until IS NULL OR lease_until < ?)"
    )
    in_doubt = f"state = 'sending' AND {lapsed}"
    resent = await db.execute(
        "UPDATE outbox SET state = 'pending', last_error = 'interrupted (sent again)', updated_at = ?,"
        " claimed_by = NULL, lease_until = NULL"
        f" WHERE {in_doubt} AND resend_if_unknown = 1 AND attempts < ?",
        (stamp, stamp, max_attempts),
    )
    unknown = await db.execute(
        "UPDATE outbox SET state = 'unknown', last_error = 'interrupted (delivery unknown)', updated_at = ?"
        f" WHERE {in_doubt}",
        (stamp, stamp),
    )
    return resent, unknown


async def mark_unknown(db: Executor, row_id: int, error: str, now: dt.datetime) -> None:
    """The request went out but no answer came (time-out): Telegram may or may not have the message."""
    await db.execute(
        "UPDATE outbox SET state = 'unknown', last_error = ?, updated_at = ? WHERE id = ? AND state = 'sending'",
        (error, to_db(now), row_id),
    )


async def cancel(
    db: Executor, *, batch: str | None = None, dedup_prefix: str | None = None, now: dt.datetime
) -> int:
    """Cancel pending rows of a batch or whose dedup_key starts with a prefix."""
    if batch is not None:
        return await db.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE batch = ? AND state = 'pending'",
            (to_db(now), batch),
        )
    if dedup_prefix is not None:
        low, high = prefix_range(dedup_prefix)
        return await db.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?"
            " WHERE dedup_key >= ? AND dedup_key < ? AND state = 'pending'",
            (to_db(now), low, high),
        )
    raise ValueError("cancel needs a batch or a dedup_prefix")


async def cancel_for_chat(db: Executor, chat_id: int, reason: str, now: dt.datetime) -> int:
    """A chat became unreachable (403): its pending rows will never go out."""
    return await db.execute(
        "UPDATE outbox SET state = 'skipped', last_error = ?, updated_at = ? WHERE chat_id = ? AND state = 'pending'",
        (reason, to_db(now), chat_id),
    )


async def next_due(db: Executor) -> dt.datetime | None:
    return from_db(await db.fetchval("SELECT MIN(due_at) FROM outbox WHERE state = 'pending'"))


async def get(db: Executor, row_id: int) -> OutboxRow | None:
    row = await db.fetchone("SELECT * FROM outbox WHERE id = ?", (row_id,))
    return _record(row) if row else None


async def get_by_key(db: Executor, dedup_key: str) -> OutboxRow | None:
    row = await db.fetchone("SELECT * FROM outbox WHERE dedup_key = ?", (dedup_key,))
    return _record(row) if row else None


async def batch_counts(db: Executor, batch: str) -> dict[str, int]:
    """Rows of a batch per state, pruned ones included (their figures are kept in `outbox_pruned`)."""
    rows = await db.fetchall(
        "SELECT state, SUM(n) FROM ("
        " SELECT state, COUNT(*) AS n FROM outbox WHERE batch = ? GROUP BY state"
        " UNION ALL SELECT state, SUM(count) FROM outbox_pruned WHERE batch = ? GROUP BY state"
        ") AS per_state GROUP BY state",
        (batch, batch),
    )
    return {r[0]: int(r[1]) for r in rows}


async def batch_errors(db: Executor, batch: str) -> dict[str, int]:
    """Why rows of a batch failed or were skipped, most frequent first (pruned ones included)."""
    rows = await db.fetchall(
        "SELECT reason, SUM(n) FROM ("
        " SELECT COALESCE(last_error, '?') AS reason, COUNT(*) AS n FROM outbox"
        " WHERE batch = ? AND state IN ('failed', 'skipped') GROUP BY 1"
        " UNION ALL SELECT reason, SUM(count) FROM outbox_pruned"
        " WHERE batch = ? AND state IN ('failed', 'skipped') GROUP BY 1"
        ") AS per_reason GROUP BY reason ORDER BY 2 DESC, 1",
        (batch, batch),
    )
    return {r[0]: int(r[1]) for r in rows}


async def rows_in_batch(db: Executor, batch: str, state: str | None = None) -> list[OutboxRow]:
    if state:
        rows = await db.fetchall(
            "SELECT * FROM outbox WHERE batch = ? AND state = ? ORDER BY id", (batch, state)
        )
    else:
        rows = await db.fetchall("SELECT * FROM outbox WHERE batch = ? ORDER BY id", (batch,))
    return [_record(r) for r in rows]


_MIN_CHAT = -(2**63)

# One row per chat, best first, chosen by a walk of the pending-only index outbox_queue (state,
# priority, due_at, chat_id, id, expires_at; migration 0002): each step takes the next due row of the current priority after the last pick whose
# chat was not picked yet (nor excluded); when the priority has none left, the walk moves to the next
# priority that has pending rows. Cost: a seek per pick and per priority present, plus the rows of
# chats already picked that lie in between (300 rows of one group are walked over, never sorted), so
# it does not depend on how many rows the outbox holds, nor on how many are pending for later.
# `seen` is the picked and excluded chats as ",id,id,": instr() keeps the recursion one string.
# SQLite-specific: instr(), row values in the seek; PostgreSQL would need its own variant.
_FAIR_PICK = f"""
WITH RECURSIVE walk(n, p, d, c, seen, picked) AS (
    SELECT 0, (SELECT MIN(priority) FROM outbox WHERE state = 'pending'), '', {_MIN_CHAT}, :seen, NULL
    UNION ALL
    SELECT
        CASE WHEN o.id IS NULL THEN w.n ELSE w.n + 1 END,
        CASE WHEN o.id IS NULL
            THEN (SELECT MIN(priority) FROM outbox WHERE state = 'pending' AND priority > w.p) ELSE w.p END,
        CASE WHEN o.id IS NULL THEN '' ELSE o.due_at END,
        CASE WHEN o.id IS NULL THEN {_MIN_CHAT} ELSE o.chat_id END,
        CASE WHEN o.id IS NULL THEN w.seen ELSE w.seen || o.chat_id || ',' END,
        o.id
    FROM walk w LEFT JOIN outbox o ON o.id = (
        SELECT x.id FROM outbox x
        WHERE x.state = 'pending' AND x.priority = w.p AND x.due_at <= :now
            AND (x.due_at, x.chat_id) > (w.d, w.c)
            AND instr(w.seen, ',' || x.chat_id || ',') = 0
            AND (x.expires_at IS NULL OR x.expires_at >= :now)
        ORDER BY x.due_at, x.chat_id, x.id LIMIT 1)
    WHERE w.p IS NOT NULL AND w.n < :limit
)
SELECT o.* FROM walk w JOIN outbox o ON o.id = w.picked ORDER BY w.n
"""

# PostgreSQL: the first due row of each chat (DISTINCT ON over the pending rows due now, read through
# the pending-only outbox_queue index), best first. It reads every row due now once, not a seek per
# pick as the walk above does; due rows are what the sender is about to send anyway.
_PG_PICKED = """
WITH picked AS (
    SELECT id FROM (
        SELECT DISTINCT ON (chat_id) id, chat_id, priority, due_at FROM outbox
        WHERE state = 'pending' AND due_at <= ?1 AND (expires_at IS NULL OR expires_at >= ?2)
            AND (lease_until IS NULL OR lease_until < ?3 OR claimed_by = ?4)
            AND NOT (chat_id = ANY (?5::bigint[]))
        ORDER BY chat_id, priority, due_at, id
    ) AS first_of_chat
    ORDER BY priority, due_at, chat_id, id
    LIMIT ?6
)"""
_FAIR_PICK_PG = (
    _PG_PICKED
    + """, locked AS (
    -- The lease is checked again here, on the row as it is once locked: a pick made from the
    -- statement's snapshot may meanwhile have been leased (and committed) by another sender.
    SELECT o.id FROM outbox o JOIN picked USING (id)
    WHERE o.state = 'pending' AND (o.lease_until IS NULL OR o.lease_until < ?3 OR o.claimed_by = ?4)
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox SET claimed_by = ?7, lease_until = ?8 FROM locked WHERE outbox.id = locked.id
RETURNING outbox.*
"""
)


async def fetch_due(
    db: Executor,
    now: dt.datetime,
    limit: int,
    exclude_chats: set[int] | None = None,
    holder: str | None = None,
) -> list[OutboxRow]:
    """Expire rows past their deadline, then the next due pending rows: one per chat, best first
    (priority, then due time), chats in `exclude_chats` left out (their row is in flight).

    A chat with hundreds of due rows never holds back another chat's row: the choice across chats is
    made in SQL (`_FAIR_PICK`), not by reading a few rows in order and hoping other chats are among
    them. Rows stay 'pending'; the sender moves each one to 'sending' with `start_sending` right
    before its HTTP call, so a crash can only ever leave the one in-flight row per chat in doubt.
    """
    stamp = to_db(now)
    # Rows past their expiry are dropped (never sent: too late, e.g. a reminder after downtime beyond
    # its grace), at most EXPIRE_BATCH per call so the write stays short after a long downtime; the
    # pick below skips any left over for the next call.
    for row in await expire_due(db, now):
        log.warning("outbox: dropped %s to chat %s: due %s, expired %s", row[0], row[1], row[2], row[3])
    if limit <= 0:
        return []
    if db.dialect == "postgresql":
        # Two instances may run this at once (a failover's overlap): each takes its picks' row locks
        # with SKIP LOCKED and leases them, so a row another process picked is not picked again.
        # Without a holder (a look, e.g. whether anything is due) nothing is locked or leased.
        until = to_db(now + SEND_LEASE)
        chats = sorted(exclude_chats or ())
        if holder is None:
            rows = await db.fetchall(
                _PG_PICKED + " SELECT o.* FROM outbox o JOIN picked USING (id)",
                (stamp, stamp, stamp, holder, chats, limit),
            )
        else:
            rows = await db.fetchall(
                _FAIR_PICK_PG, (stamp, stamp, stamp, holder, chats, limit, holder, until)
            )
        return sorted((_record(r) for r in rows), key=lambda r: (r.priority, r.due_at, r.chat_id, r.id))
    seen = "," + "".join(f"{int(chat)}," for chat in sorted(exclude_chats or ()))
    rows = await db.fetchall(_FAIR_PICK, {"seen": seen, "now": stamp, "limit": limit})
    return [_record(r) for r in rows]


async def any_due(db: Executor, now: dt.datetime, holder: str | None = None) -> bool:
    """Whether a pending row is due for `holder`: not leased, or leased to it (a pick it made and is
    about to send), and not expired. A look: nothing is locked or leased."""
    stamp = to_db(now)
    row = await db.fetchone(
        "SELECT 1 FROM outbox WHERE state = 'pending' AND due_at <= ?"
        " AND (expires_at IS NULL OR expires_at >= ?)"
        " AND (lease_until IS NULL OR lease_until < ? OR claimed_by = ?) LIMIT 1",
        (stamp, stamp, stamp, holder),
    )
    return row is not None


#: How long a row being sent stays leased to its sender: longer than any send takes (PTB's timeouts
#: are seconds), so a lapsed lease means the sender died mid-request.
SEND_LEASE = dt.timedelta(seconds=30)


async def start_sending(
    db: Executor,
    row_id: int,
    now: dt.datetime,
    *,
    holder: str | None = None,
    lease: dt.timedelta = SEND_LEASE,
) -> bool:
    """pending -> sending, counted as an attempt, leased to `holder` until now + `lease`; False when
    the row changed meanwhile (e.g. cancelled) or another live process holds its lease."""
    stamp = to_db(now)
    changed = await db.execute(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?,"
        " claimed_by = ?, lease_until = ?"
        " WHERE id = ? AND state = 'pending'"
        " AND (lease_until IS NULL OR lease_until < ? OR claimed_by = ?)",
        (stamp, holder, to_db(now + lease), row_id, stamp, holder),
    )
    return changed == 1


async def release_picks(db: Executor, holder: str) -> int:
    """Give back the pending rows `holder` picked but never started (a clean stop): another
    instance, or the next start, takes them at once instead of after the lease."""
    return await db.execute(
        "UPDATE outbox SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ? AND state = 'pending'",
        (holder,),
    )


async def postpone(db: Executor, row_id: int, due_at: dt.datetime, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE outbox SET due_at = ?, updated_at = ?, claimed_by = NULL, lease_until = NULL"
        " WHERE id = ? AND state = 'pending'",
        (to_db(due_at), to_db(now), row_id),
    )


async def retarget_chat(db: Executor, old_chat_id: int, new_chat_id: int, now: dt.datetime) -> int:
    """A group became a supergroup: its unsent rows go to the new id."""
    # Two statements, each on its index: pending rows by chat (outbox_chat), the in-flight one by state.
    moved = await db.execute(
        "UPDATE outbox SET chat_id = ?, updated_at = ? WHERE chat_id = ? AND state = 'pending'",
        (new_chat_id, to_db(now), old_chat_id),
    )
    return moved + await db.execute(
        "UPDATE outbox SET chat_id = ?, updated_at = ? WHERE state = 'sending' AND chat_id = ?",
        (new_chat_id, to_db(now), old_chat_id),
    )


async def expired_since(db: Executor, since: dt.datetime) -> list[OutboxRow]:
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE state = 'expired' AND updated_at >= ? ORDER BY id", (to_db(since),)
    )
    return [_record(r) for r in rows]


# A pruned key blocks a new row, except that a key pruned while 'cancelled' may be revived.
_NOT_PRUNED_FOR_GOOD = (
    "NOT EXISTS (SELECT 1 FROM outbox_tombstones WHERE dedup_key = ?2 AND state <> 'cancelled')"
)


async def enqueue_or_revive(db: Executor, messages: Iterable[NewMessage], now: dt.datetime) -> int:
    """Like `enqueue`, but a row with the same dedup_key that was cancelled is queued again with the
    new payload and due time (e.g. a task reminder for a courier who withdrew, then claimed again).
    Rows in any other state are left alone, so a message is still never sent twice."""
    return await db.executemany(
        f"INSERT INTO outbox({_COLUMNS}) {_SELECT_VALUES} WHERE {_NOT_PRUNED_FOR_GOOD}"
        " ON CONFLICT(dedup_key) DO UPDATE SET"
        " state = 'pending', payload = excluded.payload, due_at = excluded.due_at,"
        " expires_at = excluded.expires_at, attempts = 0, last_error = NULL, updated_at = excluded.updated_at,"
        " resend_if_unknown = excluded.resend_if_unknown"
        " WHERE outbox.state = 'cancelled'",
        [_values(m, now) for m in messages],
    )


# -- Planned rows that are re-planned (meeting reminders) ---------------------------------------------


async def upsert_planned(db: Executor, messages: Iterable[NewMessage], now: dt.datetime) -> int:
    """Insert planned rows, or refresh one not sent yet (pending, or cancelled by an earlier re-plan).

    Unlike `enqueue`, a row with the same dedup_key that is 'pending' gets the new payload, due and
    expiry, and a 'cancelled' one is revived: the key is the business identity (this reminder for
    this occurrence in this chat), so planning it again after it was withdrawn must bring it back.
    The caller decides what is wanted from the current state (a cancelled meeting or a skipped
    occurrence is never planned, see `bot.meetings.service.MeetingService.plan_reminders`).
    Rows already 'sending', 'sent', 'failed', 'expired', 'skipped' or 'unknown' are never touched (nor
    pruned ones in those states): no second send.
    Returns how many rows were inserted, revived or actually changed (a pending row planned again
    unchanged is not rewritten and not counted).
    """
    # `IS NOT` (null-safe inequality) is SQLite's spelling of PostgreSQL's IS DISTINCT FROM. The count
    # is the statement's own (sqlite3 sums changes() over the rows; an untouched row adds nothing).
    return await db.executemany(
        f"""
        INSERT INTO outbox({_COLUMNS}) {_SELECT_VALUES} WHERE {_NOT_PRUNED_FOR_GOOD}
        ON CONFLICT(dedup_key) DO UPDATE SET
            kind = excluded.kind, chat_id = excluded.chat_id, payload = excluded.payload,
            batch = excluded.batch, priority = excluded.priority, due_at = excluded.due_at,
            expires_at = excluded.expires_at, state = 'pending', updated_at = excluded.updated_at,
            resend_if_unknown = excluded.resend_if_unknown
        WHERE outbox.state = 'cancelled'
            OR (outbox.state = 'pending' AND (
                outbox.kind IS NOT excluded.kind OR outbox.chat_id IS NOT excluded.chat_id
                OR outbox.payload IS NOT excluded.payload OR outbox.batch IS NOT excluded.batch
                OR outbox.priority IS NOT excluded.priority OR outbox.due_at IS NOT excluded.due_at
                OR outbox.expires_at IS NOT excluded.expires_at
                OR outbox.resend_if_unknown IS NOT excluded.resend_if_unknown))
        """,
        [_values(m, now) for m in messages],
    )


class PlannedRow(NamedTuple):
    """A planned row as stored (texts as written), to compare with a new plan without decoding it.
    The payload only of a pending row (the only one a plan compares it with), else ''. A tuple: a
    re-plan of every series reads tens of thousands of them."""

    id: int
    dedup_key: str
    state: str
    kind: str
    chat_id: int
    payload: str
    batch: str | None
    priority: int
    due_at: str
    expires_at: str | None
    resend_if_unknown: int


_PLANNED_COLUMNS = (
    "id, dedup_key, state, kind, chat_id, CASE WHEN state = 'pending' THEN payload ELSE '' END,"
    " batch, priority, due_at, expires_at, resend_if_unknown"
)


async def planned_rows(db: Executor, dedup_prefix: str, since: dt.datetime) -> list[PlannedRow]:
    """The rows of a prefix a re-plan may touch: every pending one, and the others due from `since` on
    (a plan of rows due from `since` on cannot concern the older history). One key range."""
    low, high = prefix_range(dedup_prefix)
    rows = await db.fetchall(
        f"SELECT {_PLANNED_COLUMNS} FROM outbox WHERE dedup_key >= ? AND dedup_key < ?"
        " AND (state = 'pending' OR due_at >= ?)",
        (low, high, to_db(since)),
    )
    return [PlannedRow(*r) for r in rows]


async def planned_rows_many(
    db: Executor, dedup_prefixes: Sequence[str], since: dt.datetime
) -> dict[str, list[PlannedRow]]:
    """`planned_rows` of several prefixes in one query per 100 (one key range each), by prefix."""
    found: dict[str, list[PlannedRow]] = {prefix: [] for prefix in dedup_prefixes}
    prefixes = sorted(found)
    for start in range(0, len(prefixes), 100):
        chunk = prefixes[start : start + 100]
        ranges = [bound for prefix in chunk for bound in prefix_range(prefix)]
        rows = await db.fetchall(
            f"SELECT {_PLANNED_COLUMNS} FROM outbox WHERE ("
            + " OR ".join(["(dedup_key >= ? AND dedup_key < ?)"] * len(chunk))
            + ") AND (state = 'pending' OR due_at >= ?)",
            (*ranges, to_db(since)),
        )
        for r in rows:
            row = PlannedRow(*r)
            # The row's prefix: the greatest one not after its key (a key has one prefix of these,
            # unless one prefix starts another; then the longer, later one is meant).
            index = bisect.bisect_right(chunk, row.dedup_key) - 1
            while index >= 0 and not row.dedup_key.startswith(chunk[index]):
                index -= 1
            if index >= 0:
                found[chunk[index]].append(row)
    return found


def needs_writing(row: PlannedRow | None, m: NewMessage, payload: str | None = None) -> bool:
    """Whether `upsert_planned([m])` would write anything over the stored `row` (None: not read, or
    not there). `payload` is `dump_payload(m.payload)` when the caller has it already."""
    if row is None or row.state == "cancelled":
        return True  # new, or revived
    if row.state != "pending":
        return False  # sent or otherwise finished: never touched
    return not (
        row.kind == m.kind
        and row.chat_id == m.chat_id
        and row.payload == (payload if payload is not None else dump_payload(m.payload))
        and row.batch == m.batch
        and row.priority == m.priority
        and dt.datetime.fromisoformat(row.due_at) == m.due_at
        and (from_db(row.expires_at) if row.expires_at else None) == m.expires_at
        and bool(row.resend_if_unknown) == m.resend_if_unknown
    )


async def with_prefix(db: Executor, dedup_prefix: str) -> list[OutboxRow]:
    """Every row whose dedup_key starts with the prefix (a range of the unique key), in key order."""
    low, high = prefix_range(dedup_prefix)
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE dedup_key >= ? AND dedup_key < ? ORDER BY dedup_key", (low, high)
    )
    return [_record(r) for r in rows]


async def pending_with_prefix(db: Executor, dedup_prefix: str, now: dt.datetime) -> list[OutboxRow]:
    """Pending rows whose dedup_key starts with the prefix and that have not expired by `now`."""
    low, high = prefix_range(dedup_prefix)
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE dedup_key >= ? AND dedup_key < ? AND state = 'pending'"
        " AND (expires_at IS NULL OR expires_at >= ?) ORDER BY id",
        (low, high, to_db(now)),
    )
    return [_record(r) for r in rows]


async def cancel_ids(db: Executor, ids: Iterable[int], now: dt.datetime) -> int:
    """Cancel these rows if they are still pending."""
    wanted = list(ids)
    count = 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        count += await db.execute(
            f"UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE id IN ({','.join('?' * len(chunk))})"
            " AND state = 'pending'",
            (to_db(now), *chunk),
        )
    return count


async def set_payload(db: Executor, dedup_key: str, payload: dict[str, Any], now: dt.datetime) -> bool:
    """Replace the payload of a row that is still pending (e.g. fresher counts before it is sent)."""
    changed = await db.execute(
        "UPDATE outbox SET payload = ?, updated_at = ? WHERE dedup_key = ? AND state = 'pending'",
        (dump_payload(payload), to_db(now), dedup_key),
    )
    return changed > 0


EXPIRE_BATCH = 200  # rows marked expired per statement: a short write even after a long downtime


async def expire_due(db: Executor, now: dt.datetime, limit: int = EXPIRE_BATCH) -> list[Row]:
    """Mark up to `limit` pending rows whose expiry passed as 'expired'; returns (dedup_key, chat_id,
    due_at, expires_at) of each (to log). On the pending-only expiry index: a seek when none expired."""
    stamp = to_db(now)
    return await db.fetchall(
        "UPDATE outbox SET state = 'expired', updated_at = ? WHERE id IN ("
        " SELECT id FROM outbox WHERE state = 'pending' AND expires_at < ? LIMIT ?)"
        " RETURNING dedup_key, chat_id, due_at, expires_at",
        (stamp, stamp, limit),
    )


@dataclass(frozen=True)
class ExpiredRow:
    """What the log says of a row that expired unsent."""

    dedup_key: str
    chat_id: int
    due_at: dt.datetime


async def expire_overdue(
    db: Executor, dedup_prefix: str, now: dt.datetime, limit: int = EXPIRE_BATCH
) -> list[ExpiredRow]:
    """Mark up to `limit` pending rows of a prefix whose expires_at passed as 'expired' and return them
    (to log; not their payloads); call again while it returns `limit` rows (each a short write)."""
    low, high = prefix_range(dedup_prefix)
    # `+dedup_key`: the key range is a filter here, so the pending-only expiry index (few rows) is
    # used rather than the range of every row of the prefix ever sent (SQLite's way to say so).
    rows = await db.fetchall(
        "UPDATE outbox SET state = 'expired', updated_at = ? WHERE id IN ("
        " SELECT id FROM outbox WHERE state = 'pending' AND expires_at < ?"
        " AND +dedup_key >= ? AND +dedup_key < ? LIMIT ?) RETURNING dedup_key, chat_id, due_at",
        (to_db(now), to_db(now), low, high, limit),
    )
    return [ExpiredRow(key, chat_id, from_db_required(due)) for key, chat_id, due in rows]


# -- Keeping the table small ----------------------------------------------------------------------------


async def prune(db: Executor, cutoff: dt.datetime, limit: int = 200) -> int:
    """Delete up to `limit` finished rows last touched (and due) before `cutoff`; returns how many.

    Call it in a transaction (all four statements or none) and repeat while it returns `limit`:
    each call is one short write. Never a 'pending' or 'sending' row. What features still need of a
    pruned row is kept, compactly:

    * its key and final state in `outbox_tombstones`. Producers rely on a present key to never queue
      the same thing twice, and some keys can come back long after their row was sent: an outcome
      note of an occurrence months ago (``mtgo:``), a task reminder on a re-claim, a re-planned
      meeting. Rather than prune only what provably cannot come back (a rule every new producer would
      have to keep), every key leaves a tombstone (the key and a state, no payload: a small fraction
      of the row), and the enqueue statements refuse a key with one; a key pruned while 'cancelled'
      may still be revived, as its row could have been.
    * the counts of its batch per state (and failure reason) in `outbox_pruned`, so a broadcast's
      report and list keep their figures (`batch_counts`, `batch_errors`).
    * meetings copy what they keep editing (the message id of a sent reminder or announcement) into
      their own tables when it is sent (storage/meetings.py), so RSVP counts still update it.
    """
    stamp = to_db(cutoff)
    states = ",".join(f"'{s}'" for s in FINISHED)
    ids = [
        r[0]
        for r in await db.fetchall(
            f"SELECT id FROM outbox WHERE state IN ({states}) AND due_at < ? AND updated_at < ? LIMIT ?",
            (stamp, stamp, limit),
        )
    ]
    if not ids:
        return 0
    chosen = f"id IN ({','.join('?' * len(ids))})"
    await db.execute(
        f"INSERT INTO outbox_tombstones(dedup_key, state) SELECT dedup_key, state FROM outbox WHERE {chosen}"
        " ON CONFLICT(dedup_key) DO UPDATE SET state = excluded.state",
        ids,
    )
    await db.execute(
        "INSERT INTO outbox_pruned(batch, state, reason, count)"
        " SELECT batch, state,"
        " CASE WHEN state IN ('failed', 'skipped') THEN COALESCE(last_error, '?') ELSE '' END, COUNT(*)"
        f" FROM outbox WHERE {chosen} AND batch IS NOT NULL GROUP BY 1, 2, 3"
        " ON CONFLICT(batch, state, reason) DO UPDATE SET count = outbox_pruned.count + excluded.count",
        ids,
    )
    return await db.execute(f"DELETE FROM outbox WHERE {chosen}", ids)
