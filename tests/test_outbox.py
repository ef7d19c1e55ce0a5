"""The outbox at scale: enqueue without table counts, a fair pick across chats, delivery in doubt
(sent again or 'unknown'), pruning with tombstones and kept batch figures, the 0002 migration."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.core.clock import FakeClock
from bot.core.config import Config, OutboxConfig
from bot.core.container import Core
from bot.core.i18n import Catalog
from storage import db as db_module
from storage import outbox
from storage.db import Database
from storage.outbox import NewMessage
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
A, B, C = -1001, -1002, -1003
MSG = {"method": "sendMessage", "params": {"text": "hi"}}


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "o.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


def msg(key: str, chat: int, *, due: dt.datetime = NOW, **kw) -> NewMessage:
    return NewMessage("notice", key, chat, MSG, due, **kw)


class Statements:
    """Every SQL statement the writer connection runs (sqlite3's trace callback)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.seen: list[str] = []

    async def __aenter__(self) -> Statements:
        await self.database._conn.set_trace_callback(self.seen.append)
        for reader in self.database._all_readers:
            await reader.set_trace_callback(self.seen.append)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.database._conn.set_trace_callback(None)
        for reader in self.database._all_readers:
            await reader.set_trace_callback(None)


async def plan_of(database: Database, sql: str, params=()) -> str:
    rows = await database.fetchall("EXPLAIN QUERY PLAN " + sql, params)
    return " | ".join(r[3] for r in rows)


# -- enqueue -----------------------------------------------------------------------------------------


@pytest.mark.sqlite_only
async def test_enqueue_counts_inserted_rows_without_counting_the_table(db):
    async with Statements(db) as trace:
        assert await outbox.enqueue(db, [msg(f"k{i}", A) for i in range(5)], NOW) == 5
        # two already there, three new, one twice in the same call
        again = [msg("k0", A), msg("k1", A), msg("n1", B), msg("n2", B), msg("n3", C), msg("n3", C)]
        assert await outbox.enqueue(db, again, NOW) == 3
    assert not [s for s in trace.seen if "COUNT(" in s.upper()], trace.seen
    assert (await db.fetchval("SELECT COUNT(*) FROM outbox")) == 8


@pytest.mark.sqlite_only
async def test_enqueue_is_a_key_seek(db):
    await outbox.enqueue(db, [msg(f"k{i}", A) for i in range(50)], NOW)
    async with Statements(db) as trace:
        await outbox.enqueue(db, [msg("new", A)], NOW)
    [insert] = [s for s in trace.seen if s.startswith("INSERT")]
    plan = await plan_of(db, insert)
    assert "SEARCH outbox_tombstones USING PRIMARY KEY (dedup_key=?)" in plan, plan
    assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), plan


# -- the fair pick -----------------------------------------------------------------------------------


async def test_300_due_rows_of_one_group_never_hold_back_another_chat(db):
    # Group A: 300 rows due, at a better priority and earlier than chat B's one reminder.
    await outbox.enqueue(
        db, [msg(f"a{i}", A, due=NOW - dt.timedelta(minutes=30), priority=3) for i in range(300)], NOW
    )
    await outbox.enqueue(db, [msg("b", B, due=NOW - dt.timedelta(minutes=1), priority=9)], NOW)
    for limit in (2, 4, 50):
        picked = await outbox.fetch_due(db, NOW, limit)
        assert [r.chat_id for r in picked] == [A, B]  # one per chat, best first
    # A's row in flight: B's is the first one handed out
    assert [r.dedup_key for r in await outbox.fetch_due(db, NOW, 1, exclude_chats={A})] == ["b"]


async def test_the_worker_sends_the_other_chats_reminder_first(db):
    """Through the sender's own loop (fetch, then 'send' one row per chat at a time)."""
    await outbox.enqueue(db, [msg(f"a{i}", A, due=NOW - dt.timedelta(minutes=5)) for i in range(300)], NOW)
    await outbox.enqueue(db, [msg("b", B, due=NOW, priority=9)], NOW)
    sent: list[str] = []
    for _ in range(3):  # three dispatch rounds
        for row in await outbox.fetch_due(db, NOW, 4):
            assert await outbox.start_sending(db, row.id, NOW)
            await outbox.mark_sent(db, row.id, 1, NOW)
            sent.append(row.dedup_key)
    assert "b" in sent[:2]
    assert sent.count("b") == 1 and len(sent) == 4  # then A's rows one per round


async def test_fair_pick_orders_by_priority_then_due_and_skips_future_rows(db):
    await outbox.enqueue(
        db,
        [
            msg("bulk-a", A, due=NOW - dt.timedelta(hours=1), priority=9),
            msg("reply-b", B, due=NOW, priority=0),
            msg("later-c", C, due=NOW + dt.timedelta(minutes=1), priority=0),
            msg("remind-c", C, due=NOW - dt.timedelta(minutes=2), priority=4),
            msg("remind-a", A, due=NOW - dt.timedelta(minutes=3), priority=4),
        ],
        NOW,
    )
    picked = await outbox.fetch_due(db, NOW, 10)
    assert [r.dedup_key for r in picked] == ["reply-b", "remind-a", "remind-c"]
    assert [r.dedup_key for r in await outbox.fetch_due(db, NOW, 10, exclude_chats={A, B})] == ["remind-c"]
    assert await outbox.fetch_due(db, NOW, 10, exclude_chats={A, B, C}) == []
    assert await outbox.fetch_due(db, NOW, 0) == []


@pytest.mark.sqlite_only
async def test_fair_pick_and_expiry_use_the_pending_only_indexes(db):
    await outbox.enqueue(db, [msg(f"k{i}", A + i % 7, due=NOW, priority=i % 3) for i in range(200)], NOW)
    pick = await plan_of(db, outbox._FAIR_PICK, {"seen": ",", "now": "x", "limit": 5})
    assert "outbox_queue" in pick and "SCAN outbox" not in pick.replace("SCAN outbox_", ""), pick
    assert "RIGHT PART OF ORDER BY" not in pick, pick  # the walk follows the index: nothing sorted
    expiry = await plan_of(
        db,
        "UPDATE outbox SET state = 'expired' WHERE state = 'pending' AND expires_at < ?",
        ("x",),
    )
    assert "outbox_expiry" in expiry, expiry
    overdue = await plan_of(
        db,
        "SELECT 1 FROM outbox WHERE state = 'pending' AND expires_at < ? AND +dedup_key >= ? AND +dedup_key < ?",
        ("x", "mtg:", "mtg;"),
    )
    assert "outbox_expiry" in overdue, overdue


@pytest.mark.sqlite_only
async def test_prefix_operations_are_key_ranges_not_like(db):
    await outbox.enqueue(
        db,
        [
            msg("task:1:rem:5:60", 5),
            msg("task:1:rem:5:1440", 5),
            msg("task:1:rem:55:60", 55),
            msg("task:10:x", 5),
        ],
        NOW,
    )
    assert outbox.prefix_range("task:1:rem:5:") == ("task:1:rem:5:", "task:1:rem:5;")
    assert [r.dedup_key for r in await outbox.with_prefix(db, "task:1:")] == [
        "task:1:rem:55:60",
        "task:1:rem:5:1440",
        "task:1:rem:5:60",
    ]
    async with Statements(db) as trace:
        assert await outbox.cancel(db, dedup_prefix="task:1:rem:5:", now=NOW) == 2
    assert not [s for s in trace.seen if " LIKE " in s.upper()]
    plan = await plan_of(db, "SELECT * FROM outbox WHERE dedup_key >= ? AND dedup_key < ?", ("a", "b"))
    assert (
        "SEARCH outbox USING INDEX sqlite_autoindex_outbox" in plan and "dedup_key>? AND dedup_key<?" in plan
    )
    assert (await outbox.get_by_key(db, "task:1:rem:55:60")).state == "pending"


# -- delivery in doubt ---------------------------------------------------------------------------------


async def test_rows_in_flight_at_a_crash_are_sent_again_or_marked_unknown(db):
    """A row left 'sending' is in doubt once its sender's lease lapsed (the sender died), not before."""
    await outbox.enqueue(
        db,
        [
            msg("reminder", A, resend_if_unknown=True),
            msg("notice", B),
            msg("worn-out", C, resend_if_unknown=True),
            msg("waiting", -1004),
        ],
        NOW,
    )
    for key in ("reminder", "notice", "worn-out"):
        row = await outbox.get_by_key(db, key)
        assert await outbox.start_sending(db, row.id, NOW, holder="host:1:dead")
    await db.execute("UPDATE outbox SET attempts = 5 WHERE dedup_key = 'worn-out'")
    # While their sender's lease runs, the rows are its own: another instance leaves them alone.
    assert await outbox.recover_interrupted(db, NOW + outbox.SEND_LEASE, max_attempts=5) == (0, 0)
    lapsed = NOW + outbox.SEND_LEASE + dt.timedelta(seconds=1)
    assert await outbox.recover_interrupted(db, lapsed, max_attempts=5) == (1, 2)
    states = {
        k: (await outbox.get_by_key(db, k)).state for k in ("reminder", "notice", "worn-out", "waiting")
    }
    assert states == {"reminder": "pending", "notice": "unknown", "worn-out": "unknown", "waiting": "pending"}
    assert (await outbox.get_by_key(db, "notice")).last_error == "interrupted (delivery unknown)"
    assert await outbox.recover_interrupted(db, NOW) == (0, 0)


# -- pruning -------------------------------------------------------------------------------------------


async def finish(db, key: str, state: str, when: dt.datetime, error: str | None = None) -> None:
    await db.execute(
        "UPDATE outbox SET state = ?, last_error = ?, updated_at = ? WHERE dedup_key = ?",
        (state, error, db_module.to_db(when), key),
    )


async def test_prune_deletes_only_old_finished_rows_in_small_batches(db):
    old = NOW - dt.timedelta(days=40)
    rows = [msg(f"old{i}", A, due=old, batch="bc:1") for i in range(7)]
    rows += [msg("old-pending", B, due=old), msg("old-sending", C, due=old), msg("recent", A, due=NOW)]
    await outbox.enqueue(db, rows, old)
    for i, state in enumerate(("sent", "sent", "failed", "skipped", "expired", "cancelled", "unknown")):
        await finish(
            db, f"old{i}", state, old, "forbidden: blocked" if state in ("failed", "skipped") else None
        )
    await finish(db, "old-sending", "sending", old)
    await finish(db, "recent", "sent", NOW)
    before_counts = await outbox.batch_counts(db, "bc:1")
    before_errors = await outbox.batch_errors(db, "bc:1")

    cutoff = NOW - dt.timedelta(days=30)
    assert await outbox.prune(db, cutoff, limit=3) == 3
    assert await outbox.prune(db, cutoff, limit=3) == 3
    assert await outbox.prune(db, cutoff, limit=3) == 1
    assert await outbox.prune(db, cutoff, limit=3) == 0
    left = {r[0] for r in await db.fetchall("SELECT dedup_key FROM outbox")}
    assert left == {"old-pending", "old-sending", "recent"}
    # the broadcast's figures did not change
    assert await outbox.batch_counts(db, "bc:1") == before_counts
    assert await outbox.batch_errors(db, "bc:1") == before_errors == {"forbidden: blocked": 2}


async def test_a_pruned_key_is_never_queued_again_but_a_cancelled_one_revives(db):
    old = NOW - dt.timedelta(days=40)
    await outbox.enqueue(db, [msg("sent-once", A, due=old), msg("withdrawn", B, due=old)], old)
    await finish(db, "sent-once", "sent", old)
    await finish(db, "withdrawn", "cancelled", old)
    assert await outbox.prune(db, NOW - dt.timedelta(days=30)) == 2
    for mode in (outbox.enqueue, outbox.enqueue_or_revive, outbox.upsert_planned):
        assert await mode(db, [msg("sent-once", A)], NOW) == 0
    assert await outbox.get_by_key(db, "sent-once") is None
    assert await outbox.enqueue(db, [msg("withdrawn", B)], NOW) == 0  # 'new' never revives
    assert await outbox.enqueue_or_revive(db, [msg("withdrawn", B)], NOW) == 1
    assert (await outbox.get_by_key(db, "withdrawn")).state == "pending"


@pytest.mark.sqlite_only
async def test_the_daily_prune_uses_keep_days_and_short_transactions(tmp_path):
    database = await make_database(tmp_path / "p.sqlite3").open()
    await database.migrate()
    try:
        config = Config(outbox=OutboxConfig(keep_days=7))
        core = Core(config=config, clock=FakeClock(NOW), db=database, catalog=Catalog.load())
        await outbox.enqueue(
            database, [msg(f"k{i}", A, due=NOW - dt.timedelta(days=8 + i % 2)) for i in range(25)], NOW
        )
        await outbox.enqueue(database, [msg("young", A, due=NOW - dt.timedelta(days=6))], NOW)
        for i in range(25):
            await finish(database, f"k{i}", "sent", NOW - dt.timedelta(days=8))
        await finish(database, "young", "sent", NOW - dt.timedelta(days=6))
        async with Statements(database) as trace:
            assert await core.outbox.prune(batch=10) == 25
        assert sum(s.startswith("BEGIN") for s in trace.seen) == 3  # 10 + 10 + 5 rows
        assert (await outbox.get_by_key(database, "young")).state == "sent"
    finally:
        await database.close()


# -- the migration -----------------------------------------------------------------------------------


@pytest.mark.sqlite_only
async def test_migration_0002_carries_every_row_over(tmp_path, monkeypatch):
    every = db_module.available_migrations()
    before = [m for m in every if m[0] < 2 or m[0] in (40, 41)]
    monkeypatch.setattr(db_module, "available_migrations", lambda: before)
    database = await Database(tmp_path / "m.sqlite3").open()
    try:
        await database.migrate()
        stamp = db_module.to_db(NOW)
        for i, (kind, state) in enumerate(
            (("meeting_reminder", "sending"), ("broadcast", "sending"), ("task_reminder", "pending"))
        ):
            await database.execute(
                "INSERT INTO outbox(kind, dedup_key, chat_id, payload, priority, due_at, state, message_id,"
                " created_at, updated_at) VALUES (?, ?, ?, '{}', 5, ?, ?, ?, ?, ?)",
                (kind, f"mtg:1:x:60:{i}", A, stamp, state, 70 + i, stamp, stamp),
            )
        await database.execute(
            "INSERT INTO meetings(id, title, tz, dtstart_local, duration_minutes, organizer_id, created_at,"
            " updated_at) VALUES (1, 't', 'Asia/Shanghai', '2026-11-30T14:30:00', 60, 1, ?, ?)",
            (stamp, stamp),
        )
        await database.execute(
            "INSERT INTO meeting_reminders(dedup_key, meeting_id, occurrence, chat_id, offset_minutes)"
            " VALUES ('mtg:1:x:60:0', 1, ?, ?, 60)",
            (stamp, B),
        )
        await database.execute("UPDATE outbox SET state = 'sent' WHERE dedup_key = 'mtg:1:x:60:0'")
        monkeypatch.setattr(db_module, "available_migrations", lambda: every)
        await database.migrate()
        rows = [await outbox.get_by_key(database, f"mtg:1:x:60:{i}") for i in range(3)]
        assert [(r.kind, r.state, r.message_id, r.resend_if_unknown) for r in rows] == [
            ("meeting_reminder", "sent", 70, True),
            ("broadcast", "sending", 71, False),
            ("task_reminder", "pending", 72, True),
        ]
        link = await database.fetchone("SELECT chat_id, message_id FROM meeting_reminders")
        assert tuple(link) == (A, 70)  # the sent reminder's message, where it went
        assert await outbox.recover_interrupted(database, NOW) == (0, 1)
    finally:
        await database.close()


@pytest.mark.sqlite_only
async def test_a_chats_pending_rows_are_found_by_index(db):
    await outbox.enqueue(db, [msg(f"k{i}", A + i % 7) for i in range(100)], NOW)
    for sql in (
        "UPDATE outbox SET state = 'skipped' WHERE chat_id = ? AND state = 'pending'",
        "UPDATE outbox SET chat_id = 1 WHERE chat_id = ? AND state = 'pending'",
    ):
        plan = await plan_of(db, sql, (A,))
        assert "outbox_chat" in plan, plan


async def test_expiry_is_written_in_short_batches_and_nothing_expired_is_handed_out(db):
    late = NOW - dt.timedelta(hours=2)
    rows = [
        msg(f"late{i}", -5000 - i, due=late, expires_at=late + dt.timedelta(minutes=15)) for i in range(450)
    ]
    await outbox.enqueue(db, [*rows, msg("fresh", A, due=late)], late)
    assert [r.dedup_key for r in await outbox.fetch_due(db, NOW, 50)] == ["fresh"]
    expired = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'expired'")
    assert expired == outbox.EXPIRE_BATCH  # one short write; the rest next time, never sent meanwhile
    await outbox.fetch_due(db, NOW, 50)
    await outbox.fetch_due(db, NOW, 50)
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE state = 'expired'") == 450


# -- the flood limiter learns only from requests made --------------------------------------------------


async def test_a_row_given_up_before_its_request_teaches_the_limiter_no_round_trip(db):
    """The outbox holds a send's ticket before it marks the row; when it then makes no request (it is
    stopping, or the row was taken meanwhile) the ticket goes back without a round trip: a ~0 s sample
    would become the quickest, and every later send would count its whole round trip longer."""
    from bot.core.ratelimit import FloodLimiter

    core = Core(config=Config(), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    limiter = FloodLimiter()
    for _ in range(20):
        limiter.round_trips.add(0.15)
    core.outbox._limiter = limiter
    await outbox.enqueue(db, [msg("taken", A), msg("stopping", B)], NOW)
    taken = await outbox.get_by_key(db, "taken")
    await outbox.start_sending(db, taken.id, NOW, holder="another")  # taken meanwhile
    await core.outbox._send(taken)
    core.outbox._stopping = True
    await core.outbox._send(await outbox.get_by_key(db, "stopping"))
    assert list(limiter.round_trips.recent) == [0.15] * 20
    assert limiter.quickest == (0.15, 0.15)
    assert (await outbox.get_by_key(db, "stopping")).state == "pending"  # left for the next start


async def test_a_429_to_a_reminder_makes_the_limiter_cautious_too(db):
    """A 429 to a row that is not bulk (a reminder, a notification) says the limiter's reckoning was
    short just as one to a broadcast does: every send counts a little longer for a while (before, only
    bulk rows' 429s were told to the limiter). The row itself waits retry_after."""
    from telegram.error import RetryAfter

    from bot.core.ratelimit import CAUTION_FIRST, FloodLimiter

    class Refusing:
        async def do_api_request(self, *args, **kwargs):
            raise RetryAfter(3)

    core = Core(config=Config(), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    limiter = FloodLimiter()
    for _ in range(20):
        limiter.round_trips.add(0.15)
    core.outbox._limiter, core.outbox._bot = limiter, Refusing()
    await outbox.enqueue(db, [msg("reminder", 42, priority=0)], NOW)
    assert limiter.margin == 0.0
    await core.outbox._send(await outbox.get_by_key(db, "reminder"))
    assert limiter.margin == CAUTION_FIRST
    row = await outbox.get_by_key(db, "reminder")
    assert row.state == "pending" and row.due_at == NOW + dt.timedelta(seconds=3)
