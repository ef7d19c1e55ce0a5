"""End to end: grievances and hazard tips, from a group's /report to a moderator's "resolved"."""

from __future__ import annotations

import io
import logging

import pytest

from bot.reports.service import ReportDraft, ReportService
from storage import points
from tests.conftest import MODERATOR_CHAT_ID

MOD_ID = 5001
MOD2_ID = 5002
COURIER_ID = 1001
EN_COURIER_ID = 1002
OTHER_ID = 1003
GROUP_ID = -100555
LAT, LON = 30.2590, 120.1300  # Hangzhou, West Lake district


@pytest.fixture
def config_overrides():
    return {"reports": {"daily_limit": 3, "undo_grace_seconds": 0}}


class World:
    """The moderators' group, a courier group with an area, and a few couriers."""

    def __init__(self, bot, tg):
        self.bot, self.tg = bot, tg

    async def setup(self) -> World:
        tg = self.tg
        self.mod_user = tg.user(MOD_ID, "社工小林", username="lin_sg", started=True)
        self.mod2_user = tg.user(MOD2_ID, "Mod Two", username="mod2", language_code="en", started=True)
        self.mods = tg.group(MODERATOR_CHAT_ID, "社区管理员群", creator=self.mod_user)
        await self.mods.add_bot(by=self.mod_user)
        self.mod = self.mods.chat(self.mod_user)
        self.mod2 = self.mods.chat(self.mod2_user)
        await self.bot.grant(MOD_ID, "moderator")
        await self.bot.grant(MOD2_ID, "moderator")
        self.courier_user = tg.user(COURIER_ID, "小王", username="wangxg", language_code="zh-hans")
        self.en_user = tg.user(EN_COURIER_ID, "Li", username="li_rider", language_code="en")
        self.other_user = tg.user(OTHER_ID, "老张", username="zhang")
        self.group = tg.group(GROUP_ID, "蒋村小哥群", creator=self.courier_user)
        await self.group.add_bot(by=self.courier_user)
        self.courier = tg.private(self.courier_user)
        self.en = tg.private(self.en_user)
        self.other = tg.private(self.other_user)
        await self.bot.settle()
        self.mod.skip()
        self.mod2.skip()
        return self

    @property
    def service(self) -> ReportService:
        return self.bot.core.service(ReportService)

    async def card(self, contains: str):
        """The next card (a message with the moderator buttons) in the moderators' group."""
        while True:
            msg = await self.mod.expect_message(contains=contains)
            if msg.inline:
                return msg


async def _file_hazard(chat, *, description="文三路有个大坑，晚上很危险", lat=LAT, lon=LON, photos=1):
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send(description)
    await chat.expect_message(contains="照片")
    for _ in range(photos):
        await chat.send_photo()
        await chat.expect_message()
    if photos < 3:
        await (await chat.press("完成" if photos else "跳过")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.share_location(lat, lon)
    await chat.expect_message(contains="位置已记录")


# -- filing -----------------------------------------------------------------------------------------


async def test_hazard_from_group_deep_link_to_submit(bot, tg):
    w = await World(bot, tg).setup()
    await bot.core.db.execute("UPDATE groups SET area = '蒋村' WHERE chat_id = ?", (GROUP_ID,))
    in_group = w.group.chat(w.courier_user)
    in_group.skip()
    await in_group.send("/report")
    prompt = await in_group.expect_message(contains="点下方按钮开始")
    url = await in_group.press("私聊反映")
    assert url.endswith(f"?start=report_{GROUP_ID}")
    chat = w.courier
    await chat.send(f"/start report_{GROUP_ID}")
    await chat.expect_message(contains="今天还可以提交 3 条")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="最多 500 字")
    await chat.send("文三路有个大坑")
    await chat.expect_message(contains="最多 3 张照片")
    await chat.send_photo()
    await chat.expect_message(contains="第 1 张")
    await chat.send_photo()
    await chat.expect_message(contains="第 2 张")
    await (await chat.press("完成")).wait()
    ask = await chat.expect_message(contains="在哪里")
    assert ask.button("📍 发送位置").get("request_location") is True
    await chat.share_location(LAT, LON)
    await chat.expect_message(contains="位置已记录")
    summary = await chat.expect_message(contains="请确认")
    assert "道路破损" in summary.text and "照片 2 张" in summary.text and "匿名" not in summary.text
    await (await chat.press("提交")).wait()
    done = await chat.expect_message(contains="已提交，编号 H-0001")
    assert done.reply_keyboard  # back to the main menu
    await bot.settle()
    # The moderators get the photos, the map pin and the card.
    kinds = [m.kind for m in w.mod.messages]
    assert "photo" in kinds and "location" in kinds
    card = await w.card("H-0001")
    assert "文三路有个大坑" in card.text and "小王 (@wangxg)" in card.text and "蒋村" in card.text
    assert card.buttons == [["受理", "处理中", "已解决"], ["驳回", "标记重复", "·"]]
    report = await w.service.get_by_ref("H-0001")
    assert report.area == "蒋村" and report.origin_chat_id == GROUP_ID
    assert len(await w.service.photos(report.id)) == 2
    assert prompt.text


async def test_anonymous_access_grievance_everywhere(bot, tg):
    w = await World(bot, tg).setup()
    in_group = w.group.chat(w.courier_user)
    in_group.skip()
    await in_group.send("/report")
    await in_group.expect_message(contains="点下方按钮开始")
    url = await in_group.press("私聊反映")
    chat = w.courier
    await chat.send("/start " + url.split("?start=")[1])
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("诉求")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("进门难")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send_voice()  # riders are on bikes: a voice note instead of text
    await chat.expect_message(contains="哪个小区")
    await chat.send("西溪花园")
    await chat.expect_message(contains="物业公司")
    await chat.send("绿城物业")
    await chat.expect_message(contains="照片")
    await (await chat.press("跳过")).wait()
    await chat.expect_message(contains="不方便说明")
    await chat.send("跳过")
    await chat.expect_message(contains="不填写地点")
    await chat.expect_message(contains="是否匿名")
    await (await chat.press("匿名反映")).wait()
    caution = await chat.expect_message(contains="可能让人认出你")
    assert "声音" in caution.text and "位置" not in caution.text  # a voice note, no spot was given
    await (await chat.press("知道了，继续")).wait()
    summary = await chat.expect_message(contains="请确认")
    assert "西溪花园" in summary.text and "绿城物业" in summary.text and "语音" in summary.text
    await (await chat.press("提交")).wait()
    await chat.expect_message(contains="G-0001")
    await bot.settle()

    # Card: 匿名, never the name, username or id.
    card = await w.card("G-0001")
    assert "匿名" in card.text
    for secret in ("小王", "wangxg", str(COURIER_ID)):
        assert secret not in card.text
    assert any(m.kind == "voice" for m in w.mod.messages)
    # /reports list: no reporter either; hotspots group the compound.
    await w.mod.send("/reports")
    listing = await w.mod.expect_message(contains="反映列表")
    assert "G-0001" in listing.text and "西溪花园（绿城物业）：1 次" in listing.text
    assert "小王" not in listing.text and "wangxg" not in listing.text
    # Export: 匿名 too.
    buffer = io.StringIO()
    await w.service.export_csv(bot.clock.now().date(), buffer)
    assert "匿名" in buffer.getvalue() and "wangxg" not in buffer.getvalue()
    # Still told of each change.
    await (await w.mod.press("受理", message=card)).wait()
    notice = await chat.expect_message(contains="G-0001")
    assert "已受理" in notice.text


async def test_quick_path_photo_then_location(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/start")
    await chat.expect_message(contains="你好")
    await chat.send_photo()
    await chat.expect_message(contains="收到照片")
    await chat.share_location(LAT, LON)
    await chat.expect_message(contains="位置已记录")
    await chat.expect_message(contains="请选择分类")
    await (await chat.press("井盖")).wait()
    summary = await chat.expect_message(contains="请确认")
    assert "照片 1 张" in summary.text and "位置" in summary.text
    await (await chat.press("提交")).wait()
    await chat.expect_message(contains="H-0001")
    report = await w.service.get_by_ref("H-0001")
    assert report.category == "manhole" and report.lat == pytest.approx(LAT)


async def test_restart_mid_draft_keeps_it(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit()
    await (await chat.press("积水")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("地下通道积水半米深")
    await chat.expect_message(contains="照片")
    await bot.restart()
    await chat.send_photo()
    await chat.expect_message(contains="第 1 张")
    await (await chat.press("完成")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.send("文一路地下通道")
    await chat.expect_message(contains="地点已记录")
    summary = await chat.expect_message(contains="请确认")
    assert "地下通道积水半米深" in summary.text and "积水" in summary.text
    await (await chat.press("提交")).wait()
    await chat.expect_message(contains="H-0001")


async def test_edit_and_cancel(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await _file_hazard(chat, photos=0)
    await chat.expect_message(contains="请确认")
    await (await chat.press("修改")).wait()
    await chat.expect_edit(contains="修改哪一项")
    await (await chat.press("描述")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("改过的描述")
    summary = await chat.expect_message(contains="请确认")
    assert "改过的描述" in summary.text
    await (await chat.press("取消")).wait()
    await chat.expect_message(contains="已取消")
    assert await w.service.get_by_ref("H-0001") is None
    # The old summary's buttons are dead now.
    answer = await (await chat.press_data("rp:sum:ok")).wait()
    assert answer.show_alert and "过期" in answer.text
    # /cancel anywhere.
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await chat.send("/cancel")
    await chat.expect_message(contains="已取消")


# -- bad input and limits ---------------------------------------------------------------------------


async def test_refusals_keep_the_draft(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await chat.send("隐患")  # typing instead of pressing
    await chat.expect_message(contains="请点上方的按钮")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit()
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("坑" * 501)
    await chat.expect_message(contains="最多 500 个字，你发送了 501 个字")
    await chat.send_sticker()
    await chat.expect_message(contains="文字描述或一条语音")
    await chat.send("坑很深")
    await chat.expect_message(contains="照片")
    await chat.send_sticker()
    await chat.expect_message(contains="这里需要照片")
    await chat.send_document("photo.jpg", mime_type="image/jpeg")
    await chat.expect_message(contains="这里需要照片")
    await chat.send("没有照片")
    await chat.expect_message(contains="这里需要照片")
    for _ in range(3):
        await chat.send_photo()
    await chat.expect_message(contains="在哪里")  # the third photo moves on by itself
    await chat.share_location(39.9042, 116.4074)  # Beijing: outside the service area
    await chat.expect_message(contains="不在服务范围内")
    await chat.send("跳过")  # a hazard needs a place
    await chat.expect_message(contains="隐患需要位置")
    await chat.share_location(LAT, LON)
    await chat.expect_message(contains="位置已记录")
    summary = await chat.expect_message(contains="请确认")
    assert "坑很深" in summary.text and "照片 3 张" in summary.text


async def test_daily_limit(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    for i in range(3):
        await _file_hazard(chat, description=f"第{i}个坑", lat=LAT + i * 0.01, photos=0)
        await chat.expect_message(contains="请确认")
        await (await chat.press("提交")).wait()
        await chat.expect_message(contains="已提交")
    await chat.send("/report")
    await chat.expect_message(contains="今天已提交 3 条反映，已达上限")
    await chat.send_photo()  # the quick path too
    await chat.expect_message(contains="已达上限")
    await bot.advance(hours=24)
    await chat.send("/report")
    await chat.expect_message(contains="今天还可以提交 3 条")


async def test_group_never_collects_grievances(bot, tg):
    w = await World(bot, tg).setup()
    in_group = w.group.chat(w.courier_user)
    in_group.skip()
    await in_group.send("/report")
    msg = await in_group.expect_message(contains="点下方按钮开始")
    assert msg.button("私聊反映").get("url", "").startswith("https://t.me/")  # a link, no callback
    await in_group.send("/myreports")
    await in_group.expect_message(contains="私聊中查看")


# -- moderators -----------------------------------------------------------------------------------


async def _filed(w: World, chat, **kw):
    await _file_hazard(chat, **kw)
    await chat.expect_message(contains="请确认")
    await (await chat.press("提交")).wait()
    done = await chat.expect_message(contains="已提交")
    ref = (
        done.text.split("编号 ")[1].split("。")[0]
        if "编号" in done.text
        else done.text.split("as ")[1].split(".")[0]
    )
    await w.bot.settle()
    return ref, await w.card(ref)


async def test_every_moderator_action_and_notices(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    ref, card = await _filed(w, chat)
    # 受理 -> the reporter is told, with points for a valid hazard tip.
    answer = await (await w.mod.press("受理", message=card)).wait()
    assert "已受理" in answer.text
    edited = await w.mod.expect_edit(contains="状态：已受理", message_id=card.message_id)
    assert edited.buttons == [["·", "处理中", "已解决"], ["驳回", "标记重复", "↩️ 撤销"]]
    notice = await chat.expect_message(contains=ref)
    assert "已受理" in notice.text and "5 志愿分" in notice.text
    assert await points.balance(bot.db, COURIER_ID) == 5
    # 处理中
    await (await w.mod.press("处理中", message=card)).wait()
    await w.mod.expect_edit(contains="状态：处理中")
    await chat.expect_message(contains="正在处理中")
    # 已解决 asks for a note (ForceReply), the reply resolves it.
    answer = await (await w.mod.press("已解决", message=card)).wait()
    prompt = await w.mod.expect_message(contains="请回复这条消息")
    assert (prompt.markup or {}).get("force_reply") is True
    await w.mod.reply_to(prompt, "已联系市政修补")
    await w.mod.expect_message(contains="已标记为「已解决」")
    await w.mod.expect_edit(contains="已联系市政修补", message_id=card.message_id)
    resolved = await chat.expect_message(contains="已处理完毕")
    assert "已联系市政修补" in resolved.text and "已解决了吗" in resolved.text
    assert resolved.labels == ["是", "没有"]
    assert await points.balance(bot.db, COURIER_ID) == 5  # credited once
    # 没有 -> reopened; the moderators hear of it.
    await (await chat.press("没有", message=resolved)).wait()
    await chat.expect_edit(contains="已重新打开")
    reopened = await w.card("重新打开")
    assert ref in reopened.text and "受理" in reopened.labels
    # 驳回 with a note.
    await (await w.mod.press("驳回", message=reopened)).wait()
    prompt = await w.mod.expect_message(contains="请回复这条消息")
    await w.mod.reply_to(prompt, "经核实不属实")
    await w.mod.expect_message(contains="已标记为「已驳回」")
    rejected = await chat.expect_message(contains="未予受理")
    assert "经核实不属实" in rejected.text
    events = await w.service.events((await w.service.get_by_ref(ref)).id)
    assert [e.action for e in events] == ["submit", "ack", "progress", "resolve", "reopen", "reject"]
    assert all(e.actor_id == MOD_ID for e in events if e.action in ("ack", "progress", "resolve", "reject"))


async def test_duplicate_button_and_notice_in_english(bot, tg):
    w = await World(bot, tg).setup()
    first, _ = await _filed(w, w.courier)
    w.mod.skip()
    en = w.en
    await en.send("/report")
    await en.expect_message(contains="What would you like")
    await (await en.press("Hazard tip")).wait()
    await en.expect_edit()
    await (await en.press("Flooding")).wait()
    await en.expect_message(contains="Describe")
    await en.send("Water under the bridge")
    await en.expect_message(contains="photos")
    await (await en.press("Skip")).wait()
    await en.expect_message(contains="Where is it")
    await en.send("Wenyi Road underpass")
    await en.expect_message(contains="Place saved")
    await en.expect_message(contains="Please check")
    await (await en.press("Submit")).wait()
    await en.expect_message(contains="H-0002")
    await bot.settle()
    card = await w.card("H-0002")
    await (await w.mod.press("标记重复", message=card)).wait()
    prompt = await w.mod.expect_message(contains="重复的那条反映的编号")
    await w.mod.reply_to(prompt, "H-0099")
    await w.mod.expect_message(contains="找不到编号")
    await w.mod.reply_to(prompt, first)  # the prompt stays open after a wrong reference
    await w.mod.expect_message(contains="已标记为「重复」")
    await w.mod.expect_edit(contains=f"与 {first} 为同一问题", message_id=card.message_id)
    notice = await en.expect_message(contains="H-0002")
    assert f"same problem as {first}" in notice.text


async def test_concurrent_presses_one_wins(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    first = await w.mod.press("受理", message=card)
    second = await w.mod2.press("受理", message=card)
    a, b = await first.wait(), await second.wait()
    assert sorted([a.show_alert, b.show_alert]) == [False, True]
    loser = b if b.show_alert else a
    assert "Acknowledged" in loser.text or "已受理" in loser.text
    events = await w.service.events((await w.service.get_by_ref(ref)).id)
    assert [e.action for e in events].count("ack") == 1
    # Pressing again changes nothing twice.
    again = await (await w.mod.press("处理中", message=card)).wait()
    again2 = await (await w.mod.press_data(f"rp:st:{events[0].report_id}:progress", card.message_id)).wait()
    assert not again.show_alert and again2.show_alert
    await w.courier.expect_message(contains="已受理")
    await w.courier.expect_message(contains="正在处理中")
    await w.courier.expect_no_message()


async def test_forged_and_foreign_buttons_change_nothing(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    report = await w.service.get_by_ref(ref)
    # A courier (no role) forging the moderator button in their private chat.
    answer = await (await w.courier.press_data(f"rp:st:{report.id}:ack")).wait()
    assert answer.show_alert and "没有权限" in answer.text
    for data in ("rp:st:999:ack", f"rp:st:{report.id}:explode", "rp:st:x", "rp:fb:abc:y"):
        answer = await (await w.mod.press_data(data, card.message_id)).wait()
        assert answer.show_alert, data
    # Someone else answering the reporter's 已解决了吗? buttons.
    await (await w.mod.press("已解决", message=card)).wait()
    prompt = await w.mod.expect_message(contains="请回复这条消息")
    # Another moderator replying to a prompt that is not theirs.
    await w.mod2.reply_to(prompt, "not mine")
    await w.mod2.expect_message(contains="expired")
    await w.mod.reply_to(prompt, "修好了")
    await w.mod.expect_message(contains="已解决")
    await bot.settle()
    other = w.other
    await other.send("/start")
    await other.expect_message()
    answer = await (await other.press_data(f"rp:fb:{report.id}:n")).wait()
    assert answer.show_alert and "只有反映人本人" in answer.text
    assert (await w.service.get(report.id)).status == "resolved"
    # The reporter confirms: thanked once, the buttons go away, the status stays.
    resolved = await w.courier.expect_message(contains="已解决了吗")
    await (await w.courier.press("是", message=resolved)).wait()
    confirmed = await w.courier.expect_edit(contains="感谢确认")
    assert not confirmed.inline
    again = await (await w.courier.press_data(f"rp:fb:{report.id}:y", resolved.message_id)).wait()
    assert again.show_alert and "已确认" in again.text
    assert (await w.service.get(report.id)).status == "resolved"


async def test_duplicate_prompt_adds_a_voice(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    other = w.other
    await _file_hazard(other, lat=LAT + 0.0002)  # ~22 m away, same category
    ask = await other.expect_message(contains=f"是否与 {ref} 相同")
    assert "米内" in ask.text
    await (await other.press("是同一个")).wait()
    await other.expect_message(contains=f"已为 {ref} +1")
    assert await w.service.get_by_ref("H-0002") is None
    await bot.settle()
    # The supporter follows the report from now on.
    await (await w.mod.press("受理", message=card)).wait()
    follow = await other.expect_message(contains=ref)
    assert "你关注的问题" in follow.text
    await w.mod.expect_edit(contains="另有 1 人")


async def test_escalation_once_a_day(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    await bot.advance(hours=23)
    await w.mod.expect_no_message()
    await bot.advance(hours=1, minutes=1)
    # One digest in the moderators' group, naming the report with a button that opens its card.
    digest = await w.mod.expect_message(contains="未受理提醒")
    assert "1 条反映" in digest.text and ref in digest.text and "/reports" in digest.text
    assert [label for label, _ in digest.inline] == [ref]
    await bot.advance(hours=2)
    await w.mod.expect_no_message()
    await bot.advance(hours=22)
    digest = await w.mod.expect_message(contains="未受理提醒")
    await w.mod.expect_no_message()
    # Opening the report from the digest and acting on it stops it; the original card is updated too.
    await (await w.mod.press(ref, message=digest)).wait()
    opened = await w.card(ref)
    await (await w.mod.press("受理", message=opened)).wait()
    await w.mod.expect_edit(contains="已受理", message_id=card.message_id)
    await bot.advance(hours=24)
    await w.mod.expect_no_message()


async def test_myreports_and_reports_filters(bot, tg):
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier)
    await w.courier.send("/myreports")
    mine = await w.courier.expect_message(contains="我反映的问题")
    assert ref in mine.text and "待受理" in mine.text
    # Couriers may not list everyone's reports.
    await w.courier.send("/reports")
    await w.courier.expect_message(contains="没有权限")
    await w.mod.send("/reports 诉求")
    listing = await w.mod.expect_message(contains="反映列表")
    assert ref not in listing.text and "共 0 条" in listing.text
    await (await w.mod.press("隐患随手拍", message=listing)).wait()
    edited = await w.mod.expect_edit(contains="反映列表")
    assert ref in edited.text
    await w.mod.send(f"/reports {ref}")
    card = await w.card(ref)
    await (await w.mod.press("受理", message=card)).wait()
    await w.mod.expect_edit(contains="已受理", message_id=card.message_id)
    await w.mod.send("/reports 已受理")
    assert ref in (await w.mod.expect_message(contains="反映列表")).text


async def test_moderator_scoped_to_another_area(bot, tg):
    w = await World(bot, tg).setup()
    scoped_user = tg.user(5003, "翠苑社工", started=True)
    scoped = w.mods.chat(scoped_user)
    await bot.grant(5003, "moderator", area="翠苑")
    await bot.core.db.execute("UPDATE groups SET area = '蒋村' WHERE chat_id = ?", (GROUP_ID,))
    in_group = w.group.chat(w.courier_user)
    in_group.skip()
    await in_group.send("/report")
    await in_group.expect_message(contains="点下方按钮开始")
    url = await in_group.press("私聊反映")
    chat = w.courier
    await chat.send("/start " + url.split("?start=")[1])
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit()
    await (await chat.press("路灯")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("路灯不亮")
    await chat.expect_message(contains="照片")
    await (await chat.press("跳过")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.share_location(LAT, LON)
    await chat.expect_message(contains="请确认")
    await (await chat.press("提交")).wait()
    await chat.expect_message(contains="H-0001")
    await bot.settle()
    card = await w.card("H-0001")
    answer = await (await scoped.press("受理", message=card)).wait()
    assert answer.show_alert and "片区" in answer.text
    assert (await w.service.get_by_ref("H-0001")).status == "new"
    scoped.skip()
    await scoped.send("/reports")
    listing = await scoped.expect_message(contains="反映列表")
    assert "H-0001" not in listing.text and "共 0 条" in listing.text
    await scoped.send("/reports H-0001")
    await scoped.expect_message(contains="片区")


# -- review fixes ---------------------------------------------------------------------------------


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_steps_without_their_draft_end_the_flow(bot, tg, caplog):
    """The draft was dropped (e.g. another feature's /cancel) while the conversation stayed in a step."""
    w = await World(bot, tg).setup()
    chat = w.courier

    def wipe() -> None:
        bot.app.user_data[COURIER_ID]["drafts"].clear()

    # A typed answer (the description step).
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")
    wipe()
    await chat.send("文三路有个大坑")
    expired = await chat.expect_message(contains="草稿已失效")
    assert expired.reply_keyboard  # back to the main menu
    # A button (the kind step) and the summary's 提交.
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    wipe()
    answer = await (await chat.press("隐患随手拍")).wait()
    assert answer.show_alert and "过期" in answer.text
    await _file_hazard(chat, photos=0)
    await chat.expect_message(contains="请确认")
    wipe()
    answer = await (await chat.press("提交")).wait()
    assert answer.show_alert and "过期" in answer.text
    assert await w.service.get_by_ref("H-0001") is None
    # The quick path's location step.
    await chat.send_photo()
    await chat.expect_message(contains="收到照片")
    wipe()
    # Without its draft the location is left to 📍 nearest stations; a typed place ends the flow.
    await chat.share_location(LAT, LON)
    assert "驿站" in (await chat.expect_message()).text
    await chat.send("文三路")
    await chat.expect_message(contains="草稿已失效")
    # The flow really ended: a new one starts cleanly.
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    assert not _errors(caplog)


async def test_quick_path_caption_too_long_is_explained(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/start")
    await chat.expect_message(contains="你好")
    await chat.send_photo(caption="坑" * 600)
    refused = await chat.expect_message(contains="照片说明太长了")
    assert "最多 500 个字" in refused.text and "600" in refused.text and "照片已保留" in refused.text
    await chat.expect_message(contains="收到照片")
    await chat.share_location(LAT, LON)
    await chat.expect_message(contains="位置已记录")
    await chat.expect_message(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    summary = await chat.expect_message(contains="请确认")
    assert "照片 1 张" in summary.text and "描述：（无）" in summary.text
    assert "超过 500 字未保存" in summary.text
    # The way to add it: 修改 -> 描述.
    await (await chat.press("修改")).wait()
    await chat.expect_edit(contains="修改哪一项")
    await (await chat.press("描述")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("文三路大坑")
    summary = await chat.expect_message(contains="请确认")
    assert "描述：文三路大坑" in summary.text and "未保存" not in summary.text
    await (await chat.press("提交")).wait()
    await chat.expect_message(contains="H-0001")
    report = await w.service.get_by_ref("H-0001")
    assert report.description == "文三路大坑" and len(await w.service.photos(report.id)) == 1


async def test_forged_ids_get_a_clear_answer(bot, tg, caplog):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    huge = "9" * 20
    for data in (f"rp:st:{huge}:ack", "rp:st:²:ack", "rp:st:٣:ack", "rp:fb:²:y", f"rp:fb:{huge}:n"):
        answer = await (await w.mod.press_data(data, card.message_id)).wait()
        assert answer.show_alert and "过期" in answer.text, data
    await w.mod.send("/reports")
    listing = await w.mod.expect_message(contains="反映列表")
    for data in (f"rp:ls:p:{huge}", "rp:ls:p:²"):
        answer = await (await w.mod.press_data(data, listing.message_id)).wait()
        assert answer.show_alert and "过期" in answer.text, data
    chat = w.courier
    for link in ("/start report_²", f"/start report_-{huge}"):
        await chat.send(link)
        await chat.expect_message(contains="过期")
    assert (await w.service.get_by_ref(ref)).status == "new"
    assert not _errors(caplog)


async def test_edited_messages_do_not_answer_a_step(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit()
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")
    described = await chat.send("坑很深")
    await chat.expect_message(contains="照片")
    await (await chat.press("跳过")).wait()
    await chat.expect_message(contains="在哪里")
    # Editing the description message now must not be taken as the place (nor as anything else).
    edited = {**described, "text": "文三路与学院路口", "edit_date": described["date"] + 5}
    tg.server.enqueue_update("edited_message", edited)
    await bot.settle()
    await chat.expect_no_message()
    await chat.send("文一路地下通道")
    await chat.expect_message(contains="地点已记录：文一路地下通道")
    summary = await chat.expect_message(contains="请确认")
    assert "坑很深" in summary.text and "文三路与学院路口" not in summary.text


async def test_scoped_moderator_sees_hotspots_of_their_areas(bot, tg):
    w = await World(bot, tg).setup()
    scoped_user = tg.user(5003, "翠苑社工", started=True)
    scoped = w.mods.chat(scoped_user)
    await bot.grant(5003, "moderator", area="翠苑")
    draft = {"kind": "grievance", "category": "access", "description": "保安不让电动车进"}
    await w.service.submit(
        COURIER_ID, ReportDraft(**draft, area="翠苑", compound="翠苑一区", property_company="翠苑物业")
    )
    await w.service.submit(
        OTHER_ID, ReportDraft(**draft, area="蒋村", compound="西溪花园", property_company="绿城物业")
    )
    scoped.skip()
    await scoped.send("/reports")
    listing = await scoped.expect_message(contains="反映列表")
    assert "翠苑一区（翠苑物业）：1 次" in listing.text
    assert "西溪花园" not in listing.text
    w.mod.skip()
    await w.mod.send("/reports")  # a moderator everywhere sees both
    listing = await w.mod.expect_message(contains="反映列表：共 2 条")
    assert "翠苑一区" in listing.text and "西溪花园" in listing.text


async def test_duplicate_prompt_skips_own_reports_only(bot, tg):
    """The nearest open hazard is the courier's own: another courier's one nearby is still offered."""
    w = await World(bot, tg).setup()
    theirs = await w.service.submit(
        OTHER_ID,
        ReportDraft(kind="hazard", category="road_damage", description="坑", lat=LAT + 0.0002, lon=LON),
    )
    await w.service.submit(
        COURIER_ID, ReportDraft(kind="hazard", category="road_damage", description="坑", lat=LAT, lon=LON)
    )
    chat = w.courier
    await _file_hazard(chat, photos=0)
    ask = await chat.expect_message(contains=f"是否与 {theirs.ref} 相同")
    assert "米内" in ask.text
    await (await chat.press("不是，继续提交")).wait()
    await chat.expect_message(contains="请确认")


async def test_category_change_at_summary_asks_duplicate_again(bot, tg):
    w = await World(bot, tg).setup()
    theirs = await w.service.submit(
        OTHER_ID, ReportDraft(kind="hazard", category="flooding", description="积水", lat=LAT, lon=LON)
    )
    chat = w.courier
    await _file_hazard(chat, photos=0)  # 道路破损: no open one nearby
    await chat.expect_message(contains="请确认")
    await (await chat.press("修改")).wait()
    await chat.expect_edit(contains="修改哪一项")
    await (await chat.press("分类")).wait()
    await chat.expect_message(contains="请选择分类")
    await (await chat.press("积水")).wait()
    await chat.expect_edit(contains="积水")
    await chat.expect_message(contains=f"是否与 {theirs.ref} 相同")
    await (await chat.press("是同一个")).wait()
    await chat.expect_message(contains=f"已为 {theirs.ref} +1")
    assert (await w.service.get(theirs.id)).supporters == 1


async def test_quick_photo_waits_briefly_then_location_goes_to_stations(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/start")
    await chat.expect_message(contains="你好")
    await chat.send_photo()
    prompt = await chat.expect_message(contains="收到照片")
    assert "10 分钟" in prompt.text
    assert prompt.button("📍 发送位置").get("request_location") is True
    assert "❌ 取消" in prompt.labels
    await bot.advance(minutes=11)
    # Too late for the photo: the location asks for the nearest stations.
    await chat.share_location(LAT, LON)
    answer = await chat.expect_message()
    assert "驿站" in answer.text and "位置已记录" not in answer.text
    # Typed text is no hazard place: the stale draft is dropped, said once.
    await chat.send("文三路")
    gone = await chat.expect_message(contains="已自动清除")
    assert "地点已记录" not in gone.text
    assert "reports" not in (bot.app.user_data.get(COURIER_ID) or {}).get("drafts", {})


async def test_quick_photo_cancel_button(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send_photo()
    await chat.expect_message(contains="收到照片")
    await chat.send("❌ 取消")
    await chat.expect_message(contains="已取消")
    await chat.share_location(LAT, LON)
    assert "驿站" in (await chat.expect_message()).text


async def test_unsubmitted_summary_is_shown_again_and_listed(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await _file_hazard(chat, photos=0)
    await chat.expect_message(contains="请确认")
    # Typing or a photo at the summary: the card comes again, with its buttons.
    await chat.send("好了吗")
    await chat.expect_message(contains="还没有提交")
    card = await chat.expect_message(contains="请确认")
    assert "✅ 提交" in [label for label, _ in card.inline]
    await chat.send_photo()
    await chat.expect_message(contains="还没有提交")
    await chat.expect_message(contains="请确认")
    # /myreports mentions the draft and opens it.
    await chat.send("/myreports")
    mine = await chat.expect_message(contains="还没提交的反映草稿")
    assert "你还没有反映过问题" in mine.text
    await (await chat.press("打开草稿", message=mine)).wait()
    again = await chat.expect_message(contains="请确认")
    await (await chat.press("提交", message=again)).wait()
    await chat.expect_message(contains="H-0001")
    await chat.send("/myreports")
    mine = await chat.expect_message(contains="我反映的问题")
    assert "草稿" not in mine.text
    # The old draft button is dead now.
    answer = await (await chat.press_data("rp:dr:open")).wait()
    assert answer.show_alert


async def _to_description(chat):
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")


async def test_photo_with_caption_at_description_step(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await _to_description(chat)
    await chat.send_photo(caption="文三路有个大坑")
    step = await chat.expect_message(contains="第 1 张")
    assert [label for label, _ in step.inline] == ["完成"]
    # A caption at the photo step when there already is a description: said, not lost silently.
    await chat.send_photo(caption="另一句")
    await chat.expect_message(contains="没有加入描述")
    await chat.expect_message(contains="第 2 张")
    await (await chat.press("完成")).wait()
    ask = await chat.expect_message(contains="在哪里")
    # A hazard needs a place: no 跳过 button.
    assert "跳过" not in ask.labels and "📍 发送位置" in ask.labels
    await chat.share_location(LAT, LON)
    await chat.expect_message(contains="位置已记录")
    summary = await chat.expect_message(contains="请确认")
    assert "文三路有个大坑" in summary.text and "照片 2 张" in summary.text and "另一句" not in summary.text


async def test_caption_at_photo_step_fills_an_empty_description(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await _to_description(chat)
    await chat.send_voice()
    await chat.expect_message(contains="照片")
    await chat.send_photo(caption="井盖不见了")
    await chat.expect_message(contains="作为描述保存")
    await chat.expect_message(contains="第 1 张")
    await (await chat.press("完成")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.send("文一路")
    await chat.expect_message(contains="地点已记录")
    summary = await chat.expect_message(contains="请确认")
    assert "井盖不见了" in summary.text and "语音" in summary.text


async def test_myreports_shows_own_report_with_history(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    await (await w.mod.press("受理", message=card)).wait()
    await w.mod.expect_edit(contains="已受理", message_id=card.message_id)
    await (await w.mod.press("已解决", message=card)).wait()
    prompt = await w.mod.expect_message(contains="写一句说明")
    await w.mod.reply_to(prompt, "已联系市政修补")
    await bot.settle()
    await w.courier.send("/myreports")
    mine = await w.courier.expect_message(contains="我反映的问题")
    await (await w.courier.press(ref, message=mine)).wait()
    view = await w.courier.expect_message(contains="进展记录")
    assert ref in view.text and "已受理" in view.text and "已解决" in view.text
    assert "已联系市政修补" in view.text and "社工小林" not in view.text
    # The compact form, and nothing about other couriers' reports.
    await w.courier.send(f"/myreports {ref}")
    assert "进展记录" in (await w.courier.expect_message(contains=ref)).text
    await w.other.send(f"/myreports {ref}")
    assert "找不到" in (await w.other.expect_message()).text
    report = await w.service.get_by_ref(ref)
    answer = await (await w.other.press_data(f"rp:my:{report.id}")).wait()
    assert answer.show_alert and "过期" in answer.text


# -- moderator prompts and the /reports card --------------------------------------------------------


async def test_prompt_is_selective_and_an_error_answer_takes_the_retry(bot, tg):
    w = await World(bot, tg).setup()
    first, _ = await _filed(w, w.courier)
    second, card = await _filed(w, w.courier, description="另一个坑在文二路")
    await (await w.mod.press("标记重复", message=card)).wait()
    prompt = await w.mod.expect_message(contains="重复的那条反映的编号")
    assert prompt.markup == {"force_reply": True, "selective": True}
    assert any(e.get("type") == "text_mention" for e in prompt.entities)
    await w.mod.reply_to(prompt, "G-9999")
    error = await w.mod.expect_message(contains="找不到编号")
    assert (error.markup or {}).get("force_reply") is True
    await w.mod.reply_to(error, second)  # a reply to the error answer is the retry
    again = await w.mod.expect_message(contains="不能标记为与自己重复")
    assert (again.markup or {}).get("force_reply") is True
    await w.mod.reply_to(again, first)
    await w.mod.expect_message(contains="已标记为「重复」")
    await w.mod.expect_edit(contains=f"与 {first} 为同一问题", message_id=card.message_id)
    # Done: the prompt and its error answers are no longer pending.
    await w.mod.reply_to(prompt, first)
    await w.mod.expect_message(contains="已失效")
    events = await w.service.events((await w.service.get_by_ref(second)).id)
    assert [e.action for e in events].count("duplicate") == 1


async def test_private_chat_plain_text_answers_the_pending_prompt(bot, tg):
    w = await World(bot, tg).setup()
    ref, group_card = await _filed(w, w.courier)
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    await (await mod.press("驳回", message=card)).wait()
    prompt = await mod.expect_message(contains="请回复这条消息")
    assert (prompt.markup or {}).get("selective") is True
    await mod.send("说" * 1000)  # plain text, too long: the error is a prompt again
    error = await mod.expect_message(contains="说明太长了")
    assert (error.markup or {}).get("force_reply") is True
    # Meanwhile another moderator acts: the plain-text retry changes nothing twice.
    await (await w.mod2.press("受理", message=group_card)).wait()
    await mod.send("经核实不属实")
    await mod.expect_message(contains="已标记为「已驳回」")
    await w.mod2.expect_edit(contains="状态：已驳回", message_id=group_card.message_id)
    events = await w.service.events((await w.service.get_by_ref(ref)).id)
    assert [e.action for e in events] == ["submit", "ack", "reject"]
    # Nothing pending any more: plain text is not taken as a note.
    await mod.send("随便说一句")
    await w.courier.expect_message(contains="未予受理")
    events = await w.service.events((await w.service.get_by_ref(ref)).id)
    assert [e.action for e in events] == ["submit", "ack", "reject"]


async def test_reports_card_comes_with_photos_pin_and_list_buttons(bot, tg):
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier, photos=2)
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    assert "见上方" not in card.text and "照片 2 张" in card.text
    kinds = [m.kind for m in mod.messages]
    assert kinds.count("photo") == 2 and kinds.count("location") == 1
    assert next(m for m in mod.messages if m.kind == "location").location == pytest.approx((LAT, LON))
    assert "受理" in card.labels
    await mod.send("/reports")
    listing = await mod.expect_message(contains="反映列表")
    assert ref in listing.labels
    await (await mod.press(ref, message=listing)).wait()
    opened = await mod.expect_message(contains="状态：")
    assert ref in opened.text and "受理" in opened.labels
    await (await mod.press("受理", message=opened)).wait()
    await mod.expect_edit(contains="状态：已受理", message_id=opened.message_id)


async def test_cancel_drops_a_pending_moderator_note(bot, tg):
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier)
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    await (await mod.press("驳回", message=card)).wait()
    await mod.expect_message(contains="请回复这条消息")
    await mod.send("/cancel")
    await mod.expect_message()
    await mod.send("文三路")  # later plain text is no longer taken as the rejection note
    await mod.expect_message()
    report = await w.service.get_by_ref(ref)
    assert report.status not in ("rejected",)
    assert [e.action for e in await w.service.events(report.id)] == ["submit"]


async def test_forgotten_note_prompt_never_takes_later_text(bot, tg):
    """A moderator ignores the note prompt in private: a later command, or text after 10 minutes, is
    never recorded as the note (the report keeps its state)."""
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier)
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    await (await mod.press("驳回", message=card)).wait()
    await mod.expect_message(contains="请回复这条消息")
    await mod.send("/help")
    await mod.expect_message()
    await mod.send("文二路井盖松动很危险")
    await mod.expect_message()
    report = await w.service.get_by_ref(ref)
    assert [e.action for e in await w.service.events(report.id)] == ["submit"]
    await (await mod.press("驳回", message=card)).wait()
    await mod.expect_message(contains="请回复这条消息")
    await bot.advance(minutes=11)
    await mod.send("翠苑驿站")
    await mod.expect_message()
    assert [e.action for e in await w.service.events(report.id)] == ["submit"]


async def test_card_still_comes_when_a_photo_is_unknown_to_telegram(bot, tg):
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier, photos=1)
    await bot.db.execute("UPDATE report_photos SET file_id = 'gone-file-id'")
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    assert "受理" in card.labels


async def test_anonymous_grievance_may_blur_its_spot(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("诉求")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("停车难")).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("小区门口不让停电动车")
    await chat.expect_message(contains="照片")
    await (await chat.press("跳过")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.share_location(30.25937, 120.13071)
    await chat.expect_message(contains="是否匿名")
    await (await chat.press("匿名反映")).wait()
    caution = await chat.expect_message(contains="可能让人认出你")
    assert "精确位置" in caution.text
    await (await chat.press("📍 位置模糊到约 100 米")).wait()
    summary = await chat.expect_message(contains="请确认")
    assert "已模糊到约 100 米" in summary.text and "30.25937" not in summary.text
    await (await chat.press("提交")).wait()
    await chat.expect_message(contains="已提交")
    report = (await w.service.my_reports(COURIER_ID))[0]
    assert (round(report.lat, 4), round(report.lon, 4)) == (30.2595, 120.1305)  # the cell's centre
