"""The outbox worker end to end: a fair pick across chats, and rows in flight at a crash (kill -9
simulated by leaving a row 'sending' in the database): reminders and urgent notices are sent again,
other rows are reported as "delivery unknown" in the broadcast's final report, never as failed."""

import datetime as dt

import pytest

from bot.broadcast import BroadcastService, Draft
from bot.meetings.service import MeetingDraft, MeetingService, reminder_key
from storage import broadcasts as bc_repo
from storage import outbox as outbox_repo
from storage.db import to_db
from storage.outbox import NewMessage
from tests.dbs import make_database

OWNER = 7000
MOD = 7001


async def make_groups(tg, bot, count, first=-1002000000000):
    owner = tg.user(OWNER, "群主")
    ids = []
    for i in range(count):
        group = tg.group(first - i, f"小哥群{i}", creator=owner)
        await group.add_bot(by=owner)
        ids.append(first - i)
    await bot.settle()
    return ids


def delivered(tg, chat_id, contains):
    return [
        c for c in tg.calls_to("sendMessage", chat_id) if c.ok and contains in (c.params.get("text") or "")
    ]


async def crash_while_sending(bot, dedup_key: str, lease_until: str | None = None) -> None:
    """Stop the bot and leave one row 'sending' (leased to a process that died, if `lease_until`), as
    a kill -9 during its request would."""
    await bot.stop()
    db = await make_database(bot.db_path).open()
    try:
        changed = await db.execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_by = ?, lease_until = ?"
            " WHERE dedup_key = ?",
            ("host:1:dead" if lease_until else None, lease_until, dedup_key),
        )
        assert changed == 1
    finally:
        await db.close()


async def test_a_busy_group_never_holds_back_another_chats_reminder(bot, tg):
    [busy] = await make_groups(tg, bot, 1)
    courier = tg.user(2001, "小王")
    await tg.private(courier).send("/start")
    await bot.settle()
    now = bot.clock.now()
    flood = [
        NewMessage(
            "notice",
            f"flood:{i}",
            busy,
            {"method": "sendMessage", "params": {"text": f"群消息{i}"}},
            now - dt.timedelta(minutes=30),
            priority=3,
        )
        for i in range(300)
    ]
    await bot.core.outbox.enqueue(flood)
    reminder = NewMessage(
        "task_reminder",
        "rem:b",
        courier.id,
        {"method": "sendMessage", "params": {"text": "明天 9 点的任务提醒"}},
        now,
    )
    await bot.core.outbox.enqueue([reminder])
    await bot.settle()
    texts = [c.params.get("text", "") for c in tg.calls if c.method == "sendMessage" and c.ok]
    order = [t for t in texts if t.startswith("群消息") or "任务提醒" in t]
    assert any("任务提醒" in t for t in order[:2]), order[:5]  # with the first rows, not after the 300
    assert len(delivered(tg, courier.id, "任务提醒")) == 1


async def test_meeting_reminder_in_flight_at_a_crash_is_sent_again(bot, tg):
    [group] = await make_groups(tg, bot, 1)
    svc = bot.core.service(MeetingService)
    start_local = dt.datetime(2026, 11, 30, 14, 30)  # Monday, Shanghai
    meeting = (
        await svc.create(
            MeetingDraft(title="小哥议事会", first_start=start_local, organizer_id=OWNER, chat_ids=(group,))
        )
    ).meeting
    await bot.settle()
    start = dt.datetime(2026, 11, 30, 6, 30, tzinfo=dt.UTC)
    key = reminder_key(meeting.id, start, 1440, group)
    await crash_while_sending(bot, key)
    bot.clock.set(start - dt.timedelta(days=1) + dt.timedelta(minutes=1))
    await bot.start()
    await bot.settle()
    assert len(delivered(tg, group, "小哥议事会")) == 2  # the announcement, then the reminder (once)
    row = await outbox_repo.get_by_key(bot.db, key)
    assert row.state == "sent" and row.attempts == 2


async def test_urgent_notice_in_flight_at_a_crash_is_sent_again(bot, tg):
    groups = await make_groups(tg, bot, 2)
    service = bot.core.service(BroadcastService)
    at = bot.clock.now() + dt.timedelta(minutes=30)
    notice, _ = await service.submit(
        Draft(text="台风预警：今晚停止配送", audience="groups", urgent=True, at=at), author_id=MOD, lang="zh"
    )
    await crash_while_sending(bot, f"{bc_repo.batch_name(notice.id)}:{groups[0]}")
    bot.clock.set(at + dt.timedelta(minutes=1))
    await bot.start()
    await bot.settle()
    for chat_id in groups:
        assert len(delivered(tg, chat_id, "台风预警")) == 1
    figures = await bot.core.service(BroadcastService).figures(notice.id)
    assert (figures.sent, figures.unknown, figures.failed) == (2, 0, 0)


async def test_notice_in_flight_at_a_crash_is_reported_as_delivery_unknown(bot, tg):
    groups = await make_groups(tg, bot, 3)
    service = bot.core.service(BroadcastService)
    at = bot.clock.now() + dt.timedelta(minutes=30)
    notice, _ = await service.submit(
        Draft(text="本周六小哥学堂", audience="groups", at=at), author_id=MOD, lang="zh"
    )
    await crash_while_sending(bot, f"{bc_repo.batch_name(notice.id)}:{groups[0]}")
    bot.clock.set(at + dt.timedelta(minutes=1))
    await bot.start()
    await bot.settle()
    assert delivered(tg, groups[0], "小哥学堂") == []  # not resent: it may well have arrived
    assert all(len(delivered(tg, chat_id, "小哥学堂")) == 1 for chat_id in groups[1:])
    service = bot.core.service(BroadcastService)
    assert await service.refresh_progress(notice.id)  # finished: an unknown row is not pending
    stored = await bc_repo.get(bot.db, notice.id)
    assert stored.state == "done"
    figures = await service.figures(notice.id)
    assert (figures.sent, figures.unknown, figures.failed, figures.pending) == (2, 1, 0, 0)
    zh = service.render(stored, figures, "zh")
    assert "送达未知：1" in zh and "失败 0" in zh
    en = service.render(stored, figures, "en")
    assert "delivery unknown: 1" in en and "failed 0" in en


@pytest.mark.sqlite_only
async def test_on_sqlite_a_restart_settles_a_send_cut_off_at_once_whatever_its_lease(bot, tg):
    """SQLite has one sending process: at its start a 'sending' row was cut off in the last one, even
    while its lease (30 s) still runs; the urgent notice goes out again at once, not 30 s later."""
    groups = await make_groups(tg, bot, 2)
    service = bot.core.service(BroadcastService)
    at = bot.clock.now() + dt.timedelta(minutes=30)
    notice, _ = await service.submit(
        Draft(text="台风红色预警", audience="groups", at=at, urgent=True), author_id=MOD, lang="zh"
    )
    later = bot.clock.now() + dt.timedelta(hours=1)
    await crash_while_sending(bot, f"{bc_repo.batch_name(notice.id)}:{groups[0]}", to_db(later))
    bot.clock.set(at + dt.timedelta(minutes=1))
    await bot.start()
    await bot.settle()
    assert all(len(delivered(tg, chat_id, "台风红色预警")) == 1 for chat_id in groups)
