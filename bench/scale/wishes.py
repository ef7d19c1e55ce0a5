"""/wishes (the wish wall) at 1k and 10k open tasks, with five times as many closed, cancelled,
completed and already started ones around them.

Tasks are posted over the next 30 days around Hangzhou (most with a pin: dense in the centre, thinner
in the suburbs; a fifth without), in 20 areas, a third with a claim deadline, some with claims. Timed
through `TaskService.wall` as the handler calls it: soonest first (page 1, a later page, one area) and
nearest first for a courier who shared a location (page 1, a later page, one area). The naive
baseline is the wall before 0032_wall_and_rank.sql: every open task read with its claim counts, the
distance computed for each, sorted in Python, one page cut out.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time

from bench.scale.cache import cached_db
from bench.scale.common import NOW, make_core, report, timed
from bot.kit.geo import LatLon, distance_m
from bot.tasks import TaskService, WallItem
from storage import tasks as store
from storage.db import Database, to_db

SIZES = (1_000, 10_000)
QUICK_SIZES = (1_000,)
GENERATOR = "wishes-v1"
CLOSED_PER_OPEN = 5
CENTRE = (30.2741, 120.1551)
AREAS = [
    f"{name}街道"
    for name in "蒋村 文新 古荡 翠苑 西溪 北山 灵隐 转塘 留下 三墩 祥符 米市 湖滨 清波 小营 望江 闸弄 四季 笕桥 彭埠".split()
]


def _point(rng: random.Random) -> tuple[float, float]:
    sigma = 0.03 if rng.random() < 0.6 else 0.15  # ~3 km core, ~15 km suburbs
    return (
        CENTRE[0] + rng.gauss(0.0, sigma),
        CENTRE[1] + rng.gauss(0.0, sigma) / math.cos(math.radians(CENTRE[0])),
    )


async def fill(db: Database, open_tasks: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    total = open_tasks * (1 + CLOSED_PER_OPEN)
    async with db.transaction() as tx:
        for i in range(total):
            is_open = i % (1 + CLOSED_PER_OPEN) == 0
            if is_open:
                starts = NOW + dt.timedelta(minutes=rng.randint(30, 30 * 24 * 60))
            else:
                starts = NOW + dt.timedelta(minutes=rng.randint(-120 * 24 * 60, 30 * 24 * 60))
            lat, lon = _point(rng) if rng.random() < 0.8 else (None, None)
            task_id = await store.insert(
                tx,
                title=f"心愿 {i}",
                description="",
                starts_at=starts,
                ends_at=starts + dt.timedelta(hours=2),
                place_text="",
                lat=lat,
                lon=lon,
                area=rng.choice(AREAS),
                slots=rng.randint(1, 5),
                points=10,
                claim_deadline=starts - dt.timedelta(hours=2) if rng.random() < 0.3 else None,
                private_details=None,
                created_by=1,
                now=NOW,
            )
            if not is_open:
                state = "open" if starts <= NOW else rng.choice(["closed", "cancelled", "completed"])
                if state != "open":
                    await store.set_state(tx, task_id, state, ["open"], NOW)
            elif rng.random() < 0.3:
                await store.take_slot(tx, task_id, 100 + i, ["withdrawn", "declined"], NOW)
                await store.touch(tx, task_id, NOW)


async def naive_wall(service: TaskService, page: int, location, area: str | None) -> list[WallItem]:
    """The wall before the paged queries: every task taking claims, sorted in Python."""
    db = service.core.db
    stamp = to_db(service.core.clock.now())
    sql = (
        "SELECT id FROM tasks WHERE state IN ('open', 'full') AND starts_at > ?"
        " AND (claim_deadline IS NULL OR claim_deadline > ?)"
    )
    params: list[object] = [stamp, stamp]
    if area is not None:
        sql += " AND area = ?"
        params.append(area)
    counts = await store.with_counts(db, [r[0] for r in await db.fetchall(sql, params)])
    items = [WallItem(c) for c in counts]
    if location is not None:
        here = LatLon(*location)
        items = [
            WallItem(c, None if c.task.lat is None else distance_m(here, LatLon(c.task.lat, c.task.lon)))
            for c in counts
        ]
        items.sort(key=lambda i: (i.distance_m is None, i.distance_m or 0.0, i.count.task.starts_at))
    size = service.config.page_size
    pages = max(1, math.ceil(len(items) / size))
    page = min(max(page, 0), pages - 1)
    return items[page * size : (page + 1) * size]


async def run(args) -> None:
    for size in QUICK_SIZES if args.quick else SIZES:
        await measure(args, size)


async def measure(args, size: int) -> None:
    started = time.perf_counter()
    db, built = await cached_db(args.workdir, "wishes", size, GENERATOR, lambda db: fill(db, size))
    if built:
        print(
            f"   built {size:,} open tasks (+{size * CLOSED_PER_OPEN:,} others) in {time.perf_counter() - started:.0f} s"
        )
    try:
        service = make_core(db).service(TaskService)
        rng = random.Random(5)
        spots = [_point(rng) for _ in range(200)]
        located = NOW - dt.timedelta(minutes=10)
        first = await service.wall(0)
        assert first.total >= size * 0.9, first.total  # (a few open ones have a deadline already passed)
        pages = first.pages
        cases = [
            ("soonest, page 1", lambda i: (0, None, None)),
            ("soonest, a later page", lambda i: (2 + i % min(20, pages - 2), None, None)),
            ("soonest, one area", lambda i: (i % 3, None, AREAS[i % len(AREAS)])),
            ("nearest, page 1", lambda i: (0, spots[i % len(spots)], None)),
            ("nearest, a later page", lambda i: (2 + i % 9, spots[i % len(spots)], None)),
            ("nearest, one area", lambda i: (i % 3, spots[i % len(spots)], AREAS[i % len(AREAS)])),
        ]
        n = 40 if args.quick else 200
        for label, case in cases:
            for i in range(5 if args.quick else 20):  # the same page as the full sort
                page, location, area = case(i)
                ours = await service.wall(
                    page, location=location, located_at=located if location else None, area=area
                )
                theirs = await naive_wall(service, page, location, area)
                if [(x.count.task.id, x.distance_m) for x in ours.items] != [
                    (x.count.task.id, x.distance_m) for x in theirs
                ]:
                    print(f"   !! {label}: page {page} differs from the full sort", flush=True)
                    break

            async def ours_call(i: int, case=case) -> None:
                page, location, area = case(i)
                await service.wall(
                    page, location=location, located_at=located if location else None, area=area
                )

            async def naive_call(i: int, case=case) -> None:
                page, location, area = case(i)
                await naive_wall(service, page, location, area)

            report(
                f"/wishes {label}",
                size,
                "open tasks",
                await timed(ours_call, n),
                await timed(naive_call, n // 4),
            )
    finally:
        await db.close()
