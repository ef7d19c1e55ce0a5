"""Scale scenario: reports (grievances and hazard tips) for moderators, escalation and export.

Databases of 10k and 100k reports are filled through storage.reports (insert, add_photos, set_status:
the same statements the service runs, so report_counts and the hotspot groups are kept as in
production) in batched transactions: a year of reports over 20 areas, 300 compounds (each in one area,
kept by one of 40 property companies); 10% still 'new' and overdue, 5% acknowledged, 5% in progress
(the open ones mostly from the last months: old reports got handled), the rest resolved, rejected or
duplicates. Then, beside the old way measured in the same run (its queries kept here, the list and
hotspot ones on a copy without the indexes of migration 0022):

* /reports page 1 (the page and its total) and the access hotspots, for an area moderator (one of the
  20 areas) and an unscoped one (all areas): p50/p95 ms;
* escalation with 1k / 10k unacknowledged reports (on a copy of each database): total time, the
  longest single transaction (db.transaction wrapped) and the outbox rows queued;
* the CSV export of every report: seconds.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.scale.common import NOW, median, open_db, report, timed
from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.reports import categories as rc
from bot.reports.service import ESCALATION_PRIORITY, ReportService
from storage import reports as repo
from storage import users as users_repo
from storage.db import Database, to_db

SIZES = (10_000, 100_000)
AREAS = tuple(f"片区{i:02d}" for i in range(1, 21))
AREA = AREAS[0]  # the area moderator's one area
AREA_CHATS = {a: -2000 - i for i, a in enumerate(AREAS[:5], start=1)}  # five areas have their own chat
MODERATOR_CHAT = -1001
REPORTERS = 2_000
# 300 compounds, each in one area and kept by one of 40 property companies.
PLACES = tuple((f"小区{i:03d}", f"物业{i % 40:02d}", AREAS[i % len(AREAS)]) for i in range(300))
# Status of each report (in shares of 1,000): 10% still new (the unacknowledged ones), most resolved.
STATUS_SHARES = (
    ("new", 100),
    ("acknowledged", 50),
    ("in_progress", 50),
    ("resolved", 700),
    ("rejected", 80),
    ("duplicate", 20),
)
PATHS_OF: dict[str, tuple[str, ...]] = {
    "new": (),
    "acknowledged": ("acknowledged",),
    "in_progress": ("acknowledged", "in_progress"),
    "resolved": ("acknowledged", "in_progress", "resolved"),
    "rejected": ("rejected",),
    "duplicate": ("duplicate",),
}


def bench_core(db: Database) -> Core:
    config = parse_config(
        {"bot": {"moderator_chat_id": MODERATOR_CHAT, "area_moderator_chats": AREA_CHATS}}, env={}
    )
    return Core(config=config, clock=FakeClock(NOW), db=db, catalog=Catalog.load())


# -- filling --------------------------------------------------------------------------------------


async def fill(db: Database, size: int) -> None:
    rnd = random.Random(size)
    async with db.transaction() as tx:
        for i in range(REPORTERS):
            await users_repo.touch(
                tx,
                user_id=700_000 + i,
                first_name=f"骑手{i}",
                last_name=None,
                username=f"rider{i}" if i % 3 else None,
                language_code="zh",
                now=NOW,
                private_chat=True,
            )
    year = 365 * 24 * 3600
    # Every report is older than a day (the new ones are all overdue), in created order.
    offsets = sorted((rnd.randrange(26 * 3600, year) for _ in range(size)), reverse=True)
    # Exactly STATUS_SHARES of each status, the open ones mostly recent (old reports got handled):
    # a weighted draw without replacement (key u^(1/w), w falling with age over ~3 months).
    keys = sorted(
        range(size), key=lambda i: rnd.random() ** (1 / math.exp(-offsets[i] / 86400 / 90)), reverse=True
    )
    ranked = [s for s, share in STATUS_SHARES for _ in range(size * share // 1000)]
    ranked += ["resolved"] * (size - len(ranked))
    closed = ranked[sum(size * share // 1000 for s, share in STATUS_SHARES if s in repo.OPEN_STATUSES) :]
    rnd.shuffle(closed)  # handled reports of any age: resolved, rejected or duplicates alike
    ranked[len(ranked) - len(closed) :] = closed
    statuses = [""] * size
    for position, i in enumerate(keys):
        statuses[i] = ranked[position]
    grievances = [c.code for c in rc.categories(rc.GRIEVANCE)]
    hazards = [c.code for c in rc.categories(rc.HAZARD)]
    ids: list[int] = []
    batch = 1000
    for start in range(0, size, batch):
        async with db.transaction() as tx:
            for i in range(start, min(size, start + batch)):
                created = NOW - dt.timedelta(seconds=offsets[i])
                kind = rc.GRIEVANCE if rnd.random() < 0.6 else rc.HAZARD
                if kind == rc.GRIEVANCE:
                    category = rc.ACCESS if rnd.random() < 0.35 else rnd.choice(grievances)
                else:
                    category = rnd.choice(hazards)
                access = rc.is_access(kind, category)
                compound, company, area = rnd.choice(PLACES)
                if not access or rnd.random() < 0.1:  # filed from elsewhere (a group or a courier's area)
                    area = rnd.choice(AREAS) if rnd.random() < 0.9 else None
                report = await repo.insert(
                    tx,
                    kind=kind,
                    category=category,
                    description=rnd.choice(
                        ("文三路有个大坑", "保安不让电动车进小区", "=1+1 公式", "平台扣款")
                    ),
                    voice_file_id="voice" if rnd.random() < 0.1 else None,
                    lat=30.2 + rnd.random() / 10 if kind == rc.HAZARD else None,
                    lon=120.1 + rnd.random() / 10 if kind == rc.HAZARD else None,
                    place_text="文三路" if rnd.random() < 0.5 else None,
                    compound=compound if access and rnd.random() < 0.9 else None,
                    property_company=company if access and rnd.random() < 0.7 else None,
                    anonymous=kind == rc.GRIEVANCE and rnd.random() < 0.1,
                    reporter_id=700_000 + rnd.randrange(REPORTERS),
                    area=area,
                    origin_chat_id=None,
                    now=created,
                )
                if rnd.random() < 0.3:
                    await repo.add_photos(
                        tx, report.id, [f"photo{report.id}-{p}" for p in range(rnd.randint(1, 3))]
                    )
                current = "new"
                for step in PATHS_OF[statuses[i]]:
                    later = created + dt.timedelta(hours=rnd.randint(1, 20))
                    duplicate_of = rnd.choice(ids) if step == "duplicate" and ids else None
                    if step == "duplicate" and duplicate_of is None:
                        step = "rejected"
                    await repo.set_status(
                        tx, report.id, expected=current, new=step, now=later, duplicate_of=duplicate_of
                    )
                    current = step
                ids.append(report.id)


async def database(workdir: Path, size: int) -> Path:
    """The filled database of `size` reports (built once, reused from --workdir)."""
    path = workdir / f"reports-{size}.sqlite3"
    done = workdir / f"reports-{size}.ok"
    if path.exists() and done.exists():
        return path
    done.unlink(missing_ok=True)
    started = time.perf_counter()
    db = await open_db(path)
    try:
        await fill(db, size)
    finally:
        await db.close()
    done.write_text("filled\n")
    print(f"   (filled {size:,} reports in {time.perf_counter() - started:.0f} s)", flush=True)
    return path


async def open_copy(source: Path, name: str) -> Database:
    target = source.with_name(name)
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)
    db = Database(target)
    await db.open()
    await db.migrate()
    return db


# -- the old way (before 0022), kept here as the baseline -------------------------------------------


def _old_filters(area: str | Sequence[str] | None, statuses: Sequence[str]) -> tuple[str, list[Any]]:
    clauses = [f"status IN ({','.join('?' * len(statuses))})"]
    params: list[Any] = list(statuses)
    if isinstance(area, str):
        clauses.append("area = ?")
        params.append(area)
    elif area is not None:
        clauses.append(f"area IN ({','.join('?' * len(area))})" if area else "0 = 1")
        params.extend(area)
    return " WHERE " + " AND ".join(clauses), params


async def naive_page(db: Database, area: Sequence[str] | None) -> tuple[list[Any], int]:
    """/reports page 1: ORDER BY over every match, then COUNT(*) over every match."""
    where, params = _old_filters(area, repo.OPEN_STATUSES)
    rows = await db.fetchall(
        f"SELECT * FROM reports{where} ORDER BY created_at, id LIMIT 10 OFFSET 0", params
    )
    total = await db.fetchval(f"SELECT COUNT(*) FROM reports{where}", params)
    return [repo._record(r) for r in rows], int(total)


async def naive_hotspots(db: Database, area: Sequence[str] | None) -> list[Any]:
    """Access hotspots: every access grievance of the areas grouped at each call."""
    sql = (
        "SELECT TRIM(COALESCE(compound, '')) AS c, TRIM(COALESCE(property_company, '')) AS p,"
        " COUNT(*) AS total,"
        " SUM(CASE WHEN status IN ('new', 'acknowledged', 'in_progress') THEN 1 ELSE 0 END) AS open_count,"
        " MAX(created_at) AS last_at, GROUP_CONCAT(id) AS ids"
        " FROM reports WHERE kind = 'grievance' AND category = ? AND status <> 'duplicate'"
        " AND (TRIM(COALESCE(compound, '')) <> '' OR TRIM(COALESCE(property_company, '')) <> '')"
    )
    params: list[Any] = [rc.ACCESS]
    if area is not None:
        sql += f" AND area IN ({','.join('?' * len(area))})"
        params.extend(area)
    sql += " GROUP BY c, p ORDER BY total DESC, open_count DESC, last_at DESC LIMIT 5"
    return list(await db.fetchall(sql, params))


async def naive_escalate(service: ReportService) -> int:
    """One transaction: every unacknowledged report re-read whole, a card rendered and queued for each."""
    now = service.core.clock.now()
    waiting_since = now - dt.timedelta(hours=service.cfg.ack_timeout_hours)
    last_before = now - dt.timedelta(hours=23)
    today = now.astimezone(service.core.tz).date().isoformat()
    queued = 0
    async with service.db.transaction() as tx:
        rows = await tx.fetchall(
            """
            SELECT * FROM reports
            WHERE status = 'new' AND COALESCE(reopened_at, created_at) <= ?
              AND (last_escalated_at IS NULL OR last_escalated_at <= ?)
            ORDER BY created_at, id
            """,
            (to_db(waiting_since), to_db(last_before)),
        )
        for row in rows:
            found = repo._record(row)
            hours = int((now - (found.reopened_at or found.created_at)).total_seconds() // 3600)
            new = await service._queue_card(
                tx,
                found,
                now,
                key=f"rp:{found.id}:esc:{today}",
                # The old header ("still not acknowledged after N hours") left the catalog with the
                # digest: a header line of the same size stands in for it.
                header=("reports.digest.title", {"count": 1, "hours": hours}),
                priority=ESCALATION_PRIORITY,
            )
            if new:
                await repo.mark_escalated(tx, [found.id], now)
                queued += new
    return queued


async def naive_export(service: ReportService, stream: io.StringIO | Any) -> int:
    """Every report read at once, then one reporter lookup per row."""
    import csv

    from bot.kit.spreadsheet import escape_cell as _csv_safe

    core, db, lang = service.core, service.db, service.core.config.bot.default_language
    rows = await db.fetchall("SELECT * FROM reports WHERE created_at >= ? ORDER BY created_at, id", ("",))
    reports = [repo._record(r) for r in rows]
    ids = [r.id for r in reports]
    marks = ",".join("?" * len(ids))
    photos = {
        r[0]: r[1]
        for r in await db.fetchall(
            f"SELECT report_id, COUNT(*) FROM report_photos WHERE report_id IN ({marks}) GROUP BY report_id",
            ids,
        )
    }
    dup_ids = sorted({r.duplicate_of for r in reports if r.duplicate_of})
    dup_marks = ",".join("?" * len(dup_ids))
    originals = (
        {
            r["id"]: repo._record(r)
            for r in await db.fetchall(f"SELECT * FROM reports WHERE id IN ({dup_marks})", dup_ids)
        }
        if dup_ids
        else {}
    )
    t = core.t
    stream.write("\ufeff")
    writer = csv.writer(stream)
    writer.writerow([t(lang, f"reports.export.{c}") for c in service.EXPORT_COLUMNS])
    for found in reports:
        original = originals.get(found.duplicate_of) if found.duplicate_of else None
        row = [
            found.ref,
            t(lang, f"reports.kind.{found.kind}"),
            rc.category_label(core.catalog, lang, found.kind, found.category, icon=False),
            t(lang, f"reports.status.{found.status}"),
            service._local(found.created_at),
            service._local(found.acknowledged_at) if found.acknowledged_at else "",
            service._local(found.resolved_at) if found.resolved_at else "",
            found.area or "",
            found.description,
            t(lang, "reports.export.yes") if found.voice_file_id else "",
            photos.get(found.id, 0),
            found.place_text or "",
            f"{found.lat:.6f}" if found.lat is not None else "",
            f"{found.lon:.6f}" if found.lon is not None else "",
            found.compound or "",
            found.property_company or "",
            await service._reporter_name(db, found, lang),  # one users lookup per row
            found.supporters,
            original.ref if original else "",
        ]
        writer.writerow([_csv_safe(v) for v in row])
    return len(reports)


# -- measuring ------------------------------------------------------------------------------------


def watch_transactions(db: Database) -> list[float]:
    """Wrap db.transaction: the milliseconds each transaction held the writer (BEGIN to COMMIT)."""
    spans: list[float] = []
    inner = db.transaction

    @asynccontextmanager
    async def transaction() -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async with inner() as tx:
                yield tx
        finally:
            spans.append((time.perf_counter() - started) * 1000)

    db.transaction = transaction  # type: ignore[method-assign]
    return spans


async def outbox_rows(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM outbox"))


async def old_schema_copy(path: Path, size: int) -> Database:
    """A copy of the database with the indexes 0022 added dropped: the schema the old queries ran on."""
    db = await open_copy(path, f"reports-{size}-old-indexes.sqlite3")
    await db.execute("DROP INDEX reports_status_area")
    await db.execute("DROP INDEX reports_place")
    return db


async def bench_lists(path: Path, size: int, calls: int) -> None:
    db = Database(path)
    await db.open()
    old = await old_schema_copy(path, size)
    try:
        service = bench_core(db).service(ReportService)
        for who, area in (("area moderator", [AREA]), ("unscoped", None)):
            ours_page = await service.open_reports(area=area, limit=10)
            old_page = await naive_page(old, area)
            assert [r.id for r in ours_page[0]] == [r.id for r in old_page[0]] and ours_page[1] == old_page[1]
            ours_spots = await service.access_hotspots(area=area, limit=5)
            old_spots = await naive_hotspots(old, area)
            assert [(s.compound, s.property_company, s.total, s.open) for s in ours_spots] == [
                (r["c"], r["p"], r["total"], r["open_count"]) for r in old_spots
            ]
            page = await timed(lambda _i, area=area: service.open_reports(area=area, limit=10), calls)
            naive = await timed(lambda _i, area=area: naive_page(old, area), max(20, calls // 4))
            report(f"/reports page 1 ({who})", size, "reports", page, naive)
            spots = await timed(lambda _i, area=area: service.access_hotspots(area=area, limit=5), calls)
            naive = await timed(lambda _i, area=area: naive_hotspots(old, area), max(20, calls // 4))
            report(f"hotspots ({who})", size, "reports", spots, naive)
    finally:
        await db.close()
        await old.close()


async def bench_escalation(path: Path, size: int) -> None:
    """Ours, the old way, and ours again with SQLite's WAL auto-checkpoint off the writer connection
    (informative: the checkpoint runs inside whichever transaction commits past 1,000 WAL pages,
    this job's or any other's, and is what the longest transaction is made of)."""
    figures = {}
    for way in ("ours", "naive", "ours, checkpoint off the writer"):
        db = await open_copy(path, f"escalate-{size}.sqlite3")
        try:
            if "checkpoint" in way:
                await db.execute("PRAGMA wal_autocheckpoint=0")
            service = bench_core(db).service(ReportService)
            unacked = int(await db.fetchval("SELECT COUNT(*) FROM reports WHERE status = 'new'"))
            before = await outbox_rows(db)
            spans = watch_transactions(db)
            started = time.perf_counter()
            if way == "naive":
                await naive_escalate(service)
            else:
                result = await service.escalate_due()
                assert result.reports == unacked, (result, unacked)
            total = time.perf_counter() - started
            queued = await outbox_rows(db) - before
            stamped = await db.fetchval("SELECT COUNT(*) FROM reports WHERE last_escalated_at IS NOT NULL")
            assert stamped == unacked
            figures[way] = (unacked, total, spans, queued)
        finally:
            await db.close()
    unacked, total, spans, queued = figures["ours"]
    _, n_total, n_spans, n_queued = figures["naive"]
    verdict = "ok " if max(spans) <= 20 else "SLOW"
    print(
        f"{'escalation (unacknowledged)':<34} {unacked:>10,} {'reports':<10} total {total:6.2f} s"
        f"  {len(spans)} tx: p50 {median(spans):5.2f} ms  max {max(spans):6.2f} ms  queued {queued:,} row(s)"
        f"  {verdict} | naive total {n_total:6.2f} s  {len(n_spans)} tx: max {max(n_spans):9.2f} ms"
        f"  queued {n_queued:,} row(s)",
        flush=True,
    )
    _, c_total, c_spans, _ = figures["ours, checkpoint off the writer"]
    print(
        f"{'  (WAL checkpoint off the writer)':<34} {unacked:>10,} {'reports':<10} total {c_total:6.2f} s"
        f"  {len(c_spans)} tx: p50 {median(c_spans):5.2f} ms  max {max(c_spans):6.2f} ms",
        flush=True,
    )


async def bench_export(path: Path, size: int, workdir: Path) -> None:
    from bot.reports.service import export_reports

    db = Database(path)
    await db.open()
    try:
        core = bench_core(db)
        out = workdir / f"reports-{size}.csv"
        started = time.perf_counter()
        rows = await export_reports(core, None, str(out))
        ours = time.perf_counter() - started
        assert rows == size
        buffer = io.StringIO(newline="")
        started = time.perf_counter()
        assert await naive_export(core.service(ReportService), buffer) == size
        naive = time.perf_counter() - started
        same = buffer.getvalue().lstrip("\ufeff") == out.read_bytes().decode("utf-8-sig")
        verdict = "ok " if ours <= 3.0 else "SLOW"
        print(
            f"{'reports export (CSV)':<34} {size:>10,} {'rows':<10} {ours:8.2f} s  {verdict}"
            f" | naive {naive:8.2f} s  ({naive / max(ours, 1e-9):,.0f}x){'' if same else '  OUTPUT DIFFERS'}",
            flush=True,
        )
    finally:
        await db.close()


async def run(args: Any) -> None:
    sizes = SIZES[:1] if args.quick else SIZES
    calls = 40 if args.quick else 200
    paths = {size: await database(args.workdir, size) for size in sizes}
    for size in sizes:
        await bench_lists(paths[size], size, calls)
    for size in sizes:
        await bench_escalation(paths[size], size)
    for size in sizes:
        await bench_export(paths[size], size, args.workdir)
