"""Wish wall (心愿墙): volunteer tasks that couriers claim and captains complete.

Rules live here; storage/tasks.py holds the SQL. Every change happens in one transaction that also
queues what it causes (reminders, notices, group-card edits) in the one outbox, so nothing is done
half. Who may call the captain/moderator operations is decided by the handlers through bot.core.authz;
this service trusts its `actor_id` and re-checks task and claim state itself.

Outbox keys (business identity; planning twice never sends twice):
- reminders  `task:{id}:rem:{user}:{offset}` (user before offset, so `task:{id}:rem:{user}:` is the
  prefix that cancels one courier's reminders)
- card posts `task:{id}:card:{chat}:post`, card edits `task:{id}:card:{chat}:{message}:v{version}`
- notices    `task:{id}:v{version}:{event}:{user}` (the task's version makes each event unique)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.core.container import Core
from bot.core.messages import Button, edit_payload, keyboard, notice, send_payload
from bot.kit.geo import LatLon, amap_marker_url, bounding_box, distance_m, haversine_m
from storage import locks, outbox
from storage import points as ledger
from storage import tasks as store
from storage import users as users_repo
from storage.db import Executor
from storage.outbox import NewMessage, OutboxRow
from storage.tasks import ENDED, HOLDING, TAKING, Claim, Task, TaskCount

# The task records handlers see (defined with the storage rows they mirror).
__all__ = ["Outcome", "Task", "TaskCount", "TaskDraft", "TaskInvalid", "TaskResult", "TaskService", "cb"]

CB = "tk"
TITLE_LIMIT = 60
DESCRIPTION_LIMIT = 1000
PLACE_LIMIT = 200
DETAILS_LIMIT = 500
AREA_LIMIT = 30
MAX_SLOTS = 500
MAX_POINTS = 1000
WALL_START_RADIUS_M = 1000.0
"""First box of the wall's nearest order (grown until the page is certain)."""
WALL_BOX_MAX_M = 1_000_000.0
"""Beyond this radius the nearest order reads every pinned open task."""
_SPHERE_RATIO = 1.01  # bounds ellipsoidal / spherical distance and its inverse (both within 0.6%)

# Claim states a courier still has something to do with (listed in /mytasks).
ACTIVE_CLAIMS = ("claimed", "waitlisted", "assigned_pending")
# Task states in which claims are still managed (not cancelled, not completed).
LIVE = (*TAKING, "closed")


def cb(action: str, *args: object) -> str:
    """Callback data of this feature: `tk:<action>:<args>` (at most 64 bytes)."""
    data = ":".join([CB, action, *(str(a) for a in args)])
    if len(data.encode()) > 64:
        raise ValueError(f"callback_data too long: {data!r}")
    return data


class Outcome(StrEnum):
    """What an operation did; handlers show `tasks.outcome.<value>`."""

    OK = "ok"
    CLAIMED = "claimed"
    WAITLISTED = "waitlisted"
    FULL = "full"  # no slot left: the waitlist is offered
    ALREADY_CLAIMED = "already_claimed"
    ALREADY_WAITLISTED = "already_waitlisted"
    ASSIGNED = "assigned"  # the user has a pending assignment: accept or decline it
    NOT_FOUND = "not_found"
    NOT_OPEN = "not_open"  # closed, cancelled or completed
    CLAIMS_OVER = "claims_over"  # the claim deadline or the start has passed
    TOO_LATE = "too_late"  # the withdraw window is over
    NOT_CLAIMED = "not_claimed"  # the user has no claim in a state that allows this
    NOT_STARTED = "not_started"
    ALREADY_MARKED = "already_marked"
    SELF_DONE = "self_done"  # marked oneself done: recorded, but no points (they need someone else)


@dataclass(frozen=True)
class TaskResult:
    outcome: Outcome
    task: Task | None = None
    claim: Claim | None = None
    # The waitlisted courier who got the freed slot, if any.
    promoted: tuple[int, ...] = ()
    # 1-based place on the waitlist for WAITLISTED / ALREADY_WAITLISTED.
    place: int | None = None


class TaskInvalid(ValueError):
    """A draft that cannot be published; `tasks.invalid.<code>` explains it."""

    def __init__(self, code: str, **values: Any) -> None:
        super().__init__(code)
        self.code = code
        self.values = values


@dataclass(frozen=True)
class TaskDraft:
    """What a captain typed so far (kept in the conversation until published)."""

    title: str = ""
    description: str = ""
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    place_text: str = ""
    lat: float | None = None
    lon: float | None = None
    area: str | None = None
    slots: int = 1
    points: int = 0
    claim_deadline: dt.datetime | None = None
    private_details: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (conversation persistence is JSON, not pickle)."""
        data = dataclasses.asdict(self)
        for name in ("starts_at", "ends_at", "claim_deadline"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskDraft:
        values = dict(data)
        for name in ("starts_at", "ends_at", "claim_deadline"):
            if values.get(name) is not None:
                values[name] = dt.datetime.fromisoformat(values[name])
        return cls(**values)


@dataclass(frozen=True)
class WallItem:
    count: TaskCount
    distance_m: float | None = None


@dataclass(frozen=True)
class WallPage:
    items: list[WallItem]
    page: int
    pages: int
    total: int
    by_distance: bool


@dataclass(frozen=True)
class MyTask:
    claim: Claim
    count: TaskCount
    place: int | None  # waitlist place


@dataclass(frozen=True)
class RosterEntry:
    claim: Claim
    name: str


@dataclass
class _Effects:
    """What a change causes, queued after the task's version is bumped."""

    notes: list[tuple[int, str, str, dict[str, Any], list[list[Button]] | None]] = field(default_factory=list)

    def tell(
        self, user_id: int, event: str, key: str, buttons: list[list[Button]] | None = None, **values: Any
    ):
        self.notes.append((user_id, event, key, values, buttons))


class TaskService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.config = core.config.tasks

    # -- formatting ---------------------------------------------------------------------------

    def format_time(self, when: dt.datetime, lang: str) -> str:
        local = when.astimezone(self.core.tz)
        t = self.core.t
        this_year = local.year == self.core.clock.now().astimezone(self.core.tz).year
        return t(
            lang,
            "tasks.time" if this_year else "tasks.time_year",
            year=local.year,
            month=t(lang, "tasks.months").split(",")[local.month - 1],
            day=local.day,
            weekday=t(lang, "tasks.weekdays").split(",")[local.weekday()],
            hm=local.strftime("%H:%M"),
        )

    def format_span(self, task: Task | TaskDraft, lang: str) -> str:
        assert task.starts_at is not None
        start = self.format_time(task.starts_at, lang)
        if task.ends_at is None:
            return start
        same_day = (
            task.ends_at.astimezone(self.core.tz).date() == task.starts_at.astimezone(self.core.tz).date()
        )
        end = (
            task.ends_at.astimezone(self.core.tz).strftime("%H:%M")
            if same_day
            else self.format_time(task.ends_at, lang)
        )
        return self.core.t(lang, "tasks.time_span", start=start, end=end)

    def map_row(self, task: Task, lang: str, n: int | None = None) -> list[list[Button]]:
        """A row with a link that opens Amap at the task's pin (none when it has no location);
        with `n`, labelled for item n of a list."""
        if task.lat is None or task.lon is None:
            return []
        url = amap_marker_url(LatLon(task.lat, task.lon), task.place_text or task.title)
        label = (
            self.core.t(lang, "tasks.button.map")
            if n is None
            else self.core.t(lang, "tasks.button.map_n", n=n)
        )
        return [[(label, url)]]

    def _place(self, task: Task | TaskDraft, lang: str) -> str:
        if task.place_text:
            return task.place_text
        return self.core.t(lang, "tasks.card.place_pin")

    def _lead(self, minutes: int, lang: str) -> str:
        if minutes % 60 == 0:
            return self.core.t(lang, "tasks.lead_hours", n=minutes // 60)
        return self.core.t(lang, "tasks.lead_minutes", n=minutes)

    def claims_close_at(self, task: Task) -> dt.datetime:
        return task.claim_deadline or task.starts_at

    def _takes_claims(self, task: Task, at: dt.datetime | None) -> bool:
        return task.state in TAKING and (at or self.core.clock.now()) < self.claims_close_at(task)

    def card_text(
        self,
        count: TaskCount,
        lang: str | None = None,
        at: dt.datetime | None = None,
        *,
        holder: bool = False,
    ) -> str:
        """The public card (group cards, the wall) as of `at` (now): never the private details.
        `holder`: shown to a courier holding a place (a full task is not offered to them for the waitlist)."""
        lang = lang or self.core.config.bot.default_language
        task = count.task
        t = self.core.t
        lines = [
            t(lang, "tasks.card.title", title=task.title),
            t(lang, "tasks.card.when", when=self.format_span(task, lang)),
            t(lang, "tasks.card.place", place=self._place(task, lang)),
        ]
        if task.area:
            lines.append(t(lang, "tasks.card.area", area=task.area))
        if task.points:
            lines.append(t(lang, "tasks.card.points", points=task.points))
        if task.state == "cancelled":
            lines.append(t(lang, "tasks.card.cancelled"))
        elif task.state == "completed":
            lines.append(t(lang, "tasks.card.completed"))
        elif not self._takes_claims(task, at):
            lines.append(t(lang, "tasks.card.closed", taken=count.taken, slots=task.slots))
        elif count.left > 0:
            lines.append(t(lang, "tasks.card.slots_left", left=count.left, slots=task.slots))
        else:
            lines.append(t(lang, "tasks.card.full_held" if holder else "tasks.card.full", slots=task.slots))
        if task.description:
            lines += ["", task.description]
        return "\n".join(lines)

    def card_buttons(
        self, count: TaskCount, lang: str | None = None, at: dt.datetime | None = None
    ) -> list[list[Button]]:
        """认领 while slots are left, 候补 when full, nothing once claims are over."""
        lang = lang or self.core.config.bot.default_language
        pin = self.map_row(count.task, lang)
        if not self._takes_claims(count.task, at):
            return pin
        if count.left > 0:
            return [[(self.core.t(lang, "tasks.button.claim"), cb("cl", count.task.id))], *pin]
        return [[(self.core.t(lang, "tasks.button.waitlist"), cb("wl", count.task.id))], *pin]

    def card_markup(self, count: TaskCount, at: dt.datetime | None = None) -> dict[str, Any] | None:
        buttons = self.card_buttons(count, at=at)
        return keyboard(buttons) if buttons else None

    def preview(self, draft: TaskDraft, lang: str) -> str:
        """What the captain checks before publishing: the card plus the private details."""
        task = Task(
            id=0,
            title=draft.title,
            description=draft.description,
            starts_at=draft.starts_at or self.core.clock.now(),
            ends_at=draft.ends_at,
            place_text=draft.place_text,
            lat=draft.lat,
            lon=draft.lon,
            area=draft.area,
            slots=draft.slots,
            points=draft.points,
            claim_deadline=draft.claim_deadline,
            private_details=draft.private_details,
            created_by=0,
            state="open",
            version=0,
            created_at=self.core.clock.now(),
            updated_at=self.core.clock.now(),
        )
        t = self.core.t
        lines = [t(lang, "tasks.post.preview_title"), "", self.card_text(TaskCount(task, 0, 0), lang)]
        if draft.claim_deadline:
            lines.append(t(lang, "tasks.card.deadline", when=self.format_time(draft.claim_deadline, lang)))
        if draft.private_details:
            lines += ["", t(lang, "tasks.post.private_preview", details=draft.private_details)]
        return "\n".join(lines)

    # -- posting -------------------------------------------------------------------------------

    def validate(self, draft: TaskDraft) -> None:
        """Raise TaskInvalid for the first problem of a draft."""
        problem = self.problem(draft)
        if problem is not None:
            raise problem

    def problem(self, draft: TaskDraft, codes: Collection[str] | None = None) -> TaskInvalid | None:
        """The first problem of a draft (only among `codes`, when given: one step's checks while the
        draft is being typed); None when there is none. The one source of the posting rules."""
        for found in self._problems(draft):
            if codes is None or found.code in codes:
                return found
        return None

    def _problems(self, draft: TaskDraft) -> Iterator[TaskInvalid]:
        now = self.core.clock.now()
        if not draft.title.strip():
            yield TaskInvalid("title_empty")
        if len(draft.title) > TITLE_LIMIT:
            yield TaskInvalid("title_too_long", limit=TITLE_LIMIT)
        if len(draft.description) > DESCRIPTION_LIMIT:
            yield TaskInvalid("description_too_long", limit=DESCRIPTION_LIMIT)
        if len(draft.place_text) > PLACE_LIMIT:
            yield TaskInvalid("place_too_long", limit=PLACE_LIMIT)
        if len(draft.private_details or "") > DETAILS_LIMIT:
            yield TaskInvalid("details_too_long", limit=DETAILS_LIMIT)
        if len(draft.area or "") > AREA_LIMIT:
            yield TaskInvalid("area_too_long", limit=AREA_LIMIT)
        if (draft.lat is None) != (draft.lon is None) or (
            draft.lat is not None
            and draft.lon is not None
            and not (-90 <= draft.lat <= 90 and -180 <= draft.lon <= 180)
        ):
            yield TaskInvalid("location_invalid")
        if not draft.place_text.strip() and draft.lat is None:
            yield TaskInvalid("place_missing")
        if draft.starts_at is None:
            yield TaskInvalid("start_missing")
        elif draft.starts_at <= now:
            yield TaskInvalid("start_past")
        if draft.starts_at is not None and draft.ends_at is not None and draft.ends_at <= draft.starts_at:
            yield TaskInvalid("end_before_start")
        if not 1 <= draft.slots <= MAX_SLOTS:
            yield TaskInvalid("slots_range", max=MAX_SLOTS)
        if not 0 <= draft.points <= MAX_POINTS:
            yield TaskInvalid("points_range", max=MAX_POINTS)
        if draft.claim_deadline is not None:
            if draft.claim_deadline <= now:
                yield TaskInvalid("deadline_past")
            elif draft.starts_at is not None and draft.claim_deadline >= draft.starts_at:
                yield TaskInvalid("deadline_after_start")

    async def publish(self, draft: TaskDraft, actor_id: int, group_chat_ids: Sequence[int] = ()) -> Task:
        """Validate and store the task; queue its card into each chosen group."""
        self.validate(draft)
        assert draft.starts_at is not None
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            task_id = await store.insert(
                tx,
                title=draft.title.strip(),
                description=draft.description.strip(),
                starts_at=draft.starts_at,
                ends_at=draft.ends_at,
                place_text=draft.place_text.strip(),
                lat=draft.lat,
                lon=draft.lon,
                area=(draft.area or "").strip() or None,
                slots=draft.slots,
                points=draft.points,
                claim_deadline=draft.claim_deadline,
                private_details=(draft.private_details or "").strip() or None,
                created_by=actor_id,
                now=now,
            )
            count = await store.count(tx, task_id)
            assert count is not None
            text = self.card_text(count)
            markup = self.card_markup(count)
            await self.core.outbox.enqueue(
                [
                    NewMessage(
                        kind="task_card",
                        dedup_key=f"task:{task_id}:card:{chat_id}:post",
                        chat_id=chat_id,
                        payload=send_payload(text, markup),
                        due_at=now,
                        priority=2,
                    )
                    for chat_id in dict.fromkeys(group_chat_ids)
                ],
                tx,
            )
        return count.task

    async def record_card(self, task_id: int, chat_id: int, message_id: int) -> None:
        """A card of the task was posted (by the outbox worker or a handler); keep it up to date."""
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            if not await store.add_card(tx, task_id, chat_id, message_id, now):
                return
            count = await store.count(tx, task_id)
            if count is not None:
                # An edit now only if the task changed since the card was rendered at publishing.
                card = store.Card(task_id, chat_id, message_id)
                await self._edit_cards(tx, count, [card], now, edit_now=count.task.version > 0)

    async def on_card_done(self, row: OutboxRow, outcome: str, result: dict[str, Any] | None) -> None:
        """Outbox hook for kind 'task_card': remember the posted card's message."""
        parts = row.dedup_key.split(":")
        message_id = (result or {}).get("message_id")
        if outcome != "sent" or not isinstance(message_id, int) or len(parts) != 5 or parts[4] != "post":
            return
        await self.record_card(int(parts[1]), row.chat_id, message_id)

    # -- reading -------------------------------------------------------------------------------

    async def get(self, task_id: int) -> TaskCount | None:
        return await store.count(self.core.db, task_id)

    async def wall(
        self,
        page: int = 0,
        *,
        location: tuple[float, float] | None = None,
        located_at: dt.datetime | None = None,
        area: str | None = None,
    ) -> WallPage:
        """Open tasks, paged: nearest first with a location shared recently (pinned tasks by distance,
        then those without a pin soonest first), else soonest first.

        Reads one page: the counts come from the open tasks' index entries, the page from the index in
        its order (soonest) or from growing boxes around the courier (nearest), and only the page's
        tasks are read whole with their claim counts.
        """
        now = self.core.clock.now()
        db = self.core.db
        fresh = dt.timedelta(minutes=self.config.location_max_age_minutes)
        by_distance = location is not None and located_at is not None and now - located_at <= fresh
        total, pinned = await store.wall_counts(db, now, area)
        size = self.config.page_size
        pages = max(1, math.ceil(total / size))
        page = min(max(page, 0), pages - 1)
        first, end = page * size, min((page + 1) * size, total)
        if not by_distance:
            ids = await store.wall_soonest(db, now, limit=size, offset=first, area=area)
            return WallPage(
                [WallItem(c) for c in await store.with_counts(db, ids)], page, pages, total, False
            )
        assert location is not None
        near: list[tuple[float, dt.datetime, int]] = []
        if first < pinned:
            near = (await self._nearest_pinned(now, LatLon(*location), min(end, pinned), pinned, area))[
                first:end
            ]
        rest: list[int] = []
        if end - first > len(near):
            rest = await store.wall_soonest(
                db,
                now,
                limit=end - first - len(near),
                offset=max(0, first - pinned),
                area=area,
                unpinned=True,
            )
        counts = {c.task.id: c for c in await store.with_counts(db, [i for _, _, i in near] + rest)}
        items = [WallItem(counts[i], d) for d, _, i in near if i in counts]
        items += [WallItem(counts[i]) for i in rest if i in counts]
        return WallPage(items, page, pages, total, True)

    async def _nearest_pinned(
        self, now: dt.datetime, here: LatLon, need: int, pinned: int, area: str | None
    ) -> list[tuple[float, dt.datetime, int]]:
        """The ``need`` pinned tasks taking claims nearest to ``here`` as (metres, start, id), nearest
        first, then the sooner, then the lower id: the ellipsoidal distance shown on the wall.

        The box of radius r holds every task within r on the sphere (haversine, with a margin). The
        ellipsoidal distance d and the spherical one h differ by under 0.6% (R = 1.01 bounds both
        ways), so once ``need`` tasks have h <= r / R^2, no task outside the box can be among the
        first ``need``. Otherwise the box grows to where the density seen predicts ``need``, and beyond
        WALL_BOX_MAX_M it is the whole world. Only the tasks that can still be among the first get
        their ellipsoidal distance (beyond 20 km it costs ~40 µs).
        """
        r = WALL_START_RADIUS_M
        while True:
            box = bounding_box(here.lat, here.lon, r)
            whole = r >= WALL_BOX_MAX_M or box[2] < -180.0 or box[3] > 180.0
            found = await store.wall_pinned_in(
                self.core.db, now, (-90.0, 90.0, -180.0, 180.0) if whole else box, area
            )
            by_sphere = sorted(
                (haversine_m(here.lat, here.lon, lat, lon), lat, lon, s, i) for i, lat, lon, s in found
            )
            within = sum(1 for h, *_ in by_sphere if h <= r / _SPHERE_RATIO**2)
            if whole or within >= need or len(found) >= pinned:
                break
            r = 4.0 * r if within == 0 else max(2.0 * r, r * math.sqrt(need / within) * 1.3)
        if len(by_sphere) > need:  # the rest are farther (d > h / R) than the need-th (d <= h_k * R)
            cut = by_sphere[need - 1][0] * _SPHERE_RATIO**2
            by_sphere = [x for x in by_sphere if x[0] <= cut]
        ranked = sorted((distance_m(here, LatLon(lat, lon)), s, i) for _, lat, lon, s, i in by_sphere)
        return ranked[:need]

    async def my_tasks(self, user_id: int) -> list[MyTask]:
        db = self.core.db
        mine = await store.user_claims(db, user_id, ACTIVE_CLAIMS)
        counts = {c.task.id: c for c in await store.with_counts(db, [m.task_id for m in mine])}
        result = []
        for claim in mine:
            count = counts[claim.task_id]
            if count.task.state not in LIVE:
                continue
            place = await self._waitlist_place(db, claim) if claim.state == "waitlisted" else None
            result.append(MyTask(claim, count, place))
        return result

    async def claim_states(self, user_id: int) -> dict[int, str]:
        """The user's active claim per task: task id -> "claimed" / "waitlisted" / "assigned_pending"."""
        return {c.task_id: c.state for c in await store.user_claims(self.core.db, user_id, ACTIVE_CLAIMS)}

    async def managed(self, actor_id: int) -> list[TaskCount]:
        """The live tasks a captain posted."""
        return await store.created_by(self.core.db, actor_id, LIVE)

    async def roster(self, task_id: int) -> list[RosterEntry]:
        """Everyone on a task (slot holders, then the waitlist), with names, for the captain."""
        db = self.core.db
        found = await store.claims(db, task_id)
        names = await users_repo.get_many(db, [c.user_id for c in found])
        return [
            RosterEntry(c, names[c.user_id].display_name if c.user_id in names else str(c.user_id))
            for c in found
        ]

    @property
    def asks_confirmation(self) -> bool:
        """Whether a reminder asks 我会到 / 去不了 (`tasks.confirm_offset_minutes` 0: none does)."""
        return self.config.confirm_offset_minutes > 0

    async def unconfirmed(self, task_id: int) -> list[RosterEntry]:
        """Claimers who have not answered 我会到 yet (nobody when no reminder asks)."""
        if not self.asks_confirmation:
            return []
        return [e for e in await self.roster(task_id) if e.claim.state == "claimed" and not e.claim.confirmed]

    async def private_details(self, task_id: int, user_id: int) -> str | None:
        """The private details, for the captain and for couriers holding a slot only."""
        db = self.core.db
        task = await store.get(db, task_id)
        if task is None or not task.private_details:
            return None
        if task.created_by == user_id:
            return task.private_details
        claim = await store.get_claim(db, task_id, user_id)
        if claim is not None and claim.state in ("claimed", "done"):
            return task.private_details
        return None

    # -- courier actions ---------------------------------------------------------------------

    async def _in_task(
        self, task_id: int, step: Callable[[Executor, TaskCount, dt.datetime], Awaitable[TaskResult]]
    ) -> TaskResult:
        """What every courier and captain action on a task shares: one transaction, the task and its
        counts read inside it (`before`, so the cards are edited only when they changed), NOT_FOUND
        when there is no such task; `step(tx, before, now)` does the rest."""
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            # Claims of one task one transaction at a time (the slot count, the waitlist's positions).
            await locks.hold(tx, locks.task(task_id))
            before = await store.count(tx, task_id)
            if before is None:
                return TaskResult(Outcome.NOT_FOUND)
            return await step(tx, before, now)

    async def claim(self, task_id: int, user_id: int) -> TaskResult:
        """认领: take a slot, atomically; a full task offers the waitlist (Outcome.FULL)."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            refused = self._taking(task, now)
            if refused:
                return TaskResult(refused, task)
            existing = await store.get_claim(tx, task_id, user_id)
            if existing is not None and existing.state not in ENDED:
                return await self._already(tx, task, existing)
            claim = await store.take_slot(tx, task_id, user_id, ENDED, now)
            if claim is None:
                return TaskResult(Outcome.FULL, task)
            await self._plan(tx, task, user_id, now)
            task = await self._changed(tx, before, now, _Effects())
            return TaskResult(Outcome.CLAIMED, task, claim)

        return await self._in_task(task_id, step)

    async def join_waitlist(self, task_id: int, user_id: int) -> TaskResult:
        """候补: wait for a slot (or take one at once if one became free)."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            refused = self._taking(task, now)
            if refused:
                return TaskResult(refused, task)
            existing = await store.get_claim(tx, task_id, user_id)
            if existing is not None and existing.state in (*HOLDING, "waitlisted"):
                return await self._already(tx, task, existing)
            starts_over = (*ENDED, "assigned_pending")
            claim = await store.take_slot(tx, task_id, user_id, starts_over, now)
            if claim is not None:
                await self._plan(tx, task, user_id, now)
                task = await self._changed(tx, before, now, _Effects())
                return TaskResult(Outcome.CLAIMED, task, claim)
            claim = await store.join_waitlist(tx, task_id, user_id, starts_over, now)
            assert claim is not None
            task = await self._changed(tx, before, now, _Effects())
            return TaskResult(Outcome.WAITLISTED, task, claim, place=await self._waitlist_place(tx, claim))

        return await self._in_task(task_id, step)

    def _withdraw_refusal(self, task: Task, claim: Claim | None, now: dt.datetime) -> Outcome | None:
        """Why a courier cannot withdraw now, or None when they can."""
        if claim is None or claim.state not in ("claimed", "waitlisted"):
            return Outcome.NOT_CLAIMED
        if task.state not in LIVE:
            return Outcome.NOT_OPEN
        if claim.state == "claimed" and now > task.starts_at - dt.timedelta(hours=self.config.withdraw_hours):
            return Outcome.TOO_LATE
        return None

    async def can_withdraw(self, task_id: int, user_id: int) -> TaskResult:
        """What 取消认领 would do, without doing it (the question asked first): OK with the claim, or
        the refusal withdraw() would give."""
        db = self.core.db
        task = await store.get(db, task_id)
        if task is None:
            return TaskResult(Outcome.NOT_FOUND)
        claim = await store.get_claim(db, task_id, user_id)
        refused = self._withdraw_refusal(task, claim, self.core.clock.now())
        return TaskResult(refused or Outcome.OK, task, claim)

    async def withdraw(self, task_id: int, user_id: int) -> TaskResult:
        """取消认领: allowed until `withdraw_hours` before the start (leaving the waitlist: always)."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            claim = await store.get_claim(tx, task_id, user_id)
            refused = self._withdraw_refusal(task, claim, now)
            if refused is not None:
                return TaskResult(refused, task, claim)
            assert claim is not None
            return await self._leave(tx, before, claim, now, _Effects())

        return await self._in_task(task_id, step)

    async def confirm(self, task_id: int, user_id: int, coming: bool) -> TaskResult:
        """The reminder's answer: 我会到 marks the claim confirmed; 去不了 frees the slot at any time
        before the start (the waitlist is promoted) and tells the captain."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            if task.state not in LIVE:
                return TaskResult(Outcome.NOT_OPEN, task)
            if now >= task.starts_at:
                return TaskResult(Outcome.CLAIMS_OVER, task)
            claim = await store.get_claim(tx, task_id, user_id)
            if claim is None or claim.state != "claimed":
                return TaskResult(Outcome.NOT_CLAIMED, task, claim)
            if coming:
                claim = await store.set_confirmed(tx, task_id, user_id, now)
                return TaskResult(Outcome.OK, task, claim)
            effects = await self._captain_told(tx, task, task.created_by, user_id, "cant_go")
            return await self._leave(tx, before, claim, now, effects)

        return await self._in_task(task_id, step)

    async def accept(self, task_id: int, user_id: int) -> TaskResult:
        """Accept a captain's assignment: takes a slot, atomically, like a claim."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            claim = await store.get_claim(tx, task_id, user_id)
            if claim is None or claim.state != "assigned_pending":
                return TaskResult(Outcome.NOT_CLAIMED, task, claim)
            if task.state not in TAKING:
                return TaskResult(Outcome.NOT_OPEN, task, claim)
            if now >= task.starts_at:
                return TaskResult(Outcome.CLAIMS_OVER, task, claim)
            taken = await store.take_slot(tx, task_id, user_id, ("assigned_pending",), now)
            if taken is None:
                return TaskResult(Outcome.FULL, task, claim)
            await self._plan(tx, task, user_id, now)
            effects = await self._captain_told(
                tx, task, claim.assigned_by or task.created_by, user_id, "accepted"
            )
            task = await self._changed(tx, before, now, effects)
            return TaskResult(Outcome.CLAIMED, task, taken)

        return await self._in_task(task_id, step)

    async def decline(self, task_id: int, user_id: int) -> TaskResult:
        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            claim = await store.set_claim_state(tx, task_id, user_id, "declined", ("assigned_pending",), now)
            if claim is None:
                return TaskResult(Outcome.NOT_CLAIMED, task)
            effects = await self._captain_told(
                tx, task, claim.assigned_by or task.created_by, user_id, "declined"
            )
            task = await self._changed(tx, before, now, effects)
            return TaskResult(Outcome.OK, task, claim)

        return await self._in_task(task_id, step)

    # -- captain actions (authorised by the handler) -----------------------------------------

    async def assign(self, task_id: int, user_id: int, actor_id: int) -> TaskResult:
        """Ask a courier to take the task; they accept (taking a slot) or decline."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            if task.state not in TAKING:
                return TaskResult(Outcome.NOT_OPEN, task)
            if now >= task.starts_at:
                return TaskResult(Outcome.CLAIMS_OVER, task)
            existing = await store.get_claim(tx, task_id, user_id)
            if existing is not None and existing.state in (*HOLDING, "assigned_pending"):
                return await self._already(tx, task, existing)
            claim = await store.assign(tx, task_id, user_id, actor_id, (*ENDED, "waitlisted"), now)
            assert claim is not None
            lang = await self.core.user_lang(user_id, tx)
            effects = _Effects()
            effects.tell(
                user_id,
                "assigned",
                "tasks.notice.assigned",
                buttons=[
                    [
                        (self.core.t(lang, "tasks.button.accept"), cb("as", task_id, "y")),
                        (self.core.t(lang, "tasks.button.decline"), cb("as", task_id, "n")),
                    ]
                ],
                title=task.title,
                when=self.format_span(task, lang),
                place=self._place(task, lang),
                name=await self._name(tx, actor_id),
            )
            task = await self._changed(tx, before, now, effects)
            return TaskResult(Outcome.OK, task, claim)

        return await self._in_task(task_id, step)

    async def mark(self, task_id: int, user_id: int, done: bool, actor_id: int) -> TaskResult:
        """After the start, the captain marks each claimer done (points credited once) or no-show.
        The task is completed when nobody is left unmarked.

        Points need someone else's decision: a captain who marks themselves done is recorded as done
        (so the task can finish) but earns nothing (SELF_DONE); a moderator may credit them with
        /adjust, which the ledger records as that moderator's decision."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = before.task
            if task.state not in (*LIVE, "completed"):
                return TaskResult(Outcome.NOT_OPEN, task)
            if now < task.starts_at:
                return TaskResult(Outcome.NOT_STARTED, task)
            claim = await store.set_claim_state(
                tx, task_id, user_id, "done" if done else "no_show", ("claimed",), now
            )
            if claim is None:
                existing = await store.get_claim(tx, task_id, user_id)
                marked = existing is not None and existing.state in ("done", "no_show")
                return TaskResult(Outcome.ALREADY_MARKED if marked else Outcome.NOT_CLAIMED, task, existing)
            effects = _Effects()
            own = done and user_id == actor_id and task.points > 0
            if done and task.points > 0 and not own:
                credited = await ledger.append(
                    tx,
                    user_id=user_id,
                    delta=task.points,
                    reason="task_done",
                    ref=f"task:{task_id}",
                    area=task.area,
                    actor_id=actor_id,
                    idem_key=f"task:{task_id}:done:{user_id}",
                    now=now,
                )
                if credited:
                    effects.tell(
                        user_id,
                        "done",
                        "tasks.notice.done",
                        title=task.title,
                        points=task.points,
                        balance=await ledger.balance(tx, user_id),
                    )
            await outbox.cancel(tx, dedup_prefix=f"task:{task_id}:rem:{user_id}:", now=now)
            if not await store.claims(tx, task_id, ("claimed",)):
                await store.set_state(tx, task_id, "completed", LIVE, now)
            task = await self._changed(tx, before, now, effects)
            return TaskResult(Outcome.SELF_DONE if own else Outcome.OK, task, claim)

        return await self._in_task(task_id, step)

    async def cancel(self, task_id: int, actor_id: int) -> TaskResult:
        """Cancel the task: everyone on it is told, their reminders are dropped, cards updated."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = await store.set_state(tx, task_id, "cancelled", LIVE, now)
            if task is None:
                return TaskResult(Outcome.NOT_OPEN, before.task)
            effects = _Effects()
            for claim in await store.claims(tx, task_id, ACTIVE_CLAIMS):
                effects.tell(claim.user_id, "cancelled", "tasks.notice.cancelled", title=task.title)
            await outbox.cancel(tx, dedup_prefix=f"task:{task_id}:rem:", now=now)
            task = await self._changed(tx, before, now, effects)
            return TaskResult(Outcome.OK, task)

        return await self._in_task(task_id, step)

    async def close(self, task_id: int, actor_id: int) -> TaskResult:
        """Stop taking claims (the slots held stay; nobody is promoted any more)."""

        async def step(tx: Executor, before: TaskCount, now: dt.datetime) -> TaskResult:
            task = await store.set_state(tx, task_id, "closed", TAKING, now)
            if task is None:
                return TaskResult(Outcome.NOT_OPEN, before.task)
            task = await self._changed(tx, before, now, _Effects())
            return TaskResult(Outcome.OK, task)

        return await self._in_task(task_id, step)

    async def plan_reminders(self, task_id: int) -> int:
        """(Re)plan the reminders of every claimer; idempotent. Returns the claimers covered."""
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            task = await store.get(tx, task_id)
            if task is None or task.state not in LIVE:
                return 0
            holders = await store.claims(tx, task_id, ("claimed",))
            for claim in holders:
                await self._plan(tx, task, claim.user_id, now)
            return len(holders)

    # -- internals -----------------------------------------------------------------------------

    def _taking(self, task: Task, now: dt.datetime) -> Outcome | None:
        """Why a task takes no claim now, or None when it does."""
        if task.state not in TAKING:
            return Outcome.NOT_OPEN
        if now >= task.starts_at or (task.claim_deadline is not None and now >= task.claim_deadline):
            return Outcome.CLAIMS_OVER
        return None

    async def _already(self, tx: Executor, task: Task, claim: Claim) -> TaskResult:
        if claim.state == "waitlisted":
            place = await self._waitlist_place(tx, claim)
            return TaskResult(Outcome.ALREADY_WAITLISTED, task, claim, place=place)
        if claim.state == "assigned_pending":
            return TaskResult(Outcome.ASSIGNED, task, claim)
        return TaskResult(Outcome.ALREADY_CLAIMED, task, claim)

    async def _waitlist_place(self, ex: Executor, claim: Claim) -> int:
        waiting = await store.claims(ex, claim.task_id, ("waitlisted",))
        return next((i for i, c in enumerate(waiting, 1) if c.user_id == claim.user_id), len(waiting))

    async def _captain_told(
        self, tx: Executor, task: Task, captain_id: int, user_id: int, event: str
    ) -> _Effects:
        """Effects telling the captain what a courier did (`tasks.notice.<event>`)."""
        effects = _Effects()
        name = await self._name(tx, user_id)
        effects.tell(captain_id, event, f"tasks.notice.{event}", title=task.title, name=name)
        return effects

    async def _name(self, ex: Executor, user_id: int) -> str:
        user = await users_repo.get(ex, user_id)
        return user.display_name if user else str(user_id)

    async def _leave(
        self, tx: Executor, before: TaskCount, claim: Claim, now: dt.datetime, effects: _Effects
    ) -> TaskResult:
        """The claimer leaves (withdraw or 去不了): drop their reminders, promote the waitlist."""
        task = before.task
        left = await store.set_claim_state(tx, task.id, claim.user_id, "withdrawn", (claim.state,), now)
        await outbox.cancel(tx, dedup_prefix=f"task:{task.id}:rem:{claim.user_id}:", now=now)
        promoted = await self._promote(tx, task, now, effects) if claim.state == "claimed" else ()
        task = await self._changed(tx, before, now, effects)
        return TaskResult(Outcome.OK, task, left, promoted=promoted)

    async def _promote(
        self, tx: Executor, task: Task, now: dt.datetime, effects: _Effects
    ) -> tuple[int, ...]:
        """Give free slots to the waitlist, first come first served; each promoted courier is told."""
        if task.state not in TAKING or now >= task.starts_at:
            return ()
        promoted = []
        while (first := await store.first_waitlisted(tx, task.id)) is not None:
            if await store.take_slot(tx, task.id, first.user_id, ("waitlisted",), now) is None:
                break
            promoted.append(first.user_id)
            await self._plan(tx, task, first.user_id, now)
            lang = await self.core.user_lang(first.user_id, tx)
            effects.tell(
                first.user_id,
                "promoted",
                "tasks.notice.promoted",
                buttons=[
                    *self.map_row(task, lang),
                    [(self.core.t(lang, "tasks.button.withdraw"), cb("wd", task.id))],
                ],
                title=task.title,
                when=self.format_span(task, lang),
                place=self._place(task, lang),
            )
        return tuple(promoted)

    async def _plan(self, tx: Executor, task: Task, user_id: int, now: dt.datetime) -> None:
        """Queue the claimer's reminders still ahead (a cancelled one is queued again).

        The one that asks 我会到 / 去不了 is never skipped while the task is ahead: a courier who took
        the slot after its time (a late claim, a promotion from the waitlist) is asked at once, so the
        captain's "not confirmed" list can always empty.
        """
        lang = await self.core.user_lang(user_id, tx)
        t = self.core.t
        messages = []
        asking = self.config.confirm_offset_minutes if self.asks_confirmation else None
        for offset in dict.fromkeys(self.config.reminder_offsets_minutes):
            due = task.starts_at - dt.timedelta(minutes=offset)
            lead = offset
            if due <= now:
                if offset != asking or now >= task.starts_at:
                    continue
                due = now
                left = int((task.starts_at - now).total_seconds() // 60)
                lead = left // 60 * 60 if left >= 60 else max(1, left)
            lines = [
                t(lang, "tasks.reminder.text", title=task.title, lead=self._lead(lead, lang)),
                t(lang, "tasks.card.when", when=self.format_span(task, lang)),
                t(lang, "tasks.card.place", place=self._place(task, lang)),
            ]
            if task.private_details:
                lines.append(t(lang, "tasks.reminder.details", details=task.private_details))
            rows: list[list[Button]] = []
            if offset == asking:
                lines.append(t(lang, "tasks.reminder.ask"))
                rows.append(
                    [
                        (t(lang, "tasks.button.coming"), cb("cf", task.id, "y")),
                        (t(lang, "tasks.button.cant_go"), cb("cf", task.id, "n")),
                    ]
                )
            rows += self.map_row(task, lang)
            markup = keyboard(rows) if rows else None
            messages.append(
                NewMessage(
                    kind="task_reminder",
                    dedup_key=reminder_key(task.id, user_id, offset),
                    chat_id=user_id,
                    payload=send_payload("\n".join(lines), markup),
                    due_at=due,
                    expires_at=task.starts_at,
                    resend_if_unknown=True,  # in flight at a crash: sent again (better twice than missed)
                )
            )
        await self.core.outbox.enqueue(messages, tx, mode="revive")

    async def _changed(
        self, tx: Executor, before: TaskCount | None, now: dt.datetime, effects: _Effects
    ) -> Task:
        """After a change: bump the version, set open/full, edit the cards if they now read
        differently than `before` the change, and queue the notices."""
        task_id = before.task.id
        task = await store.touch(tx, task_id, now)
        after = await store.count(tx, task_id)
        assert task is not None and after is not None
        if self.card_text(before) != self.card_text(after) or self.card_buttons(before) != self.card_buttons(
            after
        ):
            await self._edit_cards(tx, after, await store.cards(tx, task_id), now)
        messages = []
        for user_id, event, key, values, buttons in effects.notes:
            lang = await self.core.user_lang(user_id, tx)
            messages.append(
                notice(
                    kind="task_notice",
                    dedup_key=f"task:{task_id}:v{task.version}:{event}:{user_id}",
                    user_id=user_id,
                    text=self.core.t(lang, key, **values),
                    markup=keyboard(buttons) if buttons else None,
                    now=now,
                )
            )
        await self.core.outbox.enqueue(messages, tx)
        return task

    async def _edit_cards(
        self,
        tx: Executor,
        count: TaskCount,
        cards: list[store.Card],
        now: dt.datetime,
        *,
        edit_now: bool = True,
    ) -> None:
        """Queue the edit of each card to its current text (`v` rows), plus the edit that removes
        its buttons when claims close (`w` rows, due then). Older edits not yet sent are dropped."""
        version = count.task.version
        closes = self.claims_close_at(count.task)
        planned = (
            [(now, "v", self.card_text(count, at=now), self.card_markup(count, at=now))] if edit_now else []
        )
        if self._takes_claims(count.task, now):
            planned.append((closes, "w", self.card_text(count, at=closes), None))
        messages = []
        for card in cards:
            key = f"task:{card.task_id}:card:{card.chat_id}:{card.message_id}:"
            for series in ("v", "w"):
                await outbox.cancel(tx, dedup_prefix=key + series, now=now)
            messages += [
                NewMessage(
                    kind="task_card_edit",
                    dedup_key=f"{key}{series}{version}",
                    chat_id=card.chat_id,
                    payload=edit_payload(card.message_id, text, markup),
                    due_at=due,
                    priority=3,
                )
                for due, series, text, markup in planned
            ]
        await self.core.outbox.enqueue(messages, tx)


def reminder_key(task_id: int, user_id: int, offset_minutes: int) -> str:
    return f"task:{task_id}:rem:{user_id}:{offset_minutes}"
