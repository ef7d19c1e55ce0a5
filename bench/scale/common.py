"""Shared pieces of the scale benchmark: a database filled through the project's own code, a
service core on a fake clock, and latency figures printed the same way by every scenario."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.core.clock import FakeClock
from bot.core.config import Config, parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from storage.db import Database

NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)  # a Wednesday noon in Hangzhou
TARGET_P95_MS = 20.0


async def open_db(path: Path) -> Database:
    """A fresh, migrated database at `path` (the file is replaced)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(path)
    await db.open()
    await db.migrate()
    return db


def make_core(db: Database, config: Config | None = None, overrides: dict[str, Any] | None = None) -> Core:
    cfg = config or (parse_config(overrides, env={}) if overrides else Config())
    return Core(config=cfg, clock=FakeClock(NOW), db=db, catalog=Catalog.load())


async def timed(fn: Callable[[int], Awaitable[Any]], n: int, warmup: int = 5) -> list[float]:
    """Milliseconds of `n` calls `fn(i)`, one at a time, after `warmup` untimed calls."""
    for i in range(warmup):
        await fn(i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(path: str, size: int, unit: str, ours: list[float], naive: list[float] | None = None) -> dict:
    """Print one line: the path at a size, ours p50/p95 (and the target), the naive baseline's."""
    p50, p95 = pct(ours, 0.5), pct(ours, 0.95)
    line = f"{path:<34} {size:>10,} {unit:<10} p50 {p50:8.2f} ms  p95 {p95:8.2f} ms"
    line += "  ok " if p95 <= TARGET_P95_MS else "  SLOW"
    row = {"path": path, "size": size, "p50": p50, "p95": p95}
    if naive:
        n50, n95 = pct(naive, 0.5), pct(naive, 0.95)
        line += f" | naive p50 {n50:9.2f} ms  p95 {n95:9.2f} ms  ({n95 / max(p95, 1e-9):,.0f}x)"
        row.update(naive_p50=n50, naive_p95=n95)
    print(line, flush=True)
    return row


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
