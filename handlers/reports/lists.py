"""Listing views: the courier's /myreports and the moderators' /reports (filters, hotspots, a card)."""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

from telegram import InlineKeyboardMarkup, InputMediaPhoto, Update
from telegram.error import BadRequest

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.reports import categories as rc
from bot.reports.service import STATUSES
from handlers.common import cb, is_private, open_private_button, private_only, reply, require
from handlers.reports.common import _inline, _markup, _parse, _parse_id, _service, _stale
from handlers.reports.flow import _pending_draft

log = logging.getLogger(__name__)

PAGE_SIZE = 10


# -- /myreports -----------------------------------------------------------------------------------


async def my_reports(update: Update, context: XContext) -> None:
    if not is_private(update):
        await reply(
            update,
            context,
            context.t("reports.my.group_prompt"),
            reply_markup=open_private_button(context, "myreports", "reports.my.open_private"),
        )
        return
    args = list(context.args or [])
    if len(args) == 1 and rc.parse_ref(args[0]) is not None:
        await _send_my_report(update, context, args[0])
        return
    await _send_my_reports(update, context)


async def _send_my_reports(update: Update, context: XContext) -> None:
    service = _service(context)
    items = await service.my_reports(update.effective_user.id, limit=PAGE_SIZE)
    draft = _pending_draft(context)
    lines: list[str] = []
    rows: list[list[tuple[str, str]]] = []
    if draft is not None and draft.kind is not None:
        kind = rc.kind_label(context.core.catalog, context.lang, draft.kind)
        lines += [context.t("reports.my.draft", kind=kind), ""]
        rows.append([(context.t("reports.my.open_draft"), cb("rp", "dr", "open"))])
    if not items:
        lines.append(context.t("reports.my.empty"))
    else:
        lines.append(context.t("reports.my.title", count=len(items)))
        lines.extend(service.list_line(r, context.lang) for r in items)
        lines += ["", context.t("reports.my.buttons_hint")]
        refs = [(r.ref, cb("rp", "my", r.id)) for r in items]
        rows += [refs[i : i + 4] for i in range(0, len(refs), 4)]
    await reply(update, context, "\n".join(lines), reply_markup=_inline(rows) if rows else None)


async def _send_my_report(update: Update, context: XContext, ref: str) -> None:
    """`/myreports H-0001`: the courier's own report with its history (nothing about others)."""
    service = _service(context)
    report = await service.get_by_ref(ref)
    text = (
        await service.reporter_view(report.id, update.effective_user.id, context.lang)
        if report is not None
        else None
    )
    if text is None:  # unknown, or someone else's: the same answer either way
        await reply(update, context, context.t("reports.my.unknown_ref", ref=ref[:20]))
        return
    await reply(update, context, text)


async def my_report_button(update: Update, context: XContext) -> None:
    """A reference button under /myreports (rp:my:<id>): re-read it, only the reporter sees it."""
    query = update.callback_query
    pieces = _parse(query.data, 3)
    report_id = _parse_id(pieces[2]) if pieces is not None else None
    text = None
    if report_id is not None and is_private(update):
        text = await _service(context).reporter_view(report_id, update.effective_user.id, context.lang)
    if text is None:
        await _stale(update, context)
        return
    await query.answer()
    await reply(update, context, text)


async def reports_link(update: Update, context: XContext, _arg: str) -> None:
    """`/start reports` from the button a moderator got in a group: the list, in private."""
    context.args = []
    await reports_command(update, context)


async def my_reports_link(update: Update, context: XContext, _arg: str) -> None:
    await _send_my_reports(update, context)


# -- /reports (moderators) ------------------------------------------------------------------------

_KIND_CODES = {"a": None, "g": rc.GRIEVANCE, "h": rc.HAZARD}
_STATUS_CODES = ("open", *STATUSES)


def _filters(context: XContext) -> dict[str, Any]:
    current = context.user_data.setdefault("rp_filter", {})
    current.setdefault("k", "a")
    current.setdefault("s", "open")
    current.setdefault("p", 0)
    return current


def _parse_filter_args(context: XContext, args: list[str]) -> dict[str, Any]:
    """`/reports 隐患 new road_damage 蒋村`: kind, status, category and area in any order and language."""
    catalog = context.core.catalog
    found: dict[str, Any] = {"k": "a", "s": "open", "p": 0, "c": None, "area": None}
    kind_words = {
        w.lower(): code
        for code, kind in (("g", rc.GRIEVANCE), ("h", rc.HAZARD))
        for w in (kind, code, *catalog.all_languages(f"reports.kind.{kind}"))
    }
    status_words = {
        w.lower(): s for s in STATUSES for w in (s, *catalog.all_languages(f"reports.status.{s}"))
    }
    category_words = {
        w.lower(): c.code
        for kind in rc.KINDS
        for c in rc.categories(kind)
        for w in (c.code, *catalog.all_languages(c.key))
        if c.code != rc.OTHER
    }
    for arg in args:
        word = arg.strip().lower()
        if word in kind_words:
            found["k"] = kind_words[word]
        elif word in status_words:
            found["s"] = status_words[word]
        elif word in category_words:
            found["c"] = category_words[word]
        elif word:
            found["area"] = arg.strip()[:40]
    return found


async def reports_command(update: Update, context: XContext) -> None:
    if not await require(update, context, Perm.REPORTS_HANDLE):
        return
    # Cards carry photos, voice, the exact spot and the reporter's name: never into a courier group.
    if not await private_only(update, context, "reports", moderators_chat=True):
        return
    args = list(context.args or [])
    service = _service(context)
    if len(args) == 1 and rc.parse_ref(args[0]) is not None:
        report = await service.get_by_ref(args[0])
        if report is None:
            await reply(update, context, context.t("reports.mod.unknown_ref", ref=args[0][:20]))
            return
        if not await require(update, context, Perm.REPORTS_HANDLE, report.area or ""):
            return
        await _send_card(update, context, report)
        return
    context.user_data["rp_filter"] = _parse_filter_args(context, args)
    text, keyboard = await _render_list(update, context)
    await reply(update, context, text, reply_markup=keyboard)


async def _send_card(update: Update, context: XContext, report: Any) -> None:
    """A report's photos (one album, or one photo), voice and map pin, then its card with the buttons."""
    chat_id = update.effective_chat.id
    bot = context.bot
    service = _service(context)
    photos = await service.photos(report.id)
    try:
        # Media first; a file Telegram no longer knows (e.g. from another bot token) must not cost
        # the moderator the card itself.
        for start in range(0, len(photos), 10):
            chunk = photos[start : start + 10]
            if len(chunk) == 1:
                await bot.send_photo(chat_id, chunk[0], caption=report.ref)
            else:
                media = [
                    InputMediaPhoto(file_id, caption=report.ref if start + i == 0 else None)
                    for i, file_id in enumerate(chunk)
                ]
                await bot.send_media_group(chat_id, media)
        if report.voice_file_id:
            await bot.send_voice(chat_id, report.voice_file_id, caption=report.ref)
    except BadRequest as exc:
        log.warning("report %s: media not sent (%s)", report.ref, exc.message)
    if report.lat is not None and report.lon is not None:
        await bot.send_location(chat_id, latitude=report.lat, longitude=report.lon)
    params = await service.card(report, chat_id=chat_id)  # a person's language in private
    sent = await bot.send_message(chat_id, params["text"], reply_markup=_markup(params["reply_markup"]))
    await service.record_card(report.id, sent.chat_id, sent.message_id)


async def list_button(update: Update, context: XContext) -> None:
    query = update.callback_query
    pieces = _parse(query.data, 4)
    if pieces is None:
        await _stale(update, context)
        return
    if not await require(update, context, Perm.REPORTS_HANDLE):
        return
    if not await private_only(update, context, "reports", moderators_chat=True):
        return
    _, _, dimension, value = pieces
    if dimension == "o":
        # A report's button under the list: re-read it, re-check the moderator's area.
        report_id = _parse_id(value)
        report = await _service(context).get(report_id) if report_id is not None else None
        if report is None:
            await _stale(update, context)
            return
        if not await require(update, context, Perm.REPORTS_HANDLE, report.area or ""):
            return
        await query.answer()
        await _send_card(update, context, report)
        return
    current = _filters(context)
    if dimension == "k" and value in _KIND_CODES:
        current.update(k=value, p=0)
    elif dimension == "s" and value in _STATUS_CODES:
        current.update(s=value, p=0)
    elif dimension == "p" and (page := _parse_id(value)) is not None:
        current["p"] = page
    else:
        await _stale(update, context)
        return
    await query.answer()
    text, keyboard = await _render_list(update, context)
    with contextlib.suppress(BadRequest):
        await query.edit_message_text(text, reply_markup=keyboard)


async def _render_list(update: Update, context: XContext) -> tuple[str, InlineKeyboardMarkup]:
    service = _service(context)
    current = _filters(context)
    allowed = await context.core.authz.areas_for(update.effective_user.id, Perm.REPORTS_HANDLE)
    area: str | list[str] | None = current.get("area")
    if allowed is not None:
        area = [a for a in allowed if a == area] if area else sorted(allowed)
    kind = _KIND_CODES.get(current["k"])
    status = None if current["s"] == "open" else current["s"]
    page = max(0, int(current.get("p") or 0))
    items, total = await service.open_reports(
        kind=kind,
        category=current.get("c"),
        area=area,
        status=status,
        limit=PAGE_SIZE,
        offset=page * PAGE_SIZE,
    )
    pages = max(1, math.ceil(total / PAGE_SIZE))
    t = context.t
    described = [
        rc.kind_label(context.core.catalog, context.lang, kind) if kind else t("reports.mod.filter_all"),
        t(f"reports.status.{status}") if status else t("reports.mod.filter_open"),
    ]
    if current.get("c"):
        for k in rc.KINDS:
            if rc.category(k, current["c"]):
                described.append(rc.category_label(context.core.catalog, context.lang, k, current["c"]))
                break
    if current.get("area"):
        described.append(current["area"])
    lines = [
        t("reports.mod.list_title", total=total),
        t("reports.mod.list_filters", filters=" · ".join(described)),
    ]
    if pages > 1:
        lines.append(t("reports.mod.page", page=page + 1, pages=pages))
    lines.append("")
    lines.extend(service.list_line(r, context.lang) for r in items)
    if not items:
        lines.append(t("reports.mod.list_empty"))
    if kind != rc.HAZARD and page == 0:
        # A moderator scoped to some areas sees the hotspots of those areas (`area` is then a list).
        spots = await service.access_hotspots(area=area, limit=5)
        if spots:
            lines += ["", t("reports.mod.hotspots_title")]
            unknown = t("reports.mod.hotspot_unknown")
            for spot in spots:
                place = t(
                    "reports.mod.hotspot_place",
                    compound=spot.compound or unknown,
                    company=spot.property_company or unknown,
                )
                lines.append(t("reports.mod.hotspot_line", place=place, total=spot.total, open=spot.open))
    lines += ["", t("reports.mod.list_hint")]

    def mark(selected: bool, label: str) -> str:
        return f"• {label}" if selected else label

    kind_row = [
        (mark(current["k"] == "a", t("reports.mod.filter_all")), cb("rp", "ls", "k", "a")),
        (mark(current["k"] == "g", t("reports.kind.grievance")), cb("rp", "ls", "k", "g")),
        (mark(current["k"] == "h", t("reports.kind.hazard")), cb("rp", "ls", "k", "h")),
    ]
    status_buttons = [
        (mark(current["s"] == "open", t("reports.mod.filter_open")), cb("rp", "ls", "s", "open"))
    ] + [(mark(current["s"] == s, t(f"reports.status.{s}")), cb("rp", "ls", "s", s)) for s in STATUSES]
    refs = [(r.ref, cb("rp", "ls", "o", r.id)) for r in items]
    rows = [refs[i : i + 5] for i in range(0, len(refs), 5)]
    rows += [kind_row, status_buttons[:4], status_buttons[4:]]
    nav = []
    if page > 0:
        nav.append((t("reports.mod.prev"), cb("rp", "ls", "p", page - 1)))
    if page + 1 < pages:
        nav.append((t("reports.mod.next"), cb("rp", "ls", "p", page + 1)))
    if nav:
        rows.append(nav)
    return "\n".join(lines), _inline(rows)
