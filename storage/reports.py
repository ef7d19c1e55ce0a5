"""Reports (grievances and hazard tips): rows, photos, audit events, supporters, moderator cards.

Status changes are compare-and-set (`UPDATE ... WHERE id = ? AND status = ? RETURNING *`): of two
moderators pressing at once exactly one statement matches.

What the moderators' list shows without reading every report is kept on write by `insert` and
`set_status` in the caller's transaction: report_counts (how many per status, area, kind, category)
and the access hotspot groups (report_hotspots per area, report_hotspot_totals over all areas).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from storage import locks
from storage.db import Executor, Row, from_db, from_db_required, to_db

STATUSES = ("new", "acknowledged", "in_progress", "resolved", "rejected", "duplicate")
OPEN_STATUSES = ("new", "acknowledged", "in_progress")
# Readable references: G-0017 (grievance, 诉求), H-0042 (hazard, 隐患).
KIND_PREFIX = {"grievance": "G", "hazard": "H"}


def format_ref(kind: str, seq: int) -> str:
    return f"{KIND_PREFIX[kind]}-{seq:04d}"


@dataclass(frozen=True)
class ReportRecord:
    id: int
    kind: str
    seq: int
    category: str
    description: str
    voice_file_id: str | None
    lat: float | None
    lon: float | None
    place_text: str | None
    compound: str | None
    property_company: str | None
    anonymous: bool
    reporter_id: int
    area: str | None
    origin_chat_id: int | None
    status: str
    duplicate_of: int | None
    supporters: int
    created_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    reopened_at: dt.datetime | None
    last_escalated_at: dt.datetime | None

    @property
    def ref(self) -> str:
        return format_ref(self.kind, self.seq)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class ReportEvent:
    id: int
    report_id: int
    actor_id: int | None
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    at: dt.datetime
    undone_by: int | None = None  # the 'undo' event that took this decision back


@dataclass(frozen=True)
class Hotspot:
    compound: str
    property_company: str
    total: int
    open: int
    last_at: dt.datetime


def _record(row: Row) -> ReportRecord:
    return ReportRecord(
        id=row["id"],
        kind=row["kind"],
        seq=row["seq"],
        category=row["category"],
        description=row["description"],
        voice_file_id=row["voice_file_id"],
        lat=row["lat"],
        lon=row["lon"],
        place_text=row["place_text"],
        compound=row["compound"],
        property_company=row["property_company"],
        anonymous=bool(row["anonymous"]),
        reporter_id=row["reporter_id"],
        area=row["area"],
        origin_chat_id=row["origin_chat_id"],
        status=row["status"],
        duplicate_of=row["duplicate_of"],
        supporters=row["supporters"],
        created_at=from_db_required(row["created_at"]),
        updated_at=from_db_required(row["updated_at"]),
        acknowledged_at=from_db(row["acknowledged_at"]),
        resolved_at=from_db(row["resolved_at"]),
        reopened_at=from_db(row["reopened_at"]),
        last_escalated_at=from_db(row["last_escalated_at"]),
    )


def _event(row: Row) -> ReportEvent:
    return ReportEvent(
        id=row["id"],
        report_id=row["report_id"],
        actor_id=row["actor_id"],
        action=row["action"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        note=row["note"],
        at=from_db_required(row["at"]),
        undone_by=row["undone_by"],
    )


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _place(report: ReportRecord) -> tuple[str, str] | None:
    """The hotspot group of a grievance naming a compound or a property company ('' = not given)."""
    if report.kind != "grievance":
        return None
    compound, company = (report.compound or "").strip(), (report.property_company or "").strip()
    return (compound, company) if compound or company else None


async def _count(db: Executor, status: str, area: str | None, kind: str, category: str, delta: int) -> None:
    await db.execute(
        "INSERT INTO report_counts(status, area, kind, category, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(status, area, kind, category) DO UPDATE SET n = report_counts.n + excluded.n",
        (status, area or "", kind, category, delta),
    )


# The hotspot groups per area (report_hotspots) and over all areas (report_hotspot_totals).
_HOTSPOT_TABLES = (
    ("report_hotspots", "category, area, compound, property_company"),
    ("report_hotspot_totals", "category, compound, property_company"),
)


def _hotspot_key(table: str, report: ReportRecord, place: tuple[str, str]) -> tuple[str, ...]:
    if table == "report_hotspots":
        return (report.category, report.area or "", *place)
    return (report.category, *place)


async def _hotspot_added(db: Executor, report: ReportRecord) -> None:
    place = _place(report)
    if place is None:
        return
    for table, columns in _HOTSPOT_TABLES:
        key = _hotspot_key(table, report, place)
        await db.execute(
            f"""
            INSERT INTO {table}({columns}, total, open, last_at) VALUES ({", ".join("?" * len(key))}, 1, 1, ?)
            ON CONFLICT({columns}) DO UPDATE SET
                total = {table}.total + 1,
                open = {table}.open + 1,
                last_at = CASE WHEN {table}.last_at IS NULL OR {table}.last_at < excluded.last_at
                               THEN excluded.last_at ELSE {table}.last_at END
            """,
            (*key, to_db(report.created_at)),
        )


async def _hotspot_moved(db: Executor, report: ReportRecord, old: str) -> None:
    """Keep the hotspot groups in step with a status change of a grievance in one: a duplicate leaves
    its group (the group's latest report is looked up again), open counts follow the status."""
    place = _place(report)
    if place is None:
        return
    new = report.status
    total = int(new != "duplicate") - int(old != "duplicate")
    opened = int(new in OPEN_STATUSES) - int(old in OPEN_STATUSES)
    if not total and not opened:
        return
    for table, columns in _HOTSPOT_TABLES:
        key = _hotspot_key(table, report, place)
        where = " AND ".join(f"{c} = ?" for c in columns.split(", "))
        if total < 0:  # the group's latest report may be the one that left
            compound = "compound = ?" if place[0] else "compound IS NULL"
            company = "property_company = ?" if place[1] else "property_company IS NULL"
            params: list[object] = [p for p in place if p] + [report.category]
            area = ""
            if table == "report_hotspots":
                area = " AND area = ?" if report.area else " AND area IS NULL"
                params += [report.area] if report.area else []
            latest = await db.fetchval(
                f"SELECT MAX(created_at) FROM reports WHERE {compound} AND {company}"
                f" AND kind = 'grievance' AND category = ?{area} AND status <> 'duplicate'",
                params,
            )
            await db.execute(
                f"UPDATE {table} SET total = total + ?, open = open + ?, last_at = ? WHERE {where}",
                (total, opened, latest, *key),
            )
        else:
            stamp = to_db(report.created_at) if total > 0 else None
            await db.execute(
                f"UPDATE {table} SET total = total + ?, open = open + ?,"
                f" last_at = CASE WHEN last_at IS NULL OR last_at < ? THEN ? ELSE last_at END WHERE {where}",
                (total, opened, stamp, stamp, *key),
            )


# -- writing ------------------------------------------------------------------------------------


async def insert(
    db: Executor,
    *,
    kind: str,
    category: str,
    description: str,
    voice_file_id: str | None,
    lat: float | None,
    lon: float | None,
    place_text: str | None,
    compound: str | None,
    property_company: str | None,
    anonymous: bool,
    reporter_id: int,
    area: str | None,
    origin_chat_id: int | None,
    now: dt.datetime,
) -> ReportRecord:
    """Insert a report with the next number of its kind, counted in report_counts (and in the hotspot
    groups when it is a grievance naming a compound or property company). Call inside a transaction."""
    compound, property_company, area = _text(compound), _text(property_company), _text(area)
    await locks.hold(db, locks.report_seq(kind))  # MAX(seq) + 1: one writer of a kind at a time
    row = await db.fetchone(
        """
        INSERT INTO reports(kind, seq, category, description, voice_file_id, lat, lon, place_text, compound,
                            property_company, anonymous, reporter_id, area, origin_chat_id, created_at, updated_at)
        VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM reports WHERE kind = ?),
                ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING *
        """,
        (
            kind,
            kind,
            category,
            description,
            voice_file_id,
            lat,
            lon,
            place_text,
            compound,
            property_company,
            int(anonymous),
            reporter_id,
            area,
            origin_chat_id,
            to_db(now),
            to_db(now),
        ),
    )
    assert row is not None
    report = _record(row)
    await _count(db, report.status, report.area, report.kind, report.category, 1)
    await _hotspot_added(db, report)
    return report


async def add_photos(db: Executor, report_id: int, file_ids: Sequence[str]) -> None:
    if file_ids:
        await db.executemany(
            "INSERT INTO report_photos(report_id, position, file_id) VALUES (?, ?, ?)",
            [(report_id, i, file_id) for i, file_id in enumerate(file_ids)],
        )


async def set_status(
    db: Executor,
    report_id: int,
    *,
    expected: str,
    new: str,
    now: dt.datetime,
    duplicate_of: int | None = None,
) -> ReportRecord | None:
    """Compare-and-set the status. None when the report is no longer in `expected`.

    Keeps the milestones: acknowledged_at is set by the first step past 'new'; resolved_at by
    'resolved' (cleared on a reopen); reopened_at when a resolved report goes back to 'new'. Keeps
    report_counts and the hotspot groups in step: call inside a transaction.
    """
    stamp = to_db(now)
    row = await db.fetchone(
        """
        UPDATE reports SET
            status = :new,
            updated_at = :now,
            duplicate_of = CASE WHEN :new = 'duplicate' THEN :dup ELSE duplicate_of END,
            acknowledged_at = CASE
                WHEN :new IN ('acknowledged', 'in_progress', 'resolved') THEN COALESCE(acknowledged_at, :now)
                ELSE acknowledged_at END,
            resolved_at = CASE WHEN :new = 'resolved' THEN :now WHEN :new = 'new' THEN NULL ELSE resolved_at END,
            reopened_at = CASE WHEN :new = 'new' THEN :now ELSE reopened_at END
        WHERE id = :id AND status = :expected
        RETURNING *
        """,
        {"new": new, "now": stamp, "dup": duplicate_of, "id": report_id, "expected": expected},
    )
    if row is None:
        return None
    report = _record(row)
    if new != expected:
        await _count(db, expected, report.area, report.kind, report.category, -1)
        await _count(db, new, report.area, report.kind, report.category, 1)
        await _hotspot_moved(db, report, expected)
    return report


async def add_event(
    db: Executor,
    report_id: int,
    *,
    actor_id: int | None,
    action: str,
    from_status: str | None,
    to_status: str | None,
    note: str | None,
    now: dt.datetime,
) -> int:
    return await db.fetchval(
        "INSERT INTO report_events(report_id, actor_id, action, from_status, to_status, note, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (report_id, actor_id, action, from_status, to_status, note, to_db(now)),
    )


async def add_supporter(db: Executor, report_id: int, user_id: int, now: dt.datetime) -> bool:
    """Add a "+1" voice and bump the count. False when the user already supports it. Use in a transaction."""
    added = await db.execute(
        "INSERT INTO report_supporters(report_id, user_id, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT(report_id, user_id) DO NOTHING",
        (report_id, user_id, to_db(now)),
    )
    if added <= 0:
        return False
    await db.execute(
        "UPDATE reports SET supporters = supporters + 1, updated_at = ? WHERE id = ?", (to_db(now), report_id)
    )
    return True


async def add_card(db: Executor, report_id: int, chat_id: int, message_id: int, now: dt.datetime) -> None:
    await db.execute(
        "INSERT INTO report_cards(report_id, chat_id, message_id, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(chat_id, message_id) DO NOTHING",
        (report_id, chat_id, message_id, to_db(now)),
    )


async def mark_escalated(db: Executor, report_ids: Sequence[int], now: dt.datetime) -> int:
    """Stamp last_escalated_at on those of `report_ids` still 'new' (keep the list short: one batch of
    a short transaction). Returns how many were stamped."""
    if not report_ids:
        return 0
    marks = ",".join("?" * len(report_ids))
    return await db.execute(
        f"UPDATE reports SET last_escalated_at = ? WHERE id IN ({marks}) AND status = 'new'",
        (to_db(now), *report_ids),
    )


# -- reading ------------------------------------------------------------------------------------


async def get(db: Executor, report_id: int) -> ReportRecord | None:
    row = await db.fetchone("SELECT * FROM reports WHERE id = ?", (report_id,))
    return _record(row) if row else None


async def get_by_seq(db: Executor, kind: str, seq: int) -> ReportRecord | None:
    row = await db.fetchone("SELECT * FROM reports WHERE kind = ? AND seq = ?", (kind, seq))
    return _record(row) if row else None


async def photos(db: Executor, report_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT file_id FROM report_photos WHERE report_id = ? ORDER BY position", (report_id,)
    )
    return [r[0] for r in rows]


async def events(db: Executor, report_id: int) -> list[ReportEvent]:
    rows = await db.fetchall("SELECT * FROM report_events WHERE report_id = ? ORDER BY id", (report_id,))
    return [_event(r) for r in rows]


async def has_event_since(db: Executor, report_id: int, action: str, since: dt.datetime) -> bool:
    value = await db.fetchval(
        "SELECT 1 FROM report_events WHERE report_id = ? AND action = ? AND at >= ? LIMIT 1",
        (report_id, action, to_db(since)),
    )
    return value is not None


async def supporters(db: Executor, report_id: int) -> list[int]:
    rows = await db.fetchall(
        "SELECT user_id FROM report_supporters WHERE report_id = ? ORDER BY created_at, user_id", (report_id,)
    )
    return [r[0] for r in rows]


async def is_supporter(db: Executor, report_id: int, user_id: int) -> bool:
    value = await db.fetchval(
        "SELECT 1 FROM report_supporters WHERE report_id = ? AND user_id = ?", (report_id, user_id)
    )
    return value is not None


async def cards(db: Executor, report_id: int) -> list[tuple[int, int]]:
    rows = await db.fetchall(
        "SELECT chat_id, message_id FROM report_cards WHERE report_id = ? ORDER BY created_at, message_id",
        (report_id,),
    )
    return [(r[0], r[1]) for r in rows]


async def count_by_reporter_since(db: Executor, reporter_id: int, since: dt.datetime) -> int:
    return int(
        await db.fetchval(
            "SELECT COUNT(*) FROM reports WHERE reporter_id = ? AND created_at >= ?",
            (reporter_id, to_db(since)),
        )
    )


async def open_in_box(
    db: Executor,
    *,
    kind: str,
    category: str,
    south: float,
    west: float,
    north: float,
    east: float,
    since: dt.datetime,
) -> list[ReportRecord]:
    """Open reports of a category with a location inside a bounding box, filed since `since`."""
    marks = ",".join("?" * len(OPEN_STATUSES))
    rows = await db.fetchall(
        f"""
        SELECT * FROM reports
        WHERE kind = ? AND category = ? AND status IN ({marks})
          AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ? AND created_at >= ?
        ORDER BY created_at DESC
        """,
        (kind, category, *OPEN_STATUSES, south, north, west, east, to_db(since)),
    )
    return [_record(r) for r in rows]


async def by_reporter(
    db: Executor, reporter_id: int, *, limit: int = 10, offset: int = 0
) -> list[ReportRecord]:
    rows = await db.fetchall(
        "SELECT * FROM reports WHERE reporter_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (reporter_id, limit, offset),
    )
    return [_record(r) for r in rows]


def _filters(
    kind: str | None, category: str | None, area: str | Sequence[str] | None, statuses: Sequence[str]
) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if statuses:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    if category is not None:
        clauses.append("category = ?")
        params.append(category)
    if isinstance(area, str):
        clauses.append("area = ?")
        params.append(area)
    elif area is not None:  # any of several areas (a moderator scoped to some areas)
        clauses.append(f"area IN ({','.join('?' * len(area))})" if area else "0 = 1")
        params.extend(area)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# Beyond this many (status, area) ranges the list is one plain query (a moderator of very many areas).
_MAX_RANGES = 60


async def listing(
    db: Executor,
    *,
    kind: str | None = None,
    category: str | None = None,
    area: str | Sequence[str] | None = None,
    statuses: Sequence[str] = OPEN_STATUSES,
    limit: int = 10,
    offset: int = 0,
) -> list[ReportRecord]:
    """Reports matching the filters, oldest first (the longest waiting on top).

    Each status (and area) is one range of reports_status_area (reports_status without an area),
    already in created order: every range is read only as far as the page needs (LIMIT) and the
    ranges are merged, so page 1 costs the same at 1,000 reports as at 1,000,000. A single
    `status IN (...) AND area IN (...) ORDER BY created_at` would read and sort every match.
    """
    areas: list[str | None]
    if area is None:
        areas = [None]
    elif isinstance(area, str):
        areas = [area]
    else:
        areas = sorted(set(area))
    if not areas:
        return []
    ranges = [(s, a) for s in dict.fromkeys(statuses) for a in areas]
    if not ranges or len(ranges) > _MAX_RANGES:
        where, params = _filters(kind, category, area, statuses)
        rows = await db.fetchall(
            f"SELECT * FROM reports{where} ORDER BY created_at, id LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [_record(r) for r in rows]
    extra = ""
    extra_params: list[object] = []
    if kind is not None:
        extra += " AND kind = ?"
        extra_params.append(kind)
    if category is not None:
        extra += " AND category = ?"
        extra_params.append(category)
    arms: list[str] = []
    params = []
    for status, one_area in ranges:
        where = "status = ?" + (" AND area = ?" if one_area is not None else "") + extra
        arms.append(f"SELECT * FROM (SELECT * FROM reports WHERE {where} ORDER BY created_at, id LIMIT ?)")
        params += [status, *([one_area] if one_area is not None else []), *extra_params, limit + offset]
    rows = await db.fetchall(
        " UNION ALL ".join(arms) + " ORDER BY created_at, id LIMIT ? OFFSET ?", [*params, limit, offset]
    )
    return [_record(r) for r in rows]


async def count(
    db: Executor,
    *,
    kind: str | None = None,
    category: str | None = None,
    area: str | Sequence[str] | None = None,
    statuses: Sequence[str] = OPEN_STATUSES,
) -> int:
    """How many reports `listing` would page through, summed from report_counts (one row per status,
    area, kind and category: never a count over the reports themselves)."""
    if isinstance(area, str):
        area = [area]
    if area is not None:
        area = [a for a in area if a]  # '' is "no area" in report_counts; as a filter it matches nothing
        if not area:
            return 0
    where, params = _filters(kind, category, area, statuses)
    return int(await db.fetchval(f"SELECT COALESCE(SUM(n), 0) FROM report_counts{where}", params))


async def known_place(db: Executor, column: str, value: str) -> str | None:
    """The spelling of a compound or property company already grouped in the hotspots that equals
    `value` but for the case of its letters (the most reported one), or None."""
    if column not in ("compound", "property_company"):
        raise ValueError(column)
    return await db.fetchval(
        f"SELECT {column} FROM report_hotspot_totals WHERE lower({column}) = lower(?)"
        f" ORDER BY total DESC, {column} LIMIT 1",
        (value,),
    )


async def access_hotspots(
    db: Executor,
    *,
    category: str,
    area: str | Collection[str] | None = None,
    limit: int = 10,
) -> list[Hotspot]:
    """Grievances of `category` grouped by compound and property company, most reported first, read
    from the groups kept on write (never the reports themselves): over all areas and for one area the
    first `limit` rows of a ranked index; for several areas their groups summed.

    `area` may be several areas (a moderator scoped to some areas); an empty collection matches nothing.
    """
    areas: list[str] | None = None
    if area is not None:
        areas = [area] if isinstance(area, str) else sorted(set(area))
        areas = [a for a in areas if a]  # '' is "no area" here; as a filter it matches nothing
        if not areas:
            return []
    order = " ORDER BY total DESC, open DESC, last_at DESC LIMIT ?"
    columns = "compound, property_company, total, open, last_at"
    if areas is None:
        sql = f"SELECT {columns} FROM report_hotspot_totals WHERE category = ? AND total > 0{order}"
        params: list[object] = [category, limit]
    elif len(areas) == 1:
        sql = f"SELECT {columns} FROM report_hotspots WHERE category = ? AND area = ? AND total > 0{order}"
        params = [category, areas[0], limit]
    else:
        sql = (
            "SELECT compound, property_company, SUM(total) AS total, SUM(open) AS open, MAX(last_at) AS last_at"
            f" FROM report_hotspots WHERE category = ? AND area IN ({','.join('?' * len(areas))})"
            f" GROUP BY compound, property_company HAVING SUM(total) > 0{order}"
        )
        params = [category, *areas, limit]
    rows = await db.fetchall(sql, params)
    return [
        Hotspot(
            compound=r["compound"],
            property_company=r["property_company"],
            total=r["total"],
            open=r["open"],
            last_at=from_db_required(r["last_at"]),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Overdue:
    """A report still 'new' after the acknowledgement timeout: what the escalation digest needs."""

    id: int
    kind: str
    seq: int
    category: str
    area: str | None
    waiting_since: dt.datetime  # filed, or reopened by the reporter

    @property
    def ref(self) -> str:
        return format_ref(self.kind, self.seq)


async def overdue_page(
    db: Executor, *, waiting_since: dt.datetime, after: tuple[str, int] | None = None, limit: int = 1000
) -> tuple[list[Overdue], tuple[str, int] | None]:
    """One page of the reports still 'new' since before `waiting_since` (counted from the last reopen),
    in created order along reports_status; returns the page and the cursor of the next one (None at
    the end)."""
    cutoff = to_db(waiting_since)
    after_at, after_id = after or ("", 0)
    rows = await db.fetchall(
        """
        SELECT id, kind, seq, category, area, created_at, COALESCE(reopened_at, created_at) AS waiting_since
        FROM reports
        WHERE status = 'new' AND created_at <= ? AND COALESCE(reopened_at, created_at) <= ?
          AND created_at >= ? AND (created_at > ? OR id > ?)
        ORDER BY created_at, id LIMIT ?
        """,
        (cutoff, cutoff, after_at, after_at, after_id, limit),
    )
    items = [
        Overdue(
            id=r["id"],
            kind=r["kind"],
            seq=r["seq"],
            category=r["category"],
            area=r["area"],
            waiting_since=from_db_required(r["waiting_since"]),
        )
        for r in rows
    ]
    cursor = (rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return items, cursor


@dataclass(frozen=True, slots=True)
class ExportRow:
    """What one export line shows of a report: its own fields, the photo count, the original's
    reference, and the reporter's names (None when anonymous or unknown: never read for an anonymous
    report). Only the exported fields: the export writes 100,000 of these in a few seconds."""

    ref: str
    kind: str
    category: str
    status: str
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    area: str | None
    description: str
    voice: bool
    photos: int
    place_text: str | None
    lat: float | None
    lon: float | None
    compound: str | None
    property_company: str | None
    anonymous: bool
    reporter: tuple[str, str, str | None] | None  # first name, last name, username
    supporters: int
    duplicate_of_ref: str | None


async def export_page(
    db: Executor,
    *,
    since: dt.datetime,
    after: tuple[str, int] | None = None,
    limit: int = 2000,
    areas: Collection[str] | None = None,
) -> tuple[list[ExportRow], tuple[str, int] | None]:
    """One page of the reports filed since `since`, in created order, each with its photo count, the
    original's reference and the reporter's names in the same query (one query per page, not one per
    report); returns the page and the cursor of the next one (None at the end).

    `areas`: only reports of these areas (a moderator scoped to some areas); None: all reports."""
    after_at, after_id = after or ("", 0)
    in_areas = ""
    params: list[object] = [to_db(since), after_at, after_at, after_id]
    if areas is not None:
        wanted = sorted({a for a in areas if a})
        if not wanted:
            return [], None
        in_areas = f" AND r.area IN ({','.join('?' * len(wanted))})"
        params += wanted
    rows = await db.fetchall(
        """
        SELECT r.kind, r.seq, r.category, r.status, r.created_at, r.acknowledged_at, r.resolved_at, r.area,
               r.description, r.voice_file_id IS NOT NULL, r.place_text, r.lat, r.lon, r.compound,
               r.property_company, r.anonymous, r.supporters, r.id,
               (SELECT COUNT(*) FROM report_photos p WHERE p.report_id = r.id),
               d.kind, d.seq, u.id, u.first_name, u.last_name, u.username
        FROM reports r
        LEFT JOIN reports d ON d.id = r.duplicate_of
        LEFT JOIN users u ON u.id = r.reporter_id AND r.anonymous = 0
        WHERE r.created_at >= ? AND r.created_at >= ? AND (r.created_at > ? OR r.id > ?)"""
        + in_areas
        + """
        ORDER BY r.created_at, r.id LIMIT ?
        """,
        (*params, limit),
    )
    prefix = KIND_PREFIX
    items = [
        ExportRow(
            f"{prefix[r[0]]}-{r[1]:04d}",
            r[0],
            r[2],
            r[3],
            from_db_required(r[4]),
            from_db(r[5]),
            from_db(r[6]),
            r[7],
            r[8],
            bool(r[9]),
            r[18],
            r[10],
            r[11],
            r[12],
            r[13],
            r[14],
            bool(r[15]),
            (r[22] or "", r[23] or "", r[24]) if r[21] is not None else None,
            r[16],
            f"{prefix[r[19]]}-{r[20]:04d}" if r[19] else None,
        )
        for r in rows
    ]
    cursor = (rows[-1][4], rows[-1][17]) if len(rows) == limit else None
    return items, cursor


# -- undo (the moderators' desk) -------------------------------------------------------------------


async def restore_status(
    db: Executor,
    report_id: int,
    *,
    expected: str,
    previous: str,
    acknowledged_at: dt.datetime | None,
    now: dt.datetime,
) -> ReportRecord | None:
    """Take a decision back: compare-and-set `expected` -> `previous`. A resolution's resolved_at and a
    duplicate's link go with it; acknowledged_at is what the remaining history says (the caller's
    value); report_counts and the hotspot groups follow. None when the report is no longer in
    `expected`. Call inside a transaction."""
    row = await db.fetchone(
        """
        UPDATE reports SET
            status = :previous,
            updated_at = :now,
            duplicate_of = CASE WHEN :expected = 'duplicate' THEN NULL ELSE duplicate_of END,
            resolved_at = CASE WHEN :expected = 'resolved' THEN NULL ELSE resolved_at END,
            acknowledged_at = :ack
        WHERE id = :id AND status = :expected
        RETURNING *
        """,
        {
            "previous": previous,
            "now": to_db(now),
            "expected": expected,
            "ack": to_db(acknowledged_at),
            "id": report_id,
        },
    )
    if row is None:
        return None
    report = _record(row)
    if previous != expected:  # report_counts and the hotspot groups follow, as with set_status
        await _count(db, expected, report.area, report.kind, report.category, -1)
        await _count(db, previous, report.area, report.kind, report.category, 1)
        await _hotspot_moved(db, report, expected)
    return report


async def mark_undone(db: Executor, event_id: int, undo_event_id: int) -> bool:
    """Mark a decision as taken back (once: an event already undone stays with its first undo)."""
    changed = await db.execute(
        "UPDATE report_events SET undone_by = ? WHERE id = ? AND undone_by IS NULL", (undo_event_id, event_id)
    )
    return changed > 0
