"""Reports (grievances and hazard tips): rows, photos, audit events, supporters, moderator cards.

Status changes are compare-and-set (`UPDATE ... WHERE id = ? AND status = ? RETURNING *`): of two
moderators pressing at once exactly one statement matches.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

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
    report_ids: tuple[int, ...]


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
    """Insert a report with the next number of its kind. Call inside a transaction."""
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
    return _record(row)


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
    'resolved' (cleared on a reopen); reopened_at when a resolved report goes back to 'new'.
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
    return _record(row) if row else None


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
    return await db.execute(
        "INSERT INTO report_events(report_id, actor_id, action, from_status, to_status, note, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
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


async def mark_escalated(db: Executor, report_id: int, now: dt.datetime) -> None:
    await db.execute("UPDATE reports SET last_escalated_at = ? WHERE id = ?", (to_db(now), report_id))


# -- reading ------------------------------------------------------------------------------------


async def get(db: Executor, report_id: int) -> ReportRecord | None:
    row = await db.fetchone("SELECT * FROM reports WHERE id = ?", (report_id,))
    return _record(row) if row else None


async def get_by_seq(db: Executor, kind: str, seq: int) -> ReportRecord | None:
    row = await db.fetchone("SELECT * FROM reports WHERE kind = ? AND seq = ?", (kind, seq))
    return _record(row) if row else None


async def get_many(db: Executor, report_ids: Sequence[int]) -> dict[int, ReportRecord]:
    if not report_ids:
        return {}
    marks = ",".join("?" * len(report_ids))
    rows = await db.fetchall(f"SELECT * FROM reports WHERE id IN ({marks})", list(report_ids))
    return {r["id"]: _record(r) for r in rows}


async def photos(db: Executor, report_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT file_id FROM report_photos WHERE report_id = ? ORDER BY position", (report_id,)
    )
    return [r[0] for r in rows]


async def photo_counts(db: Executor, report_ids: Sequence[int]) -> dict[int, int]:
    if not report_ids:
        return {}
    marks = ",".join("?" * len(report_ids))
    rows = await db.fetchall(
        f"SELECT report_id, COUNT(*) FROM report_photos WHERE report_id IN ({marks}) GROUP BY report_id",
        list(report_ids),
    )
    return {r[0]: r[1] for r in rows}


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
    """Reports matching the filters, oldest first (the longest waiting on top)."""
    where, params = _filters(kind, category, area, statuses)
    rows = await db.fetchall(
        f"SELECT * FROM reports{where} ORDER BY created_at, id LIMIT ? OFFSET ?", [*params, limit, offset]
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
    where, params = _filters(kind, category, area, statuses)
    return int(await db.fetchval(f"SELECT COUNT(*) FROM reports{where}", params))


async def access_hotspots(
    db: Executor,
    *,
    category: str,
    since: dt.datetime | None = None,
    area: str | Collection[str] | None = None,
    limit: int = 10,
) -> list[Hotspot]:
    """Access-conflict grievances grouped by compound and property company, most reported first.

    `area` may be several areas (a moderator scoped to some areas); an empty collection matches nothing.
    """
    sql = (
        "SELECT TRIM(COALESCE(compound, '')) AS c, TRIM(COALESCE(property_company, '')) AS p,"
        " COUNT(*) AS total,"
        f" SUM(CASE WHEN status IN ({','.join('?' * len(OPEN_STATUSES))}) THEN 1 ELSE 0 END) AS open_count,"
        " MAX(created_at) AS last_at, GROUP_CONCAT(id) AS ids"
        " FROM reports WHERE kind = 'grievance' AND category = ? AND status <> 'duplicate'"
        " AND (TRIM(COALESCE(compound, '')) <> '' OR TRIM(COALESCE(property_company, '')) <> '')"
    )
    params: list[object] = [*OPEN_STATUSES, category]
    if since is not None:
        sql += " AND created_at >= ?"
        params.append(to_db(since))
    if isinstance(area, str):
        sql += " AND area = ?"
        params.append(area)
    elif area is not None:
        areas = sorted(area)
        sql += f" AND area IN ({','.join('?' * len(areas))})" if areas else " AND 0 = 1"
        params.extend(areas)
    sql += " GROUP BY c, p ORDER BY total DESC, open_count DESC, last_at DESC LIMIT ?"
    params.append(limit)
    rows = await db.fetchall(sql, params)
    return [
        Hotspot(
            compound=r["c"],
            property_company=r["p"],
            total=r["total"],
            open=r["open_count"],
            last_at=from_db_required(r["last_at"]),
            report_ids=tuple(sorted(int(x) for x in str(r["ids"]).split(","))),
        )
        for r in rows
    ]


async def unacknowledged(
    db: Executor, *, waiting_since: dt.datetime, last_escalated_before: dt.datetime
) -> list[ReportRecord]:
    """Reports still 'new' since before `waiting_since` (counted from the last reopen), not escalated since
    `last_escalated_before`."""
    rows = await db.fetchall(
        """
        SELECT * FROM reports
        WHERE status = 'new' AND COALESCE(reopened_at, created_at) <= ?
          AND (last_escalated_at IS NULL OR last_escalated_at <= ?)
        ORDER BY created_at, id
        """,
        (to_db(waiting_since), to_db(last_escalated_before)),
    )
    return [_record(r) for r in rows]


async def created_since(db: Executor, since: dt.datetime) -> list[ReportRecord]:
    rows = await db.fetchall(
        "SELECT * FROM reports WHERE created_at >= ? ORDER BY created_at, id", (to_db(since),)
    )
    return [_record(r) for r in rows]


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
    value). None when the report is no longer in `expected`."""
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
    return _record(row) if row else None


async def mark_undone(db: Executor, event_id: int, undo_event_id: int) -> bool:
    """Mark a decision as taken back (once: an event already undone stays with its first undo)."""
    changed = await db.execute(
        "UPDATE report_events SET undone_by = ? WHERE id = ? AND undone_by IS NULL", (undo_event_id, event_id)
    )
    return changed > 0
