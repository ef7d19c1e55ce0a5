"""The moderators' desk: initData sign-in, authorization per role and area on the API, actions through
the report service (audit, cards, the reporter's notice), undo, the station CSV preview, the week's
figures, /desk and the menu button. Against the real bot (Runtime + fake Bot API) and its web server."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import aiohttp
import pytest

from bot.reports.service import ReportService
from bot.stations.service import StationService
from bot.webapp.auth import InitDataError, make_init_data, sign_init_data, verify_init_data
from storage import outbox as outbox_repo
from storage import points as points_repo
from storage import reports as reports_repo
from tests.conftest import ADMIN_ID, MODERATOR_CHAT_ID
from tests.desk_support import desk_overrides, file_report, init_data, url

TOKEN = "123456:ABC-test-token-for-webapp-signing-0000"
NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(hours=24)
MOD_ALL = 6101
MOD_A = 6102
CAPTAIN = 6103
COURIER = 6104
REPORTER = 6105


# -- initData --------------------------------------------------------------------------------------


def _signed(**over):
    return make_init_data(
        TOKEN, {"id": 42, "first_name": "小李", "language_code": "zh"}, auth_date=NOW, **over
    )


def test_valid_init_data_names_the_user():
    user = verify_init_data(_signed(), TOKEN, now=NOW + dt.timedelta(hours=1), max_age=DAY)
    assert (user.id, user.first_name, user.language_code) == (42, "小李", "zh")


def test_init_data_checked_as_telegram_documents_it():
    """The data-check-string is the sorted key=value lines without hash; the key HMAC("WebAppData", token)."""
    import hashlib
    import hmac
    from urllib.parse import parse_qsl

    fields = dict(parse_qsl(_signed()))
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")
    secret = hmac.new(b"WebAppData", TOKEN.encode(), hashlib.sha256).digest()
    assert fields["hash"] == hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("init", "reason"),
    [
        ("", "missing"),
        ("user=%7B%22id%22%3A1%7D&auth_date=1", "missing"),  # no hash at all
        ("hash", "malformed"),
    ],
)
def test_missing_or_malformed_init_data(init, reason):
    with pytest.raises(InitDataError) as err:
        verify_init_data(init, TOKEN, now=NOW, max_age=DAY)
    assert err.value.reason == reason


def test_forged_init_data_is_refused():
    signed = _signed()
    forged = signed.replace("%22id%22%3A42", "%22id%22%3A43")
    assert forged != signed
    with pytest.raises(InitDataError) as err:
        verify_init_data(forged, TOKEN, now=NOW, max_age=DAY)
    assert err.value.reason == "bad_hash"
    with pytest.raises(InitDataError) as err:  # signed with another bot's token
        verify_init_data(signed, TOKEN.replace("ABC", "XYZ"), now=NOW, max_age=DAY)
    assert err.value.reason == "bad_hash"


def test_expired_init_data_is_refused():
    with pytest.raises(InitDataError) as err:
        verify_init_data(_signed(), TOKEN, now=NOW + DAY + dt.timedelta(seconds=1), max_age=DAY)
    assert err.value.reason == "expired"
    with pytest.raises(InitDataError) as err:  # signed an hour in the future
        verify_init_data(_signed(), TOKEN, now=NOW - dt.timedelta(hours=1), max_age=DAY)
    assert err.value.reason == "expired"


def test_init_data_without_a_user_is_refused():
    signed = sign_init_data({"auth_date": str(int(NOW.timestamp())), "query_id": "x"}, TOKEN)
    with pytest.raises(InitDataError) as err:
        verify_init_data(signed, TOKEN, now=NOW, max_age=DAY)
    assert err.value.reason == "no_user"


# -- the API against the running bot ------------------------------------------------------------


@pytest.fixture
def config_overrides():
    return desk_overrides(
        reports={"undo_grace_seconds": 30, "undo_window_minutes": 10},
        bot={"area_moderator_chats": {"文新街道": -1009000000002}},
    )


class Api:
    def __init__(self, bot, session):
        self.bot = bot
        self.session = session

    async def call(self, method, path, user=None, *, signed=None, **kw):
        headers = {}
        if signed is None and user is not None:
            signed = init_data(self.bot, user)
        if signed is not None:
            headers["Authorization"] = f"tma {signed}"
        async with self.session.request(method, url(self.bot) + path, headers=headers, **kw) as r:
            body = await r.read()
            try:
                data = json.loads(body)
            except ValueError:
                data = body
            return r.status, data

    async def get(self, path, user=None, **kw):
        return await self.call("GET", path, user, **kw)

    async def post(self, path, user=None, **kw):
        return await self.call("POST", path, user, **kw)


@pytest.fixture
async def api(bot):
    await bot.grant(MOD_ALL, "moderator")
    await bot.grant(MOD_A, "moderator", area="文新街道")
    await bot.grant(CAPTAIN, "captain", area="文新街道")
    async with aiohttp.ClientSession() as session:
        yield Api(bot, session)


async def test_no_or_forged_or_expired_init_data_gets_401(bot, api):
    assert (await api.get("/api/me"))[0] == 401
    status, body = await api.get("/api/board", signed=init_data(bot, MOD_ALL).replace("hash=", "hash=0"))
    assert status == 401 and body["error"] == "bad_hash"
    status, body = await api.get("/api/board", signed=init_data(bot, MOD_ALL, age=dt.timedelta(hours=25)))
    assert status == 401 and body["error"] == "expired"
    # The page itself is public (it holds no data): only /api/ needs the signature.
    async with api.session.get(url(bot) + "/") as r:
        assert r.status == 200 and "app.js" in await r.text()


async def test_a_courier_gets_403_and_a_captain_no_reports(bot, api):
    status, body = await api.get("/api/me", COURIER)
    assert status == 403 and body["error"] == "forbidden"
    status, me = await api.get("/api/me", CAPTAIN)
    assert status == 200 and me["can"] == {"reports": False, "stations": False, "tasks": True}
    assert (await api.get("/api/board", CAPTAIN))[0] == 403
    assert (await api.get("/api/stations", CAPTAIN))[0] == 403


async def test_a_moderator_of_one_area_sees_and_acts_only_there(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    mine = await file_report(bot, reporter, REPORTER, area="文新街道")
    other = await file_report(
        bot, reporter, REPORTER, area="蒋村街道", description="另一个坑", lat=30.27, lon=120.10
    )
    no_area = await file_report(bot, reporter, REPORTER, description="没有片区的坑", lat=30.28, lon=120.11)

    status, board = await api.get("/api/board", MOD_A)
    assert status == 200
    assert [c["ref"] for c in board["columns"]["new"]] == [mine.ref]
    assert board["counts"] == {
        "new": 1,
        "acknowledged": 0,
        "in_progress": 0,
        "resolved": 0,
        "rejected": 0,
        "duplicate": 0,
    }
    status, data = await api.get("/api/map", MOD_A)
    assert [r["ref"] for r in data["reports"]] == [mine.ref]
    assert (await api.get(f"/api/reports/{other.id}", MOD_A))[0] == 404
    assert (await api.get(f"/api/reports/{no_area.id}", MOD_A))[0] == 404
    status, _ = await api.post(f"/api/reports/{other.id}/action", MOD_A, json={"action": "ack"})
    assert status == 404
    assert (await reports_repo.get(bot.db, other.id)).status == "new"
    # A filter never widens the scope.
    status, board = await api.get("/api/board?area=蒋村街道", MOD_A)
    assert all(not cards for cards in board["columns"].values())

    status, board = await api.get("/api/board", MOD_ALL)
    assert {c["ref"] for c in board["columns"]["new"]} == {mine.ref, other.ref, no_area.ref}
    status, board = await api.get("/api/board?area=蒋村街道", MOD_ALL)
    assert [c["ref"] for c in board["columns"]["new"]] == [other.ref]


async def test_resolve_on_the_board_goes_through_the_service_and_tells_the_reporter(bot, tg, api):
    admin = tg.user(ADMIN_ID, "管理员", started=True)
    group = tg.group(MODERATOR_CHAT_ID, "版主群", creator=admin)
    await group.add_bot(by=admin)
    reporter = tg.private(tg.user(REPORTER, "小王"))
    report = await file_report(bot, reporter, REPORTER)
    reporter.skip()
    status, body = await api.post(f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "resolve"})
    assert status == 409 and body["error"] == "note_required"
    status, body = await api.post(
        f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "resolve", "note": "坑已填平"}
    )
    assert status == 200 and body == {"changed": True, "status": "resolved"}
    events = await reports_repo.events(bot.db, report.id)
    assert [(e.action, e.actor_id, e.note) for e in events][-1] == ("resolve", MOD_ALL, "坑已填平")
    notice = await outbox_repo.get_by_key(bot.db, f"rp:{report.id}:ev:{events[-1].id}:{REPORTER}")
    assert notice is not None and notice.state == "pending"
    assert notice.due_at == bot.clock.now() + dt.timedelta(seconds=30)
    await bot.settle()
    await reporter.expect_no_message(within=0.2)
    await bot.advance(seconds=31)
    message = await reporter.expect_message(contains=report.ref)
    assert "坑已填平" in message.text
    assert message.button("是")  # the same notice as a chat button: "solved?" with its buttons
    # The moderators' card was edited too, as with a button.
    assert tg.calls_to("editMessageText")
    # Stale: a second resolve is refused with the current state.
    status, body = await api.post(
        f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "resolve", "note": "again"}
    )
    assert status == 409 and body["error"] == "already"


async def test_undo_within_the_grace_tells_the_reporter_nothing(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    report = await file_report(bot, reporter, REPORTER)
    reporter.skip()
    await api.post(f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "ack"})
    assert await points_repo.balance(bot.db, REPORTER) == 5  # a valid hazard tip earns its points
    status, body = await api.post(f"/api/reports/{report.id}/undo", MOD_ALL)
    assert status == 200 and body == {"changed": True, "status": "new"}
    stored = await reports_repo.get(bot.db, report.id)
    assert stored.status == "new" and stored.acknowledged_at is None
    # The counts /reports pages with (kept on write) follow the undo.
    assert await reports_repo.count(bot.db, statuses=("new",)) == 1
    assert await reports_repo.count(bot.db, statuses=("acknowledged",)) == 0
    assert await points_repo.balance(bot.db, REPORTER) == 0  # taken back with the decision
    events = await reports_repo.events(bot.db, report.id)
    ack, undo = events[-2], events[-1]
    assert (ack.action, ack.undone_by) == ("ack", undo.id)
    assert (undo.action, undo.from_status, undo.to_status, undo.actor_id) == (
        "undo",
        "acknowledged",
        "new",
        MOD_ALL,
    )
    await bot.advance(seconds=120)
    await reporter.expect_no_message(within=0.3)
    assert (
        await outbox_repo.get_by_key(bot.db, f"rp:{report.id}:ev:{ack.id}:{REPORTER}")
    ).state == "cancelled"
    # Nothing left to undo; acting again credits the points again.
    status, body = await api.post(f"/api/reports/{report.id}/undo", MOD_ALL)
    assert status == 409 and body["error"] == "nothing_to_undo"
    await api.post(f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "ack"})
    assert await points_repo.balance(bot.db, REPORTER) == 5
    status, detail = await api.get(f"/api/reports/{report.id}", MOD_ALL)
    assert [h["undone"] for h in detail["history"] if h["action"] == "ack"] == [True, False]
    assert detail["undo_until"] is not None


async def test_undo_after_the_notice_went_out_sends_a_correction(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    report = await file_report(bot, reporter, REPORTER)
    await api.post(f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "progress"})
    await bot.advance(seconds=31)
    await reporter.expect_message(contains="处理中")
    await api.post(f"/api/reports/{report.id}/undo", MOD_ALL)
    await bot.settle()
    correction = await reporter.expect_message(contains="更正")
    assert report.ref in correction.text and "待受理" in correction.text
    await bot.advance(minutes=11)
    await api.post(f"/api/reports/{report.id}/action", MOD_ALL, json={"action": "ack"})
    await bot.advance(minutes=11)
    status, body = await api.post(f"/api/reports/{report.id}/undo", MOD_ALL)
    assert status == 409 and body["error"] == "undo_expired"


async def test_photos_are_served_through_the_bot(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    stored = tg.server.store_user_file(b"\xff\xd8\xff-a-photo", file_name="photo.jpg", mime_type="image/jpeg")
    report = await file_report(bot, reporter, REPORTER, photos=[stored.file_id])
    status, detail = await api.get(f"/api/reports/{report.id}", MOD_ALL)
    assert detail["photos"] == 1
    status, data = await api.get(f"/api/reports/{report.id}/photo/0", MOD_ALL)
    assert status == 200 and data == b"\xff\xd8\xff-a-photo"
    assert any(c.method == "getFile" for c in tg.calls)
    assert (await api.get(f"/api/reports/{report.id}/photo/0", MOD_A))[0] == 404  # not their area
    assert (await api.get(f"/api/reports/{report.id}/photo/5", MOD_ALL))[0] == 404


CSV = (
    "external_id,name,lat,lon,area,opening_hours,facilities\n"
    "WX-1,文三路驿站,30.2776,120.1270,文新街道,24/7,饮水;充电\n"
    "WX-2,,30.28,120.13,文新街道,,\n"
    "JC-1,蒋村驿站,30.27,120.08,蒋村街道,,\n"
    "WX-3,古荡驿站,30.2800,120.1300,文新街道,25:00-26:00,\n"
)


async def test_csv_upload_shows_every_row_error_before_writing(bot, api):
    status, preview = await api.post("/api/stations/import?commit=0&name=s.csv", MOD_A, data=CSV.encode())
    assert status == 200 and preview["written"] is False
    reasons = {e["line"]: e["reason"] for e in preview["errors"]}
    assert set(reasons) == {3, 4, 5}
    assert "name" in reasons[3] and "蒋村街道" in reasons[4]
    assert [r["external_id"] for r in preview["rows"]] == ["WX-1"]
    assert await bot.db.fetchval("SELECT COUNT(*) FROM stations") == 0  # nothing written yet
    status, done = await api.post("/api/stations/import?commit=1&name=s.csv", MOD_A, data=CSV.encode())
    assert done["written"] and (done["inserted"], done["updated"]) == (1, 0)
    status, found = await api.get("/api/stations?q=文三", MOD_A)
    assert [s["name"] for s in found["stations"]] == ["文三路驿站"]
    # The unscoped moderator may import the other area's row; a broken file is one error.
    status, preview = await api.post("/api/stations/import?commit=0", MOD_ALL, data=CSV.encode())
    assert {e["line"] for e in preview["errors"]} == {3, 5}
    assert preview["updates"] == 1 and preview["new"] == 1
    status, body = await api.post("/api/stations/import", MOD_ALL, data=b"foo,bar\n1,2\n")
    assert status == 400 and "missing column" in body["message"]


async def test_station_edit_and_deactivate_are_scoped(bot, api):
    service = bot.core.service(StationService)
    mine = await service.add(name="文三路驿站", lat=30.2776, lon=120.127, area="文新街道")
    other = await service.add(name="蒋村驿站", lat=30.27, lon=120.08, area="蒋村街道")
    status, body = await api.post(
        f"/api/stations/{mine.id}",
        MOD_A,
        json={"opening_hours": "Mo-Fr 09:00-21:00", "facilities": ["toilet"]},
    )
    assert status == 200 and body["opening_hours"] == "Mo-Fr 09:00-21:00" and body["facilities"] == ["toilet"]
    status, body = await api.post(f"/api/stations/{mine.id}", MOD_A, json={"opening_hours": "soon"})
    assert status == 400
    assert (await api.post(f"/api/stations/{other.id}", MOD_A, json={"opening_hours": "24/7"}))[0] == 404
    assert (await api.post(f"/api/stations/{other.id}/active", MOD_A, json={"active": False}))[0] == 404
    status, body = await api.post(f"/api/stations/{mine.id}/active", MOD_A, json={"active": False})
    assert body == {"changed": True, "active": False}
    assert not (await service.get(mine.id)).active
    status, found = await api.get("/api/stations", MOD_A)
    assert [(s["name"], s["active"]) for s in found["stations"]] == [("文三路驿站", False)]


async def test_the_week_in_numbers(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    first = await file_report(bot, reporter, REPORTER, area="文新街道")
    second = await file_report(
        bot,
        reporter,
        REPORTER,
        kind="grievance",
        category="access",
        description="门禁",
        lat=None,
        lon=None,
        compound="西溪花园",
        area="蒋村街道",
    )
    service = bot.core.service(ReportService)
    await bot.advance(hours=2)
    await service.transition(first.id, "ack", MOD_ALL)
    await bot.advance(hours=4)
    await service.transition(first.id, "resolve", MOD_ALL, note="好了")
    await service.transition(second.id, "ack", MOD_ALL)
    status, week = await api.get("/api/week", MOD_ALL)
    assert week["reports_total"] == 2
    assert (
        week["by_category"]["hazard:road_damage"][-1] == 1
        and week["by_category"]["grievance:access"][-1] == 1
    )
    assert week["by_status"] == {"acknowledged": [0] * 6 + [1], "resolved": [0] * 6 + [1]}
    assert week["median_ack_hours"] == 4.0  # 2 h and 6 h
    assert week["median_resolve_hours"] == 6.0
    assert sum(week["points"]) == 5
    status, week = await api.get("/api/week", MOD_A)  # only 文新街道
    assert status == 200
    assert week["reports_total"] == 1 and week["median_ack_hours"] == 2.0


async def test_desk_command_offers_the_app_to_moderators_only(bot, tg, api):
    moderator = tg.private(tg.user(MOD_A, "社工"))
    await moderator.send("/desk")
    message = await moderator.expect_message(contains="工作台")
    button = message.markup["inline_keyboard"][0][0]
    assert button["web_app"]["url"] == bot.config.webapp.public_url
    await bot.settle()
    assert any(c.method == "setChatMenuButton" and c.params.get("chat_id") == MOD_A for c in tg.calls)
    courier = tg.private(tg.user(COURIER, "小哥"))
    await courier.send("/desk")
    await courier.expect_message(contains="仅供版主和队长")


async def test_menu_buttons_are_queued_once_for_role_holders(bot, api):
    from bot.desk import DeskService

    desk = bot.core.service(DeskService)
    assert await desk.queue_menu_buttons("https://desk.example.org/") == 4  # 3 grants + the admin
    assert await desk.queue_menu_buttons("https://desk.example.org/") == 0
    row = await outbox_repo.get_by_key(
        bot.db,
        f"desk:menu:{MOD_A}:" + hashlib.sha256(b"https://desk.example.org/").hexdigest()[:12],
    )
    assert row.payload["params"]["menu_button"]["web_app"]["url"] == "https://desk.example.org/"


async def test_map_markers_follow_gcj02_tiles(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    report = await file_report(bot, reporter, REPORTER)
    status, data = await api.get("/api/map", MOD_ALL)
    assert status == 200
    marker = next(r for r in data["reports"] if r["ref"] == report.ref)
    # Amap-style tiles (webapp.tiles_gcj02 = true): shifted by a few hundred metres in Hangzhou.
    assert marker["mlat"] != report.lat and abs(marker["mlat"] - report.lat) < 0.01
    assert abs(marker["mlon"] - report.lon) > 0.003


async def test_voice_notes_and_english_texts(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "Li", language_code="en"))
    stored = tg.server.store_user_file(b"OggS-voice", file_name="v.ogg", mime_type="audio/ogg")
    report = await file_report(bot, reporter, REPORTER, voice_file_id=stored.file_id, description="")
    status, data = await api.get(f"/api/reports/{report.id}/voice", MOD_ALL)
    assert status == 200 and data == b"OggS-voice"
    status, me = await api.get("/api/me", signed=init_data(bot, MOD_ALL, "Mod", lang="en"))
    assert me["lang"] == "en" and me["texts"]["ui.tab_board"] == "Board"
    assert me["status_labels"]["new"] == "New"


async def test_the_desk_is_served_in_webhook_mode_too(tg, tmp_path, clock):
    import dataclasses

    from bot.core.runtime import Runtime
    from tests.conftest import make_config
    from tests.desk_support import free_port

    port = free_port()
    config = make_config(tg, tmp_path / "wh.sqlite3", **desk_overrides())
    config = dataclasses.replace(
        config,
        telegram=dataclasses.replace(
            config.telegram,
            mode="webhook",
            webhook_listen="127.0.0.1",
            webhook_port=port,
            webhook_url=f"http://127.0.0.1:{port}",
            webhook_path="hook",
        ),
    )
    runtime = Runtime(config, clock=clock)
    await runtime.start()
    try:
        base = config.webapp.public_url.rstrip("/")
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/healthz") as r:
                assert r.status == 200
            async with session.get(base + "/api/me") as r:
                assert r.status == 401
    finally:
        await runtime.stop()


async def test_access_hotspots_on_the_map(bot, tg, api):
    reporter = tg.private(tg.user(REPORTER, "小王"))
    for lat in (30.2600, 30.2602):
        await file_report(
            bot,
            reporter,
            REPORTER,
            kind="grievance",
            category="access",
            description="保安不让进",
            compound="西溪花园",
            property_company="绿城物业",
            lat=lat,
            lon=120.1330,
            area="文新街道",
        )
    status, data = await api.get("/api/hotspots", MOD_A)
    assert status == 200
    [spot] = data["hotspots"]
    assert (spot["compound"], spot["total"], spot["open"]) == ("西溪花园", 2, 2)
    assert abs(spot["mlat"] - 30.2601) < 0.01
    assert (await api.get("/api/hotspots?area=蒋村街道", MOD_A))[1]["hotspots"] == []
    assert (await api.get("/api/hotspots", CAPTAIN))[1]["hotspots"] == []
