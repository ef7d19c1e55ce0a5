"""Scale scenario "meetings": one series' reminder planning, and re-planning every series.

Two databases, each filled through the project's own code: groups and organizers through their
repositories, weekly meetings through `MeetingService.create` (which plans them and announces them),
four past weeks of each series' sent reminders and the rest of the outbox (broadcasts, notices, other
reminders, 95% finished) through the outbox's INSERT (see bench/scale/outbox.py):

* small: 100 series, 100,000 outbox rows;  large: 1,000 series, 1,000,000 outbox rows.

Each series is weekly (on every day of the week, one seventh of them each) and announced in one group
and the groups of one area (5 chats): 5 occurrences x 2 offsets x 5 chats + 5 topic digests = 55 rows
planned ahead, 44 sent in the past four weeks.

* one series' planning (`plan_reminders`): unchanged (the daily case), and after its place changed
  (every pending row rewritten), beside the old code (kept below: `dedup_key LIKE` scans, one
  statement per row, two reads per occurrence).
* re-planning every series (`replan_all`) at start-up (nothing changed) and a day later (a new
  occurrence enters the horizon of a seventh of the series): total seconds, the longest time the
  re-plan held the writer lock, and the p95 of a reply's database work (a user touch + a group read
  every 10 ms) before (3 s) and meanwhile, beside the old code (at 1,000 series measured on a sample
  of 100 series and scaled, as it takes minutes).

Each scenario runs on a fresh copy of the kept database (`--workdir` keeps them between runs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

from bench.scale.common import NOW, make_core, open_db, pct, report
from bench.scale.outbox import _rows as outbox_rows
from bench.scale.outbox import fill as outbox_fill
from bench.scale.outbox import schema_tag
from bot.core.clock import FakeClock
from bot.kit import holidays_cn
from bot.kit.recurrence import rrule_weekly
from bot.meetings.service import (
    KIND_HOLIDAY,
    KIND_REMINDER,
    KIND_TOPICS,
    PLAN_ROOT,
    MeetingDraft,
    MeetingService,
    holiday_key,
    plan_prefix,
    reminder_key,
    topics_key,
)
from storage import groups as groups_repo
from storage import meetings as meetings_repo
from storage import outbox as outbox_repo
from storage import users as users_repo
from storage.db import Database, to_db
from storage.meetings import MeetingRecord
from storage.outbox import NewMessage

LAYOUT = 3
SHAPES = {"small": (100, 100_000), "large": (1_000, 1_000_000)}
QUICK_SHAPES = {"quick": (10, 10_000)}
AREAS = 250  # 4 groups each
NAIVE_SAMPLE = 100


# -- the fill ----------------------------------------------------------------------------------------


async def build(path: Path, series: int, outbox_size: int) -> None:
    db = await open_db(path)
    try:
        core = make_core(db)
        svc = core.service(MeetingService)
        for i in range(AREAS * 4):
            chat_id = -1_001_000_000_000 - i
            await groups_repo.upsert(
                db, chat_id=chat_id, title=f"小哥群{i}", type="supergroup", active=True,
                bot_status="member", can_pin=False, now=NOW,
            )  # fmt: skip
            await groups_repo.set_area(db, chat_id, f"街道{i % AREAS}", NOW)
        for organizer in range(50):
            await users_repo.touch(
                db, user_id=500 + organizer, first_name=f"组织者{organizer}", last_name=None, username=None,
                language_code="zh", now=NOW, private_chat=True,
            )  # fmt: skip
        history: list[tuple[NewMessage, str]] = []
        for i in range(series):
            weekday = i % 7  # every day some series gain an occurrence at the end of the horizon
            draft = MeetingDraft(
                title=f"议事会{i}",
                first_start=dt.datetime(2026, 10, 26, 14, 30) + dt.timedelta(days=weekday, minutes=i % 120),
                organizer_id=500 + i % 50,
                rrule=rrule_weekly(weekday),
                place=f"驿站{i}",
                chat_ids=(-1_001_000_000_000 - (i * 7) % (AREAS * 4),),
                areas=(f"街道{i % AREAS}",),
            )
            meeting = (await svc.create(draft)).meeting
            chats = await svc.target_chats(meeting)
            for week in range(1, 5):  # the four past Mondays: their reminders and digests went out
                occ = svc.schedule_of(meeting).occurrences_between(
                    NOW - dt.timedelta(days=7 * week + 1), NOW - dt.timedelta(days=7 * week - 6)
                )[0]
                for offset in meeting.reminder_offsets:
                    due = occ.start_utc - dt.timedelta(minutes=offset)
                    for chat in chats:
                        key = reminder_key(meeting.id, occ.start, offset, chat)
                        text = {"method": "sendMessage", "params": {"text": f"{meeting.title} {offset}"}}
                        msg = NewMessage(KIND_REMINDER, key, chat, text, due, priority=4)
                        history.append((msg, "sent"))
                key = topics_key(meeting.id, occ.start, meeting.organizer_id)
                msg = NewMessage(
                    KIND_TOPICS, key, meeting.organizer_id, {"method": "sendMessage"}, occ.start_utc
                )
                history.append((msg, "sent"))
        history.sort(key=lambda pair: pair[0].due_at)
        await outbox_fill(db, history)
        have = await db.fetchval("SELECT COUNT(*) FROM outbox")
        await outbox_fill(db, outbox_rows(max(0, outbox_size - have), random.Random(series)))
        await db.fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await db.close()


async def kept(workdir: Path, name: str, series: int, outbox_size: int) -> Path:
    path = workdir / f"meetings-{name}.sqlite3"
    meta = Path(str(path) + ".json")
    want = {"layout": LAYOUT, "series": series, "outbox": outbox_size, "schema": schema_tag()}
    if not (path.exists() and meta.exists() and json.loads(meta.read_text()) == want):
        started = time.perf_counter()
        await build(path, series, outbox_size)
        meta.write_text(json.dumps(want))
        print(f"   (built {name}: {series:,} series, {outbox_size:,} outbox rows in "
              f"{time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    return path


async def fresh_copy(path: Path, name: str) -> Database:
    copy = path.with_name(f"{path.stem}-{name}.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        Path(str(copy) + suffix).unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    db = Database(copy)
    await db.open()
    await db.migrate()
    return db


async def drop(db: Database) -> None:
    path = db.path
    await db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


class TimedLock(asyncio.Lock):
    """The writer lock, remembering how long the re-plan held it each time (every write and
    transaction of it; not the reply probe's)."""

    def __init__(self) -> None:
        super().__init__()
        self.holds: list[float] = []
        self._since: float | None = None

    async def acquire(self) -> bool:
        await super().acquire()
        task = asyncio.current_task()
        self._since = None if task is not None and task.get_name() == "probe" else time.perf_counter()
        return True

    def release(self) -> None:
        if self._since is not None:
            self.holds.append((time.perf_counter() - self._since) * 1000)
        super().release()


# -- the old code (kept here only) -------------------------------------------------------------------


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def naive_wanted(svc: MeetingService, meeting: MeetingRecord) -> tuple[list[NewMessage], list[Any]]:
    """The old `_wanted`: the counts and the topics read once per occurrence."""
    now = svc.now
    if not meeting.active:
        return [], []
    grace = dt.timedelta(minutes=svc.cfg.late_grace_minutes)
    sched = svc.schedule_of(meeting)
    chats = await svc.target_chats(meeting)
    lang = svc.group_lang
    organizer_lang = await svc.core.user_lang(meeting.organizer_id)
    messages: list[NewMessage] = []
    links: list[Any] = []
    for occ in sched.occurrences_between(now - grace, now + dt.timedelta(days=svc.cfg.horizon_days)):
        counts = await meetings_repo.rsvp_counts(svc.core.db, meeting.id, occ.original_start)
        for offset in meeting.reminder_offsets:
            due = occ.start_utc - dt.timedelta(minutes=offset)
            expires = due + grace
            if expires <= now:
                continue
            payload = {
                "method": "sendMessage",
                "params": {
                    "text": svc.reminder_text(meeting, occ, offset, counts, lang),
                    "reply_markup": svc.reminder_markup(meeting, occ, offset, lang),
                },
            }
            for chat_id in chats:
                key = reminder_key(meeting.id, occ.start, offset, chat_id)
                messages.append(
                    NewMessage(KIND_REMINDER, key, chat_id, payload, due, expires_at=expires, priority=4)
                )
                links.append(meetings_repo.ReminderLink(key, meeting.id, occ.original_start, chat_id, offset))
        topics_due = occ.start_utc - dt.timedelta(minutes=meeting.topic_deadline_minutes)
        if topics_due >= meeting.created_at and occ.start_utc > now:
            text = await svc._topics_text(meeting, occ, organizer_lang)
            messages.append(
                NewMessage(KIND_TOPICS, topics_key(meeting.id, occ.start, meeting.organizer_id),
                           meeting.organizer_id, {"method": "sendMessage", "params": {"text": text}}, topics_due,
                           expires_at=occ.start_utc, priority=3)
            )  # fmt: skip
        holiday = holidays_cn.holiday_name(occ.start.date(), organizer_lang)
        holiday_due = occ.start_utc - dt.timedelta(days=svc.cfg.holiday_notice_days)
        if holiday and not occ.moved and holiday_due >= meeting.created_at and occ.start_utc > now:
            messages.append(
                NewMessage(KIND_HOLIDAY, holiday_key(meeting.id, occ.start, meeting.organizer_id),
                           meeting.organizer_id, svc.holiday_payload(meeting, occ, holiday, organizer_lang),
                           holiday_due, expires_at=occ.start_utc, priority=3)
            )  # fmt: skip
    return messages, links


async def naive_plan(svc: MeetingService, meeting: MeetingRecord) -> int:
    """The old `plan_reminders`: LIKE scans of the outbox, one statement per row, in one transaction."""
    db = svc.core.db
    for _attempt in range(5):
        now = svc.now
        messages, links = await naive_wanted(svc, meeting)
        wanted = {m.dedup_key for m in messages}
        async with db.transaction() as tx:
            current = await meetings_repo.get(tx, meeting.id)
            pending = await tx.fetchall(
                "SELECT id, dedup_key FROM outbox WHERE dedup_key LIKE ? ESCAPE '\\' AND state = 'pending'"
                " AND (expires_at IS NULL OR expires_at >= ?) ORDER BY id",
                (_like(plan_prefix(meeting.id)), to_db(now)),
            )
            if current is None or not current.active:
                stale = [r[0] for r in pending]
                messages, links = [], []
            elif dataclasses.replace(current, updated_at=meeting.updated_at) != meeting:
                meeting = current
                continue
            else:
                stale = [r[0] for r in pending if r[1] not in wanted]
            for row_id in stale:
                await tx.execute(
                    "UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE id = ? AND state = 'pending'",
                    (to_db(now), row_id),
                )
            for link in links:
                await tx.execute(
                    "INSERT INTO meeting_reminders(dedup_key, meeting_id, occurrence, chat_id, offset_minutes)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
                    (
                        link.dedup_key,
                        link.meeting_id,
                        to_db(link.occurrence),
                        link.chat_id,
                        link.offset_minutes,
                    ),
                )
            changed = 0
            for m in messages:
                written = await tx.fetchall(
                    """
                    INSERT INTO outbox(kind, dedup_key, chat_id, payload, batch, priority, due_at, expires_at,
                        created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(dedup_key) DO UPDATE SET
                        kind = excluded.kind, chat_id = excluded.chat_id, payload = excluded.payload,
                        batch = excluded.batch, priority = excluded.priority, due_at = excluded.due_at,
                        expires_at = excluded.expires_at, state = 'pending', updated_at = excluded.updated_at
                    WHERE outbox.state = 'cancelled'
                        OR (outbox.state = 'pending' AND (
                            outbox.kind IS NOT excluded.kind OR outbox.chat_id IS NOT excluded.chat_id
                            OR outbox.payload IS NOT excluded.payload OR outbox.batch IS NOT excluded.batch
                            OR outbox.priority IS NOT excluded.priority OR outbox.due_at IS NOT excluded.due_at
                            OR outbox.expires_at IS NOT excluded.expires_at))
                    RETURNING id
                    """,
                    outbox_repo._values(m, now)[:10],
                )
                changed += len(written)
        return changed
    return 0


async def naive_meetings(db: Database) -> list[MeetingRecord]:
    """The old `list_active`: three queries per meeting."""
    out = []
    for row in await db.fetchall("SELECT id FROM meetings WHERE state = 'active' ORDER BY id"):
        meeting = await meetings_repo.get(db, row["id"])
        if meeting is not None:
            out.append(meeting)
    return out


async def naive_replan_all(svc: MeetingService, sample: int | None = None) -> int:
    db = svc.core.db
    await db.fetchall(
        "UPDATE outbox SET state = 'expired', updated_at = ? WHERE dedup_key LIKE ? ESCAPE '\\'"
        " AND state = 'pending' AND expires_at IS NOT NULL AND expires_at < ? RETURNING *",
        (to_db(svc.now), _like(PLAN_ROOT), to_db(svc.now)),
    )
    total = 0
    for meeting in (await naive_meetings(db))[:sample]:
        total += await naive_plan(svc, meeting)
    return total


# -- the paths ---------------------------------------------------------------------------------------


async def one_series(path: Path, series: int, outbox_size: int, n: int) -> None:
    db = await fresh_copy(path, "one")
    try:
        svc = make_core(db).service(MeetingService)
        rng = random.Random(1)
        half = series // 2
        ours_ids = [rng.randrange(1, half + 1) for _ in range(n + 3)]
        naive_ids = [rng.randrange(half + 1, series + 1) for _ in range(n + 3)]

        async def unchanged(fn: Any, ids: list[int]) -> list[float]:
            out = []
            for meeting_id in ids:
                meeting = await meetings_repo.get(db, meeting_id)
                start = time.perf_counter()
                await fn(svc, meeting)
                out.append((time.perf_counter() - start) * 1000)
            return out[3:]

        async def changed(fn: Any, ids: list[int], tag: str) -> list[float]:
            out = []
            for i, meeting_id in enumerate(ids):
                async with db.transaction() as tx:
                    await meetings_repo.update(tx, meeting_id, NOW, place=f"{tag}新驿站{i}")
                meeting = await meetings_repo.get(db, meeting_id)
                start = time.perf_counter()
                written = await fn(svc, meeting)
                out.append((time.perf_counter() - start) * 1000)
                assert written >= 25, written
            return out[3:]

        ours = await unchanged(MeetingService.plan_reminders, ours_ids)
        naive = await unchanged(naive_plan, naive_ids)
        report("meetings: plan one series, same", outbox_size, "outbox", ours, naive)
        ours = await changed(MeetingService.plan_reminders, ours_ids, "o")
        naive = await changed(naive_plan, naive_ids, "n")
        report("meetings: plan one series, edited", outbox_size, "outbox", ours, naive)
    finally:
        await drop(db)


async def probe(db: Database, stop: asyncio.Event, out: list[float]) -> None:
    """A reply's database work every 10 ms: the user touched (a write), the group read."""
    i = 0
    while not stop.is_set():
        start = time.perf_counter()
        await users_repo.touch(
            db, user_id=90_000 + i % 100, first_name="小王", last_name=None, username=None,
            language_code="zh", now=NOW, private_chat=True,
        )  # fmt: skip
        await groups_repo.get(db, -1_001_000_000_000 - i % 100)
        out.append((time.perf_counter() - start) * 1000)
        i += 1
        await asyncio.sleep(0.01)


async def replan(
    path: Path, series: int, when: dt.datetime, naive: bool, idle_seconds: float
) -> dict[str, Any]:
    db = await fresh_copy(path, "replan")
    try:
        svc = make_core(db).service(MeetingService)
        svc.core.clock = FakeClock(when)
        idle: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(probe(db, stop, idle), name="probe")
        await asyncio.sleep(idle_seconds)  # as long as a re-plan: its own writes fill the log as often
        stop.set()
        await task
        lock = TimedLock()
        db._lock = lock
        during: list[float] = []
        stop = asyncio.Event()
        task = asyncio.create_task(probe(db, stop, during), name="probe")
        sample = NAIVE_SAMPLE if naive and series > NAIVE_SAMPLE else None
        start = time.perf_counter()
        if naive:
            written = await naive_replan_all(svc, sample)
        else:
            written = await svc.replan_all()
        seconds = time.perf_counter() - start
        stop.set()
        await task
        scale = series / sample if sample else 1
        return {
            "seconds": seconds * scale,
            "estimated": sample is not None,
            "longest": max(lock.holds, default=0.0),
            "written": int(written * scale),
            "idle_p95": pct(idle, 0.95),
            "during_p95": pct(during, 0.95),
        }
    finally:
        await drop(db)


def replan_line(label: str, series: int, ours: dict[str, Any], naive: dict[str, Any]) -> None:
    ok = "ok " if ours["seconds"] <= 2.0 and ours["longest"] <= 20.0 else "SLOW"
    est = " (est. from 100)" if naive["estimated"] else ""
    print(
        f"{label:<34} {series:>10,} {'series':<10} {ours['seconds']:6.2f} s, longest write hold "
        f"{ours['longest']:5.1f} ms, {ours['written']:,} rows written, reply p95 {ours['idle_p95']:.1f} -> "
        f"{ours['during_p95']:.1f} ms  {ok}| naive {naive['seconds']:7.1f} s{est}, longest "
        f"{naive['longest']:7.1f} ms, reply p95 -> {naive['during_p95']:.1f} ms "
        f"({naive['seconds'] / max(ours['seconds'], 1e-9):,.0f}x)",
        flush=True,
    )


async def run(args: Any) -> list[dict]:
    quiet = [logging.getLogger(name) for name in ("bot", "storage")]  # re-plans log every row dropped
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        await _run(args)
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    return []


async def _run(args: Any) -> None:
    shapes = QUICK_SHAPES if args.quick else SHAPES
    n = 8 if args.quick else 40
    for name, (series, outbox_size) in shapes.items():
        path = await kept(args.workdir, name, series, outbox_size)
        await one_series(path, series, outbox_size, n)
        for label, when in (("start-up", NOW), ("a day later", NOW + dt.timedelta(days=1))):
            idle = 0.3 if args.quick else 3.0
            ours = await replan(path, series, when, naive=False, idle_seconds=idle)
            naive = await replan(path, series, when, naive=True, idle_seconds=idle)
            replan_line(f"meetings: re-plan all, {label}", series, ours, naive)
