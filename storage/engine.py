"""Which database engine serves this deployment: SQLite at `storage.path` (the embedded default), or
PostgreSQL when `storage.url` (env XIAOGE_BOT_DATABASE_URL) is set. Both have the same interface."""

from __future__ import annotations

from typing import Any

from storage.db import Database


def open_database(path: str, url: str = "") -> Any:
    """An unopened `Database` (SQLite) or `PgDatabase` (PostgreSQL); `await db.open()` it."""
    if url:
        from storage.pg import PgDatabase

        return PgDatabase(url)
    return Database(path)
