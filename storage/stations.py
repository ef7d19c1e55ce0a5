"""Warm stations and courier flags (tables from 0010_stations.sql).

Nearest queries go through the partial index ``stations_near`` on (lat_cell, lon, lat, facility_mask):
``candidates`` asks for the stations inside a latitude/longitude box, ranked by an equirectangular
distance computed inside the index, and joins the full rows of only the few it returns. The service
(bot/stations.py) grows the box until the answer is certain and orders by haversine.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from storage.db import Executor, Row, from_db, from_db_required, to_db

LAT_CELLS_PER_DEGREE = 100  # must match lat_cell in 0010_stations.sql
# Up to this many cells, one index seek per cell (on lon); beyond, one range on lat_cell, which scans
# every longitude of the band. A seek costs a few µs, a band through a dense city tens of ms: 256 cells
# (2.5 degrees of latitude) covers the widest box a search asks for (the 100 km "nearest anyway" cap).
_MAX_IN_CELLS = 256

FLAG_REASONS = ("closed", "moved", "broken", "other")
FLAG_ACTIONS = ("handled", "deactivated")


@dataclass(frozen=True)
class StationData:
    """The fields an import or an editor writes (coordinates already WGS-84)."""

    external_id: str
    name: str
    lat: float
    lon: float
    kind: str = "station"
    address: str = ""
    opening_hours: str = ""
    facilities: tuple[str, ...] = ()
    facility_mask: int = 0
    phone: str = ""
    area: str = ""
    source: str = ""
    demo: bool = False
    active: bool = True  # only for a new station: an update never changes it (see upsert)


@dataclass(frozen=True)
class StationRecord:
    id: int
    external_id: str
    name: str
    kind: str
    lat: float
    lon: float
    address: str
    opening_hours: str
    facilities: tuple[str, ...]
    facility_mask: int
    phone: str
    area: str
    source: str
    demo: bool
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class Candidate:
    """A station found in a box with its equirectangular distance (metres, for ranking only).

    What ranking needs (id, lat, lon, opening_hours) is read from the row; the full ``station``
    record is built only when asked for, for the few stations shown (~6 us a record saved for every
    station read and not shown)."""

    __slots__ = ("_row", "_station", "planar_m")

    def __init__(self, row: Row, planar_m: float) -> None:
        self._row = row
        self._station: StationRecord | None = None
        self.planar_m = planar_m

    @property
    def id(self) -> int:
        return int(self._row["id"])

    @property
    def lat(self) -> float:
        return float(self._row["lat"])

    @property
    def lon(self) -> float:
        return float(self._row["lon"])

    @property
    def opening_hours(self) -> str:
        return str(self._row["opening_hours"])

    @property
    def station(self) -> StationRecord:
        if self._station is None:
            self._station = _record(self._row)
        return self._station


@dataclass(frozen=True)
class FlagRecord:
    id: int
    station_id: int
    user_id: int
    reason: str
    note: str
    created_at: dt.datetime
    handled_at: dt.datetime | None = None
    handled_by: int | None = None
    handled_action: str = ""  # '' (open), 'handled' or 'deactivated' (0013_station_flag_handling.sql)


EDITABLE = frozenset(
    {"name", "kind", "lat", "lon", "address", "opening_hours", "facilities", "facility_mask", "phone", "area"}
)
_DATA_COLUMNS = tuple(f.name for f in fields(StationData))
_UPDATE_ON_CONFLICT = tuple(c for c in _DATA_COLUMNS if c not in ("external_id", "active"))
_COLUMNS = (
    "id, external_id, name, kind, lat, lon, address, opening_hours, facilities, facility_mask, phone, area,"
    " source, demo, active, created_at, updated_at"
)
_CANDIDATE_COLUMNS = ", ".join("s." + c.strip() for c in _COLUMNS.split(","))
_DEG_M = math.pi / 180.0 * 6_371_008.8


def _split_codes(text: str) -> tuple[str, ...]:
    return tuple(c for c in text.split(",") if c)


def _record(row: Row) -> StationRecord:
    return StationRecord(
        id=row["id"],
        external_id=row["external_id"],
        name=row["name"],
        kind=row["kind"],
        lat=row["lat"],
        lon=row["lon"],
        address=row["address"],
        opening_hours=row["opening_hours"],
        facilities=_split_codes(row["facilities"]),
        facility_mask=row["facility_mask"],
        phone=row["phone"],
        area=row["area"],
        source=row["source"],
        demo=bool(row["demo"]),
        active=bool(row["active"]),
        created_at=from_db_required(row["created_at"]),
        updated_at=from_db_required(row["updated_at"]),
    )


def _data_values(data: StationData) -> list[Any]:
    values: list[Any] = []
    for name in _DATA_COLUMNS:
        value = getattr(data, name)
        if name == "facilities":
            value = ",".join(value)
        elif name in ("demo", "active"):
            value = int(value)
        values.append(value)
    return values


def lat_cell(lat: float) -> int:
    """The index cell of a latitude (the same formula as the generated column)."""
    return int((lat + 90.0) * LAT_CELLS_PER_DEGREE)


async def upsert(db: Executor, data: StationData, now: dt.datetime) -> tuple[int, bool]:
    """Insert, or update the station with the same external_id. Returns (id, inserted).

    An update leaves ``active`` alone: a station a moderator deactivated stays so on re-import, and
    one a moderator reactivated is not deactivated by an old file. ``data.active`` only sets a new one.
    """
    existing = await db.fetchval("SELECT id FROM stations WHERE external_id = ?", (data.external_id,))
    stamp = to_db(now)
    placeholders = ", ".join("?" for _ in _DATA_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPDATE_ON_CONFLICT)
    row = await db.fetchone(
        f"INSERT INTO stations({', '.join(_DATA_COLUMNS)}, created_at, updated_at)"
        f" VALUES ({placeholders}, ?, ?)"
        f" ON CONFLICT(external_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at"
        " RETURNING id",
        (*_data_values(data), stamp, stamp),
    )
    assert row is not None
    return int(row["id"]), existing is None


async def existing_external_ids(db: Executor, external_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(external_ids), 500):
        chunk = list(external_ids[i : i + 500])
        rows = await db.fetchall(
            f"SELECT external_id FROM stations WHERE external_id IN ({', '.join('?' for _ in chunk)})", chunk
        )
        found.update(r[0] for r in rows)
    return found


async def insert_many(db: Executor, items: Iterable[StationData], now: dt.datetime) -> int:
    """Bulk insert of new stations (benchmarks, first loads): one executemany.

    Pass rows sorted by (lat_cell, lon) for the fastest index build. Fails on a duplicate external_id.
    """
    stamp = to_db(now)
    placeholders = ", ".join("?" for _ in _DATA_COLUMNS)
    return await db.executemany(
        f"INSERT INTO stations({', '.join(_DATA_COLUMNS)}, created_at, updated_at) VALUES ({placeholders}, ?, ?)",
        ((*_data_values(d), stamp, stamp) for d in items),
    )


async def get(db: Executor, station_id: int) -> StationRecord | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM stations WHERE id = ?", (station_id,))
    return _record(row) if row else None


async def get_by_external_id(db: Executor, external_id: str) -> StationRecord | None:
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM stations WHERE external_id = ?", (external_id,))
    return _record(row) if row else None


async def set_active(db: Executor, station_id: int, active: bool, now: dt.datetime) -> bool:
    """Deactivate or reactivate; False when the station does not exist or already is so."""
    changed = await db.execute(
        "UPDATE stations SET active = ?, updated_at = ? WHERE id = ? AND active <> ?",
        (int(active), to_db(now), station_id, int(active)),
    )
    return changed == 1


async def update_fields(
    db: Executor, station_id: int, now: dt.datetime, **values: Any
) -> StationRecord | None:
    """Change some editable fields; returns the updated record (None if there is no such station)."""
    unknown = set(values) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if not values:
        return await get(db, station_id)
    sets = []
    params: list[Any] = []
    for name, value in values.items():
        sets.append(f"{name} = ?")
        params.append(",".join(value) if name == "facilities" else value)
    params += [to_db(now), station_id]
    row = await db.fetchone(
        f"UPDATE stations SET {', '.join(sets)}, updated_at = ? WHERE id = ? RETURNING {_COLUMNS}", params
    )
    return _record(row) if row else None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# -- free-text search -------------------------------------------------------------------------------
#
# A station matches when its name, address or area contains the query (LIKE '%q%': ASCII letters in
# any case); stations matching by name come first, then the others, each by name and id. The indexes
# of 0012_station_search.sql find the matches without reading every station; LIKE then checks each
# one, so the answer is exactly what the plain scan gave. For each of the two groups (name matches,
# address/area matches):
#
# * the FTS index lists at most SEARCH_CANDIDATES + 1 candidates (a phrase of trigrams for 3+
#   characters; for 1-2 characters the trigrams beginning with them, from the fts5vocab table);
# * up to SEARCH_CANDIDATES of them: they are checked and ordered by name (a bounded sort);
# * more: the query matches at least SEARCH_CANDIDATES / N of all stations, so walking the active
#   stations in name order (the covering index stations_text) meets the first few after about
#   need * N / SEARCH_CANDIDATES entries. The walk reads at most SEARCH_WALK entries; in the rare
#   case that the matches all sort late (fewer than `need` within that stretch) the candidates are
#   ordered after all, unbounded but exact.
# SQLite-only (FTS5, fts5vocab, INDEXED BY); a PostgreSQL variant would use pg_trgm.

SEARCH_CANDIDATES = 1500
SEARCH_WALK = 30_000
_TERM_END = "\U0010ffff"  # above every character: [q, q + _TERM_END) is every trigram starting with q

_NAME_MATCH = "name LIKE ?1 ESCAPE '\\'"
_PLACE_MATCH = "(address LIKE ?1 ESCAPE '\\' OR area LIKE ?1 ESCAPE '\\')"
# The two groups: (FTS table, its fts5vocab table, what a station of the group satisfies).
_GROUPS = {
    "name": ("station_names", "station_names_terms", _NAME_MATCH),
    "place": ("station_places", "station_places_terms", f"NOT {_NAME_MATCH} AND {_PLACE_MATCH}"),
}


def _fts_source(group: str, text: str) -> tuple[str, list[Any]]:
    """SQL listing the ids of the active stations whose `group` texts may contain ``text``
    (a superset of the LIKE matches), with its parameters (after ?1 and ?2, which the callers use)."""
    table, terms, _ = _GROUPS[group]
    if len(text) >= 3:
        phrase = '"' + text.replace('"', '""') + '"'
        return f"SELECT rowid FROM {table} WHERE {table} MATCH ?3", [phrase]
    # Every indexed text ends with two U+E000 (0012_station_search.sql), so each of its characters
    # starts a trigram. Trigrams are stored case folded; LIKE folds ASCII only: the folded and the
    # given prefix cover both.
    # (One range per SELECT: fts5vocab seeks to a range's first term, not through an OR.)
    prefixes = sorted({text, text.lower()})
    selects = [
        f"SELECT doc FROM {terms} WHERE term >= ?{3 + 2 * i} AND term < ?{4 + 2 * i}"
        for i in range(len(prefixes))
    ]
    params: list[Any] = []
    for prefix in prefixes:
        params += [prefix, prefix + _TERM_END]
    if len(selects) == 1:
        return f"SELECT DISTINCT doc FROM {terms} WHERE term >= ?3 AND term < ?4", params
    return " UNION ".join(selects), params


# PostgreSQL: the pg_trgm GIN indexes over the active stations (stations_name_trgm,
# stations_places_trgm) serve ILIKE '%q%' directly; ILIKE folds case as SQLite's LIKE folds ASCII.
_PG_MATCH = {
    "name": "name ILIKE ?1 ESCAPE '\\'",
    "place": "NOT name ILIKE ?1 ESCAPE '\\' AND (address ILIKE ?1 ESCAPE '\\' OR area ILIKE ?1 ESCAPE '\\')",
}


async def _search_group(db: Executor, group: str, text: str, pattern: str, need: int) -> list[int]:
    """Ids of the first ``need`` active stations of ``group`` matching ``pattern``, by name and id."""
    if db.dialect == "postgresql":
        rows = await db.fetchall(
            f"SELECT id FROM stations WHERE active = 1 AND {_PG_MATCH[group]} ORDER BY name, id LIMIT ?2",
            (pattern, need),
        )
        return [r[0] for r in rows]
    source, source_params = _fts_source(group, text)
    match = _GROUPS[group][2]
    found = await db.fetchval(
        f"SELECT COUNT(*) FROM ({source} LIMIT ?2)", [pattern, SEARCH_CANDIDATES + 1, *source_params]
    )
    if found == 0:
        return []
    if found > SEARCH_CANDIDATES:
        # Many match: walk the stations in name order, a bounded stretch of the covering index. The
        # inner query streams in index order (a co-routine), so the first rows that pass are the first.
        rows = await db.fetchall(
            "SELECT id FROM (SELECT id, name, address, area FROM stations INDEXED BY stations_text"
            f" WHERE active = 1 ORDER BY name, id LIMIT ?2) WHERE {match} LIMIT ?3",
            (pattern, SEARCH_WALK, need),
        )
        if len(rows) >= need or not await db.fetchval(
            "SELECT EXISTS(SELECT 1 FROM stations INDEXED BY stations_text WHERE active = 1"
            " ORDER BY name, id LIMIT 1 OFFSET ?)",
            (SEARCH_WALK,),
        ):
            return [r[0] for r in rows]
        limit = -1  # they all sort late: order every candidate
    else:
        limit = SEARCH_CANDIDATES + 1
    rows = await db.fetchall(
        f"SELECT id FROM stations WHERE id IN ({source} LIMIT ?2) AND active = 1 AND {match}"
        " ORDER BY name, id LIMIT ?" + str(3 + len(source_params)),
        [pattern, limit, *source_params, need],
    )
    return [r[0] for r in rows]


async def search_text(db: Executor, query: str, *, limit: int = 10, offset: int = 0) -> list[StationRecord]:
    """Active stations whose name, address or area contains ``query`` (names first, then by name).
    A NUL character is dropped: SQLite ends a LIKE pattern or an FTS5 query there."""
    text = query.replace("\x00", "").strip()
    if not text or limit <= 0:
        return []
    pattern = _like(text)
    need = offset + limit
    ids = await _search_group(db, "name", text, pattern, need)
    if len(ids) < need:
        ids += await _search_group(db, "place", text, pattern, need - len(ids))
    ids = ids[offset:need]
    if not ids:
        return []
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM stations WHERE id IN ({', '.join('?' for _ in ids)})", ids
    )
    by_id = {r["id"]: _record(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


Box = tuple[float, float, float, float]  # (min_lat, max_lat, min_lon, max_lon)


def _ring(box: Box, inner: Box) -> list[Box]:
    """``box`` minus ``inner`` (which it contains) as up to four boxes: south, north, west, east.

    They share only their edges, and touch ``inner`` only on its edges: a station exactly on an edge
    may come back twice (callers key results by id).
    """
    min_lat, max_lat, min_lon, max_lon = box
    i_min_lat, i_max_lat, i_min_lon, i_max_lon = (
        max(inner[0], min_lat),
        min(inner[1], max_lat),
        max(inner[2], min_lon),
        min(inner[3], max_lon),
    )
    parts = [
        (min_lat, i_min_lat, min_lon, max_lon),
        (i_max_lat, max_lat, min_lon, max_lon),
        (i_min_lat, i_max_lat, min_lon, i_min_lon),
        (i_min_lat, i_max_lat, i_max_lon, max_lon),
    ]
    return [p for p in parts if p[0] < p[1] and p[2] < p[3]]


def _box_where(box: Box) -> tuple[str, list[Any]]:
    min_lat, max_lat, min_lon, max_lon = box
    first, last = lat_cell(min_lat), lat_cell(max_lat)
    # Cells go in as parameters, never as literals: the SQL text then depends only on how many cells
    # and filters there are, so sqlite3's statement cache serves it prepared (~80 µs a query saved).
    cell_list: list[int]
    if last - first + 1 <= _MAX_IN_CELLS:
        cell_list = list(range(first, last + 1))
        cells = "lat_cell IN (" + ", ".join("?" for _ in cell_list) + ")"
    else:
        cell_list = [first, last]
        cells = "lat_cell BETWEEN ? AND ?"
    where = f"active = 1 AND {cells} AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?"
    return where, [*cell_list, min_lon, max_lon, min_lat, max_lat]


async def candidates(
    db: Executor,
    *,
    lat: float,
    lon: float,
    box: Box,
    limit: int,
    facility_masks: Sequence[int] = (),
    exclude: Box | None = None,
) -> list[Candidate]:
    """Active stations inside ``box`` = (min_lat, max_lat, min_lon, max_lon), nearest ``limit`` first.

    The rank is the equirectangular distance from (lat, lon) (error ~1e-4 relative within a few km:
    callers re-rank with haversine). ``facility_masks``: a station must share a bit with each mask.
    ``exclude``: a box inside ``box`` already searched; only the ring around it is read (its index
    entries are not scanned again), though a station on its very edge may be returned.
    """
    k = math.cos(math.radians(lat))
    filters = "".join(" AND (facility_mask & ?) <> 0" for _ in facility_masks)
    d2 = "(lat - ?) * (lat - ?) + ((lon - ?) * ?) * ((lon - ?) * ?)"
    d2_params = [lat, lat, lon, k, lon, k]
    parts = [box] if exclude is None else _ring(box, exclude)
    if not parts:
        return []
    selects: list[str] = []
    params: list[Any] = []
    for part in parts:
        where, where_params = _box_where(part)
        selects.append(f"SELECT id, {d2} AS d2 FROM stations WHERE {where}{filters}")
        params += [*d2_params, *where_params, *facility_masks]
    if len(selects) == 1:
        nearest = f"{selects[0]} ORDER BY d2 LIMIT ?"
    else:
        nearest = f"SELECT id, d2 FROM ({' UNION ALL '.join(selects)}) ORDER BY d2 LIMIT ?"
    rows = await db.fetchall(
        f"SELECT {_CANDIDATE_COLUMNS}, c.d2 FROM ({nearest}) AS c JOIN stations AS s ON s.id = c.id ORDER BY c.d2, s.id",
        (*params, limit),
    )
    return [Candidate(r, math.sqrt(r["d2"]) * _DEG_M) for r in rows]


async def any_active(db: Executor) -> bool:
    """Is there any active station at all (one index probe, unlike ``count``)?"""
    return bool(await db.fetchval("SELECT EXISTS(SELECT 1 FROM stations WHERE active = 1)"))


async def areas(db: Executor) -> list[str]:
    """The areas stations are tagged with (for choosing one), by name."""
    rows = await db.fetchall("SELECT DISTINCT area FROM stations WHERE area <> '' ORDER BY area")
    return [r[0] for r in rows]


async def count(db: Executor, *, active_only: bool = True) -> int:
    sql = "SELECT COUNT(*) FROM stations" + (" WHERE active = 1" if active_only else "")
    return int(await db.fetchval(sql))


async def all_stations(db: Executor, *, include_inactive: bool = False) -> list[StationRecord]:
    """Every station (for export), in id order."""
    where = "" if include_inactive else " WHERE active = 1"
    rows = await db.fetchall(f"SELECT {_COLUMNS} FROM stations{where} ORDER BY id")
    return [_record(r) for r in rows]


# -- flags ---------------------------------------------------------------------------------------


_FLAG_COLUMNS = "id, station_id, user_id, reason, note, created_at, handled_at, handled_by, handled_action"


def _flag(row: Row) -> FlagRecord:
    return FlagRecord(
        id=row["id"],
        station_id=row["station_id"],
        user_id=row["user_id"],
        reason=row["reason"],
        note=row["note"],
        created_at=from_db_required(row["created_at"]),
        handled_at=from_db(row["handled_at"]),
        handled_by=row["handled_by"],
        handled_action=row["handled_action"],
    )


async def add_flag(
    db: Executor, *, station_id: int, user_id: int, reason: str, note: str, now: dt.datetime
) -> int:
    if reason not in FLAG_REASONS:
        raise ValueError(f"unknown flag reason {reason!r}")
    return await db.fetchval(
        "INSERT INTO station_flags(station_id, user_id, reason, note, created_at) VALUES (?, ?, ?, ?, ?)"
        " RETURNING id",
        (station_id, user_id, reason, note, to_db(now)),
    )


async def set_flag_note(db: Executor, flag_id: int, user_id: int, note: str) -> FlagRecord | None:
    """Add the courier's explanation to their own flag, once (None: not theirs, or it has one)."""
    row = await db.fetchone(
        f"UPDATE station_flags SET note = ? WHERE id = ? AND user_id = ? AND note = '' RETURNING {_FLAG_COLUMNS}",
        (note, flag_id, user_id),
    )
    return _flag(row) if row else None


async def recent_flag(
    db: Executor, *, station_id: int, user_id: int, reason: str, since: dt.datetime
) -> FlagRecord | None:
    row = await db.fetchone(
        f"SELECT {_FLAG_COLUMNS} FROM station_flags"
        " WHERE user_id = ? AND station_id = ? AND reason = ? AND created_at >= ?"
        " ORDER BY id DESC LIMIT 1",
        (user_id, station_id, reason, to_db(since)),
    )
    return _flag(row) if row else None


async def flags_for(db: Executor, station_id: int) -> list[FlagRecord]:
    rows = await db.fetchall(
        f"SELECT {_FLAG_COLUMNS} FROM station_flags WHERE station_id = ? ORDER BY id", (station_id,)
    )
    return [_flag(r) for r in rows]


async def get_flag(db: Executor, flag_id: int) -> FlagRecord | None:
    row = await db.fetchone(f"SELECT {_FLAG_COLUMNS} FROM station_flags WHERE id = ?", (flag_id,))
    return _flag(row) if row else None


async def mark_flag_handled(
    db: Executor, flag_id: int, *, user_id: int, action: str, now: dt.datetime
) -> FlagRecord | None:
    """Record who handled an open flag and how; None when there is no such flag or it was handled
    already (the first moderator's decision stands)."""
    if action not in FLAG_ACTIONS:
        raise ValueError(f"unknown flag action {action!r}")
    row = await db.fetchone(
        "UPDATE station_flags SET handled_at = ?, handled_by = ?, handled_action = ?"
        f" WHERE id = ? AND handled_at IS NULL RETURNING {_FLAG_COLUMNS}",
        (to_db(now), user_id, action, flag_id),
    )
    return _flag(row) if row else None
