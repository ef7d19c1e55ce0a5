"""Benchmark: "the nearest 5 stations within 3 km" at 10k, 100k and 1M stations over Zhejiang.

For each size, once with stations spread uniformly over the province and once clustered like real
cities (dense cores, suburbs, a thin rural spread), it measures in one run:

- ours: the bot's real path, ``StationService.nearest`` (storage layer, SQLite index through
  aiosqlite, haversine re-ranking, the geodesic distance, bearing and opening status of each result):
  p50/p95 latency one query at a time, and queries/s with 20 queries in flight;
- numpy: a vectorised haversine full scan over all stations (the same p50/p95 and 20-thread q/s);
- geodesic: the naive scan calling geopy's ``geodesic`` for every station. At 10k it runs whole for a
  few queries; at 100k and 1M its time is extrapolated from a 5,000-station sample per query.

and checks that all of them return the same stations in the same order (ours and numpy must agree
exactly; against geodesic, orders may differ only between two stations whose distances are within
0.5% of each other, the haversine/ellipsoid difference).

    python bench/bench_nearest.py [--sizes 10000,100000,1000000] [--queries 2000]

Targets (issue #3) at 1M clustered stations: p50 <= 1 ms, p95 <= 3 ms, >= 300 queries/s from one
process, >= 20x the numpy scan's queries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geopy.distance import geodesic

from bot.core.clock import FakeClock
from bot.core.config import Config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.geo import EARTH_RADIUS_M
from bot.stations import facilities as fac
from bot.stations.service import StationService
from storage import stations as repo
from storage.db import Database

RADIUS_M = 3000.0
K = 5
CONCURRENCY = 20
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)  # a Wednesday noon in Hangzhou

# Zhejiang's extent (WGS-84) and its cities with a rough weight for station density.
LAT_RANGE = (27.05, 31.18)
LON_RANGE = (118.03, 122.95)
CITIES = [
    ("杭州", 30.2741, 120.1551, 10.0),
    ("宁波", 29.8683, 121.5440, 8.0),
    ("温州", 27.9943, 120.6994, 8.0),
    ("嘉兴", 30.7522, 120.7555, 5.0),
    ("湖州", 30.8940, 120.0868, 3.0),
    ("绍兴", 30.0300, 120.5802, 5.0),
    ("金华", 29.0790, 119.6474, 4.0),
    ("义乌", 29.3069, 120.0751, 4.0),
    ("衢州", 28.9359, 118.8595, 2.0),
    ("舟山", 29.9853, 122.2072, 1.0),
    ("台州", 28.6564, 121.4208, 5.0),
    ("丽水", 28.4517, 119.9229, 2.0),
]
HOURS = ("24/7", "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00", "08:00-22:00", "Mo-Su 18:00-02:00", "")
CODES = [f.code for f in fac.FACILITIES]


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def clustered_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points like real station lists: 55% in city cores, 37% in suburbs, 8% spread rurally."""
    weights = np.array([c[3] for c in CITIES])
    city = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    clat = np.array([c[1] for c in CITIES])[city]
    clon = np.array([c[2] for c in CITIES])[city]
    kind = rng.random(n)
    sigma = np.where(kind < 0.55, 0.03, 0.15)  # ~3 km cores, ~15 km suburbs
    lat = clat + rng.normal(0.0, 1.0, n) * sigma
    lon = clon + rng.normal(0.0, 1.0, n) * sigma / np.cos(np.radians(clat))
    rural = kind >= 0.92
    lat[rural] = rng.uniform(*LAT_RANGE, rural.sum())
    lon[rural] = rng.uniform(*LON_RANGE, rural.sum())
    return np.clip(lat, *LAT_RANGE), np.clip(lon, *LON_RANGE)


def uniform_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(*LAT_RANGE, n), rng.uniform(*LON_RANGE, n)


def station_rows(rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray) -> list[repo.StationData]:
    n = len(lat)
    # Sorted by (lat cell, lon): the order the index wants, for a fast bulk load.
    order = np.lexsort((lon, np.floor((lat + 90.0) * repo.LAT_CELLS_PER_DEGREE)))
    hours = rng.integers(0, len(HOURS), n)
    fac_bits = rng.random((n, len(CODES))) < 0.3
    rows = []
    for i in order.tolist():
        codes = tuple(c for c, on in zip(CODES, fac_bits[i], strict=True) if on)
        rows.append(
            repo.StationData(
                external_id=f"bench-{i}",
                name=f"驿站 {i}",
                lat=float(lat[i]),
                lon=float(lon[i]),
                opening_hours=HOURS[hours[i]],
                facilities=codes,
                facility_mask=fac.facility_mask(codes),
                address=f"测试路 {i % 997} 号",
            )
        )
    return rows


async def build_db(path: Path, rows: list[repo.StationData]) -> tuple[Database, dict[int, int]]:
    """A migrated database holding ``rows``; returns it and the map station id -> row index."""
    db = await Database(path).open()
    await db.migrate()
    async with db.transaction() as tx:
        for i in range(0, len(rows), 50_000):
            await repo.insert_many(tx, rows[i : i + 50_000], NOW)
    await db.execute("ANALYZE")
    ids = await db.fetchall("SELECT id, external_id FROM stations")
    return db, {int(r[0]): int(r[1].removeprefix("bench-")) for r in ids}


# --------------------------------------------------------------------------------------------------
# The three ways to answer
# --------------------------------------------------------------------------------------------------


class NumpyScan:
    """Vectorised haversine over every station; nearest K within the radius, ties by index."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        self.phi = np.radians(lat)
        self.lam = np.radians(lon)
        self.cos_phi = np.cos(self.phi)

    def query(self, lat: float, lon: float) -> list[int]:
        p, lam = np.radians(lat), np.radians(lon)
        h = np.sin((self.phi - p) / 2) ** 2 + np.cos(p) * self.cos_phi * np.sin((self.lam - lam) / 2) ** 2
        d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
        within = np.flatnonzero(d <= RADIUS_M)
        if len(within) > K:
            part = np.argpartition(d[within], K)[: K + 1]
            within = within[part]
        order = sorted(within.tolist(), key=lambda i: (d[i], i))
        return order[:K]


def geodesic_scan(lat: np.ndarray, lon: np.ndarray, q: tuple[float, float], idx: np.ndarray) -> list[tuple]:
    """The naive way: geopy's geodesic to every station in ``idx``; nearest K within the radius."""
    out = []
    for i in idx.tolist():
        d = geodesic(q, (lat[i], lon[i])).meters
        if d <= RADIUS_M:
            out.append((d, i))
    out.sort()
    return out[:K]


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def same_up_to_ties(ref: list[tuple[float, int]], got: list[int]) -> bool:
    """``got`` equals the reference order, except swaps of stations within 0.5% of each other."""
    if len(ref) != len(got):
        # One may sit right at the 3 km boundary: haversine and geodesic differ by up to ~0.4%.
        return abs(len(ref) - len(got)) == 1 and all(
            d > RADIUS_M * 0.995 for d, _ in ref[min(len(ref), len(got)) :]
        )
    dist = {i: d for d, i in ref}
    if set(dist) != set(got):
        return False
    return all(
        abs(dist[a] - dist[b]) <= 0.005 * max(dist[a], dist[b])
        for a, b in zip(got, [i for _, i in ref], strict=True)
    )


# --------------------------------------------------------------------------------------------------
# One scenario
# --------------------------------------------------------------------------------------------------


async def run_one(size: int, layout: str, n_queries: int, workdir: Path, geo_queries: int) -> dict:
    rng = np.random.default_rng(20261125 + size + (layout == "clustered"))
    lat, lon = (clustered_points if layout == "clustered" else uniform_points)(rng, size)
    t0 = time.perf_counter()
    rows = station_rows(rng, lat, lon)
    db, index_of = await build_db(workdir / f"{layout}-{size}.sqlite3", rows)
    load_s = time.perf_counter() - t0
    del rows
    # Couriers ask from where the work is: the same spread as the stations (a fresh sample).
    qlat, qlon = (clustered_points if layout == "clustered" else uniform_points)(rng, n_queries)
    queries = list(zip(qlat.tolist(), qlon.tolist(), strict=True))

    core = Core(config=Config(), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    service = StationService(core)

    async def ours(q: tuple[float, float]) -> list[int]:
        found = await service.nearest(q[0], q[1], radius_m=RADIUS_M, limit=K)
        return [index_of[f.station.id] for f in found]

    for q in queries[:50]:  # warm the page cache and the caches of the opening-hours parser
        await ours(q)
    lat_ours, answers_ours = [], []
    for q in queries:
        s = time.perf_counter()
        answers_ours.append(await ours(q))
        lat_ours.append(time.perf_counter() - s)
    sem = asyncio.Semaphore(CONCURRENCY)

    async def bounded(q: tuple[float, float]) -> None:
        async with sem:
            await ours(q)

    s = time.perf_counter()
    await asyncio.gather(*(bounded(q) for q in queries))
    qps_ours = len(queries) / (time.perf_counter() - s)
    await db.close()

    scan = NumpyScan(lat, lon)
    n_np = min(len(queries), max(100, 40_000_000 // size))  # keep the slow scan to a few seconds
    lat_np, answers_np = [], []
    for q in queries[:n_np]:
        s = time.perf_counter()
        answers_np.append(scan.query(*q))
        lat_np.append(time.perf_counter() - s)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        s = time.perf_counter()
        list(pool.map(lambda q: scan.query(*q), queries[:n_np]))
        qps_np = n_np / (time.perf_counter() - s)
    agree_np = sum(a == b for a, b in zip(answers_ours, answers_np, strict=False))

    # Naive geodesic: whole at 10k; sampled (5,000 stations per query, time extrapolated) above.
    sample = min(size, 5000)
    geo_times, agree_geo = [], 0
    for qi in range(geo_queries):
        q = queries[qi]
        if size <= sample:
            s = time.perf_counter()
            ref = geodesic_scan(lat, lon, q, np.arange(size))
            geo_times.append(time.perf_counter() - s)
        else:
            pick = rng.choice(size, sample, replace=False)
            s = time.perf_counter()
            geodesic_scan(lat, lon, q, pick)
            geo_times.append((time.perf_counter() - s) * size / sample)
            # The reference answer: geodesic over every station the haversine scan puts within 3.1 km
            # (an exact superset of the geodesic 3 km circle), since a 1M geodesic scan takes minutes.
            p, lam = np.radians(q[0]), np.radians(q[1])
            h = np.sin((scan.phi - p) / 2) ** 2 + np.cos(p) * scan.cos_phi * np.sin((scan.lam - lam) / 2) ** 2
            near = np.flatnonzero(
                2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0))) <= RADIUS_M * 1.03
            )
            ref = geodesic_scan(lat, lon, q, near)
        agree_geo += same_up_to_ties(ref, answers_ours[qi])
    return {
        "size": size,
        "layout": layout,
        "load_s": load_s,
        "found_avg": statistics.fmean(len(a) for a in answers_ours),
        "p50": pct(lat_ours, 50) * 1e3,
        "p95": pct(lat_ours, 95) * 1e3,
        "qps": qps_ours,
        "np_p50": pct(lat_np, 50) * 1e3,
        "np_p95": pct(lat_np, 95) * 1e3,
        "np_qps": qps_np,
        "geo_s": statistics.fmean(geo_times),
        "agree_np": f"{agree_np}/{len(answers_np)}",
        "agree_geo": f"{agree_geo}/{geo_queries}",
        "ok_np": agree_np == len(answers_np),
        "ok_geo": agree_geo == geo_queries,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--layouts", default="uniform,clustered")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--geodesic-queries", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-nearest-") as tmp:
        for size in sizes:
            for layout in args.layouts.split(","):
                r = asyncio.run(run_one(size, layout, args.queries, Path(tmp), args.geodesic_queries))
                results.append(r)
                print(
                    f"{size:>9,} {layout:<9} loaded in {r['load_s']:.1f}s, {r['found_avg']:.1f} found/query:"
                    f" ours p50 {r['p50']:.3f} ms p95 {r['p95']:.3f} ms {r['qps']:,.0f} q/s |"
                    f" numpy p50 {r['np_p50']:.2f} ms p95 {r['np_p95']:.2f} ms {r['np_qps']:,.0f} q/s |"
                    f" geodesic {r['geo_s']:.2f} s/query | same as numpy {r['agree_np']},"
                    f" as geodesic {r['agree_geo']}",
                    flush=True,
                )
    print()
    print(
        "| stations | layout | ours p50 | ours p95 | ours q/s (20 in flight) | numpy p50 | numpy q/s | speed-up"
        " | geodesic s/query | same answers |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['size']:,} | {r['layout']} | {r['p50']:.3f} ms | {r['p95']:.3f} ms | {r['qps']:,.0f} |"
            f" {r['np_p50']:.2f} ms | {r['np_qps']:,.0f} | {r['qps'] / r['np_qps']:.1f}x | {r['geo_s']:.2f} |"
            f" numpy {r['agree_np']}, geodesic {r['agree_geo']} |"
        )
    ok = all(r["ok_np"] and r["ok_geo"] for r in results)
    target = [r for r in results if r["size"] == 1_000_000 and r["layout"] == "clustered"]
    if target:
        t = target[0]
        met = t["p50"] <= 1.0 and t["p95"] <= 3.0 and t["qps"] >= 300 and t["qps"] >= 20 * t["np_qps"]
        print(
            f"\n1M clustered targets (p50 <= 1 ms, p95 <= 3 ms, >= 300 q/s, >= 20x numpy):"
            f" {'MET' if met else 'MISSED'}"
        )
        ok = ok and met
    print("answers agree" if all(r["ok_np"] and r["ok_geo"] for r in results) else "ANSWERS DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
