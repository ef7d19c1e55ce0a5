"""Warm stations after a first week in the field (issue 14, items 5, 6, 10, 17): open stations ranked
first within a detour and the open-now filter (against a brute-force ranking), the words couriers
type, weekly hours and station numbers in details, natural opening hours, and flags that moderators
mark handled (migration 0013)."""

import datetime as dt
import random

import pytest
from geopy.distance import geodesic

from bot.core.clock import FakeClock
from bot.core.config import Config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.geo import LatLon, haversine_m
from bot.kit.opening_hours import parse_opening_hours
from bot.stations import intents
from bot.stations.service import (
    OPEN_DETOUR_M,
    StationService,
    format_week,
    rank_metres,
    render_card,
    render_details,
)
from storage import db as db_module
from storage import outbox
from storage import stations as repo
from storage.db import Database
from tests.dbs import make_database

# 2026-11-25 02:10 Asia/Shanghai, a Wednesday night (18:10 UTC the day before)
NIGHT = dt.datetime(2026, 11, 24, 18, 10, tzinfo=dt.UTC)
HERE = LatLon(30.2741, 120.1551)
HOURS = ("24/7", "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00", "08:00-22:00", "Mo-Su 18:00-02:00", "", "off")


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "t.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def core(db):
    config = Config().with_overrides(bot={"moderator_chat_id": -100500})
    return Core(config=config, clock=FakeClock(NIGHT), db=db, catalog=Catalog.load())


@pytest.fixture
def service(core):
    return StationService(core)


def offset_point(origin: LatLon, metres: float, bearing_deg: float) -> LatLon:
    p = geodesic(meters=metres).destination((origin.lat, origin.lon), bearing_deg)
    return LatLon(p.latitude, p.longitude)


async def add_at(service, name, metres, bearing=0.0, **kw):
    p = offset_point(HERE, metres, bearing)
    return await service.add(name=name, lat=p.lat, lon=p.lon, external_id=name, **kw)


# -- item 5: open stations first -----------------------------------------------------------------


def test_rank_metres_is_the_chosen_detour():
    assert rank_metres(500, closed=False) == 500
    assert rank_metres(400, closed=True) == 400 + OPEN_DETOUR_M  # +800 m beats 1.5x nearby
    assert rank_metres(3000, closed=True) == 4500  # 1.5x beats +800 m farther out


async def test_at_night_an_open_station_comes_before_nearer_closed_ones(service):
    await add_at(service, "closed 300", 300, opening_hours="Mo-Fr 09:00-21:00")
    await add_at(service, "closed 600", 600, 90, opening_hours="08:00-22:00")
    await add_at(service, "24h 900", 900, 180, opening_hours="24/7")
    await add_at(service, "24h 2000", 2000, 270, opening_hours="24/7")
    await add_at(service, "unknown 700", 700, 45)

    async def names(**kw):
        return [f.station.name for f in await service.nearest(HERE.lat, HERE.lon, limit=10, **kw)]

    # 900 m is within 300 + 800 m; 2000 m is not within 600 + 800 m; unknown hours rank as open
    assert await names() == ["unknown 700", "24h 900", "closed 300", "closed 600", "24h 2000"]
    assert await names(open_first=False) == ["closed 300", "closed 600", "unknown 700", "24h 900", "24h 2000"]
    assert await names(filters=["open"]) == ["24h 900", "24h 2000"]  # known hours, open now
    page = await service.nearest_page(HERE.lat, HERE.lon)
    assert [f.station.name for f in page.items] == ["unknown 700", "24h 900", "closed 300"]
    assert page.passed_closed  # "closed 300" and "closed 600" are nearer than 900 m, ranked after
    page = await service.nearest_page(HERE.lat, HERE.lon, page=1)
    assert [f.station.name for f in page.items] == ["closed 600", "24h 2000"]
    assert page.passed_closed is False
    # At 10:00 the same morning everything with hours is open: nearest first again.
    service.core.clock.advance(hours=8)
    assert await names() == ["closed 300", "closed 600", "unknown 700", "24h 900", "24h 2000"]


async def test_page_says_when_a_nearer_closed_station_was_passed_over(service):
    await add_at(service, "closed 200", 200, opening_hours="Mo-Fr 09:00-21:00")
    for i in range(3):
        await add_at(service, f"open {i}", 500 + 100 * i, 90, opening_hours="24/7")
    page = await service.nearest_page(HERE.lat, HERE.lon)
    assert [f.station.name for f in page.items] == ["open 0", "open 1", "open 2"]
    assert page.passed_closed and page.has_more


def brute(stations, q, now_local, *, radius, open_only=False, open_first=True):
    out = []
    for s in stations:
        d = haversine_m(q.lat, q.lon, s.lat, s.lon)
        if d > radius:
            continue
        status = parse_opening_hours(s.opening_hours).status(now_local) if s.opening_hours else None
        if open_only and not (status is not None and status.is_open):
            continue
        closed = status is not None and not status.is_open
        out.append((rank_metres(d, closed=closed) if open_first else d, d, s.id))
    return [i for _, _, i in sorted(out)]


async def test_ranking_equals_a_brute_force_ranking_at_any_hour(service, db, core):
    """Pages of ``nearest`` and ``nearest_any`` equal a full scan ranked the same way, for random
    stations and hours, at night and by day, with and without the open-now filter."""
    rng = random.Random(5)
    for i in range(400):
        hours = rng.choice(HOURS)
        await add_at(service, f"s{i}", rng.uniform(0, 9000), rng.uniform(0, 360), opening_hours=hours)
    stations = await repo.all_stations(db)
    for hours in (0, 8, 14):  # 02:10, 10:10, 16:10
        core.clock.set(NIGHT + dt.timedelta(hours=hours))
        now_local = core.clock.now().astimezone(core.tz)
        for _ in range(12):
            q = offset_point(HERE, rng.uniform(0, 6000), rng.uniform(0, 360))
            for open_only in (False, True):
                filters = ["open"] if open_only else []
                truth = brute(stations, q, now_local, radius=3000, open_only=open_only)
                got = []
                for page in range(4):
                    found = await service.nearest(q.lat, q.lon, limit=3, offset=3 * page, filters=filters)
                    got += [f.station.id for f in found]
                assert got == truth[:12], (hours, q, open_only)
                anyway = await service.nearest_any(q.lat, q.lon, filters=filters)
                cap = service.any_radius_m(filters)
                best = brute(stations, q, now_local, radius=cap, open_only=open_only)
                assert (anyway.station.id if anyway else None) == (best[0] if best else None)


async def test_nearest_anyway_prefers_an_open_one_within_the_detour(service):
    await add_at(service, "closed 5 km", 5000, opening_hours="Mo-Fr 09:00-21:00")
    found = await service.nearest_any(HERE.lat, HERE.lon)
    assert found.station.name == "closed 5 km" and not found.status.is_open
    assert found.status.changes_at.hour == 9  # opens this morning at 09:00
    await add_at(service, "open 12 km", 12_000, 90, opening_hours="24/7")
    assert (await service.nearest_any(HERE.lat, HERE.lon)).station.name == "closed 5 km"  # 7.5 km < 12
    await add_at(service, "open 7 km", 7000, 180, opening_hours="24/7")
    assert (await service.nearest_any(HERE.lat, HERE.lon)).station.name == "open 7 km"
    assert (await service.nearest_any(HERE.lat, HERE.lon, filters=["open"])).station.name == "open 7 km"
    assert (await service.nearest_any(HERE.lat, HERE.lon, open_first=False)).station.name == "closed 5 km"


# -- item 6: words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "filters"),
    [
        ("厕所", "filter", ("toilet",)),
        ("充电", "filter", ("charge",)),
        ("热饭", "filter", ("meal",)),
        ("饮水", "filter", ("water",)),
        ("换电", "filter", ("swap",)),
        ("toilet", "filter", ("toilet",)),
        ("Charging", "filter", ("charge",)),
        ("charge", "filter", ("charge",)),
        ("microwave", "filter", ("meal",)),
        ("heat food", "filter", ("meal",)),
        ("water", "filter", ("water",)),
        ("battery swap", "filter", ("swap",)),
        ("找厕所", "filter", ("toilet",)),
        ("附近哪里有厕所？", "filter", ("toilet",)),
        ("厕所在哪", "filter", ("toilet",)),
        ("卫生间", "filter", ("toilet",)),
        ("能充电吗", "filter", ("charge",)),
        ("where is a toilet?", "filter", ("toilet",)),
        ("厕所 充电", "filter", ("toilet", "charge")),
        ("饮水和热饭", "filter", ("water", "meal")),
        ("附近", "nearby", ()),
        ("nearby", "nearby", ()),
        ("附近驿站", "nearby", ()),
        ("你好", "hello", ()),
        ("Hello!", "hello", ()),
    ],
)
def test_words_couriers_type(text, kind, filters):
    assert intents.read(text) == intents.Intent(kind, filters)


@pytest.mark.parametrize("text", ["文三路", "西溪厕所", "厕所和文三路", "文三路驿站", "store", "", "厕" * 50])
def test_names_and_addresses_are_no_words(text):
    assert intents.read(text) is None


# -- item 10: details ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "zh", "en"),
    [
        (
            "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00",
            "周一至周五 09:00–21:00，周六、周日 10:00–18:00",
            "Mon–Fri 09:00–21:00; Sat, Sun 10:00–18:00",
        ),
        ("24/7", "24 小时营业", "open 24 hours"),
        (
            "Mo-Fr 08:30-17:30; PH off",
            "周一至周五 08:30–17:30，周六、周日休息，节假日休息",
            "Mon–Fri 08:30–17:30; Sat, Sun closed; Public holidays closed",
        ),
        ("Mo-Su 18:00-02:00", "每天 18:00–次日02:00", "Daily 18:00–02:00 next day"),
        (
            "Mo-Su 10:30-14:00,16:30-02:00",
            "每天 10:30–14:00、16:30–次日02:00",
            "Daily 10:30–14:00, 16:30–02:00 next day",
        ),
        ("Mo,We,Fr 10:00-12:00", "周一、周三、周五 10:00–12:00，周二、周四、周六、周日休息", None),
        ("Mo-Sa 09:00-20:00; Su off", "周一至周六 09:00–20:00，周日休息", "Mon–Sat 09:00–20:00; Sun closed"),
        ("周一到周五早上7点到晚上10点", "周一至周五 07:00–22:00，周六、周日休息", None),
        ("Mo-Su 09:00-18:00; PH 10:00-16:00", "每天 09:00–18:00，节假日 10:00–16:00", None),
        ("off", "暂停营业", "closed until further notice"),
        ("每天看心情", "每天看心情", "每天看心情"),  # an old unreadable value: as written
        ("", "", ""),
    ],
)
def test_weekly_hours_read_like_a_sign(hours, zh, en):
    catalog = Catalog.load()
    assert format_week(catalog, "zh", hours) == zh
    if en is not None:
        assert format_week(catalog, "en", hours) == en


async def test_cards_and_details_show_number_hours_and_update(service, core):
    s = await add_at(service, "北边驿站", 400, opening_hours="Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00")
    (found,) = await service.nearest(HERE.lat, HERE.lon)
    card = render_card(core.catalog, "zh", found, 1)
    assert card.splitlines()[0] == f"1. 🏠 北边驿站 · 编号 {s.id}"
    assert f"No. {s.id}" in render_card(core.catalog, "en", found, 1)
    details = render_details(core.catalog, "zh", found)
    assert "营业时间：周一至周五 09:00–21:00，周六、周日 10:00–18:00" in details
    assert "信息更新于 11月25日" in details  # 18:10 UTC on the 24th is the 25th in Shanghai
    en = render_details(core.catalog, "en", found)
    assert "Hours: Mon–Fri 09:00–21:00; Sat, Sun 10:00–18:00" in en and "Information updated 25 Nov" in en
    core.clock.advance(days=400)
    later = await service.describe(s.id)
    assert "信息更新于 2026年11月25日" in render_details(core.catalog, "zh", later)


# -- item 17: flags handled -----------------------------------------------------------------------


async def test_flag_notice_has_buttons_and_a_flag_is_handled_once(service, core, db):
    s = await add_at(service, "北边驿站", 400, opening_hours="24/7")
    result = await service.flag(s.id, 42, "closed", "门锁着")
    row = await outbox.get_by_key(db, f"stflag:{result.flag_id}")
    markup = row.payload["params"]["reply_markup"]["inline_keyboard"]
    data = [b["callback_data"] for b in markup[0]]
    assert data == [f"st:fg:d:{result.flag_id}", f"st:fg:h:{result.flag_id}", f"st:fg:x:{result.flag_id}"]
    first = await service.handle_flag(result.flag_id, 7, "handled")
    assert first.changed and not first.deactivated
    assert first.notice.flag.handled_by == 7 and first.notice.flag.handled_action == "handled"
    assert "✅ 7 已处理（今天 02:10）" in first.notice.text  # user 7 unknown: shown by id
    assert [b["callback_data"] for b in first.notice.markup["inline_keyboard"][0]] == [
        f"st:fg:d:{result.flag_id}"
    ]
    second = await service.handle_flag(result.flag_id, 8, "deactivated")
    assert not second.changed and not second.deactivated  # the first decision stands
    assert (await repo.get(db, s.id)).active
    other = await service.flag(s.id, 43, "moved")
    done = await service.handle_flag(other.flag_id, 8, "deactivated")
    assert done.changed and done.deactivated and not (await repo.get(db, s.id)).active
    assert "已停用这个驿站" in done.notice.text
    assert await service.handle_flag(99999, 8, "handled") is None


@pytest.mark.sqlite_only
async def test_migration_0013_keeps_the_flags_already_there(tmp_path, monkeypatch):
    real = db_module.available_migrations
    monkeypatch.setattr(db_module, "available_migrations", lambda: [m for m in real() if m[0] < 13])
    database = await Database(tmp_path / "old.sqlite3").open()
    try:
        await database.migrate()
        await database.execute(
            "INSERT INTO stations(external_id, name, lat, lon, created_at, updated_at)"
            " VALUES ('x', '驿站', 30.27, 120.15, '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z')"
        )
        await database.execute(
            "INSERT INTO station_flags(station_id, user_id, reason, note, created_at)"
            " VALUES (1, 42, 'broken', '坏了', '2026-11-02T00:00:00Z')"
        )
        monkeypatch.setattr(db_module, "available_migrations", real)
        assert (await database.migrate())[0] == "0013_station_flag_handling"
        (flag,) = await repo.flags_for(database, 1)
        assert flag.note == "坏了" and flag.handled_at is None and flag.handled_action == ""
        marked = await repo.mark_flag_handled(database, flag.id, user_id=5, action="handled", now=NIGHT)
        assert marked.handled_by == 5 and marked.handled_at == NIGHT
        assert await repo.mark_flag_handled(database, flag.id, user_id=6, action="handled", now=NIGHT) is None
    finally:
        await database.close()
