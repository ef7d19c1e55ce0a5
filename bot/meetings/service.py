"""Council meetings (议事会): scheduling, reminders through the outbox, RSVP, agenda topics, .ics.

Everything a meeting sends later is an outbox row planned by `plan_reminders` (idempotent):

* reminder  ``mtg:{id}:{start}:{offset}:{chat}``  to each target group, due ``start - offset``,
  expiring ``late_grace_minutes`` later (the outbox worker drops it as 'expired' after that);
* topics    ``mtg:{id}:{start}:topics:{organizer}``  the collected agenda topics, at the topic deadline;
* holiday   ``mtg:{id}:{start}:holiday:{organizer}``  skip/move buttons, ``holiday_notice_days`` ahead;
* moved     ``mtg:{id}:{original}:moved:{new}:{chat}``  a move decided while both dates were beyond
  the horizon (``horizon_days``), told to the groups ``move_notice_days`` before the earlier one (a
  move within the horizon is told at once by `move_occurrence`).

``{start}`` is the occurrence's actual start in UTC (``2026-12-07T06:30Z``), so a moved occurrence gets
new rows while the old ones are cancelled. Re-planning computes the wanted rows for the horizon,
cancels pending rows of the meeting that are no longer wanted and upserts the wanted ones (a pending
row is refreshed, a row cancelled by an earlier plan is revived, a sent one is never touched). Only
the difference from what the outbox holds is written, in one short transaction per meeting.

Occurrences are identified towards users (RSVP, topics, callback data) by their ORIGINAL start, which
survives moving that occurrence. Callback data carries it as epoch minutes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib.metadata
import itertools
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.container import Core
from bot.core.i18n import resolve_language
from bot.kit import holidays_cn, recurrence
from bot.kit.ics import IcsMeeting, occurrence_ics, series_ics
from bot.kit.numbers import parse_int
from bot.kit.recurrence import (
    Occurrence,
    RecurrenceError,
    Schedule,
    Translate,
    attach_zone,
    describe,
    format_date,
    get_zone,
    to_local_naive,
)
from bot.meetings.input import parse_place
from storage import groups as groups_repo
from storage import meetings as repo
from storage import outbox as outbox_repo
from storage import users as users_repo
from storage.db import to_db
from storage.meetings import MeetingRecord, NewMeeting
from storage.outbox import NewMessage

log = logging.getLogger(__name__)

UTC = dt.UTC

KIND_REMINDER = "meeting_reminder"
KIND_TOPICS = "meeting_topics"
KIND_HOLIDAY = "meeting_holiday"
KIND_NOTICE = "meeting_notice"
KIND_OUTCOME = "meeting_outcome"
KIND_EDIT = "meeting_edit"

PLAN_ROOT = "mtg:"
ANSWER_CODES = {"y": "yes", "n": "no", "m": "maybe"}
CODE_OF_ANSWER = {v: k for k, v in ANSWER_CODES.items()}
HOLIDAY_ACTIONS = ("skip", "next", "keep")
MAX_OFFSET_MINUTES = 30 * 1440
#: Occurrences checked for holidays when a meeting is scheduled (the organizer sees them at once).
HOLIDAY_LOOKAHEAD = dt.timedelta(days=366)

_edit_seq = itertools.count(1)


# -- identities --------------------------------------------------------------------------------------


def occ_key(moment: dt.datetime) -> str:
    """An occurrence start in dedup keys: UTC, minute precision (``2026-12-07T06:30Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def occ_code(moment: dt.datetime) -> int:
    """An occurrence start in callback data: UTC epoch minutes."""
    return int(moment.timestamp()) // 60


def occ_from_code(code: int | str) -> dt.datetime:
    """The occurrence start a button carries; ValueError for anything that is not one (forged data:
    not digits, or a moment outside the years 1970-9999)."""
    minutes = parse_int(str(code), signed=False)
    if minutes is None:
        raise ValueError(f"not an occurrence code: {code!r}")
    try:
        return dt.datetime.fromtimestamp(minutes * 60, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"not an occurrence code: {code!r}") from None


def plan_prefix(meeting_id: int) -> str:
    return f"{PLAN_ROOT}{meeting_id}:"


def reminder_key(meeting_id: int, start: dt.datetime, offset: int, chat_id: int) -> str:
    return f"{reminder_stem(meeting_id, start, offset)}{chat_id}"


@functools.cache
def _code_digest() -> str:
    """A digest of the code that renders a plan's messages (this module, the recurrence and holiday
    helpers, the outbox's payload format) and the holiday data's version: a new release re-plans
    every meeting once rather than trusting plans rendered by older code."""
    digest = hashlib.blake2b(digest_size=16)
    for module in (sys.modules[__name__], recurrence, holidays_cn, outbox_repo):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(importlib.metadata.version("holidays").encode())
    return digest.hexdigest()


def reminder_stem(meeting_id: int, start: dt.datetime, offset: int) -> str:
    """The reminder key up to its chat (shared by the chats of one reminder)."""
    return f"{plan_prefix(meeting_id)}{occ_key(start)}:{offset}:"


def topics_key(meeting_id: int, start: dt.datetime, organizer_id: int) -> str:
    return f"{plan_prefix(meeting_id)}{occ_key(start)}:topics:{organizer_id}"


def holiday_key(meeting_id: int, start: dt.datetime, organizer_id: int) -> str:
    return f"{plan_prefix(meeting_id)}{occ_key(start)}:holiday:{organizer_id}"


def rsvp_data(meeting_id: int, original: dt.datetime, answer: str) -> str:
    return f"mt:rsvp:{meeting_id}:{occ_code(original)}:{CODE_OF_ANSWER[answer]}"


def holiday_data(meeting_id: int, original: dt.datetime, action: str) -> str:
    return f"mt:hol:{meeting_id}:{occ_code(original)}:{action}"


def topic_data(meeting_id: int, original: dt.datetime) -> str:
    return f"mt:topic:{meeting_id}:{occ_code(original)}"


def ics_data(meeting_id: int) -> str:
    return f"mt:ics:{meeting_id}"


# -- results -----------------------------------------------------------------------------------------


Meeting = MeetingRecord  # the stored meeting, for handlers (which never import storage)


class MeetingError(Exception):
    """A request the service refuses; ``code`` selects ``meetings.error.<code>``."""

    def __init__(self, code: str, **values: Any) -> None:
        super().__init__(code)
        self.code = code
        self.values = values


@dataclass(frozen=True)
class MeetingDraft:
    """What the scheduling conversation collected."""

    title: str
    first_start: dt.datetime  # naive = wall time in ``tz``; aware = converted
    organizer_id: int
    rrule: str | None = None
    tz: str | None = None  # None = config bot.timezone
    duration_minutes: int | None = None  # None = config default
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    chat_ids: tuple[int, ...] = ()
    areas: tuple[str, ...] = ()
    reminder_offsets: tuple[int, ...] | None = None  # None = config default
    topic_deadline_minutes: int | None = None  # None = config default


@dataclass(frozen=True)
class Scheduled:
    meeting: MeetingRecord
    schedule: Schedule
    holidays: list[holidays_cn.HolidayFlag]
    planned: int


@dataclass(frozen=True)
class Upcoming:
    meeting: MeetingRecord
    occurrence: Occurrence
    holiday: str | None


@dataclass(frozen=True)
class MessageEdit:
    """A sent message to re-render (``editMessageText``)."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any]


@dataclass(frozen=True)
class RsvpResult:
    changed: bool
    answer: str
    counts: dict[str, int]
    edits: list[MessageEdit]


@dataclass(frozen=True)
class Answered:
    user_id: int
    name: str
    answer: str


@dataclass(frozen=True)
class TopicTarget:
    meeting: MeetingRecord
    occurrence: Occurrence
    deadline: dt.datetime


@dataclass(frozen=True)
class _PlanInputs:
    """What planning one meeting reads (`MeetingService._read_inputs`, or `_inputs_of` for many)."""

    occurrences: list[Occurrence]  # the window planned: from the grace period ago to the horizon
    chats: list[int]
    organizer_lang: str
    counts: dict[dt.datetime, dict[str, int]]  # by original start
    topics: dict[dt.datetime, list[repo.Topic]]  # by original start
    stored: list[outbox_repo.PlannedRow]  # the meeting's rows in the outbox a plan may touch
    names: dict[int, str]  # the topics' authors
    # What the plan is made from (recorded with it), and what the last plan was made from.
    signature: repo.PlanSignature | None = None
    previous: repo.PlanSignature | None = None
    # Only new occurrences entering the horizon: the rest is planned already from the same inputs.
    extend: bool = False


# -- the service -------------------------------------------------------------------------------------


class MeetingService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.cfg = core.config.meetings
        self._when_texts: dict[tuple[dt.datetime, str, str], str] = {}
        self._translators: dict[str, Translate] = {}
        self._fingerprint: str | None = None

    # -- small helpers -------------------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        return self.core.clock.now()

    @property
    def group_lang(self) -> str:
        return self.core.config.bot.default_language

    def tr(self, lang: str) -> Translate:
        translate = self._translators.get(lang)
        if translate is None:
            translate = self._translators[lang] = functools.partial(self.core.catalog.t, lang)
        return translate

    def schedule_of(self, meeting: MeetingRecord) -> Schedule:
        zone = get_zone(meeting.tz)
        exdates = tuple(o.original_start.astimezone(zone) for o in meeting.overrides if o.action == "skip")
        moves = tuple(
            (o.original_start.astimezone(zone), o.new_start.astimezone(zone))
            for o in meeting.overrides
            if o.action == "move" and o.new_start is not None
        )
        return Schedule(
            attach_zone(meeting.dtstart_local, zone),
            dt.timedelta(minutes=meeting.duration_minutes),
            meeting.rrule,
            tuple(sorted(exdates)),
            tuple(sorted(moves)),
        )

    def find_occurrence(self, meeting: MeetingRecord, original: dt.datetime) -> Occurrence | None:
        """The current occurrence whose original start is ``original`` (None if skipped or unknown)."""
        sched = self.schedule_of(meeting)
        zone = sched.zone
        for old, new in sched.moves:
            if old == original:
                start = new.astimezone(zone)
                return Occurrence(start, start + sched.duration, old)
        if any(e == original for e in sched.exdates) or not sched.is_rule_instance(original):
            return None
        start = original.astimezone(zone)
        return Occurrence(start, start + sched.duration, start)

    async def _require(self, meeting_id: int, active: bool = True) -> MeetingRecord:
        meeting = await repo.get(self.core.db, meeting_id)
        if meeting is None:
            raise MeetingError("not_found")
        if active and not meeting.active:
            raise MeetingError("cancelled", title=meeting.title)
        return meeting

    async def _require_occurrence(self, meeting: MeetingRecord, original: dt.datetime) -> Occurrence:
        occ = self.find_occurrence(meeting, original)
        if occ is None:
            raise MeetingError("no_such_occurrence")
        return occ

    def _offsets(self, offsets: Sequence[int] | None) -> tuple[int, ...]:
        values = tuple(offsets) if offsets is not None else self.cfg.reminder_offsets_minutes
        for value in values:
            if not 0 < value <= MAX_OFFSET_MINUTES:
                raise MeetingError("bad_offset", minutes=value)
        return tuple(sorted(set(values), reverse=True))

    def _title(self, title: str) -> str:
        title = " ".join(title.split())
        if not title:
            raise MeetingError("empty_title")
        if len(title) > self.cfg.title_max_chars:
            raise MeetingError("title_too_long", limit=self.cfg.title_max_chars)
        return title

    # -- texts ---------------------------------------------------------------------------------------

    def format_when(self, moment: dt.datetime, tz: str, lang: str) -> str:
        """A start time in the meeting's zone, e.g. "12月7日（周一）14:30"."""
        key = (moment, tz, lang)
        text = self._when_texts.get(key)
        if text is None:  # remembered: a re-plan of every series writes the same few times again
            t = self.tr(lang)
            local = moment.astimezone(get_zone(tz))
            text = t("meetings.fmt.datetime", date=format_date(local, t), time=local.strftime("%H:%M"))
            if tz != self.core.config.bot.timezone:
                text += f" ({self.core.zone_name(lang, tz)})"
            if len(self._when_texts) >= 4096:
                self._when_texts.clear()
            self._when_texts[key] = text
        return text

    def format_span(self, occ: Occurrence, tz: str, lang: str) -> str:
        end = occ.end.astimezone(get_zone(tz))
        return self.tr(lang)(
            "meetings.fmt.span", start=self.format_when(occ.start, tz, lang), end=end.strftime("%H:%M")
        )

    def format_offset(self, minutes: int, lang: str) -> str:
        t = self.tr(lang)
        if minutes % 1440 == 0:
            n = minutes // 1440
            return t("meetings.offset.day_one") if n == 1 else t("meetings.offset.days", n=n)
        if minutes % 60 == 0:
            n = minutes // 60
            return t("meetings.offset.hour_one") if n == 1 else t("meetings.offset.hours", n=n)
        return t("meetings.offset.minutes", n=minutes)

    def describe(self, meeting: MeetingRecord, lang: str) -> str:
        return describe(self.schedule_of(meeting), self.tr(lang))

    def counts_line(self, counts: dict[str, int], lang: str) -> str:
        return self.tr(lang)(
            "meetings.rsvp.counts", yes=counts["yes"], no=counts["no"], maybe=counts["maybe"]
        )

    def _place_lines(self, meeting: MeetingRecord, lang: str) -> list[str]:
        t = self.tr(lang)
        lines = []
        if meeting.place:
            lines.append(t("meetings.card.place", place=meeting.place))
        if meeting.lat is not None and meeting.lon is not None:
            lines.append(t("meetings.card.map", lat=f"{meeting.lat:.5f}", lon=f"{meeting.lon:.5f}"))
        return lines

    def reminder_text(
        self, meeting: MeetingRecord, occ: Occurrence, offset: int, counts: dict[str, int], lang: str
    ) -> str:
        """The reminder ``offset`` minutes before ``occ``; it invites topics if they are open by then."""
        return self.reminder_texts(meeting, occ, (offset,), counts, lang)[offset]

    def reminder_texts(
        self,
        meeting: MeetingRecord,
        occ: Occurrence,
        offsets: Sequence[int],
        counts: dict[str, int],
        lang: str,
    ) -> dict[int, str]:
        """`reminder_text` for each of ``offsets`` (the lines they share rendered once: a re-plan of a
        thousand series renders tens of thousands of reminders)."""
        t = self.tr(lang)
        shared = [
            t("meetings.card.when", when=self.format_span(occ, meeting.tz, lang)),
            *self._place_lines(meeting, lang),
        ]
        if occ.moved:
            shared.append(
                t("meetings.card.moved_from", when=self.format_when(occ.original_start, meeting.tz, lang))
            )
        counts_line = self.counts_line(counts, lang)
        deadline = self.topic_deadline(meeting, occ)
        topics_line = None
        texts = {}
        for offset in offsets:
            lines = [
                t("meetings.reminder.title", title=meeting.title, offset=self.format_offset(offset, lang)),
                *shared,
            ]
            if deadline > occ.start_utc - dt.timedelta(minutes=offset):  # topics open when it is sent
                if topics_line is None:
                    topics_line = t(
                        "meetings.reminder.topics_open",
                        deadline=self.format_when(deadline, meeting.tz, lang),
                    )
                lines.append(topics_line)
            lines.append(counts_line)
            texts[offset] = "\n".join(lines)
        return texts

    def reminder_markup(
        self, meeting: MeetingRecord, occ: Occurrence, offset: int, lang: str
    ) -> dict[str, Any]:
        return self.reminder_markups(meeting, occ, (offset,), lang)[offset]

    def reminder_markups(
        self, meeting: MeetingRecord, occ: Occurrence, offsets: Sequence[int], lang: str
    ) -> dict[int, dict[str, Any]]:
        """The buttons of the reminder at each of ``offsets``: RSVP, and (while topics are open when
        it is sent) 我有议题, and the calendar file."""
        t = self.tr(lang)
        rsvp_row = self.rsvp_row(meeting, occ, lang)
        calendar = {"text": t("meetings.button.calendar"), "callback_data": ics_data(meeting.id)}
        deadline = self.topic_deadline(meeting, occ)
        topic = None
        markups = {}
        for offset in offsets:
            more_row = [calendar]
            if deadline > occ.start_utc - dt.timedelta(minutes=offset):
                if topic is None:
                    topic = {
                        "text": t("meetings.button.topic"),
                        "callback_data": topic_data(meeting.id, occ.original_start),
                    }
                more_row = [topic, calendar]
            markups[offset] = {"inline_keyboard": [rsvp_row, more_row]}
        return markups

    def rsvp_row(
        self, meeting: MeetingRecord, occ: Occurrence, lang: str, n: int | None = None
    ) -> list[dict[str, str]]:
        """The RSVP buttons of one occurrence (the reminders', the announcement's, /meetings' items);
        with ``n``, labelled with the item's number in a list."""
        t = self.tr(lang)
        row = []
        for answer in repo.ANSWERS:
            label = t(f"meetings.rsvp.button_{answer}")
            if n is not None:
                label = t("meetings.rsvp.button_numbered", n=n, answer=label)
            row.append({"text": label, "callback_data": rsvp_data(meeting.id, occ.original_start, answer)})
        return row

    def announcement_markup(
        self, meeting: MeetingRecord, lang: str, occ: Occurrence | None = None
    ) -> dict[str, Any] | None:
        """RSVP buttons for the next occurrence (or ``occ``) on the announcement of a new meeting."""
        occ = occ or self._next(meeting)
        if occ is None:
            return None
        return {"inline_keyboard": [self.rsvp_row(meeting, occ, lang)]}

    def announcement_text(
        self, meeting: MeetingRecord, occ: Occurrence | None, counts: dict[str, int], lang: str
    ) -> str:
        """The announcement of a new meeting: its card and the RSVP counts of ``occ`` (kept live)."""
        text = self.card_text(meeting, occ, lang)
        if occ is None:
            return text
        return f"{text}\n{self.counts_line(counts, lang)}"

    def card_text(self, meeting: MeetingRecord, occ: Occurrence | None, lang: str) -> str:
        """The meeting as listed by /meetings and announced when scheduled."""
        t = self.tr(lang)
        lines = [
            t("meetings.card.title", title=meeting.title),
            t("meetings.card.rule", rule=self.describe(meeting, lang)),
        ]
        if occ is not None:
            lines.append(t("meetings.card.next", when=self.format_span(occ, meeting.tz, lang)))
            holiday = holidays_cn.holiday_name(occ.start.date(), lang)
            if holiday:
                lines.append(t("meetings.card.holiday", holiday=holiday))
        lines.extend(self._place_lines(meeting, lang))
        return "\n".join(lines)

    def error_text(self, exc: MeetingError | RecurrenceError, lang: str) -> str:
        t = self.tr(lang)
        if isinstance(exc, RecurrenceError):
            key = f"meetings.rrule_error.{exc.code}"
            if not self.core.catalog.has(key):
                key = "meetings.rrule_error.syntax"
            return t(key, detail=exc.detail)
        values = {
            name: self.format_when(value, self.core.config.bot.timezone, lang)
            if isinstance(value, dt.datetime)
            else value
            for name, value in exc.values.items()
        }
        return t(f"meetings.error.{exc.code}", **values)

    # -- targets -------------------------------------------------------------------------------------

    async def target_chats(self, meeting: MeetingRecord) -> list[int]:
        """Chats that get this meeting's messages: chosen chats (unless known gone) + active area groups."""
        groups = await groups_repo.get_many(self.core.db, list(meeting.chat_ids))
        area_groups = (
            await groups_repo.list_active(self.core.db, list(meeting.areas)) if meeting.areas else []
        )
        return self._targets(meeting, groups, area_groups)

    @staticmethod
    def _targets(meeting: MeetingRecord, groups: dict[int, Any], area_groups: Sequence[Any]) -> list[int]:
        """`target_chats` from the groups read (``groups`` by chat id; ``area_groups``: active groups of
        at least the meeting's areas)."""
        chats: dict[int, None] = {}
        for chat_id in meeting.chat_ids:
            group = groups.get(chat_id)
            if group is not None and not group.active:
                if group.migrated_to:
                    chats[group.migrated_to] = None
                continue
            chats[chat_id] = None
        areas = set(meeting.areas)
        for group in area_groups:
            if group.area in areas:
                chats[group.chat_id] = None
        return list(chats)

    # -- scheduling ----------------------------------------------------------------------------------

    def preview(self, draft: MeetingDraft, count: int = 3) -> tuple[Schedule, list[Occurrence]]:
        """Validate the times of a draft (RecurrenceError / MeetingError) and give its next occurrences,
        for the confirmation step of the conversation. Nothing is stored."""
        tz = draft.tz or self.core.config.bot.timezone
        duration = draft.duration_minutes or self.cfg.default_duration_minutes
        if not 0 < duration <= 24 * 60:
            raise MeetingError("bad_duration")
        sched = Schedule.create(draft.first_start, dt.timedelta(minutes=duration), draft.rrule, tz)
        try:
            upcoming = sched.next_occurrences(self.now, count)
        except RecurrenceError:
            raise
        except (ValueError, OverflowError) as exc:  # e.g. dates at the end of the calendar
            raise RecurrenceError("no_occurrences", sched.rrule or str(exc)) from exc
        if not upcoming:
            raise MeetingError("in_the_past")
        return sched, upcoming

    def preview_text(self, draft: MeetingDraft, lang: str) -> str:
        """Title, rule, next occurrences (holidays marked) and reminder offsets of a draft."""
        sched, upcoming = self.preview(draft)
        t = self.tr(lang)
        lines = [
            t("meetings.card.title", title=draft.title),
            t("meetings.card.rule", rule=describe(sched, t)),
        ]
        for occ in upcoming:
            line = t("meetings.preview.occurrence", when=self.format_span(occ, sched.timezone, lang))
            holiday = holidays_cn.holiday_name(occ.start.date(), lang)
            if holiday:
                line += t("meetings.preview.holiday", holiday=holiday)
            lines.append(line)
        if draft.place:
            lines.append(t("meetings.card.place", place=draft.place))
        offsets = self._offsets(draft.reminder_offsets)
        deadline = (
            self.cfg.topic_deadline_minutes
            if draft.topic_deadline_minutes is None
            else draft.topic_deadline_minutes
        )
        lines.extend(self._promises(upcoming[0], sched.is_recurring, offsets, deadline, lang))
        return "\n".join(lines)

    def _promises(
        self, first: Occurrence, recurring: bool, offsets: Sequence[int], deadline: int, lang: str
    ) -> list[str]:
        """The topic deadline and reminders a draft promises, only those still ahead for its first
        meeting (a meeting an hour away gets no 1-day reminder); a series says what later ones get."""
        t = self.tr(lang)
        join = t("meetings.rule.join").join
        now = self.now
        ahead = [o for o in offsets if first.start_utc - dt.timedelta(minutes=o) > now]
        every = join(self.format_offset(o, lang) for o in offsets)
        if len(ahead) == len(offsets):
            reminders = t("meetings.preview.reminders", offsets=every)
        elif ahead:
            reminders = t(
                "meetings.preview.reminders_first", offsets=join(self.format_offset(o, lang) for o in ahead)
            )
        else:
            reminders = t("meetings.preview.reminders_none")
        if len(ahead) < len(offsets) and recurring:
            reminders += t("meetings.preview.reminders_later", offsets=every)
        offset = self.format_offset(deadline, lang)
        if first.start_utc - dt.timedelta(minutes=deadline) > now:
            topics = t("meetings.preview.topics", offset=offset)
        else:
            topics = t("meetings.preview.topics_none")
            if recurring:
                topics += t("meetings.preview.topics_later", offset=offset)
        return [topics, reminders]

    async def active_meetings(self) -> list[MeetingRecord]:
        return await repo.list_active(self.core.db)

    async def create(self, draft: MeetingDraft) -> Scheduled:
        """Validate and store a meeting, plan its reminders, announce it, and flag holiday occurrences."""
        tz = draft.tz or self.core.config.bot.timezone
        duration = draft.duration_minutes or self.cfg.default_duration_minutes
        title = self._title(draft.title)
        sched, _ = self.preview(draft, 1)
        if not draft.chat_ids and not draft.areas:
            raise MeetingError("no_targets")
        deadline = (
            self.cfg.topic_deadline_minutes
            if draft.topic_deadline_minutes is None
            else draft.topic_deadline_minutes
        )
        if not 0 <= deadline <= MAX_OFFSET_MINUTES:
            raise MeetingError("bad_deadline")
        new = NewMeeting(
            title=title,
            tz=tz,
            dtstart_local=to_local_naive(sched.dtstart, sched.zone),
            duration_minutes=duration,
            organizer_id=draft.organizer_id,
            rrule=sched.rrule,
            place=parse_place(draft.place),
            lat=draft.lat,
            lon=draft.lon,
            reminder_offsets=self._offsets(draft.reminder_offsets),
            topic_deadline_minutes=deadline,
            chat_ids=draft.chat_ids,
            areas=draft.areas,
        )
        async with self.core.db.transaction() as tx:
            meeting_id = await repo.create(tx, new, self.now)
        meeting = await self._require(meeting_id)
        planned = await self.plan_reminders(meeting)
        occ = self._next(meeting)
        counts = (
            await repo.rsvp_counts(self.core.db, meeting.id, occ.original_start)
            if occ is not None
            else dict.fromkeys(repo.ANSWERS, 0)
        )
        await self._notify(
            meeting,
            "created",
            lambda lang: self.announcement_text(meeting, occ, counts, lang),
            markup=lambda lang: self.announcement_markup(meeting, lang, occ),
            announces=occ,
        )
        log.info("meeting %s scheduled by %s: %s", meeting.id, meeting.organizer_id, meeting.rrule or "once")
        return Scheduled(meeting, self.schedule_of(meeting), self.holiday_flags(meeting), planned)

    def _next(self, meeting: MeetingRecord) -> Occurrence | None:
        found = self.schedule_of(meeting).next_occurrences(self.now, 1)
        return found[0] if found else None

    def holiday_flags(self, meeting: MeetingRecord, lang: str = "zh") -> list[holidays_cn.HolidayFlag]:
        """Upcoming (unmoved) occurrences within a year that fall on a Chinese public holiday."""
        occs = self.schedule_of(meeting).occurrences_between(self.now, self.now + HOLIDAY_LOOKAHEAD)
        return holidays_cn.flag_occurrences((o for o in occs if not o.moved), lang)

    async def get(self, meeting_id: int) -> MeetingRecord | None:
        return await repo.get(self.core.db, meeting_id)

    async def upcoming(
        self,
        *,
        chat_id: int | None = None,
        areas: Sequence[str] = (),
        limit: int = 5,
        lang: str = "zh",
        per_meeting: int | None = None,
    ) -> list[Upcoming]:
        """Next occurrences of meetings announced in a chat (or its area) or to the given areas (at
        most ``per_meeting`` of each meeting: 1 for a listing, where more dates are on demand)."""
        area_set = list(dict.fromkeys(a for a in areas if a))
        chat_ids = []
        if chat_id is not None:
            chat_ids.append(chat_id)
            group = await groups_repo.get(self.core.db, chat_id)
            if group is not None and group.area and group.area not in area_set:
                area_set.append(group.area)
        meetings = await repo.for_targets(self.core.db, chat_ids, area_set)
        return self._next_of(meetings, limit, lang, per_meeting)

    def _next_of(
        self, meetings: Sequence[MeetingRecord], limit: int, lang: str, per_meeting: int | None = None
    ) -> list[Upcoming]:
        items = []
        for meeting in meetings:
            after = self.now - self._running(meeting)
            for occ in self.schedule_of(meeting).next_occurrences(after, min(limit, per_meeting or limit)):
                items.append(Upcoming(meeting, occ, holidays_cn.holiday_name(occ.start.date(), lang)))
        items.sort(key=lambda u: (u.occurrence.start_utc, u.meeting.id))
        return items[:limit]

    async def meeting_areas(self, meeting: MeetingRecord) -> set[str]:
        """The areas a meeting is for: its areas and those of its groups ("" for a group without area)."""
        areas = set(meeting.areas)
        for chat_id in meeting.chat_ids:
            group = await groups_repo.get(self.core.db, chat_id)
            areas.add(group.area if group is not None and group.area else "")
        return areas

    async def visible_to(self, area: str | None) -> list[MeetingRecord]:
        """Active meetings shown to a user in private: all of them for a user without an area, else
        those of their area and those (partly) without an area."""
        meetings = await repo.list_active(self.core.db)
        if not area:
            return meetings
        visible = []
        for meeting in meetings:
            areas = await self.meeting_areas(meeting)
            if not areas or area in areas or "" in areas:
                visible.append(meeting)
        return visible

    async def upcoming_for_user(
        self, area: str | None, *, limit: int = 5, lang: str = "zh", per_meeting: int | None = None
    ) -> list[Upcoming]:
        """Next occurrences for a private listing (see ``visible_to``)."""
        return self._next_of(await self.visible_to(area), limit, lang, per_meeting)

    def next_dates(self, meeting: MeetingRecord, count: int, lang: str) -> list[Upcoming]:
        """The next ``count`` occurrences of one meeting (the "more dates" of a listing)."""
        after = self.now - self._running(meeting)
        return [
            Upcoming(meeting, occ, holidays_cn.holiday_name(occ.start.date(), lang))
            for occ in self.schedule_of(meeting).next_occurrences(after, count)
        ]

    async def topic_targets_for_user(self, area: str | None, *, open_only: bool = True) -> list[TopicTarget]:
        """Per meeting visible to this user, the next occurrence still taking topics (its deadline
        ahead: when this week's has passed, a series offers its next date), soonest first.
        ``open_only=False``: the next future occurrence whatever its deadline."""
        targets = []
        for meeting in await self.visible_to(area):
            for occ in self.schedule_of(meeting).next_occurrences(self.now, 2):
                deadline = self.topic_deadline(meeting, occ)
                if occ.start_utc > self.now and (not open_only or deadline > self.now):
                    targets.append(TopicTarget(meeting, occ, deadline))
                    break
        targets.sort(key=lambda t: (t.occurrence.start_utc, t.meeting.id))
        return targets

    @staticmethod
    def _running(meeting: MeetingRecord) -> dt.timedelta:
        """Occurrences that started but have not ended are still "upcoming"."""
        return dt.timedelta(minutes=meeting.duration_minutes)

    # -- planning ------------------------------------------------------------------------------------

    def _window(self, meeting: MeetingRecord) -> list[Occurrence]:
        """The occurrences a plan covers: from the grace period ago to the horizon."""
        now = self.now
        grace = dt.timedelta(minutes=self.cfg.late_grace_minutes)
        return self.schedule_of(meeting).occurrences_between(
            now - grace, now + dt.timedelta(days=self.cfg.horizon_days)
        )

    def _since(self, meeting: MeetingRecord) -> dt.datetime:
        """The earliest time a planned row of this meeting can be due (see `plan_reminders`)."""
        lead = max(
            (
                *meeting.reminder_offsets,
                meeting.topic_deadline_minutes,
                self.cfg.holiday_notice_days * 1440,
                self.cfg.move_notice_days * 1440,
            )
        )
        return self.now - dt.timedelta(minutes=self.cfg.late_grace_minutes + lead)

    async def _read_inputs(self, meeting: MeetingRecord) -> _PlanInputs:
        """What planning one meeting reads, all at once: the reads run side by side on the
        database's reader connections (the RSVP counts and topics of every occurrence in one query)."""
        occurrences = self._window(meeting) if meeting.active else []
        originals = [occ.original_start for occ in occurrences]
        chats, organizer_lang, counts, topics, stored, previous = await asyncio.gather(
            self.target_chats(meeting),
            self.core.user_lang(meeting.organizer_id),
            repo.rsvp_counts_of(self.core.db, meeting.id, originals),
            repo.topics_of(self.core.db, meeting.id, originals),
            outbox_repo.planned_rows(self.core.db, plan_prefix(meeting.id), self._since(meeting)),
            repo.plan_signatures(self.core.db, [meeting.id]),
        )
        names = await self._names_of(t for found in topics.values() for t in found)
        inputs = _PlanInputs(
            occurrences,
            chats,
            organizer_lang,
            counts,
            topics,
            stored,
            names,
            previous=previous.get(meeting.id),
        )
        return dataclasses.replace(inputs, signature=self._plan_signature(meeting, inputs, originals))

    def _plan_signature(
        self, meeting: MeetingRecord, inputs: _PlanInputs, originals: Iterable[dt.datetime]
    ) -> repo.PlanSignature:
        """A digest of everything a plan of ``originals`` is rendered from: the meeting as stored
        (overrides, offsets, place, state), its chats, the organizer's language, each occurrence's
        RSVP counts and topics (with their authors' names), and `_plan_fingerprint` (texts, settings,
        the code that renders). Time only ever removes rows from a plan (each once it expired); so
        while the digest stays the same, the rows planned for those occurrences are still exactly the
        wanted ones."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self._plan_fingerprint().encode())
        # Not its revision or time of change: no planned row depends on them (a notice bumps them).
        planned_from = dataclasses.replace(meeting, revision=0, updated_at=meeting.created_at)
        digest.update(repr((planned_from, inputs.chats, inputs.organizer_lang)).encode())
        codes = set()
        for original in sorted(originals):
            topics = inputs.topics.get(original, [])
            names = [inputs.names.get(topic.user_id) for topic in topics]
            code = occ_code(original)  # (the instant, whatever zone `original` is given in)
            digest.update(repr((code, inputs.counts.get(original), topics, names)).encode())
            codes.add(code)
        return repo.PlanSignature(digest.hexdigest(), frozenset(codes))

    def _plan_fingerprint(self) -> str:
        """What renders every plan alike: the message catalog, the settings used, the code."""
        if self._fingerprint is None:
            config = self.core.config
            digest = hashlib.blake2b(digest_size=16)
            digest.update(repr(sorted(self.core.catalog.texts.items())).encode())
            digest.update(repr((self.cfg, config.bot.default_language, config.bot.timezone)).encode())
            digest.update(_code_digest().encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    async def _inputs_of(self, meetings: Sequence[MeetingRecord]) -> dict[int, _PlanInputs]:
        """`_read_inputs` of many meetings in a handful of queries (for `replan_all`).

        A meeting whose last plan was made from the same inputs (`_plan_signature` of the occurrences
        it covered) reads none of its rows in the outbox: it has nothing to plan, or only the
        occurrences new in its horizon (their rows alone are read)."""
        db = self.core.db
        windows = {}
        for m in meetings:
            windows[m.id] = self._window(m)
            await asyncio.sleep(0)  # the recurrence rules take a while: replies get their turn
        previous = await repo.plan_signatures(db, [m.id for m in meetings])
        covered = {
            m.id: sorted(
                {occ.original_start for occ in windows[m.id]}
                | (
                    {occ_from_code(code) for code in previous[m.id].occurrences}
                    if m.id in previous
                    else set()
                )
            )
            for m in meetings
        }
        pairs = [(m.id, original) for m in meetings for original in covered[m.id]]
        chat_ids = sorted({chat for m in meetings for chat in m.chat_ids})
        areas = sorted({area for m in meetings for area in m.areas})
        # One after the other (not side by side): the other reader connections stay free for replies.
        groups = await groups_repo.get_many(db, chat_ids)
        area_groups = await groups_repo.list_active(db, areas)
        organizers = await users_repo.get_many(db, sorted({m.organizer_id for m in meetings}))
        counts = await repo.rsvp_counts_many(db, pairs)
        topics = await repo.topics_many(db, pairs)
        names = await self._names_of(t for found in topics.values() for t in found)
        default = self.core.config.bot.default_language
        inputs = {}
        prefixes: dict[int, list[str]] = {}  # the rows each meeting's plan compares with
        for m in meetings:
            organizer = organizers.get(m.organizer_id)
            originals = [occ.original_start for occ in windows[m.id]]
            plan = _PlanInputs(
                windows[m.id],
                self._targets(m, groups, area_groups),
                resolve_language(organizer.lang, organizer.language_code, default) if organizer else default,
                {occ: counts[(m.id, occ)] for occ in covered[m.id]},
                {occ: topics[(m.id, occ)] for occ in covered[m.id]},
                [],
                names,
                previous=previous.get(m.id),
            )
            plan = dataclasses.replace(plan, signature=self._plan_signature(m, plan, originals))
            before = previous.get(m.id)
            if before is not None and m.active:
                old = [occ_from_code(code) for code in before.occurrences]
                if self._plan_signature(m, plan, old).signature == before.signature:
                    # Planned from the same inputs: only occurrences new in the horizon.
                    new = [
                        occ for occ in windows[m.id] if occ_code(occ.original_start) not in before.occurrences
                    ]
                    plan = dataclasses.replace(plan, occurrences=new, extend=True)
                    prefixes[m.id] = [f"{plan_prefix(m.id)}{occ_key(occ.start)}:" for occ in new]
            if not plan.extend:
                prefixes[m.id] = [plan_prefix(m.id)]
            inputs[m.id] = plan
            await asyncio.sleep(0)
        wanted = [prefix for found in prefixes.values() for prefix in found]
        since = min((self._since(m) for m in meetings), default=self.now)
        stored = await outbox_repo.planned_rows_many(db, wanted, since) if wanted else {}
        for m in meetings:
            rows = [row for prefix in prefixes[m.id] for row in stored[prefix]]
            inputs[m.id] = dataclasses.replace(inputs[m.id], stored=rows)
        return inputs

    def _wanted(
        self, meeting: MeetingRecord, inputs: _PlanInputs
    ) -> tuple[list[NewMessage], list[repo.ReminderLink]]:
        """The rows this meeting should have in the outbox (from what `_read_inputs` read)."""
        now = self.now
        if not meeting.active:
            return [], []
        grace = dt.timedelta(minutes=self.cfg.late_grace_minutes)
        lang = self.group_lang
        messages: list[NewMessage] = []
        links: list[repo.ReminderLink] = []
        chats, organizer_lang, all_topics, names = (
            inputs.chats,
            inputs.organizer_lang,
            inputs.topics,
            inputs.names,
        )
        for occ in inputs.occurrences:
            counts = inputs.counts[occ.original_start]
            # Too late to remind (older than the grace period): never planned.
            offsets = [
                offset
                for offset in meeting.reminder_offsets
                if occ.start_utc - dt.timedelta(minutes=offset) + grace > now
            ]
            texts = self.reminder_texts(meeting, occ, offsets, counts, lang)
            markups = self.reminder_markups(meeting, occ, offsets, lang)
            for offset in offsets:
                due = occ.start_utc - dt.timedelta(minutes=offset)
                expires = due + grace
                payload = {
                    "method": "sendMessage",
                    "params": {"text": texts[offset], "reply_markup": markups[offset]},
                }
                stem = reminder_stem(meeting.id, occ.start, offset)
                for chat_id in chats:
                    key = f"{stem}{chat_id}"
                    messages.append(
                        NewMessage(
                            KIND_REMINDER,
                            key,
                            chat_id,
                            payload,
                            due,
                            expires_at=expires,
                            priority=4,
                            resend_if_unknown=True,  # in flight at a crash: sent again, never missed
                        )
                    )
                    links.append(repo.ReminderLink(key, meeting.id, occ.original_start, chat_id, offset))
            # The collected topics go to the organizer when topics close (by default the day before).
            topics_due = occ.start_utc - dt.timedelta(minutes=meeting.topic_deadline_minutes)
            if topics_due >= meeting.created_at and occ.start_utc > now:
                text = self._topics_text_of(
                    meeting, occ, organizer_lang, all_topics[occ.original_start], names
                )
                messages.append(
                    NewMessage(
                        KIND_TOPICS,
                        topics_key(meeting.id, occ.start, meeting.organizer_id),
                        meeting.organizer_id,
                        {"method": "sendMessage", "params": {"text": text}},
                        topics_due,
                        expires_at=occ.start_utc,
                        priority=3,
                    )
                )
            # A week ahead: an occurrence on a public holiday is flagged with skip / move buttons.
            holiday = holidays_cn.holiday_name(occ.start.date(), organizer_lang)
            holiday_due = occ.start_utc - dt.timedelta(days=self.cfg.holiday_notice_days)
            if holiday and not occ.moved and holiday_due >= meeting.created_at and occ.start_utc > now:
                messages.append(
                    NewMessage(
                        KIND_HOLIDAY,
                        holiday_key(meeting.id, occ.start, meeting.organizer_id),
                        meeting.organizer_id,
                        self.holiday_payload(meeting, occ, holiday, organizer_lang),
                        holiday_due,
                        expires_at=occ.start_utc,
                        priority=3,
                    )
                )
        if not inputs.extend:  # (a move's notice depends on the meeting alone: planned already)
            messages.extend(self._move_notices(meeting, chats, lang))
        return messages, links

    def _move_far(self, original: dt.datetime, new: dt.datetime, at: dt.datetime) -> bool:
        """Whether a move decided ``at`` is told later: both dates beyond the planning horizon
        (``horizon_days``, the reminders already planned) when it was decided."""
        return min(original, new) - dt.timedelta(days=self.cfg.horizon_days) > at

    def _move_notices(self, meeting: MeetingRecord, chats: Sequence[int], lang: str) -> list[NewMessage]:
        """A move decided while both dates were beyond the horizon is told ``move_notice_days`` before
        the earlier one (the week-ahead notice), not months early; withdrawn if the move changes."""
        messages = []
        for override in meeting.overrides:
            new = override.new_start
            if override.action != "move" or new is None or override.set_at is None:
                continue
            first = min(override.original_start, new)
            if first <= self.now or not self._move_far(override.original_start, new, override.set_at):
                continue
            text = self.tr(lang)(
                "meetings.notice.moved",
                title=meeting.title,
                old=self.format_when(override.original_start, meeting.tz, lang),
                new=self.format_when(new, meeting.tz, lang),
            )
            stem = f"{plan_prefix(meeting.id)}{occ_key(override.original_start)}:moved:{occ_key(new)}:"
            messages.extend(
                NewMessage(
                    KIND_NOTICE,
                    f"{stem}{chat_id}",
                    chat_id,
                    {"method": "sendMessage", "params": {"text": text}},
                    first - dt.timedelta(days=self.cfg.move_notice_days),
                    expires_at=first,
                    priority=3,
                )
                for chat_id in chats
            )
        return messages

    def holiday_payload(
        self, meeting: MeetingRecord, occ: Occurrence, holiday: str, lang: str
    ) -> dict[str, Any]:
        t = self.tr(lang)
        target = self._next_working_start(occ)
        text = t(
            "meetings.holiday.flag",
            title=meeting.title,
            when=self.format_when(occ.start, meeting.tz, lang),
            holiday=holiday,
        )
        buttons = [
            [
                {
                    "text": t("meetings.holiday.skip"),
                    "callback_data": holiday_data(meeting.id, occ.original_start, "skip"),
                }
            ],
            [
                {
                    "text": t("meetings.holiday.next", when=self.format_when(target, meeting.tz, lang)),
                    "callback_data": holiday_data(meeting.id, occ.original_start, "next"),
                }
            ],
            [
                {
                    "text": t("meetings.holiday.keep"),
                    "callback_data": holiday_data(meeting.id, occ.original_start, "keep"),
                }
            ],
        ]
        return {
            "method": "sendMessage",
            "params": {"text": text, "reply_markup": {"inline_keyboard": buttons}},
        }

    @staticmethod
    def _next_working_start(occ: Occurrence) -> dt.datetime:
        zone = occ.start.tzinfo
        assert zone is not None
        day = holidays_cn.next_working_day(occ.start.date())
        return attach_zone(dt.datetime.combine(day, occ.start.time().replace(tzinfo=None)), zone)

    #: How often a plan is recomputed when the meeting changed while it was being computed.
    PLAN_ATTEMPTS = 5
    #: Rows `replan_all` writes between two checkpoints of the write-ahead log.
    CHECKPOINT_ROWS = 300
    #: Dropped (expired unsent) rows `replan_all` logs one line each; the rest are counted.
    DROPS_LOGGED = 50
    #: Meetings `replan_all` reads the inputs of at once.
    REPLAN_CHUNK = 20

    async def plan_reminders(self, meeting: MeetingRecord, inputs: _PlanInputs | None = None) -> int:
        """Make the outbox hold exactly the wanted rows of this meeting. Idempotent.

        The wanted rows are compared with the meeting's rows already in the outbox (one range of the
        unique key ``mtg:{id}:``, no LIKE scan; rows due from the earliest time a wanted row can be
        due: one due before would only be written again, never wrongly); only the difference is
        written: new rows, rows whose text or time changed, rows to withdraw. A plan with nothing to
        change writes nothing (the daily re-plan of an unchanged meeting only reads). ``inputs`` is
        what `replan_all` read for many meetings at once.

        ``meeting`` may be a stale copy (``replan_all`` loads every meeting first): a plan is written
        only if the meeting, re-read inside the writing transaction, is still exactly what the plan was
        computed from; otherwise it is recomputed from the fresh record. A meeting that was cancelled
        meanwhile gets nothing planned (its pending rows are withdrawn), so a late re-plan can never
        revive the reminders of a cancelled series or of a skipped occurrence.

        Returns how many rows were inserted, changed or revived.
        """
        for _attempt in range(self.PLAN_ATTEMPTS):
            now = self.now
            if inputs is None:
                inputs = await self._read_inputs(meeting)
            if inputs.extend and not inputs.occurrences:
                return 0  # planned from the same inputs, and nothing new in the horizon
            messages, links = self._wanted(meeting, inputs)
            stored = inputs.stored
            signature, previous = inputs.signature, inputs.previous
            inputs = None  # a second attempt reads afresh
            wanted = {m.dedup_key for m in messages}
            have = {row.dedup_key: row for row in stored}
            texts: dict[int, str] = {}  # one payload is shared by the chats of a reminder
            to_write = [
                m
                for m in messages
                if outbox_repo.needs_writing(
                    have.get(m.dedup_key),
                    m,
                    texts.get(id(m.payload))
                    or texts.setdefault(id(m.payload), outbox_repo.dump_payload(m.payload)),
                )
            ]
            # Pending rows no longer wanted (not those past their expiry: the worker drops them).
            stamp = to_db(now)
            stale = [
                row.id
                for row in stored
                if row.state == "pending"
                and row.dedup_key not in wanted
                and (row.expires_at is None or row.expires_at >= stamp)
            ]
            recorded = signature is None or signature == previous
            if meeting.active and not to_write and not stale and recorded:
                return 0  # nothing to change (a change made meanwhile plans itself)
            writing = {m.dedup_key for m in to_write}
            async with self.core.db.transaction() as tx:
                current = await repo.get(tx, meeting.id)
                if current is None or not current.active:
                    pending = [row.id for row in stored if row.state == "pending"]
                    cancelled = await outbox_repo.cancel_ids(tx, pending, now)
                    await repo.set_plan_signature(tx, meeting.id, None, now)
                    changed = 0
                elif dataclasses.replace(current, updated_at=meeting.updated_at) != meeting:
                    meeting = current  # changed since the copy was read: plan again from the fresh one
                    continue
                else:
                    cancelled = await outbox_repo.cancel_ids(tx, stale, now)
                    # A row already in the outbox was linked when it was first planned.
                    fresh = [
                        link for link in links if link.dedup_key in writing and link.dedup_key not in have
                    ]
                    await repo.link_reminders(tx, fresh)
                    changed = await self.core.outbox.enqueue(to_write, tx, mode="replan")
                    if not recorded:
                        await repo.set_plan_signature(tx, meeting.id, signature, now)
            if cancelled:
                log.info("meeting %s: %d planned messages withdrawn", meeting.id, cancelled)
            return changed
        log.warning(
            "meeting %s kept changing while being planned; the next re-plan will catch up", meeting.id
        )
        return 0

    async def replan_all(self) -> int:
        """At start-up and daily: drop (and log) stale reminders, extend every meeting's horizon.

        What planning needs is read for twenty meetings at a time in a handful of queries (the next
        twenty's while these are planned); each meeting is then written in its own short transaction
        (only when something changed), and the event loop gets a turn between meetings: replies go
        on while a thousand series re-plan.
        """
        logged = unlogged = 0
        while True:
            dropped = await outbox_repo.expire_overdue(self.core.db, PLAN_ROOT, self.now)
            for row in dropped:
                if logged >= self.DROPS_LOGGED:
                    unlogged += 1  # after a long downtime: counted, not one line each
                    continue
                logged += 1
                log.warning(
                    "dropped meeting message %s to %s: due %s, not sent within the grace period",
                    row.dedup_key,
                    row.chat_id,
                    row.due_at.isoformat(),
                )
            if len(dropped) < outbox_repo.EXPIRE_BATCH:
                break
            self.core.db.checkpoint_soon()
            await asyncio.sleep(0)
        if unlogged:
            log.warning("dropped %d more meeting messages not sent within the grace period", unlogged)
        total = unsaved = 0
        meetings = await repo.list_active(self.core.db)
        chunks = [meetings[i : i + self.REPLAN_CHUNK] for i in range(0, len(meetings), self.REPLAN_CHUNK)]
        upcoming = asyncio.ensure_future(self._inputs_of(chunks[0])) if chunks else None
        try:
            for index, chunk in enumerate(chunks):
                assert upcoming is not None
                inputs = await upcoming  # a handful of queries for the whole chunk
                # The next chunk's reads run (on a reader connection) while this one is planned.
                upcoming = None
                if index + 1 < len(chunks):
                    upcoming = asyncio.ensure_future(self._inputs_of(chunks[index + 1]))
                for meeting in chunk:
                    try:
                        written = await self.plan_reminders(meeting, inputs[meeting.id])
                    except Exception:  # one broken meeting must not stop the others
                        log.exception("could not plan meeting %s", meeting.id)
                        written = 0
                    total += written
                    unsaved += written
                    if unsaved >= self.CHECKPOINT_ROWS:
                        # The log copied into the database off the writer lock, so that no commit (ours
                        # or a reply's) pays for this run's writes with a long hold of it.
                        self.core.db.checkpoint_soon()
                        unsaved = 0
                    await asyncio.sleep(0)
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()
        return total

    # -- changes -------------------------------------------------------------------------------------

    async def _notify(
        self,
        meeting: MeetingRecord,
        what: str,
        render: Any,
        chats: Sequence[int] | None = None,
        markup: Any = None,
        announces: Occurrence | None = None,
    ) -> int:
        """Enqueue a notice (rendered per language) to the target groups (or ``chats``), once per
        revision; ``markup`` (lang -> reply_markup dict or None) adds buttons. With ``announces``, the
        rows are linked to that occurrence, so its RSVP counts are kept live on them."""
        if chats is None:
            chats = await self.target_chats(meeting)
        if not chats:
            return 0
        lang = self.group_lang
        text = render(lang)
        params: dict[str, Any] = {"text": text}
        keyboard = markup(lang) if markup is not None else None
        if keyboard:
            params["reply_markup"] = keyboard
        now = self.now
        messages = [
            NewMessage(
                KIND_NOTICE,
                f"mtgn:{meeting.id}:{meeting.revision}:{what}:{chat_id}",
                chat_id,
                {"method": "sendMessage", "params": params},
                now,
                priority=3,
                expires_at=now + dt.timedelta(days=1),
            )
            for chat_id in chats
        ]
        async with self.core.db.transaction() as tx:
            if announces is not None:
                keys = [(m.dedup_key, m.chat_id) for m in messages]
                await repo.link_announcements(tx, meeting.id, announces.original_start, keys)
            count = await self.core.outbox.enqueue(messages, tx)
        return count

    async def on_notice_done(self, row: Any, outcome: str, result: dict[str, Any] | None) -> None:
        """`Outbox.on_done(KIND_NOTICE, ...)` hook: a sent announcement is recorded so that RSVP
        answers edit it (other notices are not linked and are left alone)."""
        if outcome == "sent" and result and result.get("message_id"):
            await repo.announcement_sent(self.core.db, row.dedup_key, row.chat_id, int(result["message_id"]))

    async def on_reminder_done(self, row: Any, outcome: str, result: dict[str, Any] | None) -> None:
        """`Outbox.on_done(KIND_REMINDER, ...)` hook: a sent reminder's message is recorded, so RSVP
        answers keep editing its counts after its outbox row is pruned."""
        if outcome == "sent" and result and result.get("message_id"):
            await repo.reminder_sent(self.core.db, row.dedup_key, row.chat_id, int(result["message_id"]))

    def install(self, outbox: Any) -> None:
        """Register the outbox hooks of meetings (call once at start-up)."""
        outbox.on_done(KIND_NOTICE, self.on_notice_done)
        outbox.on_done(KIND_REMINDER, self.on_reminder_done)

    async def edit(
        self,
        meeting_id: int,
        *,
        title: str | None = None,
        place: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        reminder_offsets: Sequence[int] | None = None,
        topic_deadline_minutes: int | None = None,
        chat_ids: Sequence[int] | None = None,
        areas: Sequence[str] | None = None,
    ) -> MeetingRecord:
        """Change details (not times). The plan is redone: pending reminders are re-rendered, those of
        dropped offsets or groups withdrawn, new ones planned (a sent reminder is never sent again).
        The target groups are told when the card changed (not for reminder times / topic deadline only);
        groups no longer targeted are told it is not announced there now.
        """
        meeting = await self._require(meeting_id)
        retargeted = chat_ids is not None or areas is not None
        if retargeted and not (
            (meeting.chat_ids if chat_ids is None else chat_ids)
            or (meeting.areas if areas is None else areas)
        ):
            raise MeetingError("no_targets")
        before = await self.target_chats(meeting) if retargeted else []
        fields: dict[str, Any] = {}
        if title is not None:
            fields["title"] = self._title(title)
        if place is not None:
            fields["place"] = parse_place(place)
        if lat is not None and lon is not None:
            fields["lat"], fields["lon"] = lat, lon
        if reminder_offsets is not None:
            fields["reminder_offsets"] = self._offsets(reminder_offsets)
        if topic_deadline_minutes is not None:
            if not 0 <= topic_deadline_minutes <= MAX_OFFSET_MINUTES:
                raise MeetingError("bad_deadline")
            fields["topic_deadline_minutes"] = topic_deadline_minutes
        async with self.core.db.transaction() as tx:
            if not await repo.update(tx, meeting.id, self.now, **fields):
                raise MeetingError("cancelled", title=meeting.title)
            if chat_ids is not None or areas is not None:
                await repo.set_targets(
                    tx,
                    meeting.id,
                    meeting.chat_ids if chat_ids is None else chat_ids,
                    meeting.areas if areas is None else areas,
                )
        updated = await self._require(meeting.id)
        await self.plan_reminders(updated)
        # Reminder times and the topic deadline are not on the card: nothing visible changed, no notice.
        lang = self.group_lang
        if retargeted or self._changed_text(meeting, lang) != self._changed_text(updated, lang):
            await self._notify(updated, "edited", lambda lang: self._changed_text(updated, lang))
        if retargeted:
            after = set(await self.target_chats(updated))
            await self._notify(
                updated,
                "untargeted",
                lambda lang: self.tr(lang)("meetings.notice.untargeted", title=updated.title),
                chats=[chat_id for chat_id in before if chat_id not in after],
            )
        return updated

    def _changed_text(self, meeting: MeetingRecord, lang: str) -> str:
        return self.tr(lang)(
            "meetings.notice.changed", card=self.card_text(meeting, self._next(meeting), lang)
        )

    async def reschedule(
        self,
        meeting_id: int,
        *,
        first_start: dt.datetime,
        rrule: str | None,
        duration_minutes: int | None = None,
        tz: str | None = None,
    ) -> MeetingRecord:
        """New times for the whole series. Skips and moves that no longer fit the rule are dropped."""
        meeting = await self._require(meeting_id)
        tz = tz or meeting.tz
        duration = duration_minutes or meeting.duration_minutes
        if not 0 < duration <= 24 * 60:
            raise MeetingError("bad_duration")
        sched = Schedule.create(first_start, dt.timedelta(minutes=duration), rrule, tz)
        if not sched.next_occurrences(self.now, 1):
            raise MeetingError("in_the_past")
        async with self.core.db.transaction() as tx:
            if not await repo.update(
                tx,
                meeting.id,
                self.now,
                tz=tz,
                dtstart_local=to_local_naive(sched.dtstart, sched.zone),
                duration_minutes=duration,
                rrule=sched.rrule,
            ):
                raise MeetingError("cancelled", title=meeting.title)
            for override in meeting.overrides:
                if not sched.is_rule_instance(override.original_start):
                    await repo.delete_override(tx, meeting.id, override.original_start)
        updated = await self._require(meeting.id)
        await self.plan_reminders(updated)
        await self._notify(updated, "rescheduled", lambda lang: self._changed_text(updated, lang))
        return updated

    async def skip_occurrence(self, meeting_id: int, original: dt.datetime) -> MeetingRecord:
        """Cancel one occurrence: its reminders are withdrawn and the groups told. When it was the
        only one left (a one-off meeting), the meeting ends (cancelled) and the groups are told so."""
        meeting = await self._require(meeting_id)
        occ = await self._require_occurrence(meeting, original)
        after = self.schedule_of(meeting).skip(occ.original_start)  # validates
        last = not after.next_occurrences(self.now - self._running(meeting), 1)
        async with self.core.db.transaction() as tx:
            await repo.set_override(tx, meeting.id, occ.original_start, "skip", None, self.now)
            await repo.bump_revision(tx, meeting.id, self.now)
            if last:
                await repo.cancel(tx, meeting.id, self.now)
                await outbox_repo.cancel(tx, dedup_prefix=plan_prefix(meeting.id), now=self.now)
        updated = await self._require(meeting.id, active=not last)
        if not last:
            await self.plan_reminders(updated)
        await self._notify(
            updated,
            "skip",
            lambda lang: self.tr(lang)(
                "meetings.notice.skipped_only" if last else "meetings.notice.skipped",
                title=updated.title,
                when=self.format_when(occ.start, updated.tz, lang),
            ),
        )
        return updated

    async def move_occurrence(
        self, meeting_id: int, original: dt.datetime, new_start: dt.datetime
    ) -> MeetingRecord:
        """Move one occurrence (``new_start`` naive = the meeting's wall time, or aware)."""
        meeting = await self._require(meeting_id)
        occ = await self._require_occurrence(meeting, original)
        sched = self.schedule_of(meeting)
        target = (
            attach_zone(new_start, sched.zone)
            if new_start.tzinfo is None
            else new_start.astimezone(sched.zone)
        )
        if target <= self.now:
            raise MeetingError("in_the_past")
        moved = sched.move(occ.original_start, target)
        async with self.core.db.transaction() as tx:
            if any(o == occ.original_start for o, _ in moved.moves):
                await repo.set_override(tx, meeting.id, occ.original_start, "move", target, self.now)
            else:  # moved back to its own slot
                await repo.delete_override(tx, meeting.id, occ.original_start)
            await repo.bump_revision(tx, meeting.id, self.now)
        updated = await self._require(meeting.id)
        await self.plan_reminders(updated)
        if self._move_far(min(occ.start_utc, occ.original_start), target, self.now):
            return updated  # told a week before (planned with the reminders), not months early
        await self._notify(
            updated,
            "move",
            lambda lang: self.tr(lang)(
                "meetings.notice.moved",
                title=updated.title,
                old=self.format_when(occ.start, updated.tz, lang),
                new=self.format_when(target, updated.tz, lang),
            ),
        )
        return updated

    async def cancel(self, meeting_id: int) -> MeetingRecord:
        """Cancel the whole series: every pending message of it is withdrawn, the groups told."""
        meeting = await self._require(meeting_id)
        now = self.now
        async with self.core.db.transaction() as tx:
            if not await repo.cancel(tx, meeting.id, now):
                raise MeetingError("cancelled", title=meeting.title)
            withdrawn = await outbox_repo.cancel(tx, dedup_prefix=plan_prefix(meeting.id), now=now)
        log.info("meeting %s cancelled; %d pending messages withdrawn", meeting.id, withdrawn)
        updated = await self._require(meeting.id, active=False)
        await self._notify(
            updated, "cancel", lambda lang: self.tr(lang)("meetings.notice.cancelled", title=updated.title)
        )
        return updated

    async def holiday_action(self, meeting_id: int, original: dt.datetime, action: str) -> MeetingRecord:
        """The organizer's answer to a holiday flag: skip, move to the next working day, or keep."""
        if action not in HOLIDAY_ACTIONS:
            raise MeetingError("stale")
        meeting = await self._require(meeting_id)
        occ = await self._require_occurrence(meeting, original)
        if action == "skip":
            return await self.skip_occurrence(meeting.id, occ.original_start)
        if action == "next":
            return await self.move_occurrence(meeting.id, occ.original_start, self._next_working_start(occ))
        return meeting

    # -- RSVP ----------------------------------------------------------------------------------------

    async def rsvp(self, meeting_id: int, original: dt.datetime, user_id: int, answer: str) -> RsvpResult:
        """Record an answer (the same answer twice changes nothing) and say which messages to re-render.

        Pending reminders of the occurrence get the new counts too, so they go out up to date.
        """
        if answer in ANSWER_CODES:
            answer = ANSWER_CODES[answer]
        if answer not in repo.ANSWERS:
            raise MeetingError("stale")
        meeting = await self._require(meeting_id)
        occ = await self._require_occurrence(meeting, original)
        if occ.end_utc <= self.now:
            raise MeetingError("over")
        changed = await repo.set_rsvp(self.core.db, meeting.id, occ.original_start, user_id, answer, self.now)
        counts = await repo.rsvp_counts(self.core.db, meeting.id, occ.original_start)
        edits: list[MessageEdit] = []
        if changed:
            edits = await self._rerender_reminders(meeting, occ, counts)
            edits += await self._rerender_announcements(meeting, occ, counts)
        return RsvpResult(changed, answer, counts, edits)

    async def _rerender_reminders(
        self, meeting: MeetingRecord, occ: Occurrence, counts: dict[str, int]
    ) -> list[MessageEdit]:
        lang = self.group_lang
        edits = []
        for reminder in await repo.reminders_of(self.core.db, meeting.id, occ.original_start):
            text = self.reminder_text(meeting, occ, reminder.offset_minutes, counts, lang)
            markup = self.reminder_markup(meeting, occ, reminder.offset_minutes, lang)
            if reminder.state == "pending":
                payload = {"method": "sendMessage", "params": {"text": text, "reply_markup": markup}}
                await outbox_repo.set_payload(self.core.db, reminder.dedup_key, payload, self.now)
            elif reminder.state == "sent" and reminder.message_id is not None:
                edits.append(MessageEdit(reminder.chat_id, reminder.message_id, text, markup))
        return edits

    async def _rerender_announcements(
        self, meeting: MeetingRecord, occ: Occurrence, counts: dict[str, int]
    ) -> list[MessageEdit]:
        """The announcements of ``occ`` with the new counts: pending ones get a fresh payload, sent ones
        an edit (paced through the outbox by `queue_edits`, like the reminders')."""
        lang = self.group_lang
        text = self.announcement_text(meeting, occ, counts, lang)
        markup = self.announcement_markup(meeting, lang, occ) or {}
        edits = []
        for item in await repo.announcements_of(self.core.db, meeting.id, occ.original_start):
            if item.state == "pending":
                payload = {"method": "sendMessage", "params": {"text": text, "reply_markup": markup}}
                await outbox_repo.set_payload(self.core.db, item.dedup_key, payload, self.now)
            elif item.state == "sent" and item.message_id is not None:
                edits.append(MessageEdit(item.chat_id, item.message_id, text, markup))
        return edits

    async def queue_edits(self, edits: Sequence[MessageEdit], *, skip: tuple[int, int] | None = None) -> int:
        """Send the re-rendered texts through the outbox; a newer edit of a message replaces a pending one.

        ``skip`` = (chat_id, message_id) the handler already edited in place (the pressed message).
        """
        now = self.now
        messages = []
        for edit in edits:
            if skip == (edit.chat_id, edit.message_id):
                continue
            prefix = f"mtge:{edit.chat_id}:{edit.message_id}:"
            await outbox_repo.cancel(self.core.db, dedup_prefix=prefix, now=now)
            payload = {
                "method": "editMessageText",
                "params": {
                    "message_id": edit.message_id,
                    "text": edit.text,
                    "reply_markup": edit.reply_markup,
                },
            }
            key = f"{prefix}{now.strftime('%Y%m%dT%H%M%S%f')}:{next(_edit_seq)}"
            messages.append(
                NewMessage(
                    KIND_EDIT,
                    key,
                    edit.chat_id,
                    payload,
                    now,
                    priority=6,
                    expires_at=now + dt.timedelta(hours=1),
                )
            )
        count = await self.core.outbox.enqueue(messages)
        return count

    async def answers(self, meeting_id: int, original: dt.datetime) -> list[Answered]:
        """Who answered what (for the organizer), in answer order."""
        meeting = await self._require(meeting_id, active=False)
        rows = await repo.rsvps(self.core.db, meeting.id, original)
        people = await users_repo.get_many(self.core.db, [r.user_id for r in rows])
        return [
            Answered(
                r.user_id, people[r.user_id].display_name if r.user_id in people else str(r.user_id), r.answer
            )
            for r in rows
        ]

    def answers_text(
        self, meeting: MeetingRecord, occ: Occurrence, answered: Sequence[Answered], lang: str
    ) -> str:
        t = self.tr(lang)
        lines = [
            t(
                "meetings.rsvp.who_title",
                title=meeting.title,
                when=self.format_when(occ.start, meeting.tz, lang),
            )
        ]
        for answer in repo.ANSWERS:
            names = [a.name for a in answered if a.answer == answer]
            lines.append(
                t(
                    f"meetings.rsvp.who_{answer}",
                    n=len(names),
                    names=t("meetings.rsvp.name_sep").join(names) or "—",
                )
            )
        return "\n".join(lines)

    # -- topics --------------------------------------------------------------------------------------

    def topic_deadline(self, meeting: MeetingRecord, occ: Occurrence) -> dt.datetime:
        return occ.start_utc - dt.timedelta(minutes=meeting.topic_deadline_minutes)

    async def topic_target(
        self, *, chat_id: int | None = None, areas: Sequence[str] = ()
    ) -> TopicTarget | None:
        """The next occurrence a topic sent here would be for (its deadline may have passed)."""
        for item in await self.upcoming(chat_id=chat_id, areas=areas, limit=20):
            if item.occurrence.start_utc > self.now:
                return TopicTarget(
                    item.meeting, item.occurrence, self.topic_deadline(item.meeting, item.occurrence)
                )
        return None

    async def add_topic(self, meeting_id: int, original: dt.datetime, user_id: int, text: str) -> int:
        """Add an agenda topic before the deadline; returns its id. Refused after the deadline."""
        meeting = await self._require(meeting_id)
        occ = await self._require_occurrence(meeting, original)
        text = text.strip()
        if not text:
            raise MeetingError("empty_topic")
        if len(text) > self.cfg.topic_max_chars:
            raise MeetingError("topic_too_long", limit=self.cfg.topic_max_chars, length=len(text))
        deadline = self.topic_deadline(meeting, occ)
        if self.now >= deadline:
            raise MeetingError("topics_closed", deadline=deadline)
        if (
            await repo.count_user_topics(self.core.db, meeting.id, occ.original_start, user_id)
            >= self.cfg.max_topics_per_user
        ):
            raise MeetingError("too_many_topics", limit=self.cfg.max_topics_per_user)
        topic_id = await repo.add_topic(self.core.db, meeting.id, occ.original_start, user_id, text, self.now)
        # The organizer's digest row (pending until the deadline) gets the fresh list.
        lang = await self.core.user_lang(meeting.organizer_id)
        digest = {"method": "sendMessage", "params": {"text": await self._topics_text(meeting, occ, lang)}}
        await outbox_repo.set_payload(
            self.core.db, topics_key(meeting.id, occ.start, meeting.organizer_id), digest, self.now
        )
        return topic_id

    async def topics(self, meeting_id: int, original: dt.datetime) -> list[repo.Topic]:
        return await repo.topics(self.core.db, meeting_id, original)

    async def _topics_text(self, meeting: MeetingRecord, occ: Occurrence, lang: str) -> str:
        topics = await repo.topics(self.core.db, meeting.id, occ.original_start)
        return self._topics_text_of(meeting, occ, lang, topics, await self._names_of(topics))

    async def _names_of(self, topics: Iterable[repo.Topic]) -> dict[int, str]:
        """The display names of the topics' authors."""
        people = await users_repo.get_many(self.core.db, sorted({x.user_id for x in topics}))
        return {user_id: person.display_name for user_id, person in people.items()}

    def _topics_text_of(
        self,
        meeting: MeetingRecord,
        occ: Occurrence,
        lang: str,
        topics: list[repo.Topic],
        names: dict[int, str],
    ) -> str:
        t = self.tr(lang)
        head = t(
            "meetings.topics.digest_title",
            title=meeting.title,
            when=self.format_when(occ.start, meeting.tz, lang),
        )
        if not topics:
            return f"{head}\n{t('meetings.topics.digest_empty')}"
        lines = [head]
        for i, topic in enumerate(topics, 1):
            who = names.get(topic.user_id, str(topic.user_id))
            lines.append(t("meetings.topics.digest_line", n=i, text=topic.text, name=who))
        return "\n".join(lines)

    # -- outcome -------------------------------------------------------------------------------------

    async def post_outcome(self, meeting_id: int, original: dt.datetime, text: str) -> int:
        """Send the organizer's outcome note of one occurrence to the same groups (once per occurrence)."""
        meeting = await self._require(meeting_id, active=False)
        occ = self.find_occurrence(meeting, original)
        if occ is None:
            raise MeetingError("no_such_occurrence")
        if occ.start_utc > self.now:
            raise MeetingError("not_held_yet")
        text = text.strip()
        if not text:
            raise MeetingError("empty_outcome")
        if len(text) > self.cfg.outcome_max_chars:
            raise MeetingError("outcome_too_long", limit=self.cfg.outcome_max_chars, length=len(text))
        lang = self.group_lang
        body = self.tr(lang)(
            "meetings.outcome.note",
            title=meeting.title,
            when=self.format_when(occ.start, meeting.tz, lang),
            text=text,
        )
        now = self.now
        messages = [
            NewMessage(
                KIND_OUTCOME,
                f"mtgo:{meeting.id}:{occ_key(occ.original_start)}:{chat_id}",
                chat_id,
                {"method": "sendMessage", "params": {"text": body}},
                now,
                priority=4,
            )
            for chat_id in await self.target_chats(meeting)
        ]
        count = await self.core.outbox.enqueue(messages)
        if not count and messages:
            raise MeetingError("outcome_already_posted")
        return count

    async def recent_occurrences(self, meeting_id: int, limit: int = 3) -> list[Occurrence]:
        """Occurrences that already started, newest first (to pick one for an outcome note)."""
        meeting = await self._require(meeting_id, active=False)
        sched = self.schedule_of(meeting)
        occs = sched.occurrences_between(self.now - dt.timedelta(days=400), self.now)
        return list(reversed(occs))[:limit]

    # -- calendar ------------------------------------------------------------------------------------

    def _ics_meeting(self, meeting: MeetingRecord, lang: str) -> IcsMeeting:
        return IcsMeeting(
            meeting_id=meeting.id,
            title=meeting.title,
            schedule=self.schedule_of(meeting),
            place=meeting.place,
            lat=meeting.lat,
            lon=meeting.lon,
            description=self.describe(meeting, lang),
            sequence=meeting.revision,
            cancelled=not meeting.active,
        )

    async def ics(self, meeting_id: int, lang: str = "zh") -> tuple[str, bytes]:
        """(file name, .ics bytes) of the whole series with RRULE and timezone."""
        meeting = await self._require(meeting_id, active=False)
        return f"meeting-{meeting.id}.ics", series_ics(self._ics_meeting(meeting, lang), self.now)

    async def occurrence_ics(
        self, meeting_id: int, original: dt.datetime, lang: str = "zh"
    ) -> tuple[str, bytes]:
        """(file name, .ics bytes) of one occurrence in UTC times."""
        meeting = await self._require(meeting_id, active=False)
        occ = await self._require_occurrence(meeting, original)
        name = f"meeting-{meeting.id}-{occ.start.strftime('%Y%m%d')}.ics"
        return name, occurrence_ics(self._ics_meeting(meeting, lang), occ, self.now)
