"""End to end: council meetings through the real Application and the fake Bot API, with the FakeClock.

Scheduling conversation, reminders at their offsets (exactly once, across restarts, late within grace
sent and older dropped), RSVP counts edited on the reminders, topics, .ics files, skip / move / cancel
updating pending reminders, holiday flags, and refusals for non-moderators.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.kit.recurrence import rrule_quarterly_first_monday, rrule_weekly
from bot.meetings.service import MeetingDraft, MeetingService, occ_code, reminder_key
from storage import groups as groups_repo
from storage import meetings as meetings_repo
from storage import outbox as outbox_repo

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
MOD_ID = 2001
OWNER_ID = 2002
GROUP_ID = -100201
AREA = "蒋村街道"
# FakeClock starts at 2026-11-25 02:00 UTC (Wednesday 10:00 in Shanghai).
FIRST = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # Monday 14:30 Shanghai
REMINDER = "议事会提醒"


async def setup_world(bot, tg):
    """A moderator with a started private chat, and a courier group in 蒋村街道 with the bot in it."""
    await bot.grant(MOD_ID, "moderator")
    mod = tg.private(tg.user(MOD_ID, "王社工", started=True))
    owner = tg.user(OWNER_ID, "群主", started=True)
    group = tg.group(GROUP_ID, "蒋村小哥群", creator=owner)
    await group.add_bot(by=owner)
    await bot.settle()
    await groups_repo.set_area(bot.db, GROUP_ID, AREA, bot.clock.now())
    reader = group.chat(owner)
    reader.skip()
    return mod, group, reader


async def weekly_meeting(bot, **changes):
    values = {
        "title": "小哥议事会",
        "first_start": dt.datetime(2026, 11, 30, 14, 30),
        "organizer_id": MOD_ID,
        "rrule": rrule_weekly(0),
        "place": "蒋村驿站",
        "chat_ids": (GROUP_ID,),
    }
    values.update(changes)
    result = await bot.core.service(MeetingService).create(MeetingDraft(**values))
    await bot.settle()
    return result.meeting


async def at(bot, when: dt.datetime) -> None:
    bot.clock.set(when)
    await bot.settle()


async def open_manage(mod, title: str = "小哥议事会"):
    mod.skip()
    await mod.send("/meetings")
    await mod.expect_message(contains="议事会")
    await (await mod.press(f"⚙️ 管理：{title}")).wait()
    return await mod.expect_message(contains="⚙️ 管理")


def reminders_in(chat) -> list:
    return [m for m in chat.messages if REMINDER in (m.text or "")]


async def test_schedule_in_conversation_and_reminders_fire_at_offsets(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("小哥议事会")
    await mod.expect_message(contains="第 2 步")
    await mod.send("11月30日 14:30")
    recur = await mod.expect_message(contains="多久开一次")
    assert "每季度第一个周一 14:30" in recur.labels and "只开这一次" in recur.labels
    await (await mod.press("每周一 14:30")).wait()
    await mod.expect_message(contains="第 4 步")
    await (await mod.press("90分钟")).wait()
    await mod.expect_message(contains="第 5 步")
    await mod.send("蒋村党群服务中心 3 楼")
    await mod.expect_message(contains="第 6 步")
    await (await mod.press("⬜ 蒋村小哥群")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="第 7 步")
    await (await mod.press("默认：1天 + 1小时")).wait()
    await mod.expect_message(contains="第 8 步")
    await (await mod.press("默认：提前20小时")).wait()
    preview = await mod.expect_message(contains="请确认")
    assert "议题截止：开会前20小时" in preview.text
    assert "每周一 14:30" in preview.text and "2026年11月30日（周一） 14:30–16:00" in preview.text
    assert "蒋村小哥群" in preview.text
    confirm = mod.keyboard_message()
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    # a second tap on the old button creates nothing
    twice = await (await mod.press_data("mt:ok", confirm.message_id)).wait()
    assert twice.show_alert
    announcement = await reader.expect_message(contains="小哥议事会")
    assert "每周一 14:30" in announcement.text

    (meeting,) = await meetings_repo.list_active(bot.db)
    assert (
        meeting.organizer_id == MOD_ID and meeting.duration_minutes == 90 and meeting.place.startswith("蒋村")
    )

    # One minute before the 1-day reminder: nothing. At the offset: the reminder with RSVP buttons.
    await at(bot, FIRST - dt.timedelta(days=1, minutes=1))
    await reader.expect_no_message()
    await at(bot, FIRST - dt.timedelta(days=1))
    day = await reader.expect_message(contains=REMINDER)
    assert "1天后开始" in day.text and "参加 0" in day.text and "蒋村党群服务中心" in day.text
    data = [d for _, d in day.inline]
    assert f"mt:rsvp:{meeting.id}:{occ_code(FIRST)}:y" in data and f"mt:ics:{meeting.id}" in data
    await at(bot, FIRST - dt.timedelta(minutes=61))
    await reader.expect_no_message()
    await at(bot, FIRST - dt.timedelta(hours=1))
    hour = await reader.expect_message(contains=REMINDER)
    assert "1小时后开始" in hour.text
    assert len(reminders_in(reader)) == 2


async def test_restart_never_duplicates_and_late_reminders(bot, tg, caplog):
    _mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    await at(bot, FIRST - dt.timedelta(days=1))
    await reader.expect_message(contains=REMINDER)

    # A restart re-plans everything: nothing is sent twice.
    await bot.restart()
    await bot.settle()
    await reader.expect_no_message()
    assert len(reminders_in(reader)) == 1

    # Down across the 1-hour reminder, back 10 minutes late: still sent (within the 15-minute grace).
    await bot.stop()
    bot.clock.set(FIRST - dt.timedelta(minutes=50))
    await bot.start()
    await bot.settle()
    late = await reader.expect_message(contains=REMINDER)
    assert "1小时后开始" in late.text

    # Down across the next Monday's 1-hour reminder, back 20 minutes late: dropped and logged.
    second = FIRST + dt.timedelta(weeks=1)
    await at(bot, second - dt.timedelta(days=1))
    await reader.expect_message(contains=REMINDER)
    await bot.stop()
    bot.clock.set(second - dt.timedelta(minutes=40))
    with caplog.at_level("WARNING"):
        await bot.start()
        await bot.settle()
    await reader.expect_no_message()
    row = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, second, 60, GROUP_ID))
    assert row.state == "expired"
    # Logged by whichever drops it first: the meetings' start-up re-plan or the outbox worker.
    assert re.search(rf"dropped (meeting message )?{re.escape(row.dedup_key)}", caplog.text)
    assert len(reminders_in(reader)) == 3  # both of the first Monday, the 1-day one of the second
    await bot.restart()
    await bot.settle()
    assert len(reminders_in(reader)) == 3


async def test_rsvp_counts_update_on_every_reminder_and_organizer_sees_who(bot, tg):
    mod, group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    await at(bot, FIRST - dt.timedelta(days=1))
    day = await reader.expect_message(contains=REMINDER)
    await at(bot, FIRST - dt.timedelta(hours=1))
    hour = await reader.expect_message(contains=REMINDER)

    a = group.chat(tg.user(2101, "阿强"))
    b = group.chat(tg.user(2102, "小李"))
    answer = await (await a.press("✅ 参加", message=hour)).wait()
    assert "已记录" in answer.text
    edited = await reader.expect_edit(contains="参加 1", message_id=hour.message_id)
    assert "不参加 0" in edited.text and edited.inline == hour.inline  # buttons kept
    # the other reminder of the same occurrence is edited too (through the outbox)
    await bot.settle()
    await reader.expect_edit(contains="参加 1", message_id=day.message_id)

    await (await b.press("❓ 待定", message=day)).wait()
    await reader.expect_edit(contains="待定 1", message_id=day.message_id)
    again = await (await a.press("✅ 参加", message=day)).wait()
    assert "已经回复过" in again.text
    await (await a.press("❌ 不参加", message=hour)).wait()
    final = await reader.expect_edit(contains="不参加 1", message_id=hour.message_id)
    assert "✅ 参加 0 · ❌ 不参加 1 · ❓ 待定 1" in final.text

    # The organizer sees who answered (manage menu in the private chat).
    await open_manage(mod)
    await (await mod.press("👥 回复名单")).wait()
    who = await mod.expect_message(contains="回复")
    assert "不参加（1）：阿强" in who.text and "待定（1）：小李" in who.text

    # After the meeting, answers are closed.
    await at(bot, FIRST + dt.timedelta(hours=2))
    late = await (await b.press("✅ 参加", message=hour)).wait()
    assert late.show_alert and "结束" in late.text
    assert meeting.id > 0


async def test_topics_before_the_deadline_reach_the_organizer(bot, tg):
    mod, group, reader = await setup_world(bot, tg)
    await weekly_meeting(bot)
    courier = group.chat(tg.user(2103, "阿明"))
    await courier.send("/topic")
    usage = await courier.expect_message(contains="/topic")
    assert "小哥议事会" in usage.text
    await courier.send("/topic 东门电动车能否临时停放 10 分钟")
    await courier.expect_message(contains="已收到你的议题")

    # The 1-day reminder invites topics; its 💡 button remembers the occurrence for /topic.
    await at(bot, FIRST - dt.timedelta(days=1))
    day = await reader.expect_message(contains=REMINDER)
    assert "/topic" in day.text
    hint = await (await courier.press("💡 提议题", message=day)).wait()
    assert hint.show_alert and "/topic" in hint.text
    await courier.send("/topic 电梯高峰期能否让骑手先上")
    await courier.expect_message(contains="已收到你的议题")

    # Topics close 20 hours before; the organizer gets the list then, in the private chat.
    mod.skip()
    await at(bot, FIRST - dt.timedelta(hours=20))
    digest = await mod.expect_message(contains="收集到的议题")
    assert "1. 东门电动车能否临时停放 10 分钟（阿明）" in digest.text
    assert "2. 电梯高峰期能否让骑手先上（阿明）" in digest.text
    await courier.send("/topic 太晚了")
    closed = await courier.expect_message(contains="截止")
    assert "截止" in closed.text


async def test_calendar_files_from_meetings_list(bot, tg):
    _mod, group, _reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    courier = group.chat(tg.user(2104, "小周"))
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    assert "1. 小哥议事会 — 2026年11月30日（周一） 14:30–16:00" in listing.text
    await (await courier.press("📅 1. 加入日历")).wait()
    one = await courier.expect_message(contains="")
    while one.kind != "document":
        one = await courier.expect_message()
    assert one.file_name.endswith(".ics")
    (event,) = Calendar.from_ical(one.document).walk("VEVENT")
    assert event.decoded("DTSTART") == FIRST and event.decoded("DTEND") == FIRST + dt.timedelta(minutes=90)
    assert "RRULE" not in event

    await (await courier.press("🗓 1. 更多日期", message=listing)).wait()
    more = await courier.expect_message(contains="接下来的日期")
    await (await courier.press("🔁 小哥议事会：整个系列加入日历", message=more)).wait()
    series = await courier.expect_message()
    while series.kind != "document":
        series = await courier.expect_message()
    cal = Calendar.from_ical(series.document)
    (event,) = cal.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert event.decoded("DTSTART") == dt.datetime(2026, 11, 30, 14, 30, tzinfo=SH)
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    assert str(event["UID"]) == f"meeting-{meeting.id}@xiaoge-bot"


async def test_skip_move_and_cancel_update_pending_reminders(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    second = FIRST + dt.timedelta(weeks=1)

    # Skip the next occurrence from the manage menu: the group is told, its reminders never come.
    await open_manage(mod)
    await (await mod.press("⏭ 跳过下一次")).wait()
    await mod.expect_message(contains="确定取消")
    await (await mod.press("确定跳过")).wait()
    await mod.expect_edit(contains="已跳过")
    await bot.settle()
    notice = await reader.expect_message(contains="这一次取消")
    assert "2026年11月30日" in notice.text
    await at(bot, FIRST - dt.timedelta(hours=1))
    await reader.expect_no_message()

    # Move the following one to Wednesday 15:00: reminders follow the new time.
    await open_manage(mod)
    await (await mod.press("🕑 下一次改期")).wait()
    await mod.expect_message(contains="改到什么时候")
    await mod.send("12月9日 15:00")
    await mod.expect_message(contains="已改到")
    await bot.settle()
    moved = await reader.expect_message(contains="改到")
    assert "2026年12月7日（周一） 14:30" in moved.text and "2026年12月9日（周三） 15:00" in moved.text
    new = dt.datetime(2026, 12, 9, 7, 0, tzinfo=UTC)
    await at(bot, second - dt.timedelta(days=1))
    await reader.expect_no_message()
    await at(bot, new - dt.timedelta(days=1))
    reminder = await reader.expect_message(contains=REMINDER)
    assert "2026年12月9日（周三） 15:00" in reminder.text and "改期" in reminder.text

    # Cancel the whole series: every pending reminder is withdrawn.
    await open_manage(mod)
    await (await mod.press("🗑 取消整个系列")).wait()
    await mod.expect_message(contains="确定取消整个")
    await (await mod.press("确定取消")).wait()
    await mod.expect_edit(contains="已取消")
    await bot.settle()
    await reader.expect_message(contains="已取消")
    await at(bot, new + dt.timedelta(weeks=3))
    await reader.expect_no_message()
    pending = await outbox_repo.pending_with_prefix(bot.db, f"mtg:{meeting.id}:", bot.clock.now())
    assert pending == []


async def test_holiday_flag_when_scheduling_and_move_to_next_working_day(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    await at(bot, dt.datetime(2026, 9, 10, 2, 0, tzinfo=UTC))
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("小哥'益'起说")
    await mod.expect_message(contains="第 2 步")
    await mod.send("10月5日 14:30")
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("每季度第一个周一 14:30")).wait()
    await mod.expect_message(contains="第 4 步")
    await mod.send("1.5h")
    await mod.expect_message(contains="第 5 步")
    await (await mod.press("跳过")).wait()
    await mod.expect_message(contains="第 6 步")
    await (await mod.press(f"⬜ 片区：{AREA}（1 个群）")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="第 7 步")
    await mod.send("2天 1小时")
    await mod.expect_message(contains="第 8 步")
    await mod.send("3天")
    preview = await mod.expect_message(contains="请确认")
    assert "议题截止：开会前3天" in preview.text
    assert "国庆节" in preview.text and "提前提醒：2天、1小时" in preview.text
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    await mod.expect_message(contains="法定节假日")
    flag = await mod.expect_message(contains="2026年10月5日")
    assert "国庆" in flag.text
    await (await mod.press("改到 2026年10月8日（周四） 14:30", message=flag)).wait()
    await mod.expect_edit(contains="已改到")
    await bot.settle()
    await reader.expect_message(contains="改到")
    (meeting,) = await meetings_repo.list_active(bot.db)
    assert meeting.reminder_offsets == (2880, 60) and meeting.areas == (AREA,)
    assert meeting.topic_deadline_minutes == 3 * 1440
    await at(bot, dt.datetime(2026, 10, 6, 6, 30, tzinfo=UTC))  # 2 days before Oct 8 14:30
    reminder = await reader.expect_message(contains=REMINDER)
    assert "2026年10月8日（周四） 14:30" in reminder.text


async def test_outcome_note_goes_to_the_same_groups(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    await weekly_meeting(bot)
    await at(bot, FIRST + dt.timedelta(hours=2))
    reader.skip()
    await open_manage(mod)
    await (await mod.press("📝 发布结果")).wait()
    await mod.expect_message(contains="结果")
    await mod.send("东门开放临停 10 分钟，物业下周装指示牌。")
    await mod.expect_message(contains="已发布到 1 个群")
    await bot.settle()
    note = await reader.expect_message(contains="结果反馈")
    assert "东门开放临停" in note.text and "2026年11月30日" in note.text


async def test_non_moderators_are_refused(bot, tg):
    _mod, group, _reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    courier_user = tg.user(2105, "小吴", started=True)
    courier = tg.private(courier_user)
    await courier.send("/start")
    await courier.expect_message()
    await courier.send("/newmeeting")
    await courier.expect_message(contains="没有权限")
    # forged buttons: cancel the series, skip, holiday move, manage, who answered
    for data in (
        f"mt:cxy:{meeting.id}",
        f"mt:sky:{meeting.id}:{occ_code(FIRST)}",
        f"mt:hol:{meeting.id}:{occ_code(FIRST)}:next",
        f"mt:mg:{meeting.id}",
        f"mt:who:{meeting.id}:{occ_code(FIRST)}",
    ):
        answer = await (await courier.press_data(data)).wait()
        assert answer.show_alert and "没有权限" in answer.text, data
    in_group = group.chat(courier_user)
    await in_group.send("/newmeeting")
    await in_group.expect_message(contains="私聊")
    assert (await meetings_repo.get(bot.db, meeting.id)).active
    assert len(await outbox_repo.pending_with_prefix(bot.db, f"mtg:{meeting.id}:", bot.clock.now())) > 0

    # A moderator of another area may not touch a meeting of 蒋村街道 either.
    await bot.grant(2106, "moderator", "古荡街道")
    other = tg.private(tg.user(2106, "古荡社工", started=True))
    await other.send("/start")
    await other.expect_message()
    answer = await (await other.press_data(f"mt:cxy:{meeting.id}")).wait()
    assert answer.show_alert and "片区" in answer.text
    assert (await meetings_repo.get(bot.db, meeting.id)).active


@pytest.mark.parametrize("answer", ["y", "x"])
async def test_forged_rsvp_data_is_checked(bot, tg, answer):
    _mod, group, _reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    courier = group.chat(tg.user(2107, "小郑"))
    await courier.send("/meetings")
    await courier.expect_message()
    # an occurrence that does not exist, or an unknown answer code
    bogus = await (await courier.press_data(f"mt:rsvp:{meeting.id}:{occ_code(FIRST) + 1}:{answer}")).wait()
    assert bogus.show_alert
    counts = await meetings_repo.rsvp_counts(bot.db, meeting.id, FIRST)
    assert counts == {"yes": 0, "no": 0, "maybe": 0}


async def test_reschedule_the_whole_series(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    await open_manage(mod)
    await (await mod.press("🔁 整个系列改时间")).wait()
    await mod.expect_message(contains="新的时间")
    await mod.send("12月1日 15:00")
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("每周二 15:00")).wait()
    done = await mod.expect_message(contains="已改为")
    assert "每周二 15:00" in done.text
    await bot.settle()
    await reader.expect_message(contains="更新")
    # the old Monday reminders are gone, the Tuesday ones come
    await at(bot, FIRST - dt.timedelta(days=1))
    await reader.expect_no_message()
    tuesday = dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    await at(bot, tuesday - dt.timedelta(days=1))
    reminder = await reader.expect_message(contains=REMINDER)
    assert "2026年12月1日（周二） 15:00" in reminder.text
    assert (await meetings_repo.get(bot.db, meeting.id)).rrule == "FREQ=WEEKLY;BYDAY=TU"


async def test_holiday_flag_a_week_ahead_with_skip_button(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    await at(bot, dt.datetime(2026, 9, 10, 2, 0, tzinfo=UTC))
    meeting = await weekly_meeting(
        bot,
        title="小哥'益'起说",
        rrule=rrule_quarterly_first_monday(),
        first_start=dt.datetime(2026, 9, 10, 14, 30),
    )
    oct5 = dt.datetime(2026, 10, 5, 6, 30, tzinfo=UTC)
    mod.skip()
    await at(bot, oct5 - dt.timedelta(days=7, minutes=1))
    await mod.expect_no_message()
    await at(bot, oct5 - dt.timedelta(days=7))
    flag = await mod.expect_message(contains="法定节假日")
    assert "国庆" in flag.text and "2026年10月5日" in flag.text
    await (await mod.press("跳过这一次", message=flag)).wait()
    await mod.expect_edit(contains="已跳过")
    await bot.settle()
    await reader.expect_message(contains="这一次取消")
    await at(bot, oct5 - dt.timedelta(hours=1))
    await reader.expect_no_message()
    row = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, oct5, 60, GROUP_ID))
    assert row.state == "cancelled"


async def test_rename_and_new_place_update_pending_reminders(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    await open_manage(mod)
    await (await mod.press("✏️ 改名称")).wait()
    await mod.expect_message(contains="改成什么名字")
    await mod.send("蒋村长桌会")
    await mod.expect_message(contains="已更新")
    await open_manage(mod, "蒋村长桌会")
    await (await mod.press("📍 改地点")).wait()
    await mod.expect_message(contains="新的地点")
    await mod.send_venue(30.2741, 120.0934, "蒋村党群服务中心", "文二西路")
    await mod.expect_message(contains="已更新")
    await bot.settle()
    notice = await reader.expect_message(contains="更新")
    assert "蒋村长桌会" in notice.text
    await at(bot, FIRST - dt.timedelta(days=1))
    reminder = await reader.expect_message(contains=REMINDER)
    assert (
        "蒋村长桌会" in reminder.text and "蒋村党群服务中心" in reminder.text and "30.27410" in reminder.text
    )
    updated = await meetings_repo.get(bot.db, meeting.id)
    assert updated.revision == 2 and updated.lat == pytest.approx(30.2741)


async def test_bad_custom_rules_and_times_are_explained_in_english_and_the_step_kept(bot, tg):
    """English times work; impossible rules (dateutil would hang or crash) get a catalog text and the
    conversation stays at the RRULE step."""
    await setup_world(bot, tg)
    await bot.grant(2003, "moderator")
    mod = tg.private(tg.user(2003, "Sam", language_code="en", started=True))
    await mod.send("/newmeeting")
    await mod.expect_message(contains="Step 1")
    await mod.send("Courier council")
    await mod.expect_message(contains="Step 2")
    await mod.send("9999-12-31 23:59")
    await mod.expect_message(contains="at most two years")
    await mod.send("somewhen")
    hint = await mod.expect_message(contains="could not read")
    assert "明天" not in hint.text and "tomorrow" in hint.text
    await mod.send("tomorrow at 2pm")
    await mod.expect_message(contains="Step 3")
    await (await mod.press("Custom (RRULE)")).wait()
    await mod.expect_edit(contains="RFC 5545")
    for rule, explained in [
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL=0 is not valid"),
        ("FREQ=WEEKLY;INTERVAL=-1", "INTERVAL=-1 is not valid"),
        ("FREQ=DAILY;BYHOUR=8,9,10;BYMINUTE=0,10,20", "remove BYHOUR"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY=0"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "no meeting within five years"),
    ]:
        await mod.send(rule)
        await mod.expect_message(contains=explained)
    await mod.send("FREQ=MONTHLY;BYDAY=-1FR")
    await mod.expect_message(contains="Step 4")


async def test_time_zone_from_the_preview_berlin_across_dst(bot, tg):
    """🌐 on the preview: an unknown zone is explained and the step kept; Europe/Berlin is stored and
    reminders, /meetings and .ics follow Berlin wall time across the switch to summer time."""
    mod, group, reader = await setup_world(bot, tg)
    await at(bot, dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("柏林华人骑手会")
    await mod.expect_message(contains="第 2 步")
    await mod.send("3月16日 09:00")
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("每周一 09:00")).wait()
    await mod.expect_message(contains="第 4 步")
    await (await mod.press("60分钟")).wait()
    await mod.expect_message(contains="第 5 步")
    await (await mod.press("跳过")).wait()
    await mod.expect_message(contains="第 6 步")
    await (await mod.press("⬜ 蒋村小哥群")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="第 7 步")
    await (await mod.press("默认：1天 + 1小时")).wait()
    await mod.expect_message(contains="第 8 步")
    await (await mod.press("默认：提前20小时")).wait()
    preview = await mod.expect_message(contains="请确认")
    assert "🌐 时区：北京时间（点此更改）" in preview.labels
    await (await mod.press("🌐 时区：北京时间（点此更改）")).wait()
    await mod.expect_message(contains="按哪里的时间开")
    await mod.send("Mars/Olympus_Mons")
    refused = await mod.expect_message(contains="不认识的时区")
    assert "Mars/Olympus_Mons" in refused.text
    await mod.send("europe/berlin")  # the step was kept; case does not matter
    preview = await mod.expect_message(contains="请确认")
    assert "2026年3月16日（周一） 09:00 (Europe/Berlin)" in preview.text
    assert "🌐 时区：Europe/Berlin（点此更改）" in preview.labels
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    (meeting,) = await meetings_repo.list_active(bot.db)
    assert meeting.tz == "Europe/Berlin" and meeting.dtstart_local == dt.datetime(2026, 3, 16, 9, 0)

    # Summer time starts on 2026-03-29: 09:00 Berlin is 08:00 UTC before, 07:00 UTC after.
    await at(bot, dt.datetime(2026, 3, 23, 6, 59, tzinfo=UTC))
    reader.skip()
    await at(bot, dt.datetime(2026, 3, 23, 7, 0, tzinfo=UTC))
    before = await reader.expect_message(contains=REMINDER)
    assert "1小时后开始" in before.text and "2026年3月23日（周一） 09:00 (Europe/Berlin)" in before.text
    await at(bot, dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
    day = await reader.expect_message(contains=REMINDER)
    assert "1天后开始" in day.text and "2026年3月30日（周一） 09:00" in day.text
    await at(bot, dt.datetime(2026, 3, 30, 5, 59, tzinfo=UTC))
    await reader.expect_no_message()
    await at(bot, dt.datetime(2026, 3, 30, 6, 0, tzinfo=UTC))
    hour = await reader.expect_message(contains=REMINDER)
    assert "1小时后开始" in hour.text and "2026年3月30日（周一） 09:00 (Europe/Berlin)" in hour.text

    # /meetings in the group lists Berlin wall time; the series .ics carries the Berlin zone.
    courier = group.chat(tg.user(2108, "小孙"))
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    assert "2026年3月30日（周一） 09:00 (Europe/Berlin)–10:00" in listing.text
    await (await courier.press("🗓 1. 更多日期", message=listing)).wait()
    more = await courier.expect_message(contains="接下来的日期")
    assert "2026年4月6日（周一） 09:00 (Europe/Berlin)–10:00" in more.text
    await (await courier.press("🔁 柏林华人骑手会：整个系列加入日历", message=more)).wait()
    series = await courier.expect_message()
    while series.kind != "document":
        series = await courier.expect_message()
    cal = Calendar.from_ical(series.document)
    (event,) = cal.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTSTART") == dt.datetime(2026, 3, 16, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]


async def test_default_time_zone_costs_no_extra_step_and_can_be_restored(bot, tg):
    mod, _group, _reader = await setup_world(bot, tg)
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("小哥议事会")
    await mod.expect_message(contains="第 2 步")
    await mod.send("11月30日 14:30")
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("只开这一次")).wait()
    await mod.expect_message(contains="第 4 步")
    await (await mod.press("90分钟")).wait()
    await mod.expect_message(contains="第 5 步")
    await (await mod.press("跳过")).wait()
    await mod.expect_message(contains="第 6 步")
    await (await mod.press("⬜ 蒋村小哥群")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="第 7 步")
    await (await mod.press("默认：1天 + 1小时")).wait()
    await mod.expect_message(contains="第 8 步")
    await (await mod.press("默认：提前20小时")).wait()
    await mod.expect_message(contains="请确认")
    await (await mod.press("🌐 时区：北京时间（点此更改）")).wait()
    await mod.expect_message(contains="按哪里的时间开")
    await mod.send("America/New_York")
    await mod.expect_message(contains="(America/New_York)")
    await (await mod.press("🌐 时区：America/New_York（点此更改）")).wait()
    await mod.expect_message(contains="按哪里的时间开")
    await (await mod.press("用默认时区：北京时间")).wait()
    preview = await mod.expect_message(contains="请确认")
    assert "(America/New_York)" not in preview.text
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    (meeting,) = await meetings_repo.list_active(bot.db)
    assert meeting.tz == "Asia/Shanghai" and meeting.dtstart_local == dt.datetime(2026, 11, 30, 14, 30)


async def test_edit_reminder_offsets_and_topic_deadline_from_the_manage_menu(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    second = FIRST + dt.timedelta(weeks=1)
    await at(bot, FIRST - dt.timedelta(days=1))
    await reader.expect_message(contains=REMINDER)  # the 1-day reminder is out already

    await open_manage(mod)
    await (await mod.press("⏰ 改提醒时间")).wait()
    ask = await mod.expect_message(contains="提前多久提醒")
    assert "现在：1天、1小时" in ask.text
    await mod.send("后天")  # unreadable: explained, the step kept
    await mod.expect_message(contains="没看懂提醒时间")
    await mod.send("1天 2小时")
    done = await mod.expect_message(contains="已更新")
    assert "不另行通知" in done.text
    await bot.settle()
    await reader.expect_no_message()  # reminder times are not on the card: the groups are not told
    assert (await meetings_repo.get(bot.db, meeting.id)).reminder_offsets == (1440, 120)
    sent = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, FIRST, 1440, GROUP_ID))
    old = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, FIRST, 60, GROUP_ID))
    new = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, FIRST, 120, GROUP_ID))
    assert (sent.state, old.state, new.state) == ("sent", "cancelled", "pending")

    # The new 2-hour reminder comes, the withdrawn 1-hour one does not, the 1-day one not again.
    await at(bot, FIRST - dt.timedelta(hours=2, minutes=1))
    await reader.expect_no_message()
    await at(bot, FIRST - dt.timedelta(hours=2))
    two = await reader.expect_message(contains=REMINDER)
    assert "2小时后开始" in two.text
    await at(bot, FIRST - dt.timedelta(hours=1))
    await reader.expect_no_message()
    assert len(reminders_in(reader)) == 2

    # Topic deadline: 2 days before; the organizer's digest of the next Monday moves with it.
    await open_manage(mod)
    await (await mod.press("💡 改议题截止")).wait()
    ask = await mod.expect_message(contains="议题收集")
    assert "现在：开会前20小时" in ask.text
    await mod.send("2天")
    await mod.expect_message(contains="已更新")
    await bot.settle()
    assert not [m for m in reader.messages if "有更新" in (m.text or "")]
    assert (await meetings_repo.get(bot.db, meeting.id)).topic_deadline_minutes == 2 * 1440
    digest = await outbox_repo.get_by_key(
        bot.db, f"mtg:{meeting.id}:{second:%Y-%m-%dT%H:%MZ}:topics:{MOD_ID}"
    )
    assert digest.state == "pending" and digest.due_at == second - dt.timedelta(days=2)
    # ... and back to the default with one tap
    await open_manage(mod)
    await (await mod.press("💡 改议题截止")).wait()
    await mod.expect_message(contains="议题收集")
    await (await mod.press("默认：提前20小时")).wait()
    await mod.expect_message(contains="已更新")
    assert (await meetings_repo.get(bot.db, meeting.id)).topic_deadline_minutes == 20 * 60


async def test_edit_target_groups_from_the_manage_menu(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    other_id = -100202
    owner = tg.user(2009, "古荡群主", started=True)
    other = tg.group(other_id, "古荡小哥群", creator=owner)
    await other.add_bot(by=owner)
    await bot.settle()
    other_reader = other.chat(owner)
    other_reader.skip()
    meeting = await weekly_meeting(bot)
    reader.skip()

    await open_manage(mod)
    await (await mod.press("📣 改发布的群")).wait()
    ask = await mod.expect_message(contains="发到哪些群")
    assert "✅ 蒋村小哥群" in ask.labels and "⬜ 古荡小哥群" in ask.labels
    await (await mod.press("✅ 蒋村小哥群")).wait()
    await (await mod.press("⬜ 古荡小哥群")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="已更新")
    await bot.settle()
    gone = await reader.expect_message(contains="不再在本群")
    assert "小哥议事会" in gone.text
    told = await other_reader.expect_message(contains="更新")
    assert "小哥议事会" in told.text
    updated = await meetings_repo.get(bot.db, meeting.id)
    assert updated.chat_ids == (other_id,)
    await at(bot, FIRST - dt.timedelta(days=1))
    await other_reader.expect_message(contains=REMINDER)
    await reader.expect_no_message()
    old = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, FIRST, 60, GROUP_ID))
    assert old.state == "cancelled"


async def test_reschedule_shows_holiday_flags_at_once(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    await at(bot, dt.datetime(2026, 9, 10, 2, 0, tzinfo=UTC))
    meeting = await weekly_meeting(bot, first_start=dt.datetime(2026, 9, 14, 14, 30))
    await open_manage(mod)
    await (await mod.press("🔁 整个系列改时间")).wait()
    await mod.expect_message(contains="新的时间")
    await mod.send("10月5日 14:30")
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("每季度第一个周一 14:30")).wait()
    await mod.expect_message(contains="已改为")
    await mod.expect_message(contains="法定节假日")
    flag = await mod.expect_message(contains="2026年10月5日")
    assert "国庆" in flag.text
    assert {"跳过这一次", "改到 2026年10月8日（周四） 14:30", "照常举行"} <= set(flag.labels)
    await (await mod.press("跳过这一次", message=flag)).wait()
    await mod.expect_edit(contains="已跳过")
    await bot.settle()
    await reader.expect_message(contains="这一次取消")
    oct5 = dt.datetime(2026, 10, 5, 6, 30, tzinfo=UTC)
    row = await outbox_repo.get_by_key(bot.db, reminder_key(meeting.id, oct5, 60, GROUP_ID))
    assert row.state == "cancelled"


async def test_private_listing_and_topics_without_a_user_area(bot, tg):
    from storage import users as users_repo

    mod, _group, _reader = await setup_world(bot, tg)
    other_id = -100299
    owner = tg.user(OWNER_ID + 50, "别的群主", started=True)
    other = tg.group(other_id, "西溪小哥群", creator=owner)
    await other.add_bot(by=owner)
    await bot.settle()
    await groups_repo.set_area(bot.db, other_id, "西溪街道", bot.clock.now())
    await weekly_meeting(bot)
    await weekly_meeting(
        bot, title="西溪议事会", chat_ids=(other_id,), first_start=dt.datetime(2026, 12, 1, 9, 0)
    )

    # A courier in private, no area on record: every upcoming meeting, via /meetings and the menu button.
    courier = tg.private(tg.user(2110, "阿强", started=True))
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    assert "小哥议事会" in listing.text and "西溪议事会" in listing.text
    await courier.send("🗓 议事会")
    listing = await courier.expect_message(contains="近期议事会")
    assert "西溪议事会" in listing.text

    # The organizer (no area either) sees their meeting too.
    mod.skip()
    await mod.send("/meetings")
    listing = await mod.expect_message(contains="近期议事会")
    assert "小哥议事会" in listing.text

    # /topic in private with several meetings: the tapped one gets the topic typed with /topic.
    await courier.send("/topic 东门能否临时停车")
    choose = await courier.expect_message(contains="哪一场")
    assert any("西溪议事会" in label for label in choose.labels)
    label = next(label for label in choose.labels if "西溪议事会" in label)
    await (await courier.press(label, message=choose)).wait()
    saved = await courier.expect_message(contains="已收到你的议题")
    assert "西溪议事会" in saved.text

    # With an area: that area's meetings (and area-less ones), not the other area's.
    await users_repo.set_area(bot.db, 2110, AREA)
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    assert "小哥议事会" in listing.text and "西溪议事会" not in listing.text
    courier.skip()
    await courier.send("/topic 电梯能否让骑手先上")
    saved = await courier.expect_message(contains="已收到你的议题")
    assert "小哥议事会" in saved.text


async def test_skipping_a_one_off_cancels_it_and_a_dash_place_is_no_place(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot, rrule=None, place="-")
    assert meeting.place == ""
    await open_manage(mod)
    await (await mod.press("⏭ 跳过下一次")).wait()
    await mod.expect_message(contains="确定取消")
    await (await mod.press("确定跳过")).wait()
    done = await mod.expect_edit(contains="已取消")
    assert "议事会已结束" in done.text
    await bot.settle()
    notice = await reader.expect_message(contains="取消")
    assert "其余照常" not in notice.text and "小哥议事会" in notice.text
    assert not (await meetings_repo.get(bot.db, meeting.id)).active
    # it left the manage list
    mod.skip()
    await mod.send("/meetings")
    listing = await mod.expect_message(contains="议事会")
    assert "⚙️ 管理：小哥议事会" not in listing.labels


async def test_place_typed_as_dash_is_published_without_a_place(bot, tg):
    mod, _group, reader = await setup_world(bot, tg)
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("小哥议事会")
    await mod.expect_message(contains="第 2 步")
    await mod.send("11月30日 14:30")
    await mod.expect_message(contains="多久开一次")
    await mod.send("每周")  # typed at a button-only step: a hint, the step kept
    await mod.expect_message(contains="请点上面的按钮")
    await (await mod.press("只开这一次")).wait()
    await mod.expect_message(contains="第 4 步")
    await (await mod.press("90分钟")).wait()
    await mod.expect_message(contains="第 5 步")
    await mod.send("-")
    await mod.expect_message(contains="第 6 步")
    await mod.send("蒋村小哥群")  # typed instead of tapping: a hint, the step kept
    await mod.expect_message(contains="请点上面的按钮")
    await (await mod.press("⬜ 蒋村小哥群")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="第 7 步")
    await (await mod.press("默认：1天 + 1小时")).wait()
    await mod.expect_message(contains="第 8 步")
    await (await mod.press("默认：提前20小时")).wait()
    preview = await mod.expect_message(contains="请确认")
    assert "📍" not in preview.text
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    announcement = await reader.expect_message(contains="小哥议事会")
    assert "📍" not in announcement.text
    (meeting,) = await meetings_repo.list_active(bot.db)
    assert meeting.place == ""


async def test_every_n_weeks_accepts_a_typed_number(bot, tg):
    mod, _group, _reader = await setup_world(bot, tg)
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("小哥议事会")
    await mod.expect_message(contains="第 2 步")
    await mod.send("11月30日 14:30")
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("每隔几周……")).wait()
    await mod.expect_edit(contains="每几周")
    await mod.send("60")
    await mod.expect_message(contains="1 到 52")
    await mod.send("6")
    await mod.expect_message(contains="第 4 步")


async def test_rsvp_on_announcement_and_meetings_list(bot, tg):
    _mod, group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    # The announcement in the group carries RSVP buttons for the next occurrence.
    announcement = await reader.expect_message(contains="小哥议事会")
    data = [d for _, d in announcement.inline]
    assert f"mt:rsvp:{meeting.id}:{occ_code(FIRST)}:y" in data
    a = group.chat(tg.user(2121, "阿强"))
    answer = await (await a.press("✅ 参加", message=announcement)).wait()
    assert "已记录" in answer.text and "参加" in answer.text
    counts = await meetings_repo.rsvp_counts(bot.db, meeting.id, FIRST)
    assert counts["yes"] == 1

    # The private /meetings list: RSVP buttons per item, the same answers as the reminders'.
    courier = tg.private(tg.user(2122, "小李", started=True))
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    assert f"mt:rsvp:{meeting.id}:{occ_code(FIRST)}:m" in [d for _, d in listing.inline]
    saved = await (await courier.press("1. ❓ 待定", message=listing)).wait()
    assert "已记录" in saved.text and "待定" in saved.text
    again = await (await courier.press("1. ❓ 待定", message=listing)).wait()
    assert "已经回复过" in again.text
    counts = await meetings_repo.rsvp_counts(bot.db, meeting.id, FIRST)
    assert counts == {"yes": 1, "no": 0, "maybe": 1}
    # The reminder later shows the answers given there.
    await at(bot, FIRST - dt.timedelta(days=1))
    day = await reader.expect_message(contains=REMINDER)
    assert "✅ 参加 1 · ❌ 不参加 0 · ❓ 待定 1" in day.text


async def test_announcement_shows_live_rsvp_counts(bot, tg):
    _mod, group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    announcement = await reader.expect_message(contains="小哥议事会")
    assert "✅ 参加 0 · ❌ 不参加 0 · ❓ 待定 0" in announcement.text
    # Two members answer on the announcement: it is edited with the counts, buttons kept.
    a = group.chat(tg.user(2131, "阿强"))
    b = group.chat(tg.user(2132, "阿珍"))
    await (await a.press("✅ 参加", message=announcement)).wait()
    first = await reader.expect_edit(
        contains="✅ 参加 1 · ❌ 不参加 0 · ❓ 待定 0", message_id=announcement.message_id
    )
    assert f"mt:rsvp:{meeting.id}:{occ_code(FIRST)}:y" in [d for _, d in first.inline]
    await (await b.press("❓ 待定", message=announcement)).wait()
    await reader.expect_edit(
        contains="✅ 参加 1 · ❌ 不参加 0 · ❓ 待定 1", message_id=announcement.message_id
    )
    # An answer given elsewhere (the private /meetings list) reaches the announcement through the outbox.
    courier = tg.private(tg.user(2133, "小李", started=True))
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    await (await courier.press("1. ❌ 不参加", message=listing)).wait()
    await bot.settle()
    await reader.expect_edit(
        contains="✅ 参加 1 · ❌ 不参加 1 · ❓ 待定 1", message_id=announcement.message_id
    )
    # The reminder later shows the same counts.
    await at(bot, FIRST - dt.timedelta(days=1))
    day = await reader.expect_message(contains=REMINDER)
    assert "✅ 参加 1 · ❌ 不参加 1 · ❓ 待定 1" in day.text
