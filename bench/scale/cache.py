"""Databases of the scale scenarios kept in --workdir between runs (building a million rows takes a
minute or more): a file is reused only when it was filled completely by the same generator and the
same migrations, else it is built again."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.scale.common import open_db
from storage.db import Database, available_migrations


def _fingerprint(generator: str) -> str:
    """The generator and the migrations' SQL (comments left out: editing one keeps the databases)."""
    digest = hashlib.sha1(generator.encode())
    for version, name, sql in available_migrations():
        code = " ".join(re.sub(r"--[^\n]*", "", sql).split())
        digest.update(f"{version}{name}{code}".encode())
    return digest.hexdigest()[:10]


async def cached_db(
    workdir: Path, name: str, size: int, generator: str, fill: Callable[[Database], Awaitable[None]]
) -> tuple[Database, bool]:
    """The database ``name``-``size`` in ``workdir``; ``fill`` runs only when it has to be built.
    Returns it and whether it was built now. ``generator`` names the data's shape (bump it when the
    filling changes)."""
    path = Path(workdir) / f"{name}-{size}-{_fingerprint(generator)}.sqlite3"
    if path.exists():
        db = Database(path)
        await db.open()
        if await db.fetchval(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'bench_filled'"
        ):
            return db, False
        await db.close()
    db = await open_db(path)
    await fill(db)
    await db.execute("CREATE TABLE bench_filled (at TEXT)")
    await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, True
