"""End to end: what moderators and couriers ran into in a first week with reports (issue 14)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from bot.reports.service import ReportDraft, ReportService
from tests.test_e2e_reports import COURIER_ID, World, _filed


@pytest.fixture
def config_overrides():
    return {"reports": {"daily_limit": 5}}


# -- a note prompt lives only as long as its decision ----------------------------------------------


async def test_a_later_button_retires_the_note_prompt_in_the_group(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    await (await w.mod.press("已解决", message=card)).wait()
    prompt = await w.mod.expect_message(contains="请回复这条消息")
    await (await w.mod.press("处理中", message=card)).wait()  # changed their mind
    await w.mod.expect_edit(contains="状态：处理中", message_id=card.message_id)
    await w.mod.reply_to(prompt, "已联系市政修补")
    answer = await w.mod.expect_message(contains="已不用回答")
    assert ref in answer.text and "没有改动" in answer.text
    report = await w.service.get_by_ref(ref)
    assert report.status == "in_progress"
    assert [e.action for e in await w.service.events(report.id)] == ["submit", "progress"]
    # The latest decision's prompt is live: a new 已解决 asks again, and its reply resolves.
    await (await w.mod.press("已解决", message=card)).wait()
    again = await w.mod.expect_message(contains="请回复这条消息")
    await w.mod.reply_to(again, "修好了")
    await w.mod.expect_message(contains="已标记为「已解决」")
    assert (await w.service.get(report.id)).status == "resolved"


async def test_a_later_button_retires_the_note_prompt_in_private(bot, tg):
    w = await World(bot, tg).setup()
    ref, _ = await _filed(w, w.courier)
    mod = tg.private(w.mod_user)
    await mod.send(f"/reports {ref}")
    card = await mod.expect_message(contains="状态：")
    await (await mod.press("驳回", message=card)).wait()
    await mod.expect_message(contains="请回复这条消息")
    await (await mod.press("受理", message=card)).wait()
    await mod.expect_edit(contains="状态：已受理", message_id=card.message_id)
    await mod.send("经核实不属实")  # plain text right after: not the rejection note any more
    await mod.expect_message(contains="已不用回答")
    report = await w.service.get_by_ref(ref)
    assert report.status == "acknowledged"
    assert [e.action for e in await w.service.events(report.id)] == ["submit", "ack"]


# -- stable card buttons and undo -------------------------------------------------------------------


def _slot_data(msg, row: int, col: int) -> str:
    return msg.markup["inline_keyboard"][row][col]["callback_data"]


async def test_card_buttons_keep_their_places_across_states(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    assert card.buttons == [["受理", "处理中", "已解决"], ["驳回", "标记重复", "·"]]
    await (await w.mod.press("受理", message=card)).wait()
    acked = await w.mod.expect_edit(contains="状态：已受理", message_id=card.message_id)
    assert acked.buttons == [["·", "处理中", "已解决"], ["驳回", "标记重复", "↩️ 撤销"]]
    await (await w.mod.press("处理中", message=card)).wait()
    doing = await w.mod.expect_edit(contains="状态：处理中", message_id=card.message_id)
    assert doing.buttons == [["·", "·", "已解决"], ["驳回", "标记重复", "↩️ 撤销"]]
    # Pressing where 受理 was does nothing now.
    answer = await (await w.mod.press_data(_slot_data(doing, 0, 0), card.message_id)).wait()
    assert "不可用" in answer.text and not answer.show_alert
    assert (await w.service.get_by_ref(ref)).status == "in_progress"


async def test_undo_a_mistaken_rejection_reporter_hears_only_the_final_state(bot, tg):
    w = await World(bot, tg).setup()
    ref, card = await _filed(w, w.courier)
    await (await w.mod.press("受理", message=card)).wait()
    await w.mod.expect_edit(contains="状态：已受理", message_id=card.message_id)
    await (await w.mod.press("驳回", message=card)).wait()
    prompt = await w.mod.expect_message(contains="请回复这条消息")
    await w.mod.reply_to(prompt, "不属实")
    await w.mod.expect_message(contains="已标记为「已驳回」")
    rejected = await w.mod.expect_edit(contains="状态：已驳回", message_id=card.message_id)
    assert rejected.buttons == [["·", "·", "·"], ["·", "·", "↩️ 撤销"]]
    answer = await (await w.mod.press("撤销", message=rejected)).wait()
    assert "已撤销" in answer.text and "已受理" in answer.text
    back = await w.mod.expect_edit(contains="状态：已受理", message_id=card.message_id)
    assert back.buttons[1][0] == "驳回"
    report = await w.service.get_by_ref(ref)
    assert report.status == "acknowledged"
    events = await w.service.events(report.id)
    assert [e.action for e in events] == ["submit", "ack", "reject", "undo"]
    assert events[2].undone_by == events[3].id and events[3].actor_id == w.mod_user.id
    # The reporter hears of the acknowledgement only, never of the rejection taken back.
    await bot.advance(seconds=60)
    notice = await w.courier.expect_message(contains=ref)
    assert "已受理" in notice.text
    await w.courier.expect_no_message()


async def test_undo_a_duplicate_and_its_limits(bot, tg):
    w = await World(bot, tg).setup()
    first, _ = await _filed(w, w.courier)
    second, card = await _filed(w, w.courier, description="另一个坑在文二路", lat=30.30)
    await (await w.mod.press("标记重复", message=card)).wait()
    prompt = await w.mod.expect_message(contains="重复的那条反映的编号")
    await w.mod.reply_to(prompt, first)
    await w.mod.expect_message(contains="已标记为「重复」")
    dup = await w.mod.expect_edit(contains=f"与 {first} 为同一问题", message_id=card.message_id)
    # Someone without the role cannot undo (forged data in their private chat).
    report = await w.service.get_by_ref(second)
    denied = await (await w.courier.press_data(f"rp:st:{report.id}:undo")).wait()
    assert denied.show_alert and "没有权限" in denied.text
    # Past the undo window: refused, the card stays.
    await bot.advance(minutes=11)
    late = await (await w.mod.press("撤销", message=dup)).wait()
    assert late.show_alert and "不能撤销" in late.text
    assert (await w.service.get(report.id)).status == "duplicate"
    late_card = await w.mod.expect_edit(message_id=card.message_id)
    assert late_card.buttons == []  # nothing left to do on it


async def test_undo_in_time_brings_a_duplicate_back(bot, tg):
    w = await World(bot, tg).setup()
    first, _ = await _filed(w, w.courier)
    second, card = await _filed(w, w.courier, description="另一个坑在文二路", lat=30.30)
    await (await w.mod.press("标记重复", message=card)).wait()
    prompt = await w.mod.expect_message(contains="重复的那条反映的编号")
    await w.mod.reply_to(prompt, first)
    await w.mod.expect_message(contains="已标记为「重复」")
    dup = await w.mod.expect_edit(contains=f"与 {first} 为同一问题", message_id=card.message_id)
    await (await w.mod2.press("撤销", message=dup)).wait()  # another moderator may undo
    back = await w.mod.expect_edit(contains="状态：待受理", message_id=card.message_id)
    assert back.buttons == [["受理", "处理中", "已解决"], ["驳回", "标记重复", "·"]]
    report = await w.service.get_by_ref(second)
    assert report.status == "new" and report.duplicate_of is None


# -- English for moderators -------------------------------------------------------------------------


async def test_private_card_in_the_viewers_language_group_card_in_the_default(bot, tg):
    w = await World(bot, tg).setup()
    ref, group_card = await _filed(w, w.courier)
    assert "状态：待受理" in group_card.text  # the moderators' chat: bot.default_language
    mod2 = tg.private(w.mod2_user)
    await mod2.send(f"/reports {ref}")
    card = await mod2.expect_message(contains="Status: New")
    assert card.buttons == [["Acknowledge", "In progress", "Resolved"], ["Reject", "Duplicate", "·"]]
    await (await mod2.press("Acknowledge", message=card)).wait()
    await mod2.expect_edit(contains="Status: Acknowledged", message_id=card.message_id)
    # The group's card follows in Chinese, whoever pressed.
    await w.mod.expect_edit(contains="状态：已受理", message_id=group_card.message_id)
    # A change made in the group reaches the English private card in English.
    await (await w.mod.press("处理中", message=group_card)).wait()
    await w.mod.expect_edit(contains="状态：处理中", message_id=group_card.message_id)
    await bot.settle()
    edited = await mod2.expect_edit(contains="Status: In progress", message_id=card.message_id)
    assert "↩️ Undo" in edited.labels


async def test_english_texts_use_ascii_brackets(bot, tg):
    w = await World(bot, tg).setup()
    scoped_user = tg.user(5003, "Ann", language_code="en", started=True)
    await bot.grant(5003, "moderator", area="蒋村")
    scoped = tg.private(scoped_user)
    await scoped.send("/me")
    me = await scoped.expect_message(contains="Roles:")
    assert "moderator (蒋村)" in me.text and "（" not in me.text
    mod2 = tg.private(w.mod2_user)
    await mod2.send("/me")
    me = await mod2.expect_message(contains="Roles:")
    assert "moderator (all areas)" in me.text
    # Hotspots in English: "compound (company)".
    await bot.core.service(ReportService).submit(
        COURIER_ID,
        ReportDraft(
            kind="grievance", category="access", description="保安不让进", compound="西溪花园", area="蒋村"
        ),
    )
    await mod2.send("/reports")
    listing = await mod2.expect_message(contains="Access hotspots")
    assert "西溪花园 (not given): 1 time" in listing.text and "（" not in listing.text
    await w.mod.send("/reports")
    listing = await w.mod.expect_message(contains="进门难热点")
    assert "西溪花园（未填写）：1 次" in listing.text


# -- /export --------------------------------------------------------------------------------------


def _csv_rows(msg) -> list[list[str]]:
    assert msg.document.startswith("\ufeff".encode())  # UTF-8 with a BOM: Excel reads Chinese
    return list(csv.reader(io.StringIO(msg.document.decode("utf-8-sig"))))


async def test_export_in_private_since_a_date_and_the_moderators_areas_only(bot, tg):
    w = await World(bot, tg).setup()
    service = bot.core.service(ReportService)
    old = await service.submit(
        COURIER_ID,
        ReportDraft(
            kind="hazard", category="road_damage", description="旧坑", lat=30.26, lon=120.13, area="蒋村"
        ),
    )
    await bot.advance(days=40)
    jc = await service.submit(
        COURIER_ID,
        ReportDraft(
            kind="hazard", category="road_damage", description="蒋村的坑", lat=30.26, lon=120.13, area="蒋村"
        ),
    )
    cy = await service.submit(
        COURIER_ID,
        ReportDraft(
            kind="hazard", category="flooding", description="翠苑积水", lat=30.27, lon=120.12, area="翠苑"
        ),
    )
    await bot.settle()
    # An all-areas moderator: the last 30 days by default, every area.
    mod = tg.private(w.mod_user)
    await mod.send("/export")
    doc = await mod.expect_message(contains="📄")
    assert doc.kind == "document" and doc.file_name.endswith(".csv") and "共 2 条" in doc.text
    rows = _csv_rows(doc)
    assert rows[0][0] == "编号" and {r[0] for r in rows[1:]} == {jc.ref, cy.ref}
    # Since a date: the older report too.
    since = (bot.clock.now() - dt.timedelta(days=41)).date().isoformat()
    await mod.send(f"/export {since}")
    doc = await mod.expect_message(contains="📄")
    assert {r[0] for r in _csv_rows(doc)[1:]} == {old.ref, jc.ref, cy.ref}
    # A moderator of 蒋村 only gets 蒋村, with the columns in their language.
    ann_user = tg.user(5003, "Ann", language_code="en", started=True)
    await bot.grant(5003, "moderator", area="蒋村")
    ann = tg.private(ann_user)
    await ann.send(f"/export {since}")
    doc = await ann.expect_message(contains="📄")
    rows = _csv_rows(doc)
    assert rows[0][0] == "Reference" and [r[0] for r in rows[1:]] == [old.ref, jc.ref]
    assert "蒋村" in doc.text and "2 reports" in doc.text


async def test_export_refusals_and_places(bot, tg):
    w = await World(bot, tg).setup()
    await _filed(w, w.courier)
    mod = tg.private(w.mod_user)
    for bad in ("2026-13-01", "明天", "11/01"):
        await mod.send(f"/export {bad}")
        answer = await mod.expect_message(contains="没看懂日期")
        assert "2026-11-01" in answer.text
    future = (bot.clock.now() + dt.timedelta(days=3)).date().isoformat()
    await mod.send(f"/export {future}")
    await mod.expect_message(contains="还没到")
    # Not a moderator: the standard refusal, no file.
    await w.courier.send("/export")
    await w.courier.expect_message(contains="没有权限")
    assert not any(m.kind == "document" for m in w.courier.messages)
    # In a couriers' group: sent to the private chat instead; in the moderators' chat: right there.
    in_group = w.group.chat(w.mod_user)
    in_group.skip()
    await in_group.send("/export")
    await in_group.expect_message(contains="私聊")
    assert not any(m.kind == "document" for m in in_group.messages)
    await w.mod.send("/export")
    doc = await w.mod.expect_message(contains="📄")
    assert len(_csv_rows(doc)) == 2


# -- an idle draft stops catching text ------------------------------------------------------------


async def _to_description(chat):
    await chat.send("/report")
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("隐患随手拍")).wait()
    await chat.expect_edit(contains="请选择分类")
    await (await chat.press("道路破损")).wait()
    await chat.expect_message(contains="请简单描述")


async def test_idle_draft_lets_text_go_and_report_offers_to_continue(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await _to_description(chat)
    await bot.advance(minutes=31)
    await chat.send("文三路口有个大坑")  # half an hour later: a search, not the description
    answer = await chat.expect_message()
    assert "照片" not in answer.text and "驿站" in answer.text
    await chat.send_photo()  # nothing else takes a photo: say how to go on
    hint = await chat.expect_message(contains="还没提交的反映")
    assert "道路破损" in hint.text and "/report" in hint.text
    # /report offers the kept draft; 继续 asks the step where it stood.
    await chat.send("/report")
    offer = await chat.expect_message(contains="继续上次的反映？")
    assert "道路破损" in offer.text and offer.labels == ["▶️ 继续", "🆕 重新开始"]
    await (await chat.press("继续", message=offer)).wait()
    await chat.expect_message(contains="请简单描述")
    await chat.send("人行道上的井盖不见了")
    await chat.expect_message(contains="照片")
    await (await chat.press("跳过")).wait()
    await chat.expect_message(contains="在哪里")
    await chat.send("文三路口")
    summary = await chat.expect_message(contains="请确认")
    assert "人行道上的井盖不见了" in summary.text and "大坑" not in summary.text


async def test_idle_draft_start_afresh_and_a_busy_draft_keeps_catching(bot, tg):
    w = await World(bot, tg).setup()
    chat = w.courier
    await _to_description(chat)
    await bot.advance(minutes=29)
    await chat.send("文二路积水")  # still in use: the description
    await chat.expect_message(contains="照片")
    await bot.advance(minutes=31)
    await chat.send("/report")
    offer = await chat.expect_message(contains="继续上次的反映？")
    assert "文二路积水" in offer.text
    await (await chat.press("重新开始", message=offer)).wait()
    await chat.expect_message(contains="要反映什么")
    await (await chat.press("诉求")).wait()
    await chat.expect_edit(contains="请选择分类")
    # The old draft is gone: /myreports mentions none beyond the new one's kind.
    await chat.send("/myreports")
    mine = await chat.expect_message()
    assert "文二路积水" not in mine.text
