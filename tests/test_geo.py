"""Datum conversions against published reference values, round trips, parsing, bearings, links."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.kit import geo
from bot.kit.geo import CoordinateError, Crs, LatLon

# Reference values published with other implementations of the same formulas:
# googollee/eviltransform python/test.py (wgsLat, wgsLng, gcjLat, gcjLng).
EVILTRANSFORM_WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# wandergis/coordtransform README (also asserted by hutool's CoordinateUtilTest), point (39.915, 116.404).
COORDTRANSFORM_WGS_TO_GCJ = ((39.915, 116.404), (39.91640428150164, 116.41024449916938))
COORDTRANSFORM_GCJ_TO_BD = ((39.915, 116.404), (39.92133699351021, 116.41036949371029))
COORDTRANSFORM_BD_TO_GCJ = ((39.915, 116.404), (39.90865673957631, 116.39762729119315))
# Beijing railway station, GCJ-02 vs BD-09, from the R package documentation (5 decimals).
BEIJING_STATION_GCJ_BD = ((39.90245, 116.42703), (39.90851, 116.43351))


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM_WGS_GCJ)
def test_wgs_to_gcj_matches_eviltransform(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lat, lon = geo.wgs84_to_gcj02(wlat, wlon)
    # eviltransform uses a=6378137 where we use Krasovsky's 6378245: the two differ by millimetres.
    assert lat == pytest.approx(glat, abs=1e-6)
    assert lon == pytest.approx(glon, abs=1e-6)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM_WGS_GCJ)
def test_gcj_to_wgs_inverts_within_a_centimetre(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lat, lon = geo.gcj02_to_wgs84(glat, glon)
    assert geo.haversine_m(lat, lon, wlat, wlon) < 0.01


def test_coordtransform_reference_values_exactly() -> None:
    (src, want) = COORDTRANSFORM_WGS_TO_GCJ
    assert geo.wgs84_to_gcj02(*src) == pytest.approx(want, abs=1e-12)
    (src, want) = COORDTRANSFORM_GCJ_TO_BD
    assert geo.gcj02_to_bd09(*src) == pytest.approx(want, abs=1e-12)
    (src, want) = COORDTRANSFORM_BD_TO_GCJ
    assert geo.bd09_to_gcj02(*src) == pytest.approx(want, abs=1e-12)


def test_beijing_station_gcj_bd() -> None:
    gcj, bd = BEIJING_STATION_GCJ_BD
    assert geo.gcj02_to_bd09(*gcj) == pytest.approx(bd, abs=1e-5)
    assert geo.bd09_to_gcj02(*bd) == pytest.approx(gcj, abs=1e-5)


def test_offset_size_in_hangzhou_is_a_few_hundred_metres() -> None:
    lat, lon = 30.2741, 120.1551
    glat, glon = geo.wgs84_to_gcj02(lat, lon)
    blat, blon = geo.wgs84_to_bd09(lat, lon)
    assert 300 < geo.haversine_m(lat, lon, glat, glon) < 700
    assert 700 < geo.haversine_m(lat, lon, blat, blon) < 1500


def test_round_trips_inside_china_under_one_metre() -> None:
    rng = random.Random(42)
    worst_gcj = worst_bd = 0.0
    for _ in range(2000):
        lat = rng.uniform(18.0, 53.0)
        lon = rng.uniform(74.0, 134.0)
        for crs in (Crs.GCJ02, Crs.BD09):
            back = geo.to_wgs84(*geo.from_wgs84(lat, lon, crs), crs)
            err = geo.haversine_m(lat, lon, *back)
            if crs is Crs.GCJ02:
                worst_gcj = max(worst_gcj, err)
            else:
                worst_bd = max(worst_bd, err)
    assert worst_gcj < 0.001  # the iterative inverse is essentially exact
    assert worst_bd < 1.0  # Baidu's closed-form inverse is approximate (centimetres)


def test_outside_china_is_identity() -> None:
    for lat, lon in [(48.8584, 2.2945), (35.6586, 139.7454), (-33.8568, 151.2153), (0.5, 100.0)]:
        assert geo.out_of_china(lat, lon)
        for crs in Crs:
            assert geo.from_wgs84(lat, lon, crs) == (lat, lon)
            assert geo.to_wgs84(lat, lon, crs) == (lat, lon)


def test_out_of_china_box_edges() -> None:
    assert not geo.out_of_china(30.27, 120.15)
    assert geo.out_of_china(30.0, 72.0)
    assert not geo.out_of_china(30.0, 72.004)
    assert geo.out_of_china(55.9, 120.0)
    assert geo.out_of_china(0.8, 120.0)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("wgs84", Crs.WGS84),
        ("WGS-84", Crs.WGS84),
        ("gcj02", Crs.GCJ02),
        ("GCJ-02", Crs.GCJ02),
        ("高德", Crs.GCJ02),
        ("bd09", Crs.BD09),
        ("BD09LL", Crs.BD09),
        ("百度", Crs.BD09),
    ],
)
def test_crs_parse(text: str, want: Crs) -> None:
    assert Crs.parse(text) is want


def test_crs_parse_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        Crs.parse("utm50n")


def test_distance_geodesic_and_haversine_agree_locally() -> None:
    a = LatLon(30.2741, 120.1551)
    b = LatLon(30.2900, 120.1300)
    g = geo.distance_m(a, b)
    h = geo.haversine_m(a.lat, a.lon, b.lat, b.lon)
    assert 2900 < g < 3000
    assert abs(g - h) / g < 0.005


def test_distance_matches_karney_geodesic_near_and_far() -> None:
    """The local-plane shortcut (up to 20 km) and the geographiclib fallback both equal geopy's geodesic."""
    from geopy.distance import geodesic

    rng = random.Random(7)
    for _ in range(3000):
        lat, lon = rng.uniform(-60, 60), rng.uniform(-179, 179)
        metres = rng.choice((rng.uniform(1, 3000), rng.uniform(3000, 20_000), rng.uniform(20_000, 2_000_000)))
        end = geodesic(meters=metres).destination((lat, lon), rng.uniform(0, 360))
        got = geo.distance_m(LatLon(lat, lon), LatLon(end.latitude, end.longitude))
        assert abs(got - metres) < 0.05, (lat, lon, metres, got)
    # Across the 20 km switch the figure stays continuous (no jump a courier could see).
    a = LatLon(30.0, 120.0)
    just_below = geo.distance_m(a, LatLon(30.0 + 19_999.0 / 111_000, 120.0))
    just_above = geo.distance_m(a, LatLon(30.0 + 20_001.0 / 111_000, 120.0))
    assert 0 < just_above - just_below < 3.0


@pytest.mark.parametrize(
    ("dlat", "dlon", "key"),
    [
        (0.01, 0.0, "north"),
        (0.01, 0.01, "northeast"),
        (0.0, 0.01, "east"),
        (-0.01, 0.01, "southeast"),
        (-0.01, 0.0, "south"),
        (-0.01, -0.01, "southwest"),
        (0.0, -0.01, "west"),
        (0.01, -0.01, "northwest"),
    ],
)
def test_compass(dlat: float, dlon: float, key: str) -> None:
    a = LatLon(30.27, 120.15)
    b = LatLon(30.27 + dlat, 120.15 + dlon)
    assert geo.compass_key(geo.initial_bearing(a, b)) == key


def test_compass_boundaries() -> None:
    assert geo.compass_key(0) == "north"
    assert geo.compass_key(22.4) == "north"
    assert geo.compass_key(22.5) == "northeast"
    assert geo.compass_key(337.5) == "north"
    assert geo.compass_key(359.9) == "north"
    assert geo.compass_key(-45) == "northwest"


def test_riding_minutes() -> None:
    assert geo.riding_minutes(0) == 1
    assert geo.riding_minutes(250) == 1
    assert geo.riding_minutes(1000) == 4  # 15 km/h = 250 m/min
    assert geo.riding_minutes(3000) == 12
    assert geo.riding_minutes(3000, speed_kmh=20) == 9
    with pytest.raises(ValueError):
        geo.riding_minutes(100, speed_kmh=0)


def test_bounding_box_contains_circle() -> None:
    rng = random.Random(1)
    lat0, lon0, r = 30.27, 120.15, 3000.0
    min_lat, max_lat, min_lon, max_lon = geo.bounding_box(lat0, lon0, r)
    for _ in range(5000):
        lat = rng.uniform(lat0 - 0.05, lat0 + 0.05)
        lon = rng.uniform(lon0 - 0.05, lon0 + 0.05)
        if geo.haversine_m(lat0, lon0, lat, lon) <= r:
            assert min_lat <= lat <= max_lat and min_lon <= lon <= max_lon
    # and is not absurdly large
    assert (max_lat - min_lat) < 0.06


@pytest.mark.parametrize(
    ("text", "lat", "lon", "swapped"),
    [
        ("30.2741, 120.1551", 30.2741, 120.1551, False),
        ("30.2741,120.1551", 30.2741, 120.1551, False),
        ("30.2741，120.1551", 30.2741, 120.1551, False),  # full-width comma
        ("30.2741 120.1551", 30.2741, 120.1551, False),
        ("  30.2741\t120.1551 ", 30.2741, 120.1551, False),
        ("30.2741；120.1551", 30.2741, 120.1551, False),
        ("３０．２７４１，１２０．１５５１", 30.2741, 120.1551, False),  # full-width digits
        ("120.1551, 30.2741", 30.2741, 120.1551, True),  # lon first: lat would be out of range
        ("87.6, 43.8", 43.8, 87.6, True),  # Urumqi lon first: both in range, only swapped is in China
        ("30.27°N 120.15°E", 30.27, 120.15, False),
        ("120.15E, 30.27N", 30.27, 120.15, True),
        ("48.8584, 2.2945", 48.8584, 2.2945, False),  # Paris: outside China, left alone
        ("-33.86 151.21", -33.86, 151.21, False),
    ],
)
def test_parse_coordinates(text: str, lat: float, lon: float, swapped: bool) -> None:
    parsed = geo.parse_coordinates(text)
    assert parsed.point == LatLon(lat, lon)
    assert parsed.swapped is swapped


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("hello", "coords.format"),
        ("30.2741", "coords.format"),
        ("30.27, 120.15, 5", "coords.format"),
        ("文三路", "coords.format"),
        ("200, 200", "coords.both_range"),
        ("95, 95", "coords.lat_range"),
        ("100N, 30E", "coords.lat_range"),
        ("30N, 190E", "coords.lon_range"),
    ],
)
def test_parse_coordinates_errors(text: str, key: str) -> None:
    with pytest.raises(CoordinateError) as info:
        geo.parse_coordinates(text)
    assert info.value.key == key


def test_parse_error_details() -> None:
    with pytest.raises(CoordinateError) as info:
        geo.parse_coordinates("95.5, 95")
    assert info.value.details == {"lat": "95.5", "lon": "95"}


def test_check_lat_lon() -> None:
    assert geo.check_lat_lon(30.27, 120.15) is None
    assert geo.check_lat_lon(120.15, 30.27) == "swapped"
    assert geo.check_lat_lon(95.0, 200.0) == "both_range"
    assert geo.check_lat_lon(30.0, 200.0) == "lon_range"


def test_amap_link_uses_gcj02() -> None:
    p = LatLon(30.2741, 120.1551)
    url = geo.amap_marker_url(p, "暖蜂驿站·文三路站")
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "uri.amap.com" and parts.path == "/marker"
    q = parse_qs(parts.query)
    lon_s, lat_s = q["position"][0].split(",")
    glat, glon = geo.wgs84_to_gcj02(p.lat, p.lon)
    assert float(lat_s) == pytest.approx(glat, abs=1e-6)
    assert float(lon_s) == pytest.approx(glon, abs=1e-6)
    assert q["name"] == ["暖蜂驿站·文三路站"]
    assert q["coordinate"] == ["gaode"]
    assert q["callnative"] == ["1"]
