"""Free-text station search through the FTS5 trigram indexes (0012_station_search.sql): the same
stations in the same order as the plain `LIKE '%q%'` scan it replaced, for queries of any length,
kept in sync with inserts, edits and deactivations, backfilled by the migration, and never a scan of
the whole table."""

import datetime as dt
import random

import pytest

import storage.db
from storage import stations as repo
from storage.db import Database
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "t.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def plain_scan(db, query: str, limit: int, offset: int = 0) -> list[int]:
    """What search_text answered before the indexes (the reference; without NUL characters)."""
    like = "ILIKE" if db.dialect == "postgresql" else "LIKE"  # SQLite's LIKE ignores ASCII case
    rows = await db.fetchall(
        "SELECT id FROM stations WHERE active = 1"
        f" AND (name {like} ?1 ESCAPE '\\' OR address {like} ?1 ESCAPE '\\' OR area {like} ?1 ESCAPE '\\')"
        f" ORDER BY (name {like} ?1 ESCAPE '\\') DESC, name, id LIMIT ?2 OFFSET ?3",
        (_like(query.replace("\x00", "").strip()), limit, offset),
    )
    return [r[0] for r in rows]


async def ours(db, query: str, limit: int, offset: int = 0) -> list[int]:
    return [s.id for s in await repo.search_text(db, query, limit=limit, offset=offset)]


def station(i: int, name: str, address: str = "", area: str = "") -> repo.StationData:
    return repo.StationData(
        external_id=f"s{i}", name=name, lat=30.0 + i * 1e-4, lon=120.0, address=address, area=area
    )


# A small alphabet, so that queries of every length match many stations, few, or none; with ASCII
# in both cases, LIKE's own characters and a double quote (FTS5's phrase delimiter).
ALPHABET = "文三路厕所驿站古荡AbaB%_\"' "


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n)).strip() or "站"


async def fill_random(db, rng: random.Random, count: int) -> None:
    rows = [
        station(
            i,
            random_text(rng, rng.randint(1, 7)),
            random_text(rng, rng.randint(0, 9)),
            random_text(rng, rng.randint(0, 3)),
        )
        for i in range(count)
    ]
    await repo.insert_many(db, rows, NOW)
    # Some duplicate names (order by id among them), some deactivated, some edited.
    for sid in rng.sample(range(1, count + 1), count // 10):
        await repo.update_fields(db, sid, NOW, name="三路驿站")
    for sid in rng.sample(range(1, count + 1), count // 8):
        await repo.set_active(db, sid, False, NOW)
    for sid in rng.sample(range(1, count + 1), count // 8):
        await repo.update_fields(db, sid, NOW, address=random_text(rng, 6), area=random_text(rng, 2))
    for sid in rng.sample(range(1, count + 1), count // 20):
        await repo.set_active(db, sid, True, NOW)


QUERIES = [
    "文", "三", "路", "厕所", "文三", "驿站", "a", "A", "ab", "BA", "%", "_", "\"", "'", "%_", "A%",
    "文三路", "三路驿站", "abab", "路 厕", "\"文", "不存在", "ok", "zz", "古荡驿站厕所",
    # FTS5 query syntax is only ever text here; a NUL (which ends an FTS5 query) is dropped.
    "*", "^", "NEAR(", "AND", "a OR b", "文三*", "a\x00b",
]  # fmt: skip


@pytest.mark.parametrize("bounds", ["default", "tiny"])
async def test_same_stations_in_the_same_order_as_the_plain_scan(db, monkeypatch, bounds):
    if bounds == "tiny":  # few candidates: the walk in name order, and the walk running out
        monkeypatch.setattr(repo, "SEARCH_CANDIDATES", 3)
        monkeypatch.setattr(repo, "SEARCH_WALK", 12)
    rng = random.Random(12)
    await fill_random(db, rng, 400)
    queries = QUERIES + [random_text(rng, rng.randint(1, 4)) for _ in range(60)]
    for query in queries:
        for limit, offset in ((6, 0), (1, 0), (3, 2), (50, 0)):
            assert await ours(db, query, limit, offset) == await plain_scan(db, query, limit, offset), (
                query,
                limit,
                offset,
            )


async def test_names_first_then_address_and_area_by_name(db):
    await repo.insert_many(
        db,
        [
            station(1, "乙驿站", "文三路 1 号"),
            station(2, "甲驿站", area="文三街道"),
            station(3, "文三路驿站"),
            station(4, "丙厕所", "文三路 9 号"),
            station(5, "文三路厕所"),
        ],
        NOW,
    )
    names = [s.name for s in await repo.search_text(db, "文三", limit=10)]
    assert names == ["文三路厕所", "文三路驿站", "丙厕所", "乙驿站", "甲驿站"]
    assert [s.name for s in await repo.search_text(db, "厕所", limit=10)] == ["丙厕所", "文三路厕所"]
    assert [s.name for s in await repo.search_text(db, "所", limit=10)] == ["丙厕所", "文三路厕所"]


@pytest.mark.sqlite_only
async def test_index_follows_inserts_edits_and_deactivation(db):
    sid, _ = await repo.upsert(db, station(1, "蒋村花园驿站", "文一西路 1 号", "蒋村街道"), NOW)
    assert await ours(db, "花园", 5) == [sid]
    await repo.update_fields(db, sid, NOW, name="翠苑一区驿站", address="翠苑路 13 号")
    assert await ours(db, "花园", 5) == [] and await ours(db, "文一西路", 5) == []
    assert await ours(db, "翠苑一区", 5) == [sid] and await ours(db, "苑路", 5) == [sid]
    assert await ours(db, "蒋村", 5) == [sid]  # the area stayed
    # A re-import of the same external id updates it in place (the upsert's update fires the trigger).
    await repo.upsert(db, station(1, "古荡驿站", "古墩路 1 号", "古荡街道"), NOW)
    assert await ours(db, "翠苑", 5) == [] and await ours(db, "古墩路", 5) == [sid]
    assert await repo.set_active(db, sid, False, NOW)
    assert await ours(db, "古荡", 5) == [] and await ours(db, "古", 5) == []
    assert await repo.set_active(db, sid, True, NOW)
    assert await ours(db, "古荡", 5) == [sid] and await ours(db, "古", 5) == [sid]
    # The FTS tables hold exactly the active stations, nothing left behind by the edits.
    assert await db.fetchval("SELECT COUNT(*) FROM station_names_terms") == await db.fetchval(
        "SELECT LENGTH(name) FROM stations WHERE id = ?", (sid,)
    )
    # A station that starts inactive is not indexed until it is activated.
    other, _ = await repo.upsert(db, repo.StationData("s2", "厕所旁驿站", 30.1, 120.1, active=False), NOW)
    assert await ours(db, "厕所", 5) == []
    await repo.set_active(db, other, True, NOW)
    assert await ours(db, "厕所", 5) == [other]


@pytest.mark.sqlite_only
async def test_migration_indexes_the_stations_already_there(tmp_path, monkeypatch):
    everything = storage.db.available_migrations()
    monkeypatch.setattr(storage.db, "available_migrations", lambda: [m for m in everything if m[0] < 12])
    db = await Database(tmp_path / "old.sqlite3").open()
    try:
        await db.migrate()
        await repo.insert_many(
            db,
            [
                station(1, "文三路驿站", "西湖区文三路 90 号"),
                station(2, "古荡厕所", area="古荡街道"),
                station(3, "x"),
            ],
            NOW,
        )
        await db.execute("UPDATE stations SET active = 0 WHERE id = 3")
        monkeypatch.setattr(storage.db, "available_migrations", lambda: everything)
        assert "0012_station_search" in await db.migrate()
        assert [
            r[0]
            for r in await db.fetchall(
                "SELECT rowid FROM station_names WHERE station_names MATCH '\"文三路\"'"
            )
        ] == [1]
        assert await ours(db, "古荡街道", 5) == [2] and await ours(db, "厕", 5) == [2]
        assert await ours(db, "x", 5) == []
        await repo.set_active(db, 3, True, NOW)  # removing/adding it works on the backfilled index
        assert await ours(db, "x", 5) == [3]
    finally:
        await db.close()


class Recorder:
    """An Executor that remembers each statement it runs."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.statements: list[tuple[str, tuple]] = []

    async def fetchall(self, sql, params=()):
        self.statements.append((sql, tuple(params)))
        return await self.db.fetchall(sql, params)

    async def fetchone(self, sql, params=()):
        self.statements.append((sql, tuple(params)))
        return await self.db.fetchone(sql, params)

    async def fetchval(self, sql, params=()):
        self.statements.append((sql, tuple(params)))
        return await self.db.fetchval(sql, params)


@pytest.mark.sqlite_only
@pytest.mark.parametrize("query", ["文三路", "驿站", "厕", "不存在的地方", "ab"])
@pytest.mark.parametrize("bounds", ["default", "tiny"])
async def test_no_statement_reads_the_whole_stations_table(db, monkeypatch, query, bounds):
    if bounds == "tiny":
        monkeypatch.setattr(repo, "SEARCH_CANDIDATES", 2)
    rng = random.Random(3)
    await fill_random(db, rng, 300)
    await db.execute("ANALYZE")  # whatever the planner learns, it keeps to the indexes
    recorder = Recorder(db)
    await repo.search_text(recorder, query, limit=6)
    assert recorder.statements
    for sql, params in recorder.statements:
        plan = [r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params)]
        # A scan is only ever of an index (the walk in name order, bounded by its LIMIT) or of FTS.
        assert not [step for step in plan if step.startswith("SCAN stations") and "INDEX" not in step], (
            sql,
            plan,
        )
        assert all("INDEX stations_text" in step for step in plan if step.startswith("SCAN stations")), plan
