"""`xiaoge-bot db copy`: a SQLite deployment built through the bot's own services (stations, reports,
tasks with claims, the points ledger with its monthly totals, meetings with answers and topics, the
outbox) is copied into a scratch PostgreSQL database; every table's rows are compared (not only
counted), and the bot's services answer the same on both. A second run changes nothing; a target
holding other data is refused (exit 2) unless --force; a bad URL is one line and exit 2; a row count
that does not match is shown and exits 1.

The source is a SQLite file whatever engine the suite runs on (that is the point), so it is opened
with `Database` itself. Needs PostgreSQL: skipped (saying why) when tests/dbs.py cannot reach it,
unless XIAOGE_TEST_PG_REQUIRED=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.recurrence import rrule_weekly
from bot.meetings.service import MeetingDraft, MeetingService
from bot.points import PointsService
from bot.reports.service import ReportDraft, ReportService
from bot.stations import importer
from bot.stations.service import StationService
from bot.tasks import Outcome, TaskDraft, TaskService
from storage import copy as copier
from storage import groups, outbox, users
from storage import points as ledger
from storage.db import Database
from storage.pg import PgDatabase
from tests import dbs

ROOT = Path(__file__).resolve().parents[1]
PG_REQUIRED = os.environ.get("XIAOGE_TEST_PG_REQUIRED") == "1"

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
ADMIN, MOD, CAPTAIN = 900, 901, 902
COURIERS = (1001, 1002, 1003, 1004)
GROUP = -1001
LAT, LON = 30.2590, 120.1300
# What only SQLite has (its FTS5 station search) or each side keeps for itself.
NOT_COPIED = {"schema_migrations", "sqlite_sequence"}


@pytest.fixture
async def scratch():
    """Makes scratch PostgreSQL databases (URLs), dropped afterwards."""
    reason = await dbs.check_reachable()
    if reason:
        if PG_REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    made: list[str] = []

    async def make() -> str:
        name = f"xgt_copy_{os.getpid()}_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(dbs.admin_url())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        made.append(name)
        return urlunsplit(urlsplit(dbs.admin_url())._replace(path="/" + name))

    yield make
    admin = await asyncpg.connect(dbs.admin_url())
    try:
        for name in made:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pg_url(scratch):
    return await scratch()


def make_core(db: Any, clock: FakeClock) -> Core:
    config = parse_config({"bot": {"admins": [ADMIN], "moderator_chat_id": -100900}}, env={})
    return Core(config=config, clock=clock, db=db, catalog=Catalog.load())


async def build_deployment(path: Path) -> None:
    """A small district, through the services: what a few weeks of use leave in the database."""
    clock = FakeClock(NOW)
    async with Database(path) as db:
        await db.migrate()
        core = make_core(db, clock)
        for user_id in (ADMIN, MOD, CAPTAIN, *COURIERS):
            await users.touch(
                db, user_id=user_id, first_name=f"小哥{user_id}", last_name=None, username=None,
                language_code="zh", now=NOW, private_chat=True,
            )  # fmt: skip
        await groups.upsert(
            db, chat_id=GROUP, title="蒋村骑手群", type="supergroup", active=True,
            bot_status="member", can_pin=False, now=NOW,
        )  # fmt: skip
        await groups.set_area(db, GROUP, "蒋村街道", NOW)

        assert (await importer.import_file(core, ROOT / "data/stations.demo.csv")).errors == []

        reports = core.service(ReportService)
        hazard = await reports.submit(
            COURIERS[0],
            ReportDraft(kind="hazard", category="road_damage", description="文三路大坑", lat=LAT, lon=LON),
        )
        grievance = await reports.submit(
            COURIERS[1],
            ReportDraft(
                kind="grievance", category="access", description="保安不让电动车进小区",
                compound="西溪花园", property_company="绿城物业", area="蒋村街道",
            ),
        )  # fmt: skip
        await reports.add_supporter(hazard.id, COURIERS[2])
        assert (await reports.transition(hazard.id, "ack", MOD)).changed
        assert (await reports.transition(grievance.id, "resolve", MOD, note="已和物业谈好")).changed

        tasks = core.service(TaskService)
        task = await tasks.publish(
            TaskDraft(
                title="助老送餐", description="给独居老人送午饭", starts_at=NOW + dt.timedelta(days=2),
                place_text="蒋村街道文新社区", area="蒋村街道", slots=2, points=10,
                private_details="王奶奶 文新路 8 号",
            ),
            CAPTAIN,
            (GROUP,),
        )  # fmt: skip
        assert (await tasks.claim(task.id, COURIERS[0])).outcome == Outcome.CLAIMED
        assert (await tasks.claim(task.id, COURIERS[1])).outcome == Outcome.CLAIMED
        assert (await tasks.join_waitlist(task.id, COURIERS[2])).outcome == Outcome.WAITLISTED
        clock.set(NOW + dt.timedelta(days=2, hours=3))
        assert (await tasks.mark(task.id, COURIERS[0], True, CAPTAIN)).outcome == Outcome.OK

        points = core.service(PointsService)
        await points.adjust(COURIERS[1], 7, "帮忙搬物资", ADMIN)
        code = (await points.request_code(COURIERS[0], 4)).code
        assert code is not None
        await points.confirm_code(code.code, ADMIN)

        meetings = core.service(MeetingService)
        meeting = (
            await meetings.create(
                MeetingDraft(
                    title="小哥议事会", first_start=dt.datetime(2026, 11, 30, 14, 30), organizer_id=CAPTAIN,
                    rrule=rrule_weekly(0), place="蒋村驿站", chat_ids=(GROUP,), areas=("蒋村街道",),
                )
            )
        ).meeting  # fmt: skip
        first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=dt.UTC)
        await meetings.rsvp(meeting.id, first, COURIERS[0], "yes")
        await meetings.add_topic(meeting.id, first, COURIERS[1], "东门电动车能否临时停放")

        # a few outbox rows delivered, as the worker would have done
        for row in await outbox.fetch_due(db, clock.now(), 3):
            assert await outbox.start_sending(db, row.id, clock.now())
            await outbox.mark_sent(db, row.id, 5000 + row.id, clock.now())


def sqlite_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every copied table's rows (all columns, generated ones too), sorted."""
    with sqlite3.connect(path) as conn:
        master = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        virtual = [n for n, sql in master if sql.upper().startswith("CREATE VIRTUAL TABLE")]
        names = [
            n
            for n, _ in master
            if n not in NOT_COPIED and n not in virtual and not any(n.startswith(v + "_") for v in virtual)
        ]
        return {n: sorted(map(tuple, conn.execute(f'SELECT * FROM "{n}"')), key=repr) for n in names}


async def pg_tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        names = [
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            if r[0] not in NOT_COPIED
        ]
        return {
            n: sorted((tuple(r) for r in await conn.fetch(f'SELECT * FROM "{n}"')), key=repr) for n in names
        }
    finally:
        await conn.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


async def answers(db: Any) -> dict[str, Any]:
    """What the bot's services read from a database."""
    core = make_core(db, FakeClock(NOW + dt.timedelta(days=3)))
    points, reports = core.service(PointsService), core.service(ReportService)
    tasks, stations = core.service(TaskService), core.service(StationService)
    meetings = core.service(MeetingService)
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=dt.UTC)
    found = {
        "balances": [await points.balance(u) for u in COURIERS],
        "history": [(e.delta, e.reason) for e in await points.history(COURIERS[0])],
        "rank": [repr(r) for r in (await points.rank(COURIERS[0])).top],
        "reports": [],
        "nearest": [(f.station.id, f.station.name) for f in await stations.nearest(LAT, LON, radius_m=5000)],
        "roster": [(r.claim.user_id, r.claim.state, r.name) for r in await tasks.roster(1)],
        "meetings": [(m.id, m.title) for m in await meetings.active_meetings()],
        "topics": [t.text for t in await meetings.topics(1, first)],
    }
    for ref in ("H-0001", "G-0001"):
        report = await reports.get_by_ref(ref)
        assert report is not None, ref
        found["reports"].append((report.id, report.status, report.supporters, report.description))
    return found


async def test_copy_sqlite_to_postgresql_same_rows_same_answers_twice(tmp_path, pg_url):
    source = tmp_path / "district.sqlite3"
    await build_deployment(source)

    result = await copier.copy_database(f"sqlite:{source}", pg_url)
    assert result.ok and result.mode == "new", result.lines()
    before = sqlite_tables(source)
    copied = await pg_tables(pg_url)
    # every table of the deployment, and nothing of SQLite's own search index
    assert set(copied) == set(before)
    assert {t.table for t in result.tables} == set(before)
    assert not {"station_names", "station_places", "station_names_terms"} & set(copied)
    assert all(before[n] for n in ("stations", "reports", "task_claims", "points_ledger", "meeting_rsvps"))
    assert all(before[n] for n in ("outbox", "points_month_users", "report_events", "meeting_topics"))
    for name in before:
        assert copied[name] == before[name], name  # the monthly totals too: not counted twice

    async with Database(source) as sdb, PgDatabase(pg_url) as pdb:
        on_sqlite, on_pg = await answers(sdb), await answers(pdb)
        assert on_pg == on_sqlite
        assert on_pg["nearest"] and on_pg["rank"] and on_pg["roster"]

    # twice: the same result, nothing added
    again = await copier.copy_database(f"sqlite:{source}", pg_url)
    assert again.ok and again.mode == "resumed" and again.added == 0
    assert await pg_tables(pg_url) == copied

    # the bot carries on on PostgreSQL: new ids follow the copied ones, the triggers are back on
    async with PgDatabase(pg_url) as pdb:
        core = make_core(pdb, FakeClock(NOW + dt.timedelta(days=4)))
        for table, column in await pdb.fetchall(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE a.attidentity <> '' AND c.relnamespace = current_schema()::regnamespace"
        ):
            highest = await pdb.fetchval(f'SELECT MAX("{column}") FROM "{table}"')
            following = await pdb.fetchval("SELECT nextval(pg_get_serial_sequence(?, ?))", (table, column))
            assert following == (highest or 0) + 1, table
        highest = await pdb.fetchval("SELECT MAX(id) FROM points_ledger")
        balance = await core.service(PointsService).balance(COURIERS[1])
        later = NOW + dt.timedelta(days=4)
        await ledger.append(
            pdb, user_id=COURIERS[1], delta=3, reason="adjust", area=None, now=later, idem_key=None
        )
        assert await core.service(PointsService).balance(COURIERS[1]) == balance + 3
        assert await pdb.fetchval("SELECT MAX(id) FROM points_ledger") > highest
        month = await pdb.fetchval(
            "SELECT earned FROM points_month_users WHERE user_id = ? ORDER BY month_start DESC LIMIT 1",
            (COURIERS[1],),
        )
        assert month == dict((r[1], r[2]) for r in before["points_month_users"])[COURIERS[1]] + 3
        with pytest.raises(asyncpg.exceptions.RestrictViolationError):
            await pdb.execute("DELETE FROM points_ledger")


async def test_copy_back_to_sqlite_and_between_postgresql_databases(tmp_path, pg_url, scratch):
    source = tmp_path / "district.sqlite3"
    await build_deployment(source)
    assert (await copier.copy_database(f"sqlite:{source}", pg_url)).ok
    other = await scratch()
    between = await copier.copy_database(pg_url, other)
    assert between.ok and between.mode == "new", between.lines()
    assert await pg_tables(other) == await pg_tables(pg_url)
    back = tmp_path / "back.sqlite3"
    result = await copier.copy_database(pg_url, f"sqlite:{back}")
    assert result.ok, result.lines()
    assert sqlite_tables(back) == sqlite_tables(source)  # the month totals rebuilt once, not twice
    async with Database(back) as db:
        # SQLite's own search index was rebuilt by its triggers while the stations went in
        assert await db.fetchval("SELECT COUNT(*) FROM station_names") == len(
            sqlite_tables(source)["stations"]
        )


def test_non_empty_target_refused_unless_force(tmp_path, pg_url):
    import asyncio

    source = tmp_path / "district.sqlite3"
    asyncio.run(build_deployment(source))

    async def stray() -> None:
        async with PgDatabase(pg_url) as db:
            await db.migrate()
            await db.execute(
                "INSERT INTO users(id, first_name, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                (77, "别的片区", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"),
            )

    asyncio.run(stray())
    refused = run_cli("db", "copy", "--from", f"sqlite:{source}", "--to", pg_url)
    assert refused.returncode == 2, refused.stderr
    lines = [x for x in refused.stderr.splitlines() if "INFO" not in x]
    assert len(lines) == 1 and "users (1)" in lines[0] and "--force" in lines[0], refused.stderr
    assert asyncio.run(pg_tables(pg_url))["stations"] == []  # nothing written

    forced = run_cli("db", "copy", "--from", f"sqlite:{source}", "--to", pg_url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "row counts match" in forced.stdout and "MISMATCH" not in forced.stdout
    assert "users " in forced.stdout and "OK" in forced.stdout
    assert asyncio.run(pg_tables(pg_url)) == sqlite_tables(source)  # the stray user is gone


def test_a_count_mismatch_is_shown_and_exits_1(tmp_path, pg_url, monkeypatch, capsys):
    import asyncio

    from bot.cli import main

    source = tmp_path / "district.sqlite3"
    asyncio.run(build_deployment(source))
    real = copier._PgWriter.insert

    async def lossy(self, table, batches):
        async def drop_first():
            first = True
            async for batch in batches:
                yield batch[1:] if first and table.name == "users" else batch
                first = False

        return await real(self, table, drop_first())

    monkeypatch.setattr(copier._PgWriter, "insert", lossy)
    assert main(["db", "copy", "--from", f"sqlite:{source}", "--to", pg_url]) == 1
    out = capsys.readouterr().out
    users_line = next(x for x in out.splitlines() if x.startswith("users "))
    assert users_line.split()[1:] == [str(len(COURIERS) + 3), str(len(COURIERS) + 2), "MISMATCH"]
    assert "MISMATCH in users" in out


def test_bad_urls_are_one_line_with_exit_2(tmp_path):
    import asyncio

    source = tmp_path / "district.sqlite3"

    async def migrated() -> None:
        async with Database(source) as db:
            await db.migrate()

    asyncio.run(migrated())
    cases = [
        (["--from", "mysql://x/y", "--to", "postgresql:///x"], "--from: not a database"),
        (["--from", f"sqlite:{tmp_path / 'nope.sqlite3'}", "--to", "postgresql:///x"], "no such file"),
        (["--from", f"sqlite:{source}", "--to", "postgresql://nobody@127.0.0.1:1/x"], "cannot reach"),
        (["--from", f"sqlite:{source}", "--to", f"sqlite:{source}"], "same database"),
    ]
    for args, words in cases:
        result = run_cli("db", "copy", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_a_sqlite_file_that_is_not_a_deployment_is_refused(tmp_path, pg_url):
    source = tmp_path / "other.sqlite3"
    sqlite3.connect(source).close()
    with pytest.raises(copier.CopyRefused, match="not a xiaoge-bot database"):
        await copier.copy_database(f"sqlite:{source}", pg_url)
