"""The monthly rank from per-month totals (0032_wall_and_rank.sql): written with every ledger row by a
trigger, so they always equal the ledger; backfilled by the migration; rebuilt for a month of another
time zone; the same places as summing the month's ledger rows, without reading them."""

import datetime as dt
import random

import pytest

import storage.db
from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.points import RANK_SIZE, PointsService
from storage import points as ledger
from storage.db import Database, to_db
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
MONTH = dt.datetime(2026, 10, 31, 16, 0, tzinfo=dt.UTC)  # 1 Nov 00:00 in Asia/Shanghai


def make_core(db: Database, timezone: str = "Asia/Shanghai") -> Core:
    config = parse_config({"bot": {"timezone": timezone}}, env={})
    return Core(config=config, clock=FakeClock(NOW), db=db, catalog=Catalog.load())


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "t.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


async def reference(db, start: dt.datetime, end: dt.datetime, area: str | None) -> list[tuple[int, int]]:
    """The rank as it was computed before: the month's ledger rows summed per user."""
    sql = (
        "SELECT user_id, SUM(delta) AS earned FROM points_ledger"
        " WHERE reason <> 'redeem' AND created_at >= ? AND created_at < ?"
    )
    params: list[object] = [to_db(start), to_db(end)]
    if area is not None:
        sql += " AND area = ?"
        params.append(area)
    sql += " GROUP BY user_id HAVING SUM(delta) > 0 ORDER BY earned DESC, MIN(created_at), user_id"
    return [(r[0], r[1]) for r in await db.fetchall(sql, params)]


async def fill(db, rng: random.Random, count: int, around: dt.datetime = MONTH) -> None:
    """Credits, corrections (negative too) and redemptions of 40 users in three areas, over three
    months, many on the same second (ties) and right on the month's edges."""
    rows = []
    for i in range(count):
        at = around + dt.timedelta(seconds=rng.choice([-1, 0, 1, 3600]) + rng.randint(-40, 40) * 86400 // 2)
        rows.append(
            dict(
                user_id=rng.randint(1, 40),
                delta=rng.choice([1, 2, 5, 10, 10, -3, -10]),
                reason=rng.choice(["task_done", "task_done", "adjust", "redeem", "report_valid"]),
                area=rng.choice([None, "蒋村", "文新"]),
                now=at,
                idem_key=f"k{i}",
            )
        )
    for row in rows:
        await ledger.append(db, **row)


async def check_every_rank(core, months, users=range(0, 42)):
    svc = core.service(PointsService)
    for month in months:
        start, end = svc.month_bounds(month)
        for area in (None, "蒋村", "文新", "nowhere"):
            expected = await reference(core.db, start, end, area)
            places = {uid: (place, pts) for place, (uid, pts) in enumerate(expected, 1)}
            for user in users:
                board = await svc.rank(user, month=month, area=area)
                assert [(e.place, e.user_id, e.points) for e in board.top] == [
                    (p, u, pts) for p, (u, pts) in enumerate(expected[:RANK_SIZE], 1)
                ]
                own = None if board.own is None else (board.own.place, board.own.points)
                assert own == places.get(user), (month, area, user)


MONTHS = [dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 12, 1)]


async def test_places_are_the_sums_of_the_ledger(db):
    await fill(db, random.Random(5), 900)
    await check_every_rank(make_core(db), MONTHS)


async def test_totals_always_equal_the_ledger(db):
    await fill(db, random.Random(6), 300)
    # The bulk path (imports, benchmarks) goes through the same statement and the same trigger.
    rng = random.Random(16)
    bulk = [
        ledger.NewEntry(
            user_id=rng.randint(1, 50),
            delta=rng.choice([5, -5, 10]),
            reason=rng.choice(["task_done", "adjust", "redeem"]),
            created_at=MONTH + dt.timedelta(hours=rng.randint(-900, 900)),
            area=rng.choice([None, "蒋村"]),
            idem_key=f"bulk{i}",
        )
        for i in range(300)
    ]
    assert await ledger.append_many(db, bulk) == 300
    # A credit given twice is written once; a rolled-back transaction leaves no total behind.
    assert not await ledger.append(db, user_id=1, delta=5, reason="task_done", now=MONTH, idem_key="k1")
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await ledger.append(tx, user_id=1, delta=500, reason="task_done", now=MONTH, idem_key="boom")
            raise RuntimeError("rolled back")
    totals = await db.fetchall(
        "SELECT month_start, user_id, earned, first_at FROM points_month_users ORDER BY 1, 2"
    )
    expected = await db.fetchall(
        "SELECT m.start_at, l.user_id, SUM(l.delta), MIN(l.created_at) FROM points_ledger l"
        " JOIN points_months m ON l.created_at >= m.start_at AND l.created_at < m.end_at"
        " WHERE l.reason <> 'redeem' GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert [tuple(r) for r in totals] == [tuple(r) for r in expected] and len(totals) > 40
    area_totals = await db.fetchall(
        "SELECT month_start, area, user_id, earned, first_at FROM points_month_areas ORDER BY 1, 2, 3"
    )
    area_expected = await db.fetchall(
        "SELECT m.start_at, l.area, l.user_id, SUM(l.delta), MIN(l.created_at) FROM points_ledger l"
        " JOIN points_months m ON l.created_at >= m.start_at AND l.created_at < m.end_at"
        " WHERE l.reason <> 'redeem' AND l.area IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    assert [tuple(r) for r in area_totals] == [tuple(r) for r in area_expected] and len(area_totals) > 40


@pytest.mark.sqlite_only
async def test_migration_totals_the_ledger_already_there(tmp_path, monkeypatch):
    everything = storage.db.available_migrations()
    monkeypatch.setattr(storage.db, "available_migrations", lambda: [m for m in everything if m[0] < 32])
    db = await Database(tmp_path / "old.sqlite3").open()
    try:
        await db.migrate()
        await fill(db, random.Random(7), 400)
        monkeypatch.setattr(storage.db, "available_migrations", lambda: everything)
        assert "0032_wall_and_rank" in await db.migrate()
        assert await db.fetchval("SELECT COUNT(*) FROM points_month_users") > 40
        assert await db.fetchval("SELECT COUNT(*) FROM points_month_areas") > 40
        core = make_core(db)
        await check_every_rank(core, MONTHS, users=range(0, 42, 5))
        # No month was rebuilt: the migration's totals were used as they were.
        assert await db.fetchval("SELECT COUNT(*) FROM points_months") == 1212
        await fill(db, random.Random(8), 100)  # and the trigger carries on from there
        await check_every_rank(core, MONTHS, users=range(0, 42, 5))
    finally:
        await db.close()


async def test_another_time_zone_gets_its_months_built_once_and_kept(db):
    await fill(db, random.Random(9), 500)
    core = make_core(db, "Europe/Berlin")
    berlin = [dt.date(2026, 11, 1), dt.date(2026, 10, 1)]
    await check_every_rank(core, berlin, users=range(0, 42, 7))
    # Each Berlin month replaced the UTC+8 months it overlaps.
    starts = [
        r[0] for r in await db.fetchall("SELECT start_at FROM points_months WHERE start_at LIKE '2026-%'")
    ]
    assert "2026-10-31T23:00:00.000000Z" in starts and "2026-09-30T22:00:00.000000Z" in starts
    assert "2026-10-31T16:00:00.000000Z" not in starts
    await fill(db, random.Random(10), 200)  # new rows land in the Berlin months
    await check_every_rank(core, berlin, users=range(0, 42, 7))
    assert (
        await db.fetchval("SELECT COUNT(*) FROM points_months WHERE start_at = '2026-10-31T23:00:00.000000Z'")
        == 1
    )


class Recorder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.statements: list[str] = []

    async def fetchall(self, sql, params=()):
        self.statements.append(sql)
        return await self.db.fetchall(sql, params)

    async def fetchone(self, sql, params=()):
        self.statements.append(sql)
        return await self.db.fetchone(sql, params)

    async def fetchval(self, sql, params=()):
        self.statements.append(sql)
        return await self.db.fetchval(sql, params)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("area", [None, "蒋村"])
async def test_a_rank_reads_the_totals_not_the_ledger(db, area):
    await fill(db, random.Random(4), 300)
    core = make_core(db)
    recorder = Recorder(db)
    core.db = recorder
    try:
        board = await core.service(PointsService).rank(7, month=dt.date(2026, 11, 1), area=area)
    finally:
        core.db = db
    assert board.top and recorder.statements
    assert not [s for s in recorder.statements if "points_ledger" in s]
    for sql in recorder.statements:
        if "points_month" in sql:
            plan = [r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?"))]
            assert all("COVERING INDEX points_month" in s or "PRIMARY KEY" in s for s in plan), (sql, plan)
