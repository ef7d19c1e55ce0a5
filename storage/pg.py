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
import functools
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


_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?\d*"
    r"|\bIS\s+NOT\s+(?!NULL\b|TRUE\b|FALSE\b|DISTINCT\b)"
    r"|\bIS\s+(?!NOT\b|NULL\b|TRUE\b|FALSE\b|DISTINCT\b)"
    r"|\bINSERT\s+OR\s+IGNORE\s+INTO\b"
    r"|\s(?:NOT\s+INDEXED|INDEXED\s+BY\s+\w+)\b"
    r"|(?<![:\w]):[A-Za-z_]\w*"
    r"|(?:(?<=\bAND )|(?<=\bOR )|(?<=\bWHERE )|(?<=\bON )|(?<=\bBY )|(?<=\()|(?<=, ))\+(?=[A-Za-z_])",
    re.IGNORECASE,
)
_RETURNING = re.compile(r"\sRETURNING\s", re.IGNORECASE)


@functools.lru_cache(maxsize=2048)
def _translate(sql: str) -> tuple[str, tuple[str, ...]]:
    """The statement in PostgreSQL's spelling, made once per statement text (outside quoted text):

    * `?` placeholders as `$1, $2, ...` (and `?NNN` as `$NNN`);
    * SQLite's null-safe comparisons `a IS b` / `a IS NOT b` (b not NULL, TRUE or FALSE) as
      `a IS NOT DISTINCT FROM b` / `a IS DISTINCT FROM b` (PostgreSQL knows only these spellings);
    * `INSERT OR IGNORE INTO ...` as `INSERT INTO ... ON CONFLICT DO NOTHING` (before any RETURNING);
    * SQLite's index hints (`INDEXED BY name`, `NOT INDEXED`, a unary `+column`) dropped:
      PostgreSQL's planner chooses;
    * named parameters `:name` as `$n` too (the names in order are returned beside the text).

    SQLite's two-argument `max(a, b)` / `min(a, b)`, `instr` and `julianday` are functions of the
    baseline migration (storage/migrations/postgresql/), so the statements keep those as written.
    """
    counter = 0
    ignore = False
    names: list[str] = []

    def repl(match: re.Match[str]) -> str:
        nonlocal counter, ignore
        token = match.group(0)
        if token == "?":
            counter += 1
            return f"${counter}"
        if token[0] == "?":  # SQLite's numbered ?NNN
            return f"${token[1:]}"
        if token[0] in "'\"" or token.startswith("--"):
            return token  # quoted text and comments are kept as written
        if token[0] == ":":
            if token[1:] not in names:
                names.append(token[1:])
            return f"${names.index(token[1:]) + 1}"
        if token[0].isspace():
            return " "  # an index hint
        if token == "+":
            return ""  # SQLite's unary `+column` (no index for this term): a hint only
        upper = token.upper()
        if upper.startswith("INSERT"):
            ignore = True
            return "INSERT INTO"
        if upper.split()[:2] == ["IS", "NOT"]:
            return "IS DISTINCT FROM "
        return "IS NOT DISTINCT FROM "

    out = _TOKENS.sub(repl, sql)
    if ignore:
        at = _RETURNING.search(out)
        out = (
            f"{out[: at.start()]} ON CONFLICT DO NOTHING{out[at.start() :]}"
            if at
            else f"{out.rstrip().rstrip(';')} ON CONFLICT DO NOTHING"
        )
    if names and counter:
        raise ValueError("a statement mixes ? and :name parameters")
    return _alias_subqueries(out), tuple(names)


_FROM_PAREN = re.compile(r"'(?:[^']|'')*'|\bFROM\s*\(", re.IGNORECASE)
_AFTER_SUBQUERY = re.compile(r"\s*(\w+)?")
_NOT_ALIAS = {
    "where", "group", "order", "limit", "offset", "union", "except", "intersect", "join", "left",
    "right", "inner", "cross", "full", "on", "having", "window", "returning", "for", "natural",
}  # fmt: skip


def after_parenthesis(sql: str, i: int) -> int:
    """The index just after the `)` closing the parenthesis opened right before `i` (quoted text
    skipped; the end of `sql` if it is never closed)."""
    depth, quoted = 1, False
    while i < len(sql) and depth:
        ch = sql[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        i += 1
    return i


def _alias_subqueries(sql: str) -> str:
    """`FROM (SELECT ...)` without a name, as SQLite allows, named `AS _subN` (PostgreSQL before 16
    requires one)."""
    out = sql
    start = 0
    n = 0
    while match := _FROM_PAREN.search(out, start):
        if match.group(0)[0] == "'":
            start = match.end()
            continue
        i = after_parenthesis(out, match.end())
        word = _AFTER_SUBQUERY.match(out, i).group(1)  # type: ignore[union-attr]
        if word is None or word.lower() in _NOT_ALIAS:
            n += 1
            out = f"{out[:i]} AS _sub{n}{out[i:]}"
        start = match.end()
    return out


def to_dollar(sql: str) -> str:
    """The statement in PostgreSQL's spelling (see `_translate`)."""
    return _translate(sql)[0]


def _statement(sql: str, params: Params) -> tuple[str, Sequence[Any]]:
    """PostgreSQL's statement text and its positional arguments."""
    text, names = _translate(sql)
    if isinstance(params, dict):
        return text, tuple(params[name] for name in names)
    if names:
        raise TypeError("named parameters in the statement need a dict of values")
    return text, tuple(params)


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "DELETE 0") as a row count."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


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
        text, args = _statement(sql, params)
        return _rowcount(await self._conn.execute(text, *args))

    async def _executemany(self, sql: str, rows: Iterable[Params]) -> int:
        # One execution per row, summing what each changed: the count callers rely on (rows inserted,
        # not skipped by ON CONFLICT or a WHERE), which asyncpg's executemany does not report. The
        # statement is prepared once (asyncpg's statement cache), so each row is one round trip.
        total = 0
        for r in rows:
            text, args = _statement(sql, r)
            total += _rowcount(await self._conn.execute(text, *args))
        return total

    async def _fetchone(self, sql: str, params: Params) -> Any:
        text, args = _statement(sql, params)
        try:
            return await self._conn.fetchrow(text, *args)
        except (OverflowError, asyncpg.exceptions.DataError, asyncpg.exceptions.NumericValueOutOfRangeError):
            return None  # an id beyond 64 bits (a forged button): no such row

    async def _fetchall(self, sql: str, params: Params) -> list[Any]:
        text, args = _statement(sql, params)
        try:
            return list(await self._conn.fetch(text, *args))
        except (OverflowError, asyncpg.exceptions.DataError, asyncpg.exceptions.NumericValueOutOfRangeError):
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

    async def checkpoint(self) -> None:
        """SQLite's write-ahead-log copy (see `Database.checkpoint`): PostgreSQL checkpoints itself."""
        return None

    def checkpoint_soon(self) -> None:
        return None

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
