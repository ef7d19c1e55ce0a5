"""The database engine the tests run on: SQLite (default) or PostgreSQL (`pytest --db postgresql`,
or XIAOGE_TEST_DB=postgresql).

Tests name a database by a file path, as with SQLite (`make_database(tmp_path / "x.sqlite3")`); on
PostgreSQL each path becomes its own database, created from a template that was migrated once per
session (CREATE DATABASE ... TEMPLATE: tens of milliseconds), and dropped at the end of the session.
The same path gives the same database, so a "restart" in a test reopens what it wrote.

PostgreSQL is found at XIAOGE_TEST_PG_URL (an admin URL, default: the local server's Unix socket as
the current user). `.ci/run` starts the server; without it a PostgreSQL run fails at once, loudly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.db import Database

DEFAULT_ADMIN_URL = "postgresql:///postgres?host=/var/run/postgresql"
BACKEND = {"name": os.environ.get("XIAOGE_TEST_DB", "sqlite")}
_created: set[str] = set()
_template: dict[str, str] = {}
_lock: asyncio.Lock | None = None


def backend() -> str:
    return BACKEND["name"]


def on_postgresql() -> bool:
    return backend() == "postgresql"


def admin_url() -> str:
    return os.environ.get("XIAOGE_TEST_PG_URL", DEFAULT_ADMIN_URL)


def _with_database(url: str, name: str) -> str:
    # Spelled out: urlunsplit drops the "//" of a URL without a host ("postgresql:///db?host=/run").
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")


def database_name(path: str | Path) -> str:
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]
    return f"xgt_{os.getpid()}_{digest}"


def url_for(path: str | Path) -> str:
    """The PostgreSQL URL standing for this SQLite path."""
    return _with_database(admin_url(), database_name(path))


async def _admin() -> Any:
    import asyncpg

    return await asyncpg.connect(admin_url())


async def _ensure_template() -> str:
    if "name" in _template:
        return _template["name"]
    from storage.pg import PgDatabase

    name = f"xgt_{os.getpid()}_template"
    conn = await _admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = PgDatabase(_with_database(admin_url(), name), min_size=1, max_size=1)
    await db.open()
    try:
        await db.migrate()
    finally:
        await db.close()
    _template["name"] = name
    return name


async def ensure(path: str | Path) -> str:
    """Create the database standing for `path` (once) and return its URL."""
    global _lock
    name = database_name(path)
    if name in _created:
        return url_for(path)
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if name not in _created:
            template = await _ensure_template()
            conn = await _admin()
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            finally:
                await conn.close()
            _created.add(name)
    return url_for(path)


def make_database(path: str | Path) -> Any:
    """A database for this path on the engine under test (unopened, like `Database(path)`)."""
    if not on_postgresql():
        return Database(path)
    from storage.pg import PgDatabase

    class TestPgDatabase(PgDatabase):
        async def open(self) -> Any:
            await ensure(path)
            return await super().open()

    return TestPgDatabase(url_for(path))


async def drop_all() -> None:
    """Drop every database this session created (and its template)."""
    names = sorted(_created) + ([_template["name"]] if "name" in _template else [])
    if not names:
        return
    conn = await _admin()
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    _created.clear()
    _template.clear()


async def check_reachable() -> str | None:
    """None when the PostgreSQL server answers, else one line saying why not."""
    try:
        conn = await _admin()
    except Exception as exc:
        return f"PostgreSQL is not reachable at {re.sub(r':[^:@/]*@', ':***@', admin_url())}: {exc}"
    await conn.close()
    return None
