"""Reads for the moderators' desk (the Mini App) and the weekly digest: the map, the board, the week's
figures. Read-only queries across reports, stations, tasks, points and the outbox; writes stay in each
aggregate's own repository.

`areas`: None = every area; a collection = only objects of those areas (an object without an area
belongs to everyone, so a moderator scoped to some areas never sees it; an empty collection matches
nothing). Same rule as `bot/core/authz.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from storage.db import Executor, from_db_required, to_db
from storage.reports import STATUSES, format_ref
from storage.stations import _COLUMNS as _STATION_COLUMNS
from storage.stations import StationRecord, _like
from storage.stations import _record as _station


def _area_clause(column: str, areas: Collection[str] | None, params: list[object]) -> str:
    if areas is None:
        return ""
    chosen = sorted(areas)
    if not chosen:
        return " AND 0 = 1"
    params.extend(chosen)
    return f" AND {column} IN ({','.join('?' * len(chosen))})"


# -- reports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportCard:
    """What a board card or a map marker shows of a report (fewer columns than ReportRecord)."""

    id: int
    kind: str
    seq: int
    category: str
    status: str
    area: str | None
    description: str
    lat: float | None
    lon: float | None
    supporters: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def ref(self) -> str:
        return format_ref(self.kind, self.seq)

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None


_CARD_COLUMNS = (
    "id, kind, seq, category, status, area, SUBSTR(description, 1, 140), lat, lon, supporters, created_at,"
    " updated_at"
)


async def reports(
    db: Executor,
    *,
    statuses: Sequence[str],
    areas: Collection[str] | None,
    located_only: bool = False,
    kind: str | None = None,
    category: str | None = None,
    since: dt.datetime | None = None,
    updated_since: dt.datetime | None = None,
    latest_first: bool = False,
    limit: int = 500,
) -> list[ReportCard]:
    """Reports in some statuses, filtered for the map and the board: the longest waiting first, or
    with `latest_first` the last changed first (a closed column)."""
    if not statuses:
        return []
    if len(statuses) > 1:
        # One ordered index range per status (status, created_at / updated_at), merged here: an
        # IN list would read and sort every open report of the city to keep `limit` of them.
        parts = [
            await reports(
                db,
                statuses=(status,),
                areas=areas,
                located_only=located_only,
                kind=kind,
                category=category,
                since=since,
                updated_since=updated_since,
                latest_first=latest_first,
                limit=limit,
            )
            for status in dict.fromkeys(statuses)
        ]
        merged = [card for part in parts for card in part]
        if latest_first:
            merged.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        else:
            merged.sort(key=lambda c: (c.created_at, c.id))
        return merged[:limit]
    params: list[object] = list(statuses)
    sql = f"SELECT {_CARD_COLUMNS} FROM reports WHERE status IN ({','.join('?' * len(statuses))})"
    sql += _area_clause("area", areas, params)
    if located_only:
        sql += " AND lat IS NOT NULL"
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    if category is not None:
        sql += " AND category = ?"
        params.append(category)
    if since is not None:
        sql += " AND created_at >= ?"
        params.append(to_db(since))
    if updated_since is not None:
        sql += " AND updated_at >= ?"
        params.append(to_db(updated_since))
    sql += (
        " ORDER BY updated_at DESC, id DESC LIMIT ?" if latest_first else " ORDER BY created_at, id LIMIT ?"
    )
    params.append(limit)
    return [
        ReportCard(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            from_db_required(r[10]),
            from_db_required(r[11]),
        )
        for r in await db.fetchall(sql, params)
    ]


async def status_counts(
    db: Executor,
    *,
    statuses: Sequence[str],
    areas: Collection[str] | None,
    updated_since: dt.datetime | None = None,
) -> dict[str, int]:
    """How many reports are in each status (changed since `updated_since`, when given)."""
    if not statuses:
        return {}
    params: list[object] = list(statuses)
    sql = f"SELECT status, COUNT(*) FROM reports WHERE status IN ({','.join('?' * len(statuses))})"
    sql += _area_clause("area", areas, params)
    if updated_since is not None:
        sql += " AND updated_at >= ?"
        params.append(to_db(updated_since))
    sql += " GROUP BY status"
    return {r[0]: r[1] for r in await db.fetchall(sql, params)}


def _every_status(areas: Collection[str] | None, params: list[object]) -> str:
    """For one area's period: every status named, so an index on (area, status, created_at) answers
    with one range per status instead of reading the area's whole history."""
    if areas is None:
        return ""
    params.extend(STATUSES)
    return f" AND status IN ({','.join('?' * len(STATUSES))})"


@dataclass(frozen=True)
class WeekRow:
    """One report filed in the week: its local day (0..6), what it is, where it stands, and how long
    it took to be acknowledged and resolved (seconds; None: not yet)."""

    day: int
    kind: str
    category: str
    status: str
    ack_seconds: float | None
    resolve_seconds: float | None


def _day_case(bounds: Sequence[dt.datetime], column: str, params: list[object]) -> str:
    """`column` bucketed into days by the UTC instants at which each local day starts (portable SQL,
    right across a daylight-saving change)."""
    cases = []
    for i, bound in enumerate(bounds[1:-1]):
        cases.append(f"WHEN {column} < ? THEN {i}")
        params.append(to_db(bound))
    return f"CASE {' '.join(cases)} ELSE {len(bounds) - 2} END"


async def week_rows(
    db: Executor, bounds: Sequence[dt.datetime], areas: Collection[str] | None
) -> list[WeekRow]:
    """The reports filed in [bounds[0], bounds[-1]) in one pass; `bounds` are the UTC instants at which
    the local days start, and the end."""
    params: list[object] = []
    day = _day_case(bounds, "created_at", params)
    params += [to_db(bounds[0]), to_db(bounds[-1])]
    # SQLite: julianday() reads the stored ISO text; PostgreSQL would use EXTRACT(EPOCH FROM ...).
    sql = (
        f"SELECT {day}, kind, category, status,"
        " (julianday(acknowledged_at) - julianday(created_at)) * 86400.0,"
        " (julianday(resolved_at) - julianday(created_at)) * 86400.0"
        " FROM reports WHERE created_at >= ? AND created_at < ?"
    )
    sql += _every_status(areas, params)
    sql += _area_clause("area", areas, params)
    return [WeekRow(*r) for r in await db.fetchall(sql, params)]


async def hotspot_points(
    db: Executor,
    category: str,
    places: Sequence[tuple[str, str]],
    areas: Collection[str] | None,
    *,
    latest: int = 50,
) -> dict[tuple[str, str], tuple[float, float]]:
    """Where each (compound, property company) group ('' = not given) is: the mean location of its
    `latest` located grievances, read newest first through the reports_place index (a bounded read
    per group, whatever its history)."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for compound, company in places:
        params: list[object] = [p for p in (compound, company) if p]
        inner = (
            "SELECT lat, lon FROM reports WHERE "
            + ("compound = ?" if compound else "compound IS NULL")
            + " AND "
            + ("property_company = ?" if company else "property_company IS NULL")
            + " AND kind = 'grievance' AND category = ? AND status <> 'duplicate' AND lat IS NOT NULL"
        )
        params.append(category)
        inner += _area_clause("area", areas, params)
        inner += " ORDER BY created_at DESC LIMIT ?"
        params.append(latest)
        row = await db.fetchone(f"SELECT AVG(lat), AVG(lon) FROM ({inner})", params)
        if row is not None and row[0] is not None:
            out[(compound, company)] = (float(row[0]), float(row[1]))
    return out


# -- stations -----------------------------------------------------------------------------------


async def stations(
    db: Executor, *, areas: Collection[str] | None, include_inactive: bool = False, limit: int = 5000
) -> list[StationRecord]:
    params: list[object] = []
    sql = f"SELECT {_STATION_COLUMNS} FROM stations WHERE 1 = 1"
    if not include_inactive:
        sql += " AND active = 1"
    sql += _area_clause("area", areas, params)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [_station(r) for r in await db.fetchall(sql, params)]


async def search_stations(
    db: Executor, query: str, *, areas: Collection[str] | None, limit: int = 30
) -> list[StationRecord]:
    """Stations (deactivated ones too) whose name, address, area or external id contains `query`."""
    params: list[object] = []
    sql = f"SELECT {_STATION_COLUMNS} FROM stations WHERE 1 = 1"
    if query.strip():
        pattern = _like(query.strip())
        sql += (
            " AND (name LIKE ? ESCAPE '\\' OR address LIKE ? ESCAPE '\\' OR area LIKE ? ESCAPE '\\'"
            " OR external_id LIKE ? ESCAPE '\\')"
        )
        params.extend([pattern] * 4)
    sql += _area_clause("area", areas, params)
    sql += " ORDER BY active DESC, name, id LIMIT ?"
    params.append(limit)
    return [_station(r) for r in await db.fetchall(sql, params)]


async def flag_counts_since(db: Executor, since: dt.datetime, station_ids: Sequence[int]) -> dict[int, int]:
    """Courier flags per station since `since` (only the stations asked about)."""
    if not station_ids:
        return {}
    out: dict[int, int] = {}
    ids = list(station_ids)
    for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        chunk = ids[i : i + 500]
        rows = await db.fetchall(
            "SELECT station_id, COUNT(*) FROM station_flags WHERE created_at >= ?"
            f" AND station_id IN ({','.join('?' * len(chunk))}) GROUP BY station_id",
            [to_db(since), *chunk],
        )
        out.update({r[0]: r[1] for r in rows})
    return out


async def flags_between(
    db: Executor, start: dt.datetime, end: dt.datetime, areas: Collection[str] | None
) -> dict[str, int]:
    """Station flags raised in [start, end) by reason."""
    params: list[object] = [to_db(start), to_db(end)]
    sql = (
        "SELECT f.reason, COUNT(*) FROM station_flags f JOIN stations s ON s.id = f.station_id"
        " WHERE f.created_at >= ? AND f.created_at < ?"
    )
    sql += _area_clause("s.area", areas, params)
    sql += " GROUP BY f.reason"
    return {r[0]: r[1] for r in await db.fetchall(sql, params)}


# -- tasks, points, broadcasts ------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedTask:
    id: int
    title: str
    starts_at: dt.datetime
    place_text: str
    lat: float
    lon: float
    area: str | None
    state: str
    slots: int
    taken: int


async def tasks_with_place(
    db: Executor, *, now: dt.datetime, areas: Collection[str] | None, limit: int = 1000
) -> list[PlacedTask]:
    """Upcoming open or full tasks with a map pin, with the slots taken."""
    params: list[object] = [to_db(now)]
    sql = (
        "SELECT t.id, t.title, t.starts_at, t.place_text, t.lat, t.lon, t.area, t.state, t.slots,"
        " (SELECT COUNT(*) FROM task_claims c WHERE c.task_id = t.id"
        "  AND c.state IN ('claimed', 'assigned_pending')) AS taken"
        " FROM tasks t WHERE t.state IN ('open', 'full') AND t.lat IS NOT NULL AND t.starts_at >= ?"
    )
    sql += _area_clause("t.area", areas, params)
    sql += " ORDER BY t.starts_at, t.id LIMIT ?"
    params.append(limit)
    return [
        PlacedTask(
            id=r["id"],
            title=r["title"],
            starts_at=from_db_required(r["starts_at"]),
            place_text=r["place_text"],
            lat=r["lat"],
            lon=r["lon"],
            area=r["area"],
            state=r["state"],
            slots=r["slots"],
            taken=r["taken"],
        )
        for r in await db.fetchall(sql, params)
    ]


async def claims_done_between(
    db: Executor, start: dt.datetime, end: dt.datetime, areas: Collection[str] | None
) -> list[dt.datetime]:
    """When each claim marked done in [start, end) was marked (a volunteer turned up and did it)."""
    params: list[object] = [to_db(start), to_db(end)]
    sql = (
        "SELECT c.updated_at FROM task_claims c JOIN tasks t ON t.id = c.task_id"
        " WHERE c.state = 'done' AND c.updated_at >= ? AND c.updated_at < ?"
    )
    sql += _area_clause("t.area", areas, params)
    return [from_db_required(r[0]) for r in await db.fetchall(sql, params)]


async def points_earned_between(
    db: Executor, start: dt.datetime, end: dt.datetime, areas: Collection[str] | None
) -> list[tuple[dt.datetime, int]]:
    """Points credited in [start, end) (corrections included, redemptions not), with their time."""
    params: list[object] = [to_db(start), to_db(end)]
    sql = "SELECT created_at, delta FROM points_ledger WHERE reason <> 'redeem' AND created_at >= ? AND created_at < ?"
    sql += _area_clause("area", areas, params)
    return [(from_db_required(r[0]), r[1]) for r in await db.fetchall(sql, params)]


async def deliveries_between(
    db: Executor, kind: str, start: dt.datetime, end: dt.datetime, areas: Collection[str] | None
) -> list[dt.datetime]:
    """When each outbox row of `kind` (e.g. a broadcast to one chat) was delivered in [start, end).
    Scoped to areas: only deliveries to groups of those areas."""
    params: list[object] = [kind, to_db(start), to_db(end)]
    sql = "SELECT o.sent_at FROM outbox o"
    if areas is not None:
        sql += " JOIN groups g ON g.chat_id = o.chat_id"
    sql += " WHERE o.kind = ? AND o.state = 'sent' AND o.sent_at >= ? AND o.sent_at < ?"
    sql += _area_clause("g.area", areas, params)
    return [from_db_required(r[0]) for r in await db.fetchall(sql, params)]
