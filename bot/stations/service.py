"""Warm stations: nearest search, text search, editing, courier flags and the station card.

Nearest search
--------------
``StationService.nearest`` never scans the table. It asks storage for the stations inside a small
box around the courier (an index range seek per 1.1 km latitude cell, ranked inside the index by an
equirectangular distance), re-ranks them with haversine, and grows the box only while the answer is
not yet certain: the box contains the circle of its radius, so every station found within that radius
is final once there are enough of them. The next radius is estimated from the density seen so far.
Only the stations shown get geopy's ellipsoidal ``geodesic`` distance (~175 µs a call).

Open stations first: a station closed now ranks at ``rank_metres`` (its distance plus a detour), an
open one at its distance. A rank is never below the distance, so the same certainty holds: every
station ranked within the box's radius has been read. The opening status of each station read is
computed once (opening hours are parsed once per text and their timeline once per day, see
bot/kit/opening_hours.py); the ``open`` filter drops the others after reading them (the index cannot
tell), which is why the nearest-anyway search with it stops at 10 km.

Rendering
---------
``render_card`` & co. are pure functions of a ``Catalog`` and a language: handlers add keyboards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.core.messages import keyboard, notice
from bot.kit.geo import (
    LatLon,
    bounding_box,
    check_lat_lon,
    compass_key,
    distance_m,
    haversine_m,
    initial_bearing,
    riding_minutes,
)
from bot.kit.opening_hours import OpeningHoursError, Status, parse_opening_hours
from bot.stations import facilities as fac
from storage import stations as repo
from storage import users as users_repo
from storage.stations import FLAG_ACTIONS, FLAG_REASONS, FlagRecord, StationData, StationRecord

__all__ = [
    "FLAG_ACTIONS",
    "FLAG_REASONS",
    "OPEN_FILTER",
    "FlagNotice",
    "FlagOutcome",
    "FlagResult",
    "Found",
    "NearestPage",
    "StationInputError",
    "StationService",
    "derived_external_id",
    "format_date",
    "format_distance",
    "format_moment",
    "format_status",
    "format_week",
    "format_when",
    "format_where",
    "rank_metres",
    "render_card",
    "render_details",
]

START_RADIUS_M = 250.0
"""First box of a nearest search: in a city centre it already holds the nearest five."""
_MARGIN = 4  # extra candidates fetched so that the haversine re-ranking is certain
_PLANAR_SLACK = 1e-3  # equirectangular vs haversine within a few km: far below 0.1%
ANY_RADIUS_M = 100_000.0
"""How far ``nearest_any`` looks: beyond, a station is no help on an e-bike, and a search over the whole
world reads every station (seconds at a million, holding the one database connection)."""
ANY_FILTERED_RADIUS_M = 30_000.0
"""The same with quick filters: proving that no station matches means reading every station in the
box, ~25 ms for 30 km around a city core at a million stations (~60 ms for 100 km)."""
FLAG_REPEAT_HOURS = 24
FLAG_NOTE_MAX = 300  # characters of a courier's explanation of a flag
# Characters of each free-text field of a station (shown on cards, searched, exported).
FIELD_LIMITS = {"name": 60, "address": 200, "opening_hours": 200, "phone": 40, "area": 30}


OPEN_FILTER = "open"
"""The quick filter "open now" (beside the facility filters of ``facilities.FILTERS``)."""
OPEN_DETOUR_FACTOR = 1.5
OPEN_DETOUR_M = 800.0
"""A station closed now ranks as if it were max(1.5 x its distance, its distance + 800 m) away: an
open one comes first when it is at most 800 m farther (about 3 minutes at 15 km/h) or at most 1.5
times as far, whichever allows more (a closed one at 400 m gives way to an open one within 1.2 km, at
2 km to one within 3 km). A closed station still shows (it may open soon, or be the only one), just
later. Hours unknown rank as open."""
ANY_OPEN_RADIUS_M = 10_000.0
"""How far ``nearest_any`` looks for a station open now: proving there is none means reading the
opening hours of every station in the box (the index cannot tell), and beyond 10 km it is no help."""
_MISSING: Any = object()
Ranked = tuple[float, float, StationRecord]  # (rank, haversine metres, station)
RankKey = Callable[[float, repo.Candidate], "float | None"]
StatusCache = dict[str, "Status | None"]  # by opening-hours text


def rank_metres(metres: float, *, closed: bool) -> float:
    """Where a station ranks in a nearest list: its distance, or if it is closed now its distance
    plus the detour an open station may cost (see ``OPEN_DETOUR_M``)."""
    if not closed:
        return metres
    return max(metres * OPEN_DETOUR_FACTOR, metres + OPEN_DETOUR_M)


class StationInputError(ValueError):
    """A station field a moderator (or a file) gave that we cannot accept."""

    def __init__(self, field: str, reason: str, values: Sequence[str] = ()) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason  # English, for files and the command line
        self.values = tuple(values)  # the offending input as given (for chat texts in any language)


@dataclass(frozen=True)
class Found:
    """A station as shown to a courier: distance and direction (when searched from a point)."""

    station: StationRecord
    checked_at: dt.datetime  # local time the status was computed for
    status: Status | None  # None: no or unreadable opening hours
    distance_m: float | None = None  # ellipsoidal (geodesic) metres
    bearing_deg: float | None = None
    compass: str | None = None  # "northeast"
    riding_minutes: int | None = None

    @property
    def point(self) -> LatLon:
        return LatLon(self.station.lat, self.station.lon)


@dataclass(frozen=True)
class NearestPage:
    items: list[Found]
    has_more: bool
    offset: int
    radius_m: float
    passed_closed: bool = False  # a station nearer than one shown, closed now, is ranked after it


@dataclass(frozen=True)
class FlagNotice:
    """A flag as the moderators' notice shows it (in the bot's default language)."""

    flag: FlagRecord
    station: StationRecord
    text: str
    markup: dict[str, Any]


@dataclass(frozen=True)
class FlagOutcome:
    notice: FlagNotice
    changed: bool  # False: the flag had been handled already (by notice.flag.handled_by)
    deactivated: bool  # the station went from active to inactive now


@dataclass(frozen=True)
class FlagResult:
    flag_id: int
    duplicate: bool  # the same courier flagged the same thing within FLAG_REPEAT_HOURS
    notified_chat: int | None  # moderator chat the notice was queued for (None: no chat configured)


def derived_external_id(name: str, lat: float, lon: float) -> str:
    """A stable id for a station listed without one: its name and WGS-84 point rounded to ~10 m."""
    norm = unicodedata.normalize("NFKC", name).strip().lower()
    digest = hashlib.sha1(f"{norm}|{lat:.4f}|{lon:.4f}".encode()).hexdigest()[:16]
    return f"auto-{digest}"


class StationService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.config = core.config.stations

    # -- nearest ---------------------------------------------------------------------------------

    async def _ranked(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        need: int,
        masks: Sequence[int],
        *,
        start_m: float = START_RADIUS_M,
        key: RankKey | None = None,
    ) -> tuple[list[Ranked], list[tuple[float, float, int]]]:
        """Up to ``need`` active stations within ``radius_m`` as (rank, haversine metres, station),
        by rank, then distance and id. The rank is the distance unless ``key`` gives another (never
        less than the distance) or drops the station (None). Second: every station read on the way
        as (rank, metres, station id), which holds every station nearer than the farthest of the first
        list. Records are built for the first list only."""
        r = min(start_m, radius_m)
        # With a rank other than the distance some stations read rank later (closed) or drop out:
        # read more at once rather than ask again (a round trip costs ~25 rows; measured with
        # bench/bench_nearest.py --at 02:10: 2.0 statements a query at 200k clustered, p95 3,
        # against 2.2 and 4 with twice `need`).
        limit = need + _MARGIN if key is None else 3 * need + _MARGIN
        while True:
            found = await repo.candidates(
                self.core.db,
                lat=lat,
                lon=lon,
                box=bounding_box(lat, lon, r),
                limit=limit,
                facility_masks=masks,
            )
            ranked = []
            for c in found:
                metres = haversine_m(lat, lon, c.lat, c.lon)
                rank = metres if key is None else key(metres, c)
                if rank is not None:
                    ranked.append((rank, metres, c))
            ranked.sort(key=lambda x: (x[0], x[1], x[2].id))
            # Every station within `certain` metres is in `found`: the box holds the circle of
            # radius r, and when the limit cut the list short the rest lie beyond the last one. One
            # not seen ranks at least at its distance, so beyond `certain` too.
            cut = len(found) >= limit
            certain = r
            if cut:
                certain = min(certain, found[-1].planar_m * (1.0 - _PLANAR_SLACK))
            sure = sum(1 for x in ranked if x[0] <= certain and x[1] <= radius_m)
            if sure >= need or certain >= radius_m:
                within = [x for x in ranked if x[1] <= radius_m][:need]
                top = [(x[0], x[1], x[2].station) for x in within]
                return top, [(x[0], x[1], x[2].id) for x in ranked]
            if cut:  # more stations in this box than fetched: fetch enough more of them at once
                limit = max(2 * limit, math.ceil(limit * need / sure * 1.5)) if sure else 4 * limit
                continue
            within = sum(1 for x in ranked if x[0] <= r)
            if within == 0:
                r = min(radius_m, 4.0 * r)
            else:  # grow to where the density seen so far predicts `need` stations, with room to spare
                r = min(radius_m, max(2.0 * r, r * math.sqrt(need / within) * 1.3))

    def _rank_key(self, filters: Sequence[str], open_first: bool) -> tuple[RankKey | None, StatusCache]:
        """How ``nearest`` ranks: by distance; closed stations as if farther (``open_first``); only
        open ones (the ``open`` filter). The statuses computed on the way are kept for the cards, by
        opening-hours text (stations share a few dozen texts: each is looked at once a query)."""
        statuses: StatusCache = {}
        open_only = OPEN_FILTER in filters
        if not open_only and not open_first:
            return None, statuses
        now_local = self._now_local()

        def key(metres: float, station: repo.Candidate) -> float | None:
            hours = station.opening_hours
            status = statuses.get(hours, _MISSING)
            if status is _MISSING:
                status = statuses[hours] = self._status(hours, now_local)
            if open_only:
                return metres if status is not None and status.is_open else None
            closed = status is not None and not status.is_open
            return rank_metres(metres, closed=closed)

        return key, statuses

    async def nearest(
        self,
        lat: float,
        lon: float,
        *,
        radius_m: float | None = None,
        limit: int | None = None,
        offset: int = 0,
        filters: Iterable[str] = (),
        open_first: bool = True,
    ) -> list[Found]:
        """Active stations within ``radius_m`` of a WGS-84 point, one page of them.

        Nearest first, except that a station closed now ranks as if it were farther
        (``rank_metres``): an open one a little farther comes first. ``open_first=False`` ranks by
        distance alone. ``filters`` are quick-filter codes (``charge``, ``swap``, ``meal``,
        ``toilet``, ``water``; ``open``: open now, known hours only): a station must match each. Ask
        for one more than a page to learn whether a next page exists.
        """
        radius = float(radius_m if radius_m is not None else self.config.radius_m)
        size = limit if limit is not None else self.config.page_size
        items, _ = await self._nearest(lat, lon, radius, size, offset, filters, open_first)
        return items

    async def _nearest(
        self,
        lat: float,
        lon: float,
        radius: float,
        size: int,
        offset: int,
        filters: Iterable[str],
        open_first: bool,
        page_size: int | None = None,
    ) -> tuple[list[Found], bool]:
        """``nearest``, and whether a station nearer than one of the first ``page_size`` shown is
        ranked after it (a closed one passed over for an open one), on this page or a later one."""
        codes = sorted(set(filters))
        masks = fac.filter_masks(c for c in codes if c != OPEN_FILTER)
        key, statuses = self._rank_key(codes, open_first)
        ranked, seen = await self._ranked(lat, lon, radius, offset + size, masks, key=key)
        origin = LatLon(lat, lon)
        page = ranked[offset : offset + size]
        items = [self._found(s, origin, statuses.get(s.opening_hours, _MISSING)) for _, _, s in page]
        shown = page[: page_size if page_size is not None else size]
        position = {x[2].id: i for i, x in enumerate(ranked)}
        beyond = len(ranked)  # ranked after every station returned
        passed = any(
            x[1] < s[1] and position.get(x[2], beyond) > offset + i for i, s in enumerate(shown) for x in seen
        )
        return items, passed

    async def nearest_page(
        self,
        lat: float,
        lon: float,
        *,
        page: int = 0,
        radius_m: float | None = None,
        filters: Iterable[str] = (),
    ) -> NearestPage:
        size = self.config.page_size
        radius = float(radius_m if radius_m is not None else self.config.radius_m)
        items, passed = await self._nearest(
            lat, lon, radius, size + 1, page * size, filters, True, page_size=size
        )
        return NearestPage(items[:size], len(items) > size, page * size, radius, passed)

    @staticmethod
    def any_radius_m(filters: Iterable[str] = ()) -> float:
        """How far ``nearest_any`` looks (with quick filters, less far; open now, less still)."""
        codes = set(filters)
        if OPEN_FILTER in codes:
            return ANY_OPEN_RADIUS_M
        return ANY_FILTERED_RADIUS_M if fac.filter_masks(codes) else ANY_RADIUS_M

    async def nearest_any(
        self,
        lat: float,
        lon: float,
        *,
        filters: Iterable[str] = (),
        max_radius_m: float | None = None,
        open_first: bool = True,
    ) -> Found | None:
        """The first station within ``max_radius_m`` (default ``any_radius_m(filters)``), ranked as
        ``nearest`` ranks: a closed one gives way to an open one within the detour.

        Boxes grow fourfold from ``START_RADIUS_M``; each step reads only the ring around the box
        already read, so the index entries of the whole box are scanned once: a filter nobody nearby
        matches costs one pass over the stations within ``max_radius_m``. Within a ring only the
        nearest few are read, more only while a closed one nearer than the best open one leaves the
        answer open. None when there is none (``has_stations`` tells an empty table apart).
        """
        codes = sorted(set(filters))
        masks = fac.filter_masks(c for c in codes if c != OPEN_FILTER)
        key, statuses = self._rank_key(codes, open_first)
        if max_radius_m is None:
            max_radius_m = self.any_radius_m(codes)
        best: tuple[float, float, int, StationRecord] | None = None
        searched: tuple[float, float, float, float] | None = None
        r = min(START_RADIUS_M, max_radius_m)
        while True:
            box = bounding_box(lat, lon, r)
            limit = 1 + _MARGIN
            while True:
                found = await repo.candidates(
                    self.core.db,
                    lat=lat,
                    lon=lon,
                    box=box,
                    limit=limit,
                    facility_masks=masks,
                    exclude=searched,
                )
                for c in found:
                    metres = haversine_m(lat, lon, c.lat, c.lon)
                    if metres > max_radius_m:  # the box's corners lie beyond the circle
                        continue
                    rank = metres if key is None else key(metres, c)
                    if rank is None:
                        continue
                    if best is None or (rank, metres, c.id) < best[:3]:
                        best = (rank, metres, c.id, c.station)
                # The ring's stations not read lie beyond its last one read, and rank no nearer.
                if len(found) < limit or (
                    best is not None and best[0] <= found[-1].planar_m * (1 - _PLANAR_SLACK)
                ):
                    break
                limit *= 4
            # The boxes read so far hold the circle of r: a station ranked within r comes first.
            if (best is not None and best[0] <= r) or r >= max_radius_m:
                break
            searched, r = box, min(max_radius_m, r * 4)
        if best is None:
            return None
        return self._found(best[3], LatLon(lat, lon), statuses.get(best[3].opening_hours, _MISSING))

    async def has_stations(self) -> bool:
        """Is there any active station at all?"""
        return await repo.any_active(self.core.db)

    async def areas(self) -> list[str]:
        """The areas stations are tagged with."""
        return await repo.areas(self.core.db)

    @staticmethod
    def _status(opening_hours: str, now_local: dt.datetime) -> Status | None:
        """The opening status of hours text now (None: no hours, or unreadable ones)."""
        if not opening_hours:
            return None
        try:
            return parse_opening_hours(opening_hours).status(now_local)
        except OpeningHoursError:
            return None

    def _now_local(self) -> dt.datetime:
        return self.core.clock.now().astimezone(self.core.tz)

    def _found(self, station: StationRecord, origin: LatLon | None, status: Any = None) -> Found:
        """``station`` as shown from ``origin``; ``status``: its opening status if already known
        (``_MISSING`` or None: computed here)."""
        now_local = self._now_local()
        if status is None or status is _MISSING:
            status = self._status(station.opening_hours, now_local)
        if origin is None:
            return Found(station, now_local, status)
        point = LatLon(station.lat, station.lon)
        metres = distance_m(origin, point)
        bearing = initial_bearing(origin, point)
        return Found(
            station,
            now_local,
            status,
            distance_m=metres,
            bearing_deg=bearing,
            compass=compass_key(bearing),
            riding_minutes=riding_minutes(metres, self.config.riding_speed_kmh),
        )

    # -- text search and lookups -----------------------------------------------------------------

    async def search(self, text: str, *, limit: int | None = None, offset: int = 0) -> list[Found]:
        """Active stations whose name, address or area contains ``text``."""
        text = unicodedata.normalize("NFKC", text).strip()
        if not text:
            return []
        size = limit if limit is not None else self.config.page_size
        rows = await repo.search_text(self.core.db, text, limit=size, offset=offset)
        return [self._found(s, None) for s in rows]

    async def get(self, station_id: int) -> StationRecord | None:
        return await repo.get(self.core.db, station_id)

    async def describe(self, station_id: int, origin: LatLon | None = None) -> Found | None:
        station = await repo.get(self.core.db, station_id)
        return None if station is None else self._found(station, origin)

    # -- editing ---------------------------------------------------------------------------------

    async def add(
        self,
        *,
        name: str,
        lat: float,
        lon: float,
        kind: str = "station",
        address: str = "",
        opening_hours: str = "",
        facilities: str | Iterable[str] = (),
        phone: str = "",
        area: str = "",
        external_id: str | None = None,
        source: str = "bot",
        demo: bool = False,
    ) -> StationRecord:
        """Create (or, with the same external id, update) a station from WGS-84 input."""
        clean = validate_fields(
            name=name,
            lat=lat,
            lon=lon,
            kind=kind,
            address=address,
            opening_hours=opening_hours,
            facilities=facilities,
            phone=phone,
            area=area,
        )
        data = StationData(
            external_id=external_id or derived_external_id(clean["name"], clean["lat"], clean["lon"]),
            source=source,
            demo=demo,
            **clean,
        )
        station_id, _ = await repo.upsert(self.core.db, data, self.core.clock.now())
        station = await repo.get(self.core.db, station_id)
        assert station is not None
        return station

    async def edit(self, station_id: int, **changes: Any) -> StationRecord | None:
        """Change fields (name, kind, lat, lon, address, opening_hours, facilities, phone, area).

        Values are validated like an import row; raises ``StationInputError``. None: no such station.
        """
        current = await repo.get(self.core.db, station_id)
        if current is None:
            return None
        unknown = set(changes) - (repo.EDITABLE - {"facility_mask"})
        if unknown:
            raise StationInputError(sorted(unknown)[0], "not an editable field")
        merged = {
            "name": current.name,
            "lat": current.lat,
            "lon": current.lon,
            "kind": current.kind,
            "address": current.address,
            "opening_hours": current.opening_hours,
            "facilities": current.facilities,
            "phone": current.phone,
            "area": current.area,
            **changes,
        }
        clean = validate_fields(**merged)
        values = {k: clean[k] for k in changes}
        if "facilities" in changes or "kind" in changes:  # a kind may imply facilities
            values["facilities"] = clean["facilities"]
            values["facility_mask"] = clean["facility_mask"]
        return await repo.update_fields(self.core.db, station_id, self.core.clock.now(), **values)

    async def deactivate(self, station_id: int) -> bool:
        return await repo.set_active(self.core.db, station_id, False, self.core.clock.now())

    async def activate(self, station_id: int) -> bool:
        return await repo.set_active(self.core.db, station_id, True, self.core.clock.now())

    # -- flags -----------------------------------------------------------------------------------

    def moderator_chat(self, area: str) -> int | None:
        bot = self.core.config.bot
        chat = bot.area_moderator_chats.get(area) if area else None
        chat = chat or bot.moderator_chat_id
        return chat or None

    async def flag(self, station_id: int, user_id: int, reason: str, note: str = "") -> FlagResult | None:
        """Record a courier's flag and queue a notice to the moderators (area chat, else the main one),
        with buttons to open the station, mark the flag handled or deactivate the station.

        The same courier flagging the same station for the same reason again within a day is
        recorded once. Returns None when there is no such station.
        """
        if reason not in FLAG_REASONS:
            raise ValueError(f"unknown flag reason {reason!r}")
        station = await repo.get(self.core.db, station_id)
        if station is None:
            return None
        now = self.core.clock.now()
        db = self.core.db
        earlier = await repo.recent_flag(
            db,
            station_id=station_id,
            user_id=user_id,
            reason=reason,
            since=now - dt.timedelta(hours=FLAG_REPEAT_HOURS),
        )
        if earlier is not None:
            return FlagResult(earlier.id, True, None)
        chat = self.moderator_chat(station.area)
        reporter = await self._who(user_id, with_id=True)
        lang = self.core.config.bot.default_language
        note = note.strip()
        async with db.transaction() as tx:
            flag_id = await repo.add_flag(
                tx, station_id=station_id, user_id=user_id, reason=reason, note=note, now=now
            )
            if chat is not None:
                flag = FlagRecord(flag_id, station_id, user_id, reason, note, now)
                text = self._flag_text(lang, flag, station, reporter, None)
                message = notice(
                    kind="station_flag",
                    dedup_key=f"stflag:{flag_id}",
                    user_id=chat,
                    text=text,
                    now=now,
                    markup=self.flag_keyboard(lang, flag),
                )
                await self.core.outbox.enqueue([message], tx)
        return FlagResult(flag_id, False, chat)

    async def add_flag_note(self, flag_id: int, user_id: int, note: str) -> bool:
        """The courier's explanation of their flag ("which facility is broken"), sent on to the same
        moderator chat. False when the flag is not theirs or already has one."""
        note = note.strip()[:FLAG_NOTE_MAX]
        if not note:
            return False
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            flag = await repo.set_flag_note(tx, flag_id, user_id, note)
            if flag is None:
                return False
            station = await repo.get(tx, flag.station_id)
            chat = self.moderator_chat(station.area if station else "")
            if chat is not None and station is not None:
                lang = self.core.config.bot.default_language
                text = self.core.t(
                    lang,
                    "stations.flag.note_notice",
                    reason=self.core.t(lang, f"stations.flag_reason.{flag.reason}"),
                    name=station.name,
                    station_id=station.id,
                    note=note,
                )
                message = notice(
                    kind="station_flag",
                    dedup_key=f"stflag:{flag_id}:note",
                    user_id=chat,
                    text=text,
                    now=now,
                    markup=self.flag_keyboard(lang, flag),
                )
                await self.core.outbox.enqueue([message], tx)
        return True

    # -- moderators handling flags -----------------------------------------------------------------

    async def _who(self, user_id: int | None, *, with_id: bool = False) -> str:
        if user_id is None:
            return "-"
        user = await users_repo.get(self.core.db, user_id)
        if user is None:
            return str(user_id)
        return f"{user.display_name} ({user_id})" if with_id else user.display_name

    def flag_keyboard(self, lang: str, flag: FlagRecord, *, confirm: bool = False) -> dict[str, Any]:
        """The buttons under a flag notice: details; while open, handled and deactivate (or, after
        deactivate was pressed, confirm / back). Callback data "st:fg:<action>:<flag id>"."""
        t = self.core.t

        def button(key: str, action: str) -> tuple[str, str]:
            return t(lang, f"stations.flag.button_{key}"), f"st:fg:{action}:{flag.id}"

        if flag.handled_at is not None:
            return keyboard([[button("details", "d")]])
        if confirm:
            return keyboard([[button("confirm_deactivate", "y"), button("back", "b")]])
        return keyboard([[button("details", "d"), button("handled", "h"), button("deactivate", "x")]])

    def _flag_text(
        self, lang: str, flag: FlagRecord, station: StationRecord, reporter: str, handler: str | None
    ) -> str:
        t = self.core.t
        text = t(
            lang,
            "stations.flag.notice",
            reason=t(lang, f"stations.flag_reason.{flag.reason}"),
            name=station.name,
            station_id=station.id,
            address=station.address or "-",
            user=reporter,
            note=flag.note or t(lang, "stations.flag.no_note"),
        )
        if flag.handled_at is not None and flag.handled_action:
            when = format_moment(
                self.core.catalog, lang, flag.handled_at.astimezone(self.core.tz), self._now_local()
            )
            text += "\n\n" + t(lang, f"stations.flag.{flag.handled_action}", who=handler or "-", when=when)
        return text

    async def flag_notice(self, flag_id: int, lang: str | None = None) -> FlagNotice | None:
        """A flag as its notice shows it now (text and buttons), re-read from the database."""
        db = self.core.db
        flag = await repo.get_flag(db, flag_id)
        if flag is None:
            return None
        station = await repo.get(db, flag.station_id)
        if station is None:
            return None
        lang = lang or self.core.config.bot.default_language
        handler = await self._who(flag.handled_by) if flag.handled_by is not None else None
        text = self._flag_text(lang, flag, station, await self._who(flag.user_id, with_id=True), handler)
        return FlagNotice(flag, station, text, self.flag_keyboard(lang, flag))

    async def handle_flag(self, flag_id: int, user_id: int, action: str) -> FlagOutcome | None:
        """A moderator marks a flag handled, or deactivates its station (which handles it too), in one
        transaction. The caller checked the moderator's right on the station's area. ``changed`` is
        False when someone handled the flag first: their decision stands. None: no such flag."""
        if action not in FLAG_ACTIONS:
            raise ValueError(f"unknown flag action {action!r}")
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            flag = await repo.get_flag(tx, flag_id)
            if flag is None:
                return None
            marked = await repo.mark_flag_handled(tx, flag_id, user_id=user_id, action=action, now=now)
            deactivated = False
            if marked is not None and action == "deactivated":
                deactivated = await repo.set_active(tx, flag.station_id, False, now)
        shown = await self.flag_notice(flag_id)
        if shown is None:
            return None
        return FlagOutcome(shown, marked is not None, deactivated)


def validate_fields(
    *,
    name: str,
    lat: float,
    lon: float,
    kind: str = "",
    address: str = "",
    opening_hours: str = "",
    facilities: str | Iterable[str] = (),
    phone: str = "",
    area: str = "",
) -> dict[str, Any]:
    """Check and normalise station fields (WGS-84); raises ``StationInputError``."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise StationInputError("name", "missing name")
    for field_name, value in (
        ("name", name),
        ("address", address),
        ("opening_hours", opening_hours),
        ("phone", phone),
        ("area", area),
    ):
        limit = FIELD_LIMITS[field_name]
        if len(value.strip()) > limit:
            raise StationInputError(field_name, f"too long (at most {limit} characters)", (str(limit),))
    problem = check_lat_lon(lat, lon)
    if problem == "swapped":
        raise StationInputError(
            "lat", f"latitude and longitude look swapped ({lat}, {lon})", (str(lat), str(lon))
        )
    if problem is not None:
        raise StationInputError("lat", f"coordinates out of range ({lat}, {lon})", (str(lat), str(lon)))
    try:
        kind_code = fac.parse_kind(kind)
    except fac.UnknownKindError as exc:
        known = ", ".join(k.code for k in fac.KINDS)
        raise StationInputError("kind", f"unknown kind {exc.name!r} (known: {known})") from None
    hours = opening_hours.strip()
    if hours:
        try:
            parse_opening_hours(hours)
        except OpeningHoursError as exc:
            raise StationInputError(
                "opening_hours", f"bad opening hours {hours!r}: {exc.reason}", (exc.code, exc.part)
            ) from None
    try:
        codes = fac.parse_facilities(facilities)
    except fac.UnknownFacilityError as exc:
        raise StationInputError("facilities", f"unknown facility {', '.join(exc.names)}", exc.names) from None
    codes = fac.implied_facilities(kind_code, codes)
    return {
        "name": name,
        "lat": float(lat),
        "lon": float(lon),
        "kind": kind_code,
        "address": address.strip(),
        "opening_hours": hours,
        "facilities": codes,
        "facility_mask": fac.facility_mask(codes),
        "phone": phone.strip(),
        "area": area.strip(),
    }


# --------------------------------------------------------------------------------------------------
# Rendering (pure)
# --------------------------------------------------------------------------------------------------


def format_distance(catalog: Catalog, lang: str, metres: float) -> str:
    """``400 米`` / ``1.2 公里`` / ``12 公里`` (metres rounded to 10, km to 0.1 below 10 km)."""
    rounded = max(10, round(metres / 10.0) * 10)
    if rounded < 1000:
        return catalog.t(lang, "stations.meters", n=rounded)
    km = metres / 1000.0
    text = f"{km:.1f}" if km < 10 else f"{round(km):d}"
    return catalog.t(lang, "stations.km", n=text)


def format_where(catalog: Catalog, lang: str, found: Found) -> str:
    """``东北方向 400 米`` / ``400 m northeast``; ``就在附近`` within 15 m."""
    if found.distance_m is None or found.compass is None:
        return ""
    if found.distance_m < 15:
        return catalog.t(lang, "stations.here")
    return catalog.t(
        lang,
        "stations.direction_distance",
        direction=catalog.t(lang, f"stations.compass.{found.compass}"),
        distance=format_distance(catalog, lang, found.distance_m),
    )


def format_when(catalog: Catalog, lang: str, moment: dt.datetime, now_local: dt.datetime) -> str:
    """A coming moment: ``21:00`` today, ``明天 09:00``, ``周一 09:00``."""
    time = moment.strftime("%H:%M")
    days = (moment.date() - now_local.date()).days
    if days <= 0:
        return time
    if days == 1:
        return catalog.t(lang, "stations.hours.tomorrow", time=time)
    return catalog.t(
        lang, "stations.hours.on_day", day=catalog.t(lang, f"stations.weekday.{moment.weekday()}"), time=time
    )


def format_status(catalog: Catalog, lang: str, status: Status | None, now_local: dt.datetime) -> str:
    """``🟢 营业中 · 21:00 关门`` / ``🔴 已打烊 · 明天 09:00 开门`` / ``🟢 24 小时营业`` ..."""
    if status is None:
        return catalog.t(lang, "stations.hours.unknown")
    if status.is_open:
        if status.changes_at is None:
            return catalog.t(lang, "stations.hours.open_24h")
        return catalog.t(
            lang, "stations.hours.open_until", when=format_when(catalog, lang, status.changes_at, now_local)
        )
    if status.changes_at is None:
        return catalog.t(lang, "stations.hours.closed")
    return catalog.t(
        lang, "stations.hours.opens_at", when=format_when(catalog, lang, status.changes_at, now_local)
    )


def format_moment(catalog: Catalog, lang: str, moment: dt.datetime, now_local: dt.datetime) -> str:
    """A past moment in local time: ``今天 14:30``, ``11月20日 14:30``, ``2025年11月20日 14:30``."""
    time = moment.strftime("%H:%M")
    if moment.date() == now_local.date():
        return catalog.t(lang, "stations.today_at", time=time)
    return f"{format_date(catalog, lang, moment.date(), now_local.date())} {time}"


def format_date(catalog: Catalog, lang: str, day: dt.date, today: dt.date) -> str:
    """``11月20日`` / ``20 Nov``; with the year when it is not this year's."""
    month = catalog.t(lang, f"stations.month.{day.month}")
    if day.year == today.year:
        return catalog.t(lang, "stations.date_short", month=month, day=day.day)
    return catalog.t(lang, "stations.date_long", month=month, day=day.day, year=day.year)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _span(catalog: Catalog, lang: str, start: int, end: int) -> str:
    if (start, end) == (0, 1440):
        return catalog.t(lang, "stations.week.all_day")
    if end > 1440:
        until = catalog.t(lang, "stations.week.next_day", time=_clock(end - 1440))
    else:
        until = _clock(end)
    return f"{_clock(start)}–{until}"


def _days(catalog: Catalog, lang: str, days: Sequence[int]) -> str:
    """``周一至周五``, ``周六、周日``, ``周一、周三至周五``; ``每天`` for all seven."""
    if len(days) == 7:
        return catalog.t(lang, "stations.week.every_day")
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    name = [catalog.t(lang, f"stations.weekday.{d}") for d in range(7)]
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(catalog.t(lang, "stations.week.through", first=name[run[0]], last=name[run[-1]]))
        else:
            parts.extend(name[d] for d in run)
    return catalog.t(lang, "stations.label_sep").join(parts)


def _times(catalog: Catalog, lang: str, intervals: Sequence[tuple[int, int]]) -> str:
    return catalog.t(lang, "stations.label_sep").join(_span(catalog, lang, a, b) for a, b in intervals)


def format_week(catalog: Catalog, lang: str, hours_text: str) -> str:
    """The weekly hours of a station, readably: ``周一至周五 09:00–21:00，周六、周日 10:00–18:00，节假日休息``
    / ``Mon–Fri 09:00–21:00; Sat, Sun 10:00–18:00; public holidays closed``. Unreadable hours are
    given as written; none: empty."""
    text = hours_text.strip()
    if not text:
        return ""
    try:
        week = parse_opening_hours(text).week()
    except OpeningHoursError:
        return text
    if week.always_open:
        return catalog.t(lang, "stations.week.always")
    groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for day, intervals in enumerate(week.days):
        groups.setdefault(intervals, []).append(day)
    if list(groups) == [()] and not week.holidays:
        return catalog.t(lang, "stations.week.never")
    parts = []
    for intervals, days in groups.items():
        label = _days(catalog, lang, days)
        if intervals:
            parts.append(
                catalog.t(lang, "stations.week.group", days=label, times=_times(catalog, lang, intervals))
            )
        else:
            parts.append(catalog.t(lang, "stations.week.group_closed", days=label))
    if week.holidays is not None:
        label = catalog.t(lang, "stations.week.holidays")
        if week.holidays:
            times = _times(catalog, lang, week.holidays)
            parts.append(catalog.t(lang, "stations.week.group", days=label, times=times))
        else:
            parts.append(catalog.t(lang, "stations.week.group_closed", days=label))
    return catalog.t(lang, "stations.week.sep").join(parts)


def _kind_icon(kind: str) -> str:
    k = fac.KIND_BY_CODE.get(kind)
    return k.icon if k else "📍"


def render_card(catalog: Catalog, lang: str, found: Found, index: int | None = None) -> str:
    """A few lines per station for a result list (plain text, no parse mode); numbered if ``index``.
    The title carries the station's number (``编号 12``), which ``/station 12`` opens."""
    s = found.station
    if index is None:
        title = catalog.t(lang, "stations.card_title_single", icon=_kind_icon(s.kind), name=s.name, id=s.id)
    else:
        title = catalog.t(
            lang, "stations.card_title", index=index, icon=_kind_icon(s.kind), name=s.name, id=s.id
        )
    lines = [title]
    if found.distance_m is not None and found.riding_minutes is not None:
        lines.append(
            catalog.t(
                lang,
                "stations.card_where",
                where=format_where(catalog, lang, found),
                riding=catalog.t(lang, "stations.riding", minutes=found.riding_minutes),
            )
        )
    status_line = format_status(catalog, lang, found.status, found.checked_at)
    icons = fac.icons(s.facilities)
    lines.append(f"{status_line}  {icons}" if icons else status_line)
    if s.address:
        lines.append(catalog.t(lang, "stations.address", address=s.address))
    return "\n".join(lines)


def facility_labels(catalog: Catalog, lang: str, codes: Iterable[str]) -> str:
    sep = catalog.t(lang, "stations.label_sep")
    return sep.join(
        f"{fac.FACILITY_BY_CODE[c].icon}{catalog.t(lang, f'stations.facility.{c}')}"
        for c in fac.sort_codes(codes)
        if c in fac.FACILITY_BY_CODE
    )


def render_details(catalog: Catalog, lang: str, found: Found) -> str:
    """Everything about one station: the card plus kind, weekly hours, facility names, phone, area
    and when its information was last updated (in the time zone of ``found.checked_at``)."""
    s = found.station
    lines = [render_card(catalog, lang, found)]
    lines.append(catalog.t(lang, "stations.kind_line", kind=catalog.t(lang, f"stations.kind.{s.kind}")))
    week = format_week(catalog, lang, s.opening_hours)
    if week:
        lines.append(catalog.t(lang, "stations.hours_line", hours=week))
    if s.facilities:
        lines.append(
            catalog.t(lang, "stations.facilities", labels=facility_labels(catalog, lang, s.facilities))
        )
    if s.phone:
        lines.append(catalog.t(lang, "stations.phone", phone=s.phone))
    if s.area:
        lines.append(catalog.t(lang, "stations.area", area=s.area))
    now_local = found.checked_at
    updated = s.updated_at.astimezone(now_local.tzinfo).date()
    lines.append(
        catalog.t(lang, "stations.updated", date=format_date(catalog, lang, updated, now_local.date()))
    )
    return "\n".join(lines)
