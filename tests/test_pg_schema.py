"""The PostgreSQL baseline (storage/migrations/postgresql/) builds the schema the SQLite migrations build.

Both are applied for real (`Database.migrate()` on a temp SQLite file, `PgDatabase.migrate()` on a
scratch database created for this run and dropped after it), read back from the catalogs, and
compared: tables, columns in order with compatible types, nullability, defaults and generated
columns, primary keys, unique constraints and indexes by column list (partial ones with their
predicate), the other indexes by name, foreign keys, CHECK constraints, triggers. The triggers'
effects are spot-checked on both engines (the ledger stays append-only; a ledger row moves the
monthly totals alike), and so are the seeded months and the stations' generated latitude cell.

Needs a PostgreSQL server: env XIAOGE_TEST_PG_URL, else the local socket as the current user. Without
one the tests are skipped (saying why), unless XIAOGE_TEST_PG_REQUIRED=1, which makes them fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from storage.db import Database
from storage.pg import PgDatabase, after_parenthesis, redact

DEFAULT_PG_URL = "postgresql:///postgres?host=/var/run/postgresql"
PG_URL = os.environ.get("XIAOGE_TEST_PG_URL") or DEFAULT_PG_URL
PG_REQUIRED = os.environ.get("XIAOGE_TEST_PG_REQUIRED") == "1"

# SQLite-only objects and what stands for them in PostgreSQL (see the baseline's header).
FTS_TABLES = {"station_names", "station_places", "station_names_terms", "station_places_terms"}
FTS_TRIGGERS = {"stations_search_insert", "stations_search_update", "stations_search_delete"}
TRIGRAM_INDEXES = {"stations_name_trgm", "stations_places_trgm"}
PG_ONLY_TRIGGERS = {"points_ledger_no_truncate"}  # TRUNCATE has no SQLite twin

# Keys that are Telegram ids (or a version number), given by the caller: never an identity column.
GIVEN_KEYS = {
    ("users", "id"),
    ("groups", "chat_id"),
    ("ptb_user_data", "user_id"),
    ("ptb_chat_data", "chat_id"),
    ("schema_migrations", "version"),
    ("meeting_plans", "meeting_id"),
}
# INTEGER columns that hold ids or 64 bits in SQLite, besides id, *_id and *_by: BIGINT. Every other
# INTEGER column stays INTEGER (flags, counters, amounts: SUM over them is BIGINT, read as int).
WIDE_INTEGERS = {("groups", "migrated_to"), ("reports", "duplicate_of"), ("stations", "facility_mask")}

# SQLite migrations written on branches that have not landed yet; the PostgreSQL baseline already has
# what they create. While a file is missing here, exactly these differences are expected (and must
# still be there: a stale entry fails). Delete an entry once its file is on main.
PENDING: dict[str, set[tuple[Any, ...]]] = {}


# -- a schema as facts ---------------------------------------------------------------------------


@dataclass
class Schema:
    """Facts keyed for comparison: ("table", t), ("column", t, c), ("key", t) (primary key and unique
    column lists), ("index", name), ("fks", t), ("checks", t), ("trigger", name)."""

    facts: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # Details the comparison does not share between engines.
    integer_columns: dict[tuple[str, str], str] = field(default_factory=dict)  # PG only: type
    identity: set[tuple[str, str]] = field(default_factory=set)
    rowid_keys: set[tuple[str, str]] = field(default_factory=set)  # SQLite: INTEGER PRIMARY KEY
    text_collations: dict[tuple[str, str], str | None] = field(default_factory=dict)
    sqlite_only: set[str] = field(default_factory=set)  # FTS tables and their shadow tables


def _strip_sql(sql: str) -> str:
    """SQL without comments."""
    return re.sub(r"--[^\n]*", "", sql)


def _norm_expr(text: str | None) -> str | None:
    """A predicate, CHECK or default as either engine writes it, in one spelling."""
    if text is None:
        return None
    text = re.sub(r"::[a-z]+( precision| varying)?(\[\])?", "", text)  # PostgreSQL's casts
    # PostgreSQL writes `x IN (a, b)` as `x = ANY (ARRAY[a, b])`, `x BETWEEN a AND b` as two bounds.
    text = re.sub(r"(\w+) = ANY \(ARRAY\[(.*?)\]\)", r"\1 IN (\2)", text)
    text = re.sub(r"(\w+) BETWEEN (\S+) AND (\S+)", r"\1 >= \2 AND \1 <= \3", text)
    text = re.sub(r"'(-?\d+(?:\.\d+)?)'", r"\1", text)  # '-90' (a cast number) -> -90
    return re.sub(r"[\s()]", "", text).lower()


def _checks(create_sql: str) -> list[str]:
    """The bodies of the CHECK constraints in a CREATE TABLE (SQLite keeps no catalog of them)."""
    sql = _strip_sql(create_sql)
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", sql, re.IGNORECASE):
        i = after_parenthesis(sql, match.end())
        found.append(sql[match.end() : i - 1])
    return found


_SQLITE_TYPES = {"INTEGER": "INTEGER", "REAL": "REAL", "TEXT": "TEXT"}
_PG_TYPES = {"integer": "INTEGER", "bigint": "INTEGER", "double precision": "REAL", "text": "TEXT"}


def sqlite_schema(path: Path) -> Schema:
    schema = Schema()
    conn = sqlite3.connect(path)
    try:
        listed = conn.execute("PRAGMA table_list").fetchall()
        schema.sqlite_only = {r[1] for r in listed if r[2] in ("virtual", "shadow")}
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        for table, create_sql in tables:
            if table in schema.sqlite_only:
                continue
            schema.facts[("table", table)] = True
            keys: set[tuple[Any, ...]] = set()
            pk: list[tuple[int, str]] = []
            for pos, (_cid, name, decl, notnull, default, pk_pos, hidden) in enumerate(
                conn.execute(f"PRAGMA table_xinfo({table})")
            ):
                kind = _SQLITE_TYPES[decl.upper()]
                generated = hidden in (2, 3)
                schema.facts[("column", table, name)] = (
                    pos,
                    kind,
                    # a primary key is NOT NULL in PostgreSQL; SQLite lets a rowid table's be NULL
                    # unless declared so (a legacy quirk no code relies on)
                    bool(notnull) or pk_pos > 0,
                    None if generated else _norm_expr(default),
                    generated,
                )
                if pk_pos:
                    pk.append((pk_pos, name))
                if kind == "TEXT":
                    schema.text_collations[(table, name)] = None
            pk_cols = tuple(name for _, name in sorted(pk))
            if pk_cols:
                keys.add(("primary", pk_cols))
            if len(pk_cols) == 1 and schema.facts[("column", table, pk_cols[0])][1] == "INTEGER":
                schema.rowid_keys.add((table, pk_cols[0]))
            for _seq, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({table})"):
                cols = tuple(
                    r[2] if r[2] is not None else "<expr>"
                    for r in conn.execute(f"PRAGMA index_xinfo({index})")
                    if r[5]
                )
                desc = tuple(bool(r[3]) for r in conn.execute(f"PRAGMA index_xinfo({index})") if r[5])
                where = None
                if partial:
                    (index_sql,) = conn.execute(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)
                    ).fetchone()
                    where = _norm_expr(re.split(r"\bWHERE\b", _strip_sql(index_sql), flags=re.I)[1])
                if origin == "pk":
                    continue  # the primary key, from table_xinfo above
                if unique:
                    keys.add(("unique", cols, where))
                if origin == "c":  # CREATE [UNIQUE] INDEX: compared by name too
                    schema.facts[("index", index)] = (table, "btree", bool(unique), cols, desc, where)
            schema.facts[("key", table)] = frozenset(keys)
            fks: dict[int, list[Any]] = {}
            for fk_id, _seq, ref, col, ref_col, on_update, on_delete, _match in conn.execute(
                f"PRAGMA foreign_key_list({table})"
            ):
                entry = fks.setdefault(fk_id, [ref, [], [], on_update, on_delete])
                entry[1].append(col)
                entry[2].append(ref_col)
            schema.facts[("fks", table)] = frozenset(
                (ref, tuple(cols), tuple(ref_cols), on_update, on_delete)
                for ref, cols, ref_cols, on_update, on_delete in fks.values()
            )
            schema.facts[("checks", table)] = tuple(sorted(_norm_expr(c) or "" for c in _checks(create_sql)))
        for name, table in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"):
            schema.facts[("trigger", name)] = table
    finally:
        conn.close()
    return schema


_PG_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


async def pg_schema(conn: Any) -> Schema:
    schema = Schema()
    tables = [
        r["relname"]
        for r in await conn.fetch(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        )
    ]
    for table in tables:
        schema.facts[("table", table)] = True
        columns = await conn.fetch(
            """
            SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
                   a.attgenerated::text, a.attidentity::text, pg_get_expr(d.adbin, d.adrelid) AS dflt, co.collname
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            LEFT JOIN pg_collation co ON co.oid = a.attcollation
            WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            table,
        )
        names = {}
        for pos, c in enumerate(columns):
            names[c["attnum"]] = c["attname"]
            kind = _PG_TYPES[c["type"]]
            generated = c["attgenerated"] != ""
            schema.facts[("column", table, c["attname"])] = (
                pos,
                kind,
                c["attnotnull"],
                None if generated or c["attidentity"] else _norm_expr(c["dflt"]),
                generated,
            )
            if kind == "INTEGER":
                schema.integer_columns[(table, c["attname"])] = c["type"]
            if kind == "TEXT":
                schema.text_collations[(table, c["attname"])] = c["collname"]
            if c["attidentity"]:
                schema.identity.add((table, c["attname"]))
        keys: set[tuple[Any, ...]] = set()
        for ix in await conn.fetch(
            """
            SELECT c.relname, i.indisprimary, i.indisunique, i.indkey::int2[] AS cols,
                   i.indoption::int2[] AS opts, pg_get_expr(i.indpred, i.indrelid) AS pred, am.amname,
                   con.conname IS NOT NULL AS is_constraint
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_am am ON am.oid = c.relam
            LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u')
            WHERE i.indrelid = $1::regclass
            """,
            table,
        ):
            cols = tuple(names.get(n, "<expr>") for n in ix["cols"])
            desc = tuple(bool(o & 1) for o in ix["opts"])
            where = _norm_expr(ix["pred"])
            if ix["indisprimary"]:
                keys.add(("primary", cols))
            elif ix["indisunique"]:
                keys.add(("unique", cols, where))
            if not ix["is_constraint"]:
                schema.facts[("index", ix["relname"])] = (
                    table,
                    ix["amname"],
                    ix["indisunique"],
                    cols,
                    desc,
                    where,
                )
        schema.facts[("key", table)] = frozenset(keys)
        fks = set()
        checks = []
        for con in await conn.fetch(
            """
            SELECT contype::text, conkey::int2[] AS cols, confrelid::regclass::text AS ref,
                   confkey::int2[] AS ref_cols, confrelid, confupdtype::text, confdeltype::text,
                   pg_get_constraintdef(oid) AS def
            FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('f', 'c')
            """,
            table,
        ):
            if con["contype"] == "c":
                checks.append(_norm_expr(re.match(r"CHECK (.*)$", con["def"]).group(1)) or "")
                continue
            ref_names = {
                r["attnum"]: r["attname"]
                for r in await conn.fetch(
                    "SELECT attnum, attname FROM pg_attribute WHERE attrelid = $1", con["confrelid"]
                )
            }
            fks.add(
                (
                    con["ref"],
                    tuple(names[n] for n in con["cols"]),
                    tuple(ref_names[n] for n in con["ref_cols"]),
                    _PG_FK_ACTIONS[con["confupdtype"]],
                    _PG_FK_ACTIONS[con["confdeltype"]],
                )
            )
        schema.facts[("fks", table)] = frozenset(fks)
        schema.facts[("checks", table)] = tuple(sorted(checks))
    for t in await conn.fetch(
        "SELECT tgname, tgrelid::regclass::text AS tbl FROM pg_trigger WHERE NOT tgisinternal"
    ):
        schema.facts[("trigger", t["tgname"])] = t["tbl"]
    return schema


# -- fixtures ------------------------------------------------------------------------------------


def _database_url(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"


async def _admin_connect() -> Any:
    return await asyncpg.connect(PG_URL, timeout=5)


def _unreachable(reason: str) -> None:
    message = (
        f"PostgreSQL is not reachable at {redact(PG_URL)} ({reason}): start it (pg_ctlcluster 15 main "
        "start) or point XIAOGE_TEST_PG_URL at a server; XIAOGE_TEST_PG_REQUIRED=1 makes this a failure"
    )
    if PG_REQUIRED:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Engines:
    sqlite_path: Path
    pg_url: str
    sqlite: Schema
    pg: Schema


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory):
    async def probe() -> None:
        admin = await _admin_connect()
        await admin.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # unreachable, refused, no such role...
        _unreachable(f"{type(exc).__name__}: {exc}")

    name = f"xiaoge_test_schema_{os.getpid()}_{secrets.token_hex(4)}"
    url = _database_url(PG_URL, name)
    sqlite_path = tmp_path_factory.mktemp("pg_schema") / "schema.sqlite3"

    async def build() -> Engines:
        admin = await _admin_connect()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        async with Database(sqlite_path) as sqlite_db:
            await sqlite_db.migrate()
        async with PgDatabase(url) as pg_db:
            await pg_db.migrate()
        conn = await asyncpg.connect(url)
        try:
            pg = await pg_schema(conn)
        finally:
            await conn.close()
        return Engines(sqlite_path, url, sqlite_schema(sqlite_path), pg)

    async def drop() -> None:
        admin = await _admin_connect()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        yield asyncio.run(build())
    finally:
        asyncio.run(drop())


def _pending(engines: Engines) -> set[tuple[Any, ...]]:
    """The facts the pending SQLite migrations change (a pending table: every fact of it)."""
    present = {entry.name for entry in (resources.files("storage") / "migrations").iterdir()}
    facts = {fact for file, listed in PENDING.items() if file not in present for fact in listed}
    tables = {fact[1] for fact in facts if fact[0] == "table"}
    return facts | {
        key
        for key in (*engines.sqlite.facts, *engines.pg.facts)
        if key[0] in ("column", "key", "fks", "checks") and key[1] in tables
    }


def _differences(engines: Engines, kind: str) -> dict[tuple[Any, ...], tuple[Any, Any]]:
    keys = {k for k in (*engines.sqlite.facts, *engines.pg.facts) if k[0] == kind}
    return {
        k: (engines.sqlite.facts.get(k), engines.pg.facts.get(k))
        for k in sorted(keys, key=repr)
        if engines.sqlite.facts.get(k) != engines.pg.facts.get(k)
    }


# -- the catalogs --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["table", "column", "key", "index", "fks", "checks", "trigger"])
def test_schemas_agree(engines: Engines, kind: str):
    """Every fact of one kind is the same in both engines, but for the SQLite-only objects and their
    replacements, and (while their files have not landed) the pending SQLite migrations."""
    expected: set[tuple[Any, ...]] = set()
    if kind == "index":
        expected = {("index", name) for name in TRIGRAM_INDEXES}
    if kind == "trigger":
        expected = {("trigger", name) for name in FTS_TRIGGERS | PG_ONLY_TRIGGERS}
    pending = {fact for fact in _pending(engines) if fact[0] == kind}
    differences = _differences(engines, kind)
    unexpected = {k: v for k, v in differences.items() if k not in expected | pending}
    assert not unexpected, "(sqlite, postgresql) differ:\n" + "\n".join(
        f"{k}: {v}" for k, v in unexpected.items()
    )
    assert pending <= differences.keys(), (
        f"stale PENDING entries (the schemas agree): {pending - differences.keys()}"
    )
    assert expected <= differences.keys()


def test_sqlite_only_tables_are_the_station_search(engines: Engines):
    """FTS5 (0012) is the only SQLite object without a twin table: the trigram indexes stand for it."""
    fts = engines.sqlite.sqlite_only
    assert FTS_TABLES <= fts
    assert all(name in FTS_TABLES or name.rsplit("_", 1)[0] in FTS_TABLES for name in fts), fts
    for name in TRIGRAM_INDEXES:
        table, method, *_ = engines.pg.facts[("index", name)]
        assert (table, method) == ("stations", "gin")


def test_ids_are_bigint_and_counters_integer(engines: Engines):
    """Ids and Telegram ids are BIGINT (chat ids are negative 64-bit); the rest stays INTEGER."""
    wrong = {}
    for (table, column), pg_type in engines.pg.integer_columns.items():
        wide = column == "id" or column.endswith(("_id", "_by")) or (table, column) in WIDE_INTEGERS
        if (table, column) == ("schema_migrations", "version"):
            wide = False
        if pg_type != ("bigint" if wide else "integer"):
            wrong[(table, column)] = pg_type
    assert not wrong


def test_surrogate_keys_are_identity(engines: Engines):
    """SQLite's rowid keys number themselves; PostgreSQL's are identity columns, but for Telegram ids."""
    assert engines.pg.identity == engines.sqlite.rowid_keys - GIVEN_KEYS
    assert GIVEN_KEYS <= engines.sqlite.rowid_keys


def test_text_compares_bytewise(engines: Engines):
    """Every text column sorts as SQLite's BINARY collation does, whatever the database's locale."""
    others = {
        key: coll
        for key, coll in engines.pg.text_collations.items()
        if coll != "C" and key[0] != "schema_migrations"  # storage/pg.py creates it
    }
    assert not others


async def test_schema_version_agrees(engines: Engines):
    async with Database(engines.sqlite_path) as sqlite_db, PgDatabase(engines.pg_url) as pg_db:
        assert await pg_db.schema_version() == await sqlite_db.schema_version()
        assert await pg_db.migrate() == []


# -- what the triggers and seeds do --------------------------------------------------------------

T0 = "2026-03-01T00:00:00.000000Z"
LEDGER = "INSERT INTO points_ledger(user_id, delta, reason, ref, area, idem_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"


async def test_ledger_is_append_only_on_both(engines: Engines):
    async with Database(engines.sqlite_path) as sqlite_db, PgDatabase(engines.pg_url) as pg_db:
        for db in (sqlite_db, pg_db):
            await db.execute(LEDGER, (-100, 5, "task_done", "task:1", None, None, T0))
            with pytest.raises(Exception, match="points_ledger is append-only"):
                await db.execute("UPDATE points_ledger SET delta = 100 WHERE user_id = -100")
            with pytest.raises(Exception, match="points_ledger is append-only"):
                await db.execute("DELETE FROM points_ledger WHERE user_id = -100")
            assert await db.fetchval("SELECT SUM(delta) FROM points_ledger WHERE user_id = -100") == 5
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await pg_db.execute("TRUNCATE points_ledger")


async def test_ledger_rows_move_the_monthly_totals_alike(engines: Engines):
    rows = [
        # user, delta, reason, area, created_at (UTC; months are Asia/Shanghai's)
        (-201, 10, "task_done", "蒋村街道", "2026-03-10T04:00:00.000000Z"),
        (-201, 5, "report_valid", None, "2026-03-02T01:00:00.000000Z"),  # earlier: first_at moves back
        (-201, -3, "adjust", "蒋村街道", "2026-03-20T00:00:00.000000Z"),
        (-201, -8, "redeem", "蒋村街道", "2026-03-21T00:00:00.000000Z"),  # never totalled
        (-201, 7, "task_done", "蒋村街道", "2026-03-31T16:00:00.000000Z"),  # 00:00 April 1st, Beijing time
        (-201, 4, "task_done", "蒋村街道", "2026-03-31T15:59:59.999999Z"),  # still March
        (-202, 2, "task_done", "文新街道", "2026-03-05T00:00:00.000000Z"),
        (-202, 9, "task_done", None, "1999-12-31T15:59:59.000000Z"),  # before every listed month
        (-202, 1, "task_done", None, "2100-12-31T16:00:00.000000Z"),  # after them
    ]
    got = []
    async with Database(engines.sqlite_path) as sqlite_db, PgDatabase(engines.pg_url) as pg_db:
        for db in (sqlite_db, pg_db):
            for i, (user, delta, reason, area, at) in enumerate(rows):
                await db.execute(LEDGER, (user, delta, reason, f"t:{i}", area, f"totals:{i}", at))
            users = await db.fetchall(
                "SELECT month_start, user_id, earned, first_at FROM points_month_users"
                " WHERE user_id IN (-201, -202) ORDER BY month_start, user_id"
            )
            areas = await db.fetchall(
                "SELECT month_start, area, user_id, earned, first_at FROM points_month_areas"
                " WHERE user_id IN (-201, -202) ORDER BY month_start, area, user_id"
            )
            got.append(([tuple(r) for r in users], [tuple(r) for r in areas]))
    assert got[0] == got[1]
    march, april = "2026-02-28T16:00:00.000000Z", "2026-03-31T16:00:00.000000Z"
    assert got[1][0] == [
        (march, -202, 2, "2026-03-05T00:00:00.000000Z"),
        (march, -201, 16, "2026-03-02T01:00:00.000000Z"),
        (april, -201, 7, "2026-03-31T16:00:00.000000Z"),
    ]


async def test_seeded_months_agree(engines: Engines):
    async with Database(engines.sqlite_path) as sqlite_db, PgDatabase(engines.pg_url) as pg_db:
        sql = "SELECT start_at, end_at FROM points_months ORDER BY start_at"
        sqlite_rows = [tuple(r) for r in await sqlite_db.fetchall(sql)]
        pg_rows = [tuple(r) for r in await pg_db.fetchall(sql)]
    assert len(sqlite_rows) == 1212
    assert sqlite_rows == pg_rows


async def test_lat_cell_agrees(engines: Engines):
    lats = [-90.0, -89.995, -0.005, 0.0, 0.01, 30.27, 30.2749999999, 30.279999, 45.005, 89.999, 90.0]
    got = []
    async with Database(engines.sqlite_path) as sqlite_db, PgDatabase(engines.pg_url) as pg_db:
        for db in (sqlite_db, pg_db):
            for i, lat in enumerate(lats):
                await db.execute(
                    "INSERT INTO stations(external_id, name, lat, lon, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (f"cell:{i}", "驿站", lat, 120.0, T0, T0),
                )
            got.append(
                [
                    tuple(r)
                    for r in await db.fetchall(
                        "SELECT external_id, lat_cell FROM stations WHERE external_id LIKE 'cell:%' ORDER BY id"
                    )
                ]
            )
    assert got[0] == got[1]
    assert dict(got[1])["cell:5"] == 12027


async def test_station_text_search_uses_trigrams(engines: Engines):
    """The trigram indexes find CJK text: the database's LC_CTYPE must count it as letters."""
    conn = await asyncpg.connect(engines.pg_url)
    try:
        assert await conn.fetchval("SELECT cardinality(show_trgm('文三路'))") > 0, (
            "pg_trgm sees no trigram in CJK text: create the database with a UTF-8 LC_CTYPE (e.g. C.UTF-8)"
        )
        # A district's worth of stations, one on 文三路: the planner picks the trigram indexes itself.
        await conn.execute(
            "INSERT INTO stations(external_id, name, lat, lon, address, area, created_at, updated_at)"
            " SELECT 'trgm:' || i, '暖心驿站' || i || '号', 30.2, 120.1, '西湖区古墩路 ' || i || ' 号',"
            " '蒋村街道', '', '' FROM generate_series(1, 5000) AS i"
        )
        await conn.execute(
            "INSERT INTO stations(external_id, name, lat, lon, address, area, created_at, updated_at)"
            " VALUES ('trgm:wensan', '文三路暖心驿站', 30.27, 120.13, '西湖区文三路 90 号', '文新街道', '', '')"
        )
        # VACUUM moves GIN's pending list (fastupdate) into the index, as autovacuum does after an import.
        await conn.execute("VACUUM ANALYZE stations")
        for sql, index in (
            ("SELECT id FROM stations WHERE active = 1 AND name LIKE '%文三路%'", "stations_name_trgm"),
            (
                "SELECT id FROM stations WHERE active = 1"
                " AND (address ILIKE '%文三路 90%' OR area ILIKE '%文三路 90%')",
                "stations_places_trgm",
            ),
        ):
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql))
            assert index in plan, plan
            assert len(await conn.fetch(sql)) == 1
    finally:
        await conn.close()
