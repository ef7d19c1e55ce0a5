"""Scratch PostgreSQL databases for the benchmarks: created empty, dropped afterwards.

The server is found at an admin URL (``--pg-url``, env XIAOGE_BENCH_PG_URL, default: the local
server's Unix socket as the current user); each benchmark creates its own databases there, named
``bench_<what>_<pid>_<n>``, and drops them (WITH (FORCE)) when done, even after a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

DEFAULT_ADMIN_URL = os.environ.get("XIAOGE_BENCH_PG_URL", "postgresql:///postgres?host=/var/run/postgresql")
ENGINES = ("sqlite", "postgresql")
_counter = itertools.count(1)


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` (spelled out: urlunsplit drops the "//" of a host-less URL)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")


def engines(text: str) -> list[str]:
    """``--db sqlite,postgresql`` as a list, in the order given; unknown names refused."""
    chosen = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in chosen if e not in ENGINES]
    if unknown or not chosen:
        raise SystemExit(f"--db: choose from {', '.join(ENGINES)} (got {text!r})")
    return chosen


async def create(admin_url: str, what: str, template: str | None = None) -> tuple[str, str]:
    """A new empty database (or a copy of ``template``): (its name, its URL)."""
    import asyncpg

    name = f"bench_{what}_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        extra = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{extra}')
    finally:
        await conn.close()
    return name, with_database(admin_url, name)


async def drop(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch(admin_url: str, what: str, template: str | None = None) -> AsyncIterator[str]:
    """``async with scratch(url, "rush") as db_url:`` a database that is gone afterwards."""
    name, url = await create(admin_url, what, template)
    try:
        yield url
    finally:
        await drop(admin_url, name)
