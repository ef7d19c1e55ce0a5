"""`xiaoge-bot migrate` / `run` on PostgreSQL: one line and exit 2 for a URL that cannot be used;
two instances migrating at once apply each migration once (the advisory lock)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import asyncpg
import pytest

from tests import dbs
from tests.test_cli import ROOT, run_cli

pytestmark = pytest.mark.postgresql_only


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "pg.toml"
    path.write_text(f'[storage]\nurl = "{url}"\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://nobody@127.0.0.1:{port}/x", "cannot reach the PostgreSQL server"),
        ("postgresql:///xgt_no_such_database?host=/var/run/postgresql", "does not exist"),
        ("postgresql://no_such_role_xg@/postgres?host=/var/run/postgresql", "PostgreSQL"),
    ],
)
def test_an_unusable_database_is_one_line_and_exit_2(tmp_path, url, says):
    cfg = _config(tmp_path, url.format(port=_closed_port()))
    result = run_cli("migrate", "--config", str(cfg), timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in result.stderr, result.stderr


async def test_two_instances_migrating_at_once_apply_each_migration_once(tmp_path):
    admin = await dbs._admin()
    name = f"xgt_migrate_{tmp_path.name[-12:]}".replace("-", "_").lower()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        cfg = _config(tmp_path, dbs._with_database(dbs.admin_url(), name))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "bot.cli", "migrate", "--config", str(cfg)]
        pipe = asyncio.subprocess.PIPE
        procs = [
            await asyncio.create_subprocess_exec(*command, cwd=ROOT, stdout=pipe, stderr=pipe, env=env)
            for _ in range(3)
        ]
        results = [await p.communicate() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], results
        conn = await asyncpg.connect(dbs._with_database(dbs.admin_url(), name))
        try:
            versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        finally:
            await conn.close()
        assert versions and len(versions) == len(set(versions))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
