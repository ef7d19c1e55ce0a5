"""Import and export of station lists (CSV as Excel writes it, and GeoJSON).

CSV
---
UTF-8 with or without BOM, or GB18030/GBK (what Excel on a Chinese Windows saves); comma- or
tab-separated. The first line names the columns, in any order; only ``name``, ``lat`` and ``lon`` are
required::

    external_id,name,kind,lat,lon,crs,address,opening_hours,facilities,phone,area
    xh-001,【演示】文三路暖蜂驿站,station,30.2795,120.1305,gcj02,文三路 90 号,24/7,饮水;充电;微波炉,0571-0000,文新街道

* ``crs``: ``wgs84`` (GPS, Telegram), ``gcj02`` (Amap, Tencent) or ``bd09`` (Baidu) for that row;
  empty means the ``--crs`` given to the import (default ``wgs84``). Everything is stored in WGS-84.
* ``facilities``: codes or names separated by ``;`` or ``；`` (``饮水;充电;微波炉`` or
  ``drinking_water;phone_charging``); see bot/facilities.py for the vocabulary.
* ``kind``: station, party_center, canteen, merchant, water_point, battery_cabinet, parcel_locker (or
  the Chinese names: 驿站, 党群服务中心, 小哥食堂, 爱心商家, 饮水点, 换电柜, 快递柜); empty = station.
* ``opening_hours``: the OSM subset of bot/opening_hours.py (``24/7``, ``Mo-Fr 09:00-21:00; Sa,Su
  10:00-18:00``); empty = unknown.
* ``demo``: 1 marks a demo station (empty: a name starting with 【演示】 or [DEMO] does).
* ``active``: 0 imports a new station deactivated (an export with ``--include-inactive`` writes it).
  A station already in the database keeps its state either way: a re-import never reactivates what
  a moderator deactivated, nor deactivates what one reactivated.
* Chinese column names work too: 编号, 名称, 类型, 纬度, 经度, 坐标系, 地址, 营业时间, 设施, 电话, 片区,
  演示, 启用.

GeoJSON
-------
A FeatureCollection of Point features (``coordinates: [lon, lat]``) whose properties use the same names;
a feature's ``id`` is used when ``external_id`` is absent.

Every row is checked; a bad row is reported with its line (or feature) number and reason and the good
rows still import, IMPORT_BATCH rows a transaction (a big file never holds the database's writer for
long: couriers' replies go on while it imports; a file cut short by a crash is simply imported again,
since rows are matched by ``external_id``). Re-importing updates stations by ``external_id`` (a row
without one gets a stable id from its name and rounded position) and never duplicates them. Names
starting with 【演示】 or [DEMO] mark demo stations.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from bot.core.clock import SystemClock
from bot.core.container import Core
from bot.kit.geo import Crs, check_lat_lon, to_wgs84
from bot.kit.spreadsheet import escape_cell, unescape_cell
from bot.stations.service import StationInputError, derived_external_id, validate_fields
from storage import stations as repo
from storage.db import Database
from storage.stations import StationData

__all__ = [
    "COLUMNS",
    "ImportResult",
    "RowError",
    "StationImportError",
    "export_csv",
    "import_file",
    "import_rows",
    "preview_bytes",
    "read_csv",
    "read_geojson",
    "write_rows",
]

COLUMNS = (
    "external_id",
    "name",
    "kind",
    "lat",
    "lon",
    "crs",
    "address",
    "opening_hours",
    "facilities",
    "phone",
    "area",
    "demo",
    "active",
)
REQUIRED = ("name", "lat", "lon")
DEMO_MARKERS = ("【演示】", "[demo]", "[演示]")
_HEADER_ALIASES = {
    "id": "external_id",
    "externalid": "external_id",
    "编号": "external_id",
    "名称": "name",
    "站点名称": "name",
    "驿站名称": "name",
    "类型": "kind",
    "纬度": "lat",
    "latitude": "lat",
    "经度": "lon",
    "lng": "lon",
    "long": "lon",
    "longitude": "lon",
    "坐标系": "crs",
    "地址": "address",
    "营业时间": "opening_hours",
    "开放时间": "opening_hours",
    "hours": "opening_hours",
    "openinghours": "opening_hours",
    "设施": "facilities",
    "服务": "facilities",
    "电话": "phone",
    "联系电话": "phone",
    "片区": "area",
    "街道": "area",
    "演示": "demo",
    "启用": "active",
}
_TRUE = ("1", "true", "yes", "y", "是")
_FALSE = ("0", "false", "no", "n", "否")
_MAX_CELL = 128 * 1024  # csv's default field limit, named in the error


class StationImportError(ValueError):
    """The file as a whole cannot be imported (unreadable, no header, a required column missing)."""


@dataclass(frozen=True)
class RowError:
    line: int  # CSV line number (the header is line 1) or GeoJSON feature number (from 1)
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.reason}"


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.inserted + self.updated

    def summary(self) -> str:
        head = f"{self.inserted} stations added, {self.updated} updated, {len(self.errors)} rows rejected"
        return "\n".join([head, *(f"  {e}" for e in self.errors)])


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, Any]


# -- reading -------------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise StationImportError(f"the file starts like UTF-16 text but is not: {exc.reason}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError:
        raise StationImportError("the file is neither UTF-8 nor GB18030/GBK text") from None


def _column(name: str) -> str:
    key = unicodedata.normalize("NFKC", name).strip().lower().replace(" ", "").replace("-", "_")
    key = _HEADER_ALIASES.get(key.replace("_", ""), _HEADER_ALIASES.get(key, key))
    return key


def read_csv(text: str) -> Iterator[_Row]:
    """Rows of a decoded CSV text as {column: value}, with the line each row ends on."""
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise StationImportError("the file is empty") from None
    except csv.Error as exc:
        raise StationImportError(f"line 1: unreadable CSV header: {exc}") from None
    columns = [_column(h) for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise StationImportError(
            f"missing column(s) {', '.join(missing)} in the header line (found: {', '.join(header)})"
        )
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                reason = f"a cell is longer than {_MAX_CELL // 1024} KB"
            else:
                reason = str(exc)
            raise StationImportError(f"line {reader.line_num}: unreadable CSV: {reason}") from None
        if not any(c.strip() for c in cells):
            continue
        values = {col: unescape_cell(cell) for col, cell in zip(columns, cells, strict=False) if col}
        yield _Row(reader.line_num, values)


def read_geojson(text: str) -> Iterator[_Row]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StationImportError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise StationImportError("not valid JSON: nested too deeply") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise StationImportError("GeoJSON must be a FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise StationImportError("GeoJSON FeatureCollection has no features list")
    for number, feature in enumerate(features, start=1):
        values: dict[str, Any] = {}
        if isinstance(feature, dict):
            props = feature.get("properties") or {}
            if isinstance(props, dict):
                values = {_column(str(k)): v for k, v in props.items()}
            geometry = feature.get("geometry") or {}
            coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if isinstance(geometry, dict) and geometry.get("type") == "Point" and isinstance(coords, list):
                if len(coords) >= 2:
                    values["lon"], values["lat"] = coords[0], coords[1]
            else:
                values["_geometry_error"] = "geometry must be a Point"
            if not values.get("external_id") and feature.get("id") is not None:
                values["external_id"] = feature["id"]
        else:
            values["_geometry_error"] = "not a Feature"
        yield _Row(number, values)


# -- checking ------------------------------------------------------------------------------------


def _text(values: dict[str, Any], key: str) -> str:
    value = values.get(key)
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return unicodedata.normalize("NFC", str(value)).strip()


def _number(values: dict[str, Any], key: str) -> float:
    value = values.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = unicodedata.normalize("NFKC", _text(values, key)).replace("°", "").strip()
    if not text:
        raise StationInputError(key, f"missing {key}")
    try:
        return float(text)
    except ValueError:
        raise StationInputError(key, f"{key} is not a number: {text!r}") from None


def _is_demo(values: dict[str, Any], name: str) -> bool:
    flag = _text(values, "demo").lower()
    if flag:
        return flag in _TRUE
    return name.lower().startswith(DEMO_MARKERS)


def _is_active(values: dict[str, Any]) -> bool:
    value = values.get("active")
    if isinstance(value, bool):
        return value
    flag = _text(values, "active").lower()
    if not flag or flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    raise StationInputError("active", f"active must be 1 or 0, not {flag!r}")


def check_row(values: dict[str, Any], default_crs: Crs, source: str) -> StationData:
    """One row to WGS-84 station data; raises ``StationInputError`` with the reason."""
    if "_geometry_error" in values:
        raise StationInputError("geometry", values["_geometry_error"])
    name = _text(values, "name")
    if not name:
        raise StationInputError("name", "missing name")
    lat = _number(values, "lat")
    lon = _number(values, "lon")
    problem = check_lat_lon(lat, lon)
    if problem == "swapped":
        raise StationInputError(
            "lat", f"latitude and longitude look swapped (lat={lat}, lon={lon}); put the latitude in lat"
        )
    if problem is not None:
        raise StationInputError("lat", f"coordinates out of range (lat={lat}, lon={lon})")
    crs_text = _text(values, "crs")
    try:
        crs = Crs.parse(crs_text) if crs_text else default_crs
    except ValueError:
        raise StationInputError("crs", f"unknown crs {crs_text!r} (use wgs84, gcj02 or bd09)") from None
    wlat, wlon = to_wgs84(lat, lon, crs)
    clean = validate_fields(
        name=name,
        lat=wlat,
        lon=wlon,
        kind=_text(values, "kind"),
        address=_text(values, "address"),
        opening_hours=_text(values, "opening_hours"),
        facilities=_text(values, "facilities"),
        phone=_text(values, "phone"),
        area=_text(values, "area"),
    )
    external_id = _text(values, "external_id") or derived_external_id(clean["name"], wlat, wlon)
    return StationData(
        external_id=external_id,
        source=source,
        demo=_is_demo(values, name),
        active=_is_active(values),
        **clean,
    )


# -- importing -----------------------------------------------------------------------------------

IMPORT_BATCH = 200  # rows per transaction: a few milliseconds of the writer each


def check_rows(
    rows: Iterator[_Row] | list[_Row], *, crs: Crs, source: str, unit: str
) -> tuple[list[tuple[int, StationData]], list[RowError]]:
    """Every row checked, nothing written: the good rows (with their line) and the per-row errors."""
    good: list[tuple[int, StationData]] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    for row in rows:
        try:
            data = check_row(row.values, crs, source)
        except StationInputError as exc:
            errors.append(RowError(row.line, exc.reason, unit))
            continue
        if data.external_id in first_line:
            errors.append(
                RowError(
                    row.line,
                    f"duplicate external_id {data.external_id!r} (first on {unit} {first_line[data.external_id]})",
                    unit,
                )
            )
            continue
        first_line[data.external_id] = row.line
        good.append((row.line, data))
    return good, errors


async def write_rows(db: Database, good: list[StationData], *, now: dt.datetime) -> ImportResult:
    """Write checked rows (insert, or update by external_id), IMPORT_BATCH rows a transaction."""
    result = ImportResult()
    for start in range(0, len(good), IMPORT_BATCH):
        async with db.transaction() as tx:
            for data in good[start : start + IMPORT_BATCH]:
                _, inserted = await repo.upsert(tx, data, now)
                if inserted:
                    result.inserted += 1
                else:
                    result.updated += 1
        await asyncio.sleep(0)  # let waiting statements in between two batches
    return result


async def import_rows(
    db: Database, rows: Iterator[_Row] | list[_Row], *, crs: Crs, source: str, now: dt.datetime, unit: str
) -> ImportResult:
    good, errors = check_rows(rows, crs=crs, source=source, unit=unit)
    result = await write_rows(db, [data for _, data in good], now=now)
    result.errors = errors
    return result


@dataclass
class Preview:
    """An uploaded file checked before anything is written: per good row its line, the station, and the
    area of the station it would update (None: a new station)."""

    rows: list[tuple[int, StationData, str | None]]
    errors: list[RowError]


async def preview_bytes(db: Database, raw: bytes, *, filename: str, crs: Crs = Crs.WGS84) -> Preview:
    """Check an uploaded CSV (or GeoJSON) without writing. Raises StationImportError for a file that
    cannot be read at all."""
    text = _decode(raw)
    is_json = filename.lower().endswith((".json", ".geojson")) or text.lstrip().startswith("{")
    rows = list(read_geojson(text) if is_json else read_csv(text))
    good, errors = check_rows(rows, crs=crs, source=filename, unit="feature" if is_json else "line")
    known = await repo.existing_external_ids(db, [d.external_id for _, d in good])
    areas: dict[str, str] = {}
    for external_id in known:
        station = await repo.get_by_external_id(db, external_id)
        if station is not None:
            areas[external_id] = station.area
    return Preview([(line, d, areas.get(d.external_id)) for line, d in good], errors)


async def import_file(
    core_or_db: Core | Database, path: str | Path, crs: Crs | str | None = None
) -> ImportResult:
    """Import a CSV or GeoJSON file (by extension: .json/.geojson is GeoJSON, else CSV).

    ``crs`` is the default for rows without a ``crs`` column (``wgs84`` when None). Raises
    ``StationImportError`` when the file as a whole is unusable; bad rows are in the result.
    """
    if isinstance(core_or_db, Core):
        db, now = core_or_db.db, core_or_db.clock.now()
    else:
        db, now = core_or_db, SystemClock().now()
    default_crs = Crs.parse(crs) if isinstance(crs, str) else (crs or Crs.WGS84)
    p = Path(path)
    try:
        raw = await asyncio.to_thread(p.read_bytes)
    except OSError as exc:
        raise StationImportError(f"cannot read {p}: {exc.strerror}") from None
    text = _decode(raw)
    is_json = p.suffix.lower() in (".json", ".geojson") or text.lstrip().startswith("{")
    rows = list(read_geojson(text) if is_json else read_csv(text))
    return await import_rows(
        db, rows, crs=default_crs, source=p.name, now=now, unit="feature" if is_json else "line"
    )


# -- exporting -----------------------------------------------------------------------------------


def _export_row(s: repo.StationRecord) -> list[str]:
    return [
        s.external_id,
        s.name,
        s.kind,
        f"{s.lat:.7f}",
        f"{s.lon:.7f}",
        "wgs84",
        s.address,
        s.opening_hours,
        ";".join(s.facilities),
        s.phone,
        s.area,
        "1" if s.demo else "0",
        "1" if s.active else "0",
    ]


async def export_csv(
    db: Database, path_or_stream: str | Path | TextIO, *, include_inactive: bool = False
) -> int:
    """Write the stations as an import-ready CSV (UTF-8 with BOM for Excel, WGS-84). Returns the count.

    ``"-"`` writes to standard output. The ``demo`` and ``active`` columns round-trip through
    ``import_file`` (``active`` only for stations new to the importing database).
    """
    if path_or_stream == "-":
        path_or_stream = sys.stdout
    stations = await repo.all_stations(db, include_inactive=include_inactive)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([escape_cell(cell) for cell in _export_row(s)] for s in stations)
    if isinstance(path_or_stream, str | Path):
        target = Path(path_or_stream)
        await asyncio.to_thread(target.write_text, buffer.getvalue(), encoding="utf-8-sig", newline="")
    else:
        stream = cast(TextIO, path_or_stream)
        stream.write("\ufeff" + buffer.getvalue())
    return len(stations)
