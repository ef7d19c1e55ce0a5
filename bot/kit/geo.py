"""Coordinates: China's map datums, distances, bearings, typed coordinates and map links.

Coordinate systems
------------------
* **WGS-84**: GPS and Telegram (a shared location or venue). We store every station in WGS-84.
* **GCJ-02** ("Mars coordinates"): the datum every map published in mainland China must use (Amap/高德,
  Tencent/腾讯). It is WGS-84 plus a deliberately obfuscated offset of 300-600 m. The forward formula
  (WGS-84 -> GCJ-02) is the widely published one (``eviltransform``, ``coordtransform``; Krasovsky 1940
  semi-major axis 6378245 m and its eccentricity). There is no closed-form inverse: we invert it by a
  fixed-point iteration that converges to far below a millimetre in a handful of steps.
* **BD-09**: Baidu's extra offset on top of GCJ-02 (closed form both ways).

Outside China GCJ-02 equals WGS-84. "Outside" uses the customary rectangle from the published
implementations: longitude 72.004..137.8347 E and latitude 0.8293..55.8271 N is "inside". The rectangle
also covers bits of neighbouring countries, exactly as the published converters (and hence the data we
import) do; consistency with them matters more than political borders. BD-09 follows the same rule.

Distances
---------
``haversine_m`` (spherical, ~1 µs) orders candidates; ``distance_m`` (WGS-84 ellipsoid: its local
tangent plane up to 20 km, ~1 µs and within 3 cm of Karney's geodesic; geographiclib beyond) gives
the figure shown for the few results on a card. Within a few kilometres the two differ by well under
0.5%; ``bench/bench_nearest.py`` measures the whole path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from geographiclib.geodesic import Geodesic

__all__ = [
    "EARTH_RADIUS_M",
    "CoordinateError",
    "Crs",
    "LatLon",
    "ParsedCoordinates",
    "amap_marker_url",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "bounding_box",
    "check_lat_lon",
    "compass_key",
    "distance_m",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "haversine_m",
    "initial_bearing",
    "out_of_china",
    "parse_coordinates",
    "riding_minutes",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), used by the spherical formulas
_WGS84 = Geodesic.WGS84
_DISTANCE_ONLY = Geodesic.DISTANCE
_WGS84_A = Geodesic.WGS84.a
_E2 = Geodesic.WGS84.f * (2.0 - Geodesic.WGS84.f)  # first eccentricity squared
_LOCAL_PLANE_MAX_M = 20_000.0
_KRASOVSKY_A = 6_378_245.0
_KRASOVSKY_EE = 0.006_693_421_622_965_943_23
_BD_X_PI = math.pi * 3000.0 / 180.0

DEFAULT_RIDING_SPEED_KMH = 15.0
"""Effective urban e-bike speed (stops, lights, one-way streets included)."""


class Crs(StrEnum):
    """A coordinate reference system as written in an import file or on the command line."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"

    @classmethod
    def parse(cls, text: str) -> Crs:
        """Accept the usual spellings (``WGS-84``, ``gcj-02``, ``GCJ02``, ``bd09ll``, ``高德``, ``百度``).

        Raises ``ValueError`` for anything else.
        """
        norm = unicodedata.normalize("NFKC", text).strip().lower().replace("-", "").replace("_", "")
        norm = norm.replace(" ", "")
        aliases = {
            "wgs84": cls.WGS84,
            "wgs": cls.WGS84,
            "gps": cls.WGS84,
            "epsg4326": cls.WGS84,
            "gcj02": cls.GCJ02,
            "gcj": cls.GCJ02,
            "gaode": cls.GCJ02,
            "amap": cls.GCJ02,
            "高德": cls.GCJ02,
            "腾讯": cls.GCJ02,
            "火星": cls.GCJ02,
            "bd09": cls.BD09,
            "bd09ll": cls.BD09,
            "baidu": cls.BD09,
            "百度": cls.BD09,
        }
        try:
            return aliases[norm]
        except KeyError:
            raise ValueError(text) from None


@dataclass(frozen=True, slots=True)
class LatLon:
    """A point in degrees (WGS-84 unless a function says otherwise)."""

    lat: float
    lon: float


# --------------------------------------------------------------------------------------------------
# Datum conversions
# --------------------------------------------------------------------------------------------------


def out_of_china(lat: float, lon: float) -> bool:
    """True outside the customary rectangle where the GCJ-02 offset applies (see module docstring)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj_offset(lat: float, lon: float) -> tuple[float, float]:
    """The GCJ-02 offset (degrees) at a WGS-84 point inside China."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _KRASOVSKY_EE * math.sin(radlat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(radlat) * math.pi)
    return dlat, dlon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 (identity outside China)."""
    if out_of_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj_offset(lat, lon)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float, *, tolerance_deg: float = 1e-10) -> tuple[float, float]:
    """GCJ-02 -> WGS-84 by fixed-point iteration of the forward formula.

    Start from ``gcj - offset(gcj)`` (already within ~1-2 m) and correct by the residual of the forward
    conversion until it is below ``tolerance_deg`` (1e-10 degrees is ~0.01 mm). The offset field is
    smooth and its gradient tiny, so each step shrinks the error by a factor of ~1e-4: two or three
    steps suffice; the loop is capped for safety.
    """
    if out_of_china(lat, lon):
        return lat, lon
    dlat, dlon = _gcj_offset(lat, lon)
    wlat, wlon = lat - dlat, lon - dlon
    for _ in range(10):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        elat, elon = glat - lat, glon - lon
        if abs(elat) < tolerance_deg and abs(elon) < tolerance_deg:
            break
        wlat -= elat
        wlon -= elon
    return wlat, wlon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 (Baidu's published formula; identity outside China)."""
    if out_of_china(lat, lon):
        return lat, lon
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 -> GCJ-02 (the published closed-form inverse; identity outside China)."""
    if out_of_china(lat, lon):
        return lat, lon
    x = lon - 0.0065
    y = lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def to_wgs84(lat: float, lon: float, crs: Crs) -> tuple[float, float]:
    """Convert a point given in ``crs`` to WGS-84."""
    if crs is Crs.GCJ02:
        return gcj02_to_wgs84(lat, lon)
    if crs is Crs.BD09:
        return bd09_to_wgs84(lat, lon)
    return lat, lon


def from_wgs84(lat: float, lon: float, crs: Crs) -> tuple[float, float]:
    """Convert a WGS-84 point to ``crs``."""
    if crs is Crs.GCJ02:
        return wgs84_to_gcj02(lat, lon)
    if crs is Crs.BD09:
        return wgs84_to_bd09(lat, lon)
    return lat, lon


# --------------------------------------------------------------------------------------------------
# Distance, bearing, riding time
# --------------------------------------------------------------------------------------------------


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on the mean sphere: cheap, for ordering candidates."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_m(a: LatLon, b: LatLon) -> float:
    """Ellipsoidal (WGS-84) distance in metres: the figure we show to couriers.

    Up to 20 km (every card), the ellipsoid's local tangent plane at the mid-latitude, scaled by its
    meridional and prime-vertical radii of curvature: ~1 µs, and within 3 cm of Karney's geodesic
    (measured over random pairs worldwide up to 60°; tests/test_geo.py holds it to 5 cm). Beyond
    that, Karney's algorithm from geographiclib (what geopy's ``geodesic`` calls; ~40 µs).
    """
    phi_m = math.radians((a.lat + b.lat) / 2.0)
    sin_m = math.sin(phi_m)
    w2 = 1.0 - _E2 * sin_m * sin_m
    w = math.sqrt(w2)
    north = math.radians(b.lat - a.lat) * _WGS84_A * (1.0 - _E2) / (w2 * w)
    east = math.radians(b.lon - a.lon) * _WGS84_A / w * math.cos(phi_m)
    planar = math.hypot(north, east)
    if planar <= _LOCAL_PLANE_MAX_M:
        return planar
    return float(_WGS84.Inverse(a.lat, a.lon, b.lat, b.lon, _DISTANCE_ONLY)["s12"])


def initial_bearing(a: LatLon, b: LatLon) -> float:
    """Initial great-circle bearing from ``a`` to ``b`` in degrees, 0 = north, clockwise, [0, 360)."""
    p1 = math.radians(a.lat)
    p2 = math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


_COMPASS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")


def compass_key(bearing_deg: float) -> str:
    """The 8-point compass key for a bearing (``"northeast"``); the catalog renders it (东北方向)."""
    return _COMPASS[int(((bearing_deg % 360.0) + 22.5) // 45.0) % 8]


def riding_minutes(distance: float, speed_kmh: float = DEFAULT_RIDING_SPEED_KMH) -> int:
    """Whole minutes (at least 1) to ride ``distance`` metres at ``speed_kmh``."""
    if speed_kmh <= 0:
        raise ValueError("speed_kmh must be positive")
    return max(1, math.ceil(distance / (speed_kmh * 1000.0 / 60.0)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """``(min_lat, max_lat, min_lon, max_lon)`` of a box that contains the circle of ``radius_m``.

    Slightly generous (a 0.5% margin) so that no point within the haversine radius falls outside;
    longitudes are not wrapped at the antimeridian (irrelevant for China), and near the poles the
    longitude span becomes the whole range.
    """
    dlat = math.degrees(radius_m * 1.005 / EARTH_RADIUS_M)
    min_lat, max_lat = lat - dlat, lat + dlat
    if max_lat >= 90.0 or min_lat <= -90.0:
        return max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0
    cos_lat = min(math.cos(math.radians(min_lat)), math.cos(math.radians(max_lat)))
    dlon = min(180.0, dlat / max(cos_lat, 1e-12))
    return min_lat, max_lat, lon - dlon, lon + dlon


# --------------------------------------------------------------------------------------------------
# Coordinates typed by a courier
# --------------------------------------------------------------------------------------------------


class CoordinateError(ValueError):
    """Text that is not a usable coordinate pair. ``key`` names the catalog text, ``details`` its fields.

    Keys: ``coords.format`` (not two numbers), ``coords.lat_range``, ``coords.lon_range``,
    ``coords.both_range``.
    """

    def __init__(self, key: str, **details: str) -> None:
        super().__init__(key)
        self.key = key
        self.details = details


@dataclass(frozen=True, slots=True)
class ParsedCoordinates:
    point: LatLon
    swapped: bool
    """True when the text was "lon, lat" and we turned it round."""


_NUMBER = r"[-+]?\d{1,3}(?:\.\d+)?"
_COORDS_RE = re.compile(
    rf"^\s*(?P<a>{_NUMBER})\s*°?\s*(?P<ah>[NSEW])?\s*(?:[,;/]\s*|\s+)"
    rf"(?P<b>{_NUMBER})\s*°?\s*(?P<bh>[NSEW])?\s*$",
    re.IGNORECASE,
)


def check_lat_lon(lat: float, lon: float) -> str | None:
    """Classify a (lat, lon) pair as read from a file or a message.

    Returns ``None`` when fine, ``"swapped"`` when it is evidently (lon, lat), else ``"lat_range"``,
    ``"lon_range"`` or ``"both_range"``. "Evidently swapped" means either the pair is out of range one
    way and in range the other way, or both readings are in range but only the swapped one lies in
    China (Amap's own rule of thumb: in China the larger number is the longitude).
    """
    lat_ok = -90.0 <= lat <= 90.0
    lon_ok = -180.0 <= lon <= 180.0
    swapped_ok = -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0
    if lat_ok and lon_ok:
        if out_of_china(lat, lon) and not out_of_china(lon, lat):
            return "swapped"
        return None
    if swapped_ok:
        return "swapped"
    return _range_problem(lat, lon)


def _range_problem(lat: float, lon: float) -> str | None:
    lat_ok = -90.0 <= lat <= 90.0
    lon_ok = -180.0 <= lon <= 180.0
    if lat_ok and lon_ok:
        return None
    if not lat_ok and not lon_ok:
        return "both_range"
    return "lat_range" if not lat_ok else "lon_range"


def parse_coordinates(text: str) -> ParsedCoordinates:
    """Parse "lat, lon" as a courier types it.

    Accepts ASCII or full-width separators (``,`` ``，`` ``;`` ``；`` ``/`` or whitespace), optional
    degree signs and N/S/E/W suffixes (``30.27°N 120.15°E``). A pair given as "lon, lat" is turned
    round when that is unambiguous (see ``check_lat_lon``) or the hemisphere letters say so.
    Raises ``CoordinateError``.
    """
    norm = unicodedata.normalize("NFKC", text).strip()  # full-width digits and punctuation -> ASCII
    norm = norm.replace("、", ",")
    m = _COORDS_RE.match(norm)
    if m is None:
        raise CoordinateError("coords.format")
    a, b = float(m["a"]), float(m["b"])
    ah, bh = (m["ah"] or "").upper(), (m["bh"] or "").upper()
    if ah in ("S", "W"):
        a = -abs(a)
    if bh in ("S", "W"):
        b = -abs(b)
    if ah in ("E", "W") and bh in ("N", "S", ""):
        return _checked(b, a, swapped=True, explicit=True)
    if ah in ("N", "S") or bh in ("E", "W"):
        return _checked(a, b, swapped=False, explicit=True)
    return _checked(a, b, swapped=False, explicit=False)


def _checked(lat: float, lon: float, *, swapped: bool, explicit: bool) -> ParsedCoordinates:
    # Hemisphere letters fix the order: the values must then be in range as given.
    problem = _range_problem(lat, lon) if explicit else check_lat_lon(lat, lon)
    if problem is None:
        return ParsedCoordinates(LatLon(lat, lon), swapped)
    if problem == "swapped":
        return ParsedCoordinates(LatLon(lon, lat), not swapped)
    raise CoordinateError(f"coords.{problem}", lat=_fmt(lat), lon=_fmt(lon))


def _fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------------------------------
# Map links
# --------------------------------------------------------------------------------------------------


def amap_marker_url(point: LatLon, name: str, *, src: str = "xiaoge-bot") -> str:
    """A link that opens Amap (the app on a phone, else the web page) with a pin on a WGS-84 point.

    Uses the documented web URI ``https://uri.amap.com/marker`` (https://lbs.amap.com/api/uri-api/guide/
    mobile-web/point): ``position=lon,lat``, ``coordinate=gaode`` (GCJ-02: we convert ourselves rather
    than rely on ``coordinate=wgs84``), ``callnative=1`` (try the app), ``src`` identifies the caller.
    """
    glat, glon = wgs84_to_gcj02(point.lat, point.lon)
    return (
        f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}"
        f"&name={quote(name, safe='')}&src={quote(src, safe='')}&coordinate=gaode&callnative=1"
    )
