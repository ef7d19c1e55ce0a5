"""The benchmarks' PostgreSQL modes keep working (issue 15, section 6): tiny runs, the same answers
on both engines, no timing asserted. The full runs are in bench/RESULTS.md.

PostgreSQL only (`pytest --db postgresql`): each bench creates its own scratch databases at the test
server's admin URL and drops them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from tests import dbs

pytestmark = pytest.mark.postgresql_only

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    path = ROOT / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def _bench_databases() -> list[str]:
    """The scratch databases of benches run in this process (bench/pgscratch.py names them)."""
    conn = await asyncpg.connect(dbs.admin_url())
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", f"bench\\_%\\_{os.getpid()}\\_%"
        )
    finally:
        await conn.close()
    return sorted(r[0] for r in rows)


@pytest.mark.parametrize("fill", ["insert_many", "COPY"])
async def test_nearest_on_both_engines_answers_alike(tmp_path, monkeypatch, capsys, fill):
    bench = _bench("bench_nearest")
    monkeypatch.setattr(bench, "MIN_QPS_SECONDS", 0.0)
    before = await _bench_databases()
    r = await bench.run_one(
        3000, "clustered", 80, tmp_path, 1, 2,
        engines=("sqlite", "postgresql"), pg_url=dbs.admin_url(), explain=True,
        pg_copy_above=10**9 if fill == "insert_many" else 0,
    )  # fmt: skip
    sqlite, pg = r["engines"]
    assert (sqlite["engine"], pg["engine"]) == ("sqlite", "postgresql")
    assert pg["fill"] == fill
    assert pg["same_ids"]  # the same station ids, so ties break alike
    assert pg["agree"] == (80, 80)
    assert pg["answers"] == sqlite["answers"] and pg["answers_threads"] == pg["answers"]
    assert r["found_avg"] > 0
    for a in r["anchors"]:
        assert a["agree"] == (80, 80), a["name"]
    assert any("Index" in line for line in pg["explain"])  # the plan of the p95 query
    bench.print_scenario(r, 2)
    bench.print_table([r], 2)
    assert bench.print_summary([r])
    out = capsys.readouterr().out
    assert "ours (PostgreSQL)" in out and "ours (aiosqlite)" in out and "answers agree" in out
    assert await _bench_databases() == before  # the scratch database is gone


async def test_rush_on_both_engines_answers_every_courier():
    bench = _bench("bench_rush")
    before = await _bench_databases()
    runs = {
        engine: await bench.run(4.0, 2.0, 0.0, 0.0, 16, engine, dbs.admin_url())
        for engine in ("sqlite", "postgresql")
    }
    for engine, r in runs.items():
        assert r["unanswered"] == 0, engine
        assert r["answered"] == 8, engine
        # No handler failed: every courier got an answer, not an apology (on PostgreSQL 15 the ring
        # search of nearest_any once failed for a subquery without a name).
        assert r["errors"] == 0, engine
    assert runs["postgresql"]["answered_chats"] == runs["sqlite"]["answered_chats"]
    print(bench.line("ours (postgresql)", runs["postgresql"]))
    assert await _bench_databases() == before


async def test_failover_one_trial(capsys):
    bench = _bench("bench_failover")
    before = await _bench_databases()
    results = await bench.run(1, 3.0, 0.0, dbs.admin_url())
    assert len(results) == 1
    r = results[0]
    # The reply came from the standby, after the kill; B polled before it answered.
    assert 0 < r["polled"] < r["answered"]
    assert bench.summary(results, 3.0)
    out = capsys.readouterr().out
    assert "trial  1" in out and "not judged" in out
    assert await _bench_databases() == before
