"""Free-text station search (`/stations 文三路`, and any plain text in a private chat) at 10k, 100k
and 1M stations.

Stations get names, addresses and areas like the real lists ("蒋村花园骑手驿站", "西湖区文三路126号",
"文新街道"): a few thousand road names, a few hundred street areas, ten kinds of places. The queries
are what couriers type: a road (3-4 characters), a street area, a kind of place ("花园骑手", matching
thousands), a station's full name, 1-2 characters ("文三", "厕所", "驿"), and words that match nothing
("不存在的地方", "你好", "hello"). Timed through `StationService.search` as the handler calls it (5 shown
+ 1 to know there are more; the free-text probe asks for 1). The naive baseline is the query before
0012_station_search.sql: `LIKE '%q%'` on three columns over every active station.
"""

from __future__ import annotations

import random
import time

from bench.scale.cache import cached_db
from bench.scale.common import NOW, make_core, report, timed
from bot.stations.service import StationService
from storage import stations as repo
from storage.db import Database

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
GENERATOR = "stations-v1"

_CHARS = (
    "文三古荡蒋村翠苑学院教工莫干天目潮王保俶延安凤起西溪东新南星北山中河华人民解放建国和平胜利"
    "长江黄龙钱塘之江滨江临平余杭萧山富阳桐庐淳安建德拱墅上城下沙丁桥九堡笕桥半山良渚仓前五常闲林"
)
_ROAD_ENDS = ("路", "街", "大道", "巷", "西路", "东路", "中路", "北路", "南路")
_KINDS = (
    "职工驿站", "骑手驿站", "暖蜂驿站", "公益饮水点", "党群服务中心",
    "换电柜", "小哥食堂", "爱心商家", "充电站", "爱心驿站",
)  # fmt: skip
_LANDMARKS = (
    "花园", "新村", "商务中心", "科技园", "农贸市场", "数字大厦", "电子市场", "广场",
    "公园", "小区", "地铁站", "医院", "学校", "公共厕所", "超市",
)  # fmt: skip
_CITIES = ("杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "义乌", "衢州", "舟山", "台州", "丽水")


class Names:
    def __init__(self, rng: random.Random) -> None:
        c = _CHARS
        self.roads = sorted({rng.choice(c) + rng.choice(c) + rng.choice(_ROAD_ENDS) for _ in range(3000)})
        self.districts = sorted(
            {city + rng.choice(c) + rng.choice(c) + "区" for city in _CITIES for _ in range(6)}
        )
        self.areas = sorted({rng.choice(c) + rng.choice(c) + "街道" for _ in range(400)})


def station_rows(size: int, seed: int = 1) -> tuple[list[repo.StationData], Names]:
    rng = random.Random(seed)
    names = Names(rng)
    c = _CHARS
    rows = []
    for i in range(size):
        road = rng.choice(names.roads)
        r = rng.random()
        if r < 0.4:
            name = f"{road}{rng.choice(_LANDMARKS)}{rng.choice(_KINDS)}"
        elif r < 0.7:
            name = f"{rng.choice(c)}{rng.choice(c)}{rng.choice(_LANDMARKS)}{rng.choice(_KINDS)}"
        else:
            name = f"{road}{rng.choice(names.roads)}口{rng.choice(_KINDS)}"
        # Spread over Zhejiang; sorted by (lat cell, lon) below for the nearest index's bulk load.
        lat, lon = rng.uniform(27.05, 31.18), rng.uniform(118.03, 122.95)
        rows.append(
            repo.StationData(
                external_id=f"bench-{i}",
                name=name,
                lat=lat,
                lon=lon,
                address=f"{rng.choice(names.districts)}{road}{rng.randint(1, 999)}号",
                area=rng.choice(names.areas),
                opening_hours="24/7",
            )
        )
    rows.sort(key=lambda d: (repo.lat_cell(d.lat), d.lon))
    return rows, names


def queries(names: Names, rows: list[repo.StationData], n: int, seed: int = 2) -> dict[str, list[str]]:
    rng = random.Random(seed)
    long_q: list[str] = []
    short_q: list[str] = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            long_q.append(rng.choice(names.roads))
        elif kind == 1:
            long_q.append(rng.choice(names.areas) if i % 12 == 1 else rng.choice(names.districts))
        elif kind == 2:
            long_q.append(rng.choice(_LANDMARKS)[:2] + rng.choice(_KINDS)[:2])  # "花园骑手": thousands
        elif kind == 3:
            long_q.append(rng.choice(rows).name)
        elif kind == 4:
            long_q.append(rng.choice(("不存在的地方", "hello", "文三路翠苑", "ok cool")))
        short_q.append(
            rng.choice(
                (
                    rng.choice(names.roads)[:2],
                    "文三",
                    "厕所",
                    "驿",
                    "医院",
                    "你好",
                    "ok",
                    "?",
                    rng.choice(_CHARS),
                )
            )
        )
    return {"3+ characters": long_q, "1-2 characters": short_q}


async def naive_search(db: Database, text: str, limit: int) -> list[int]:
    """The search before 0012_station_search.sql: LIKE over every active station."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await db.fetchall(
        "SELECT id FROM stations WHERE active = 1"
        " AND (name LIKE ?1 ESCAPE '\\' OR address LIKE ?1 ESCAPE '\\' OR area LIKE ?1 ESCAPE '\\')"
        " ORDER BY (name LIKE ?1 ESCAPE '\\') DESC, name, id LIMIT ?2",
        (pattern, limit),
    )
    return [r[0] for r in rows]


async def run(args) -> None:
    for size in QUICK_SIZES if args.quick else SIZES:
        await measure(args, size)


async def measure(args, size: int) -> None:
    rows, names = station_rows(size)

    async def fill(db: Database) -> None:
        async with db.transaction() as tx:
            for i in range(0, len(rows), 50_000):
                await repo.insert_many(tx, rows[i : i + 50_000], NOW)

    started = time.perf_counter()
    db, built = await cached_db(args.workdir, "stations", size, GENERATOR, fill)
    if built:
        print(f"   built {size:,} stations in {time.perf_counter() - started:.0f} s", flush=True)
    try:
        service = make_core(db).service(StationService)
        n = 60 if args.quick else 300
        for label, qs in queries(names, rows, n).items():
            mismatches = 0
            for q in qs[:40]:  # the same stations in the same order as the plain scan
                if [f.station.id for f in await service.search(q, limit=6)] != await naive_search(db, q, 6):
                    mismatches += 1
            if mismatches:
                print(f"   !! {mismatches} of 40 answers differ from the plain scan ({label})", flush=True)
            ours_ms = await timed(lambda i, qs=qs: service.search(qs[i % len(qs)], limit=6), len(qs))
            naive_n = len(qs) if size <= 100_000 else 20
            naive_ms = await timed(lambda i, qs=qs: naive_search(db, qs[i % len(qs)], 6), naive_n, warmup=1)
            report(f"/stations <text>, {label}", size, "stations", ours_ms, naive_ms)
        probe = [q for qs in queries(names, rows, n, seed=3).values() for q in qs]
        probe_ms = await timed(lambda i: service.search(probe[i % len(probe)], limit=1), len(probe))
        report("plain text probe (limit 1)", size, "stations", probe_ms)
    finally:
        await db.close()
