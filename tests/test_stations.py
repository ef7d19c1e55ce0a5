import csv
import datetime as dt
import io
import itertools
import json
import math
import random

import pytest
from geopy.distance import geodesic

from bot.core.clock import FakeClock
from bot.core.config import Config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.geo import LatLon, haversine_m, wgs84_to_bd09, wgs84_to_gcj02
from bot.stations import importer as imp
from bot.stations.service import (
    StationInputError,
    StationService,
    format_distance,
    format_status,
    render_card,
    render_details,
    validate_fields,
)
from storage import outbox
from storage import stations as repo
from storage.db import Database
from tests.dbs import make_database

# 2026-11-25 10:00 Asia/Shanghai (a Wednesday)
NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
HERE = LatLon(30.2741, 120.1551)
DEMO = "data/stations.demo.csv"
HEADER = "external_id,name,kind,lat,lon,crs,address,opening_hours,facilities,phone,area\n"


def make_core(db: Database, **bot: object) -> Core:
    config = Config().with_overrides(bot=bot) if bot else Config()
    return Core(config=config, clock=FakeClock(NOW), db=db, catalog=Catalog.load())


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "t.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def core(db):
    return make_core(db, moderator_chat_id=-100500, area_moderator_chats={"蒋村街道": -100777})


@pytest.fixture
def service(core):
    return StationService(core)


def offset_point(origin: LatLon, metres: float, bearing_deg: float) -> LatLon:
    p = geodesic(meters=metres).destination((origin.lat, origin.lon), bearing_deg)
    return LatLon(p.latitude, p.longitude)


async def add_at(service, name, point, **kw):
    return await service.add(name=name, lat=point.lat, lon=point.lon, external_id=name, **kw)


def first_demo_row() -> list[str]:
    with open(DEMO, encoding="utf-8-sig") as fh:
        return fh.read().splitlines()[1].split(",")


# -- import -----------------------------------------------------------------------------------


async def test_demo_file_imports_and_reimport_is_idempotent(core, db):
    first = await imp.import_file(core, DEMO)
    assert first.errors == []
    assert 45 <= first.inserted <= 60 and first.updated == 0
    again = await imp.import_file(core, DEMO)
    assert (again.inserted, again.updated, again.errors) == (0, first.inserted, [])
    assert await repo.count(db) == first.inserted
    stations = await repo.all_stations(db)
    assert all(s.demo and s.name.startswith("【演示】") for s in stations)
    assert {s.area for s in stations} >= {"蒋村街道", "古荡街道", "文新街道", "三墩镇"}
    # stored in WGS-84: Hangzhou's GCJ-02 offset is a few hundred metres
    line = first_demo_row()
    s = next(s for s in stations if s.external_id == line[0])
    assert 200 < haversine_m(float(line[3]), float(line[4]), s.lat, s.lon) < 700
    assert wgs84_to_gcj02(s.lat, s.lon) == pytest.approx((float(line[3]), float(line[4])), abs=1e-7)


async def test_gcj02_and_bd09_rows_and_default_crs(core, db, tmp_path):
    wgs = LatLon(30.2741, 120.1551)
    glat, glon = wgs84_to_gcj02(wgs.lat, wgs.lon)
    blat, blon = wgs84_to_bd09(wgs.lat, wgs.lon)
    path = tmp_path / "crs.csv"
    path.write_text(
        "name,lat,lon,crs\n"
        f"A,{glat:.8f},{glon:.8f},gcj02\n"
        f"B,{blat:.8f},{blon:.8f},BD-09\n"
        f"C,{wgs.lat},{wgs.lon},wgs84\n"
        f"D,{glat:.8f},{glon:.8f},\n",
        encoding="utf-8",
    )
    result = await imp.import_file(core, path, crs="gcj02")
    assert result.errors == [] and result.inserted == 4
    for s in await repo.all_stations(db):
        # Baidu's published closed-form inverse is good to ~0.1 m; GCJ-02 is inverted exactly.
        assert haversine_m(s.lat, s.lon, wgs.lat, wgs.lon) < (1.0 if s.name == "B" else 0.01), s.name


async def test_gbk_and_bom_files(core, db, tmp_path):
    body = "名称,纬度,经度,设施,类型\n蒋村暖蜂驿站,30.28,120.08,饮水；充电；微波炉,驿站\n"
    (tmp_path / "gbk.csv").write_bytes(body.encode("gbk"))
    (tmp_path / "bom.csv").write_bytes(body.replace("蒋村", "古荡").encode("utf-8-sig"))
    assert (await imp.import_file(core, tmp_path / "gbk.csv")).inserted == 1
    assert (await imp.import_file(core, tmp_path / "bom.csv")).inserted == 1
    names = sorted(s.name for s in await repo.all_stations(db))
    assert names == ["古荡暖蜂驿站", "蒋村暖蜂驿站"]
    s = (await repo.search_text(db, "蒋村"))[0]
    assert s.facilities == ("drinking_water", "phone_charging", "microwave")


async def test_every_bad_row_kind_is_reported_with_its_line(core, db, tmp_path):
    rows = [
        "ok-1,好驿站,station,30.28,120.08,,,24/7,饮水,,",  # line 2
        "bad-1,,station,30.28,120.08,,,,,,",  # 3 missing name
        "bad-2,坏纬度,station,abc,120.08,,,,,,",  # 4 not a number
        "bad-3,超范围,station,95.5,200.1,,,,,,",  # 5 out of range
        "bad-4,颠倒,station,120.08,30.28,,,,,,",  # 6 swapped
        "bad-5,坏设施,station,30.28,120.08,,,,饮水;游泳池,,",  # 7 unknown facility
        "bad-6,坏时间,station,30.28,120.08,,,Mo-Fr 9-21,,,",  # 8 bad hours
        "bad-7,坏类型,spaceport,30.28,120.08,,,,,,",  # 9 bad kind
        "bad-8,坏坐标系,station,30.28,120.08,utm,,,,,",  # 10 bad crs
        "ok-1,重复,station,30.29,120.09,,,,,,",  # 11 duplicate id
        "ok-2,另一个好驿站,water_point,30.29,120.09,,,,,,",  # 12
        "bad-9,缺经度,station,30.28,,,,,,,",  # 13 missing lon
    ]
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    result = await imp.import_file(core, path)
    assert result.inserted == 2
    got = {e.line: e.reason for e in result.errors}
    assert sorted(got) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13]
    assert "missing name" in got[3]
    assert "not a number" in got[4]
    assert "out of range" in got[5]
    assert "swapped" in got[6]
    assert "unknown facility 游泳池" in got[7]
    assert "bad opening hours" in got[8] and "time range" in got[8]
    assert "unknown kind" in got[9]
    assert "unknown crs" in got[10]
    assert "duplicate external_id" in got[11] and "line 2" in got[11]
    assert "missing lon" in got[13]
    assert "line 6: " in result.summary()
    water = await repo.get_by_external_id(db, "ok-2")
    assert water is not None and water.facilities == ("drinking_water",)  # implied by the kind


async def test_missing_required_column_fails_the_file(core, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,lat\nA,30\n", encoding="utf-8")
    with pytest.raises(imp.StationImportError, match="missing column"):
        await imp.import_file(core, path)


async def test_reimport_updates_by_external_id_and_derives_stable_ids(core, db, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        "external_id,name,lat,lon\nx1,旧名,30.28,120.08\n,无编号驿站,30.29,120.09\n", encoding="utf-8"
    )
    assert (await imp.import_file(core, path)).inserted == 2
    path.write_text(
        "external_id,name,lat,lon\nx1,新名,30.281,120.081\n,无编号驿站,30.29,120.09\n", encoding="utf-8"
    )
    again = await imp.import_file(core, path)
    assert (again.inserted, again.updated) == (0, 2)
    assert (await repo.get_by_external_id(db, "x1")).name == "新名"
    assert await repo.count(db) == 2


async def test_import_keeps_a_deactivated_station_inactive(core, db, tmp_path, service):
    path = tmp_path / "a.csv"
    path.write_text("external_id,name,lat,lon\nx1,驿站,30.28,120.08\n", encoding="utf-8")
    await imp.import_file(core, path)
    s = await repo.get_by_external_id(db, "x1")
    assert await service.deactivate(s.id)
    await imp.import_file(core, path)
    assert not (await repo.get(db, s.id)).active


async def test_geojson(core, db, tmp_path):
    glat, glon = wgs84_to_gcj02(30.28, 120.08)
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "g1",
                "geometry": {"type": "Point", "coordinates": [glon, glat]},
                "properties": {"name": "GeoJSON 驿站", "facilities": ["饮水", "toilet"], "crs": "gcj02"},
            },
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}, "properties": {}},
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [120.1, 30.3]},
                "properties": {"name": "坏时间", "opening_hours": "never"},
            },
        ],
    }
    path = tmp_path / "s.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    result = await imp.import_file(core, path)
    assert result.inserted == 1
    assert [(e.unit, e.line) for e in result.errors] == [("feature", 2), ("feature", 3)]
    s = await repo.get_by_external_id(db, "g1")
    assert haversine_m(s.lat, s.lon, 30.28, 120.08) < 0.05
    assert s.facilities == ("drinking_water", "toilet")


async def test_export_round_trip(core, db, tmp_path):
    await imp.import_file(core, DEMO)
    out = tmp_path / "out.csv"
    count = await imp.export_csv(db, out)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").splitlines()[0] == ",".join(imp.COLUMNS)
    stream = io.StringIO()
    assert await imp.export_csv(db, stream) == count
    other = await make_database(tmp_path / "other.sqlite3").open()
    await other.migrate()
    try:
        result = await imp.import_file(make_core(other), out)
        assert result.errors == [] and result.inserted == count
        a = {s.external_id: s for s in await repo.all_stations(db)}
        b = {s.external_id: s for s in await repo.all_stations(other)}
        assert a.keys() == b.keys()
        for key, s in a.items():
            t = b[key]
            assert haversine_m(s.lat, s.lon, t.lat, t.lon) < 0.02
            assert (s.name, s.kind, s.address, s.opening_hours, s.facilities, s.phone, s.area, s.demo) == (
                t.name,
                t.kind,
                t.address,
                t.opening_hours,
                t.facilities,
                t.phone,
                t.area,
                t.demo,
            )
    finally:
        await other.close()


async def test_export_keeps_demo_and_active_without_reactivating(core, db, tmp_path, service):
    src = tmp_path / "in.csv"
    src.write_text(
        "external_id,name,lat,lon,demo\nd1,普通名字的演示站,30.27,120.15,1\nr1,真实驿站,30.28,120.16,\n"
        "x1,停用的驿站,30.29,120.17,0\n",
        encoding="utf-8",
    )
    await imp.import_file(core, src)
    x1 = await repo.get_by_external_id(db, "x1")
    await service.deactivate(x1.id)
    out = tmp_path / "out.csv"
    assert await imp.export_csv(db, out) == 2  # active stations only by default
    assert await imp.export_csv(db, out, include_inactive=True) == 3
    rows = {r.split(",")[0]: r for r in out.read_text(encoding="utf-8-sig").splitlines()[1:]}
    assert rows["d1"].endswith(",1,1") and rows["r1"].endswith(",0,1") and rows["x1"].endswith(",0,0")

    other = await make_database(tmp_path / "other.sqlite3").open()
    await other.migrate()
    try:
        result = await imp.import_file(make_core(other), out)
        assert result.errors == [] and result.inserted == 3
        got = {
            s.external_id: (s.demo, s.active) for s in await repo.all_stations(other, include_inactive=True)
        }
        assert got == {"d1": (True, True), "r1": (False, True), "x1": (False, False)}
    finally:
        await other.close()

    # Re-importing an older file never flips what moderators decided, either way.
    await service.activate(x1.id)
    r1 = await repo.get_by_external_id(db, "r1")
    await service.deactivate(r1.id)
    await imp.import_file(core, out)
    assert (await repo.get(db, x1.id)).active and not (await repo.get(db, r1.id)).active
    src.write_text("external_id,name,lat,lon,active\nb1,坏值,30.27,120.15,maybe\n", encoding="utf-8")
    assert [e.line for e in (await imp.import_file(core, src)).errors] == [2]


def test_unreadable_files_are_station_import_errors():
    with pytest.raises(imp.StationImportError, match="UTF-16"):
        imp._decode(b"\xff\xfen\x00a\x00m")
    with pytest.raises(imp.StationImportError, match="line 3: unreadable CSV: a cell is longer than 128 KB"):
        list(imp.read_csv("name,lat,lon\nA,1,2\nB," + "x" * 200_000 + ",1\n"))


# -- nearest ----------------------------------------------------------------------------------


async def test_nearest_orders_by_distance_and_matches_geopy(service, db):
    rng = random.Random(7)
    points = {}
    for i in range(300):
        p = offset_point(HERE, rng.uniform(5, 6000), rng.uniform(0, 360))
        points[f"s{i}"] = p
        await add_at(service, f"s{i}", p, facilities="饮水")
    found = await service.nearest(HERE.lat, HERE.lon, limit=10)
    truth = sorted(
        (geodesic((HERE.lat, HERE.lon), (p.lat, p.lon)).meters, name)
        for name, p in points.items()
        if haversine_m(HERE.lat, HERE.lon, p.lat, p.lon) <= 3000
    )
    assert [f.station.name for f in found] == [name for _, name in truth[:10]]
    for f, (metres, _) in zip(found, truth, strict=False):
        assert f.distance_m == pytest.approx(metres, abs=1e-6)
        assert f.riding_minutes == max(1, math.ceil(metres / 250.0))
    everything = await service.nearest(HERE.lat, HERE.lon, limit=1000)
    assert len(everything) == len(truth)
    assert all(f.distance_m <= 3000 * 1.005 for f in everything)


async def test_direction_and_card(service, core):
    await add_at(
        service,
        "东北驿站",
        offset_point(HERE, 400, 45),
        opening_hours="Mo-Su 09:00-21:00",
        facilities="饮水;厕所",
        address="文三路 1 号",
    )
    (found,) = await service.nearest(HERE.lat, HERE.lon)
    assert found.compass == "northeast"
    assert found.riding_minutes == 2
    zh = render_card(core.catalog, "zh", found, 1)
    assert "1. 🏠 东北驿站" in zh
    assert "东北方向 400 米 · 骑行约 2 分钟" in zh
    assert "营业中 · 21:00 关门" in zh and "💧🚻" in zh and "地址：文三路 1 号" in zh
    en = render_card(core.catalog, "en", found, 1)
    assert "400 m northeast · about 2 min by e-bike" in en and "closes 21:00" in en
    details = render_details(core.catalog, "zh", found)
    assert "设施：💧饮水、🚻厕所" in details and "类型：暖蜂驿站" in details


def test_formatting():
    catalog = Catalog.load()
    assert format_distance(catalog, "zh", 396) == "400 米"
    assert format_distance(catalog, "zh", 3) == "10 米"
    assert format_distance(catalog, "zh", 1234) == "1.2 公里"
    assert format_distance(catalog, "en", 12_345) == "12 km"
    from bot.kit.opening_hours import parse_opening_hours

    tz = dt.timezone(dt.timedelta(hours=8))
    now = dt.datetime(2026, 11, 25, 22, 0, tzinfo=tz)  # Wednesday
    hours = parse_opening_hours("Mo-Fr 09:00-21:00")
    assert format_status(catalog, "zh", hours.status(now), now) == "🔴 已打烊 · 明天 09:00 开门"
    fri = dt.datetime(2026, 11, 27, 22, 0, tzinfo=tz)
    assert format_status(catalog, "zh", hours.status(fri), fri) == "🔴 已打烊 · 周一 09:00 开门"
    assert format_status(catalog, "en", hours.status(fri), fri) == "🔴 Closed · opens Mon 09:00"
    assert format_status(catalog, "zh", parse_opening_hours("24/7").status(now), now) == "🟢 24 小时营业"
    assert format_status(catalog, "zh", None, now) == "⚪ 营业时间未知"
    assert format_status(catalog, "zh", parse_opening_hours("off").status(now), now) == "🔴 暂停营业"


async def test_open_status_uses_configured_timezone(service, core):
    # 02:00 UTC is 10:00 in Shanghai: open
    await add_at(service, "早十点开", offset_point(HERE, 100, 0), opening_hours="Mo-Su 10:00-11:00")
    (found,) = await service.nearest(HERE.lat, HERE.lon)
    assert found.status.is_open
    core.clock.advance(hours=1)
    (found,) = await service.nearest(HERE.lat, HERE.lon)
    assert not found.status.is_open
    assert found.status.changes_at.hour == 10 and found.status.changes_at.day == 26


async def test_filters(service):
    await add_at(service, "water", offset_point(HERE, 100, 0), facilities="饮水")
    await add_at(service, "hot", offset_point(HERE, 200, 0), facilities="热水;厕所")
    await add_at(service, "charge", offset_point(HERE, 300, 0), facilities="电动车充电;厕所")
    await add_at(service, "cabinet", offset_point(HERE, 400, 0), kind="换电柜")
    await add_at(service, "meal", offset_point(HERE, 500, 0), facilities="微波炉;手机充电")

    async def names(*filters):
        return [f.station.name for f in await service.nearest(HERE.lat, HERE.lon, limit=10, filters=filters)]

    assert await names() == ["water", "hot", "charge", "cabinet", "meal"]
    assert await names("water") == ["water", "hot"]
    assert await names("charge") == ["charge", "meal"]
    assert await names("swap") == ["cabinet"]
    assert await names("meal") == ["meal"]
    assert await names("toilet") == ["hot", "charge"]
    assert await names("toilet", "charge") == ["charge"]


async def test_paging(service):
    for i in range(7):
        await add_at(service, f"p{i}", offset_point(HERE, 100 + i * 100, 90))
    page0 = await service.nearest_page(HERE.lat, HERE.lon, page=0)
    page1 = await service.nearest_page(HERE.lat, HERE.lon, page=1)
    page2 = await service.nearest_page(HERE.lat, HERE.lon, page=2)
    assert [f.station.name for f in page0.items] == ["p0", "p1", "p2"] and page0.has_more
    assert [f.station.name for f in page1.items] == ["p3", "p4", "p5"] and page1.has_more
    assert [f.station.name for f in page2.items] == ["p6"] and not page2.has_more


async def test_empty_area_and_nearest_any(service):
    assert await service.nearest_any(HERE.lat, HERE.lon) is None
    far = offset_point(HERE, 55_000, 200)
    await add_at(service, "far", far)
    await add_at(service, "farther", offset_point(HERE, 300_000, 10), facilities="厕所")
    assert await service.nearest(HERE.lat, HERE.lon) == []
    wide = await service.nearest(HERE.lat, HERE.lon, radius_m=60_000)
    assert [f.station.name for f in wide] == ["far"]
    anyway = await service.nearest_any(HERE.lat, HERE.lon)
    assert anyway.station.name == "far"
    assert anyway.distance_m == pytest.approx(55_000, rel=1e-6)
    # 300 km is beyond the 100 km cap (30 km with filters): not found, though stations exist.
    assert await service.nearest_any(HERE.lat, HERE.lon, filters=["toilet"]) is None
    assert await service.nearest_any(HERE.lat, HERE.lon, filters=["swap"]) is None
    await add_at(service, "toilet", offset_point(HERE, 25_000, 90), facilities="厕所")
    assert (await service.nearest_any(HERE.lat, HERE.lon, filters=["toilet"])).station.name == "toilet"
    north = offset_point(HERE, 210_000, 10)  # "farther" is 90 km on
    assert (await service.nearest_any(north.lat, north.lon)).station.name == "farther"
    assert await service.nearest_any(39.9, 116.4) is None  # Beijing: nothing within 100 km
    assert await service.has_stations()


async def test_nearest_any_is_capped_and_reads_each_ring_once(service, db):
    """The answer equals a brute-force scan within the cap; no box is read twice (the ring query)."""
    rng = random.Random(11)
    for i in range(300):
        await add_at(
            service,
            f"r{i}",
            offset_point(HERE, rng.uniform(0, 140_000), rng.uniform(0, 360)),
            facilities=rng.choice(["", "厕所", "饮水"]),
        )
    stations = await repo.all_stations(db)
    for _ in range(40):
        q = offset_point(HERE, rng.uniform(0, 160_000), rng.uniform(0, 360))
        for filters, cap, ok in (
            ([], 100_000, lambda s: True),
            (["toilet"], 30_000, lambda s: "toilet" in s.facilities),
        ):
            within = [
                (haversine_m(q.lat, q.lon, s.lat, s.lon), s.id)
                for s in stations
                if ok(s) and haversine_m(q.lat, q.lon, s.lat, s.lon) <= cap
            ]
            found = await service.nearest_any(q.lat, q.lon, filters=filters)
            if not within:
                assert found is None
            else:
                assert found is not None and found.station.id == min(within)[1]

    calls = []
    real = repo.candidates

    async def spy(*args, **kwargs):
        calls.append(kwargs)
        return await real(*args, **kwargs)

    repo.candidates = spy
    try:
        assert await service.nearest_any(39.9, 116.4) is None
    finally:
        repo.candidates = real
    assert calls[0]["exclude"] is None
    for before, after in itertools.pairwise(calls):
        assert after["exclude"] == before["box"]  # each step reads only the ring around the last box
    assert calls[-1]["box"][1] - 39.9 == pytest.approx(100_000 * 1.005 / 6_371_008.8 * 180 / math.pi)


async def test_dense_area_needs_only_the_small_box(service, db):
    rng = random.Random(3)
    for i in range(400):
        await add_at(service, f"d{i}", offset_point(HERE, rng.uniform(0, 800), rng.uniform(0, 360)))
    found = await service.nearest(HERE.lat, HERE.lon, limit=5)
    all_ = await repo.all_stations(db)
    truth = sorted(all_, key=lambda s: haversine_m(HERE.lat, HERE.lon, s.lat, s.lon))[:5]
    assert [f.station.id for f in found] == [s.id for s in truth]


async def test_search_edit_deactivate(service, core):
    a = await add_at(service, "文三路驿站", offset_point(HERE, 100, 0), address="西湖区文三路 90 号")
    await add_at(service, "古荡驿站", offset_point(HERE, 200, 0), address="古墩路 1 号", area="古荡街道")
    await add_at(service, "100%_驿站", offset_point(HERE, 300, 0))
    assert [f.station.name for f in await service.search("文三路")] == ["文三路驿站"]
    assert [f.station.name for f in await service.search("古荡街道")] == ["古荡驿站"]
    assert [f.station.name for f in await service.search("%_")] == ["100%_驿站"]
    assert await service.search("  ") == []
    text = render_card(core.catalog, "zh", (await service.search("文三路"))[0], 1)
    assert "方向" not in text and "文三路驿站" in text

    edited = await service.edit(a.id, opening_hours="24/7", facilities="饮水;厕所", name="文三路暖蜂驿站")
    assert edited.name == "文三路暖蜂驿站" and edited.facilities == ("drinking_water", "toilet")
    assert [f.station.name for f in await service.nearest(HERE.lat, HERE.lon, filters=["toilet"])] == [
        "文三路暖蜂驿站"
    ]
    with pytest.raises(StationInputError) as err:
        await service.edit(a.id, opening_hours="sometimes")
    assert err.value.field == "opening_hours"
    with pytest.raises(StationInputError):
        await service.edit(a.id, name=" ")
    moved = offset_point(HERE, 2500, 180)
    await service.edit(a.id, lat=moved.lat, lon=moved.lon)
    assert (await service.nearest(HERE.lat, HERE.lon, limit=10))[-1].station.id == a.id

    assert await service.deactivate(a.id)
    assert not await service.deactivate(a.id)
    assert a.id not in [f.station.id for f in await service.nearest(HERE.lat, HERE.lon, limit=10)]
    assert await service.search("文三路") == []
    assert await service.activate(a.id)
    assert a.id in [f.station.id for f in await service.nearest(HERE.lat, HERE.lon, limit=10)]
    assert await service.edit(99999, name="x") is None


async def test_flag_reaches_the_moderator_chat(service, core, db):
    s = await add_at(service, "文三路驿站", offset_point(HERE, 100, 0), address="文三路 90 号")
    j = await add_at(service, "蒋村驿站", offset_point(HERE, 200, 0), area="蒋村街道")
    result = await service.flag(s.id, 42, "closed", "门锁着")
    assert not result.duplicate and result.notified_chat == -100500
    row = await outbox.get_by_key(db, f"stflag:{result.flag_id}")
    assert row.chat_id == -100500 and row.state == "pending" and row.priority == 0
    assert row.payload["method"] == "sendMessage"
    text = row.payload["params"]["text"]
    assert "文三路驿站" in text and "关门了" in text and "门锁着" in text and "42" in text
    # the same courier again the same day: recorded once, not sent twice
    again = await service.flag(s.id, 42, "closed")
    assert again.duplicate and again.flag_id == result.flag_id
    assert len(await repo.flags_for(db, s.id)) == 1
    # the area's own moderator chat wins
    area = await service.flag(j.id, 42, "broken")
    assert area.notified_chat == -100777
    assert (await outbox.get_by_key(db, f"stflag:{area.flag_id}")).chat_id == -100777
    assert await service.flag(99999, 42, "closed") is None
    with pytest.raises(ValueError):
        await service.flag(s.id, 42, "ugly")


async def test_flag_without_moderator_chat_is_recorded_only(db):
    service = StationService(make_core(db))
    s = await service.add(name="驿站", lat=30.28, lon=120.08)
    result = await service.flag(s.id, 1, "moved")
    assert result.notified_chat is None
    assert await db.fetchval("SELECT COUNT(*) FROM outbox") == 0
    assert len(await repo.flags_for(db, s.id)) == 1


async def test_export_escapes_formulas_and_imports_them_back(core, db, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        "external_id,name,lat,lon,address,phone\n"
        'f1,"=HYPERLINK(""http://evil"",""点我"")",30.27,120.15,@SUM(1+1),+86 571 8888 0001\n'
        "f2,-减价驿站,30.28,120.16,=1+1,-\n",
        encoding="utf-8",
    )
    result = await imp.import_file(core, src)
    assert result.errors == [] and result.inserted == 2
    out = tmp_path / "out.csv"
    await imp.export_csv(db, out)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and c != "-")], cells
    assert {r["name"] for r in rows} == {'\'=HYPERLINK("http://evil","点我")', "'-减价驿站"}
    other = await make_database(tmp_path / "other.sqlite3").open()
    await other.migrate()
    try:
        assert (await imp.import_file(make_core(other), out)).errors == []
        before = {(s.name, s.address, s.phone) for s in await repo.all_stations(db)}
        after = {(s.name, s.address, s.phone) for s in await repo.all_stations(other)}
        assert after == before  # round trip: what was typed comes back
        assert ('=HYPERLINK("http://evil","点我")', "@SUM(1+1)", "+86 571 8888 0001") in after
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("field", "limit"), [("name", 60), ("address", 200), ("opening_hours", 200), ("phone", 40), ("area", 30)]
)
def test_station_fields_have_a_length_budget(field, limit):
    values = {"name": "驿站", "lat": 30.27, "lon": 120.15}
    values[field] = "24/7" if field == "opening_hours" else "长"
    validate_fields(**values)
    values[field] = "长" * (limit + 1)
    with pytest.raises(StationInputError) as err:
        validate_fields(**values)
    assert err.value.field == field and err.value.values == (str(limit),)


async def test_a_big_import_holds_the_writer_in_short_batches(core, db, tmp_path, monkeypatch):
    rows = "\n".join(f"b{i},驿站{i},{30 + i * 1e-4:.6f},120.15" for i in range(450))
    src = tmp_path / "big.csv"
    src.write_text("external_id,name,lat,lon\n" + rows + "\n", encoding="utf-8")
    sizes: list[int] = []
    real = repo.upsert
    in_tx = {"n": 0}

    async def counting(tx, data, now):
        in_tx["n"] += 1
        return await real(tx, data, now)

    real_tx = db.transaction

    def transaction():
        manager = real_tx()

        class Wrapped:
            async def __aenter__(self):
                in_tx["n"] = 0
                return await manager.__aenter__()

            async def __aexit__(self, *exc):
                sizes.append(in_tx["n"])
                return await manager.__aexit__(*exc)

        return Wrapped()

    monkeypatch.setattr(repo, "upsert", counting)
    monkeypatch.setattr(db, "transaction", transaction)
    result = await imp.import_file(core, src)
    assert result.inserted == 450 and result.errors == []
    assert sizes == [200, 200, 50]  # never the whole file in one transaction
