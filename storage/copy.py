"""`xiaoge-bot db copy`: move a deployment's data between databases (SQLite file -> PostgreSQL, and
back, or PostgreSQL -> PostgreSQL).

What it does, in order:
1. The target is migrated (its own engine's migrations), so both sides have the same tables; the
   source must be at the same schema version (run `xiaoge-bot migrate` on it first otherwise).
2. Tables: every table of the schema except what one engine derives for itself: SQLite's FTS5
   station search (station_names, station_places, their *_terms vocab tables and shadow tables;
   PostgreSQL searches with pg_trgm indexes on stations), sqlite_sequence / sqlite_stat*, and
   schema_migrations (each side keeps its own). Columns by name; generated columns are left to the
   target (stations.lat_cell).
3. What the target already holds decides: empty (only what its migrations seed) -> copy; every row it
   holds is also in the source, unchanged (an earlier copy of this source) -> copy what is missing;
   anything else -> refused unless `force`, which replaces the target's rows with the source's.
4. One transaction on the target, one consistent snapshot of the source. Rows go parents first (by
   foreign key), in batches: into PostgreSQL by COPY into a staging table and one
   `INSERT ... SELECT ... ON CONFLICT DO NOTHING` per table (one statement, so a row referring to a
   later row of its own table is fine), into SQLite by executemany with deferred foreign keys.
5. Derived totals are copied verbatim, never counted twice: on PostgreSQL the target's own triggers
   (the ledger's append-only guard, the monthly totals kept from points_ledger) are disabled for the
   copy transaction (`ALTER TABLE ... DISABLE TRIGGER`, which the tables' owner may do; it is undone
   before the commit). SQLite cannot switch a trigger off: there points_ledger is copied before the
   monthly totals, the trigger rebuilds them from the same rows, and the totals' own copy adds only
   what is missing.
6. Identity sequences (PostgreSQL) are set to the highest id copied (or the source's sequence, if it
   is further), so new rows never collide.
7. Rows per table are counted on both sides afterwards: `CopyResult.ok` says whether all agree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite

# Tables that are each engine's own bookkeeping, never copied.
NOT_COPIED = {"schema_migrations", "sqlite_sequence"}
# Rows the migrations themselves write (the months the rank totals are kept for): a freshly migrated
# target has them, and the source has the same ones.
SEEDED_BY_MIGRATIONS = {"points_months"}
# Kept by a trigger on points_ledger in SQLite: copied after the ledger (see 5. above).
AFTER = {"points_month_users": {"points_ledger"}, "points_month_areas": {"points_ledger"}}

BATCH = 1000


class CopyRefused(Exception):
    """The copy was not started: one line for the operator (exit code 2)."""


@dataclass(frozen=True)
class Endpoint:
    engine: str  # "sqlite" or "postgresql"
    where: str  # the file path or the URL

    @property
    def shown(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite:{self.where}"
        from storage.pg import redact

        return redact(self.where)


def parse_endpoint(text: str, flag: str) -> Endpoint:
    """`sqlite:PATH` (also `sqlite:///abs/path`) or `postgresql://...` / `postgres://...`."""
    if text.startswith(("postgresql:", "postgres:")):
        return Endpoint("postgresql", text)
    if text.startswith("sqlite:"):
        path = text[len("sqlite:") :]
        if path.startswith("//"):  # sqlite:///abs/path, as SQLAlchemy writes it
            path = path[2:]
        if path:
            return Endpoint("sqlite", path)
    raise CopyRefused(f"{flag}: not a database (sqlite:PATH or postgresql://...): {text!r}")


@dataclass
class TableCount:
    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclass
class CopyResult:
    source: str
    target: str
    mode: str  # "new", "resumed" (an earlier copy of this source) or "replaced" (--force)
    added: int = 0  # rows the target did not have before
    tables: list[TableCount] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def lines(self) -> list[str]:
        width = max([len("table")] + [len(t.table) for t in self.tables])
        out = [f"{'table':<{width}}  {'source':>9}  {'target':>9}  check"]
        for t in sorted(self.tables, key=lambda t: t.table):
            out.append(f"{t.table:<{width}}  {t.source:>9}  {t.target:>9}  {'OK' if t.ok else 'MISMATCH'}")
        bad = [t.table for t in self.tables if not t.ok]
        how = {
            "new": "copied",
            "resumed": "target held an earlier copy of this source; added what was missing",
            "replaced": "target's rows replaced (--force)",
        }[self.mode]
        summary = (
            f"{self.source} -> {self.target}: {how}, {self.added} row(s) added, {len(self.tables)} tables"
        )
        out.append(summary + (f"; MISMATCH in {', '.join(bad)}" if bad else "; row counts match"))
        return out


# -- one side ---------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Table:
    name: str
    columns: list[str]  # every column, in order
    insertable: list[str]  # without generated columns
    key: list[str]  # primary key, else every column (rows are read and compared in this order)
    parents: set[str]


class _Side:
    engine: str

    async def schema_version(self) -> int: ...
    async def tables(self) -> dict[str, Table]: ...
    async def count(self, table: str) -> int: ...
    def rows(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[tuple[Any, ...]]]: ...
    async def id_floor(self, table: str, column: str) -> int: ...
    async def close(self) -> None: ...

    def _select(self, table: Table, columns: Sequence[str]) -> str:
        order = ", ".join(f"{_q(k)} NULLS FIRST" for k in table.key)
        return f"SELECT {', '.join(map(_q, columns))} FROM {_q(table.name)} ORDER BY {order}"


class _SqliteSide(_Side):
    engine = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, path: str, *, read_only: bool) -> _SqliteSide:
        if read_only:
            uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
            conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        else:
            conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        return cls(conn)

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        try:
            rows = await self._all("SELECT MAX(version) FROM schema_migrations")
        except aiosqlite.OperationalError:
            return -1
        return int(rows[0][0] or 0)

    async def tables(self) -> dict[str, Table]:
        master = await self._all("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        virtual = [n for n, sql in master if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
        found: dict[str, Table] = {}
        for name, _sql in master:
            if (
                name in NOT_COPIED
                or name.startswith("sqlite_")
                or name in virtual
                or any(name.startswith(v + "_") for v in virtual)  # FTS5 shadow tables
            ):
                continue
            info = await self._all(f"PRAGMA table_xinfo({_q(name)})")
            columns = [r[1] for r in info]
            insertable = [r[1] for r in info if r[6] == 0]
            pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            fks = await self._all(f"PRAGMA foreign_key_list({_q(name)})")
            found[name] = Table(name, columns, insertable, pk or insertable, {r[2] for r in fks} - {name})
        return found

    async def count(self, table: str) -> int:
        return int((await self._all(f"SELECT COUNT(*) FROM {_q(table)}"))[0][0])

    async def rows(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[tuple[Any, ...]]]:
        async with self.conn.execute(self._select(table, columns)) as cursor:
            while batch := await cursor.fetchmany(BATCH):
                yield [tuple(r) for r in batch]

    async def id_floor(self, table: str, column: str) -> int:
        value = (await self._all(f"SELECT MAX({_q(column)}) FROM {_q(table)}"))[0][0]
        return int(value or 0)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close()


class _PgSide(_Side):
    engine = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str) -> _PgSide:
        import asyncpg

        from storage.pg import DatabaseUnavailable, PgDatabase

        # PgDatabase turns a wrong URL, an unreachable server, a missing database into one line.
        probe = PgDatabase(url, min_size=1, max_size=1)
        await probe.open()
        await probe.close()
        try:
            return cls(await asyncpg.connect(url))
        except (OSError, asyncpg.exceptions.PostgresError) as exc:
            raise DatabaseUnavailable(f"PostgreSQL at {probe.path}: {exc}") from None

    async def schema_version(self) -> int:
        exists = await self.conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists:
            return -1
        return int(await self.conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def tables(self) -> dict[str, Table]:
        rows = await self.conn.fetch(
            """SELECT c.relname AS table, a.attname AS column, a.attgenerated <> '' AS generated
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
               WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
                 AND a.attnum > 0 AND NOT a.attisdropped
               ORDER BY c.relname, a.attnum"""
        )
        keys = await self.conn.fetch(
            """SELECT c.relname AS table, a.attname AS column
               FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
               JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
               WHERE i.indisprimary AND c.relnamespace = current_schema()::regnamespace
               ORDER BY c.relname, k.n"""
        )
        fks = await self.conn.fetch(
            """SELECT c.relname AS table, p.relname AS parent
               FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid JOIN pg_class p ON p.oid = f.confrelid
               WHERE f.contype = 'f' AND c.relnamespace = current_schema()::regnamespace"""
        )
        found: dict[str, Table] = {}
        for r in rows:
            if r["table"] in NOT_COPIED:
                continue
            t = found.setdefault(r["table"], Table(r["table"], [], [], [], set()))
            t.columns.append(r["column"])
            if not r["generated"]:
                t.insertable.append(r["column"])
        for r in keys:
            if r["table"] in found:
                found[r["table"]].key.append(r["column"])
        for r in fks:
            if r["table"] in found and r["parent"] != r["table"]:
                found[r["table"]].parents.add(r["parent"])
        for t in found.values():
            t.key = t.key or list(t.insertable)
        return found

    async def identities(self) -> list[tuple[str, str, str]]:
        """(table, column, sequence) of every identity column."""
        rows = await self.conn.fetch(
            """SELECT c.relname, a.attname, pg_get_serial_sequence(quote_ident(c.relname), a.attname)
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
               WHERE c.relnamespace = current_schema()::regnamespace AND a.attidentity <> ''
               ORDER BY c.relname"""
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def column_types(self, table: str) -> dict[str, str]:
        rows = await self.conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            table,
        )
        return {r[0]: r[1] for r in rows}

    async def count(self, table: str) -> int:
        return int(await self.conn.fetchval(f"SELECT COUNT(*) FROM {_q(table)}"))

    async def rows(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[tuple[Any, ...]]]:
        # A cursor needs a transaction: the caller holds one (the snapshot, or the copy's).
        batch: list[tuple[Any, ...]] = []
        async for record in self.conn.cursor(self._select(table, columns), prefetch=BATCH):
            batch.append(tuple(record))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def id_floor(self, table: str, column: str) -> int:
        highest = int(await self.conn.fetchval(f"SELECT COALESCE(MAX({_q(column)}), 0) FROM {_q(table)}"))
        seq = await self.conn.fetchval("SELECT pg_get_serial_sequence(quote_ident($1), $2)", table, column)
        if seq:
            row = await self.conn.fetchrow(f"SELECT last_value, is_called FROM {seq}")
            if row is not None and row["is_called"]:
                highest = max(highest, int(row["last_value"]))
        return highest

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close()


async def _open(end: Endpoint, *, source: bool) -> _Side:
    if end.engine == "sqlite":
        return await _SqliteSide.open(end.where, read_only=source)
    return await _PgSide.open(end.where)


async def _migrate(end: Endpoint) -> None:
    from storage.engine import open_database

    if end.engine == "sqlite":
        async with open_database(end.where) as db:
            await db.migrate()
    else:
        async with open_database("", end.where) as db:
            await db.migrate()


# -- comparing and ordering -------------------------------------------------------------------------


def _sort_key(values: Iterable[Any]) -> tuple[Any, ...]:
    """Rows in the order both engines give with `ORDER BY ... NULLS FIRST` (text: code points, which is
    UTF-8 byte order: SQLite's BINARY and PostgreSQL's "C")."""
    return tuple((v is not None, 0 if v is None else v) for v in values)


async def _single(batches: AsyncIterator[list[tuple[Any, ...]]]) -> AsyncIterator[tuple[Any, ...]]:
    async for batch in batches:
        for row in batch:
            yield row


async def foreign_rows(source: _Side, target: _Side, table: Table) -> int:
    """How many of the target's rows of this table the source does not have, exactly so."""
    columns = table.insertable
    at = [columns.index(k) for k in table.key]
    src = _single(source.rows(table, columns))
    current = await anext(src, None)
    foreign = 0
    try:
        async for row in _single(target.rows(table, columns)):
            key = _sort_key(row[i] for i in at)
            while current is not None and _sort_key(current[i] for i in at) < key:
                current = await anext(src, None)
            if current is None or current != row:
                foreign += 1
    finally:
        await src.aclose()
    return foreign


def copy_order(tables: dict[str, Table]) -> list[str]:
    """Parents before children (foreign keys), the ledger before the totals its trigger keeps; else by
    name."""
    order: list[str] = []
    done: set[str] = set()
    pending = sorted(tables)
    while pending:
        for name in pending:
            needs = (tables[name].parents | AFTER.get(name, set())) & set(tables)
            if needs <= done:
                order.append(name)
                done.add(name)
                pending.remove(name)
                break
        else:  # a cycle between tables (none in the schema): the rest by name
            order.extend(pending)
            break
    return order


def _coerce(types: dict[str, str], columns: Sequence[str]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Values as PostgreSQL's binary COPY wants them for each column's type (SQLite is loosely typed:
    an integral REAL may come back as int)."""
    kinds = []
    for c in columns:
        t = types.get(c, "")
        kinds.append(
            float
            if t in ("double precision", "real")
            else int
            if "int" in t
            else str
            if t == "text"
            else None
        )

    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            v if v is None or kind is None or type(v) is kind else kind(v)
            for v, kind in zip(row, kinds, strict=True)
        )

    return convert


# -- the copy ----------------------------------------------------------------------------------------


async def copy_database(source_url: str, target_url: str, *, force: bool = False) -> CopyResult:
    """Copy every table from source to target; see the module's docstring. Raises CopyRefused (or
    storage.pg.DatabaseUnavailable) before writing anything when it won't copy."""
    src_end = parse_endpoint(source_url, "--from")
    dst_end = parse_endpoint(target_url, "--to")
    if src_end.engine == "sqlite" and not Path(src_end.where).is_file():
        raise CopyRefused(f"--from: {src_end.where}: no such file")
    if src_end == dst_end or (
        src_end.engine == dst_end.engine == "sqlite"
        and Path(dst_end.where).exists()
        and Path(src_end.where).resolve() == Path(dst_end.where).resolve()
    ):
        raise CopyRefused("--from and --to name the same database")

    source = await _open(src_end, source=True)
    try:
        # A consistent snapshot of the source for the whole copy (counts included).
        if isinstance(source, _PgSide):
            snapshot = source.conn.transaction(isolation="repeatable_read", readonly=True)
            await snapshot.start()
        else:
            await source.conn.execute("BEGIN")
        version = await source.schema_version()
        if version < 0:
            raise CopyRefused(f"--from: {src_end.shown} is not a xiaoge-bot database (no schema_migrations)")
        await _migrate(dst_end)
        target = await _open(dst_end, source=False)
        try:
            return await _copy(source, target, src_end, dst_end, version, force=force)
        finally:
            await target.close()
    finally:
        await source.close()


async def _copy(
    source: _Side, target: _Side, src_end: Endpoint, dst_end: Endpoint, version: int, *, force: bool
) -> CopyResult:
    target_version = await target.schema_version()
    if version != target_version:
        raise CopyRefused(
            f"--from is at schema version {version}, --to at {target_version}:"
            + (
                " run `xiaoge-bot migrate` on the source first"
                if version < target_version
                else " the source is newer than this xiaoge-bot; upgrade it first"
            )
        )
    src_tables, tables = await source.tables(), await target.tables()
    if set(src_tables) != set(tables):
        only_src, only_dst = sorted(set(src_tables) - set(tables)), sorted(set(tables) - set(src_tables))
        raise CopyRefused(
            "the two schemas differ: "
            + "; ".join(
                part
                for part in (
                    f"only in --from: {', '.join(only_src)}" if only_src else "",
                    f"only in --to: {', '.join(only_dst)}" if only_dst else "",
                )
                if part
            )
        )
    for name, table in tables.items():
        missing = set(table.insertable) - set(src_tables[name].columns)
        lost = set(src_tables[name].insertable) - set(table.columns)
        if missing or lost:
            raise CopyRefused(f"table {name}: columns differ ({', '.join(sorted(missing | lost))})")
    order = copy_order(tables)

    result = CopyResult(src_end.shown, dst_end.shown, "new")
    async with _writing(target) as write:
        held = {name: n for name in order if (n := await target.count(name))}
        filled = {name: n for name, n in held.items() if name not in SEEDED_BY_MIGRATIONS}
        if held and force:
            result.mode = "replaced" if filled else "new"
            await write.clear(order)
        elif held:
            foreign = {name: await foreign_rows(source, target, tables[name]) for name in held}
            if any(foreign.values()):
                found = ", ".join(f"{name} ({n})" for name, n in (filled or held).items())
                raise CopyRefused(
                    f"--to is not empty and not an earlier copy of --from: it has rows in {found};"
                    " use --force to replace them"
                )
            result.mode = "resumed" if filled else "new"
        for name in order:
            table = tables[name]
            result.added += await write.insert(table, source.rows(table, table.insertable))
        if isinstance(target, _PgSide):
            for name, column, seq in await target.identities():
                floor = await source.id_floor(name, column) if name in tables else 0
                highest = max(floor, await target.id_floor(name, column))
                if highest >= 1:
                    await target.conn.execute("SELECT setval($1, $2, true)", seq, highest)
                else:
                    await target.conn.execute("SELECT setval($1, 1, false)", seq)
    for name in order:
        result.tables.append(TableCount(name, await source.count(name), await target.count(name)))
    return result


class _Writer:
    async def clear(self, order: list[str]) -> None: ...
    async def insert(self, table: Table, batches: AsyncIterator[list[tuple[Any, ...]]]) -> int: ...


class _PgWriter(_Writer):
    def __init__(self, side: _PgSide) -> None:
        self.side = side

    async def clear(self, order: list[str]) -> None:
        # Triggers are off (the ledger's append-only guard refuses TRUNCATE otherwise).
        await self.side.conn.execute(f"TRUNCATE {', '.join(map(_q, order))}")

    async def insert(self, table: Table, batches: AsyncIterator[list[tuple[Any, ...]]]) -> int:
        conn = self.side.conn
        columns = table.insertable
        names = ", ".join(map(_q, columns))
        stage = f"xiaoge_copy_{table.name}"
        convert = _coerce(await self.side.column_types(table.name), columns)
        await conn.execute(
            f"CREATE TEMP TABLE {_q(stage)} AS SELECT {names} FROM {_q(table.name)} WITH NO DATA"
        )

        async def records() -> AsyncIterator[tuple[Any, ...]]:
            async for batch in batches:
                for row in batch:
                    yield convert(row)

        await conn.copy_records_to_table(stage, records=records(), columns=columns)
        status = await conn.execute(
            f"INSERT INTO {_q(table.name)} ({names}) SELECT {names} FROM {_q(stage)}"
            f" ORDER BY {', '.join(map(_q, table.key))} ON CONFLICT DO NOTHING"
        )
        await conn.execute(f"DROP TABLE {_q(stage)}")
        return int(status.rsplit(" ", 1)[-1])


class _SqliteWriter(_Writer):
    def __init__(self, side: _SqliteSide) -> None:
        self.side = side

    async def clear(self, order: list[str]) -> None:
        raise CopyRefused(
            "--force onto a SQLite file is not supported (its ledger is append-only): move the file"
            " away and copy into a new one"
        )

    async def insert(self, table: Table, batches: AsyncIterator[list[tuple[Any, ...]]]) -> int:
        columns = table.insertable
        sql = (
            f"INSERT INTO {_q(table.name)} ({', '.join(map(_q, columns))})"
            f" VALUES ({', '.join('?' for _ in columns)}) ON CONFLICT DO NOTHING"
        )
        added = 0
        async for batch in batches:
            cursor = await self.side.conn.executemany(sql, batch)
            added += max(cursor.rowcount, 0)
            await cursor.close()
        return added


@contextlib.asynccontextmanager
async def _writing(target: _Side) -> AsyncIterator[_Writer]:
    """One transaction on the target; on PostgreSQL its enabled user triggers are off inside it."""
    if isinstance(target, _PgSide):
        conn = target.conn
        async with conn.transaction():
            triggers = await conn.fetch(
                """SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                   WHERE NOT t.tgisinternal AND t.tgenabled = 'O'
                     AND c.relnamespace = current_schema()::regnamespace ORDER BY 1, 2"""
            )
            for table, trigger in triggers:
                await conn.execute(f"ALTER TABLE {_q(table)} DISABLE TRIGGER {_q(trigger)}")
            yield _PgWriter(target)
            for table, trigger in triggers:
                await conn.execute(f"ALTER TABLE {_q(table)} ENABLE TRIGGER {_q(trigger)}")
        return
    assert isinstance(target, _SqliteSide)
    conn = target.conn
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("PRAGMA defer_foreign_keys=ON")
        yield _SqliteWriter(target)
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
