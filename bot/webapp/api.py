"""The desk's JSON API under /api/. Every request carries the Mini App's initData
(`Authorization: tma <initData>`): missing or forged -> 401, a user who is neither moderator nor
captain -> 403; everything else is scoped by bot/core/authz.py through bot/desk.py."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiohttp import web

from bot.community import Community
from bot.core.container import Core
from bot.core.i18n import resolve_language
from bot.desk import DeskAccess, DeskService, MapFilters
from bot.reports import categories as rc
from bot.reports.service import OPEN_STATUSES, STATUSES, Outcome
from bot.stations import facilities as fac
from bot.stations.importer import StationImportError
from bot.stations.service import StationInputError
from bot.webapp.auth import InitDataError, WebAppUser, verify_init_data

log = logging.getLogger(__name__)

CORE = web.AppKey("core", Core)
BOT = web.AppKey("bot", Any)
MAX_UPLOAD = 5 * 1024 * 1024


class Caller:
    """The signed-in user of one request: who, in which language, allowed what."""

    def __init__(self, user: WebAppUser, lang: str, access: DeskAccess) -> None:
        self.user = user
        self.lang = lang
        self.access = access


CALLER: Any = web.RequestKey("caller", Caller) if hasattr(web, "RequestKey") else "caller"


def _error(status: int, code: str, message: str = "") -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await handler(request)
    core = request.app[CORE]
    header = request.headers.get("Authorization", "")
    init_data = header[4:].strip() if header.lower().startswith("tma ") else ""
    try:
        user = verify_init_data(
            init_data,
            core.config.telegram.token,
            now=core.clock.now(),
            max_age=dt.timedelta(hours=core.config.webapp.auth_max_age_hours),
        )
    except InitDataError as exc:
        log.info("webapp: %s %s refused (%s)", request.method, request.path, exc.reason)
        return _error(401, exc.reason, core.t(None, f"webapp.auth.{exc.reason}"))
    stored = await core.service(Community).user(user.id)
    if stored is None or (stored.first_name, stored.username) != (user.first_name, user.username):
        # Seen through the desk: the audit trail and the cards name them like a chat user.
        stored = await core.service(Community).seen_user(
            user.id,
            first_name=user.first_name,
            last_name=user.last_name or None,
            username=user.username,
            language_code=user.language_code,
            private_chat=False,
        )
    lang = resolve_language(
        stored.lang if stored else None,
        user.language_code or (stored.language_code if stored else None),
        core.config.bot.default_language,
    )
    access = await request.app[CORE].service(DeskService).access(user.id)
    if not access.allowed:
        return _error(403, "forbidden", core.t(lang, "webapp.auth.forbidden"))
    request[CALLER] = Caller(user, lang, access)
    return await handler(request)


def _caller(request: web.Request) -> Caller:
    return request[CALLER]


def _desk(request: web.Request) -> DeskService:
    return request.app[CORE].service(DeskService)


async def me(request: web.Request) -> web.Response:
    core = request.app[CORE]
    caller = _caller(request)
    lang = caller.lang
    a = caller.access
    texts = {k[len("webapp.") :]: core.t(lang, k) for k in core.catalog.keys("webapp.")}
    categories = [
        {"key": f"{kind}:{c.code}", "label": rc.category_label(core.catalog, lang, kind, c.code)}
        for kind in (rc.GRIEVANCE, rc.HAZARD)
        for c in rc.categories(kind)
    ]
    areas: set[str] = set()
    for scope in (a.reports, a.stations, a.tasks):
        if scope:
            areas |= set(scope)
    if a.reports is None or a.stations is None or a.tasks is None:
        areas |= {area for area, _ in await core.service(Community).areas()}
    web_cfg = core.config.webapp
    return web.json_response(
        {
            "user": {"id": caller.user.id, "name": caller.user.first_name},
            "lang": lang,
            "can": {"reports": a.can_reports, "stations": a.can_stations, "tasks": a.can_tasks},
            "areas": sorted(x for x in areas if x),
            "statuses": list(STATUSES),
            "open_statuses": list(OPEN_STATUSES),
            "status_labels": {s: core.t(lang, f"reports.status.{s}") for s in STATUSES},
            "action_labels": {
                act: core.t(lang, f"reports.action.{act}")
                for act in ("ack", "progress", "resolve", "reject", "duplicate")
            },
            "categories": categories,
            "facilities": [
                {"code": f.code, "label": f"{f.icon}{core.t(lang, f'stations.facility.{f.code}')}"}
                for f in fac.FACILITIES
            ],
            "tiles": {
                "url": web_cfg.tiles_url,
                "subdomains": web_cfg.tiles_subdomains,
                "attribution": web_cfg.tiles_attribution,
            },
            "undo_grace_seconds": core.config.reports.undo_grace_seconds,
            "texts": texts,
        }
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


async def map_data(request: web.Request) -> web.Response:
    caller = _caller(request)
    return web.json_response(await _desk(request).map_data(caller.access, _filters(request), caller.lang))


def _filters(request: web.Request) -> MapFilters:
    q = request.query
    statuses = tuple(s for s in q.get("status", "").split(",") if s) or OPEN_STATUSES
    return MapFilters(
        statuses=statuses,
        category=q.get("category") or None,
        area=q.get("area") or None,
        max_age_days=_int(q.get("age")),
    )


async def hotspots(request: web.Request) -> web.Response:
    caller = _caller(request)
    return web.json_response({"hotspots": await _desk(request).hotspots(caller.access, _filters(request))})


async def board(request: web.Request) -> web.Response:
    caller = _caller(request)
    if not caller.access.can_reports:
        return _error(403, "forbidden", request.app[CORE].t(caller.lang, "webapp.auth.no_reports"))
    board = await _desk(request).board(caller.access, caller.lang, request.query.get("area") or None)
    return web.json_response(board)


def _report_id(request: web.Request) -> int:
    try:
        return int(request.match_info["report_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


def _not_found(request: web.Request) -> web.Response:
    return _error(404, "not_found", request.app[CORE].t(_caller(request).lang, "webapp.error.not_found"))


async def report_detail(request: web.Request) -> web.Response:
    caller = _caller(request)
    detail = await _desk(request).report_detail(caller.access, _report_id(request), caller.lang)
    if detail is None:
        return _not_found(request)
    return web.json_response(detail)


async def report_file(request: web.Request) -> web.StreamResponse:
    """A report's photo or voice note, fetched from Telegram (getFile + download) through the bot."""
    caller = _caller(request)
    what = request.match_info["what"]
    index = _int(request.match_info.get("index")) or 0
    file_id = await _desk(request).report_file(caller.access, _report_id(request), what, index)
    if file_id is None:
        return _not_found(request)
    bot = request.app[BOT]
    try:
        tg_file = await bot.get_file(file_id)
        data = bytes(await tg_file.download_as_bytearray())
    except Exception as exc:
        log.warning("webapp: could not fetch file %s: %s", file_id, exc)
        return _error(502, "file_unavailable", request.app[CORE].t(caller.lang, "webapp.error.file"))
    content_type = "audio/ogg" if what == "voice" else "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        content_type = "image/png"
    return web.Response(
        body=data, content_type=content_type, headers={"Cache-Control": "private, max-age=3600"}
    )


def _outcome(request: web.Request, outcome: Outcome | None) -> web.Response:
    core = request.app[CORE]
    caller = _caller(request)
    if outcome is None:
        return _not_found(request)
    body: dict[str, Any] = {
        "changed": outcome.changed,
        "status": outcome.report.status if outcome.report else None,
    }
    if outcome.refusal is not None:
        body["message"] = outcome.refusal.text(core, caller.lang)
        body["error"] = outcome.refusal.code
    return web.json_response(body, status=200 if outcome.changed else 409)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def report_action(request: web.Request) -> web.Response:
    caller = _caller(request)
    body = await _json(request)
    outcome = await _desk(request).act(
        caller.access,
        _report_id(request),
        str(body.get("action", "")),
        note=body.get("note") if isinstance(body.get("note"), str) else None,
        duplicate_ref=body.get("duplicate_ref") if isinstance(body.get("duplicate_ref"), str) else None,
    )
    return _outcome(request, outcome)


async def report_undo(request: web.Request) -> web.Response:
    caller = _caller(request)
    return _outcome(request, await _desk(request).undo(caller.access, _report_id(request)))


async def stations(request: web.Request) -> web.Response:
    caller = _caller(request)
    if not caller.access.can_stations:
        return _error(403, "forbidden", request.app[CORE].t(caller.lang, "webapp.auth.no_stations"))
    found = await _desk(request).search_stations(caller.access, request.query.get("q", ""))
    return web.json_response({"stations": found})


def _station_id(request: web.Request) -> int:
    try:
        return int(request.match_info["station_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


async def station_edit(request: web.Request) -> web.Response:
    caller = _caller(request)
    body = await _json(request)
    try:
        station = await _desk(request).edit_station(caller.access, _station_id(request), body)
    except StationInputError as exc:
        return _error(400, "invalid", f"{exc.field}: {exc.reason}")
    if station is None:
        return _not_found(request)
    return web.json_response(
        {"id": station.id, "opening_hours": station.opening_hours, "facilities": list(station.facilities)}
    )


async def station_active(request: web.Request) -> web.Response:
    caller = _caller(request)
    body = await _json(request)
    changed = await _desk(request).set_station_active(
        caller.access, _station_id(request), bool(body.get("active"))
    )
    if changed is None:
        return _not_found(request)
    return web.json_response({"changed": changed, "active": bool(body.get("active"))})


async def station_import(request: web.Request) -> web.Response:
    caller = _caller(request)
    if not caller.access.can_stations:
        return _error(403, "forbidden", request.app[CORE].t(caller.lang, "webapp.auth.no_stations"))
    raw = await request.read()
    if len(raw) > MAX_UPLOAD:
        return _error(413, "too_large", request.app[CORE].t(caller.lang, "webapp.stations.too_large"))
    try:
        result = await _desk(request).import_stations(
            caller.access,
            raw,
            filename=request.query.get("name", "upload.csv"),
            commit=request.query.get("commit") == "1",
            lang=caller.lang,
        )
    except StationImportError as exc:
        return _error(400, "unreadable", str(exc))
    return web.json_response(result)


async def week(request: web.Request) -> web.Response:
    caller = _caller(request)
    desk = _desk(request)
    start = desk.week_start()
    if request.query.get("start"):
        try:
            start = dt.date.fromisoformat(request.query["start"])
        except ValueError:
            return _error(400, "invalid", "start")
    areas, include_reports = desk.week_scope(caller.access)
    figures = await desk.week(start, areas=areas, include_reports=include_reports)
    return web.json_response(desk.week_json(figures, caller.lang))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/me", me)
    r.add_get("/api/map", map_data)
    r.add_get("/api/hotspots", hotspots)
    r.add_get("/api/board", board)
    r.add_get("/api/reports/{report_id}", report_detail)
    r.add_get("/api/reports/{report_id}/{what:photo}/{index}", report_file)
    r.add_get("/api/reports/{report_id}/{what:voice}", report_file)
    r.add_post("/api/reports/{report_id}/action", report_action)
    r.add_post("/api/reports/{report_id}/undo", report_undo)
    r.add_get("/api/stations", stations)
    r.add_post("/api/stations/import", station_import)
    r.add_post("/api/stations/{station_id}", station_edit)
    r.add_post("/api/stations/{station_id}/active", station_active)
    r.add_get("/api/week", week)
