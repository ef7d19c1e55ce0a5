"""Scale scenario "outbox": enqueue, the fair pick of due rows, pruning.

The database is filled through the outbox's own INSERT (`storage.outbox.enqueue`, executemany in
chunks); past rows are then finished in bulk with the UPDATE the sender would leave behind (state
'sent', a message id, a time): the outbox has no trigger or aggregate that this skips. Mix: 95%
finished rows of the last weeks (broadcast batches, notices, reminders, a few failed/skipped/expired/
cancelled) across 20,000 chats, 5% pending for later (meeting and task reminders up to 35 days ahead).

* enqueue: one new row (`storage.outbox.enqueue`) beside the old way (COUNT(*) before and after a
  plain INSERT).
* fetch_due: the worker's call (limit 50) with 300 rows due for one group and one reminder for
  another chat (later and at a lower priority), beside the old query (limit*4 rows in order, one per
  chat in Python): "B found" says whether the other chat's row was handed out. Also with 20,000
  due rows of a broadcast (one per chat) and with 5,000 due rows of one group.
* prune: finished rows older than keep_days deleted in batches (`PRUNE_BATCH`, its own database), as
  `Outbox.prune` does (a WAL checkpoint off the writer lock between batches): rows a second, and the
  writer time of one batch's transaction (p50/p95).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

from bench.scale.common import NOW, open_db, report
from bot.core.outbox import PRUNE_BATCH
from storage import outbox as repo
from storage.db import Database, available_migrations, to_db
from storage.outbox import NewMessage

SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000,)
CHATS = 20_000
LAYOUT = 5  # bump when the fill changes: a kept database of another layout is rebuilt
PAYLOAD = {"method": "sendMessage", "params": {"text": "本周六小哥学堂：电动车安全。" * 6}}


# -- the fill ----------------------------------------------------------------------------------------


def _rows(size: int, rng: random.Random) -> list[tuple[NewMessage, str]]:
    """(row, final state) pairs: finished rows of the last 28 days, then rows pending for later."""
    out: list[tuple[NewMessage, str]] = []
    pending = size // 20
    for i in range(size - pending):
        when = NOW - dt.timedelta(minutes=40_000 * (size - i) / size)  # oldest first
        chat = -1_000_000_000_000 - rng.randrange(CHATS)
        kind, key, batch, priority = "broadcast", f"bc:{i // 2000}:{i}", f"bc:{i // 2000}", 9
        if i % 3 == 1:
            kind, key, batch, priority = "task_notice", f"task:{i}:v1:claimed:{chat}", None, 5
        elif i % 3 == 2:
            kind, key, batch, priority = "meeting_reminder", f"mtg:{10**6 + i % 997}:{i}:60:{chat}", None, 4
        state = rng.choices(("sent", "failed", "skipped", "expired", "cancelled"), weights=(92, 2, 3, 2, 1))[
            0
        ]
        out.append((NewMessage(kind, key, chat, PAYLOAD, when, batch=batch, priority=priority), state))
    for i in range(pending):
        due = NOW + dt.timedelta(minutes=1 + 50_000 * i / pending)
        chat = -1_000_000_000_000 - rng.randrange(CHATS)
        kind, key = ("meeting_reminder", f"mtg:{10**6 + i % 997}:p{i}:1440:{chat}")
        if i % 2:
            kind, key = ("task_reminder", f"task:{i}:rem:{rng.randrange(10**6)}:60")
        msg = NewMessage(kind, key, chat, PAYLOAD, due, priority=4, expires_at=due + dt.timedelta(minutes=15))
        out.append((msg, "pending"))
    return out


async def fill(db: Database, rows: list[tuple[NewMessage, str]]) -> None:
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        # Inserted at their own time, as the producers did (the outbox stamps created/updated_at).
        async with db.transaction() as tx:
            await repo.enqueue(tx, [m for m, _ in chunk], min(NOW, chunk[0][0].due_at))
            for state in ("sent", "failed", "skipped", "expired", "cancelled"):
                keys = [(m.dedup_key,) for m, s in chunk if s == state]
                if not keys:
                    continue
                await tx.executemany(
                    "UPDATE outbox SET state = ?1, attempts = 1, message_id = id, updated_at = due_at,"
                    " sent_at = CASE WHEN ?1 = 'sent' THEN due_at END,"
                    " last_error = CASE ?1 WHEN 'failed' THEN 'network: timed out'"
                    " WHEN 'skipped' THEN 'forbidden: bot was kicked' END"
                    " WHERE dedup_key = ?2",
                    [(state, k[0]) for k in keys],
                )


async def database(workdir: Path, size: int) -> Database:
    """The filled database of `size` rows, reused from an earlier run when it is still the same layout."""
    path = workdir / f"outbox-{size}.sqlite3"
    meta = Path(str(path) + ".json")
    want = {"layout": LAYOUT, "size": size, "schema": schema_tag()}
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == want:
        db = Database(path)
        await db.open()
        if not await db.migrate():
            return db
        await db.close()
    db = await open_db(path)
    started = time.perf_counter()
    await fill(db, _rows(size, random.Random(size)))
    print(f"   (filled {size:,} outbox rows in {time.perf_counter() - started:.0f} s)", flush=True)
    meta.write_text(json.dumps(want))
    return db


def schema_tag() -> str:
    """The migrations' fingerprint: a kept database built under other migrations is rebuilt."""
    return hashlib.sha1("".join(sql for _, _, sql in available_migrations()).encode()).hexdigest()[:12]


# -- the old ways (kept here only) -------------------------------------------------------------------


async def naive_enqueue(db: Database, messages: list[NewMessage], now: dt.datetime) -> int:
    """What enqueue did: count the table, insert, count again."""
    before = await db.fetchval("SELECT COUNT(*) FROM outbox")
    await db.executemany(
        "INSERT INTO outbox(kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
        [repo._values(m, now)[:10] for m in messages],
    )
    after = await db.fetchval("SELECT COUNT(*) FROM outbox")
    return int(after) - int(before)


async def naive_fetch_due(db: Database, now: dt.datetime, limit: int, exclude: set[int]) -> list[Any]:
    """What fetch_due did: expire, read limit*4 due rows in order, keep the first of each chat."""
    stamp = to_db(now)
    await db.fetchall(
        "UPDATE outbox SET state = 'expired', updated_at = ? WHERE state = 'pending' AND expires_at IS NOT NULL"
        " AND expires_at < ? AND due_at <= ? RETURNING dedup_key, chat_id, due_at, expires_at",
        (stamp, stamp, stamp),
    )
    rows = await db.fetchall(
        "SELECT * FROM outbox WHERE state = 'pending' AND due_at <= ? ORDER BY priority, due_at, id LIMIT ?",
        (stamp, limit * 4),
    )
    picked, seen = [], set(exclude)
    for row in rows:
        record = repo._record(row)
        if record.chat_id in seen:
            continue
        seen.add(record.chat_id)
        picked.append(record)
        if len(picked) >= limit:
            break
    return picked


# -- the paths ---------------------------------------------------------------------------------------


async def bench_enqueue(db: Database, size: int, n: int) -> None:
    tag = time.monotonic_ns()

    def message(name: str, i: int) -> NewMessage:
        return NewMessage("notice", f"bench:{name}:{tag}:{i}", -42, PAYLOAD, NOW, priority=5)

    ours, naive = [], []
    for i in range(n + 3):
        start = time.perf_counter()
        assert await repo.enqueue(db, [message("ours", i)], NOW) == 1
        ours.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        assert await naive_enqueue(db, [message("naive", i)], NOW) == 1
        naive.append((time.perf_counter() - start) * 1000)
    report("outbox enqueue (one row)", size, "rows", ours[3:], naive[3:])
    await repo.cancel(db, dedup_prefix="bench:", now=NOW)


async def bench_fetch_due(
    db: Database, size: int, n: int, label: str, rows: list[NewMessage], *, check: bool = True
) -> None:
    """Time the worker's fetch (limit 50) with `rows` due plus another chat's one reminder (due later,
    lower priority); with `check`, say whether each way handed that reminder out."""
    batch = f"bench-due:{time.monotonic_ns()}"
    other = NewMessage(
        "task_reminder", f"{batch}:b", -7, PAYLOAD, NOW - dt.timedelta(minutes=1), batch=batch, priority=9
    )
    queued = [NewMessage(m.kind, f"{batch}:{i}", m.chat_id, PAYLOAD, m.due_at, batch=batch, priority=m.priority)
              for i, m in enumerate(rows)]  # fmt: skip
    for start in range(0, len(queued), 5000):
        await repo.enqueue(db, queued[start : start + 5000], NOW)
    await repo.enqueue(db, [other], NOW)
    try:
        ours, naive = [], []
        found_ours = found_naive = True
        for _ in range(n + 3):
            start = time.perf_counter()
            got = await repo.fetch_due(db, NOW, 50)
            ours.append((time.perf_counter() - start) * 1000)
            found_ours &= any(r.chat_id == -7 for r in got)
            start = time.perf_counter()
            old = await naive_fetch_due(db, NOW, 50, set())
            naive.append((time.perf_counter() - start) * 1000)
            found_naive &= any(r.chat_id == -7 for r in old)
        report(f"outbox fetch_due: {label}", size, "rows", ours[3:], naive[3:])
        if not check:
            return
        print(
            f"{'':<34} {'':>10} {'':<10} other chat's row handed out: ours "
            f"{'yes' if found_ours else 'NO'}, naive {'yes' if found_naive else 'NO'}",
            flush=True,
        )
    finally:
        await repo.cancel(db, batch=batch, now=NOW)


async def bench_prune(workdir: Path, size: int) -> None:
    """Prune `size` finished rows (all older than keep_days) in batches: rows/s, writer time."""
    path = workdir / f"outbox-prune-{size}.sqlite3"
    db = await open_db(path)
    try:
        rng = random.Random(7)
        old = NOW - dt.timedelta(days=40)
        rows = [(NewMessage(m.kind, m.dedup_key, m.chat_id, m.payload, old - (NOW - m.due_at), batch=m.batch,
                            priority=m.priority), s)
                for m, s in _rows(size, rng) if s != "pending"]  # fmt: skip
        await fill(db, rows)
        await db.fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        holds: list[float] = []
        total = 0
        cutoff = NOW - dt.timedelta(days=30)
        started = time.perf_counter()
        while True:
            start = time.perf_counter()
            async with db.transaction() as tx:
                pruned = await repo.prune(tx, cutoff, PRUNE_BATCH)
            holds.append((time.perf_counter() - start) * 1000)
            total += pruned
            if pruned < PRUNE_BATCH:
                break
            await db.checkpoint()  # as `Outbox.prune` does between batches
        seconds = time.perf_counter() - started
        report(f"outbox prune: one batch of {PRUNE_BATCH}", len(rows), "rows", holds)
        left = await db.fetchval("SELECT COUNT(*) FROM outbox")
        tombstones = await db.fetchval("SELECT COUNT(*) FROM outbox_tombstones")
        print(
            f"{'outbox prune: whole table':<34} {len(rows):>10,} {'rows':<10} {total / seconds:,.0f} rows/s"
            f" ({seconds:.1f} s, {len(holds)} transactions, longest {max(holds):.1f} ms; {left} left,"
            f" {tombstones:,} tombstones)",
            flush=True,
        )
    finally:
        await db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


async def run(args: Any) -> list[dict]:
    sizes = QUICK_SIZES if args.quick else SIZES
    n = 10 if args.quick else 60
    for size in sizes:
        db = await database(args.workdir, size)
        try:
            await bench_enqueue(db, size, n)
            group = -1_000_000_000_999
            due = NOW - dt.timedelta(minutes=30)
            flood = [NewMessage("notice", "", group, PAYLOAD, due, priority=3) for _ in range(300)]
            await bench_fetch_due(db, size, n, "300 due for one group", flood)
            if size == sizes[-1]:
                fanout = [NewMessage("broadcast", "", -2_000_000_000_000 - i, PAYLOAD, due, priority=9)
                          for i in range(20_000 if not args.quick else 1_000)]  # fmt: skip
                await bench_fetch_due(db, size, n, f"{len(fanout):,} due, one per chat", fanout, check=False)
                big = [NewMessage("notice", "", group, PAYLOAD, due + dt.timedelta(seconds=i), priority=3)
                       for i in range(5_000 if not args.quick else 500)]  # fmt: skip
                await bench_fetch_due(db, size, n, f"{len(big):,} due for one group", big)
        finally:
            await db.close()
    await bench_prune(args.workdir, 5_000 if args.quick else 200_000)
    return []
