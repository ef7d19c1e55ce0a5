"""PostgreSQL behind the same `Executor` interface as SQLite (storage/db.py), through asyncpg.

Repositories write SQL once, with `?` placeholders and the SQL both engines share; this module turns
`?` into `$1, $2, ...` (outside quoted text), keeps a pool of connections, and runs a transaction on
one connection at PostgreSQL's default READ COMMITTED. Where the engines differ, a repository asks
`db.dialect` ("sqlite" or "postgresql") and picks its statement: those places are the dialect
differences, and they live in storage/ only.

Times are stored as the same fixed-width UTC text as in SQLite (`to_db`), so rows copy between the
two engines unchanged and sort the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.db import Params, to_db

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# A cluster-wide advisory lock key: "xiaoge-bot migrations".
MIGRATION_LOCK = 0x7869616F6765


class DatabaseUnavailable(Exception):
    """The PostgreSQL server can't be used: a one-line reason for the operator."""


_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")


def to_dollar(sql: str) -> str:
    """`?` placeholders as `$1, $2, ...`; question marks inside quotes are left alone."""
    counter = 0

    def repl(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(repl, sql)


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0") as a row count."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _args(params: Params) -> Sequence[Any]:
    if isinstance(params, dict):
        raise TypeError("named parameters are not supported; use ? placeholders")
    return tuple(params)


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class _PgOps:
    """Statements on one connection (a transaction's) or on the pool (each on its own)."""

    dialect = "postgresql"
    _conn: Any

    async def _execute(self, sql: str, params: Params) -> int:
        return _rowcount(await self._conn.execute(to_dollar(sql), *_args(params)))

    async def _executemany(self, sql: str, rows: Iterable[Params]) -> int:
        batch = [tuple(_args(r)) for r in rows]
        if not batch:
            return 0
        await self._conn.executemany(to_dollar(sql), batch)
        return len(batch)

    async def _fetchone(self, sql: str, params: Params) -> Any:
        try:
            return await self._conn.fetchrow(to_dollar(sql), *_args(params))
        except (OverflowError, asyncpg.exceptions.NumericValueOutOfRangeError):
            return None  # an id beyond 64 bits (a forged button): no such row

    async def _fetchall(self, sql: str, params: Params) -> list[Any]:
        try:
            return list(await self._conn.fetch(to_dollar(sql), *_args(params)))
        except (OverflowError, asyncpg.exceptions.NumericValueOutOfRangeError):
            return []


class PgTransaction(_PgOps):
    """Statements inside `async with db.transaction() as tx:` (one connection, one transaction)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        return await self._executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Any:
        return await self._fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        return await self._fetchall(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self._fetchone(sql, params)
        return None if row is None else row[0]


class _PooledOps(_PgOps):
    def __init__(self, conn: Any) -> None:
        self._conn = conn


class PgDatabase:
    """A pool of asyncpg connections to one database, with the `Database` interface."""

    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self.path = redact(url)  # what logs show (SQLite shows its file)
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> PgDatabase:
        if self._pool is not None:
            return self
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min_size,
                max_size=self._max_size,
                command_timeout=60,
                # Statements are prepared per connection and kept: the nearest search has a few
                # dozen shapes, like SQLite's statement cache.
                statement_cache_size=512,
            )
        except (TimeoutError, OSError) as exc:
            raise DatabaseUnavailable(f"cannot reach the PostgreSQL server at {self.path}: {exc}") from None
        except asyncpg.exceptions.InvalidCatalogNameError:
            raise DatabaseUnavailable(
                f"the database in {self.path} does not exist (create it first)"
            ) from None
        except (
            asyncpg.exceptions.InvalidPasswordError,
            asyncpg.exceptions.InvalidAuthorizationSpecificationError,
        ) as exc:
            raise DatabaseUnavailable(f"PostgreSQL refused the login for {self.path}: {exc}") from None
        except (ValueError, asyncpg.exceptions.ClientConfigurationError) as exc:
            raise DatabaseUnavailable(f"not a usable PostgreSQL URL ({self.path}): {exc}") from None
        except asyncpg.exceptions.PostgresError as exc:
            raise DatabaseUnavailable(f"PostgreSQL at {self.path}: {exc}") from None
        return self

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), timeout=10)

    async def __aenter__(self) -> PgDatabase:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _require(self) -> Any:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTransaction]:
        """One connection, BEGIN ... COMMIT (ROLLBACK when the block raises). Callbacks registered with
        `tx.after_commit` run once it committed."""
        async with self._require().acquire() as conn:
            tx = PgTransaction(conn)
            async with conn.transaction():
                yield tx
        for callback in tx._after_commit:
            callback()

    @asynccontextmanager
    async def _one(self) -> AsyncIterator[_PooledOps]:
        async with self._require().acquire() as conn:
            yield _PooledOps(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._one() as ops:
            return await ops._execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        async with self.transaction() as tx:
            return await tx.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Any:
        async with self._one() as ops:
            return await ops._fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        async with self._one() as ops:
            return await ops._fetchall(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    # -- migrations ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending migrations (storage/migrations/postgresql/), each in one transaction, under a
        cluster-wide advisory lock: two instances starting at once never apply one twice."""
        applied: list[str] = []
        async with self._require().acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in available_migrations():
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)",
                            version,
                            name,
                            to_db(dt.datetime.now(dt.UTC)),
                        )
                    log.info("applied migration %04d_%s (postgresql)", version, name)
                    applied.append(f"{version:04d}_{name}")
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        return applied

    async def schema_version(self) -> int:
        value = await self.fetchval("SELECT MAX(version) FROM schema_migrations")
        return int(value or 0)


def available_migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("storage") / "migrations" / "postgresql"
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
