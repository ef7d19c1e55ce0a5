"""The owner of the process's SQLite connections.

`Database` holds one writer connection (WAL, foreign keys, busy timeout), whose statements and
transactions are serialised by one asyncio lock, so a transaction of one coroutine never swallows
another coroutine's statement, and a few reader connections for reads outside transactions. Repositories take an `Executor`: either the `Database` itself (each statement on its own,
autocommitted) or the `Transaction` handed out by `db.transaction()` (all or nothing).

Times are stored as fixed-width UTC ISO strings (`to_db`/`from_db`), which sort correctly as text.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

log = logging.getLogger(__name__)

Row = aiosqlite.Row
Params = Sequence[Any] | dict[str, Any]

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def to_db(when: dt.datetime | None) -> str | None:
    """An aware datetime as the stored UTC text, e.g. 2026-11-25T02:00:00.000000Z."""
    if when is None:
        return None
    if when.tzinfo is None:
        raise ValueError("naive datetime cannot be stored; use aware UTC times")
    return when.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def from_db(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    # fromisoformat reads exactly what to_db writes (Python 3.11+ accepts the trailing Z) and is
    # ~20x faster than strptime: it runs for every row of every list.
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def from_db_required(text: str) -> dt.datetime:
    value = from_db(text)
    assert value is not None
    return value


class Executor(Protocol):
    dialect: str  # "sqlite" or "postgresql": where a repository needs the engine's own statement

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns how many rows it changed (an INSERT that needs the new id
        says `RETURNING id` and is run with `fetchval`)."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchval(self, sql: str, params: Params = ()) -> Any: ...


def _run_execute(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    cursor = conn.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _run_executemany(conn: sqlite3.Connection, sql: str, rows: list[Params]) -> int:
    cursor = conn.executemany(sql, rows)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _run_fetchone(conn: sqlite3.Connection, sql: str, params: Params) -> Row | None:
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


class _Ops:
    """Each statement is one trip to the connection's thread (aiosqlite's own helpers take two or
    three: execute, fetch, close), run through aiosqlite's queue like its `execute_fetchall`."""

    dialect = "sqlite"
    _conn: aiosqlite.Connection

    async def _on_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        conn = self._conn
        return await conn._execute(fn, conn._conn, *args)

    async def _execute(self, sql: str, params: Params) -> int:
        # The rows this statement changed (sqlite3's rowcount): an upsert that took its UPDATE branch
        # counts 1, one whose WHERE refused counts 0; never `lastrowid`, which a fresh connection
        # reports as 0 after an UPDATE (an answer changed after a restart looked "unchanged").
        return await self._on_thread(_run_execute, sql, params)

    async def _executemany(self, sql: str, rows: Iterable[Params]) -> int:
        return await self._on_thread(_run_executemany, sql, list(rows))

    async def _fetchone(self, sql: str, params: Params) -> Row | None:
        try:
            return await self._on_thread(_run_fetchone, sql, params)
        except OverflowError:  # an id beyond SQLite's 64 bits (a forged button): no such row
            return None

    async def _fetchall(self, sql: str, params: Params) -> list[Row]:
        # One hop to the connection's thread (execute + fetchall + close), not three.
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except OverflowError:  # an id beyond SQLite's 64 bits (a forged button): no such row
            return []


class Transaction(_Ops):
    """Statements inside `async with db.transaction() as tx:`; the lock is already held."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once the transaction committed (not at all when it rolls back): e.g. wake
        a worker that must see the rows this transaction wrote."""
        self._after_commit.append(callback)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        return await self._executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await self._fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._fetchall(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self._fetchone(sql, params)
        return None if row is None else row[0]


class _Reader(_Ops):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn


_READ_VERBS = ("SELECT", "WITH", "VALUES")


def is_read(sql: str) -> bool:
    """A statement that only reads (so a reader connection may run it)."""
    head = sql.lstrip()[:6].upper()
    return head.startswith(_READ_VERBS) and not re.search(
        r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", sql, re.IGNORECASE
    )


class Database(_Ops):
    """The process's connections to one SQLite file. Use `open()`/`close()` or `async with`.

    One writer connection, guarded by one lock (SQLite has one writer at a time anyway): every
    statement that writes and every `transaction()` runs there. Reads outside a transaction go to a
    small pool of reader connections: in WAL mode they read the last committed state beside the
    writer, so a list or a nearest search never waits behind a write (nor the outbox behind either).

    The write-ahead log is copied into the database file by a connection of its own, in the
    background, at most every CHECKPOINT_EVERY seconds while writes go on: left to SQLite, the commit
    that fills the log to 1,000 pages copies it while holding the writer (tens of milliseconds that a
    reply's commit would wait). SQLite's own checkpoint stays as a backstop at AUTOCHECKPOINT_PAGES.
    """

    CHECKPOINT_EVERY = 1.0
    AUTOCHECKPOINT_PAGES = 10_000

    def __init__(self, path: str | Path, *, readers: int = 3) -> None:
        self.path = str(path)
        self._lock = asyncio.Lock()
        self._conn_or_none: aiosqlite.Connection | None = None
        # ":memory:" is one private database per connection: it can only ever have the writer.
        self._reader_count = 0 if self.path == ":memory:" else max(0, readers)
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._last_checkpoint = 0.0  # time.monotonic() of the last one started

    @property
    def _conn(self) -> aiosqlite.Connection:  # type: ignore[override]
        if self._conn_or_none is None:
            raise RuntimeError("database is not open")
        return self._conn_or_none

    @property
    def is_open(self) -> bool:
        return self._conn_or_none is not None

    async def _connect(self, *, reader: bool) -> aiosqlite.Connection:
        # A large statement cache: the nearest query comes in a few dozen shapes, all kept prepared.
        conn = await aiosqlite.connect(self.path, isolation_level=None, cached_statements=512)
        conn.row_factory = aiosqlite.Row
        try:
            if not reader:
                await conn.execute("PRAGMA journal_mode=WAL")
                await conn.execute("PRAGMA synchronous=NORMAL")
                await conn.execute(f"PRAGMA wal_autocheckpoint={self.AUTOCHECKPOINT_PAGES}")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            if reader:
                await conn.execute("PRAGMA query_only=ON")
        except BaseException:
            await conn.close()  # e.g. the path is a folder: stop the connection's thread, then raise
            raise
        return conn

    async def open(self) -> Database:
        if self._conn_or_none is not None:
            return self
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Open once synchronously first: when aiosqlite's own connect fails (the path is a folder,
            # the disk read-only) its worker thread outlives the event loop and prints a traceback.
            sqlite3.connect(self.path).close()
        self._conn_or_none = await self._connect(reader=False)
        try:
            for _ in range(self._reader_count):
                reader = await self._connect(reader=True)
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
            if self._reader_count:
                self._checkpointer = await self._connect(reader=True)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        # No checkpoint starts from here on (a commit finishing meanwhile would start one on a
        # connection being closed); the one running finishes first.
        checkpointer, self._checkpointer = self._checkpointer, None
        if self._checkpointing is not None:
            await self._checkpointing
            self._checkpointing = None
        if checkpointer is not None:
            await checkpointer.close()
        if self._conn_or_none is not None:
            async with self._lock:
                for reader in self._all_readers:
                    await reader.close()
                self._all_readers.clear()
                self._readers = asyncio.Queue()
                await self._conn_or_none.close()
                self._conn_or_none = None

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises. Callbacks registered with
        `tx.after_commit` run once it committed."""
        async with self._lock:
            await self._execute("BEGIN IMMEDIATE", ())
            tx = Transaction(self._conn)
            try:
                yield tx
            except BaseException:
                await self._execute("ROLLBACK", ())
                raise
            else:
                await self._execute("COMMIT", ())
        self._committed()
        for callback in tx._after_commit:
            callback()

    @asynccontextmanager
    async def _reading(self, sql: str) -> AsyncIterator[_Ops]:
        """A reader connection for a read-only statement (the writer, under its lock, otherwise)."""
        if not self._all_readers or not is_read(sql):
            async with self._lock:
                yield self._writer_ops
            return
        conn = await self._readers.get()
        try:
            yield _Reader(conn)
        finally:
            self._readers.put_nowait(conn)

    @property
    def _writer_ops(self) -> _Ops:
        return _Reader(self._conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._lock:
            changed = await self._execute(sql, params)
        self._committed()
        return changed

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        async with self._lock:
            await self._execute("BEGIN IMMEDIATE", ())
            try:
                count = await self._executemany(sql, rows)
            except BaseException:
                await self._execute("ROLLBACK", ())
                raise
            await self._execute("COMMIT", ())
        self._committed()
        return count

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._reading(sql) as ops:
            return await ops._fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._reading(sql) as ops:
            return await ops._fetchall(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    def _committed(self) -> None:
        """A write was committed: a background checkpoint if none ran for CHECKPOINT_EVERY seconds."""
        if time.monotonic() - self._last_checkpoint >= self.CHECKPOINT_EVERY:
            self.checkpoint_soon()

    def checkpoint_soon(self) -> None:
        """`checkpoint` in the background, unless one is running already: a long job of short
        transactions calls it between batches and goes on at once (the copy runs on the checkpoint
        connection's thread meanwhile; `close` waits for it)."""
        if self._checkpointer is None or (self._checkpointing is not None and not self._checkpointing.done()):
            return
        self._last_checkpoint = time.monotonic()
        self._checkpointing = asyncio.ensure_future(self._checkpoint_quietly())

    async def _checkpoint_quietly(self) -> None:
        try:
            await self.checkpoint()
        except Exception as exc:  # the log is copied by the next checkpoint (or SQLite's own) instead
            log.warning("background checkpoint failed: %s", exc)

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file now, on a reader connection (PASSIVE: it
        waits for nobody and nobody waits for it). A long run of short write transactions (the outbox
        prune) calls it between batches; otherwise the commit that fills the log to SQLite's
        auto-checkpoint size pays for the copy while holding the writer lock. SQLite-specific (WAL)."""
        if self._checkpointer is None:
            return
        await self._checkpointer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")

    # -- migrations ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending numbered migrations, each in one transaction. Returns what was applied."""
        async with self._lock:
            await self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            async with self._conn.execute("SELECT version FROM schema_migrations") as cur:
                done = {row[0] for row in await cur.fetchall()}
            applied = []
            for version, name, sql in available_migrations():
                if version in done:
                    continue
                now = to_db(dt.datetime.now(dt.UTC))
                script = (
                    "BEGIN IMMEDIATE;\n"
                    f"{sql}\n;\n"
                    f"INSERT INTO schema_migrations(version, name, applied_at) VALUES ({version}, '{name}', '{now}');\n"
                    "COMMIT;"
                )
                try:
                    await self._conn.executescript(script)
                except Exception:
                    if self._conn.in_transaction:
                        await self._conn.execute("ROLLBACK")
                    raise
                log.info("applied migration %04d_%s", version, name)
                applied.append(f"{version:04d}_{name}")
            return applied

    async def schema_version(self) -> int:
        value = await self.fetchval("SELECT MAX(version) FROM schema_migrations")
        return int(value or 0)


def available_migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found
