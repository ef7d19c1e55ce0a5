"""Warm stations end to end: location -> ordered answer, filters, paging, venue, coordinates, search,
empty area, flags reaching moderators, moderator edits and a courier refused."""

import datetime as dt
import json

import pytest
from geopy.distance import geodesic

from bot.stations.service import StationService
from storage import stations as stations_repo
from tests.conftest import ADMIN_ID, MODERATOR_CHAT_ID

HERE = (30.2741, 120.1551)  # Hangzhou, near the West Lake


@pytest.fixture
def clock():
    from bot.core.clock import FakeClock

    return FakeClock(dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC))  # 10:00 in Shanghai


async def add(bot, name, north_m, east_m, *, facilities=(), hours="24/7", kind="station", area=""):
    """A station `north_m` metres north and `east_m` metres east of HERE."""
    lat = HERE[0] + north_m / 111_195.0
    lon = HERE[1] + east_m / (111_195.0 * 0.8646)
    service = bot.core.service(StationService)
    return await service.add(
        name=name, lat=lat, lon=lon, facilities=facilities, opening_hours=hours, kind=kind, area=area
    )


async def seed(bot):
    await add(bot, "北边驿站", 400, 0, facilities=("drinking_water", "toilet"))
    await add(bot, "东边换电柜", 0, 800, kind="battery_cabinet")
    await add(
        bot,
        "南边食堂",
        -1200,
        0,
        facilities=("microwave", "phone_charging"),
        kind="canteen",
        hours="Mo-Su 11:00-20:00",
    )
    await add(bot, "西边饮水点", 0, -2000, kind="water_point")
    await add(bot, "远处驿站", 6000, 0)


async def courier(tg, user_id=3001, lang="zh"):
    chat = tg.private(tg.user(user_id, "骑手小王", language_code=lang))
    await chat.send("/start")
    await chat.expect_message()
    return chat


async def test_location_gives_nearest_first_with_distance_direction_and_buttons(bot, tg):
    await seed(bot)
    chat = await courier(tg)
    await chat.press("📍 附近驿站", location=HERE)
    msg = await chat.expect_message(contains="离你最近的驿站")
    text = msg.text
    order = [text.index(n) for n in ("北边驿站", "东边换电柜", "西边饮水点")]
    assert order == sorted(order)
    # The canteen 1.2 km south is closed until 11:00: the water point open 2 km west comes first
    # (within 1.2 km + 800 m), the canteen on the next page.
    assert "南边食堂" not in text  # page size 3
    assert "正北方向 400 米" in text and "正东方向 800 米" in text and "正西方向 2.0 公里" in text
    assert "骑行约 2 分钟" in text  # 400 m at 15 km/h
    assert "更近但现在没开门的排在后面" in text  # why a farther station comes first
    labels = [label for label, _ in msg.inline]
    assert "🧭 1 导航" in labels and "更多 ▶" in labels and "🗺 1 高德" in labels
    url = dict(msg.inline)["🗺 1 高德"]
    assert url.startswith("https://uri.amap.com/marker?position=120.1") and "coordinate=gaode" in url

    await (await chat.press("🧭 1 导航")).wait()
    venue = await chat.expect_message()
    assert venue.kind == "venue" and venue.venue["title"] == "北边驿站"
    expected = geodesic(HERE, (venue.location[0], venue.location[1])).meters
    assert abs(expected - 400) < 2

    await (await chat.press("更多 ▶")).wait()
    page2 = await chat.expect_edit(contains="南边食堂")
    assert "4. " in page2.text and "北边驿站" not in page2.text
    assert "🔴 已打烊 · 11:00 开门" in page2.text  # the canteen opens at 11:00 local
    assert "远处驿站" not in page2.text  # outside 3 km


async def test_filters_narrow_the_list(bot, tg):
    await seed(bot)
    chat = await courier(tg)
    await chat.share_location(*HERE)
    await chat.expect_message(contains="离你最近的驿站")
    await (await chat.press("🍱热饭")).wait()
    msg = await chat.expect_edit(contains="筛选：热饭")
    assert "南边食堂" in msg.text and "北边驿站" not in msg.text
    await (await chat.press("✅热饭")).wait()
    await chat.expect_edit(contains="北边驿站")
    await (await chat.press("🔋换电")).wait()
    msg = await chat.expect_edit(contains="筛选：换电")
    assert "东边换电柜" in msg.text
    assert "南边食堂" not in msg.text
    await (await chat.press("✖ 清除筛选")).wait()
    await chat.expect_edit(contains="北边驿站")


async def test_typed_coordinates_venue_and_english(bot, tg):
    await seed(bot)
    chat = await courier(tg, 3002, lang="en")
    await chat.send("30.2741, 120.1551")
    msg = await chat.expect_message(contains="400 m")
    assert "north" in msg.text
    await chat.send("120.1551，30.2741")  # lon, lat as Amap shows it: turned round
    msg = await chat.expect_message(contains="swapped")
    assert "北边驿站" in msg.text
    await chat.send("95.5, 200")
    await chat.expect_message(contains="out of range")
    await chat.send_venue(HERE[0], HERE[1], "西湖", "杭州")
    await chat.expect_message(contains="北边驿站")


async def test_name_search(bot, tg):
    await seed(bot)
    chat = await courier(tg)
    await chat.send("/stations 食堂")
    msg = await chat.expect_message(contains="南边食堂")
    assert "名称或地址含「食堂」" in msg.text
    await chat.send("/stations 不存在的地方")
    await chat.expect_message(contains="没有找到")
    await chat.send("/stations")
    ask = await chat.expect_message(contains="点下方菜单的 “📍 附近驿站” 按钮")
    # The persistent main menu stays (its first button shares the location): no one-time keyboard.
    assert ask.button("📍 附近驿站").get("request_location")
    assert ask.markup.get("is_persistent") and not ask.markup.get("one_time_keyboard")
    assert "📝 反映问题" in ask.labels


async def test_empty_area_says_so_and_offers_wider_and_nearest(bot, tg):
    await add(bot, "远处驿站", 6000, 0)
    chat = await courier(tg)
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="3 公里内没有找到驿站")
    assert "最近一个正在营业的在正北方向 6.0 公里" in msg.text and "远处驿站" in msg.text
    await (await chat.press("🔎 扩大到 10 公里")).wait()
    await chat.expect_edit(contains="离你最近的驿站（10 公里内）")


async def test_no_stations_at_all(bot, tg):
    chat = await courier(tg)
    await chat.share_location(*HERE)
    await chat.expect_message(contains="还没有任何驿站数据")


async def test_flag_reaches_the_moderators(bot, tg):
    await seed(bot)
    mod_owner = tg.user(ADMIN_ID, "管理员")
    mod_group = tg.group(MODERATOR_CHAT_ID, "版主群", creator=mod_owner)
    await mod_group.add_bot(by=mod_owner)
    mods = mod_group.chat(mod_owner)
    await mods.expect_message()
    chat = await courier(tg)
    await chat.share_location(*HERE)
    await chat.expect_message()
    await (await chat.press("ℹ️ 1 详情")).wait()
    details = await chat.expect_message(contains="类型：")
    assert "✏️ 名称" not in details.labels  # couriers don't get edit buttons
    await (await chat.press("🚩 反馈问题")).wait()
    await chat.expect_message(contains="有什么问题")
    await (await chat.press("设施坏了")).wait()
    await chat.expect_edit(contains="已转告")
    notice = await mods.expect_message(contains="驿站反馈")
    assert "设施坏了" in notice.text and "北边驿站" in notice.text
    # An optional explanation: a reply to the prompt reaches the same moderators, once.
    ask = await chat.expect_message(contains="想说明一下吗")
    await chat.send("微波炉坏了，插上没反应", reply_to=ask)
    await chat.expect_message(contains="已把说明转给管理员")
    more = await mods.expect_message(contains="驿站反馈补充")
    assert "微波炉坏了" in more.text and "北边驿站" in more.text
    await chat.send("再补一句", reply_to=ask)
    await chat.expect_message(contains="已经有说明")
    await (
        await chat.press_data(
            f"st:fr:{notice.text.split('编号 ')[1].split('）')[0]}:broken", message_id=details.message_id
        )
    ).wait()


async def test_moderator_edits_and_deactivates_courier_refused(bot, tg):
    station = await add(bot, "北边驿站", 400, 0, area="文新街道")
    await bot.grant(3100, "moderator", "文新街道")
    mod = tg.private(tg.user(3100, "社工小李"))
    await mod.send(f"/station {station.id}")
    details = await mod.expect_message(contains="北边驿站")
    assert "✏️ 营业时间" in details.labels and "⛔ 停用" in details.labels
    await (await mod.press("✏️ 营业时间")).wait()
    await mod.expect_message(contains="营业时间")
    await mod.send("每天九点")
    await mod.expect_message(contains="看不懂这个营业时间")
    await mod.send("Mo-Fr 09:00-21:00")
    await mod.expect_message(contains="已保存")
    assert (await stations_repo.get(bot.db, station.id)).opening_hours == "Mo-Fr 09:00-21:00"
    await (await mod.press("✏️ 名称")).wait()
    await mod.expect_message()
    await mod.send("北边暖蜂驿站")
    await mod.expect_message(contains="已保存")
    await (await mod.press("⛔ 停用")).wait()
    assert not (await stations_repo.get(bot.db, station.id)).active

    # A courier can't, even with forged buttons; an area moderator can't edit another area.
    chat = await courier(tg)
    answer = await (await chat.press_data(f"st:on:{station.id}")).wait()
    assert answer.show_alert and "没有权限" in answer.text
    answer = await (await chat.press_data(f"st:e:{station.id}:name")).wait()
    assert "没有权限" in answer.text
    await chat.send("/addstation")
    await chat.expect_message(contains="没有权限")
    other = await add(bot, "古荡驿站", 0, 300, area="古荡街道")
    answer = await (await mod.press_data(f"st:off:{other.id}")).wait()
    assert "片区" in answer.text
    assert (await stations_repo.get(bot.db, other.id)).active


async def test_moderator_adds_a_station_in_chat(bot, tg):
    await bot.grant(3101, "moderator")
    mod = tg.private(tg.user(3101, "社工小周"))
    await mod.send("/addstation")
    await mod.expect_message(contains="新增驿站")
    await mod.send("翠苑骑手驿站")
    await mod.expect_message(contains="位置")
    await mod.send("300, 500")
    await mod.expect_message(contains="超出范围")
    await mod.share_location(30.29, 120.12)
    await mod.expect_message(contains="选择类型")
    await (await mod.press("🏠暖蜂驿站")).wait()
    await mod.expect_edit(contains="选择设施")
    await (await mod.press("🔌手机充电")).wait()
    await (await mod.press("🚻厕所")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="营业时间")
    await mod.send("24/7")
    await mod.expect_message(contains="地址")
    await (await mod.press("跳过")).wait()
    await mod.expect_message(contains="已新增驿站「翠苑骑手驿站」")
    [station] = [s for s in await stations_repo.all_stations(bot.db) if s.name == "翠苑骑手驿站"]
    assert set(station.facilities) >= {"phone_charging", "toilet"} and station.opening_hours == "24/7"


async def test_forged_page_data_is_refused(bot, tg):
    chat = await courier(tg)
    await chat.share_location(*HERE)
    await chat.expect_message()
    answer = await (await chat.press_data("st:n:999:1:0:-:0")).wait()
    assert answer.show_alert and "过期" in answer.text
    answer = await (await chat.press_data("st:v:99999")).wait()
    assert "不存在" in answer.text


async def test_cancel_leaves_every_open_flow(bot, tg):
    """Two flows open at once (adding a station, and the wish wall's "nearest first" question): one
    /cancel leaves both and drops both drafts, so the next location is a plain nearest-stations
    question, not an answer to a forgotten step."""
    await bot.grant(3102, "moderator")
    mod = tg.private(tg.user(3102, "社工小吴"))
    await mod.send("/addstation")
    await mod.expect_message(contains="新增驿站")
    await mod.send("古墩骑手驿站")
    await mod.expect_message(contains="位置")
    await (await mod.press_data("tk:near")).wait()
    await mod.expect_message(contains="位置")
    await mod.send("/cancel")
    await mod.expect_message(contains="已取消")
    await mod.share_location(30.30, 120.11)
    answer = await mod.expect_message()
    assert "选择类型" not in answer.text and "心愿" not in answer.text
    await bot.settle()
    data = await bot.core.db.fetchval("SELECT data FROM ptb_user_data WHERE user_id = 3102")
    assert "古墩" not in (data or "")
    states = await bot.core.db.fetchall("SELECT name, key FROM ptb_conversations")
    assert not [r for r in states if "3102" in str(r[1])], states


async def test_far_from_every_station_says_none_within_100_km(bot, tg):
    await add(bot, "远方驿站", 150_000, 0, facilities=("toilet",))
    chat = await courier(tg)
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="3 公里内没有找到驿站")
    assert "100 公里内都没有驿站" in msg.text and "还没有任何驿站数据" not in msg.text
    assert not [label for label in msg.labels if "扩大" in label]  # 10 km would find nothing either
    await (await chat.press("🍱热饭")).wait()
    msg = await chat.expect_edit(contains="没有符合筛选")
    assert "30 公里内也没有符合筛选的驿站" in msg.text


async def test_group_stations_prompt_reply_and_private_link(bot, tg):
    """Privacy mode on: the bot sees only commands and replies to itself. /stations answers with a
    ForceReply prompt; a location, venue, coordinates or a place name sent as a reply is answered."""
    await seed(bot)
    owner = tg.user(4001, "群主", language_code="zh")
    rider = tg.user(4002, "骑手小张", language_code="zh")
    group = tg.group(-100999, "骑手群", creator=owner)
    await group.add_bot(by=owner)
    chat = group.chat(owner)
    greeting = await chat.expect_message(contains="大家好")
    assert "回复我的提示" in greeting.text
    await group.add_member(rider, by=owner)
    member = group.chat(rider)

    await member.send("/stations")
    prompt = await member.expect_message(contains="回复这条消息")
    call = [c for c in tg.calls_to("sendMessage", -100999) if "回复这条消息" in c.params["text"]][-1]
    markup = call.params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    assert markup.get("force_reply") and markup.get("selective")
    assert prompt.reply_to_message_id is not None  # selective: the ForceReply is for the asker only
    link = await member.expect_message(contains="私聊")
    assert dict(link.inline)["💬 私聊找驿站"].endswith("?start=stations")
    assert not any(m.reply_keyboard for m in member.messages)  # no location button in a group

    await member.reply_to(prompt, "30.2741, 120.1551")
    msg = await member.expect_message(contains="离你最近的驿站")
    assert "北边驿站" in msg.text
    await member._post(  # a shared location as a reply (📎 -> Location)
        {
            "location": {"latitude": HERE[0], "longitude": HERE[1]},
            "reply_to_message": member._reply_target(prompt),
        }
    )
    await member.expect_message(contains="北边驿站")
    await member.reply_to(prompt, "食堂")
    await member.expect_message(contains="名称或地址含「食堂」")
    await member.share_location(*HERE)  # not a reply: Telegram doesn't deliver it under privacy mode
    await member.send("30.2741, 120.1551")
    await member.expect_no_message()

    private = tg.private(rider)
    await private.send("/start stations")
    ask = await private.expect_message(contains="“📍 附近驿站”")
    assert ask.button("📍 附近驿站").get("request_location")
    await private.press("📍 附近驿站", location=HERE)
    await private.expect_message(contains="北边驿站")


async def test_live_location_answers_the_first_share_only(bot, tg):
    await seed(bot)
    chat = await courier(tg)
    shared = await chat.share_location(*HERE, live_period=900)
    await chat.expect_message(contains="北边驿站")
    moved = dict(
        shared,
        edit_date=shared["date"] + 60,
        location={"latitude": HERE[0] + 0.001, "longitude": HERE[1], "live_period": 900},
    )
    tg.server.enqueue_update("edited_message", moved)
    await bot.settle()
    await chat.expect_no_message()


async def test_abandoned_edit_does_not_swallow_a_location_or_coordinates(bot, tg):
    station = await add(bot, "北边驿站", 400, 0)
    await bot.grant(3300, "moderator")
    mod = tg.private(tg.user(3300, "社工"))
    await mod.send(f"/station {station.id}")
    await mod.expect_message(contains="北边驿站")
    await (await mod.press("✏️ 名称")).wait()
    await mod.expect_message(contains="名称")
    bot.clock.advance(dt.timedelta(hours=5))
    await mod.share_location(*HERE)
    msg = await mod.expect_message(contains="离你最近的驿站")
    assert "已超时" in msg.text and "名称不能为空" not in msg.text

    # Right away: coordinates typed while a text field waits are a search, not the new name.
    await mod.send(f"/station {station.id}")
    await mod.expect_message(contains="北边驿站")
    await (await mod.press("✏️ 名称")).wait()
    await mod.expect_message(contains="名称")
    await mod.send("30.2741, 120.1551")
    msg = await mod.expect_message(contains="离你最近的驿站")
    assert "已退出对「北边驿站」的编辑" in msg.text

    # Text after the timeout is not saved either.
    await (await mod.press_data(f"st:e:{station.id}:name")).wait()
    await mod.expect_message(contains="名称")
    bot.clock.advance(dt.timedelta(minutes=11))
    await mod.send("北边新名字")
    await mod.expect_message(contains="已超时")
    assert (await stations_repo.get(bot.db, station.id)).name == "北边驿站"

    # The location field still takes a location.
    await (await mod.press_data(f"st:e:{station.id}:location")).wait()
    await mod.expect_message(contains="位置")
    await mod.send("30.2800, 120.1600")
    await mod.expect_message(contains="已保存")
    assert (await stations_repo.get(bot.db, station.id)).lat == pytest.approx(30.28)

    [conversation] = [h for h in bot.app.handlers[0] if getattr(h, "name", None) == "stations"]
    assert conversation.conversation_timeout == dt.timedelta(minutes=10)


async def test_area_moderator_adds_a_station_in_their_area_and_can_edit_it(bot, tg):
    await bot.grant(3110, "moderator", "文新街道")
    mod = tg.private(tg.user(3110, "社工小陈"))
    await mod.send("/addstation")
    await mod.expect_message(contains="新增驿站")
    await mod.send("文新骑手驿站")
    await mod.expect_message(contains="位置")
    await mod.share_location(30.285, 120.11)
    await mod.expect_message(contains="选择类型")
    await (await mod.press("🏠暖蜂驿站")).wait()
    await mod.expect_edit(contains="选择设施")
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="营业时间")
    await (await mod.press("跳过")).wait()
    await mod.expect_message(contains="地址")
    await (await mod.press("跳过")).wait()
    await mod.expect_message(contains="已新增驿站「文新骑手驿站」")
    details = await mod.expect_message(contains="片区：文新街道")
    assert "⛔ 停用" in details.labels
    [station] = [s for s in await stations_repo.all_stations(bot.db) if s.name == "文新骑手驿站"]
    assert station.area == "文新街道"
    answer = await (await mod.press("⛔ 停用")).wait()
    assert "已停用" in answer.text
    assert not (await stations_repo.get(bot.db, station.id)).active

    # A moderator of two areas chooses one.
    await bot.grant(3111, "moderator", "古荡街道")
    await bot.grant(3111, "moderator", "蒋村街道")
    two = tg.private(tg.user(3111, "社工小林"))
    await two.send("/addstation")
    await two.expect_message(contains="新增驿站")
    await two.send("蒋村骑手驿站")
    await two.expect_message(contains="位置")
    await two.send("30.28, 120.07")
    await two.expect_message(contains="选择类型")
    await (await two.press("🏠暖蜂驿站")).wait()
    await two.expect_edit(contains="选择设施")
    await (await two.press("完成")).wait()
    await two.expect_message(contains="营业时间")
    await two.send("24/7")
    await two.expect_message(contains="地址")
    await two.send("蒋村路 1 号")
    ask = await two.expect_message(contains="哪个片区")
    assert ask.labels == ["古荡街道", "蒋村街道"]  # no "no area": their grants are scoped
    answer = await (await two.press_data("st:aa:7")).wait()  # forged
    assert "过期" in answer.text
    await (await two.press("蒋村街道")).wait()
    await two.expect_message(contains="已新增驿站「蒋村骑手驿站」")
    [station] = [s for s in await stations_repo.all_stations(bot.db) if s.name == "蒋村骑手驿站"]
    assert station.area == "蒋村街道"


async def test_unknown_facility_is_named_in_chinese_only(bot, tg):
    station = await add(bot, "北边驿站", 400, 0)
    await bot.grant(3120, "moderator")
    mod = tg.private(tg.user(3120, "社工小郑"))
    await mod.send(f"/station {station.id}")
    await mod.expect_message(contains="北边驿站")
    await (await mod.press("✏️ 设施")).wait()
    await mod.expect_message(contains="设施")
    await mod.send("饮水;饭")
    msg = await mod.expect_message(contains="有不认识的设施")
    assert msg.text.startswith("有不认识的设施：饭。")
    assert "unknown" not in msg.text
    await mod.send("饮水;厕所")
    await mod.expect_message(contains="已保存")
