"""Benchmark: every frequent path at millions of rows, through the services and aiosqlite.

Each scenario fills a database through the project's own code (repositories and services), then
times its path at 2-3 sizes so growth is visible, one call at a time (p50/p95 in ms, target: p95 <=
20 ms at the largest size), beside a naive baseline measured in the same run where there is one
(what the code did before: a LIKE scan, a full read, COUNT(*) per insert ...).

    python bench/bench_scale.py [--only stations,wishes,...] [--quick] [--workdir DIR]

--quick runs the smallest sizes only (a smoke test, used by tests/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Scenario name -> module under bench/scale/ (each has `async def run(args) -> list[dict]`).
SCENARIOS: dict[str, str] = {
    "stations": "bench.scale.stations",
    "wishes": "bench.scale.wishes",
    "rank": "bench.scale.rank",
    "reports": "bench.scale.reports",
    "desk": "bench.scale.desk",
    "outbox": "bench.scale.outbox",
    "meetings": "bench.scale.meetings",
}


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="smallest sizes only (smoke test)")
    parser.add_argument("--workdir", default="", help="where the databases go (default: a temp folder)")
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = Path(args.workdir or tmp)
        args.workdir.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            print(f"\n== {name}", flush=True)
            started = time.perf_counter()
            module = importlib.import_module(SCENARIOS[name])
            await module.run(args)
            print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
