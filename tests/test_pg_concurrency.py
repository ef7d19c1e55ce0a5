"""Rules that hold only because writers are serialised, tested with many writers at once.

On SQLite one transaction writes at a time (BEGIN IMMEDIATE), so these pass trivially there; on
PostgreSQL (`pytest --db postgresql`) transactions run side by side at READ COMMITTED, and each test
fails without its rule (storage/locks.py, the outbox's SKIP LOCKED lease, the leader lease's upsert).
Every writer here uses its own pooled connection: the pool is sized for them.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.points import PointsOutcome, PointsService
from storage import leader, outbox
from storage import points as ledger
from storage import reports as reports_repo
from storage.outbox import NewMessage
from tests.dbs import make_database

NOW = dt.datetime(2026, 12, 5, 4, 0, tzinfo=dt.UTC)
WRITERS = 12


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "c.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


async def test_report_references_never_collide(db):
    """MAX(seq) + 1 by twelve writers at once: twelve different numbers, 1..12."""

    async def file(i: int) -> int:
        async with db.transaction() as tx:
            record = await reports_repo.insert(
                tx,
                kind="hazard",
                category="pothole",
                description=f"坑 {i}",
                voice_file_id=None,
                lat=None,
                lon=None,
                place_text=None,
                compound=None,
                property_company=None,
                anonymous=False,
                reporter_id=100 + i,
                area="蒋村",
                origin_chat_id=None,
                now=NOW,
            )
            await asyncio.sleep(0.01)  # the transaction stays open while the others try
            return record.seq

    seqs = await asyncio.gather(*(file(i) for i in range(WRITERS)))
    assert sorted(seqs) == list(range(1, WRITERS + 1))


async def test_a_balance_is_spent_once(db):
    """Twelve adjustments of -10 against a balance of 10 at once: exactly one goes through."""
    core = Core(config=parse_config({}, env={}), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    svc = core.service(PointsService)
    await ledger.append(db, user_id=1, delta=10, reason="task_done", area=None, now=NOW, idem_key=None)
    results = await asyncio.gather(*(svc.adjust(1, -10, "兑换", 800) for _ in range(WRITERS)))
    assert [r.outcome for r in results].count(PointsOutcome.OK) == 1
    assert await svc.balance(1) == 0


async def test_each_due_row_is_leased_to_one_sender(db):
    """Twelve senders picking at once (two instances overlapping in a failover): every due row goes
    to exactly one of them, and a row leased to one is not picked by another until the lease lapses."""
    rows = [
        NewMessage("notice", f"k{i}", -1000 - i, {"method": "sendMessage", "params": {"text": "x"}}, NOW)
        for i in range(60)
    ]
    await outbox.enqueue(db, rows, NOW)
    taken: list[str] = []
    for n in range(10):  # rounds until nothing is left (a sender may find its picks taken meanwhile)
        picks = await asyncio.gather(
            *(outbox.fetch_due(db, NOW, 10, holder=f"sender-{n}-{i}") for i in range(WRITERS))
        )
        taken += [r.dedup_key for pick in picks for r in pick]
        if not any(picks) or db.dialect != "postgresql":
            break
    if db.dialect == "postgresql":
        assert len(taken) == len(set(taken)) == 60  # every row to exactly one sender
        # Leased: another sender finds nothing until the leases lapse, then everything.
        assert await outbox.fetch_due(db, NOW, 100, holder="late") == []
        lapsed = NOW + outbox.SEND_LEASE + dt.timedelta(seconds=1)
        assert len(await outbox.fetch_due(db, lapsed, 100, holder="late")) == 60
    # Whoever picked a row, only one sender can start sending it.
    row = await outbox.get_by_key(db, "k0")
    started = await asyncio.gather(
        *(outbox.start_sending(db, row.id, NOW, holder=f"other-{i}") for i in range(WRITERS))
    )
    assert started.count(True) <= 1


async def test_one_leader_among_many(db):
    ttl = dt.timedelta(seconds=10)
    won = await asyncio.gather(*(leader.acquire(db, "bot", f"i{i}", NOW, ttl) for i in range(WRITERS)))
    assert won.count(True) == 1
    winner = f"i{won.index(True)}"
    assert await leader.acquire(db, "bot", winner, NOW + dt.timedelta(seconds=5), ttl)  # renewed
    assert not await leader.acquire(db, "bot", "other", NOW + dt.timedelta(seconds=14), ttl)
    # Lapsed: one of the others takes over, exactly one.
    later = NOW + dt.timedelta(seconds=16)
    won = await asyncio.gather(*(leader.acquire(db, "bot", f"j{i}", later, ttl) for i in range(WRITERS)))
    assert won.count(True) == 1
    assert not await leader.acquire(db, "bot", winner, later, ttl)  # the old one is out
    assert (await leader.holder(db, "bot"))[0] == f"j{won.index(True)}"
