"""/rank (this month's 金牌哨兵, overall and per area, corrections counted) at 100k and 1M ledger rows.

20,000 couriers (2,000 at 100k rows) in 30 areas earn points over the last six months, half of the
rows in this month: task credits, report credits, moderators' corrections (some negative) and
redemptions. The ledger is filled through storage.points' own INSERT (append_many, an executemany of
append's statement), so the month totals are written by their trigger as in production. Timed through
`PointsService.rank` as the handler calls it, for couriers anywhere in the ranking (the top 10 plus
the asking courier's place): this month overall, this month in one area, last month. The naive
baseline is the rank before 0032_wall_and_rank.sql: the month's ledger rows summed per user and
sorted (the same query and the same place lookup as then).
"""

from __future__ import annotations

import datetime as dt
import random
import time

from dateutil.relativedelta import relativedelta

from bench.scale.cache import cached_db
from bench.scale.common import NOW, make_core, report, timed
from bot.points import RANK_SIZE, PointsService
from storage import points as ledger
from storage.db import Database, to_db

SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000,)
GENERATOR = "rank-v1"
AREAS = [f"片区{i:02d}" for i in range(30)]
REASONS = ["task_done"] * 14 + ["report_valid"] * 3 + ["adjust", "redeem", "redeem"]


def _users(size: int) -> int:
    return max(200, size // 50)


async def fill(db: Database, size: int, service: PointsService, seed: int = 1) -> None:
    rng = random.Random(seed)
    users = _users(size)
    month_start, _ = service.month_bounds()
    this_month = (NOW - month_start).total_seconds()
    past = (NOW - (month_start - relativedelta(months=5))).total_seconds()
    user_area = [rng.choice(AREAS) for _ in range(users + 1)]
    batch: list[ledger.NewEntry] = []
    for i in range(size):
        # Half in this month, the rest over the five months before; active couriers earn more often.
        back = rng.uniform(0, this_month) if i % 2 == 0 else rng.uniform(this_month, past)
        user = min(users, int(users * rng.random() ** 2) + 1)  # some couriers far busier than others
        reason = rng.choice(REASONS)
        delta = {"task_done": 10, "report_valid": 5, "redeem": -20}.get(reason, rng.choice([5, -5, -10, 20]))
        batch.append(
            ledger.NewEntry(
                user_id=user,
                delta=delta,
                reason=reason,
                created_at=NOW - dt.timedelta(seconds=back),
                area=user_area[user] if reason != "redeem" else None,
                idem_key=f"bench:{i}",
            )
        )
        if len(batch) == 50_000:
            await ledger.append_many(db, batch)
            batch = []
    if batch:
        await ledger.append_many(db, batch)


async def naive_rank(db: Database, service: PointsService, user_id: int, month, area: str | None):
    """The rank before the month totals: the month's ledger summed per user (then its top 10 and the
    user's place, as the service did)."""
    start, end = service.month_bounds(month)
    sql = (
        "SELECT user_id, SUM(delta) AS earned FROM points_ledger"
        " WHERE reason <> 'redeem' AND created_at >= ? AND created_at < ?"
    )
    params: list[object] = [to_db(start), to_db(end)]
    if area is not None:
        sql += " AND area = ?"
        params.append(area)
    sql += " GROUP BY user_id HAVING earned > 0 ORDER BY earned DESC, MIN(created_at), user_id"
    rows = [(r[0], r[1]) for r in await db.fetchall(sql, params)]
    places = {uid: (place, pts) for place, (uid, pts) in enumerate(rows, 1)}
    return [(place, uid, pts) for place, (uid, pts) in enumerate(rows[:RANK_SIZE], 1)], places.get(user_id)


async def run(args) -> None:
    for size in QUICK_SIZES if args.quick else SIZES:
        await measure(args, size)


async def measure(args, size: int) -> None:
    started = time.perf_counter()

    async def build(db: Database) -> None:
        await fill(db, size, make_core(db).service(PointsService))

    db, built = await cached_db(args.workdir, "rank", size, GENERATOR, build)
    if built:
        print(f"   built {size:,} ledger rows in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        service = make_core(db).service(PointsService)
        users = _users(size)
        rng = random.Random(3)
        asking = [rng.randint(1, users) for _ in range(500)]
        last_month = (NOW - relativedelta(months=1)).date()
        cases = [
            ("this month", lambda i: (asking[i % len(asking)], None, None)),
            ("this month, one area", lambda i: (asking[i % len(asking)], None, AREAS[i % len(AREAS)])),
            ("last month", lambda i: (asking[i % len(asking)], last_month, None)),
        ]
        n = 40 if args.quick else 200
        for label, case in cases:
            for i in range(10):  # the same top 10 and place as summing the ledger
                user, month, area = case(i)
                board = await service.rank(user, month=month, area=area)
                top, own = await naive_rank(db, service, user, month, area)
                mine = None if board.own is None else (board.own.place, board.own.points)
                if [(e.place, e.user_id, e.points) for e in board.top] != top or mine != own:
                    print(
                        f"   !! {label}: the rank of user {user} differs from the ledger's sums", flush=True
                    )
                    break

            async def ours_call(i: int, case=case) -> None:
                user, month, area = case(i)
                await service.rank(user, month=month, area=area)

            async def naive_call(i: int, case=case) -> None:
                user, month, area = case(i)
                await naive_rank(db, service, user, month, area)

            naive_n = n // 4 if size <= 100_000 else 20
            report(
                f"/rank {label}", size, "ledger", await timed(ours_call, n), await timed(naive_call, naive_n)
            )
    finally:
        await db.close()
