"""MeetingService with a temp database and a FakeClock: planning, re-planning, changes, RSVP, topics."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from bot.core.clock import FakeClock
from bot.core.config import Config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.kit.recurrence import RecurrenceError, rrule_quarterly_first_monday, rrule_weekly
from bot.meetings.service import (
    KIND_HOLIDAY,
    KIND_NOTICE,
    KIND_REMINDER,
    KIND_TOPICS,
    MeetingDraft,
    MeetingError,
    MeetingService,
    occ_code,
    occ_from_code,
    reminder_key,
)
from storage import groups, outbox, users
from storage import meetings as meetings_repo
from tests.dbs import make_database

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
START = dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
ORGANIZER = 501
G1, G2, G3 = -1001, -1002, -1003
MON_1430 = dt.datetime(2026, 11, 30, 14, 30)  # naive = Shanghai wall time


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "m.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
async def svc(db, clock):
    core = Core(config=Config(), clock=clock, db=db, catalog=Catalog.load())
    for user_id, name in ((ORGANIZER, "Organizer"), (7, "阿强"), (8, "小李"), (9, "Zoe")):
        await users.touch(
            db, user_id=user_id, first_name=name, last_name=None, username=None,
            language_code="zh", now=START, private_chat=True,
        )  # fmt: skip
    for chat_id, area in ((G1, None), (G2, "蒋村街道"), (G3, "蒋村街道")):
        await groups.upsert(
            db, chat_id=chat_id, title=str(chat_id), type="supergroup", active=True,
            bot_status="member", can_pin=False, now=START,
        )  # fmt: skip
        if area:
            await groups.set_area(db, chat_id, area, START)
    return core.service(MeetingService)


async def rows(db, state: str | None = None, kind: str | None = None) -> list[outbox.OutboxRow]:
    sql, params = "SELECT id FROM outbox WHERE 1=1", []
    if state:
        sql += " AND state = ?"
        params.append(state)
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    found = []
    for (row_id,) in await db.fetchall(sql + " ORDER BY id", params):
        found.append(await outbox.get(db, row_id))
    return found


def weekly_draft(**changes) -> MeetingDraft:
    values = {
        "title": "小哥议事会",
        "first_start": MON_1430,
        "organizer_id": ORGANIZER,
        "rrule": rrule_weekly(0),
        "place": "蒋村驿站",
        "chat_ids": (G1,),
        "areas": ("蒋村街道",),
    }
    values.update(changes)
    return MeetingDraft(**values)


async def send_due(db, clock, now=None) -> list[outbox.OutboxRow]:
    """What the outbox worker does: take due rows (expiring stale ones), 'send', mark sent."""
    now = now or clock.now()
    claimed: list[outbox.OutboxRow] = []
    while rows := await outbox.fetch_due(db, now, 1000):
        for row in rows:
            assert await outbox.start_sending(db, row.id, now)
            await outbox.mark_sent(db, row.id, 9000 + row.id, now)
            claimed.append(row)
    return sorted(claimed, key=lambda r: (r.priority, r.due_at, r.id))


# -- planning ---------------------------------------------------------------------------------------


async def test_plan_creates_rows_at_the_offsets(svc, db):
    result = await svc.create(weekly_draft())
    meeting = result.meeting
    assert meeting.dtstart_local == MON_1430 and meeting.reminder_offsets == (1440, 60)
    reminders = await rows(db, kind=KIND_REMINDER)
    # Horizon 35 days from Wed 2026-11-25: Mondays Nov 30 .. Dec 28 = 5 occurrences x 2 offsets x 3 groups.
    assert len(reminders) == 5 * 2 * 3
    assert {r.chat_id for r in reminders} == {G1, G2, G3}
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    by_key = {r.dedup_key: r for r in reminders}
    day_before = by_key[f"mtg:{meeting.id}:2026-11-30T06:30Z:1440:{G1}"]
    hour_before = by_key[reminder_key(meeting.id, first, 60, G2)]
    assert day_before.due_at == first - dt.timedelta(days=1)
    assert day_before.expires_at == day_before.due_at + dt.timedelta(minutes=15)
    assert hour_before.due_at == first - dt.timedelta(hours=1)
    assert all(r.state == "pending" for r in reminders)

    params = day_before.payload["params"]
    assert day_before.payload["method"] == "sendMessage"
    assert "小哥议事会" in params["text"] and "1天" in params["text"] and "蒋村驿站" in params["text"]
    buttons = params["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [
        f"mt:rsvp:{meeting.id}:{occ_code(first)}:{c}" for c in ("y", "n", "m")
    ]
    assert all(
        len(b["callback_data"].encode()) <= 64
        for row in params["reply_markup"]["inline_keyboard"]
        for b in row
    )
    assert occ_from_code(occ_code(first)) == first

    # the organizer gets the topic list when topics close (1 day before by default)
    digests = await rows(db, kind=KIND_TOPICS)
    assert len(digests) == 5 and {d.chat_id for d in digests} == {ORGANIZER}
    assert digests[0].due_at == first - dt.timedelta(hours=20)  # topics close the evening before
    # the 1-day reminder invites topics (line + button); the 1-hour one comes after the deadline
    assert "/topic" in params["text"] and params["reply_markup"]["inline_keyboard"][1][0][
        "callback_data"
    ] == (f"mt:topic:{meeting.id}:{occ_code(first)}")
    hour_params = hour_before.payload["params"]
    assert "/topic" not in hour_params["text"]
    assert [b["callback_data"] for b in hour_params["reply_markup"]["inline_keyboard"][1]] == [
        f"mt:ics:{meeting.id}"
    ]
    # and the groups were told about the new meeting
    notices = await rows(db, kind=KIND_NOTICE)
    assert {n.chat_id for n in notices} == {G1, G2, G3}
    assert "每周一 14:30" in notices[0].payload["params"]["text"]


async def test_replanning_never_duplicates_and_extends_the_horizon(svc, db, clock):
    meeting = (await svc.create(weekly_draft())).meeting
    before = await rows(db)
    await svc.plan_reminders(meeting)
    await svc.replan_all()
    await svc.replan_all()
    assert [(r.id, r.dedup_key, r.state) for r in await rows(db)] == [
        (r.id, r.dedup_key, r.state) for r in before
    ]

    # A week later (reminders of the first Monday sent meanwhile) the daily re-plan adds one more Monday.
    clock.set(dt.datetime(2026, 11, 29, 6, 30, tzinfo=UTC))
    sent = await send_due(db, clock)
    assert {r.dedup_key.rsplit(":", 2)[1] for r in sent if r.kind == KIND_REMINDER} == {"1440"}
    clock.set(dt.datetime(2026, 11, 30, 5, 30, tzinfo=UTC))
    await send_due(db, clock)
    clock.set(dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    await send_due(db, clock)
    await svc.replan_all()
    await svc.replan_all()
    reminders = await rows(db, kind=KIND_REMINDER)
    assert len(reminders) == 6 * 2 * 3
    assert len({r.dedup_key for r in reminders}) == len(reminders)
    assert len([r for r in reminders if r.state == "sent"]) == 6  # both offsets of Nov 30 in 3 groups
    assert max(r.due_at for r in reminders).date() == dt.date(2027, 1, 4)


async def test_restart_sends_late_within_grace_and_drops_older(svc, db, clock, caplog):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    # Down from before the 1-day reminder until 10 minutes after it was due: still sent.
    clock.set(first - dt.timedelta(days=1) + dt.timedelta(minutes=10))
    await svc.replan_all()
    sent = await send_due(db, clock)
    assert [r.dedup_key for r in sent if r.kind == KIND_REMINDER] == [
        reminder_key(meeting.id, first, 1440, G1)
    ]
    # Down again until 20 minutes after the 1-hour reminder: dropped and logged, never sent.
    clock.set(first - dt.timedelta(minutes=40))
    with caplog.at_level("WARNING"):
        await svc.replan_all()
    assert "dropped meeting message" in caplog.text
    assert [r for r in await send_due(db, clock) if r.kind == KIND_REMINDER] == []
    hour_row = await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))
    assert hour_row.state == "expired"
    # A re-plan does not bring it back either.
    await svc.replan_all()
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))).state == "expired"


async def test_late_row_expires_at_the_worker_too(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    clock.set(first - dt.timedelta(minutes=60 - 16))
    sent = await send_due(db, clock)  # the 1-day one is long expired, the 1-hour one 16 minutes late
    assert [r for r in sent if r.kind == KIND_REMINDER] == []
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))).state == "expired"


# -- changes ----------------------------------------------------------------------------------------


async def test_cancel_series_withdraws_pending_and_tells_groups(svc, db, clock):
    meeting = (await svc.create(weekly_draft())).meeting
    clock.set(dt.datetime(2026, 11, 29, 6, 30, tzinfo=UTC))
    await send_due(db, clock)
    await svc.cancel(meeting.id)
    reminders = await rows(db, kind=KIND_REMINDER)
    assert {r.state for r in reminders} == {"sent", "cancelled"}
    assert not await rows(db, state="pending", kind=KIND_TOPICS)
    notices = [n for n in await rows(db, kind=KIND_NOTICE) if n.state == "pending"]
    assert {n.chat_id for n in notices} == {G1, G2, G3}
    assert "取消" in notices[0].payload["params"]["text"]
    # cancelled meetings are not re-planned
    await svc.replan_all()
    assert not await rows(db, state="pending", kind=KIND_REMINDER)
    with pytest.raises(MeetingError) as err:
        await svc.cancel(meeting.id)
    assert err.value.code == "cancelled"


async def test_skip_and_move_one_occurrence(svc, db):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    dec7 = dt.datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
    dec14 = dt.datetime(2026, 12, 14, 6, 30, tzinfo=UTC)

    await svc.skip_occurrence(meeting.id, dec7)
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, dec7, 60, G1))).state == "cancelled"
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, dec14, 60, G1))).state == "pending"
    assert len(await rows(db, state="pending", kind=KIND_REMINDER)) == 4 * 2

    new = dt.datetime(2026, 12, 16, 15, 0)  # Wednesday 15:00 local
    new_utc = dt.datetime(2026, 12, 16, 7, 0, tzinfo=UTC)
    await svc.move_occurrence(meeting.id, dec14, new)
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, dec14, 60, G1))).state == "cancelled"
    moved = await outbox.get_by_key(db, reminder_key(meeting.id, new_utc, 60, G1))
    assert moved.state == "pending" and moved.due_at == new_utc - dt.timedelta(hours=1)
    assert "改期" in moved.payload["params"]["text"]
    # RSVP data still names the original occurrence
    assert f":{occ_code(dec14)}:y" in json.dumps(moved.payload)

    # moving it back revives the original rows instead of losing them to the dedup key
    await svc.move_occurrence(meeting.id, dec14, dec14)
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, dec14, 60, G1))).state == "pending"
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, new_utc, 60, G1))).state == "cancelled"

    notices = await rows(db, kind=KIND_NOTICE)
    assert len(notices) == 4  # created, skipped, moved, moved back
    with pytest.raises(MeetingError) as err:
        await svc.skip_occurrence(meeting.id, dec7)
    assert err.value.code == "no_such_occurrence"


async def test_stale_copy_never_revives_a_cancelled_series(svc, db):
    """replan_all plans from copies loaded first: a cancel in between must win."""
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    await svc.cancel(meeting.id)
    assert not await rows(db, state="pending", kind=KIND_REMINDER)
    assert await svc.plan_reminders(meeting) == 0  # the copy still says 'active'
    assert not await rows(db, state="pending", kind=KIND_REMINDER)
    assert not await rows(db, state="pending", kind=KIND_TOPICS)


async def test_stale_copy_never_revives_a_skipped_occurrence(svc, db, monkeypatch):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    dec7 = dt.datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
    await svc.skip_occurrence(meeting.id, dec7)
    pending_after_skip = {r.dedup_key for r in await rows(db, state="pending")}
    await svc.plan_reminders(meeting)  # the copy has no skip
    for offset in (1440, 60):
        assert (await outbox.get_by_key(db, reminder_key(meeting.id, dec7, offset, G1))).state == "cancelled"
    assert {r.dedup_key for r in await rows(db, state="pending")} == pending_after_skip
    # the re-plan of every meeting (copies loaded before the skip) is just as harmless

    async def stale_list_active(_db):
        return [meeting]

    monkeypatch.setattr(meetings_repo, "list_active", stale_list_active)
    await svc.replan_all()
    assert {r.dedup_key for r in await rows(db, state="pending")} == pending_after_skip


async def test_plan_counts_rows_written(svc, db):
    """The figure is a number of rows (it used to be a sum of row ids)."""
    result = await svc.create(weekly_draft())
    planned = [r for r in await rows(db) if r.dedup_key.startswith(f"mtg:{result.meeting.id}:")]
    assert result.planned == len(planned) == 5 * 2 * 3 + 5  # reminders + one topics digest each
    assert await svc.plan_reminders(result.meeting) == 0  # nothing changed: nothing written
    assert await svc.replan_all() == 0
    updated = await svc.edit(result.meeting.id, place="新驿站")
    assert await svc.plan_reminders(updated) == 0
    second = await svc.create(weekly_draft(title="第二个会", chat_ids=(G1,), areas=()))
    assert second.planned == 5 * 2 + 5


async def test_reschedule_series_and_edit(svc, db):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    await svc.reschedule(meeting.id, first_start=dt.datetime(2026, 12, 1, 15, 0), rrule=rrule_weekly(1))
    pending = await rows(db, state="pending", kind=KIND_REMINDER)
    assert {r.due_at.astimezone(SH).strftime("%a %H:%M") for r in pending} == {"Mon 15:00", "Tue 14:00"}
    assert all(r.dedup_key.split(":")[2].startswith("2026-12") for r in pending)
    assert len(await rows(db, state="cancelled", kind=KIND_REMINDER)) == 10

    updated = await svc.edit(meeting.id, title="长桌会", reminder_offsets=[120])
    assert updated.revision == 2
    pending = await rows(db, state="pending", kind=KIND_REMINDER)
    assert len(pending) == 5 and all("长桌会" in r.payload["params"]["text"] for r in pending)
    assert all(r.dedup_key.rsplit(":", 2)[1] == "120" for r in pending)

    with pytest.raises(RecurrenceError):
        await svc.reschedule(meeting.id, first_start=MON_1430, rrule="FREQ=MINUTELY")


async def test_edit_offsets_replans_without_sending_twice(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    clock.set(first - dt.timedelta(days=1))
    sent_keys = [r.dedup_key for r in await send_due(db, clock) if r.kind == KIND_REMINDER]
    assert sent_keys == [reminder_key(meeting.id, first, 1440, G1)]

    await svc.edit(meeting.id, reminder_offsets=[1440, 120])
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, first, 1440, G1))).state == "sent"
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))).state == "cancelled"
    pending = await rows(db, state="pending", kind=KIND_REMINDER)
    assert {r.dedup_key.rsplit(":", 2)[1] for r in pending} == {"1440", "120"}
    assert not any(r.dedup_key.endswith(":60:-1001") for r in pending)
    # back again: the withdrawn rows are revived, the one already sent is left alone
    await svc.edit(meeting.id, reminder_offsets=[1440, 60])
    await svc.edit(meeting.id, reminder_offsets=[1440, 60, 30])
    for moment in (first - dt.timedelta(hours=1), first - dt.timedelta(minutes=30), first):
        clock.set(moment)
        sent_keys += [r.dedup_key for r in await send_due(db, clock) if r.kind == KIND_REMINDER]
    assert sent_keys == [
        reminder_key(meeting.id, first, 1440, G1),
        reminder_key(meeting.id, first, 60, G1),
        reminder_key(meeting.id, first, 30, G1),
    ]
    assert not any(r.dedup_key.endswith(":120:-1001") for r in await rows(db, state="pending"))


async def test_edit_targets_tells_added_and_removed_groups(svc, db):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    await svc.edit(meeting.id, chat_ids=[], areas=["蒋村街道"])
    pending = await rows(db, state="pending", kind=KIND_REMINDER)
    assert {r.chat_id for r in pending} == {G2, G3} and len(pending) == 5 * 2 * 2
    assert all(r.state == "cancelled" for r in await rows(db, kind=KIND_REMINDER) if r.chat_id == G1)
    notices = {n.chat_id: n.payload["params"]["text"] for n in await rows(db, kind=KIND_NOTICE)}
    assert "不再在本群" in notices[G1] and "小哥议事会" in notices[G1]
    assert "有更新" in notices[G2] and "有更新" in notices[G3]
    with pytest.raises(MeetingError) as err:
        await svc.edit(meeting.id, chat_ids=[], areas=[])
    assert err.value.code == "no_targets"


async def test_create_validation(svc):
    with pytest.raises(MeetingError) as err:
        await svc.create(weekly_draft(chat_ids=(), areas=()))
    assert err.value.code == "no_targets"
    with pytest.raises(MeetingError) as err:
        await svc.create(weekly_draft(rrule=None, first_start=dt.datetime(2026, 11, 1, 14, 30)))
    assert err.value.code == "in_the_past"
    with pytest.raises(MeetingError) as err:
        await svc.create(weekly_draft(reminder_offsets=(0,)))
    assert err.value.code == "bad_offset"
    with pytest.raises(RecurrenceError) as rerr:
        await svc.create(weekly_draft(rrule="FREQ=WEEKLY;BYDAY=XX"))
    assert "FREQ=WEEKLY;BYDAY=MO" in svc.error_text(rerr.value, "zh")
    assert svc.error_text(MeetingError("title_too_long", limit=80), "en").startswith("That name is too long")


# -- RSVP -------------------------------------------------------------------------------------------


async def test_rsvp_counts_edits_and_who_answered(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    clock.set(first - dt.timedelta(days=1))
    sent = await send_due(db, clock)
    day_row = next(r for r in sent if r.dedup_key == reminder_key(meeting.id, first, 1440, G1))
    message_id = (await outbox.get(db, day_row.id)).message_id
    assert message_id is not None

    result = await svc.rsvp(meeting.id, first, 7, "y")
    assert result.changed and result.counts == {"yes": 1, "no": 0, "maybe": 0}
    assert [(e.chat_id, e.message_id) for e in result.edits] == [(G1, message_id)]
    assert "参加 1" in result.edits[0].text
    again = await svc.rsvp(meeting.id, first, 7, "yes")
    assert not again.changed and again.edits == [] and again.counts["yes"] == 1
    await svc.rsvp(meeting.id, first, 8, "maybe")
    result = await svc.rsvp(meeting.id, first, 7, "n")
    assert result.counts == {"yes": 0, "no": 1, "maybe": 1}
    # the pending 1-hour reminder will go out with the current counts
    hour_row = await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))
    assert "不参加 1" in hour_row.payload["params"]["text"]

    # edits of other messages go through the outbox; the newest replaces a pending older one
    assert await svc.queue_edits(result.edits) == 1
    assert await svc.queue_edits(result.edits) == 1
    edits = [r for r in await rows(db) if r.kind == "meeting_edit"]
    assert [r.state for r in edits] == ["cancelled", "pending"]
    assert edits[1].payload["method"] == "editMessageText"
    assert edits[1].payload["params"]["message_id"] == message_id
    assert await svc.queue_edits(result.edits, skip=(G1, message_id)) == 0

    answered = await svc.answers(meeting.id, first)
    assert [(a.name, a.answer) for a in answered] == [("阿强", "no"), ("小李", "maybe")]
    occ = svc.find_occurrence(meeting, first)
    text = svc.answers_text(meeting, occ, answered, "zh")
    assert "待定（1）：小李" in text and "不参加（1）：阿强" in text

    # a different occurrence has its own counts; a finished one refuses answers
    other = await svc.rsvp(meeting.id, dt.datetime(2026, 12, 7, 6, 30, tzinfo=UTC), 7, "y")
    assert other.counts == {"yes": 1, "no": 0, "maybe": 0}
    clock.set(first + dt.timedelta(hours=2))
    with pytest.raises(MeetingError) as err:
        await svc.rsvp(meeting.id, first, 9, "y")
    assert err.value.code == "over"
    with pytest.raises(MeetingError) as err:
        await svc.rsvp(meeting.id, first + dt.timedelta(days=1), 9, "y")
    assert err.value.code == "no_such_occurrence"


# -- topics -----------------------------------------------------------------------------------------


async def test_topics_before_deadline_and_digest(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    target = await svc.topic_target(chat_id=G1)
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    assert target.meeting.id == meeting.id and target.occurrence.start_utc == first
    assert target.deadline == first - dt.timedelta(hours=20)

    await svc.add_topic(meeting.id, first, 7, "东门电动车能否临时停放")
    await svc.add_topic(meeting.id, first, 8, "  电梯高峰期能否让骑手先上  ")
    with pytest.raises(MeetingError) as err:
        await svc.add_topic(meeting.id, first, 8, "x" * 301)
    assert err.value.code == "topic_too_long"
    with pytest.raises(MeetingError) as err:
        await svc.add_topic(meeting.id, first, 8, "   ")
    assert err.value.code == "empty_topic"
    assert [t.text for t in await svc.topics(meeting.id, first)] == [
        "东门电动车能否临时停放",
        "电梯高峰期能否让骑手先上",
    ]

    digest = next(r for r in await rows(db, kind=KIND_TOPICS) if r.due_at == target.deadline)
    text = digest.payload["params"]["text"]
    assert "1. 东门电动车能否临时停放（阿强）" in text and "2. 电梯高峰期能否让骑手先上（小李）" in text

    clock.set(target.deadline)
    with pytest.raises(MeetingError) as err:
        await svc.add_topic(meeting.id, first, 9, "太晚了")
    assert err.value.code == "topics_closed"
    assert "截止" in svc.error_text(err.value, "zh")
    sent = await send_due(db, clock)
    assert [r.chat_id for r in sent if r.kind == KIND_TOPICS] == [ORGANIZER]
    # after the deadline the next topic goes... nowhere for this occurrence; the target is still it
    assert (await svc.topic_target(chat_id=G1)).occurrence.start_utc == first


async def test_topics_per_user_limit(svc):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    for i in range(5):
        await svc.add_topic(meeting.id, first, 7, f"topic {i}")
    with pytest.raises(MeetingError) as err:
        await svc.add_topic(meeting.id, first, 7, "one more")
    assert err.value.code == "too_many_topics"


# -- holidays ---------------------------------------------------------------------------------------


async def test_holiday_flag_a_week_ahead_and_move_to_next_working_day(svc, db, clock):
    clock.set(dt.datetime(2026, 9, 10, 2, 0, tzinfo=UTC))
    result = await svc.create(
        weekly_draft(rrule=rrule_quarterly_first_monday(), first_start=dt.datetime(2026, 9, 10, 14, 30))
    )
    meeting = result.meeting
    oct5 = dt.datetime(2026, 10, 5, 6, 30, tzinfo=UTC)
    assert [f.occurrence.start_utc for f in result.holidays][:1] == [oct5]  # flagged when scheduling
    assert "国庆" in result.holidays[0].name

    flags = await rows(db, kind=KIND_HOLIDAY)
    assert len(flags) == 1 and flags[0].chat_id == ORGANIZER
    assert flags[0].due_at == oct5 - dt.timedelta(days=7)
    markup = flags[0].payload["params"]["reply_markup"]["inline_keyboard"]
    data = [b["callback_data"] for row in markup for b in row]
    assert data == [f"mt:hol:{meeting.id}:{occ_code(oct5)}:{a}" for a in ("skip", "next", "keep")]
    assert all(len(d.encode()) <= 64 for d in data)
    assert "10月8日" in markup[1][0]["text"]  # Oct 6 and 7 are days off too

    clock.set(oct5 - dt.timedelta(days=7))
    assert [r.kind for r in await send_due(db, clock)] == [KIND_HOLIDAY]
    await svc.holiday_action(meeting.id, oct5, "next")
    oct8 = dt.datetime(2026, 10, 8, 6, 30, tzinfo=UTC)
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, oct5, 1440, G1))).state == "cancelled"
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, oct8, 1440, G1))).state == "pending"
    # the moved occurrence is not flagged again, and re-planning keeps it that way
    await svc.replan_all()
    assert len(await rows(db, kind=KIND_HOLIDAY)) == 1
    upcoming = await svc.upcoming(chat_id=G1)
    assert upcoming[0].occurrence.start_utc == oct8 and upcoming[0].occurrence.moved


async def test_holiday_skip(svc, db, clock):
    clock.set(dt.datetime(2026, 9, 10, 2, 0, tzinfo=UTC))
    meeting = (
        await svc.create(
            weekly_draft(rrule=rrule_quarterly_first_monday(), first_start=dt.datetime(2026, 9, 10, 14, 30))
        )
    ).meeting
    oct5 = dt.datetime(2026, 10, 5, 6, 30, tzinfo=UTC)
    await svc.holiday_action(meeting.id, oct5, "skip")
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, oct5, 60, G1))).state == "cancelled"
    assert (await svc.upcoming(chat_id=G1))[0].occurrence.start.date() == dt.date(2027, 1, 4)
    assert (
        await svc.holiday_action(meeting.id, dt.datetime(2027, 1, 4, 6, 30, tzinfo=UTC), "keep")
    ).id == meeting.id


# -- listing, outcome, calendar ---------------------------------------------------------------------


async def test_upcoming_for_chat_area_and_private(svc):
    weekly = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    area = (
        await svc.create(
            weekly_draft(
                title="片区长桌会",
                rrule=None,
                first_start=dt.datetime(2026, 12, 3, 15, 0),
                chat_ids=(),
                areas=("蒋村街道",),
            )
        )
    ).meeting
    in_g1 = await svc.upcoming(chat_id=G1, limit=3)
    assert [u.meeting.id for u in in_g1] == [weekly.id] * 3
    in_g2 = await svc.upcoming(chat_id=G2)  # via the group's area
    assert [u.meeting.id for u in in_g2] == [area.id]
    private = await svc.upcoming(areas=["蒋村街道"])
    assert [u.meeting.id for u in private] == [area.id]
    assert svc.card_text(area, in_g2[0].occurrence, "en").startswith("🗓 片区长桌会")


async def test_outcome_note_once_per_occurrence(svc, db, clock):
    meeting = (await svc.create(weekly_draft())).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    with pytest.raises(MeetingError) as err:
        await svc.post_outcome(meeting.id, first, "东门开放临停 10 分钟")
    assert err.value.code == "not_held_yet"
    clock.set(first + dt.timedelta(hours=2))
    assert [o.start_utc for o in await svc.recent_occurrences(meeting.id)] == [first]
    assert await svc.post_outcome(meeting.id, first, "东门开放临停 10 分钟") == 3
    notes = [r for r in await rows(db) if r.kind == "meeting_outcome"]
    assert {r.chat_id for r in notes} == {G1, G2, G3}
    assert "东门开放临停" in notes[0].payload["params"]["text"]
    with pytest.raises(MeetingError) as err:
        await svc.post_outcome(meeting.id, first, "again")
    assert err.value.code == "outcome_already_posted"


async def test_calendar_file(svc):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    await svc.skip_occurrence(meeting.id, dt.datetime(2026, 12, 7, 6, 30, tzinfo=UTC))
    name, data = await svc.ics(meeting.id)
    assert name == f"meeting-{meeting.id}.ics"
    (event,) = Calendar.from_ical(data).walk("VEVENT")
    assert event.decoded("DTSTART") == dt.datetime(2026, 11, 30, 14, 30, tzinfo=SH)
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO"
    assert [d.dt for d in event["EXDATE"].dts] == [dt.datetime(2026, 12, 7, 14, 30, tzinfo=SH)]
    assert int(event["SEQUENCE"]) == 1
    _, single = await svc.occurrence_ics(meeting.id, dt.datetime(2026, 12, 14, 6, 30, tzinfo=UTC))
    (one,) = Calendar.from_ical(single).walk("VEVENT")
    assert one.decoded("DTSTART") == dt.datetime(2026, 12, 14, 6, 30, tzinfo=UTC)


async def test_berlin_meeting_reminders_follow_local_time_across_dst(svc, db, clock):
    clock.set(dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    meeting = (
        await svc.create(
            weekly_draft(
                first_start=dt.datetime(2026, 3, 16, 9, 0), tz="Europe/Berlin", chat_ids=(G1,), areas=()
            )
        )
    ).meeting
    hour_rows = sorted(
        (r for r in await rows(db, kind=KIND_REMINDER) if r.dedup_key.rsplit(":", 2)[1] == "60"),
        key=lambda r: r.due_at,
    )
    assert [r.due_at.strftime("%m-%d %H:%M") for r in hour_rows[:4]] == [
        "03-16 07:00", "03-23 07:00", "03-30 06:00", "04-06 06:00",
    ]  # fmt: skip
    assert "(Europe/Berlin)" in hour_rows[0].payload["params"]["text"]
    assert meeting.tz == "Europe/Berlin"


def test_meeting_texts_complete_in_both_languages():
    from bot.core.i18n import placeholders

    catalog = Catalog.load()
    zh = {k: v for k, v in catalog.texts["zh"].items() if k.startswith("meetings.")}
    en = {k: v for k, v in catalog.texts["en"].items() if k.startswith("meetings.")}
    assert zh.keys() == en.keys()
    assert {k for k in zh if placeholders(zh[k]) != placeholders(en[k])} == set()


async def test_preview_before_saving(svc, db):
    draft = weekly_draft(rrule=rrule_quarterly_first_monday(), first_start=dt.datetime(2026, 9, 1, 14, 30))
    with pytest.raises(MeetingError):  # the clock says 2026-11-25: only later occurrences are shown
        svc.preview(weekly_draft(rrule=None, first_start=dt.datetime(2026, 9, 1, 14, 30)))
    sched, upcoming = svc.preview(draft)
    assert sched.dtstart.date() == dt.date(2026, 10, 5)  # snapped to the first instance
    assert [o.start.date().isoformat() for o in upcoming] == ["2027-01-04", "2027-04-05", "2027-07-05"]
    text = svc.preview_text(draft, "zh")
    assert "每季度第一个周一 14:30" in text and "提前提醒：1天、1小时" in text
    assert "清明节" in text  # 2027-04-05 is Tomb-Sweeping Day
    assert await rows(db) == []  # nothing stored


async def test_group_migrated_to_supergroup_gets_each_reminder_once(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    new_id = -1009001
    # What the runtime does on a migration: the group record moves, unsent rows are re-addressed.
    await groups.migrate(db, old_id=G1, new_id=new_id, now=START)
    await outbox.retarget_chat(db, G1, new_id, START)
    await svc.replan_all()
    pending = await rows(db, state="pending", kind=KIND_REMINDER)
    assert {r.chat_id for r in pending} == {new_id}
    assert len(pending) == 5 * 2  # once per occurrence and offset, not twice
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, new_id))).state == "pending"
    assert (await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))).state == "cancelled"


async def test_a_changed_rsvp_counts_after_a_restart(tmp_path, clock):
    """待定 -> 参加 answered on a fresh connection (after a restart) is a change, not "unchanged": the
    count of changed rows, never SQLite's lastrowid (0 on a fresh connection after an UPDATE)."""
    path = tmp_path / "r.sqlite3"
    first = await make_database(path).open()
    await first.migrate()
    core = Core(config=Config(), clock=clock, db=first, catalog=Catalog.load())
    meeting = (await MeetingService(core).create(weekly_draft())).meeting
    occurrence = START + dt.timedelta(days=5)
    assert await meetings_repo.set_rsvp(first, meeting.id, occurrence, 7, "maybe", START)
    await first.close()
    fresh = await make_database(path).open()  # a restart: a new connection
    try:
        assert await meetings_repo.set_rsvp(fresh, meeting.id, occurrence, 7, "yes", START)
        assert not await meetings_repo.set_rsvp(fresh, meeting.id, occurrence, 7, "yes", START)
        assert await meetings_repo.rsvp_counts(fresh, meeting.id, occurrence) == {
            "yes": 1,
            "no": 0,
            "maybe": 0,
        }
    finally:
        await fresh.close()


# -- planning at scale ------------------------------------------------------------------------------


class Traced:
    """Every statement run on the database's connections (expanded with its values)."""

    def __init__(self, database: Any) -> None:
        self.database = database
        self.seen: list[str] = []

    async def __aenter__(self) -> Traced:
        for conn in (self.database._conn, *self.database._all_readers):
            await conn.set_trace_callback(self.seen.append)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in (self.database._conn, *self.database._all_readers):
            await conn.set_trace_callback(None)


async def full_scans_of_outbox(db, statements: list[str]) -> list[str]:
    found = []
    for sql in statements:
        if "outbox" not in sql or sql.startswith(("BEGIN", "COMMIT", "EXPLAIN")):
            continue
        plan = " | ".join(r[3] for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql))
        if any(step.startswith("SCAN outbox") or step.startswith("SCAN o ") for step in plan.split(" | ")):
            found.append(f"{sql}\n  -> {plan}")
    return found


@pytest.mark.sqlite_only
async def test_replanning_reads_the_outbox_by_index_and_writes_nothing_unchanged(svc, db, clock):
    meeting = (await svc.create(weekly_draft())).meeting
    await svc.create(weekly_draft(title="第二个会", chat_ids=(G1,), areas=()))
    async with Traced(db) as trace:
        assert await svc.replan_all() == 0
        assert await svc.plan_reminders(meeting) == 0
    assert not [s for s in trace.seen if s.startswith("BEGIN") or s.lstrip().upper().startswith("INSERT")]
    assert not [s for s in trace.seen if " LIKE " in s.upper()]
    assert await full_scans_of_outbox(db, trace.seen) == []


@pytest.mark.sqlite_only
async def test_replanning_writes_only_the_new_occurrence(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    clock.set(dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC))  # a week on: one more Monday in the horizon
    await send_due(db, clock)
    async with Traced(db) as trace:
        assert await svc.plan_reminders(meeting) == 2 + 1  # two reminders and the topics digest
    writes = [s for s in trace.seen if s.lstrip().upper().startswith(("INSERT INTO OUTBOX", "UPDATE OUTBOX"))]
    assert len(writes) == 3 and all("2027-01-04" in s for s in writes), writes
    assert sum(s.startswith("BEGIN") for s in trace.seen) == 1
    assert await full_scans_of_outbox(db, trace.seen) == []


async def test_rsvp_edits_sent_reminders_and_announcements_after_their_rows_are_pruned(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    for when in (clock.now(), first - dt.timedelta(days=1)):  # the announcement, then the reminder
        clock.set(when)
        for row in await send_due(db, clock):  # the outbox worker runs the hooks after each send
            hook = {KIND_REMINDER: svc.on_reminder_done, KIND_NOTICE: svc.on_notice_done}.get(row.kind)
            if hook is not None:
                await hook(row, "sent", {"message_id": 9000 + row.id})
    day_key = reminder_key(meeting.id, first, 1440, G1)
    day_message = 9000 + (await outbox.get_by_key(db, day_key)).id
    notice = next(r for r in await rows(db, kind=KIND_NOTICE))
    # Pruned (keep_days elapsed for these rows: a short keep, or a reminder 30 days ahead).
    assert await outbox.prune(db, clock.now() + dt.timedelta(seconds=1)) >= 2
    assert await outbox.get_by_key(db, day_key) is None and await outbox.get(db, notice.id) is None
    result = await svc.rsvp(meeting.id, first, 7, "y")
    assert sorted((e.chat_id, e.message_id) for e in result.edits) == sorted(
        [(G1, day_message), (G1, 9000 + notice.id)]
    )
    # the pending 1-hour reminder is still re-rendered in the outbox, and never sent twice
    assert (
        "参加 1"
        in (await outbox.get_by_key(db, reminder_key(meeting.id, first, 60, G1))).payload["params"]["text"]
    )
    await svc.replan_all()
    assert await outbox.get_by_key(db, day_key) is None  # its tombstone keeps it from coming back


async def test_long_jobs_checkpoint_between_batches_on_either_engine(svc, db, clock, monkeypatch):
    """The start-up re-plan (expiry batches, then past CHECKPOINT_ROWS rows written) and the daily
    outbox prune ask for a checkpoint between batches: SQLite's runs in the background, PostgreSQL
    needs none. Either way the job finishes (on PostgreSQL the request used to fail the job)."""
    monkeypatch.setattr(MeetingService, "CHECKPOINT_ROWS", 1)
    monkeypatch.setattr(outbox, "EXPIRE_BATCH", 1)
    for n in range(3):
        await svc.create(weekly_draft(title=f"议事会{n}", chat_ids=(G1, G2), areas=()))
    clock.set(START + dt.timedelta(days=9))  # a week of reminders never sent, a week more to plan
    with monkeypatch.context() as m:
        m.setattr(outbox, "expire_overdue", _one_at_a_time(outbox.expire_overdue))
        assert await svc.replan_all() >= 3
    assert len(await rows(db, state="expired")) >= 2
    await send_due(db, clock)
    clock.set(START + dt.timedelta(days=60))
    assert await svc.core.outbox.prune(batch=2) >= 4
    assert await rows(db, state="sent") == []


def _one_at_a_time(expire):
    async def expire_one(db, prefix, now, limit=1):
        return await expire(db, prefix, now, 1)

    return expire_one


# -- plan signatures: the daily re-plan of an unchanged series ------------------------------------------


class _Spy:
    """Records the prefixes `planned_rows_many` is asked for and the reminders rendered."""

    def __init__(self, monkeypatch, svc) -> None:
        self.prefixes: list[str] = []
        self.rendered = 0
        real_rows, real_texts = outbox.planned_rows_many, svc.reminder_texts

        async def rows_of(db, prefixes, since):
            self.prefixes.extend(prefixes)
            return await real_rows(db, prefixes, since)

        def texts(*args, **kwargs):
            self.rendered += 1
            return real_texts(*args, **kwargs)

        monkeypatch.setattr(outbox, "planned_rows_many", rows_of)
        monkeypatch.setattr(svc, "reminder_texts", texts)


async def test_an_unchanged_series_is_neither_read_nor_rendered_again_only_extended(
    svc, db, clock, monkeypatch
):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    other = (
        await svc.create(weekly_draft(title="周三会", rrule=rrule_weekly(2), chat_ids=(G2,), areas=()))
    ).meeting
    spy = _Spy(monkeypatch, svc)
    assert await svc.replan_all() == 0
    assert spy.prefixes == [] and spy.rendered == 0  # nothing read from the outbox, nothing rendered

    # A week on, one more Monday and one more Wednesday enter the horizon: only their rows are read,
    # rendered and written.
    clock.set(dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC))
    await send_due(db, clock)
    assert await svc.replan_all() == 2 * (2 + 1)  # two reminders and a topics digest each
    monday, wednesday = (
        dt.datetime(2027, 1, 4, 6, 30, tzinfo=UTC),
        dt.datetime(2026, 12, 30, 6, 30, tzinfo=UTC),
    )
    assert sorted(spy.prefixes) == sorted(
        [f"mtg:{meeting.id}:{monday:%Y-%m-%dT%H:%MZ}:", f"mtg:{other.id}:{wednesday:%Y-%m-%dT%H:%MZ}:"]
    )
    assert spy.rendered == 2
    reminders = [r for r in await rows(db, kind=KIND_REMINDER) if r.due_at.date() >= dt.date(2026, 12, 29)]
    assert sorted((r.chat_id, r.due_at) for r in reminders) == sorted(
        [
            (G1, monday - dt.timedelta(days=1)),
            (G1, monday - dt.timedelta(hours=1)),
            (G2, wednesday - dt.timedelta(days=1)),
            (G2, wednesday - dt.timedelta(hours=1)),
        ]
    )
    spy.prefixes.clear()
    assert await svc.replan_all() == 0
    assert spy.prefixes == []


async def test_a_change_the_replan_was_not_told_about_is_planned_all_the_same(svc, db, clock):
    """Inputs changed behind the service's back (an answer, a topic, a group gone) change the series'
    plan signature: its next re-plan compares every row again and writes what changed."""
    meeting = (await svc.create(weekly_draft(chat_ids=(G1, G2), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    await meetings_repo.set_rsvp(db, meeting.id, first, 7, "yes", clock.now())
    await meetings_repo.add_topic(db, meeting.id, first, 8, "电动车充电桩不够用", clock.now())
    await groups.set_active(db, G2, False, clock.now())
    assert await svc.replan_all() >= 2
    day_row = await outbox.get_by_key(db, reminder_key(meeting.id, first, 1440, G1))
    assert "✅ 参加 1 · ❌ 不参加 0 · ❓ 待定 0" in day_row.payload["params"]["text"]
    digest = next(r for r in await rows(db, kind=KIND_TOPICS) if r.state == "pending" and r.due_at < first)
    assert "电动车充电桩不够用" in digest.payload["params"]["text"]
    gone = await outbox.get_by_key(db, reminder_key(meeting.id, first, 1440, G2))
    assert gone.state == "cancelled"
    assert await svc.replan_all() == 0


async def test_new_texts_or_settings_replan_every_series_once(svc, db, clock):
    meeting = (await svc.create(weekly_draft(chat_ids=(G1,), areas=()))).meeting
    first = dt.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    texts = {lang: dict(table) for lang, table in svc.core.catalog.texts.items()}
    texts["zh"]["meetings.reminder.title"] = "📣 「{title}」{offset}后开始"
    core = Core(config=svc.core.config, clock=clock, db=db, catalog=Catalog(texts))
    upgraded = core.service(MeetingService)
    assert await upgraded.replan_all() >= 2
    row = await outbox.get_by_key(db, reminder_key(meeting.id, first, 1440, G1))
    assert row.payload["params"]["text"].startswith("📣 「小哥议事会」")
    assert await upgraded.replan_all() == 0
