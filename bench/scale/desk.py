"""The moderators' desk at scale: the board of one area, the map of every open report, the week's
figures, with reports filled through storage/reports.py (insert + compare-and-set status changes).

Reports spread over two years and 20 areas, filled through storage/reports.py (insert and
set_status, so report_counts and the hotspot groups are kept as in production); 4% are still open
(the rest resolved or rejected), a third without a location; access grievances name one of 300
compounds. Naive baselines, measured in the same run:
  board  - per status column a listing + count on the plan before migration 0060 (the reports_status
           index, the area checked row by row);
  map    - every open report read, the area and the location checked in Python;
  week   - every report since the week's start read in full (the old reports.created_since) and counted.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from bench.scale.common import NOW, make_core, open_db, report, timed
from bot.desk import DeskAccess, DeskService, MapFilters
from bot.reports.service import OPEN_STATUSES, STATUSES
from storage import reports as repo
from storage.db import Database, to_db

AREAS = [f"街道{i:02d}" for i in range(20)]
CATEGORIES = {"hazard": ["road_damage", "manhole", "flooding"], "grievance": ["access", "wages", "parking"]}
SIZES = (10_000, 100_000, 1_000_000)
# 300 compounds, each in one area and kept by one of 40 property companies (access grievances name one).
PLACES = tuple((f"小区{i:03d}", f"物业{i % 40:02d}", AREAS[i % len(AREAS)]) for i in range(300))
SPAN_DAYS = 730


async def fill(db: Database, size: int, seed: int = 16) -> None:
    """Through storage/reports.py's own statements (insert, then the compare-and-set status changes
    that stamp acknowledged_at / resolved_at and keep report_counts and the hotspot groups), in
    batched transactions."""
    rnd = random.Random(seed)
    batch = 2000
    for start in range(0, size, batch):
        async with db.transaction() as tx:
            for _ in range(min(batch, size - start)):
                kind = rnd.choice(("hazard", "grievance"))
                category = rnd.choice(CATEGORIES[kind])
                created = NOW - dt.timedelta(seconds=rnd.uniform(0, SPAN_DAYS * 86400))
                located = rnd.random() < 0.67
                place = PLACES[rnd.randrange(len(PLACES))] if category == "access" else None
                record = await repo.insert(
                    tx,
                    kind=kind,
                    category=category,
                    description="文三路口有个大坑" * 3,
                    voice_file_id=None,
                    lat=30.2 + rnd.random() * 0.2 if located else None,
                    lon=120.0 + rnd.random() * 0.3 if located else None,
                    place_text=None,
                    compound=place[0] if place else None,
                    property_company=place[1] if place else None,
                    anonymous=False,
                    reporter_id=rnd.randrange(1, 50_000),
                    area=place[2] if place else rnd.choice(AREAS),
                    origin_chat_id=None,
                    now=created,
                )
                if rnd.random() < 0.96:  # handled: acknowledged after hours, closed after days
                    ack = created + dt.timedelta(hours=rnd.uniform(0.2, 30))
                    await repo.set_status(
                        tx, record.id, expected="new", new="acknowledged", now=min(ack, NOW)
                    )
                    end = min(NOW, ack + dt.timedelta(hours=rnd.uniform(1, 120)))
                    final = "resolved" if rnd.random() < 0.85 else "rejected"
                    await repo.set_status(tx, record.id, expected="acknowledged", new=final, now=end)
                elif rnd.random() < 0.4:
                    await repo.set_status(tx, record.id, expected="new", new="in_progress", now=created)


async def _naive_board(db: Database, area: str) -> int:
    """Per status column the service's listing + count, on the plan they had before migration 0060
    (the reports_status index, the area checked row by row)."""
    total = 0
    for status in STATUSES:
        rows = await db.fetchall(
            "SELECT * FROM reports INDEXED BY reports_status WHERE status = ? AND area = ?"
            " ORDER BY created_at, id LIMIT 1000",
            (status, area),
        )
        total += len(rows)
        await db.fetchval(
            "SELECT COUNT(*) FROM reports INDEXED BY reports_status WHERE status = ? AND area = ?",
            (status, area),
        )
    return total


async def _naive_map(db: Database, area: str) -> int:
    """Every open report read, the area and the location checked in Python."""
    marks = ",".join("?" * len(OPEN_STATUSES))
    rows = await db.fetchall(
        f"SELECT * FROM reports INDEXED BY reports_status WHERE status IN ({marks})", list(OPEN_STATUSES)
    )
    return len([r for r in rows if r["lat"] is not None and r["area"] == area])


async def _naive_week(db: Database, start: dt.datetime) -> int:
    """Every report since the week's start read in full, as the export's old created_since did."""
    rows = await db.fetchall(
        "SELECT * FROM reports WHERE created_at >= ? ORDER BY created_at, id", (to_db(start),)
    )
    return len([repo._record(r) for r in rows])


async def run(args: Any) -> list[dict]:
    sizes = SIZES[:1] if args.quick else SIZES
    rows: list[dict] = []
    for size in sizes:
        path = Path(args.workdir) / f"desk-{size}.sqlite3"
        if path.exists() and not args.quick:
            db = Database(path)
            await db.open()
            await db.migrate()
            have = await db.fetchval("SELECT COUNT(*) FROM reports")
        else:
            have = 0
        if have != size:
            if have:
                await db.close()
            db = await open_db(path)
            started = time.perf_counter()
            await fill(db, size)
            print(f"   filled {size:,} reports in {time.perf_counter() - started:.0f} s", flush=True)
        try:
            rows += await measure(db, size)
        finally:
            await db.close()
    return rows


async def measure(db: Database, size: int) -> list[dict]:
    rows: list[dict] = []
    core = make_core(db)
    desk = core.service(DeskService)
    area_mod = DeskAccess(user_id=1, reports=frozenset({AREAS[3]}), stations=frozenset(), tasks=frozenset())
    everyone = DeskAccess(user_id=2, reports=None, stations=frozenset(), tasks=frozenset())
    n = 60 if size < 1_000_000 else 40
    slow_n = max(5, n // 4)

    ours = await timed(lambda i: desk.board(area_mod, "zh"), n)
    naive = await timed(lambda i: _naive_board(db, AREAS[3]), slow_n, warmup=1)
    rows.append(report("desk board (one area)", size, "reports", ours, naive))
    ours = await timed(lambda i: desk.board(everyone, "zh"), n)
    rows.append(report("desk board (all areas)", size, "reports", ours))

    filters = MapFilters()
    ours = await timed(lambda i: desk.map_data(area_mod, filters, "zh"), n)
    naive = await timed(lambda i: _naive_map(db, AREAS[3]), slow_n, warmup=1)
    rows.append(report("desk map (one area)", size, "reports", ours, naive))
    ours = await timed(lambda i: desk.map_data(everyone, filters, "zh"), n)
    rows.append(report("desk map (all areas)", size, "reports", ours))
    # ReportService.access_hotspots (kept totals) placed at their grievances' mean location.
    ours = await timed(lambda i: desk.hotspots(area_mod, filters), max(10, n // 3))
    rows.append(report("desk hotspots (one area)", size, "reports", ours))

    start = desk.week_start()
    begin = dt.datetime.combine(start, dt.time(0), tzinfo=core.tz).astimezone(dt.UTC)
    ours = await timed(lambda i: desk.week(start, areas=None), n)
    naive = await timed(lambda i: _naive_week(db, begin), slow_n, warmup=1)
    rows.append(report("desk week (all areas)", size, "reports", ours, naive))
    ours = await timed(lambda i: desk.week(start, areas=frozenset({AREAS[3]})), n)
    rows.append(report("desk week (one area)", size, "reports", ours))
    return rows
