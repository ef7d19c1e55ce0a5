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

from storage.db import Executor, from_db, from_db_required, to_db
from storage.reports import ReportRecord
from storage.reports import _record as _report
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
    limit: int = 500,
) -> list[ReportRecord]:
    """Reports in some statuses (the longest waiting first), filtered for the map and the board."""
    if not statuses:
        return []
    params: list[object] = list(statuses)
    sql = f"SELECT * FROM reports WHERE status IN ({','.join('?' * len(statuses))})"
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
    sql += " ORDER BY created_at, id LIMIT ?"
    params.append(limit)
    return [_report(r) for r in await db.fetchall(sql, params)]


@dataclass(frozen=True)
class ReportTimes:
    """One report filed in a period: what the week's figures are made of."""

    kind: str
    category: str
    status: str
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None


async def reports_created_between(
    db: Executor, start: dt.datetime, end: dt.datetime, areas: Collection[str] | None
) -> list[ReportTimes]:
    params: list[object] = [to_db(start), to_db(end)]
    sql = (
        "SELECT kind, category, status, created_at, acknowledged_at, resolved_at FROM reports"
        " WHERE created_at >= ? AND created_at < ?"
    )
    sql += _area_clause("area", areas, params)
    sql += " ORDER BY created_at"
    return [
        ReportTimes(
            kind=r["kind"],
            category=r["category"],
            status=r["status"],
            created_at=from_db_required(r["created_at"]),
            acknowledged_at=from_db(r["acknowledged_at"]),
            resolved_at=from_db(r["resolved_at"]),
        )
        for r in await db.fetchall(sql, params)
    ]


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
