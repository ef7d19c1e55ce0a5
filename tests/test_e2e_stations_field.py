"""Warm stations end to end after a first week in the field (issue 14): open stations first at night
and the 营业中 filter (item 5), words as filters (item 6), station numbers, weekly hours and natural
hours in details and edits (item 10), and flag notices moderators act on (item 17)."""

import datetime as dt

import pytest

from bot.core.clock import FakeClock
from bot.stations.service import StationService
from storage import stations as stations_repo
from tests.conftest import ADMIN_ID, MODERATOR_CHAT_ID

HERE = (30.2741, 120.1551)  # Hangzhou, near the West Lake


@pytest.fixture
def clock():
    return FakeClock(dt.datetime(2026, 11, 24, 18, 10, tzinfo=dt.UTC))  # Wed 02:10 in Shanghai


async def add(
    bot, name, north_m, east_m, *, facilities=(), hours="24/7", kind="station", area="", address=""
):
    """A station `north_m` metres north and `east_m` metres east of HERE."""
    lat = HERE[0] + north_m / 111_195.0
    lon = HERE[1] + east_m / (111_195.0 * 0.8646)
    service = bot.core.service(StationService)
    return await service.add(
        name=name,
        lat=lat,
        lon=lon,
        facilities=facilities,
        opening_hours=hours,
        kind=kind,
        area=area,
        address=address,
    )


async def courier(tg, user_id=3001, lang="zh", name="骑手小王"):
    chat = tg.private(tg.user(user_id, name, language_code=lang))
    await chat.send("/start")
    await chat.expect_message()
    return chat


async def moderators(tg):
    owner = tg.user(ADMIN_ID, "管理员")
    group = tg.group(MODERATOR_CHAT_ID, "版主群", creator=owner)
    await group.add_bot(by=owner)
    chat = group.chat(owner)
    await chat.expect_message()
    return group, chat


# -- item 5 ---------------------------------------------------------------------------------------


async def test_at_night_the_open_station_comes_first_and_the_open_filter(bot, tg):
    """At 02:10 two closed stations lie nearer than a 24-hour one: the 24-hour one is listed first,
    the page says why, and 🟢营业中 keeps only the open ones."""
    await add(bot, "白天驿站", 300, 0, hours="Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00")
    await add(bot, "党群中心", 0, 500, hours="Mo-Fr 08:30-17:30; PH off")
    await add(bot, "通宵驿站", -900, 0, hours="24/7")
    chat = await courier(tg)
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="离你最近的驿站")
    text = msg.text
    assert text.index("通宵驿站") < text.index("白天驿站") < text.index("党群中心")
    assert "1. 🏠 通宵驿站" in text and "🟢 24 小时营业" in text
    assert "更近但现在没开门的排在后面" in text
    assert "🔴 已打烊 · 10:00 开门" not in text and "🔴 已打烊 · 09:00 开门" in text
    assert "🟢营业中" in msg.labels
    await (await chat.press("🟢营业中")).wait()
    only = await chat.expect_edit(contains="筛选：营业中")
    assert "通宵驿站" in only.text and "白天驿站" not in only.text and "党群中心" not in only.text
    assert "✅营业中" in only.labels
    await (await chat.press("✖ 清除筛选")).wait()
    await chat.expect_edit(contains="白天驿站")


async def test_nearest_anyway_prefers_open_and_says_when_a_closed_one_opens(bot, tg):
    """Nothing within 3 km: the nearest closed station says when it opens; an open one a little
    farther is shown instead."""
    await add(bot, "远处党群中心", 5000, 0, hours="Mo-Fr 08:30-17:30")
    chat = await courier(tg)
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="3 公里内没有找到驿站")
    assert "最近的一个在正北方向 5.0 公里，现在没开门，08:30开门" in msg.text and "远处党群中心" in msg.text
    await add(bot, "远处通宵驿站", 0, 6500, hours="24/7")
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="3 公里内没有找到驿站")
    assert "最近一个正在营业的在正东方向 6.5 公里" in msg.text and "远处通宵驿站" in msg.text
    assert "远处党群中心" not in msg.text


# -- item 6 ---------------------------------------------------------------------------------------


async def test_words_are_filters_from_the_last_location_or_after_asking(bot, tg):
    await add(bot, "北边驿站", 400, 0, facilities=("drinking_water",))
    await add(bot, "南边厕所驿站", -700, 0, facilities=("toilet", "phone_charging"))
    await add(bot, "东边食堂", 0, 900, facilities=("microwave",), kind="canteen")
    chat = await courier(tg)
    # No location yet: ask for one with the menu's location button, and keep the filter for it.
    await chat.send("厕所")
    ask = await chat.expect_message(contains="要找最近的有厕所的驿站")
    assert ask.button("📍 附近驿站").get("request_location")
    assert "没有找到" not in ask.text
    await chat.press("📍 附近驿站", location=HERE)
    msg = await chat.expect_message(contains="筛选：厕所")
    assert "南边厕所驿站" in msg.text and "北边驿站" not in msg.text
    # The next location is a plain question again.
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="离你最近的驿站")
    assert "筛选" not in msg.text and "北边驿站" in msg.text
    # Within 30 minutes a word answers at once from that location, and says so.
    await bot.advance(minutes=12)
    await chat.send("充电")
    msg = await chat.expect_message(contains="筛选：充电")
    assert "用的是你 12 分钟前发送的位置" in msg.text and "南边厕所驿站" in msg.text
    await chat.send("热饭")
    msg = await chat.expect_message(contains="筛选：热饭")
    assert "东边食堂" in msg.text
    # Older than 30 minutes (a word does not refresh it): ask again.
    await bot.advance(minutes=20)
    await chat.send("饮水")
    await chat.expect_message(contains="要找最近的有饮水的驿站")
    await chat.send("30.2741, 120.1551")  # typed coordinates take the waiting filter too
    msg = await chat.expect_message(contains="筛选：饮水")
    assert "北边驿站" in msg.text


async def test_nearby_hello_english_words_and_name_search_still_work(bot, tg):
    await add(bot, "公共厕所旁驿站", 400, 0, address="文三路 1 号")
    await add(bot, "南边驿站", -600, 0, facilities=("toilet",))
    chat = await courier(tg)
    await chat.send("附近")
    ask = await chat.expect_message(contains="点下方菜单的 “📍 附近驿站” 按钮")
    assert ask.button("📍 附近驿站").get("request_location")
    await chat.send("你好")
    hello = await chat.expect_message(contains="我是小哥助手")
    assert "也可以直接发 “厕所”" in hello.text and "📍 附近驿站" in hello.labels
    # A station named "…厕所…" is still found by name; plain names and addresses too.
    await chat.send("/stations 厕所")
    found = await chat.expect_message(contains="名称或地址含「厕所」")
    assert "公共厕所旁驿站" in found.text
    await chat.send("文三路")
    await chat.expect_message(contains="公共厕所旁驿站")
    en = await courier(tg, 3002, lang="en", name="Rider")
    await en.send("toilet")
    await en.expect_message(contains="To find the nearest station (Toilet)")
    await en.share_location(*HERE)
    msg = await en.expect_message(contains="Filters: Toilet")
    assert "南边驿站" in msg.text and "公共厕所旁驿站" not in msg.text
    await en.send("hello")
    await en.expect_message(contains="You can also just send")


# -- item 10 --------------------------------------------------------------------------------------


async def test_details_show_number_weekly_hours_and_last_update(bot, tg):
    station = await add(bot, "北边驿站", 400, 0, hours="Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00")
    chat = await courier(tg)
    await chat.share_location(*HERE)
    msg = await chat.expect_message(contains="离你最近的驿站")
    assert f"北边驿站 · 编号 {station.id}" in msg.text
    await (await chat.press("ℹ️ 1 详情")).wait()
    details = await chat.expect_message(contains="类型：")
    assert f"编号 {station.id}" in details.text
    assert "营业时间：周一至周五 09:00–21:00，周六、周日 10:00–18:00" in details.text
    assert "信息更新于 11月25日" in details.text
    en = await courier(tg, 3002, lang="en", name="Rider")
    await en.send(f"/station {station.id}")
    details = await en.expect_message(contains="Kind:")
    assert f"No. {station.id}" in details.text
    assert "Hours: Mon–Fri 09:00–21:00; Sat, Sun 10:00–18:00" in details.text
    assert "Information updated 25 Nov" in details.text


async def test_moderator_types_hours_in_words(bot, tg):
    station = await add(bot, "北边驿站", 400, 0, area="文新街道")
    await bot.grant(3100, "moderator", "文新街道")
    mod = tg.private(tg.user(3100, "社工小李"))
    await mod.send(f"/station {station.id}")
    await mod.expect_message(contains="北边驿站")
    await (await mod.press("✏️ 营业时间")).wait()
    ask = await mod.expect_message(contains="营业时间")
    assert "WGS" not in ask.text
    await mod.send("看心情")
    refused = await mod.expect_message(contains="看不懂这个营业时间")
    assert "缺少具体时间" in refused.text and "{why}" not in refused.text
    await mod.send("周八 9点到5点")
    await mod.expect_message(contains="不认识「周八」这个日子")
    await mod.send("周一到周五早上7点到晚上10点，周末休息")
    await mod.expect_message(contains="已保存")
    details = await mod.expect_message(contains="营业时间：")
    assert "营业时间：周一至周五 07:00–22:00，周六、周日休息" in details.text
    assert (
        await stations_repo.get(bot.db, station.id)
    ).opening_hours == "周一到周五早上7点到晚上10点，周末休息"
    await (await mod.press("✏️ 位置")).wait()
    ask = await mod.expect_message(contains="位置")
    assert "WGS" not in ask.text and "30.2741, 120.1551" in ask.text


# -- item 17 --------------------------------------------------------------------------------------


async def _flag(chat, reason_label="设施坏了"):
    await chat.share_location(*HERE)
    await chat.expect_message(contains="离你最近的驿站")
    await (await chat.press("ℹ️ 1 详情")).wait()
    await chat.expect_message(contains="类型：")
    await (await chat.press("🚩 反馈问题")).wait()
    await chat.expect_message(contains="有什么问题")
    await (await chat.press(reason_label)).wait()
    await chat.expect_edit(contains="已转告")


async def test_flag_notice_buttons_handle_and_deactivate(bot, tg):
    station = await add(bot, "北边驿站", 400, 0, area="文新街道")
    group, mods = await moderators(tg)
    rider = await courier(tg)
    await _flag(rider)
    notice = await mods.expect_message(contains="驿站反馈")
    assert notice.labels == ["ℹ️ 驿站详情", "✅ 已处理", "⛔ 停用驿站"]
    # The courier's prompt shows no internal id; a reply to it still reaches the moderators.
    ask = await rider.expect_message(contains="想说明一下吗")
    assert "#" not in ask.text
    await rider.send("微波炉坏了", reply_to=ask)
    await rider.expect_message(contains="已把说明转给管理员")
    more = await mods.expect_message(contains="驿站反馈补充")
    assert "微波炉坏了" in more.text and more.labels == notice.labels

    # Someone in the moderators' chat without the right, and a moderator of another area: refused.
    helper = group.chat(tg.user(3200, "热心群友"))
    answer = await (await helper.press("✅ 已处理", message=notice.message_id)).wait()
    assert answer.show_alert and "没有权限" in answer.text
    await bot.grant(3300, "moderator", "古荡街道")
    other = group.chat(tg.user(3300, "古荡版主"))
    answer = await (await other.press("✅ 已处理", message=notice.message_id)).wait()
    assert "片区" in answer.text
    (flag,) = await stations_repo.flags_for(bot.db, station.id)
    assert flag.handled_at is None

    # The area's moderator opens the station, then marks the flag handled.
    await bot.grant(3100, "moderator", "文新街道")
    mod = group.chat(tg.user(3100, "陈版主"))
    await (await mod.press("ℹ️ 驿站详情", message=notice.message_id)).wait()
    details = await mod.expect_message(contains="类型：")
    assert "北边驿站" in details.text and f"编号 {station.id}" in details.text
    link = dict(details.inline)["✏️ 私聊编辑"]
    assert link.endswith(f"?start=station_{station.id}")
    answer = await (await mod.press("✅ 已处理", message=notice.message_id)).wait()
    assert "已标记为已处理" in answer.text
    edited = await mod.expect_edit(contains="陈版主 已处理")
    assert edited.labels == ["ℹ️ 驿站详情"]
    (flag,) = await stations_repo.flags_for(bot.db, station.id)
    assert flag.handled_by == 3100 and flag.handled_action == "handled"
    # The other notice of the same flag: already handled, and redrawn so.
    answer = await (await mod.press("⛔ 停用驿站", message=more.message_id)).wait()
    assert "已经处理过了" in answer.text
    assert (await stations_repo.get(bot.db, station.id)).active

    # A second flag: deactivate asks first; back leaves it; confirm deactivates and handles it.
    second = await courier(tg, 3002, name="骑手小李")
    await _flag(second, "关门了 / 不开放")
    notice2 = await mods.expect_message(contains="关门了")
    await (await mod.press("⛔ 停用驿站", message=notice2.message_id)).wait()
    confirm = await mod.expect_edit(message_id=notice2.message_id)
    assert confirm.labels == ["⛔ 确认停用", "↩️ 返回"]
    await (await mod.press("↩️ 返回", message=notice2.message_id)).wait()
    back = await mod.expect_edit(message_id=notice2.message_id)
    assert back.labels == ["ℹ️ 驿站详情", "✅ 已处理", "⛔ 停用驿站"]
    assert (await stations_repo.get(bot.db, station.id)).active
    await (await mod.press("⛔ 停用驿站", message=notice2.message_id)).wait()
    await mod.expect_edit(message_id=notice2.message_id)
    answer = await (await mod.press("⛔ 确认停用", message=notice2.message_id)).wait()
    assert "已停用「北边驿站」" in answer.text
    done = await mod.expect_edit(contains="陈版主 已停用这个驿站")
    assert done.labels == ["ℹ️ 驿站详情"]
    assert not (await stations_repo.get(bot.db, station.id)).active

    # Forged buttons: an unknown flag is stale; a courier's forged press on a real one is refused.
    answer = await (await mods.press_data("st:fg:h:99999", message_id=notice.message_id)).wait()
    assert "过期" in answer.text
    answer = await (await rider.press_data(f"st:fg:y:{flag.id}")).wait()
    assert "没有权限" in answer.text


async def test_deep_link_opens_the_station_for_editing(bot, tg):
    station = await add(bot, "北边驿站", 400, 0, area="文新街道")
    await bot.grant(3100, "moderator", "文新街道")
    mod = tg.private(tg.user(3100, "陈版主"))
    await mod.send(f"/start station_{station.id}")
    details = await mod.expect_message(contains="北边驿站")
    assert "✏️ 营业时间" in details.labels
