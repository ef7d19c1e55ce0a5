"""End to end, from issue 14 (a first week in the field): times said with Chinese numerals and rules
said in words at the date step of /newmeeting and /newtask, in Chinese and in English."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.meetings.service import MeetingService
from storage import meetings as meetings_repo
from tests.test_e2e_meetings import at, setup_world, weekly_meeting
from tests.test_e2e_tasks import answers, started

# FakeClock starts at 2026-11-25 02:00 UTC (Wednesday 10:00 in Shanghai).


async def _english_moderator(bot, tg, user_id: int = 2003):
    await bot.grant(user_id, "moderator")
    return tg.private(tg.user(user_id, "Sam", language_code="en", started=True))


async def _at_date_step(mod, *, step2: str = "第 2 步") -> None:
    await mod.send("/newmeeting")
    await mod.expect_message()
    await mod.send("小哥议事会")
    await mod.expect_message(contains=step2)


@pytest.mark.parametrize(
    ("said", "weekly"),
    [
        ("下周三下午三点", "每周三 15:00"),
        ("明天下午两点", "每周四 14:00"),
        ("后天上午十点", "每周五 10:00"),
        ("今晚8点", "每周三 20:00"),
        ("明晚7点", "每周四 19:00"),
        ("十点半", "每周三 10:30"),
        ("下午三点一刻", "每周三 15:15"),
    ],
)
async def test_newmeeting_reads_chinese_numerals(bot, tg, said, weekly):
    mod, _group, _reader = await setup_world(bot, tg)
    await _at_date_step(mod)
    await mod.send(said)
    recur = await mod.expect_message()
    assert "多久开一次" in recur.text, (said, recur.text)
    assert weekly in recur.labels  # the weekly preset names the weekday and time that was read


@pytest.mark.parametrize(
    ("said", "weekly"),
    [
        ("next wednesday 3pm", "every Wednesday at 15:00"),
        ("tomorrow 2pm", "every Thursday at 14:00"),
        ("day after tomorrow 10am", "every Friday at 10:00"),
        ("tonight at 8", "every Wednesday at 20:00"),
        ("tomorrow evening 7", "every Thursday at 19:00"),
        ("half past ten", "every Wednesday at 10:30"),
        ("quarter past three pm", "every Wednesday at 15:15"),
    ],
)
async def test_newmeeting_reads_spoken_english_times(bot, tg, said, weekly):
    await setup_world(bot, tg)
    mod = await _english_moderator(bot, tg)
    await _at_date_step(mod, step2="Step 2")
    await mod.send(said)
    recur = await mod.expect_message()
    assert "how often" in recur.text, (said, recur.text)
    assert weekly in recur.labels


async def test_quarterly_rule_said_at_the_date_step_skips_the_rule_question(bot, tg):
    mod, _group, _reader = await setup_world(bot, tg)
    await _at_date_step(mod)
    await mod.send("每季度第一个周一")  # no time: asked for one, the step kept
    await mod.expect_message(contains="请加上开会的时间")
    await mod.send("每季度第一个周一 14:30")
    said = await mod.expect_message(contains="🔁")
    assert said.text == "🔁 每季度第一个周一 14:30，第一次：2027年1月4日（周一）"
    await mod.expect_message(contains="第 4 步")  # no "多久开一次"
    await (await mod.press("90分钟")).wait()
    await mod.expect_message(contains="第 5 步")
    await mod.send("蒋村党群服务中心")
    await mod.expect_message(contains="第 6 步")
    await (await mod.press("⬜ 蒋村小哥群")).wait()
    await (await mod.press("完成")).wait()
    await mod.expect_message(contains="第 7 步")
    await (await mod.press("默认：1天 + 1小时")).wait()
    await mod.expect_message(contains="第 8 步")
    await (await mod.press("默认：提前20小时")).wait()
    preview = await mod.expect_message(contains="请确认")
    assert "每季度第一个周一 14:30" in preview.text and "2027年1月4日（周一） 14:30–16:00" in preview.text
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    (meeting,) = await meetings_repo.list_active(bot.db)
    assert meeting.rrule == "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1MO"
    assert meeting.dtstart_local == dt.datetime(2027, 1, 4, 14, 30)


async def test_weekly_rule_with_chinese_numerals_at_the_date_step(bot, tg):
    mod, _group, _reader = await setup_world(bot, tg)
    await _at_date_step(mod)
    await mod.send("每周三晚上八点")
    said = await mod.expect_message(contains="🔁")
    assert said.text == "🔁 每周三 20:00，第一次：2026年11月25日（周三）"  # today, 20:00 is still ahead
    await mod.expect_message(contains="第 4 步")


async def test_rules_said_in_english_at_the_date_step(bot, tg):
    await setup_world(bot, tg)
    mod = await _english_moderator(bot, tg)
    await _at_date_step(mod, step2="Step 2")
    await mod.send("first Monday of each quarter at 14:30")
    said = await mod.expect_message(contains="🔁")
    assert said.text == "🔁 first Monday of each quarter at 14:30, first one: Mon 2027/1/4"
    await mod.expect_message(contains="Step 4")
    await mod.send("/cancel")
    await mod.expect_message()
    await _at_date_step(mod, step2="Step 2")
    await mod.send("every Wednesday 8pm")
    said = await mod.expect_message(contains="🔁")
    assert said.text == "🔁 every Wednesday at 20:00, first one: Wed 2026/11/25"
    await mod.expect_message(contains="Step 4")


async def test_newtask_reads_chinese_numerals(bot, tg):
    await bot.grant(2001, "captain")
    _, captain = await started(tg, 2001, "李队长")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("助老送餐", "2/10"),
        ("-", "3/10"),
        ("明天下午两点", "4/10"),
        ("下午四点半", "5/10"),
        ("文新社区", "6/10"),
        ("button:跳过", "7/10"),
        ("2", "8/10"),
        ("10", "9/10"),
        ("明天上午十点", "10/10"),
        ("王奶奶", "预览"),
    )
    preview = captain.state.bot_messages[-1].text
    assert "11月26日（周四）14:00–16:30" in preview


async def test_newtask_reads_spoken_english_times(bot, tg):
    await bot.grant(2001, "captain")
    user = tg.user(2001, "Li", language_code="en", started=True)
    captain = tg.private(user)
    await captain.send("/start")
    await captain.expect_message()
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(
        captain,
        ("Meals for elders", "2/10"),
        ("-", "3/10"),
        ("tomorrow afternoon 2", "4/10"),
        ("half past four pm", "5/10"),
    )
    await captain.send("/cancel")


# -- /topic keeps the text (item 8) ----------------------------------------------------------------------


async def _two_meetings(bot, tg, **second):
    """The weekly 小哥议事会 in 蒋村小哥群 and a 西溪议事会 in another group (a courier without an area
    sees both in private)."""
    mod, group, reader = await setup_world(bot, tg)
    owner = tg.user(2052, "别的群主", started=True)
    other = tg.group(-100299, "西溪小哥群", creator=owner)
    await other.add_bot(by=owner)
    await bot.settle()
    await weekly_meeting(bot)
    values = {"title": "西溪议事会", "chat_ids": (-100299,), "first_start": dt.datetime(2026, 12, 1, 9, 0)}
    values.update(second)
    await weekly_meeting(bot, **values)
    return mod, group, reader


async def _topics(bot, title: str) -> list[str]:
    """The topics of the next occurrences of the meeting called ``title``."""
    service = bot.core.service(MeetingService)
    (meeting,) = [m for m in await meetings_repo.list_active(bot.db) if m.title == title]
    found = []
    for occ in service.schedule_of(meeting).next_occurrences(bot.clock.now(), 3):
        found += [t.text for t in await meetings_repo.topics(bot.db, meeting.id, occ.original_start)]
    return found


async def test_topic_alone_asks_for_the_topic_and_takes_the_next_text(bot, tg):
    await setup_world(bot, tg)
    await weekly_meeting(bot)
    courier = tg.private(tg.user(2110, "阿强", started=True))
    await courier.send("/topic")
    asked = await courier.expect_message(contains="请直接发送你的议题")
    assert "小哥议事会" in asked.text
    await courier.send("东门能否临时停车")  # not a station search
    saved = await courier.expect_message(contains="已收到你的议题")
    assert "小哥议事会" in saved.text
    assert await _topics(bot, "小哥议事会") == ["东门能否临时停车"]
    # Asked and left unanswered: later text is a search again, not a topic.
    await courier.send("/topic")
    await courier.expect_message(contains="请直接发送你的议题")
    await bot.advance(minutes=11)
    await courier.send("厕所")
    later = await courier.expect_message()
    assert "已收到你的议题" not in later.text
    assert await _topics(bot, "小哥议事会") == ["东门能否临时停车"]


async def test_topic_alone_in_a_group_takes_the_reply(bot, tg):
    _mod, group, _reader = await setup_world(bot, tg)
    await weekly_meeting(bot)
    courier = group.chat(tg.user(2103, "阿明"))
    await courier.send("/topic")
    asked = await courier.expect_message(contains="请回复这条消息")
    assert "小哥议事会" in asked.text
    await courier.send("电梯高峰期能否让骑手先上", reply_to=asked)
    await courier.expect_message(contains="已收到你的议题")
    assert await _topics(bot, "小哥议事会") == ["电梯高峰期能否让骑手先上"]


async def test_the_chooser_keeps_the_typed_topic(bot, tg):
    await _two_meetings(bot, tg)
    courier = tg.private(tg.user(2110, "阿强", started=True))
    await courier.send("/topic 东门能否临时停车")
    choose = await courier.expect_message(contains="点一下就提交")
    label = next(label for label in choose.labels if "西溪议事会" in label)
    await (await courier.press(label, message=choose)).wait()
    saved = await courier.expect_message(contains="已收到你的议题")
    assert "西溪议事会" in saved.text
    assert await _topics(bot, "西溪议事会") == ["东门能否临时停车"]
    # /topic alone with several meetings: choose, then the topic is asked for and taken.
    await courier.send("/topic")
    choose = await courier.expect_message(contains="请先点一下")
    label = next(label for label in choose.labels if "小哥议事会" in label)
    await (await courier.press(label, message=choose)).wait()
    await courier.expect_message(contains="请直接发送你的议题")
    await courier.send("电梯能否让骑手先上")
    await courier.expect_message(contains="已收到你的议题")
    assert await _topics(bot, "小哥议事会") == ["电梯能否让骑手先上"]


async def test_a_meeting_whose_topics_closed_is_not_offered(bot, tg):
    # 西溪议事会 once, tomorrow 09:00: its topics closed at 13:00 today (20 h before).
    await _two_meetings(bot, tg, rrule=None, first_start=dt.datetime(2026, 11, 26, 9, 0))
    await at(bot, dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC))  # 14:00 in Shanghai
    courier = tg.private(tg.user(2110, "阿强", started=True))
    await courier.send("/topic 东门能否临时停车")
    saved = await courier.expect_message()
    assert "已收到你的议题" in saved.text and "小哥议事会" in saved.text  # no chooser
    assert await _topics(bot, "西溪议事会") == []


# -- meetings are lighter (item 18) ----------------------------------------------------------------------


async def test_meetings_lists_the_next_date_per_series_and_more_on_demand(bot, tg):
    from bot.kit.recurrence import rrule_quarterly_first_monday

    _mod, group, _reader = await setup_world(bot, tg)
    await weekly_meeting(
        bot, rrule=rrule_quarterly_first_monday(), first_start=dt.datetime(2027, 1, 4, 14, 30)
    )
    courier = group.chat(tg.user(2104, "小周"))
    await courier.send("/meetings")
    listing = await courier.expect_message(contains="近期议事会")
    assert listing.text.count("小哥议事会") == 1 and "2027年1月4日（周一） 14:30" in listing.text
    assert "2027年4月5日" not in listing.text
    assert sum(len(row) for row in listing.buttons) == 5, listing.buttons  # 3 RSVP, calendar, more
    await (await courier.press("🗓 1. 更多日期", message=listing)).wait()
    more = await courier.expect_message(contains="接下来的日期")
    for day in (
        "2027年1月4日",
        "2027年4月5日",
        "2027年7月5日",
        "2027年10月4日",
        "2028年1月3日",
        "2028年4月3日",
    ):
        assert day in more.text, (day, more.text)
    assert more.labels == ["🔁 小哥议事会：整个系列加入日历"]


async def test_a_move_far_ahead_is_told_a_week_before_not_at_once(bot, tg):
    _mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    service = bot.core.service(MeetingService)
    feb1 = dt.datetime(2027, 2, 1, 6, 30, tzinfo=dt.UTC)  # Monday 14:30, beyond the 35-day horizon
    await service.move_occurrence(meeting.id, feb1, dt.datetime(2027, 10, 11, 14, 30))
    await bot.settle()

    def moved_notices():
        return [m for m in reader.messages if "改到" in (m.text or "")]

    assert moved_notices() == []  # not told eight months early
    await at(bot, dt.datetime(2027, 1, 25, 6, 29, tzinfo=dt.UTC))
    assert moved_notices() == []
    await at(bot, dt.datetime(2027, 1, 25, 6, 30, tzinfo=dt.UTC))  # a week before the old date
    (notice,) = moved_notices()
    assert "原定 2027年2月1日（周一） 14:30 的这一次改到 2027年10月11日（周一） 14:30" in notice.text

    # A move within the horizon is told at once.
    feb8 = dt.datetime(2027, 2, 8, 6, 30, tzinfo=dt.UTC)
    await service.move_occurrence(meeting.id, feb8, dt.datetime(2027, 11, 8, 14, 30))
    await bot.settle()
    assert len(moved_notices()) == 2


async def test_a_move_far_ahead_undone_before_its_notice_is_never_told(bot, tg):
    _mod, _group, reader = await setup_world(bot, tg)
    meeting = await weekly_meeting(bot)
    service = bot.core.service(MeetingService)
    feb1 = dt.datetime(2027, 2, 1, 6, 30, tzinfo=dt.UTC)
    await service.move_occurrence(meeting.id, feb1, dt.datetime(2027, 10, 11, 14, 30))
    await service.move_occurrence(meeting.id, feb1, dt.datetime(2027, 2, 1, 14, 30))  # back again
    await at(bot, dt.datetime(2027, 1, 26, 0, 0, tzinfo=dt.UTC))
    assert [m for m in reader.messages if "改到" in (m.text or "")] == []


async def test_a_meeting_an_hour_away_promises_only_what_is_still_ahead(bot, tg):
    mod, _group, _reader = await setup_world(bot, tg)
    await _at_date_step(mod)
    await mod.send("今天上午十一点")  # 10:00 now
    await mod.expect_message(contains="多久开一次")
    await (await mod.press("每周三 11:00")).wait()
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
    preview = await mod.expect_message(contains="请确认")
    assert "议题截止：开会前20小时" not in preview.text and "提前提醒：1天" not in preview.text
    assert "💡 这次时间太近，不收集议题；以后每次开会前20小时截止" in preview.text
    assert "⏰ 这次时间太近，不再提前提醒；以后每次提前1天、1小时提醒" in preview.text


async def test_a_meeting_tomorrow_morning_keeps_the_hour_reminder(bot, tg):
    from bot.meetings.service import MeetingDraft

    await setup_world(bot, tg)
    service = bot.core.service(MeetingService)
    draft = MeetingDraft(
        title="小哥议事会",
        first_start=dt.datetime(2026, 11, 26, 9, 0),
        organizer_id=2001,
        chat_ids=(-100201,),
    )
    text = service.preview_text(draft, "en")
    assert "⏰ Reminders this time: 1 hour before" in text and "later" not in text
    assert "💡 Topics close 20 hours before" in text  # 13:00 today, still ahead


# -- the time zone said as people say it (item 19 wording) -----------------------------------------------


async def test_meeting_prompts_say_beijing_time(bot, tg):
    mod, _group, _reader = await setup_world(bot, tg)
    await mod.send("/newmeeting")
    await mod.expect_message(contains="第 1 步")
    await mod.send("小哥议事会")
    step2 = await mod.expect_message(contains="第 2 步")
    assert "第一次什么时候开（北京时间）？" in step2.text and "Asia/Shanghai" not in step2.text
    await mod.send("12月2日 14:30")
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
    preview = await mod.expect_message(contains="请确认")
    assert "🌐 时区：北京时间（点此更改）" in preview.labels
    await (await mod.press("🌐 时区：北京时间（点此更改）")).wait()
    asked = await mod.expect_message(contains="按哪里的时间开")
    assert "IANA" not in asked.text and "用默认时区：北京时间" in asked.labels
    await mod.send("Europe/Berlin")
    preview = await mod.expect_message(contains="请确认")
    assert "🌐 时区：Europe/Berlin（点此更改）" in preview.labels
    await (await mod.press("🌐 时区：Europe/Berlin（点此更改）")).wait()
    await mod.expect_message(contains="按哪里的时间开")
    await mod.send("北京时间")  # typed as said
    preview = await mod.expect_message(contains="请确认")
    assert "🌐 时区：北京时间（点此更改）" in preview.labels
    await (await mod.press("✅ 确认发布")).wait()
    await mod.expect_message(contains="已安排")
    (meeting,) = await meetings_repo.list_active(bot.db)
    assert meeting.tz == "Asia/Shanghai"

    # Moving it: the prompt names the zone the same way.
    mod.skip()
    await mod.send("/meetings")
    await mod.expect_message(contains="议事会")
    await (await mod.press("⚙️ 管理：小哥议事会")).wait()
    await mod.expect_message(contains="⚙️ 管理")
    await (await mod.press("🕑 下一次改期")).wait()
    ask = await mod.expect_message(contains="改到什么时候")
    assert "（北京时间）" in ask.text


async def test_meeting_prompts_say_beijing_time_in_english(bot, tg):
    await setup_world(bot, tg)
    mod = await _english_moderator(bot, tg)
    await mod.send("/newmeeting")
    await mod.expect_message(contains="Step 1")
    await mod.send("Courier council")
    step2 = await mod.expect_message(contains="Step 2")
    assert "when is the first one (Beijing time)?" in step2.text


async def test_newtask_start_prompt_says_beijing_time(bot, tg):
    await bot.grant(2001, "captain")
    _, captain = await started(tg, 2001, "李队长")
    await captain.send("/newtask")
    await captain.expect_message(contains="1/10")
    await answers(captain, ("助老送餐", "2/10"), ("-", "几点开始（北京时间）"))
