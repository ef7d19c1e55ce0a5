"""Personal data (report cards with photos, voice, exact spot and the reporter's name; who answered a
meeting; balances, redeem codes, claims, rosters) is shown only in private chats and the moderators'
chats. Each path below, tried in a courier group by someone allowed to see the data in private, gets
the button to the private chat and puts nothing personal into the group."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.meetings.service import MeetingDraft, MeetingService, occ_code
from bot.reports.service import ReportDraft, ReportService
from bot.tasks import TaskDraft, TaskService
from tests.conftest import MODERATOR_CHAT_ID

MOD = 7101
COURIER = 7102
GROUP = -1007100000001
LAT, LON = 30.2590, 120.1300


@pytest.fixture
async def world(bot, tg):
    mod_user = tg.user(MOD, "社工小林", username="lin_sg", started=True)
    courier_user = tg.user(COURIER, "小王", username="wangxg", started=True)
    await bot.grant(MOD, "moderator")
    await bot.grant(MOD, "captain")
    group = tg.group(GROUP, "蒋村小哥群", creator=courier_user)
    await group.add_bot(by=courier_user)
    mods = tg.group(MODERATOR_CHAT_ID, "社区管理员群", creator=mod_user)
    await mods.add_bot(by=mod_user)
    await bot.settle()
    report = await bot.core.service(ReportService).submit(
        COURIER,
        ReportDraft(
            kind="hazard", category="road_damage", description="文三路有个大坑", lat=LAT, lon=LON, photos=[]
        ),
    )
    await bot.settle()
    in_group = group.chat(mod_user)
    in_group.skip()
    return report, in_group, mods.chat(mod_user)


def group_leaks(tg, chat_id: int) -> list[str]:
    """Texts in the group that carry a reporter's name, username, a report's words or a location."""
    leaks = []
    for message in tg.server.chats[chat_id].bot_messages:
        text = message.text or ""
        if any(word in text for word in ("小王", "wangxg", "文三路有个大坑", "社工小林")):
            leaks.append(text)
        if message.data.get("location") or message.data.get("photo") or message.data.get("voice"):
            leaks.append(f"{message.kind} message")
    return leaks


async def _refused_in_group(bot, tg, in_group, *, command: str | None = None, data: str | None = None):
    if command is not None:
        await in_group.send(command)
        answer = await in_group.expect_message(contains="私聊")
        assert any("t.me/" in (url or "") for _, url in answer.inline)
    else:
        pressed = await (await in_group.press_data(data)).wait()
        assert pressed.show_alert and "私聊" in (pressed.text or "")
    await bot.settle()
    assert group_leaks(tg, GROUP) == []


async def test_report_card_by_reference(bot, tg, world):
    report, in_group, in_mods = world
    await _refused_in_group(bot, tg, in_group, command=f"/reports {report.ref}")
    # In the moderators' chat the same command draws the card.
    await in_mods.send(f"/reports {report.ref}")
    card = await in_mods.expect_message(contains="文三路有个大坑")
    assert "小王" in card.text


async def test_report_list(bot, tg, world):
    _, in_group, _ = world
    await _refused_in_group(bot, tg, in_group, command="/reports")


async def test_report_list_button(bot, tg, world):
    report, in_group, _ = world
    await _refused_in_group(bot, tg, in_group, data=f"rp:ls:o:{report.id}")


async def test_report_card_button(bot, tg, world):
    report, in_group, _ = world
    await _refused_in_group(bot, tg, in_group, data=f"rp:st:{report.id}:ack")
    assert (await bot.core.service(ReportService).get(report.id)).status == "new"  # nothing changed


async def test_meeting_answers(bot, tg, world):
    _, in_group, _ = world
    start = (bot.clock.now() + dt.timedelta(days=3)).replace(second=0, microsecond=0)
    service = bot.core.service(MeetingService)
    result = await service.create(
        MeetingDraft(title="议事会", first_start=start, organizer_id=MOD, place="驿站", chat_ids=(GROUP,))
    )
    meeting = result.meeting
    await service.rsvp(meeting.id, start, COURIER, "yes")
    await _refused_in_group(bot, tg, in_group, data=f"mt:who:{meeting.id}:{occ_code(start)}")


@pytest.mark.parametrize("command", ["/points", "/redeem 5", "/mytasks", "/me", "/tasks", "/myreports"])
async def test_own_data(bot, tg, world, command):
    _, in_group, _ = world
    await bot.core.service(TaskService).publish(
        TaskDraft(
            title="助老送餐",
            starts_at=bot.clock.now() + dt.timedelta(days=2),
            place_text="文新社区",
            slots=2,
            points=10,
            private_details="王奶奶 13800000000",
        ),
        MOD,
    )
    await _refused_in_group(bot, tg, in_group, command=command)
