"""Benchmark: "the nearest 5 stations within 3 km" at 10k, 100k and 1M stations over Zhejiang.

For each size, once with stations spread uniformly over the province and once clustered like real
cities (dense cores, suburbs, a thin rural spread), it measures in one run, on the same query points:

- ours: the bot's real path, ``StationService.nearest`` (storage layer, SQLite index through
  aiosqlite, haversine re-ranking, the geodesic distance, bearing and opening status of each result):
  p50/p95 latency and queries/s one query at a time, and queries/s with 20 queries in flight (the bot
  answers updates concurrently; the database has 3 reader connections);
- three in-memory anchors over float64 arrays built once from the same stations. They return row
  numbers only (no record read, no distance, bearing or opening status to compute):

  - full scan: vectorised haversine over every station (the old baseline, kept for continuity);
  - lat band: latitudes sorted once; ``np.searchsorted`` finds the stations within +-3 km of
    latitude (the haversine distance is at least R * |dlat|, so the band holds the circle), and
    haversine runs on that band only;
  - KD-tree: ``scipy.spatial.cKDTree`` over 3-D unit vectors, the K + 3 nearest within the chord of
    3 km, re-ranked by exact haversine;

  each timed one query at a time on one thread (p50/p95, queries/s) and with one thread per core
  (queries/s; never more threads than cores);
- geodesic: the naive scan calling geopy's ``geodesic`` for every station. At 10k it runs whole for a
  few queries; at 100k and 1M its time is extrapolated from a 5,000-station sample per query.

It checks that every way returns the same stations in the same order as ours: the in-memory anchors
exactly (ties broken by station id, as ours does; their threaded runs too); against geodesic, orders
may differ only between two stations whose distances are within 0.5% of each other (the
haversine/ellipsoid difference). The order is the bot's: nearest first, except that a station closed
at the moment asked ranks as if it were farther (``rank_metres``: open ones first within a detour);
every way applies that rule to the same opening hours (the KD-tree asks for more neighbours until the
answer is certain, as ours does).

    python bench/bench_nearest.py [--sizes 10000,100000,1000000] [--layouts uniform,clustered]
                                  [--queries 2000] [--geodesic-queries 3] [--threads <cores>]
                                  [--at 12:00] [--db sqlite,postgresql] [--pg-url URL] [--explain]

``--db``: the engines ours runs on, side by side in one run (default sqlite): the same stations,
the same query points, the same ``StationService.nearest``. PostgreSQL gets a scratch database
(created at ``--pg-url``, an admin URL, and dropped afterwards), migrated by ``PgDatabase.migrate``
and filled with the same rows in the same order (so the station ids are the same): up to 200,000
stations through ``storage.stations.insert_many`` (the repository's INSERT, one round trip a row),
above that by asyncpg's ``copy_records_to_table`` into the same columns (the values from the same
``_data_values``); then ``VACUUM ANALYZE stations`` (what autovacuum does after a load: statistics
and the visibility map an index-only scan needs). ``--explain`` prints PostgreSQL's EXPLAIN ANALYZE of
the statements of the query at the 95th percentile (printed anyway when its target is missed).

``--at HH:MM``: the local time (Asia/Shanghai) on that Wednesday the couriers ask at. At 12:00 (the
default) a fifth of the stations are closed, at 02:10 three fifths.

Targets, every run: p95 <= 3 ms at 1M clustered stations through aiosqlite (issues #3 and #12),
p95 <= 5 ms through PostgreSQL (issue #15). An index held in this process's memory answers faster
than any database round trip; the summary says where and by how much, and what ours pays for.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geopy.distance import geodesic

from bench import pgscratch
from bot.core.clock import FakeClock
from bot.core.config import Config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.geo import EARTH_RADIUS_M
from bot.kit.opening_hours import parse_opening_hours
from bot.stations import facilities as fac
from bot.stations.service import OPEN_DETOUR_FACTOR, OPEN_DETOUR_M, StationService, rank_metres
from storage import stations as repo
from storage.db import Database, to_db

RADIUS_M = 3000.0
K = 5
IN_FLIGHT = 20  # ours: queries in flight at once (the bot answers updates concurrently)
KD_MARGIN = 3  # the KD-tree takes K + 3 by chord, so rounding near a tie cannot drop the K-th
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
MIN_QPS_SECONDS = 0.5  # a queries/s figure covers at least this much work (the query set repeated)
PG_COPY_ABOVE = 200_000  # PostgreSQL fills above this many stations by COPY, else by insert_many
TARGET_P95_MS = {"sqlite": 3.0, "postgresql": 5.0}
LABEL = {"sqlite": "ours (aiosqlite)", "postgresql": "ours (PostgreSQL)"}
NOW = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)  # a Wednesday noon in Hangzhou
TZ = dt.timezone(dt.timedelta(hours=8))

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
    return db, await index_map(db)


async def index_map(db) -> dict[int, int]:
    ids = await db.fetchall("SELECT id, external_id FROM stations")
    return {int(r[0]): int(r[1].removeprefix("bench-")) for r in ids}


async def build_pg(url: str, rows: list[repo.StationData], copy_above: int = PG_COPY_ABOVE):
    """The same stations in a migrated PostgreSQL database at ``url`` (empty): returns the open
    ``PgDatabase``, the map station id -> row index and how it was filled."""
    from storage.pg import PgDatabase

    db = await PgDatabase(url).open()
    await db.migrate()
    if len(rows) <= copy_above:
        how = "insert_many"
        async with db.transaction() as tx:
            for i in range(0, len(rows), 50_000):
                await repo.insert_many(tx, rows[i : i + 50_000], NOW)
    else:
        import asyncpg

        how = "COPY"
        stamp = to_db(NOW)
        columns = [*repo._DATA_COLUMNS, "created_at", "updated_at"]
        conn = await asyncpg.connect(url)
        try:
            for i in range(0, len(rows), 100_000):
                records = [(*repo._data_values(d), stamp, stamp) for d in rows[i : i + 100_000]]
                await conn.copy_records_to_table("stations", records=records, columns=columns)
        finally:
            await conn.close()
    await db.execute("VACUUM ANALYZE stations")
    return db, await index_map(db), how


# --------------------------------------------------------------------------------------------------
# The in-memory anchors and the naive scan
# --------------------------------------------------------------------------------------------------


def haversine_to(
    lat: float, lon: float, phi: np.ndarray, lon_deg: np.ndarray, cos_phi: np.ndarray
) -> np.ndarray:
    """``bot.kit.geo.haversine_m`` from one point to arrays of stations (phi = their latitude in
    radians): the same formula in the same order of operations, so the ranks agree with ours."""
    p = math.radians(lat)
    h = np.sin((phi - p) / 2) ** 2 + math.cos(p) * cos_phi * np.sin(np.radians(lon_deg - lon) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def rank(d: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """``bot.stations.service.rank_metres`` over arrays: a station closed now ranks farther."""
    return np.where(closed, np.maximum(d * OPEN_DETOUR_FACTOR, d + OPEN_DETOUR_M), d)


def nearest_k(
    d: np.ndarray, rows: np.ndarray, station_id: np.ndarray, closed: np.ndarray | None = None
) -> list[int]:
    """Of candidate ``rows`` within the radius (``d``: their metres), the first K as the bot ranks
    them (by ``rank``, then distance and station id; ``closed[row]``: closed now)."""
    key = d if closed is None else rank(d, closed[rows])
    if len(d) > K:
        keep = key <= np.partition(key, K - 1)[K - 1]  # the first K and any tied with the K-th
        d, rows, key = d[keep], rows[keep], key[keep]
    return rows[np.lexsort((station_id[rows], d, key))[:K]].tolist()


class FullScan:
    """Haversine over every station (the old baseline)."""

    name = "full scan"

    def __init__(
        self, lat: np.ndarray, lon: np.ndarray, station_id: np.ndarray, closed: np.ndarray | None = None
    ) -> None:
        self.lon = lon
        self.phi = np.radians(lat)
        self.cos_phi = np.cos(self.phi)
        self.station_id = station_id
        self.closed = closed
        self.nbytes = self.phi.nbytes + self.cos_phi.nbytes + lon.nbytes

    def query(self, lat: float, lon: float) -> list[int]:
        d = haversine_to(lat, lon, self.phi, self.lon, self.cos_phi)
        within = np.flatnonzero(d <= RADIUS_M)
        return nearest_k(d[within], within, self.station_id, self.closed)


class LatBand:
    """Latitudes sorted once; haversine only on the band of +-3 km of latitude around the query."""

    name = "lat band"

    def __init__(
        self, lat: np.ndarray, lon: np.ndarray, station_id: np.ndarray, closed: np.ndarray | None = None
    ) -> None:
        self.closed = closed
        self.row = np.argsort(lat, kind="stable")
        self.lat = lat[self.row]
        self.lon = lon[self.row]
        self.phi = np.radians(self.lat)
        self.cos_phi = np.cos(self.phi)
        self.station_id = station_id
        # haversine >= R * |dphi|: the band holds every station within the radius (with room for rounding)
        self.half_deg = math.degrees(RADIUS_M / EARTH_RADIUS_M) * (1 + 1e-9)
        self.nbytes = sum(a.nbytes for a in (self.row, self.lat, self.lon, self.phi, self.cos_phi))

    def query(self, lat: float, lon: float) -> list[int]:
        lo = int(np.searchsorted(self.lat, lat - self.half_deg, "left"))
        hi = int(np.searchsorted(self.lat, lat + self.half_deg, "right"))
        d = haversine_to(lat, lon, self.phi[lo:hi], self.lon[lo:hi], self.cos_phi[lo:hi])
        within = np.flatnonzero(d <= RADIUS_M)
        return nearest_k(d[within], self.row[lo + within], self.station_id, self.closed)


class KDTree:
    """scipy's cKDTree over 3-D unit vectors: the K + 3 nearest within the 3 km chord (the chord grows
    with the great-circle distance, so they are the nearest by haversine too), re-ranked by haversine.
    With closed stations ranked farther, more are asked for until every station nearer than the K-th
    rank has been seen (as ours does)."""

    name = "KD-tree"
    NODE_BYTES = 72  # scipy's ckdtreenode: 9 machine words

    def __init__(
        self, lat: np.ndarray, lon: np.ndarray, station_id: np.ndarray, closed: np.ndarray | None = None
    ) -> None:
        self.closed = closed
        phi, lam = np.radians(lat), np.radians(lon)
        xyz = np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))
        self.tree = cKDTree(xyz)
        self.lon = lon
        self.phi = phi
        self.cos_phi = np.cos(phi)
        self.station_id = station_id
        self.chord = 2 * math.sin(RADIUS_M / (2 * EARTH_RADIUS_M)) * (1 + 1e-9)
        # The tree's copy of the points and its index, its nodes (estimated), the re-rank arrays.
        tree_bytes = self.tree.data.nbytes + self.tree.indices.nbytes + self.tree.size * self.NODE_BYTES
        self.nbytes = tree_bytes + self.phi.nbytes + self.cos_phi.nbytes + lon.nbytes

    def query(self, lat: float, lon: float) -> list[int]:
        p, lam = math.radians(lat), math.radians(lon)
        point = (math.cos(p) * math.cos(lam), math.cos(p) * math.sin(lam), math.sin(p))
        k = K + KD_MARGIN
        while True:
            dist, rows = self.tree.query(point, k=k, distance_upper_bound=self.chord)
            complete = not np.isfinite(dist[-1])  # fewer than k within the chord: the rest are inf
            rows = rows[np.isfinite(dist)]
            d = haversine_to(lat, lon, self.phi[rows], self.lon[rows], self.cos_phi[rows])
            within = d <= RADIUS_M
            found = nearest_k(d[within], rows[within], self.station_id, self.closed)
            if complete or self.closed is None or len(found) < K:
                return found
            # Sure when the K-th rank is within the distance of the last one read (with room for
            # the chord's rounding); else read twice as many.
            kth = rank(d[np.flatnonzero(rows == found[-1])], self.closed[found[-1:]])[0]
            if kth <= d.max() * (1 - 1e-6):
                return found
            k *= 2


ANCHORS = (FullScan, LatBand, KDTree)


def geodesic_scan(
    lat: np.ndarray, lon: np.ndarray, q: tuple[float, float], idx: np.ndarray, closed: np.ndarray
) -> list[tuple]:
    """The naive way: geopy's geodesic to every station in ``idx``; the first K within the radius as
    (rank metres, row), ranked as the bot ranks."""
    out = []
    for i in idx.tolist():
        d = geodesic(q, (lat[i], lon[i])).meters
        if d <= RADIUS_M:
            out.append((rank_metres(d, closed=bool(closed[i])), d, i))
    out.sort()
    return [(r, i) for r, _, i in out[:K]]


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
# Timing
# --------------------------------------------------------------------------------------------------


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def timed_serial(fn: Callable[[float, float], list[int]], queries: list[tuple[float, float]]) -> dict:
    """One query at a time on this thread: latencies, answers, and queries/s over >= MIN_QPS_SECONDS."""
    for q in queries[:50]:
        fn(*q)
    latencies, answers = [], []
    start = time.perf_counter()
    for q in queries:
        s = time.perf_counter()
        answers.append(fn(*q))
        latencies.append(time.perf_counter() - s)
    elapsed, done = time.perf_counter() - start, len(queries)
    while elapsed < MIN_QPS_SECONDS:  # fast ways: repeat the set so the q/s covers enough time
        s = time.perf_counter()
        for q in queries:
            fn(*q)
        elapsed, done = elapsed + time.perf_counter() - s, done + len(queries)
    return {
        "p50": pct(latencies, 50) * 1e3,
        "p95": pct(latencies, 95) * 1e3,
        "qps1": done / elapsed,
        "answers": answers,
        "n": len(queries),
    }


def timed_threads(
    fn: Callable[[float, float], list[int]], queries: list[tuple[float, float]], threads: int, reps: int
) -> tuple[float, list[list[int]]]:
    """The query set split into ``threads`` slices, each run by its own thread: queries/s and answers."""
    bounds = [len(queries) * t // threads for t in range(threads + 1)]

    def work(t: int) -> list[list[int]]:
        part = queries[bounds[t] : bounds[t + 1]]
        for _ in range(reps - 1):
            for q in part:
                fn(*q)
        return [fn(*q) for q in part]

    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        parts = list(pool.map(work, range(threads)))
        elapsed = time.perf_counter() - start
    return len(queries) * reps / elapsed, [a for part in parts for a in part]


def run_anchor(
    cls: type,
    lat: np.ndarray,
    lon: np.ndarray,
    station_id: np.ndarray,
    closed: np.ndarray,
    queries,
    threads: int,
) -> dict:
    s = time.perf_counter()
    anchor = cls(lat, lon, station_id, closed)
    build_s = time.perf_counter() - s
    r = timed_serial(anchor.query, queries)
    r.update(name=cls.name, build_s=build_s, mb=anchor.nbytes / 2**20, threads=threads, qpsn=None)
    if threads > 1:
        reps = max(1, round(r["qps1"] * MIN_QPS_SECONDS / len(queries)))
        r["qpsn"], r["answers_threads"] = timed_threads(anchor.query, queries, threads, reps)
    return r


# --------------------------------------------------------------------------------------------------
# One scenario
# --------------------------------------------------------------------------------------------------


class Recorder:
    """The database as the service sees it, noting the statements it is asked (for EXPLAIN)."""

    def __init__(self, db) -> None:
        self._db = db
        self.statements: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):
        return getattr(self._db, name)

    async def fetchall(self, sql: str, params=()):
        self.statements.append((sql, tuple(params)))
        return await self._db.fetchall(sql, params)

    async def fetchone(self, sql: str, params=()):
        self.statements.append((sql, tuple(params)))
        return await self._db.fetchone(sql, params)


async def explain_query(db, now: dt.datetime, q: tuple[float, float]) -> list[str]:
    """PostgreSQL's EXPLAIN (ANALYZE, BUFFERS) of each statement ours runs for the query ``q``."""
    recorder = Recorder(db)
    core = Core(config=Config(), clock=FakeClock(now), db=recorder, catalog=Catalog.load())
    await StationService(core).nearest(q[0], q[1], radius_m=RADIUS_M, limit=K)
    out = [f"query point {q[0]:.5f}, {q[1]:.5f}: {len(recorder.statements)} statements"]
    for sql, params in recorder.statements:
        plan = await db.fetchall("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        out.append(f"-- {sql}")
        out += [f"   {row[0]}" for row in plan]
    return out


async def run_ours(
    db: Database,
    index_of: dict[int, int],
    queries: list[tuple[float, float]],
    now: dt.datetime = NOW,
    engine: str = "sqlite",
) -> dict:
    core = Core(config=Config(), clock=FakeClock(now), db=db, catalog=Catalog.load())
    service = StationService(core)

    async def ours(q: tuple[float, float]) -> list[int]:
        found = await service.nearest(q[0], q[1], radius_m=RADIUS_M, limit=K)
        return [index_of[f.station.id] for f in found]

    for q in queries[:50]:  # warm the page cache and the caches of the opening-hours parser
        await ours(q)
    latencies, answers = [], []
    start = time.perf_counter()
    for q in queries:
        s = time.perf_counter()
        answers.append(await ours(q))
        latencies.append(time.perf_counter() - s)
    qps1 = len(queries) / (time.perf_counter() - start)
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def bounded(q: tuple[float, float]) -> list[int]:
        async with sem:
            return await ours(q)

    s = time.perf_counter()
    answers_flight = await asyncio.gather(*(bounded(q) for q in queries))
    qpsn = len(queries) / (time.perf_counter() - s)
    p95 = pct(latencies, 95)
    return {
        "name": "ours",
        "engine": engine,
        "label": LABEL[engine],
        # the query whose latency is nearest the 95th percentile (for EXPLAIN)
        "p95_query": queries[min(range(len(queries)), key=lambda i: abs(latencies[i] - p95))],
        "p50": pct(latencies, 50) * 1e3,
        "p95": p95 * 1e3,
        "qps1": qps1,
        "qpsn": qpsn,
        "answers": answers,
        "answers_threads": list(answers_flight),
        "n": len(queries),
    }


def agreement(ours: list[list[int]], r: dict) -> tuple[int, int]:
    """(queries answered alike, queries compared); a threaded run that differs counts as a miss."""
    threaded = r.get("answers_threads") or r["answers"]
    n = r["n"]
    return sum(a == b == c for a, b, c in zip(ours[:n], r["answers"], threaded[:n], strict=True)), n


def closed_at(rows: list[repo.StationData], size: int, at: dt.datetime) -> np.ndarray:
    """closed[row]: the station has opening hours and is closed at ``at`` (local time)."""
    closed = np.zeros(size, dtype=bool)
    shut = {h: bool(h) and not parse_opening_hours(h).status(at).is_open for h in HOURS}
    for r in rows:
        if shut[r.opening_hours]:
            closed[int(r.external_id.removeprefix("bench-"))] = True
    return closed


async def run_one(
    size: int,
    layout: str,
    n_queries: int,
    workdir: Path,
    geo_queries: int,
    threads: int,
    now: dt.datetime = NOW,
    engines: tuple[str, ...] = ("sqlite",),
    pg_url: str = pgscratch.DEFAULT_ADMIN_URL,
    explain: bool = False,
    pg_copy_above: int = PG_COPY_ABOVE,
) -> dict:
    """One size and layout: ours on each engine in ``engines`` (the first is the reference every
    other way is compared with), the anchors, the naive geodesic scan."""
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(20261125 + size + (layout == "clustered"))
    lat, lon = (clustered_points if layout == "clustered" else uniform_points)(rng, size)
    t0 = time.perf_counter()
    rows = station_rows(rng, lat, lon)
    rows_s = time.perf_counter() - t0
    closed = closed_at(rows, size, now.astimezone(TZ))
    # Couriers ask from where the work is: the same spread as the stations (a fresh sample).
    qlat, qlon = (clustered_points if layout == "clustered" else uniform_points)(rng, n_queries)
    queries = list(zip(qlat.tolist(), qlon.tolist(), strict=True))

    runs = []
    for engine in engines:
        t0 = time.perf_counter()
        if engine == "sqlite":
            path = workdir / f"{layout}-{size}.sqlite3"
            db, index_of = await build_db(path, rows)
            fill_s = time.perf_counter() - t0 + rows_s
            o = await run_ours(db, index_of, queries, now, engine)
            await db.close()
            o.update(db_mb=path.stat().st_size / 2**20, fill="insert_many", explain=[])
        else:
            async with pgscratch.scratch(pg_url, f"nearest_{layout}_{size}") as url:
                db, index_of, how = await build_pg(url, rows, pg_copy_above)
                fill_s = time.perf_counter() - t0 + rows_s
                try:
                    o = await run_ours(db, index_of, queries, now, engine)
                    o["db_mb"] = await db.fetchval("SELECT pg_database_size(current_database())") / 2**20
                    o["fill"] = how
                    missed = o["p95"] > TARGET_P95_MS[engine] and size >= 1_000_000
                    o["explain"] = await explain_query(db, now, o["p95_query"]) if explain or missed else []
                finally:
                    await db.close()
        o["load_s"] = fill_s
        runs.append((o, index_of))
    del rows
    ours, index_of = runs[0]
    engine_runs = [o for o, _ in runs]
    for o, other_index in runs[1:]:
        o["agree"] = agreement(ours["answers"], o)
        o["same_ids"] = other_index == index_of  # the same station ids: ties break alike
    del runs

    station_id = np.empty(size, dtype=np.int64)  # row -> station id: anchors break ties as ours does
    for sid, row in index_of.items():
        station_id[row] = sid
    anchors = []
    for cls in ANCHORS:
        # The full scan is slow: keep it to a few seconds (100 queries at 1M).
        n = min(len(queries), max(100, 40_000_000 // size)) if cls is FullScan else len(queries)
        r = run_anchor(cls, lat, lon, station_id, closed, queries[:n], threads)
        r["agree"] = agreement(ours["answers"], r)
        anchors.append(r)

    # Naive geodesic: whole at 10k; sampled (5,000 stations per query, time extrapolated) above.
    sample = min(size, 5000)
    scan = FullScan(lat, lon, station_id, closed)
    geo_times, agree_geo = [], 0
    for qi in range(geo_queries):
        q = queries[qi]
        if size <= sample:
            s = time.perf_counter()
            ref = geodesic_scan(lat, lon, q, np.arange(size), closed)
            geo_times.append(time.perf_counter() - s)
        else:
            pick = rng.choice(size, sample, replace=False)
            s = time.perf_counter()
            geodesic_scan(lat, lon, q, pick, closed)
            geo_times.append((time.perf_counter() - s) * size / sample)
            # The reference answer: geodesic over every station the haversine scan puts within 3.09 km
            # (a superset of the geodesic 3 km circle), since a 1M geodesic scan takes minutes.
            d = haversine_to(q[0], q[1], scan.phi, scan.lon, scan.cos_phi)
            ref = geodesic_scan(lat, lon, q, np.flatnonzero(d <= RADIUS_M * 1.03), closed)
        agree_geo += same_up_to_ties(ref, ours["answers"][qi])
    return {
        "size": size,
        "layout": layout,
        "load_s": ours["load_s"],
        "engines": engine_runs,
        "load_avg": (load_before, os.getloadavg()[0]),
        "found_avg": statistics.fmean(len(a) for a in ours["answers"]),
        "ours": ours,
        "anchors": anchors,
        "geo_s": statistics.fmean(geo_times) if geo_times else float("nan"),
        "agree_geo": (agree_geo, geo_queries),
    }


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def vs(ours: float, it: float) -> str:
    """How many times ours is faster (> 1) or the anchor is (< 1)."""
    return f"{ours / it:.1f}x" if ours >= it else f"1/{it / ours:.1f}"


def best_qps(r: dict) -> float:
    return max(r["qps1"], r["qpsn"] or 0.0)


def print_scenario(r: dict, threads: int) -> None:
    o = r["ours"]
    engines = r.get("engines", [o])
    print(
        f"{r['size']:>9,} {r['layout']:<9} "
        + ", ".join(
            f"{e.get('label', LABEL['sqlite'])} loaded in {e.get('load_s', r['load_s']):.1f}s"
            f" ({e['db_mb']:.0f} MB, {e.get('fill', 'insert_many')})"
            for e in engines
        )
        + f"; {r['found_avg']:.1f} found/query, load average {r['load_avg'][0]:.2f} -> {r['load_avg'][1]:.2f}"
    )
    for e in engines:
        same = f" | same as {o['label']} {e['agree'][0]}/{e['agree'][1]}" if e is not o else ""
        print(
            f"    {e.get('label', LABEL['sqlite']):<18} p50 {e['p50']:7.3f} ms  p95 {e['p95']:7.3f} ms"
            f"  {e['qps1']:>9,.0f} q/s 1 at a time {e['qpsn']:>9,.0f} q/s {IN_FLIGHT} in flight{same}"
        )
        for line in e.get("explain", []):
            print(f"      {line}")
    for a in r["anchors"]:
        par = f"{a['qpsn']:>9,.0f} q/s {threads} threads" if a["qpsn"] else "(one core: no threaded run)"
        vs_engines = ", ".join(
            f"{'ours' if len(engines) == 1 else e['engine']} p95 {vs(a['p95'], e['p95'])}"
            f" best q/s {vs(best_qps(e), best_qps(a))}"
            for e in engines
        )
        print(
            f"    {a['name']:<18} p50 {a['p50']:7.3f} ms  p95 {a['p95']:7.3f} ms"
            f"  {a['qps1']:>9,.0f} q/s 1 thread     {par}"
            f" | ours vs it: {vs_engines}"
            f" | same as ours {a['agree'][0]}/{a['agree'][1]}"
            f" | built in {a['build_s']:.2f}s, {a['mb']:.1f} MB"
        )
    g = r["agree_geo"]
    print(f"    {'geodesic (naive)':<18} {r['geo_s']:.2f} s/query | same as ours {g[0]}/{g[1]}", flush=True)


def print_table(results: list[dict], threads: int) -> None:
    """The markdown table of bench/RESULTS.md: per scenario, ours on each engine, then the anchors
    (compared with the first engine's ours), then the naive scan."""
    print()
    print(
        f"| stations | layout | way | p50 | p95 | q/s, 1 at a time | q/s, parallel ({IN_FLIGHT} in flight /"
        f" {threads} threads) | ours vs it: p95, best q/s | same answers as ours | built, memory |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        o = r["ours"]
        for i, e in enumerate(r.get("engines", [o])):
            head = f"| {r['size']:,} | {r['layout']} |" if i == 0 else "| | |"
            if e is o:
                same, cmp = f"{r['found_avg']:.1f} found/query", ""
            else:
                same = f"{e['agree'][0]}/{e['agree'][1]}"
                cmp = f"{o['engine']} vs {e['engine']}: {vs(e['p95'], o['p95'])}, {vs(best_qps(o), best_qps(e))}"
            held = (
                "SQLite page cache"
                if e.get("engine", "sqlite") == "sqlite"
                else "the server's shared_buffers"
            )
            print(
                f"{head} **{e.get('label', LABEL['sqlite'])}** | {e['p50']:.3f} ms | {e['p95']:.3f} ms |"
                f" {e['qps1']:,.0f} | {e['qpsn']:,.0f} | {cmp} | {same} |"
                f" {e['db_mb']:.0f} MB, filled in {e.get('load_s', r['load_s']):.0f} s"
                f" ({e.get('fill', 'insert_many')}); held: {held} |"
            )
        for a in r["anchors"]:
            qpsn = f"{a['qpsn']:,.0f}" if a["qpsn"] else "-"
            print(
                f"| | | {a['name']} | {a['p50']:.3f} ms | {a['p95']:.3f} ms | {a['qps1']:,.0f} | {qpsn} |"
                f" {vs(a['p95'], o['p95'])}, {vs(best_qps(o), best_qps(a))} |"
                f" {a['agree'][0]}/{a['agree'][1]} | {a['build_s']:.2f} s, {a['mb']:.1f} MB |"
            )
        g = r["agree_geo"]
        print(f"| | | geodesic (naive) | {r['geo_s']:.2f} s | | | | | {g[0]}/{g[1]} | |")


def span(ratios: list[float]) -> str:
    lo, hi = f"{min(ratios):.1f}x", f"{max(ratios):.1f}x"
    return lo if lo == hi else f"{lo} to {hi}"


def print_summary(results: list[dict]) -> bool:
    """The plain words: where an anchor beats ours and by how much, and whether the target is met."""
    print(
        "\nours vs it: N.Nx = ours is N.N times faster; 1/N = the anchor is N times faster than ours."
        " best q/s = the better of one at a time and parallel, for each."
    )
    last = results[-1]  # the largest size, clustered when both layouts ran
    for name in [a["name"] for a in results[0]["anchors"]]:
        runs = [(r, next(x for x in r["anchors"] if x["name"] == name)) for r in results]
        where = lambda rs: ", ".join(f"{r['size']:,} {r['layout']}" for r, _ in rs)  # noqa: E731
        faster = [(r, a) for r, a in runs if a["p95"] < r["ours"]["p95"]]
        slower = [(r, a) for r, a in runs if a["p95"] >= r["ours"]["p95"]]
        parts = []
        if faster:
            ratios = [r["ours"]["p95"] / a["p95"] for r, a in faster]
            parts.append(f"FASTER than ours at p95 at {where(faster)} ({span(ratios)} faster)")
        if slower:
            ratios = [a["p95"] / r["ours"]["p95"] for r, a in slower]
            parts.append(f"slower than ours at {where(slower)} (ours {span(ratios)} faster)")
        a = runs[-1][1]
        o = last["ours"]
        parts.append(
            f"at {last['size']:,} {last['layout']}: p95 {a['p95']:.3f} ms vs ours {o['p95']:.3f} ms,"
            f" best q/s {best_qps(a):,.0f} vs ours {best_qps(o):,.0f}"
        )
        print(f"- {name} (in memory): " + "; ".join(parts) + ".")
    if any(a["p95"] < r["ours"]["p95"] for r in results for a in r["anchors"]):
        print(
            "  What ours pays for: the database is the truth (an edit, import or deactivation counts"
            " at once; no index to rebuild, keep in sync or load at start) and nothing is held in the"
            " bot's memory (one process; idle RSS budget 80 MB). Each of ours' answers also carries the"
            " station's record, its distance, bearing and opening status; the anchors return row numbers."
        )
    engines = [e for r in results for e in r.get("engines", [r["ours"]])]
    agree = (
        all(a["agree"][0] == a["agree"][1] for r in results for a in r["anchors"])
        and all(r["agree_geo"][0] == r["agree_geo"][1] for r in results)
        # ours with queries in flight answers as ours one at a time, on every engine
        and all(e["answers_threads"] == e["answers"] for e in engines)
        # every engine answers as the first
        and all(e["agree"][0] == e["agree"][1] for e in engines if "agree" in e)
    )
    for r in results:
        es = r.get("engines", [])
        if len(es) > 1:
            print(
                f"- {r['size']:,} {r['layout']}: "
                + "; ".join(
                    f"{e['label']} p95 {e['p95']:.3f} ms vs {es[0]['label']} {es[0]['p95']:.3f} ms"
                    f" ({vs(e['p95'], es[0]['p95'])} for {es[0]['engine']})"
                    for e in es[1:]
                )
            )
    ok = agree
    target = [r for r in results if r["size"] == 1_000_000 and r["layout"] == "clustered"]
    if target:
        for o in target[0].get("engines", [target[0]["ours"]]):
            engine = o.get("engine", "sqlite")
            met = o["p95"] <= TARGET_P95_MS[engine]
            print(
                f"1M clustered target, {o.get('label', LABEL['sqlite'])} p95 <= {TARGET_P95_MS[engine]:g} ms:"
                f" {'MET' if met else 'MISSED'} (p50 {o['p50']:.3f} ms, p95 {o['p95']:.3f} ms)"
            )
            ok = ok and met
    print("answers agree" if agree else "ANSWERS DIFFER")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--layouts", default="uniform,clustered")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--geodesic-queries", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=CORES, help=f"threads for the anchors' parallel run (cores: {CORES})"
    )
    parser.add_argument("--at", default="12:00", help="local time on the Wednesday asked at (HH:MM)")
    parser.add_argument("--db", default="sqlite", help="engines for ours, side by side: sqlite,postgresql")
    parser.add_argument(
        "--pg-url", default=pgscratch.DEFAULT_ADMIN_URL, help="PostgreSQL admin URL (scratch databases)"
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the p95 query on PostgreSQL")
    args = parser.parse_args()
    engines = tuple(pgscratch.engines(args.db))
    hour, minute = (int(x) for x in args.at.split(":"))
    now = dt.datetime(2026, 11, 25, hour, minute, tzinfo=TZ).astimezone(dt.UTC)
    threads = max(1, min(args.threads, CORES))  # never more threads than cores
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{CORES} cores, anchors on 1 and {threads} threads; load average {os.getloadavg()[0]:.2f}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-nearest-") as tmp:
        for size in sizes:
            for layout in args.layouts.split(","):
                scenario = run_one(
                    size, layout, args.queries, Path(tmp), args.geodesic_queries, threads, now,
                    engines, args.pg_url, args.explain,
                )  # fmt: skip
                r = asyncio.run(scenario)
                results.append(r)
                print_scenario(r, threads)
    print_table(results, threads)
    return 0 if print_summary(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
