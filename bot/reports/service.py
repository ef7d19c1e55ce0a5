"""Grievances and hazard tips: filing, the moderator lifecycle, notifications, escalation, export.

`ReportService(core)` holds the rules and knows nothing of Telegram objects: handlers fill a
`ReportDraft`, call the service and render its results. Everything sent to someone other than the
person being answered (moderator cards, card edits, notices to reporters and supporters,
escalations) is an outbox row written in the same transaction as the change that caused it.

Anonymity: `reporter_id` is kept so the reporter still gets updates, but an anonymous report never
shows who filed it: not in cards, lists, exports or texts to anyone but the reporter.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import logging
import math
import re
import sys
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from bot.core.config import ReportsConfig
from bot.core.container import Core
from bot.core.i18n import resolve_language
from bot.kit.geo import LatLon, bounding_box, distance_m
from bot.kit.spreadsheet import escape_cell
from bot.reports import categories as rc
from storage import groups as groups_repo
from storage import outbox as outbox_repo
from storage import points as points_repo
from storage import reports as repo
from storage import users as users_repo
from storage.db import Database, Executor
from storage.reports import OPEN_STATUSES, STATUSES, Hotspot, ReportEvent, ReportRecord

log = logging.getLogger(__name__)

Report = ReportRecord

# Moderator actions (callback "rp:st:{id}:{action}") and the reporter's reopen:
# action -> (statuses it may start from, status it leads to).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "ack": (frozenset({"new"}), "acknowledged"),
    "progress": (frozenset({"new", "acknowledged"}), "in_progress"),
    "resolve": (frozenset(OPEN_STATUSES), "resolved"),
    "reject": (frozenset(OPEN_STATUSES), "rejected"),
    "duplicate": (frozenset(OPEN_STATUSES), "duplicate"),
    "reopen": (frozenset({"resolved"}), "new"),
}
MODERATOR_ACTIONS: tuple[str, ...] = ("ack", "progress", "resolve", "reject", "duplicate")
NOTE_REQUIRED = frozenset({"resolve", "reject"})
UNDO_ACTION = "undo"  # an event that takes the last decision back (see ReportService.undo)
# The card's buttons: every action keeps its slot in every state (a mis-tap never lands on another
# action after a change); a slot whose action is not possible now shows CARD_EMPTY_LABEL and does
# nothing (callback rp:st:{id}:-).
CARD_SLOTS: tuple[tuple[str, ...], ...] = (
    ("ack", "progress", "resolve"),
    ("reject", "duplicate", UNDO_ACTION),
)
CARD_EMPTY = "-"
# A hazard that reached one of these was judged valid: its reporter earns points (once).
VALID_STATUSES = frozenset({"acknowledged", "in_progress", "resolved"})
NOTE_LIMIT = 300
PLACE_LIMIT = 200

# Outbox kinds and callback data.
CARD_KIND = "report_card"  # a card in a moderator chat: its message_id is recorded when sent
CARD_EDIT_KIND = "report_card_edit"
MEDIA_KIND = "report_media"
NOTICE_KIND = "report_notice"
CB_STATUS = "rp:st"  # rp:st:{id}:{action}
CB_FEEDBACK = "rp:fb"  # rp:fb:{id}:y|n
CARD_PRIORITY = 1
NOTICE_PRIORITY = 0
ESCALATION_PRIORITY = 5
DIGEST_KIND = "report_digest"  # the daily escalation digest of one moderators' chat
DIGEST_KEY = "rp:digest"  # rp:digest:{chat id}:{local date}
CB_OPEN = "rp:ls:o"  # rp:ls:o:{id}: open a report's card (handlers/reports/lists.list_button)
ESCALATION_BATCH = 200  # reports stamped per transaction
DIGEST_OLDEST = 5  # the oldest reports named (with a button each) in the digest
DIGEST_AGES = (3, 7)  # waiting-time groups of the digest, in days: < 3, 3-7, >= 7
EXPORT_PAGE = 2000  # reports read per query by the CSV export

# Dedup keys of CARD_KIND rows: rp:{id}:card | rp:{id}:reopen:{event id} (| rp:{id}:esc:{local date}: the
# escalation cards queued before the daily digest replaced them)
_CARD_KEY = re.compile(r"^rp:(\d+):(?:card|esc:\d{4}-\d{2}-\d{2}|reopen:\d+)$")


@dataclass
class ReportDraft:
    """What a courier is filing; the handler fills it step by step (kept JSON-safe for persistence)."""

    kind: str | None = None
    category: str | None = None
    description: str = ""
    voice_file_id: str | None = None
    photos: list[str] = field(default_factory=list)
    lat: float | None = None
    lon: float | None = None
    place_text: str | None = None
    compound: str | None = None
    property_company: str | None = None
    anonymous: bool = False
    blurred: bool = False  # the location was blurred to ~100 m for an anonymous grievance
    area: str | None = None
    origin_chat_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReportDraft:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        values["photos"] = list(values.get("photos") or [])
        return cls(**values)

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class Refusal:
    """Why something was not done: `reports.error.<code>` in the catalog, with its values."""

    code: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"reports.error.{self.code}"

    def text(self, core: Core, lang: str | None) -> str:
        values = dict(self.values)
        if "status" in values:  # a status code, shown in the reader's language
            values["status"] = core.t(lang, f"reports.status.{values['status']}")
        return core.t(lang, self.key, **values)


class ReportRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


@dataclass
class Escalation:
    """What one escalation run did: digests queued, reports stamped as escalated."""

    digests: int = 0
    reports: int = 0


@dataclass(frozen=True)
class Outcome:
    """Result of a status change, a reopen, a confirmation or a "+1".

    `changed` is True for the one call that made the change; otherwise `refusal` says why not and
    `report` is the current state (e.g. what the other moderator just did).
    """

    changed: bool
    report: ReportRecord | None
    refusal: Refusal | None = None
    event_id: int | None = None
    points: int = 0


BLUR_DEGREES = 0.001  # ~111 m of latitude, ~96 m of longitude in Zhejiang


def blur_location(lat: float, lon: float) -> tuple[float, float]:
    """A spot blurred to about 100 m: the centre of its 0.001° cell, the same for every point in it
    (so repeated reports from one doorstep don't average out to it)."""
    return (
        (math.floor(lat / BLUR_DEGREES) + 0.5) * BLUR_DEGREES,
        (math.floor(lon / BLUR_DEGREES) + 0.5) * BLUR_DEGREES,
    )


def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def normalize_place(text: str | None) -> str | None:
    """A compound or property company as typed, in one form: full-width letters, digits, brackets and
    spaces become their plain forms (NFKC), runs of spaces one space, no spaces around. None if empty.
    Different names for one place ("Xixi Garden" / "西溪花园") stay different: that takes a person."""
    if text is None:
        return None
    return " ".join(unicodedata.normalize("NFKC", text).split()) or None


def _display_name(first_name: str, last_name: str, username: str | None) -> str:
    """A (non-anonymous) reporter as cards and the export show them: name (@username)."""
    name = f"{first_name} {last_name}".strip()
    if username:
        return f"{name} (@{username})" if name else f"@{username}"
    return name or "—"


def report_id_from_card_key(dedup_key: str) -> int | None:
    match = _CARD_KEY.match(dedup_key)
    return int(match.group(1)) if match else None


class ReportService:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def cfg(self) -> ReportsConfig:
        return self.core.config.reports

    @property
    def db(self) -> Database:
        return self.core.db

    def _now(self) -> dt.datetime:
        return self.core.clock.now()

    # -- checks a handler can run at each step ----------------------------------------------------

    def in_service_area(self, lat: float, lon: float) -> bool:
        bounds = self.cfg.service_bounds
        if not bounds:
            return True
        south, west, north, east = bounds
        return south <= lat <= north and west <= lon <= east

    def check_description(self, text: str) -> Refusal | None:
        text = text.strip()
        if not text:
            return Refusal("empty_description")
        if len(text) > self.cfg.description_limit:
            return Refusal("too_long", {"limit": self.cfg.description_limit, "length": len(text)})
        return None

    def check_location(self, lat: float, lon: float) -> Refusal | None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not self.in_service_area(lat, lon):
            return Refusal("outside_area")
        return None

    def check_place(self, text: str) -> Refusal | None:
        text = text.strip()
        if not text:
            return Refusal("empty_place")
        if len(text) > PLACE_LIMIT:
            return Refusal("too_long", {"limit": PLACE_LIMIT, "length": len(text)})
        return None

    def can_add_photo(self, draft: ReportDraft) -> Refusal | None:
        if len(draft.photos) >= self.cfg.max_photos:
            return Refusal("too_many_photos", {"limit": self.cfg.max_photos})
        return None

    def problems(self, draft: ReportDraft) -> list[Refusal]:
        """Everything that keeps a draft from being submitted (empty when it is ready)."""
        found: list[Refusal] = []
        if draft.kind is None or not rc.is_kind(draft.kind):
            return [Refusal("bad_kind")]
        if draft.category is None or rc.category(draft.kind, draft.category) is None:
            found.append(Refusal("bad_category"))
        has_photo = bool(draft.photos)
        if draft.description.strip():
            problem = self.check_description(draft.description)
            if problem:
                found.append(problem)
        elif not draft.voice_file_id and not (draft.kind == rc.HAZARD and has_photo):
            found.append(Refusal("empty_description"))
        if len(draft.photos) > self.cfg.max_photos:
            found.append(Refusal("too_many_photos", {"limit": self.cfg.max_photos}))
        if (draft.lat is None) != (draft.lon is None):
            found.append(Refusal("outside_area"))
        elif draft.lat is not None and draft.lon is not None:
            problem = self.check_location(draft.lat, draft.lon)
            if problem:
                found.append(problem)
        if draft.place_text and len(draft.place_text.strip()) > PLACE_LIMIT:
            found.append(Refusal("too_long", {"limit": PLACE_LIMIT, "length": len(draft.place_text.strip())}))
        if draft.kind == rc.HAZARD and not draft.has_location and not _clean(draft.place_text):
            found.append(Refusal("needs_location"))
        return found

    def _day_start(self, now: dt.datetime) -> dt.datetime:
        local = now.astimezone(self.core.tz).date()
        return dt.datetime.combine(local, dt.time(0), tzinfo=self.core.tz).astimezone(dt.UTC)

    async def remaining_today(self, user_id: int) -> int:
        used = await repo.count_by_reporter_since(self.db, user_id, self._day_start(self._now()))
        return max(0, self.cfg.daily_limit - used)

    # -- filing -----------------------------------------------------------------------------------

    async def find_duplicate(
        self, draft: ReportDraft, *, exclude_reporter: int | None = None
    ) -> ReportRecord | None:
        """The nearest open hazard of the same category within duplicate_radius_m, filed within the window.

        `exclude_reporter`: the courier filing the draft; their own reports are never offered (another
        courier's hazard nearby still is).
        """
        if draft.kind != rc.HAZARD or draft.category is None or draft.lat is None or draft.lon is None:
            return None
        radius = self.cfg.duplicate_radius_m
        south, north, west, east = bounding_box(draft.lat, draft.lon, radius)
        since = self._now() - dt.timedelta(hours=self.cfg.duplicate_window_hours)
        candidates = await repo.open_in_box(
            self.db,
            kind=rc.HAZARD,
            category=draft.category,
            south=south,
            west=west,
            north=north,
            east=east,
            since=since,
        )
        near = []
        for report in candidates:
            if exclude_reporter is not None and report.reporter_id == exclude_reporter:
                continue
            assert report.lat is not None and report.lon is not None
            distance = distance_m(LatLon(draft.lat, draft.lon), LatLon(report.lat, report.lon))
            if distance <= radius:
                near.append((distance, -report.created_at.timestamp(), report))
        if not near:
            return None
        return min(near, key=lambda item: item[:2])[2]

    async def submit(self, user_id: int, draft: ReportDraft) -> ReportRecord:
        """Store the report with its photos in one transaction, queue the moderator card. Raises ReportRefused."""
        problems = self.problems(draft)
        if problems:
            raise ReportRefused(problems[0])
        assert draft.kind is not None and draft.category is not None
        now = self._now()
        is_access = rc.is_access(draft.kind, draft.category)
        async with self.db.transaction() as tx:
            used = await repo.count_by_reporter_since(tx, user_id, self._day_start(now))
            if used >= self.cfg.daily_limit:
                raise ReportRefused(Refusal("daily_limit", {"limit": self.cfg.daily_limit}))
            area = _clean(draft.area)
            if area is None and draft.origin_chat_id is not None:
                group = await groups_repo.get(tx, draft.origin_chat_id)
                area = group.area if group else None
            if area is None:
                user = await users_repo.get(tx, user_id)
                area = user.area if user else None
            report = await repo.insert(
                tx,
                kind=draft.kind,
                category=draft.category,
                description=draft.description.strip(),
                voice_file_id=draft.voice_file_id,
                lat=draft.lat,
                lon=draft.lon,
                place_text=_clean(draft.place_text),
                compound=await self._place_spelling(tx, "compound", draft.compound) if is_access else None,
                property_company=(
                    await self._place_spelling(tx, "property_company", draft.property_company)
                    if is_access
                    else None
                ),
                # Hazard tips are public safety information: only grievances may be anonymous.
                anonymous=draft.anonymous and draft.kind == rc.GRIEVANCE,
                reporter_id=user_id,
                area=area,
                origin_chat_id=draft.origin_chat_id,
                now=now,
            )
            await repo.add_photos(tx, report.id, draft.photos)
            await repo.add_event(
                tx,
                report.id,
                actor_id=user_id,
                action="submit",
                from_status=None,
                to_status="new",
                note=None,
                now=now,
            )
            await self._queue_card(tx, report, now, key=f"rp:{report.id}:card", with_media=True)
        log.info("report %s filed (area %s)", report.ref, report.area)
        return report

    @staticmethod
    async def _place_spelling(ex: Executor, column: str, text: str | None) -> str | None:
        """The compound or property company as the hotspots group it: normalised (normalize_place),
        and written as the place already known under the same letters in another case ("xixi garden"
        joins "Xixi Garden"), so one place is counted once."""
        value = normalize_place(text)
        if value is None:
            return None
        return await repo.known_place(ex, column, value) or value

    async def add_supporter(self, report_id: int, user_id: int) -> Outcome:
        """A "+1": the user confirms the same problem and follows its updates."""
        now = self._now()
        async with self.db.transaction() as tx:
            report = await repo.get(tx, report_id)
            if report is None:
                return Outcome(False, None, Refusal("not_found"))
            if report.reporter_id == user_id:
                return Outcome(False, report, Refusal("own_report", {"ref": report.ref}))
            if not report.is_open:
                return Outcome(False, report, self._status_refusal(report, "not_open"))
            if not await repo.add_supporter(tx, report.id, user_id, now):
                return Outcome(False, report, Refusal("already_supporter", {"ref": report.ref}))
            event_id = await repo.add_event(
                tx,
                report.id,
                actor_id=user_id,
                action="support",
                from_status=report.status,
                to_status=report.status,
                note=None,
                now=now,
            )
            report = await repo.get(tx, report.id)
            assert report is not None
            await self._queue_card_edits(tx, report, event_id, now, skip=None)
        return Outcome(True, report, event_id=event_id)

    # -- lifecycle --------------------------------------------------------------------------------

    async def transition(
        self,
        report_id: int,
        action: str,
        actor_id: int,
        *,
        note: str | None = None,
        duplicate_ref: str | None = None,
        edited_card: tuple[int, int] | None = None,
        notice_delay_seconds: int = 0,
    ) -> Outcome:
        """A moderator action (ack, progress, resolve, reject, duplicate). The caller checked the role.

        Compare-and-set: of two presses at once exactly one changes the report; the other gets the
        current state and a refusal. `edited_card` is the card the handler edits itself (skipped here).
        `notice_delay_seconds`: the reporter's and supporters' notices wait that long in the outbox, so
        an `undo` within it cancels them (the desk passes reports.undo_grace_seconds).
        """
        if action not in MODERATOR_ACTIONS:
            return Outcome(False, await repo.get(self.db, report_id), Refusal("stale"))
        note = _clean(note)
        if action in NOTE_REQUIRED and note is None:
            return Outcome(False, await repo.get(self.db, report_id), Refusal("note_required"))
        if note is not None and len(note) > NOTE_LIMIT:
            return Outcome(
                False, await repo.get(self.db, report_id), Refusal("note_too_long", {"limit": NOTE_LIMIT})
            )
        if action == "duplicate" and not _clean(duplicate_ref):
            return Outcome(False, await repo.get(self.db, report_id), Refusal("duplicate_needs_ref"))
        return await self._change(
            report_id, action, actor_id, note, duplicate_ref, edited_card, notice_delay_seconds
        )

    async def feedback(self, report_id: int, user_id: int, solved: bool) -> Outcome:
        """The reporter's answer to 已解决了吗?: 是 confirms (an event), 没有 reopens within the window."""
        if not solved:
            return await self.reopen(report_id, user_id)
        now = self._now()
        async with self.db.transaction() as tx:
            report = await repo.get(tx, report_id)
            if report is None:
                return Outcome(False, None, Refusal("not_found"))
            if report.reporter_id != user_id:
                return Outcome(False, report, Refusal("not_reporter"))
            if report.status != "resolved" or report.resolved_at is None:
                return Outcome(False, report, self._status_refusal(report, "not_allowed"))
            if await repo.has_event_since(tx, report.id, "confirm", report.resolved_at):
                return Outcome(False, report, Refusal("already_confirmed", {"ref": report.ref}))
            event_id = await repo.add_event(
                tx,
                report.id,
                actor_id=user_id,
                action="confirm",
                from_status="resolved",
                to_status="resolved",
                note=None,
                now=now,
            )
        return Outcome(True, report, event_id=event_id)

    async def reopen(self, report_id: int, user_id: int) -> Outcome:
        """ "Not solved": the reporter sends a resolved report back to the moderators, within reopen_days."""
        return await self._change(report_id, "reopen", user_id, None, None, None)

    async def _change(
        self,
        report_id: int,
        action: str,
        actor_id: int,
        note: str | None,
        duplicate_ref: str | None,
        edited_card: tuple[int, int] | None,
        notice_delay_seconds: int = 0,
    ) -> Outcome:
        allowed_from, target = TRANSITIONS[action]
        now = self._now()
        async with self.db.transaction() as tx:
            report = await repo.get(tx, report_id)
            if report is None:
                return Outcome(False, None, Refusal("not_found"))
            if action == "reopen":
                if report.reporter_id != actor_id:
                    return Outcome(False, report, Refusal("not_reporter"))
                if report.status == "resolved" and report.resolved_at is not None:
                    deadline = report.resolved_at + dt.timedelta(days=self.cfg.reopen_days)
                    if now > deadline:
                        return Outcome(
                            False, report, Refusal("reopen_expired", {"days": self.cfg.reopen_days})
                        )
            if report.status not in allowed_from:
                code = "already" if report.status == target else "not_allowed"
                return Outcome(False, report, self._status_refusal(report, code))
            other: ReportRecord | None = None
            if action == "duplicate":
                other, refusal = await self._duplicate_target(tx, report, duplicate_ref or "")
                if refusal is not None:
                    return Outcome(False, report, refusal)
                assert other is not None
                note = other.ref if note is None else f"{other.ref}: {note}"
            updated = await repo.set_status(
                tx,
                report.id,
                expected=report.status,
                new=target,
                now=now,
                duplicate_of=other.id if other else None,
            )
            if updated is None:  # changed under us (a concurrent press): report the state that won
                current = await repo.get(tx, report.id)
                if current is None:
                    return Outcome(False, None, Refusal("not_found"))
                code = "already" if current.status == target else "not_allowed"
                return Outcome(False, current, self._status_refusal(current, code))
            event_id = await repo.add_event(
                tx,
                report.id,
                actor_id=actor_id,
                action=action,
                from_status=report.status,
                to_status=target,
                note=note,
                now=now,
            )
            credited = 0
            if (
                updated.kind == rc.HAZARD
                and target in VALID_STATUSES
                and self.cfg.hazard_points > 0
                and updated.reporter_id != actor_id  # a reporter's points need someone else's decision
                and await points_repo.append(
                    tx,
                    user_id=updated.reporter_id,
                    delta=self.cfg.hazard_points,
                    reason="report_valid",
                    ref=f"report:{updated.ref}",
                    area=updated.area,
                    actor_id=actor_id,
                    idem_key=await self._valid_key(tx, updated.id),
                    now=now,
                )
            ):
                credited = self.cfg.hazard_points
            if other is not None:
                await self._follow_original(tx, updated, other, actor_id, now)
            await self._queue_notices(
                tx,
                updated,
                event_id,
                actor_id,
                note,
                other,
                credited,
                now,
                due=now + dt.timedelta(seconds=max(0, notice_delay_seconds)),
            )
            await self._queue_card_edits(tx, updated, event_id, now, skip=edited_card)
            if action == "reopen":
                await self._queue_card(
                    tx,
                    updated,
                    now,
                    key=f"rp:{updated.id}:reopen:{event_id}",
                    header=("reports.card.reopened", {}),
                )
        return Outcome(True, updated, event_id=event_id, points=credited)

    async def _valid_key(self, ex: Executor, report_id: int) -> str:
        """The idem key of a hazard's "judged valid" credit: one per credit an undo has not taken back."""
        taken_back = await points_repo.count_idem_prefix(ex, f"rp:{report_id}:valid:undo:")
        return f"rp:{report_id}:valid" if taken_back == 0 else f"rp:{report_id}:valid:{taken_back + 1}"

    def undo_deadline(self, event: ReportEvent) -> dt.datetime:
        return event.at + dt.timedelta(minutes=self.cfg.undo_window_minutes)

    async def last_decision(self, report_id: int) -> ReportEvent | None:
        """The decision `undo` would take back: the last event if it is a standing moderator action."""
        events = await repo.events(self.db, report_id)
        decisions = [e for e in events if e.action not in ("support", "confirm")]
        if not decisions:
            return None
        last = decisions[-1]
        if last.action in MODERATOR_ACTIONS and last.undone_by is None:
            return last
        return None

    @staticmethod
    def _undoable(report: ReportRecord, events: Sequence[ReportEvent]) -> ReportEvent | None:
        """The decision `undo` takes back: the last event (beside "+1"s and confirmations), if it is a
        moderator action still standing that led to the report's current status."""
        decisions = [e for e in events if e.action not in ("support", "confirm")]
        last = decisions[-1] if decisions else None
        if (
            last is None
            or last.action not in MODERATOR_ACTIONS
            or last.undone_by is not None
            or last.from_status is None
            or last.to_status != report.status
        ):
            return None
        return last

    async def undo(
        self, report_id: int, actor_id: int, *, edited_card: tuple[int, int] | None = None
    ) -> Outcome:
        """Take the last moderator decision back (the caller checked the role): the report returns to
        the status it had, as its own audited 'undo' event; resolved_at, a duplicate's link and a
        hazard's points credited by that decision go with it (the "+1" followers a duplicate gave the
        original stay: they asked to follow the same problem).

        What the reporter and supporters hear: only the final state. Notices of the decision still
        waiting in the outbox (the desk holds them for reports.undo_grace_seconds) are cancelled, so
        they hear nothing; if some already went out, those who got one get a short correction with
        the status the report is back in. Allowed within reports.undo_window_minutes of the decision,
        and only while nothing happened after it (another decision, a reopen).
        """
        now = self._now()
        async with self.db.transaction() as tx:
            report = await repo.get(tx, report_id)
            if report is None:
                return Outcome(False, None, Refusal("not_found"))
            events = [e for e in await repo.events(tx, report.id) if e.action not in ("support", "confirm")]
            last = self._undoable(report, events)
            if last is None or last.from_status is None:
                return Outcome(False, report, Refusal("nothing_to_undo", {"ref": report.ref}))
            if now > self.undo_deadline(last):
                return Outcome(
                    False, report, Refusal("undo_expired", {"minutes": self.cfg.undo_window_minutes})
                )
            standing = [e for e in events if e.id != last.id and e.undone_by is None]
            reached = [
                e.at for e in standing if e.action in MODERATOR_ACTIONS and e.to_status in VALID_STATUSES
            ]
            restored = await repo.restore_status(
                tx,
                report.id,
                expected=report.status,
                previous=last.from_status,
                acknowledged_at=min(reached) if reached else None,
                now=now,
            )
            if restored is None:
                current = await repo.get(tx, report.id)
                return Outcome(False, current, Refusal("nothing_to_undo", {"ref": report.ref}))
            undo_id = await repo.add_event(
                tx,
                report.id,
                actor_id=actor_id,
                action=UNDO_ACTION,
                from_status=report.status,
                to_status=restored.status,
                note=str(last.id),
                now=now,
            )
            await repo.mark_undone(tx, last.id, undo_id)
            # A hazard's "valid" points credited by this very decision are taken back.
            credit_key = await self._valid_key(tx, report.id)
            credit = await points_repo.by_idem_key(tx, credit_key)
            if (
                credit is not None
                and restored.status not in VALID_STATUSES
                and credit.created_at == last.at
                and credit.actor_id == last.actor_id
            ):
                taken_back = await points_repo.count_idem_prefix(tx, f"rp:{report.id}:valid:undo:")
                await points_repo.append(
                    tx,
                    user_id=credit.user_id,
                    delta=-credit.delta,
                    reason="report_valid",
                    ref=f"report:{report.ref}",
                    note="undo",
                    area=credit.area,
                    actor_id=actor_id,
                    idem_key=f"rp:{report.id}:valid:undo:{taken_back + 1}",
                    now=now,
                )
            prefix = f"rp:{report.id}:ev:{last.id}:"
            told = [
                uid
                for uid in [report.reporter_id, *await repo.supporters(tx, report.id)]
                if uid != last.actor_id
                and (sent := await outbox_repo.get_by_key(tx, f"{prefix}{uid}")) is not None
                and sent.state not in ("pending", "cancelled")
            ]
            await outbox_repo.cancel(tx, dedup_prefix=prefix, now=now)
            await self._queue_corrections(tx, restored, undo_id, list(dict.fromkeys(told)), now)
            await self._queue_card_edits(tx, restored, undo_id, now, skip=edited_card)
        log.info(
            "report %s: decision %s undone (%s -> %s)", report.ref, last.id, report.status, restored.status
        )
        return Outcome(True, restored, event_id=undo_id)

    async def _queue_corrections(
        self, ex: Executor, report: ReportRecord, undo_id: int, user_ids: list[int], now: dt.datetime
    ) -> None:
        """Those already told of a decision that was taken back hear the status it is back in."""
        messages = []
        for user_id in user_ids:
            lang = await self._lang(ex, user_id)
            text = self.core.t(
                lang,
                "reports.notice.corrected",
                ref=report.ref,
                category=rc.category_label(self.core.catalog, lang, report.kind, report.category),
                status=self.core.t(lang, f"reports.status.{report.status}"),
            )
            messages.append(
                self._message(
                    NOTICE_KIND,
                    f"rp:{report.id}:ev:{undo_id}:{user_id}",
                    user_id,
                    "sendMessage",
                    {"text": text},
                    now,
                    NOTICE_PRIORITY,
                )
            )
        await self.core.outbox.enqueue(messages, ex)

    async def _follow_original(
        self, tx: Executor, duplicate: ReportRecord, original: ReportRecord, actor_id: int, now: dt.datetime
    ) -> None:
        """The duplicate's reporter and its "+1" supporters follow the original from now on (they are
        told so in the notice). Never the original's own reporter: they follow it anyway."""
        followers = [duplicate.reporter_id, *await repo.supporters(tx, duplicate.id)]
        last_event: int | None = None
        for user_id in dict.fromkeys(followers):
            if user_id == original.reporter_id:
                continue
            if await repo.add_supporter(tx, original.id, user_id, now):
                last_event = await repo.add_event(
                    tx,
                    original.id,
                    actor_id=actor_id,
                    action="support",
                    from_status=original.status,
                    to_status=original.status,
                    note=duplicate.ref,
                    now=now,
                )
        if last_event is not None:
            refreshed = await repo.get(tx, original.id)
            assert refreshed is not None
            await self._queue_card_edits(tx, refreshed, last_event, now, skip=None)

    async def _duplicate_target(
        self, ex: Executor, report: ReportRecord, text: str
    ) -> tuple[ReportRecord | None, Refusal | None]:
        parsed = rc.parse_ref(text)
        if parsed is None:
            return None, Refusal("duplicate_unknown", {"ref": text.strip()[:20]})
        other = await repo.get_by_seq(ex, *parsed)
        hops = 0
        while other is not None and other.status == "duplicate" and other.duplicate_of and hops < 10:
            other = await repo.get(ex, other.duplicate_of)
            hops += 1
        if other is None:
            return None, Refusal("duplicate_unknown", {"ref": rc.format_ref(*parsed)})
        if other.id == report.id:
            return None, Refusal("duplicate_self")
        return other, None

    @staticmethod
    def _status_refusal(report: ReportRecord, code: str) -> Refusal:
        return Refusal(code, {"ref": report.ref, "status": report.status})

    # -- escalation -------------------------------------------------------------------------------

    async def escalate_due(self) -> Escalation:
        """Remind each moderators' chat, once a local day from reports.digest_hour on, of the reports
        still unacknowledged after ack_timeout_hours: ONE digest message per chat (counts by category
        and by waiting time, the oldest few with their references and buttons to open them, a hint to
        /reports), never one card per report.

        Work in short transactions: the overdue reports are read page by page from a reader
        connection, stamped (last_escalated_at) ESCALATION_BATCH at a time, each batch its own
        transaction, and the digest is queued last with the dedup key rp:digest:{chat}:{local date}.
        A second run that day finds the digest and does nothing for that chat; a run interrupted
        before queuing it stamps again and queues it. Run it from a repeating job.
        """
        now = self._now()
        local = now.astimezone(self.core.tz)
        if local.hour < self.cfg.digest_hour:
            return Escalation()
        today = local.date().isoformat()
        bot = self.core.config.bot
        chats = {c for c in (bot.moderator_chat_id, *bot.area_moderator_chats.values()) if c}
        told = {c for c in chats if await outbox_repo.get_by_key(self.db, f"{DIGEST_KEY}:{c}:{today}")}
        if told == chats:
            return Escalation()  # every moderators' chat was told today (or none is configured)
        waiting_since = now - dt.timedelta(hours=self.cfg.ack_timeout_hours)
        by_chat: dict[int, list[repo.Overdue]] = {}
        unposted = 0
        cursor: tuple[str, int] | None = None
        while True:
            page, cursor = await repo.overdue_page(self.db, waiting_since=waiting_since, after=cursor)
            for item in page:
                chat_id = self.moderator_chat(item.area)
                if not chat_id:
                    unposted += 1
                elif chat_id not in told:
                    by_chat.setdefault(chat_id, []).append(item)
            if cursor is None:
                break
        if unposted:
            log.warning("no moderator chat for %d unacknowledged report(s): not escalated", unposted)
        result = Escalation()
        lang = bot.default_language
        for chat_id, items in by_chat.items():
            key = f"{DIGEST_KEY}:{chat_id}:{today}"
            if await outbox_repo.get_by_key(self.db, key) is not None:
                continue  # told meanwhile (another run)
            message = self._message(
                DIGEST_KIND, key, chat_id, "sendMessage", self.digest(items, lang), now, ESCALATION_PRIORITY
            )
            ids = [item.id for item in items]
            for start in range(0, len(ids), ESCALATION_BATCH):
                async with self.db.transaction() as tx:
                    result.reports += await repo.mark_escalated(
                        tx, ids[start : start + ESCALATION_BATCH], now
                    )
            async with self.db.transaction() as tx:
                result.digests += await self.core.outbox.enqueue([message], tx)
        return result

    def digest(self, items: Sequence[repo.Overdue], lang: str) -> dict[str, Any]:
        """sendMessage params of one chat's escalation digest (`items`: its overdue reports)."""
        t = self.core.t
        now = self._now()
        lines = [t(lang, "reports.digest.title", count=len(items), hours=self.cfg.ack_timeout_hours)]
        categories: dict[tuple[str, str], int] = {}
        ages = [0, 0, 0]
        for item in items:
            categories[(item.kind, item.category)] = categories.get((item.kind, item.category), 0) + 1
            days = (now - item.waiting_since).days
            ages[0 if days < DIGEST_AGES[0] else 1 if days < DIGEST_AGES[1] else 2] += 1
        lines += ["", t(lang, "reports.digest.by_category")]
        for (kind, category), n in sorted(categories.items(), key=lambda kv: (-kv[1], kv[0])):
            label = rc.category_label(self.core.catalog, lang, kind, category)
            lines.append(t(lang, "reports.digest.category_line", category=label, count=n))
        lines += ["", t(lang, "reports.digest.by_age")]
        low, high = DIGEST_AGES
        for key, values, n in (
            ("age_under", {"days": low}, ages[0]),
            ("age_between", {"low": low, "high": high}, ages[1]),
            ("age_over", {"days": high}, ages[2]),
        ):
            if n:
                lines.append(t(lang, f"reports.digest.{key}", count=n, **values))
        oldest = sorted(items, key=lambda item: (item.waiting_since, item.id))[:DIGEST_OLDEST]
        lines += ["", t(lang, "reports.digest.oldest", count=len(oldest))]
        for item in oldest:
            waited = now - item.waiting_since
            if waited.days:
                wait = t(lang, "reports.digest.waited_days", days=waited.days)
            else:
                wait = t(lang, "reports.digest.waited_hours", hours=int(waited.total_seconds() // 3600))
            category = rc.category_label(self.core.catalog, lang, item.kind, item.category)
            lines.append(t(lang, "reports.digest.oldest_line", ref=item.ref, category=category, waited=wait))
        lines += ["", t(lang, "reports.digest.hint")]
        buttons = [{"text": item.ref, "callback_data": f"{CB_OPEN}:{item.id}"} for item in oldest]
        return {"text": "\n".join(lines)[:4000], "reply_markup": {"inline_keyboard": [buttons]}}

    # -- moderator cards --------------------------------------------------------------------------

    def moderator_chat(self, area: str | None) -> int:
        """The chat for an area's reports: bot.area_moderator_chats[area], else bot.moderator_chat_id (0 = none)."""
        bot = self.core.config.bot
        if area and area in bot.area_moderator_chats:
            return bot.area_moderator_chats[area]
        return bot.moderator_chat_id

    async def card(
        self, report: ReportRecord, *, lang: str | None = None, chat_id: int | None = None
    ) -> dict[str, Any]:
        """sendMessage/editMessageText params (text, reply_markup) of a report's moderator card.

        In `lang`, else in the language of the chat it goes to (`chat_id`, see card_language)."""
        if lang is None:
            lang = await self.card_language(self.db, chat_id)
        return await self._render_card(self.db, report, lang)

    async def card_language(self, ex: Executor, chat_id: int | None) -> str:
        """A card sent to a person (a private chat: its id is the user's) is in that person's language;
        in a group (the moderators' chat) it stays in bot.default_language, read by everyone there."""
        if chat_id is not None and chat_id > 0:
            return await self._lang(ex, chat_id)
        return self.core.config.bot.default_language

    async def card_sent(self, dedup_key: str, chat_id: int, message_id: int) -> bool:
        """Outbox hook for CARD_KIND rows: remember the card so later changes edit it."""
        report_id = report_id_from_card_key(dedup_key)
        if report_id is None:
            return False
        await repo.add_card(self.db, report_id, chat_id, message_id, self._now())
        return True

    async def on_card_done(self, row: Any, outcome: str, result: dict[str, Any] | None) -> None:
        """`Outbox.on_done(CARD_KIND, ...)` hook: a sent card is recorded so later changes edit it."""
        if outcome == "sent" and result and result.get("message_id"):
            await self.card_sent(row.dedup_key, row.chat_id, int(result["message_id"]))

    def install(self, outbox: Any) -> None:
        """Register the outbox hooks of reports (call once at start-up)."""
        outbox.on_done(CARD_KIND, self.on_card_done)

    async def record_card(self, report_id: int, chat_id: int, message_id: int) -> None:
        """A card the handler sent itself (e.g. /reports detail) is kept up to date too."""
        await repo.add_card(self.db, report_id, chat_id, message_id, self._now())

    async def _body_lines(self, ex: Executor, report: ReportRecord, lang: str, *, media: str) -> list[str]:
        """What a report says (title, status, text, media, place): shared by the moderators' card
        (`media="card"`) and the reporter's own view (`media="my"`), which word the media lines."""
        t = self.core.t
        lines = [
            t(
                lang,
                "reports.card.title",
                ref=report.ref,
                kind=rc.kind_label(self.core.catalog, lang, report.kind),
                category=rc.category_label(self.core.catalog, lang, report.kind, report.category),
            ),
            t(lang, "reports.card.status", status=t(lang, f"reports.status.{report.status}")),
        ]
        if report.status == "duplicate" and report.duplicate_of:
            original = await repo.get(ex, report.duplicate_of)
            if original is not None:
                lines.append(t(lang, "reports.card.duplicate_of", ref=original.ref))
        if report.description:
            lines.append(t(lang, "reports.card.description", text=report.description))
        if report.voice_file_id:
            lines.append(t(lang, f"reports.{media}.voice"))
        photo_count = len(await repo.photos(ex, report.id))
        if photo_count:
            lines.append(t(lang, f"reports.{media}.photos", count=photo_count))
        if report.compound:
            lines.append(t(lang, "reports.card.compound", compound=report.compound))
        if report.property_company:
            lines.append(t(lang, "reports.card.property", company=report.property_company))
        if report.place_text:
            lines.append(t(lang, "reports.card.place", place=report.place_text))
        if report.lat is not None and report.lon is not None:
            lines.append(t(lang, "reports.card.coords", lat=f"{report.lat:.5f}", lon=f"{report.lon:.5f}"))
        return lines

    async def _queue_card(
        self,
        ex: Executor,
        report: ReportRecord,
        now: dt.datetime,
        *,
        key: str,
        header: tuple[str, dict[str, Any]] | None = None,
        with_media: bool = False,
        priority: int = CARD_PRIORITY,
    ) -> int:
        chat_id = self.moderator_chat(report.area)
        if not chat_id:
            log.warning("no moderator chat for area %r: %s not posted", report.area, report.ref)
            return 0
        lang = self.core.config.bot.default_language
        messages: list[outbox_repo.NewMessage] = []
        if with_media:
            # Photos, voice and the map pin go just before the card (same priority: kept in order).
            # One sendPhoto per photo (sendMediaGroup cannot carry plain JSON through PTB's defaults).
            photo_ids = await repo.photos(ex, report.id)
            for position, file_id in enumerate(photo_ids, start=1):
                caption = report.ref if len(photo_ids) == 1 else f"{report.ref} ({position}/{len(photo_ids)})"
                messages.append(
                    self._message(
                        MEDIA_KIND,
                        f"{key}:photo:{position}",
                        chat_id,
                        "sendPhoto",
                        {"photo": file_id, "caption": caption},
                        now,
                        priority,
                    )
                )
            if report.voice_file_id:
                messages.append(
                    self._message(
                        MEDIA_KIND,
                        f"{key}:voice",
                        chat_id,
                        "sendVoice",
                        {"voice": report.voice_file_id, "caption": report.ref},
                        now,
                        priority,
                    )
                )
            if report.lat is not None and report.lon is not None:
                messages.append(
                    self._message(
                        MEDIA_KIND,
                        f"{key}:pin",
                        chat_id,
                        "sendLocation",
                        {"latitude": report.lat, "longitude": report.lon},
                        now,
                        priority,
                    )
                )
        params = await self._render_card(ex, report, lang, header=header)
        messages.append(self._message(CARD_KIND, key, chat_id, "sendMessage", params, now, priority))
        return await self.core.outbox.enqueue(messages, ex)

    async def _queue_card_edits(
        self,
        ex: Executor,
        report: ReportRecord,
        event_id: int,
        now: dt.datetime,
        *,
        skip: tuple[int, int] | None,
    ) -> None:
        posted = [c for c in await repo.cards(ex, report.id) if c != skip]
        if not posted:
            return
        rendered: dict[str, dict[str, Any]] = {}  # one rendering per language
        messages = []
        for chat_id, message_id in posted:
            lang = await self.card_language(ex, chat_id)
            if lang not in rendered:
                rendered[lang] = await self._render_card(ex, report, lang)
            messages.append(
                self._message(
                    CARD_EDIT_KIND,
                    f"rp:{report.id}:ev:{event_id}:card:{chat_id}:{message_id}",
                    chat_id,
                    "editMessageText",
                    {"message_id": message_id, **rendered[lang]},
                    now,
                    CARD_PRIORITY,
                )
            )
        await self.core.outbox.enqueue(messages, ex)

    @staticmethod
    def _message(
        kind: str,
        key: str,
        chat_id: int,
        method: str,
        params: dict[str, Any],
        now: dt.datetime,
        priority: int,
    ) -> outbox_repo.NewMessage:
        return outbox_repo.NewMessage(
            kind=kind,
            dedup_key=key,
            chat_id=chat_id,
            payload={"method": method, "params": params},
            due_at=now,
            priority=priority,
        )

    def card_keyboard(self, report: ReportRecord, lang: str, *, undo: bool = False) -> dict[str, Any]:
        """The card's buttons in fixed slots (CARD_SLOTS): an action not possible in this state keeps
        its place as an empty slot; 撤销 (undo) when the last decision can still be taken back. No
        buttons at all when nothing can be done (a final state past the undo window)."""
        live = {a for a in MODERATOR_ACTIONS if report.status in TRANSITIONS[a][0]}
        if undo:
            live.add(UNDO_ACTION)
        if not live:
            return {"inline_keyboard": []}
        empty = self.core.t(lang, "reports.action.none")
        return {
            "inline_keyboard": [
                [
                    {
                        "text": self.core.t(lang, f"reports.action.{a}") if a in live else empty,
                        "callback_data": f"{CB_STATUS}:{report.id}:{a if a in live else CARD_EMPTY}",
                    }
                    for a in row
                ]
                for row in CARD_SLOTS
            ]
        }

    async def _render_card(
        self,
        ex: Executor,
        report: ReportRecord,
        lang: str,
        *,
        header: tuple[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        t = self.core.t
        lines: list[str] = []
        if header is not None:
            lines.append(t(lang, header[0], **header[1]))
        lines += await self._body_lines(ex, report, lang, media="card")
        if report.area:
            lines.append(t(lang, "reports.card.area", area=report.area))
        lines.append(t(lang, "reports.card.reporter", name=await self._reporter_name(ex, report, lang)))
        lines.append(t(lang, "reports.card.time", time=self._local(report.created_at)))
        if report.supporters:
            lines.append(t(lang, "reports.card.supporters", count=report.supporters))
        last = await self._last_moderator_event(ex, report.id)
        if last is not None:
            actor = await users_repo.get(ex, last.actor_id) if last.actor_id else None
            lines.append(
                t(
                    lang,
                    "reports.card.handled",
                    name=actor.display_name if actor else "—",
                    status=t(lang, f"reports.status.{last.to_status}"),
                    time=self._local(last.at),
                )
            )
            if last.note and last.action != "duplicate":
                lines.append(t(lang, "reports.card.note", note=last.note))
            if await self._self_decided_unpaid(ex, report, last):
                lines.append(t(lang, "reports.card.no_self_points"))
        text = "\n".join(lines)
        if len(text) > 4000:
            text = text[:3999] + "…"
        undoable = self._undoable(report, await repo.events(ex, report.id))
        undo = undoable is not None and self._now() <= self.undo_deadline(undoable)
        return {"text": text, "reply_markup": self.card_keyboard(report, lang, undo=undo)}

    async def _self_decided_unpaid(self, ex: Executor, report: ReportRecord, last: ReportEvent) -> bool:
        """A valid hazard whose reporter judged it themselves and earned nothing yet: the card says why
        (hazard tips are never anonymous, so this names nobody who wished to stay unnamed)."""
        return (
            report.kind == rc.HAZARD
            and report.status in VALID_STATUSES
            and self.cfg.hazard_points > 0
            and last.actor_id == report.reporter_id
            and not await points_repo.recorded(ex, f"rp:{report.id}:valid")
        )

    async def _reporter_name(self, ex: Executor, report: ReportRecord, lang: str) -> str:
        if report.anonymous:
            return self.core.t(lang, "reports.card.anonymous")
        user = await users_repo.get(ex, report.reporter_id)
        if user is None:
            return "—"
        return _display_name(user.first_name, user.last_name, user.username)

    @staticmethod
    async def _last_moderator_event(ex: Executor, report_id: int) -> ReportEvent | None:
        """The latest moderator action, unless the reporter reopened the report after it."""
        for event in reversed(await repo.events(ex, report_id)):
            if event.action == "reopen":
                return None
            if event.action in MODERATOR_ACTIONS and event.undone_by is None:
                return event
        return None

    def _local(self, when: dt.datetime) -> str:
        return when.astimezone(self.core.tz).strftime("%Y-%m-%d %H:%M")

    # -- notifications ----------------------------------------------------------------------------

    async def _lang(self, ex: Executor, user_id: int) -> str:
        user = await users_repo.get(ex, user_id)
        default = self.core.config.bot.default_language
        return resolve_language(user.lang, user.language_code, default) if user else default

    async def _queue_notices(
        self,
        ex: Executor,
        report: ReportRecord,
        event_id: int,
        actor_id: int,
        note: str | None,
        other: ReportRecord | None,
        credited: int,
        now: dt.datetime,
        *,
        due: dt.datetime | None = None,
    ) -> None:
        """Tell the reporter and the supporters (each in their language); never the one who acted.
        `due`: later than now when the decision may still be undone silently (the desk)."""
        t = self.core.t
        recipients = [report.reporter_id] + [
            uid for uid in await repo.supporters(ex, report.id) if uid != report.reporter_id
        ]
        messages = []
        for user_id in recipients:
            if user_id == actor_id:
                continue
            lang = await self._lang(ex, user_id)
            is_reporter = user_id == report.reporter_id
            category = rc.category_label(self.core.catalog, lang, report.kind, report.category)
            values: dict[str, Any] = {"ref": report.ref, "category": category}
            if other is not None:
                values["other"] = other.ref
            lines = [] if is_reporter else [t(lang, "reports.notice.supporter")]
            lines.append(t(lang, f"reports.notice.{report.status}", **values))
            if note and report.status != "duplicate":
                lines.append(t(lang, "reports.notice.note", note=note))
            if is_reporter and credited:
                lines.append(t(lang, "reports.notice.points", points=credited))
            ask_solved = is_reporter and report.status == "resolved"
            if ask_solved:
                lines.append(t(lang, "reports.notice.ask_solved"))
            params: dict[str, Any] = {"text": "\n".join(lines)}
            if ask_solved:
                params["reply_markup"] = {
                    "inline_keyboard": [
                        [
                            {
                                "text": t(lang, "reports.notice.yes"),
                                "callback_data": f"{CB_FEEDBACK}:{report.id}:y",
                            },
                            {
                                "text": t(lang, "reports.notice.no"),
                                "callback_data": f"{CB_FEEDBACK}:{report.id}:n",
                            },
                        ]
                    ]
                }
            messages.append(
                self._message(
                    NOTICE_KIND,
                    f"rp:{report.id}:ev:{event_id}:{user_id}",
                    user_id,
                    "sendMessage",
                    params,
                    due or now,
                    NOTICE_PRIORITY,
                )
            )
        await self.core.outbox.enqueue(messages, ex)

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, report_id: int) -> ReportRecord | None:
        return await repo.get(self.db, report_id)

    async def get_by_ref(self, text: str) -> ReportRecord | None:
        parsed = rc.parse_ref(text)
        return await repo.get_by_seq(self.db, *parsed) if parsed else None

    async def photos(self, report_id: int) -> list[str]:
        return await repo.photos(self.db, report_id)

    async def events(self, report_id: int) -> list[ReportEvent]:
        return await repo.events(self.db, report_id)

    async def my_reports(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[ReportRecord]:
        """A courier's own reports, newest first (anonymous ones included: they are theirs)."""
        return await repo.by_reporter(self.db, user_id, limit=limit, offset=offset)

    async def open_reports(
        self,
        *,
        kind: str | None = None,
        category: str | None = None,
        area: str | Sequence[str] | None = None,
        status: str | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> tuple[list[ReportRecord], int]:
        """Reports for moderators, the longest waiting first, with the total for paging.

        Without `status` the open ones (new, acknowledged, in progress); an unknown filter value
        simply matches nothing. `area` may be several areas (a moderator scoped to some areas).
        """
        statuses: Sequence[str] = (status,) if status else OPEN_STATUSES
        items = await repo.listing(
            self.db, kind=kind, category=category, area=area, statuses=statuses, limit=limit, offset=offset
        )
        total = await repo.count(self.db, kind=kind, category=category, area=area, statuses=statuses)
        return items, total

    async def access_hotspots(
        self, *, area: str | Collection[str] | None = None, limit: int = 10
    ) -> list[Hotspot]:
        """Compounds and property companies with access-conflict grievances, most reported first (from
        the counts kept on write: the same cost at any number of reports).

        `area` may be several areas (a moderator scoped to some areas: authz.areas_for).
        """
        return await repo.access_hotspots(self.db, category=rc.ACCESS, area=area, limit=limit)

    async def reporter_view(self, report_id: int, user_id: int, lang: str) -> str | None:
        """The reporter's own view of their report: its content and its history of status changes with
        the moderators' notes. None unless `user_id` filed it. Never names moderators, supporters or
        any other reporter (the "+1" voices appear as a count only)."""
        report = await repo.get(self.db, report_id)
        if report is None or report.reporter_id != user_id:
            return None
        t = self.core.t
        lines = await self._body_lines(self.db, report, lang, media="my")
        if report.kind == rc.GRIEVANCE:
            key = "reports.flow.summary_anonymous" if report.anonymous else "reports.flow.summary_named"
            lines.append(t(lang, key))
        if report.supporters:
            lines.append(t(lang, "reports.card.supporters", count=report.supporters))
        lines += ["", t(lang, "reports.my.history_title")]
        for event in await repo.events(self.db, report.id):
            if event.action in ("support", UNDO_ACTION) or event.undone_by is not None:
                continue  # another courier's "+1", or a decision taken back: not theirs to see
            when = self._local(event.at)
            if event.action == "confirm":
                lines.append(t(lang, "reports.my.history_confirm", time=when))
                continue
            if event.to_status is None:
                continue
            status = t(lang, f"reports.status.{event.to_status}")
            key = {"submit": "history_submit", "reopen": "history_reopen"}.get(event.action, "history_line")
            lines.append(t(lang, f"reports.my.{key}", time=when, status=status))
            if event.note and event.action in MODERATOR_ACTIONS and event.action != "duplicate":
                lines.append(t(lang, "reports.my.history_note", note=event.note))
        text = "\n".join(lines)
        return text if len(text) <= 4000 else text[:3999] + "…"

    def list_line(self, report: ReportRecord, lang: str) -> str:
        """One line of /myreports or /reports. Never names the reporter."""
        return self.core.t(
            lang,
            "reports.list.line",
            ref=report.ref,
            category=rc.category_label(self.core.catalog, lang, report.kind, report.category),
            status=self.core.t(lang, f"reports.status.{report.status}"),
            age=self.age(report.created_at, lang),
        )

    def age(self, since: dt.datetime, lang: str) -> str:
        seconds = max(0, int((self._now() - since).total_seconds()))
        if seconds >= 86400:
            return self.core.t(lang, "reports.list.age_days", days=seconds // 86400)
        if seconds >= 3600:
            return self.core.t(lang, "reports.list.age_hours", hours=seconds // 3600)
        if seconds < 60:  # never "0 分钟前"
            return self.core.t(lang, "reports.list.age_now")
        return self.core.t(lang, "reports.list.age_minutes", minutes=seconds // 60)

    # -- export -----------------------------------------------------------------------------------

    EXPORT_COLUMNS = (
        "ref",
        "kind",
        "category",
        "status",
        "created",
        "acknowledged",
        "resolved",
        "area",
        "description",
        "voice",
        "photos",
        "place",
        "lat",
        "lon",
        "compound",
        "property_company",
        "reporter",
        "supporters",
        "duplicate_of",
    )

    async def export_csv(
        self,
        since: dt.date,
        stream: TextIO,
        *,
        lang: str | None = None,
        areas: Collection[str] | None = None,
    ) -> int:
        """Reports filed on or after `since` (local date) as CSV, UTF-8 with a BOM so Excel reads Chinese.
        `areas`: only those areas' reports (a moderator scoped to some areas, authz.areas_for); None: all.

        Streamed: one query per page of EXPORT_PAGE reports (the reporter's names, photo count and the
        original's reference joined in), each page written before the next is read. Open the stream
        with newline="". Anonymous reporters appear as 匿名; ids never appear. Returns the number of
        rows written.
        """
        lang = lang or self.core.config.bot.default_language
        tz = self.core.tz
        start = dt.datetime.combine(since, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        t = self.core.t
        # Labels repeat on every row: look each up (and escape it) once.
        kinds = {k: escape_cell(t(lang, f"reports.kind.{k}")) for k in rc.KINDS}
        statuses = {s: escape_cell(t(lang, f"reports.status.{s}")) for s in STATUSES}
        categories: dict[tuple[str, str], str] = {}
        anonymous, voice = (
            escape_cell(t(lang, "reports.card.anonymous")),
            escape_cell(t(lang, "reports.export.yes")),
        )

        def local(when: dt.datetime | None) -> str:
            if when is None:
                return ""
            w = when.astimezone(tz)  # as _local() shows it, without strftime's cost on 100,000 rows
            return f"{w.year:04d}-{w.month:02d}-{w.day:02d} {w.hour:02d}:{w.minute:02d}"

        stream.write("\ufeff")
        writer = csv.writer(stream)
        writer.writerow([t(lang, f"reports.export.{c}") for c in self.EXPORT_COLUMNS])
        written = 0
        page, cursor = await repo.export_page(
            self.db, since=start, after=None, limit=EXPORT_PAGE, areas=areas
        )
        following: asyncio.Future[Any] | None = None
        try:
            while True:
                # The next page is read (on a reader connection's thread) while this one is formatted.
                if cursor is not None:
                    following = asyncio.ensure_future(
                        repo.export_page(self.db, since=start, after=cursor, limit=EXPORT_PAGE, areas=areas)
                    )
                rows = []
                for r in page:
                    category = categories.get((r.kind, r.category))
                    if category is None:
                        label = rc.category_label(self.core.catalog, lang, r.kind, r.category, icon=False)
                        category = categories[(r.kind, r.category)] = escape_cell(label)
                    if r.anonymous:
                        reporter = anonymous
                    elif r.reporter is None:
                        reporter = "—"
                    else:
                        reporter = escape_cell(_display_name(*r.reporter))
                    # User text (and anything that may start with - or +) through escape_cell; the reference,
                    # times and counts never start with a formula character.
                    rows.append(
                        (
                            r.ref,
                            kinds.get(r.kind) or escape_cell(r.kind),
                            category,
                            statuses.get(r.status) or escape_cell(r.status),
                            local(r.created_at),
                            local(r.acknowledged_at),
                            local(r.resolved_at),
                            escape_cell(r.area or ""),
                            escape_cell(r.description),
                            voice if r.voice else "",
                            r.photos,
                            escape_cell(r.place_text or ""),
                            escape_cell(f"{r.lat:.6f}") if r.lat is not None else "",
                            escape_cell(f"{r.lon:.6f}") if r.lon is not None else "",
                            escape_cell(r.compound or ""),
                            escape_cell(r.property_company or ""),
                            reporter,
                            r.supporters,
                            r.duplicate_of_ref or "",
                        )
                    )
                writer.writerows(rows)
                written += len(rows)
                if following is None:
                    return written
                page, cursor = await following
                following = None
        finally:
            if following is not None:
                following.cancel()


async def export_reports(core: Core, since: dt.date | None, output: str) -> int:
    """`xiaoge-bot reports export --since DATE --output FILE` ('-' = stdout): CSV, UTF-8 with BOM.

    Written as it is read (page by page), to FILE.part first and renamed once complete, so a failed
    export never leaves half a file under the asked name.
    """
    service = core.service(ReportService)
    first_day = since or dt.date(2000, 1, 1)
    if output == "-":
        return await service.export_csv(first_day, sys.stdout)
    path = Path(output)
    partial = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            count = await service.export_csv(first_day, stream)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


__all__ = [
    "OPEN_STATUSES",
    "STATUSES",
    "Escalation",
    "Hotspot",
    "Outcome",
    "Refusal",
    "Report",
    "ReportDraft",
    "ReportEvent",
    "ReportRefused",
    "ReportService",
    "blur_location",
    "export_reports",
]
