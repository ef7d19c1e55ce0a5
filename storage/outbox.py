"""The one outbox: rows for everything sent later or sent to many.

State machine: pending -> sending -> sent | failed | pending (retry) ; pending -> cancelled | expired | skipped.
`start_sending` moves one row to 'sending' right before its send (only from 'pending'), so a row is
never handed out twice. Rows still 'sending' when the process starts were interrupted mid-send: whether Telegram got
them is unknown, and we choose never to send twice, so `recover_interrupted` marks them failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
    )


def _values(m: NewMessage, now: dt.datetime) -> tuple[object, ...]:
    return (
        m.kind,
        m.dedup_key,
        m.chat_id,
        json.dumps(m.payload, ensure_ascii=False, sort_keys=True),
        m.batch,
        m.priority,
        to_db(m.due_at),
        to_db(m.expires_at),
        to_db(now),
        to_db(now),
    )


async def enqueue(db: Executor, messages: Iterable[NewMessage], now: dt.datetime) -> int:
    """Insert rows; a dedup_key already present is left alone. Returns how many were new."""
    rows = [_values(m, now) for m in messages]
    if not rows:
        return 0
    before = await db.fetchval("SELECT COUNT(*) FROM outbox")
    await db.executemany(
        "INSERT INTO outbox(kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
        rows,
    )
    after = await db.fetchval("SELECT COUNT(*) FROM outbox")
    return int(after) - int(before)


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
        "UPDATE outbox SET state = 'pending', last_error = ?, due_at = ?, updated_at = ? WHERE id = ? AND state = 'sending'",
        (error, to_db(due_at), to_db(now), row_id),
    )


async def release(db: Executor, row_id: int, due_at: dt.datetime, now: dt.datetime) -> None:
    """Hand a claimed row back untouched (e.g. a 429 stopped the send before it happened)."""
    await db.execute(
        "UPDATE outbox SET state = 'pending', attempts = MAX(attempts - 1, 0), due_at = ?, updated_at = ?"
        " WHERE id = ? AND state = 'sending'",
        (to_db(due_at), to_db(now), row_id),
    )


async def recover_interrupted(db: Executor, now: dt.datetime) -> int:
    return await db.execute(
        "UPDATE outbox SET state = 'failed', last_error = 'interrupted', updated_at = ? WHERE state = 'sending'",
        (to_db(now),),
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
        return await db.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE dedup_key LIKE ? ESCAPE '\\' AND state = 'pending'",
            (to_db(now), dedup_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"),
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
    rows = await db.fetchall("SELECT state, COUNT(*) FROM outbox WHERE batch = ? GROUP BY state", (batch,))
    return {r[0]: r[1] for r in rows}


async def batch_errors(db: Executor, batch: str) -> dict[str, int]:
    rows = await db.fetchall(
        "SELECT COALESCE(last_error, '?'), COUNT(*) FROM outbox WHERE batch = ? AND state IN ('failed', 'skipped')"
        " GROUP BY 1 ORDER BY 2 DESC",
        (batch,),
    )
    return {r[0]: r[1] for r in rows}


async def rows_in_batch(db: Executor, batch: str, state: str | None = None) -> list[OutboxRow]:
    if state:
        rows = await db.fetchall(
            "SELECT * FROM outbox WHERE batch = ? AND state = ? ORDER BY id", (batch, state)
        )
    else:
        rows = await db.fetchall("SELECT * FROM outbox WHERE batch = ? ORDER BY id", (batch,))
    return [_record(r) for r in rows]


async def fetch_due(
    db: Executor, now: dt.datetime, limit: int, exclude_chats: set[int] | None = None
) -> list[OutboxRow]:
    """Expire rows past their deadline, then the next due pending rows (one per chat, best first).

    Rows stay 'pending'; the sender moves each one to 'sending' with `start_sending` right before its
    HTTP call, so a crash can only ever leave the one in-flight row per chat in doubt.
    """
    stamp = to_db(now)
    expired = await db.fetchall(
        "UPDATE outbox SET state = 'expired', updated_at = ? WHERE state = 'pending' AND expires_at IS NOT NULL"
        " AND expires_at < ? AND due_at <= ? RETURNING dedup_key, chat_id, due_at, expires_at",
        (stamp, stamp, stamp),
    )
    for row in expired:  # dropped, never sent: too late (e.g. a reminder after downtime beyond its grace)
        log.warning("outbox: dropped %s to chat %s: due %s, expired %s", row[0], row[1], row[2], row[3])
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE state = 'pending' AND due_at <= ? ORDER BY priority, due_at, id LIMIT ?",
        (stamp, limit * 4),
    )
    picked: list[OutboxRow] = []
    seen: set[int] = set(exclude_chats or ())
    for row in rows:
        record = _record(row)
        if record.chat_id in seen:
            continue
        seen.add(record.chat_id)
        picked.append(record)
        if len(picked) >= limit:
            break
    return picked


async def start_sending(db: Executor, row_id: int, now: dt.datetime) -> bool:
    """pending -> sending, counted as an attempt; False when the row changed meanwhile (e.g. cancelled)."""
    changed = await db.execute(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'pending'",
        (to_db(now), row_id),
    )
    return changed == 1


async def postpone(db: Executor, row_id: int, due_at: dt.datetime, now: dt.datetime) -> None:
    await db.execute(
        "UPDATE outbox SET due_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
        (to_db(due_at), to_db(now), row_id),
    )


async def retarget_chat(db: Executor, old_chat_id: int, new_chat_id: int, now: dt.datetime) -> int:
    """A group became a supergroup: its unsent rows go to the new id."""
    return await db.execute(
        "UPDATE outbox SET chat_id = ?, updated_at = ? WHERE chat_id = ? AND state IN ('pending', 'sending')",
        (new_chat_id, to_db(now), old_chat_id),
    )


async def expired_since(db: Executor, since: dt.datetime) -> list[OutboxRow]:
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE state = 'expired' AND updated_at >= ? ORDER BY id", (to_db(since),)
    )
    return [_record(r) for r in rows]


async def enqueue_or_revive(db: Executor, messages: Iterable[NewMessage], now: dt.datetime) -> int:
    """Like `enqueue`, but a row with the same dedup_key that was cancelled is queued again with the
    new payload and due time (e.g. a task reminder for a courier who withdrew, then claimed again).
    Rows in any other state are left alone, so a message is still never sent twice."""
    return await db.executemany(
        "INSERT INTO outbox(kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO UPDATE SET"
        " state = 'pending', payload = excluded.payload, due_at = excluded.due_at,"
        " expires_at = excluded.expires_at, attempts = 0, last_error = NULL, updated_at = excluded.updated_at"
        " WHERE outbox.state = 'cancelled'",
        [_values(m, now) for m in messages],
    )


# -- Planned rows that are re-planned (meeting reminders) ---------------------------------------------


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def upsert_planned(db: Executor, messages: Iterable[NewMessage], now: dt.datetime) -> int:
    """Insert planned rows, or refresh one not sent yet (pending, or cancelled by an earlier re-plan).

    Unlike `enqueue`, a row with the same dedup_key that is 'pending' gets the new payload, due and
    expiry, and a 'cancelled' one is revived: the key is the business identity (this reminder for
    this occurrence in this chat), so planning it again after it was withdrawn must bring it back.
    The caller decides what is wanted from the current state (a cancelled meeting or a skipped
    occurrence is never planned, see `bot.meetings.service.MeetingService.plan_reminders`).
    Rows already 'sending', 'sent', 'failed', 'expired' or 'skipped' are never touched: no second send.
    Returns how many rows were inserted, revived or actually changed (a pending row planned again
    unchanged is not rewritten and not counted).
    """
    count = 0
    for m in messages:
        written = await db.fetchall(
            """
            INSERT INTO outbox(kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at,
                created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(dedup_key) DO UPDATE SET
                kind = excluded.kind, chat_id = excluded.chat_id, payload = excluded.payload,
                batch = excluded.batch, priority = excluded.priority, due_at = excluded.due_at,
                expires_at = excluded.expires_at, state = 'pending', updated_at = excluded.updated_at
            WHERE outbox.state = 'cancelled'
                OR (outbox.state = 'pending' AND (
                    outbox.kind IS NOT excluded.kind OR outbox.chat_id IS NOT excluded.chat_id
                    OR outbox.payload IS NOT excluded.payload OR outbox.batch IS NOT excluded.batch
                    OR outbox.priority IS NOT excluded.priority OR outbox.due_at IS NOT excluded.due_at
                    OR outbox.expires_at IS NOT excluded.expires_at))
            RETURNING id
            """,
            _values(m, now),
        )
        count += len(written)
    return count


async def pending_with_prefix(db: Executor, dedup_prefix: str, now: dt.datetime) -> list[OutboxRow]:
    """Pending rows whose dedup_key starts with the prefix and that have not expired by `now`."""
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE dedup_key LIKE ? ESCAPE '\\' AND state = 'pending'"
        " AND (expires_at IS NULL OR expires_at >= ?) ORDER BY id",
        (_like_prefix(dedup_prefix), to_db(now)),
    )
    return [_record(r) for r in rows]


async def cancel_ids(db: Executor, ids: Iterable[int], now: dt.datetime) -> int:
    """Cancel these rows if they are still pending."""
    count = 0
    for row_id in ids:
        count += await db.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'pending'",
            (to_db(now), row_id),
        )
    return count


async def set_payload(db: Executor, dedup_key: str, payload: dict[str, Any], now: dt.datetime) -> bool:
    """Replace the payload of a row that is still pending (e.g. fresher counts before it is sent)."""
    changed = await db.execute(
        "UPDATE outbox SET payload = ?, updated_at = ? WHERE dedup_key = ? AND state = 'pending'",
        (json.dumps(payload, ensure_ascii=False, sort_keys=True), to_db(now), dedup_key),
    )
    return changed > 0


async def expire_overdue(db: Executor, dedup_prefix: str, now: dt.datetime) -> list[OutboxRow]:
    """Mark pending rows of a prefix whose expires_at passed as 'expired' and return them (to log)."""
    rows = await db.fetchall(
        "UPDATE outbox SET state = 'expired', updated_at = ? WHERE dedup_key LIKE ? ESCAPE '\\'"
        " AND state = 'pending' AND expires_at IS NOT NULL AND expires_at < ? RETURNING *",
        (to_db(now), _like_prefix(dedup_prefix), to_db(now)),
    )
    return [_record(r) for r in rows]
