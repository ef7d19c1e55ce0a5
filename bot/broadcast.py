"""Broadcast notices to many groups or subscribed couriers, through the one outbox.

A confirmed notice becomes, in one transaction, a `broadcasts` row plus one outbox row per recipient
(batch "bc:<id>", bulk priority). The outbox worker paces and retries; this service watches the
outcomes to pin where asked, edit the moderator's progress message every few seconds, and write the
final report once. A restart resumes from the rows: nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bot.core.container import Core
from bot.core.messages import edit_payload
from storage import broadcasts as repo
from storage import groups as groups_repo
from storage import outbox as outbox_repo
from storage import users as users_repo
from storage.outbox import NewMessage, OutboxRow

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
KIND = "broadcast"
PIN_KIND = "broadcast_pin"
PROGRESS_KIND = "broadcast_progress"
AUDIENCES = ("groups", "areas", "subscribers")


class BroadcastError(ValueError):
    """A draft that cannot be sent; `key` is the catalog key explaining why."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass
class Draft:
    text: str = ""
    photo_file_id: str | None = None
    audience: str = "groups"
    areas: list[str] = field(default_factory=list)
    urgent: bool = False
    pin: bool = False
    # Requested send time (aware); None = now.
    at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "photo": self.photo_file_id,
            "audience": self.audience,
            "areas": self.areas,
            "urgent": self.urgent,
            "pin": self.pin,
            "at": self.at.isoformat() if self.at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Draft:
        at = data.get("at")
        return cls(
            text=data.get("text", ""),
            photo_file_id=data.get("photo"),
            audience=data.get("audience", "groups"),
            areas=list(data.get("areas", [])),
            urgent=bool(data.get("urgent")),
            pin=bool(data.get("pin")),
            at=dt.datetime.fromisoformat(at) if at else None,
        )


@dataclass(frozen=True)
class Plan:
    recipients: list[int]
    send_at: dt.datetime
    held_until: dt.datetime | None  # set when a rush window delays the notice


@dataclass(frozen=True)
class Figures:
    total: int
    sent: int
    failed: int
    skipped: int
    cancelled: int
    expired: int
    pending: int
    reasons: dict[str, int]
    # In flight when the process died (or timed out): Telegram may have it. Not failed: not to resend.
    unknown: int = 0

    @property
    def finished(self) -> bool:
        return self.pending == 0


def _parse_window(text: str) -> tuple[dt.time, dt.time]:
    start, end = text.split("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


Broadcast = repo.Broadcast  # the stored notice, for handlers (which never import storage)


class BroadcastService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.windows = [_parse_window(w) for w in core.config.broadcast.rush_windows]
        self._last_text: dict[int, str] = {}
        self._last_edit: dict[int, float] = {}  # time.monotonic() of the last progress edit
        self._locks: dict[int, asyncio.Lock] = {}
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._nearly_done: dict[int, bool] = {}
        if core.outbox is not None:
            core.outbox.on_done(KIND, self._on_delivery)
        core.closers.append(self.close)

    async def close(self) -> None:
        for task in list(self._watchers.values()):
            task.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)

    # -- planning ---------------------------------------------------------------------------

    def validate(self, draft: Draft) -> None:
        limit = CAPTION_LIMIT if draft.photo_file_id else TEXT_LIMIT
        if not draft.text.strip() and not draft.photo_file_id:
            raise BroadcastError("broadcast.empty")
        if len(draft.text) > limit:
            raise BroadcastError("broadcast.too_long", limit=limit, length=len(draft.text))
        if draft.audience not in AUDIENCES:
            raise BroadcastError("broadcast.bad_audience")
        if draft.audience == "areas" and not draft.areas:
            raise BroadcastError("broadcast.no_areas")

    def rush_end(self, when: dt.datetime) -> dt.datetime | None:
        """If `when` falls in a rush window (local time), the window's end; else None."""
        local = when.astimezone(self.core.tz)
        t = local.time()
        for start, end in self.windows:
            if start <= end:
                inside, next_day = start <= t < end, False
            else:  # a window across midnight, e.g. 22:00-02:00
                inside, next_day = t >= start or t < end, t >= start
            if inside:
                day = local.date() + dt.timedelta(days=1 if next_day else 0)
                # Wall-clock end in the zone (zoneinfo settles a DST gap or fold), then UTC.
                return dt.datetime.combine(day, end, tzinfo=self.core.tz).astimezone(dt.UTC)
        return None

    async def recipients(self, draft: Draft) -> list[int]:
        db = self.core.db
        if draft.audience == "subscribers":
            return await users_repo.reachable_subscribers(db)
        areas = draft.areas if draft.audience == "areas" else None
        return await self.group_audience(areas)

    async def group_audience(self, areas: list[str] | None = None) -> list[int]:
        """Active courier groups (of `areas`, or all): never the moderators' own chats, which see
        notices as they are composed and would only get a copy."""
        bot = self.core.config.bot
        moderators = {bot.moderator_chat_id, *bot.area_moderator_chats.values()}
        groups = await groups_repo.list_active(self.core.db, areas)
        return [g.chat_id for g in groups if g.chat_id not in moderators]

    async def plan(self, draft: Draft) -> Plan:
        self.validate(draft)
        now = self.core.clock.now()
        send_at = max(draft.at or now, now)
        held = None if draft.urgent else self.rush_end(send_at)
        return Plan(await self.recipients(draft), held or send_at, held)

    # -- sending ----------------------------------------------------------------------------

    def _payload(self, draft: Draft) -> dict[str, Any]:
        if draft.photo_file_id:
            params: dict[str, Any] = {"photo": draft.photo_file_id}
            if draft.text:
                params["caption"] = draft.text
            return {"method": "sendPhoto", "params": params, "pin": draft.pin}
        return {
            "method": "sendMessage",
            "params": {"text": draft.text, "link_preview_options": {"is_disabled": True}},
            "pin": draft.pin,
        }

    async def submit(
        self,
        draft: Draft,
        *,
        author_id: int,
        lang: str,
        progress_chat_id: int | None = None,
        progress_message_id: int | None = None,
    ) -> tuple[repo.Broadcast, Plan]:
        """Store the notice and one outbox row per recipient, in one transaction."""
        plan = await self.plan(draft)
        if not plan.recipients:
            raise BroadcastError("broadcast.no_recipients")
        now = self.core.clock.now()
        payload = self._payload(draft)
        async with self.core.db.transaction() as tx:
            broadcast_id = await repo.create(
                tx,
                author_id=author_id,
                text=draft.text,
                photo_file_id=draft.photo_file_id,
                audience=draft.audience,
                areas=draft.areas,
                urgent=draft.urgent,
                pin=draft.pin,
                requested_at=draft.at,
                send_at=plan.send_at,
                total=len(plan.recipients),
                progress_chat_id=progress_chat_id,
                progress_message_id=progress_message_id,
                lang=lang,
                now=now,
            )
            batch = repo.batch_name(broadcast_id)
            await self.core.outbox.enqueue(
                [
                    NewMessage(
                        kind=KIND,
                        dedup_key=f"{batch}:{chat_id}",
                        chat_id=chat_id,
                        payload=payload,
                        due_at=plan.send_at,
                        batch=batch,
                        priority=9,
                        # An urgent notice (a typhoon warning) in flight at a crash is sent again: a
                        # rare duplicate beats a missed warning. Others are reported "delivery unknown".
                        resend_if_unknown=draft.urgent,
                    )
                    for chat_id in plan.recipients
                ],
                tx,
            )
        stored = await repo.get(self.core.db, broadcast_id)
        assert stored is not None
        log.info(
            "broadcast %s: %d recipient(s), send at %s", broadcast_id, len(plan.recipients), plan.send_at
        )
        return stored, plan

    async def cancel(self, broadcast_id: int) -> bool:
        """Cancel what is not yet sent. True when the notice was still queued or sending."""
        now = self.core.clock.now()
        if not await repo.set_state(self.core.db, broadcast_id, ("queued", "sending"), "cancelled", now):
            return False
        await outbox_repo.cancel(self.core.db, batch=repo.batch_name(broadcast_id), now=now)
        return True

    async def set_progress_message(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        await repo.set_progress_message(self.core.db, broadcast_id, chat_id, message_id)

    # -- figures and progress ---------------------------------------------------------------

    async def figures(self, broadcast_id: int) -> Figures:
        batch = repo.batch_name(broadcast_id)
        counts = await outbox_repo.batch_counts(self.core.db, batch)
        reasons = await outbox_repo.batch_errors(self.core.db, batch)
        return Figures(
            total=sum(counts.values()),
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0),
            skipped=counts.get("skipped", 0),
            cancelled=counts.get("cancelled", 0),
            expired=counts.get("expired", 0),
            pending=counts.get("pending", 0) + counts.get("sending", 0),
            reasons=reasons,
            unknown=counts.get("unknown", 0),
        )

    def render(self, b: repo.Broadcast, f: Figures, lang: str) -> str:
        t = self.core.catalog.t
        if b.state == "cancelled":
            head = t(lang, "broadcast.report_cancelled", id=b.id)
        elif f.finished:
            head = t(lang, "broadcast.report_done", id=b.id)
        elif f.sent == 0 and b.send_at > self.core.clock.now():
            local = b.send_at.astimezone(self.core.tz).strftime("%m-%d %H:%M")
            head = t(lang, "broadcast.report_scheduled", id=b.id, at=local)
        else:
            head = t(lang, "broadcast.report_progress", id=b.id, sent=f.sent, total=f.total)
        lines = [
            head,
            t(
                lang,
                "broadcast.report_figures",
                sent=f.sent,
                failed=f.failed,
                skipped=f.skipped,
                total=f.total,
            ),
        ]
        if f.unknown:
            lines.append(t(lang, "broadcast.report_unknown", count=f.unknown))
        if f.cancelled:
            lines.append(t(lang, "broadcast.report_cancelled_rows", count=f.cancelled))
        for reason, count in list(f.reasons.items())[:5]:
            lines.append(t(lang, "broadcast.report_reason", reason=reason, count=count))
        return "\n".join(lines)

    async def _on_delivery(self, row: OutboxRow, outcome: str, result: dict[str, Any] | None) -> None:
        """After each delivery: mark the notice as sending, pin where asked, keep a progress watcher."""
        broadcast_id = int((row.batch or "bc:0").split(":")[1])
        now = self.core.clock.now()
        if broadcast_id not in self._watchers:
            await repo.set_state(self.core.db, broadcast_id, ("queued",), "sending", now)
            self.watch(broadcast_id)
        if outcome == "sent" and row.payload.get("pin") and row.chat_id < 0 and result:
            group = await groups_repo.get(self.core.db, row.chat_id)
            if group is not None and group.can_pin:
                await self.core.outbox.enqueue(
                    [
                        NewMessage(
                            kind=PIN_KIND,
                            dedup_key=f"bcpin:{broadcast_id}:{row.chat_id}",
                            chat_id=row.chat_id,
                            payload={
                                "method": "pinChatMessage",
                                "params": {"message_id": result["message_id"], "disable_notification": True},
                            },
                            due_at=now,
                            priority=9,
                        )
                    ]
                )

    def watch(self, broadcast_id: int) -> None:
        """One task per notice in progress: edits the moderator's message every few seconds, and
        writes the final report once (cheap: one indexed count per tick, not one per delivery)."""
        if broadcast_id in self._watchers:
            return
        self._watchers[broadcast_id] = asyncio.create_task(
            self._watch(broadcast_id), name=f"broadcast-{broadcast_id}"
        )

    async def _watch(self, broadcast_id: int) -> None:
        every = self.core.config.broadcast.progress_every_seconds
        try:
            while True:
                finished = await self.refresh_progress(broadcast_id, force=False)
                if finished:
                    return
                await asyncio.sleep(min(every, 0.25) if self._nearly_done.get(broadcast_id) else every)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("broadcast %s: progress watcher failed", broadcast_id)
        finally:
            self._watchers.pop(broadcast_id, None)
            self._nearly_done.pop(broadcast_id, None)

    async def refresh_progress(self, broadcast_id: int, *, force: bool = True) -> bool:
        """Edit the moderator's message with the figures; finish the notice once. True when done.

        Without ``force`` an edit comes at most every ``progress_every_seconds`` (the final report
        always goes out): the watcher ticks faster near the end only to notice completion sooner.
        """
        lock = self._locks.setdefault(broadcast_id, asyncio.Lock())
        async with lock:
            db = self.core.db
            b = await repo.get(db, broadcast_id)
            if b is None:
                return True
            figures = await self.figures(broadcast_id)
            self._nearly_done[broadcast_id] = figures.pending <= 25
            finished_now = figures.finished and await repo.set_state(
                db, broadcast_id, ("queued", "sending"), "done", self.core.clock.now()
            )
            if finished_now or b.state in ("done", "cancelled"):
                b = await repo.get(db, broadcast_id) or b
            last = self._last_text.get(broadcast_id)
            text = self.render(b, figures, b.lang)
            done = b.state in ("done", "cancelled") or finished_now
            paced = not force and not done
            too_soon = paced and time.monotonic() - self._last_edit.get(broadcast_id, -1e9) < (
                self.core.config.broadcast.progress_every_seconds
            )
            if (
                b.progress_chat_id is not None
                and b.progress_message_id is not None
                and text != last
                and not too_soon
            ):
                self._last_text[broadcast_id] = text
                self._last_edit[broadcast_id] = time.monotonic()
                # Through the outbox like every other message (paced, retried, "not modified" is
                # fine); a progress figure that is late by a minute is useless, the final one is not.
                now = self.core.clock.now()
                digest = hashlib.sha1(text.encode()).hexdigest()[:12]
                await self.core.outbox.enqueue(
                    [
                        NewMessage(
                            kind=PROGRESS_KIND,
                            dedup_key=f"{repo.batch_name(broadcast_id)}:progress:{digest}",
                            chat_id=b.progress_chat_id,
                            payload=edit_payload(b.progress_message_id, text),
                            due_at=now,
                            priority=1,
                            expires_at=None if done else now + dt.timedelta(minutes=1),
                        )
                    ]
                )
            if finished_now:
                log.info("broadcast %s finished: %s", broadcast_id, figures)
            if done:
                self._last_text.pop(broadcast_id, None)
                self._last_edit.pop(broadcast_id, None)
                self._locks.pop(broadcast_id, None)
            return done

    async def resume(self) -> None:
        """At start-up: watch every notice still queued or sending (finishes those completed while down)."""
        for b in await repo.unfinished(self.core.db):
            self.watch(b.id)

    async def get(self, broadcast_id: int) -> repo.Broadcast | None:
        return await repo.get(self.core.db, broadcast_id)

    async def recent(self, limit: int = 10) -> list[tuple[repo.Broadcast, Figures]]:
        return [(b, await self.figures(b.id)) for b in await repo.recent(self.core.db, limit)]
