"""The wish wall read one page at a time (0032_wall_and_rank.sql): the same tasks in the same order as
reading every open task and sorting them (soonest first; nearest first with pinned tasks before the
others), on every page, in one area too, while reading only the page's tasks and never sorting or
scanning the tasks table."""

import datetime as dt
import math
import random

import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.geo import LatLon, distance_m
from bot.tasks import TaskService
from storage import tasks as store
from storage.db import Database, from_db, to_db
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
HERE = (30.2741, 120.1551)


@pytest.fixture
async def core(tmp_path):
    db = await make_database(tmp_path / "t.sqlite3").open()
    await db.migrate()
    yield Core(config=parse_config({}, env={}), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    await db.close()


@pytest.fixture
def svc(core) -> TaskService:
    return core.service(TaskService)


async def add_tasks(core, rng: random.Random, count: int) -> None:
    """Open, full, closed, cancelled and completed tasks; past and future; deadlines passed or not;
    pinned around Hangzhou (some far away, some on the same spot and time) or not; a few areas."""
    db = core.db
    spots = [(HERE[0] + rng.uniform(-0.3, 0.3), HERE[1] + rng.uniform(-0.3, 0.3)) for _ in range(count // 4)]
    for i in range(count):
        starts = NOW + dt.timedelta(minutes=rng.choice([-600, -5, 30, 30, 90]) + rng.randint(0, 20_000))
        deadline = rng.choice([None, None, starts - dt.timedelta(hours=rng.randint(1, 400))])
        pin = rng.random()
        if pin < 0.6:
            lat, lon = rng.choice(spots)
        elif pin < 0.65:
            lat, lon = rng.uniform(-60, 60), rng.uniform(-179, 179)
        else:
            lat = lon = None
        task_id = await store.insert(
            db,
            title=f"t{i}",
            description="",
            starts_at=starts,
            ends_at=None,
            place_text="",
            lat=lat,
            lon=lon,
            area=rng.choice([None, "蒋村", "文新"]),
            slots=2,
            points=1,
            claim_deadline=deadline,
            private_details=None,
            created_by=1,
            now=NOW,
        )
        state = rng.choice(["open"] * 5 + ["full", "closed", "cancelled", "completed"])
        if state != "open":
            await store.set_state(db, task_id, state, ["open"], NOW)
        if rng.random() < 0.3:
            await store.take_slot(db, task_id, 77, ["withdrawn"], NOW)


async def reference(core, location, area):
    """The wall as it was computed before: every task taking claims, sorted in Python."""
    stamp = to_db(core.clock.now())
    rows = await core.db.fetchall(
        "SELECT id, starts_at, lat, lon, area FROM tasks WHERE state IN ('open', 'full') AND starts_at > ?"
        " AND (claim_deadline IS NULL OR claim_deadline > ?) ORDER BY starts_at, id",
        (stamp, stamp),
    )
    rows = [r for r in rows if area is None or r["area"] == area]
    items = [(r["id"], None) for r in rows]
    if location is not None:
        here = LatLon(*location)
        items = [
            (r["id"], None if r["lat"] is None else distance_m(here, LatLon(r["lat"], r["lon"])))
            for r in rows
        ]
        starts = {r["id"]: from_db(r["starts_at"]) for r in rows}
        items.sort(key=lambda x: (x[1] is None, x[1] or 0.0, starts[x[0]]))
    return items


@pytest.mark.parametrize("area", [None, "蒋村"])
async def test_every_page_as_the_full_sort_gave_it(core, svc, area):
    rng = random.Random(7)
    await add_tasks(core, rng, 600)
    core.clock.advance(minutes=40)
    located = core.clock.now() - dt.timedelta(minutes=5)
    points = [HERE, (30.5, 119.9), (29.0, 121.0), (0.0, 0.0), (-33.9, 151.2)]
    for location in [None, *points]:
        expected = await reference(core, location, area)
        size = core.config.tasks.page_size
        pages = max(1, math.ceil(len(expected) / size))
        for page in sorted({0, 1, 2, pages // 3, pages // 2, max(0, pages - 2), pages - 1, pages + 3}):
            got = await svc.wall(page, location=location, located_at=located if location else None, area=area)
            assert (got.total, got.pages, got.by_distance) == (len(expected), pages, location is not None)
            shown = min(page, pages - 1)
            want = expected[shown * size : (shown + 1) * size]
            assert [(i.count.task.id, i.distance_m) for i in got.items] == want, (location, page)


async def test_counts_on_the_wall_are_the_claims(core, svc):
    rng = random.Random(3)
    await add_tasks(core, rng, 60)
    page = await svc.wall(0)
    for item in page.items:
        claims = await store.claims(core.db, item.count.task.id)
        assert item.count.taken == sum(1 for c in claims if c.state == "claimed")


class Recorder:
    """The Database, remembering each statement and how many rows it returned."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.seen: list[tuple[str, tuple, int]] = []

    async def fetchall(self, sql, params=()):
        rows = await self.db.fetchall(sql, params)
        self.seen.append((sql, tuple(params), len(rows)))
        return rows

    async def fetchone(self, sql, params=()):
        row = await self.db.fetchone(sql, params)
        self.seen.append((sql, tuple(params), int(row is not None)))
        return row

    async def fetchval(self, sql, params=()):
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("location", [None, HERE])
@pytest.mark.parametrize("area", [None, "文新"])
async def test_a_page_reads_only_its_tasks_through_the_indexes(core, svc, location, area):
    rng = random.Random(11)
    await add_tasks(core, rng, 1500)
    recorder = Recorder(core.db)
    core.db = recorder  # the service reads through core.db
    try:
        located = core.clock.now() if location else None
        for page in (0, 1, 4):
            recorder.seen.clear()
            got = await svc.wall(page, location=location, located_at=located, area=area)
            assert got.total > 200 and len(got.items) == core.config.tasks.page_size
            # Rows that reach Python: the counts, one page of ids, the page's tasks, and for the
            # nearest order the pinned tasks in boxes around the courier: never every open task.
            read = sum(n for _, _, n in recorder.seen)
            assert read < 200 and read < got.total / 2, [(s[:60], n) for s, _, n in recorder.seen]
            for sql, params, _ in recorder.seen:
                plan = [r[3] for r in await recorder.db.fetchall("EXPLAIN QUERY PLAN " + sql, params)]
                if "t.id IN (" not in sql:  # (the page's own tasks, sorted: at most a page of them)
                    assert not [s for s in plan if "TEMP B-TREE" in s], (sql, plan)
                for step in plan:
                    if " tasks " in f" {step} " and step.startswith(("SCAN", "SEARCH")):
                        assert "COVERING INDEX tasks_wall" in step or "PRIMARY KEY" in step, (sql, plan)
    finally:
        core.db = recorder.db
