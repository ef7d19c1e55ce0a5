"""The moderators' desk: what the Mini App (bot/webapp/) shows and does, with no HTTP in it.

Every read is scoped by `bot/core/authz.py` (`Authorizer.areas_for`): a moderator of area A sees only
A's reports and stations, a captain only their area's tasks. Every action goes through the feature
services (ReportService.transition / undo, StationService.edit / deactivate, the station importer),
so the audit trail, the cards in the moderators' chats and the reporter's notices are exactly those of
the chat buttons. The week's figures feed both the desk's charts and the weekly digest (bot/digest.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bot.core.authz import Actor, Perm
from bot.core.container import Core
from bot.kit.geo import out_of_china, wgs84_to_gcj02
from bot.reports import categories as rc
from bot.reports.service import (
    MODERATOR_ACTIONS,
    OPEN_STATUSES,
    STATUSES,
    TRANSITIONS,
    UNDO_ACTION,
    Outcome,
    Refusal,
    ReportService,
)
from bot.stations import importer
from bot.stations.service import StationInputError, StationService
from storage import desk as repo
from storage import reports as reports_repo
from storage import roles as roles_repo
from storage import stations as stations_repo
from storage import users as users_repo
from storage.desk import ReportCard
from storage.outbox import NewMessage
from storage.reports import ReportRecord
from storage.stations import StationRecord

BROADCAST_KIND = "broadcast"  # bot/broadcast.py KIND (one outbox row per chat reached)
CLOSED_DAYS = 7  # closed reports stay on the board this long
BOARD_LIMIT = 100  # cards a board column shows (its count says how many there are)
FLAG_DAYS = 30  # a station with a flag this recent shows as flagged on the map
Areas = frozenset[str] | None  # None = everywhere


@dataclass(frozen=True)
class DeskAccess:
    """What one user may see and do on the desk, by permission: None = every area."""

    user_id: int
    reports: Areas
    stations: Areas
    tasks: Areas

    @staticmethod
    def _any(areas: Areas) -> bool:
        return areas is None or bool(areas)

    @property
    def can_reports(self) -> bool:
        return self._any(self.reports)

    @property
    def can_stations(self) -> bool:
        return self._any(self.stations)

    @property
    def can_tasks(self) -> bool:
        return self._any(self.tasks)

    @property
    def allowed(self) -> bool:
        """Moderators and captains (of some area) may open the desk; couriers may not."""
        return self.can_reports or self.can_stations or self.can_tasks

    def areas_list(self, areas: Areas) -> list[str] | None:
        return None if areas is None else sorted(areas)


@dataclass(frozen=True)
class MapFilters:
    statuses: tuple[str, ...] = OPEN_STATUSES
    category: str | None = None  # "kind:category"
    area: str | None = None
    max_age_days: int | None = None


@dataclass
class WeekFigures:
    """One week (seven local days from `start`) in numbers."""

    start: dt.date
    days: list[dt.date]
    reports_total: int = 0
    # "kind:category" -> count per day
    by_category: dict[str, list[int]] = field(default_factory=dict)
    # current status of the reports filed that day
    by_status: dict[str, list[int]] = field(default_factory=dict)
    median_ack_hours: float | None = None
    median_resolve_hours: float | None = None
    acknowledged: int = 0
    resolved: int = 0
    tasks_done: list[int] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    broadcasts: list[int] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    include_reports: bool = True

    @property
    def end(self) -> dt.date:
        return self.days[-1]


def _median_hours(values: list[float]) -> float | None:
    return round(statistics.median(values) / 3600, 1) if values else None


class DeskService:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def reports(self) -> ReportService:
        return self.core.service(ReportService)

    @property
    def stations_service(self) -> StationService:
        return self.core.service(StationService)

    # -- who may do what ---------------------------------------------------------------------

    async def access(self, user_id: int) -> DeskAccess:
        authz = self.core.authz

        async def areas(perm: Perm) -> Areas:
            found = await authz.areas_for(user_id, perm)
            return None if found is None else frozenset(found)

        return DeskAccess(
            user_id=user_id,
            reports=await areas(Perm.REPORTS_HANDLE),
            stations=await areas(Perm.STATIONS_EDIT),
            tasks=await areas(Perm.TASKS_MANAGE),
        )

    async def _may(self, user_id: int, perm: Perm, area: str | None) -> bool:
        return bool(
            await self.core.authz.check(Actor(user_id=user_id, chat_type="private"), perm, area or "")
        )

    @staticmethod
    def _narrow(areas: Areas, area: str | None) -> Areas:
        """The scope, narrowed to one chosen area (a filter never widens what authz allows)."""
        if not area:
            return areas
        if areas is None or area in areas:
            return frozenset({area})
        return frozenset()

    async def queue_menu_buttons(self, url: str) -> int:
        """Every moderator, captain and admin gets the desk as their private chat's menu button (through
        the outbox: once per user and address; a user who never opened the chat simply fails)."""
        users = {
            g.user_id for g in await roles_repo.all_grants(self.core.db) if g.role in ("moderator", "captain")
        }
        users |= set(self.core.config.bot.admins)
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        messages = []
        for user_id in sorted(users):
            lang = await self.core.user_lang(user_id)
            messages.append(
                NewMessage(
                    kind="desk_menu",
                    dedup_key=f"desk:menu:{user_id}:{digest}",
                    chat_id=user_id,
                    payload={
                        "method": "setChatMenuButton",
                        "params": {
                            "menu_button": {
                                "type": "web_app",
                                "text": self.core.t(lang, "webapp.desk.button"),
                                "web_app": {"url": url},
                            }
                        },
                    },
                    due_at=self.core.clock.now(),
                    priority=5,
                )
            )
        return await self.core.outbox.enqueue(messages)

    # -- map -------------------------------------------------------------------------------------

    def map_point(self, lat: float, lon: float) -> tuple[float, float]:
        """Where to draw a WGS-84 point on the configured tiles (GCJ-02 tiles: shifted, in China)."""
        if self.core.config.webapp.tiles_gcj02 and not out_of_china(lat, lon):
            mlat, mlon = wgs84_to_gcj02(lat, lon)
            return round(mlat, 6), round(mlon, 6)
        return lat, lon

    async def map_data(self, access: DeskAccess, filters: MapFilters, lang: str) -> dict[str, Any]:
        now = self.core.clock.now()
        out: dict[str, Any] = {"reports": [], "stations": [], "tasks": []}
        if access.can_reports:
            areas = self._narrow(access.reports, filters.area)
            kind = category = None
            if filters.category and ":" in filters.category:
                kind, category = filters.category.split(":", 1)
            since = now - dt.timedelta(days=filters.max_age_days) if filters.max_age_days else None
            statuses = tuple(s for s in filters.statuses if s in STATUSES) or OPEN_STATUSES
            found = await repo.reports(
                self.core.db,
                statuses=statuses,
                areas=areas,
                located_only=True,
                kind=kind,
                category=category,
                since=since,
            )
            out["reports"] = [self._report_brief(r, lang) for r in found]
        if access.can_reports or access.can_stations:
            scope = access.stations if access.can_stations else access.reports
            station_rows = await repo.stations(self.core.db, areas=self._narrow(scope, filters.area))
            flags = await repo.flag_counts_since(
                self.core.db, now - dt.timedelta(days=FLAG_DAYS), [s.id for s in station_rows]
            )
            out["stations"] = [self._station_brief(s, flags.get(s.id, 0)) for s in station_rows]
        if access.can_tasks:
            tasks = await repo.tasks_with_place(
                self.core.db, now=now, areas=self._narrow(access.tasks, filters.area)
            )
            for t in tasks:
                mlat, mlon = self.map_point(t.lat, t.lon)
                out["tasks"].append(
                    {
                        "id": t.id,
                        "title": t.title,
                        "starts": self._local(t.starts_at),
                        "place": t.place_text,
                        "area": t.area or "",
                        "state": t.state,
                        "slots": t.slots,
                        "taken": t.taken,
                        "mlat": mlat,
                        "mlon": mlon,
                    }
                )
        return out

    async def hotspots(self, access: DeskAccess, filters: MapFilters) -> list[dict[str, Any]]:
        """Access-dispute hotspots (ReportService.access_hotspots, all time) placed at the mean location
        of their located grievances; asked for separately so the markers do not wait for them."""
        if not access.can_reports:
            return []
        areas = self._narrow(access.reports, filters.area)
        found = await self.reports.access_hotspots(area=areas, limit=20)
        places = await repo.hotspot_points(
            self.core.db, rc.ACCESS, [(h.compound, h.property_company) for h in found], areas
        )
        out = []
        for h in found:
            point = places.get((h.compound, h.property_company))
            if point is None:
                continue
            mlat, mlon = self.map_point(*point)
            out.append(
                {
                    "compound": h.compound,
                    "property_company": h.property_company,
                    "total": h.total,
                    "open": h.open,
                    "mlat": mlat,
                    "mlon": mlon,
                }
            )
        return out

    def _local(self, when: dt.datetime) -> str:
        return when.astimezone(self.core.tz).strftime("%m-%d %H:%M")

    def _report_brief(self, r: ReportRecord | ReportCard, lang: str) -> dict[str, Any]:
        brief: dict[str, Any] = {
            "id": r.id,
            "ref": r.ref,
            "kind": r.kind,
            "category": f"{r.kind}:{r.category}",
            "category_label": rc.category_label(self.core.catalog, lang, r.kind, r.category),
            "status": r.status,
            "area": r.area or "",
            "text": r.description[:140],
            "age": self.reports.age(r.created_at, lang),
            "created": self._local(r.created_at),
            "supporters": r.supporters,
            "has_location": r.has_location,
        }
        if r.lat is not None and r.lon is not None:
            brief["mlat"], brief["mlon"] = self.map_point(r.lat, r.lon)
        return brief

    def _station_brief(self, s: StationRecord, flags: int) -> dict[str, Any]:
        mlat, mlon = self.map_point(s.lat, s.lon)
        return {
            "id": s.id,
            "name": s.name,
            "address": s.address,
            "area": s.area,
            "opening_hours": s.opening_hours,
            "facilities": list(s.facilities),
            "active": s.active,
            "flags": flags,
            "mlat": mlat,
            "mlon": mlon,
        }

    # -- board -----------------------------------------------------------------------------------

    async def board(self, access: DeskAccess, lang: str, area: str | None = None) -> dict[str, Any]:
        """Reports by status: the open ones (the longest waiting first) and those closed within
        CLOSED_DAYS (the latest first), at most BOARD_LIMIT cards a column, with each column's count."""
        if not access.can_reports:
            return {"columns": {}, "counts": {}}
        areas = self._narrow(access.reports, area)
        db = self.core.db
        closed = tuple(s for s in STATUSES if s not in OPEN_STATUSES)
        since = self.core.clock.now() - dt.timedelta(days=CLOSED_DAYS)
        columns: dict[str, list[dict]] = {}
        for status in STATUSES:
            is_closed = status in closed
            rows = await repo.reports(
                db,
                statuses=(status,),
                areas=areas,
                updated_since=since if is_closed else None,
                latest_first=is_closed,
                limit=BOARD_LIMIT,
            )
            columns[status] = [self._report_brief(r, lang) for r in rows]
        counts = await repo.status_counts(db, statuses=OPEN_STATUSES, areas=areas)
        counts |= await repo.status_counts(db, statuses=closed, areas=areas, updated_since=since)
        return {"columns": columns, "counts": {s: counts.get(s, 0) for s in STATUSES}}

    async def visible_report(self, access: DeskAccess, report_id: int) -> ReportRecord | None:
        report = await self.reports.get(report_id)
        if report is None or not access.can_reports:
            return None
        if not await self._may(access.user_id, Perm.REPORTS_HANDLE, report.area):
            return None
        return report

    async def report_detail(self, access: DeskAccess, report_id: int, lang: str) -> dict[str, Any] | None:
        report = await self.visible_report(access, report_id)
        if report is None:
            return None
        db = self.core.db
        t = self.core.t
        events = await reports_repo.events(db, report.id)
        actors = await users_repo.get_many(db, sorted({e.actor_id for e in events if e.actor_id}))
        history = []
        for e in events:
            if e.action == "support":
                continue
            if e.actor_id == report.reporter_id:
                who = (
                    t(lang, "reports.card.anonymous")
                    if report.anonymous
                    else self._name(actors.get(e.actor_id))
                )
            else:
                who = self._name(actors.get(e.actor_id)) if e.actor_id else "—"
            history.append(
                {
                    "id": e.id,
                    "action": e.action,
                    "action_label": t(lang, f"webapp.action.{e.action}")
                    if self.core.catalog.has(f"webapp.action.{e.action}")
                    else e.action,
                    "from": e.from_status,
                    "to": e.to_status,
                    "status_label": t(lang, f"reports.status.{e.to_status}") if e.to_status else "",
                    "note": e.note if e.action != UNDO_ACTION else None,
                    "at": self._local(e.at),
                    "who": who,
                    "undone": e.undone_by is not None,
                }
            )
        brief = self._report_brief(report, lang)
        brief["text"] = report.description
        last = await self.reports.last_decision(report.id)
        now = self.core.clock.now()
        undo_until = None
        if last is not None and now <= self.reports.undo_deadline(last):
            undo_until = self.reports.undo_deadline(last).isoformat()
        duplicate_of = None
        if report.duplicate_of:
            original = await self.reports.get(report.duplicate_of)
            duplicate_of = original.ref if original else None
        return {
            **brief,
            "reporter": await self._reporter(report, lang),
            "place": report.place_text or "",
            "compound": report.compound or "",
            "property_company": report.property_company or "",
            "lat": report.lat,
            "lon": report.lon,
            "photos": len(await reports_repo.photos(db, report.id)),
            "voice": bool(report.voice_file_id),
            "duplicate_of": duplicate_of,
            "actions": [a for a in MODERATOR_ACTIONS if report.status in TRANSITIONS[a][0]],
            "history": history,
            "undo_until": undo_until,
        }

    @staticmethod
    def _name(user: Any) -> str:
        if user is None:
            return "—"
        name = f"{user.first_name} {user.last_name}".strip()
        return name or (f"@{user.username}" if user.username else str(user.id))

    async def _reporter(self, report: ReportRecord, lang: str) -> str:
        if report.anonymous:
            return self.core.t(lang, "reports.card.anonymous")
        return self._name(await users_repo.get(self.core.db, report.reporter_id))

    async def report_file(self, access: DeskAccess, report_id: int, what: str, index: int = 0) -> str | None:
        """The Telegram file_id of a report's photo (by position) or voice note, if the user may see it."""
        report = await self.visible_report(access, report_id)
        if report is None:
            return None
        if what == "voice":
            return report.voice_file_id
        photos = await reports_repo.photos(self.core.db, report.id)
        return photos[index] if 0 <= index < len(photos) else None

    async def act(
        self,
        access: DeskAccess,
        report_id: int,
        action: str,
        *,
        note: str | None = None,
        duplicate_ref: str | None = None,
    ) -> Outcome | None:
        """A decision from the board: the same service call as a chat button, the reporter's notice
        held for reports.undo_grace_seconds. None: no such report for this user."""
        if await self.visible_report(access, report_id) is None:
            return None
        if action not in MODERATOR_ACTIONS:
            return Outcome(False, await self.reports.get(report_id), Refusal("stale"))
        return await self.reports.transition(
            report_id,
            action,
            access.user_id,
            note=note,
            duplicate_ref=duplicate_ref,
            notice_delay_seconds=self.core.config.reports.undo_grace_seconds,
        )

    async def undo(self, access: DeskAccess, report_id: int) -> Outcome | None:
        if await self.visible_report(access, report_id) is None:
            return None
        return await self.reports.undo(report_id, access.user_id)

    # -- stations --------------------------------------------------------------------------------

    async def search_stations(self, access: DeskAccess, query: str) -> list[dict[str, Any]]:
        if not access.can_stations:
            return []
        rows = await repo.search_stations(self.core.db, query, areas=access.stations)
        flags = await repo.flag_counts_since(
            self.core.db, self.core.clock.now() - dt.timedelta(days=FLAG_DAYS), [s.id for s in rows]
        )
        return [self._station_brief(s, flags.get(s.id, 0)) for s in rows]

    async def _editable_station(self, access: DeskAccess, station_id: int) -> StationRecord | None:
        station = await stations_repo.get(self.core.db, station_id)
        if station is None or not await self._may(access.user_id, Perm.STATIONS_EDIT, station.area):
            return None
        return station

    async def edit_station(
        self, access: DeskAccess, station_id: int, changes: dict[str, Any]
    ) -> StationRecord | None:
        """Opening hours and facilities (validated like a chat edit; raises StationInputError)."""
        if await self._editable_station(access, station_id) is None:
            return None
        allowed = {k: v for k, v in changes.items() if k in ("opening_hours", "facilities")}
        if not allowed:
            raise StationInputError("fields", "nothing to change")
        return await self.stations_service.edit(station_id, **allowed)

    async def set_station_active(self, access: DeskAccess, station_id: int, active: bool) -> bool | None:
        if await self._editable_station(access, station_id) is None:
            return None
        service = self.stations_service
        return await (service.activate(station_id) if active else service.deactivate(station_id))

    async def import_stations(
        self, access: DeskAccess, raw: bytes, *, filename: str, commit: bool, lang: str
    ) -> dict[str, Any]:
        """A CSV upload: every row checked first; with `commit` the good rows are written (rows of an
        area outside the user's scope count as errors). Raises importer.StationImportError for a file
        that cannot be read at all."""
        scope = access.stations if access.can_stations else frozenset()

        def in_scope(area: str) -> bool:
            return scope is None or (bool(area) and area in scope)

        preview = await importer.preview_bytes(self.core.db, raw, filename=filename)
        errors = [{"line": e.line, "reason": e.reason} for e in preview.errors]
        good = []
        for line, data, existing_area in preview.rows:
            outside = next((a for a in (data.area, existing_area) if a is not None and not in_scope(a)), None)
            if outside is not None:
                errors.append(
                    {
                        "line": line,
                        "reason": self.core.t(lang, "webapp.stations.area_denied", area=outside or "—"),
                    }
                )
                continue
            good.append((line, data, existing_area is not None))
        errors.sort(key=lambda e: e["line"])
        result: dict[str, Any] = {
            "rows": [
                {"line": line, "name": d.name, "area": d.area, "external_id": d.external_id, "update": exists}
                for line, d, exists in good
            ],
            "errors": errors,
            "new": sum(1 for _, _, exists in good if not exists),
            "updates": sum(1 for _, _, exists in good if exists),
            "written": False,
        }
        if commit and good:
            written = await importer.write_rows(
                self.core.db, [d for _, d, _ in good], now=self.core.clock.now()
            )
            result["written"] = True
            result["inserted"], result["updated"] = written.inserted, written.updated
        return result

    # -- the week in numbers ---------------------------------------------------------------------

    def week_start(self, today: dt.date | None = None) -> dt.date:
        """The first of the last seven local days (today included)."""
        today = today or self.core.clock.now().astimezone(self.core.tz).date()
        return today - dt.timedelta(days=6)

    async def week(self, start: dt.date, *, areas: Areas, include_reports: bool = True) -> WeekFigures:
        tz = self.core.tz
        days = [start + dt.timedelta(days=i) for i in range(7)]
        begin = dt.datetime.combine(start, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        end = dt.datetime.combine(start + dt.timedelta(days=7), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        db = self.core.db
        scoped: Collection[str] | None = None if areas is None else sorted(areas)

        def day_index(when: dt.datetime) -> int:
            return (when.astimezone(tz).date() - start).days

        figures = WeekFigures(start=start, days=days, include_reports=include_reports)
        if include_reports:
            bounds = [
                dt.datetime.combine(start + dt.timedelta(days=i), dt.time(0), tzinfo=tz).astimezone(dt.UTC)
                for i in range(8)
            ]
            by_status: dict[str, list[int]] = {}
            ack: list[float] = []
            resolve: list[float] = []
            for row in await repo.week_rows(db, bounds, scoped):
                figures.by_category.setdefault(f"{row.kind}:{row.category}", [0] * 7)[row.day] += 1
                by_status.setdefault(row.status, [0] * 7)[row.day] += 1
                if row.ack_seconds is not None:
                    ack.append(row.ack_seconds)
                if row.resolve_seconds is not None:
                    resolve.append(row.resolve_seconds)
            figures.reports_total = sum(sum(v) for v in by_status.values())
            figures.by_status = {s: by_status[s] for s in STATUSES if s in by_status}
            figures.median_ack_hours = _median_hours(ack)
            figures.median_resolve_hours = _median_hours(resolve)
            figures.acknowledged, figures.resolved = len(ack), len(resolve)
            flags = await repo.flags_between(db, begin, end, scoped)
            figures.flags = {k: flags[k] for k in sorted(flags)}
        figures.tasks_done = self._per_day(await repo.claims_done_between(db, begin, end, scoped), day_index)
        points = [0] * 7
        for when, delta in await repo.points_earned_between(db, begin, end, scoped):
            i = day_index(when)
            if 0 <= i < 7:
                points[i] += delta
        figures.points = points
        figures.broadcasts = self._per_day(
            await repo.deliveries_between(db, BROADCAST_KIND, begin, end, scoped), day_index
        )
        return figures

    @staticmethod
    def _per_day(times: list[dt.datetime], day_index: Any) -> list[int]:
        counts = Counter(day_index(t) for t in times)
        return [counts.get(i, 0) for i in range(7)]

    def week_json(self, figures: WeekFigures, lang: str) -> dict[str, Any]:
        t = self.core.t
        labels = {}
        for key in figures.by_category:
            kind, category = key.split(":", 1)
            labels[key] = rc.category_label(self.core.catalog, lang, kind, category, icon=False)
        return {
            "start": figures.start.isoformat(),
            "end": figures.end.isoformat(),
            "days": [d.strftime("%m-%d") for d in figures.days],
            "include_reports": figures.include_reports,
            "reports_total": figures.reports_total,
            "by_category": figures.by_category,
            "category_labels": labels,
            "by_status": figures.by_status,
            "status_labels": {s: t(lang, f"reports.status.{s}") for s in STATUSES},
            "median_ack_hours": figures.median_ack_hours,
            "median_resolve_hours": figures.median_resolve_hours,
            "acknowledged": figures.acknowledged,
            "resolved": figures.resolved,
            "tasks_done": figures.tasks_done,
            "points": figures.points,
            "broadcasts": figures.broadcasts,
            "flags": figures.flags,
            "flag_labels": {k: t(lang, f"webapp.flag.{k}") for k in stations_repo.FLAG_REASONS},
        }

    def week_scope(self, access: DeskAccess) -> tuple[Areas, bool]:
        """Whose week: a moderator's report scope (with the reports), else a captain's task scope."""
        if access.can_reports:
            return access.reports, True
        if access.can_tasks:
            return access.tasks, False
        return access.stations, False
