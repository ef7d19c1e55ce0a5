"""Grievances and hazard tips in Telegram.

* Filing, private chat only (a persistent ConversationHandler; the draft lives in user_data, so it
  survives a restart): kind -> category -> description or voice -> [access: compound, property
  company] -> photos -> location or place -> [grievance: anonymity] -> [hazard near an open one:
  "the same?"] -> summary with 提交 / 修改 / 取消. `/cancel` anywhere.
* Entry: /report, the 📝 menu button, the deep link `/start report[_<group id>]` that `/report` in a
  group answers with, and the quick path (a photo, then a shared location within QUICK_WINDOW, becomes
  a hazard draft; later a location goes to 📍 nearest stations and the stale draft is dropped).
* Moderators: the card buttons (rp:st:<id>:<action>) with ForceReply prompts for notes and the
  duplicate's reference, `/reports` (filters, hotspots, `/reports H-0042` for a card).
* Couriers: `/myreports` (an unsubmitted draft, rp:dr:open; a button per report, rp:my:<id>, or
  `/myreports H-0001`: their own report with its history), and the 是/没有 answer to "已解决了吗?"
  (rp:fb:<id>:y|n).

Callback data is never trusted: every press re-reads the report and re-checks the role and state;
ids are parsed as short ASCII numbers. Every step re-checks its draft (`_step`): a draft dropped
meanwhile (e.g. by another feature's /cancel) ends the flow with an "expired" answer. Only new
messages answer a step: edited ones are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    MessageEntity,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.core.container import Core
from bot.core.runtime import startup_hooks
from bot.reports import categories as rc
from bot.reports.service import (
    CB_FEEDBACK,
    CB_STATUS,
    MODERATOR_ACTIONS,
    NOTE_REQUIRED,
    TRANSITIONS,
    Outcome,
    Refusal,
    ReportDraft,
    ReportRefused,
    ReportService,
    haversine_m,
)
from handlers.common import (
    Command,
    cb,
    community,
    draft_state,
    drop_draft,
    is_private,
    main_menu,
    open_private_button,
    reply,
    require,
    stale_button_text,
)
from handlers.core import cancel_conversation, cancel_fallback, cancel_keys, deep_links
from storage.reports import STATUSES

log = logging.getLogger(__name__)

COMMANDS = [
    Command("report", "reports.cmd.report"),
    Command("myreports", "reports.cmd.myreports"),
    Command("reports", "reports.cmd.reports", perm=Perm.REPORTS_HANDLE),
]

# Conversation states (strings: they are persisted as JSON).
KIND = "kind"
CATEGORY = "category"
DESCRIPTION = "description"
COMPOUND = "compound"
PROPERTY = "property"
PHOTOS = "photos"
LOCATION = "location"
ANONYMITY = "anonymity"
DUPLICATE = "duplicate"
SUMMARY = "summary"
EDIT = "edit"
QUICK_LOCATION = "quick_location"
DRAFT = "reports"
COMPOUND_LIMIT = 60
PAGE_SIZE = 10
ESCALATION_INTERVAL_SECONDS = 600
# The quick path (a photo, then a location) waits this long for the location (measured with core.clock);
# after that a shared location belongs to other features again (📍 nearest stations) and the photo's
# draft is dropped.
QUICK_WINDOW = dt.timedelta(minutes=10)
# Callback prefixes that only mean something inside the filing conversation.
FLOW_PATTERN = r"^rp:(k|c|ph|sk|an|dup|sum|ed):"
# Ids in callback data and deep links: ASCII digits only (str.isdigit() also takes '²', which int()
# refuses) and short enough for SQLite's 64-bit integers.
_ID = re.compile(r"[0-9]{1,15}")
_CHAT_ID = re.compile(r"-?[0-9]{1,15}")


def _service(context: XContext) -> ReportService:
    return context.core.service(ReportService)


# -- the draft in user_data -----------------------------------------------------------------------


def _state(context: XContext) -> dict[str, Any]:
    return draft_state(context, DRAFT)


def _draft(context: XContext) -> ReportDraft:
    return ReportDraft.from_dict(_state(context).get("draft"))


def _save(context: XContext, draft: ReportDraft, **extra: Any) -> None:
    state = _state(context)
    state["draft"] = draft.to_dict()
    state.update(extra)


def _drop(context: XContext) -> None:
    drop_draft(context, DRAFT)


def _quick_fresh(state: Any, now: dt.datetime) -> bool:
    """A quick-path draft (photo first) still waits for its location: within QUICK_WINDOW of the photo."""
    if not isinstance(state, dict) or not state.get("quick"):
        return False
    try:
        since = dt.datetime.fromisoformat(str(state.get("quick_at")))
    except ValueError:
        return False  # an older draft without a time: it has waited long enough
    if since.tzinfo is None:
        return False
    return dt.timedelta(0) <= now - since <= QUICK_WINDOW


class _QuickPending(filters.MessageFilter):
    """The sender has a fresh quick-path photo waiting for its location (reads the app's user_data:
    a filter sees no context). Without it a shared location is left to other features."""

    def __init__(self, app: Application, core: Core) -> None:
        super().__init__(name="QuickPending")
        self._app, self._core = app, core

    def filter(self, message: Message) -> bool:
        user = message.from_user
        data = self._app.user_data.get(user.id) if user is not None else None
        drafts = data.get("drafts") if isinstance(data, dict) else None
        state = drafts.get(DRAFT) if isinstance(drafts, dict) else None
        return _quick_fresh(state, self._core.clock.now())


def _parse_id(text: str) -> int | None:
    """A row id from callback data or a deep link, or None (forged, non-ASCII, too large)."""
    return int(text) if _ID.fullmatch(text) else None


def _parse_chat_id(text: str) -> int | None:
    return int(text) if _CHAT_ID.fullmatch(text) else None


def _draft_ready(context: XContext, *, kind: bool, category: bool) -> bool:
    """The draft a step relies on is still there (another feature's /cancel may have dropped it)."""
    drafts = context.user_data.get("drafts") if context.user_data is not None else None
    state = drafts.get(DRAFT) if isinstance(drafts, dict) else None
    data = state.get("draft") if isinstance(state, dict) else None
    if not isinstance(data, dict):
        return False
    try:
        draft = ReportDraft.from_dict(data)
    except TypeError:
        return False
    if not kind:
        return True
    if draft.kind is None or not rc.is_kind(draft.kind):
        return False
    return not category or (
        draft.category is not None and rc.category(draft.kind, draft.category) is not None
    )


async def _expired(update: Update, context: XContext) -> int:
    """The conversation is still in a step but its draft is gone: say so and leave the conversation."""
    _drop(context)
    query = update.callback_query
    if query is not None:
        await query.answer(stale_button_text(context), show_alert=True)
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(None)
        return ConversationHandler.END
    await reply(update, context, context.t("reports.flow.expired"), reply_markup=main_menu(context))
    return ConversationHandler.END


_Step = Callable[[Update, XContext], Awaitable[Any]]


def _step(*, kind: bool = True, category: bool = True) -> Callable[[_Step], _Step]:
    """Guard a conversation step: without the draft it needs, answer "expired" and end the flow."""

    def wrap(fn: _Step) -> _Step:
        @functools.wraps(fn)
        async def guarded(update: Update, context: XContext) -> Any:
            if not _draft_ready(context, kind=kind, category=category):
                return await _expired(update, context)
            return await fn(update, context)

        return guarded

    return wrap


def _menu_texts(core: Core) -> filters.BaseFilter:
    """Main-menu buttons in any language: they belong to their features, never to a draft."""
    texts = {text for key in core.catalog.keys("menu.") for text in core.catalog.all_languages(key)}
    return filters.Text(sorted(texts))


def _refusal(context: XContext, refusal: Refusal) -> str:
    return refusal.text(context.core, context.lang)


def _markup(data: dict[str, Any] | None) -> InlineKeyboardMarkup:
    rows = (data or {}).get("inline_keyboard", [])
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows]
    )


def _inline(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def _answer(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


async def _stale(update: Update, context: XContext) -> None:
    """A button of a finished or foreign flow, or forged data: nothing changes."""
    if update.callback_query is not None:
        await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


# -- entry ----------------------------------------------------------------------------------------


async def report_command(update: Update, context: XContext) -> str | int:
    """/report or the 📝 menu button in private: start a fresh draft."""
    return await _begin(update, context, origin_chat_id=None)


async def report_in_group(update: Update, context: XContext) -> None:
    """/report in a group: grievances are never collected in a group; open the private chat."""
    chat = update.effective_chat
    await reply(
        update,
        context,
        context.t("reports.flow.group_prompt"),
        reply_markup=open_private_button(context, f"report_{chat.id}", "reports.flow.open_private"),
    )


async def report_deep_link(update: Update, context: XContext) -> str | int:
    """/start report[_<group id>]: the group's area is inherited by the report."""
    payload = context.args[0] if context.args else ""
    _, _, arg = payload.partition("_")
    origin = None
    if arg:
        chat_id = _parse_chat_id(arg)
        if chat_id is None:  # a forged or mangled link
            await reply(update, context, stale_button_text(context), reply_markup=main_menu(context))
            return ConversationHandler.END
        group = await community(context).group(chat_id)
        origin = group.chat_id if group else None
    return await _begin(update, context, origin_chat_id=origin)


async def _begin(update: Update, context: XContext, *, origin_chat_id: int | None) -> str | int:
    service = _service(context)
    remaining = await service.remaining_today(update.effective_user.id)
    if remaining <= 0:
        _drop(context)
        limit = context.core.config.reports.daily_limit
        await reply(update, context, _refusal(context, Refusal("daily_limit", {"limit": limit})))
        return ConversationHandler.END
    _drop(context)
    _save(context, ReportDraft(origin_chat_id=origin_chat_id), quick=False, editing=False)
    kinds = [
        (rc.kind_label(context.core.catalog, context.lang, kind), cb("rp", "k", kind)) for kind in rc.KINDS
    ]
    keyboard = _inline([kinds, [(context.t("reports.flow.cancel"), cb("rp", "sum", "x"))]])
    await reply(
        update, context, context.t("reports.flow.ask_kind", remaining=remaining), reply_markup=keyboard
    )
    return KIND


async def quick_photo(update: Update, context: XContext) -> str | int:
    """Quick path: a photo sent in private starts a hazard draft; the location comes next."""
    service = _service(context)
    message = update.effective_message
    remaining = await service.remaining_today(update.effective_user.id)
    if remaining <= 0:
        limit = context.core.config.reports.daily_limit
        await reply(update, context, _refusal(context, Refusal("daily_limit", {"limit": limit})))
        return ConversationHandler.END
    draft = ReportDraft(kind=rc.HAZARD, photos=[message.photo[-1].file_id])
    caption = (message.caption or "").strip()
    refused = service.check_description(caption) if caption else None
    if caption and refused is None:
        draft.description = caption
    _drop(context)
    _save(
        context,
        draft,
        quick=True,
        quick_at=context.core.clock.now().isoformat(),
        editing=False,
        caption_refused=refused is not None,
    )
    if refused is not None:
        # The photo stays; the courier learns why the caption is not the description and how to add one.
        await reply(update, context, context.t("reports.flow.caption_refused", **refused.values))
    await reply(
        update,
        context,
        context.t("reports.flow.quick_photo", minutes=_quick_minutes()),
        reply_markup=_quick_keyboard(context),
    )
    return QUICK_LOCATION


def _quick_minutes() -> int:
    return int(QUICK_WINDOW.total_seconds() // 60)


def _quick_keyboard(context: XContext) -> ReplyKeyboardMarkup:
    """The quick path's choice: 📍 send the location, or ❌ cancel the photo's draft."""
    rows = [
        [KeyboardButton(context.t("reports.flow.share_location"), request_location=True)],
        [KeyboardButton(context.t("reports.flow.cancel"))],
    ]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


# -- kind and category ----------------------------------------------------------------------------


@_step(kind=False)
async def kind_chosen(update: Update, context: XContext) -> str | int:
    query = update.callback_query
    kind = query.data.rsplit(":", 1)[-1]
    if not rc.is_kind(kind):
        await _stale(update, context)
        return KIND
    draft = _draft(context)
    if draft.kind != kind:
        draft.kind, draft.category = kind, None
        draft.anonymous = False
    _save(context, draft)
    await query.answer()
    await _ask_category(update, context, draft, edit=True)
    return CATEGORY


async def _ask_category(update: Update, context: XContext, draft: ReportDraft, *, edit: bool) -> None:
    assert draft.kind is not None
    labels = [
        (rc.category_label(context.core.catalog, context.lang, draft.kind, c.code), cb("rp", "c", c.code))
        for c in rc.categories(draft.kind)
    ]
    rows = [labels[i : i + 2] for i in range(0, len(labels), 2)]
    rows.append([(context.t("reports.flow.cancel"), cb("rp", "sum", "x"))])
    text = context.t(
        "reports.flow.ask_category", kind=rc.kind_label(context.core.catalog, context.lang, draft.kind)
    )
    query = update.callback_query
    if edit and query is not None:
        await query.edit_message_text(text, reply_markup=_inline(rows))
    else:
        await reply(update, context, text, reply_markup=_inline(rows))


@_step(category=False)
async def category_chosen(update: Update, context: XContext) -> str | int:
    query = update.callback_query
    code = query.data.rsplit(":", 1)[-1]
    draft = _draft(context)
    if draft.kind is None or rc.category(draft.kind, code) is None:
        await _stale(update, context)
        return CATEGORY
    if draft.category != code:
        # Another category may have another open hazard nearby: ask "the same?" again.
        _state(context)["dup_checked"] = False
    draft.category = code
    if not rc.is_access(draft.kind, code):
        draft.compound = draft.property_company = None
    _save(context, draft)
    await query.answer()
    label = rc.category_label(context.core.catalog, context.lang, draft.kind, code)
    await query.edit_message_text(
        f"{rc.kind_label(context.core.catalog, context.lang, draft.kind)} · {label}"
    )
    state = _state(context)
    if state.get("quick"):
        return await _before_summary(update, context)
    if state.get("editing"):
        if rc.is_access(draft.kind, code) and not draft.compound:
            return await _ask_compound(update, context)
        return await _before_summary(update, context)
    return await _ask_description(update, context)


# -- description (text or voice), compound -----------------------------------------------------


async def _ask_description(update: Update, context: XContext) -> str:
    limit = context.core.config.reports.description_limit
    await reply(update, context, context.t("reports.flow.ask_description", limit=limit))
    return DESCRIPTION


@_step()
async def description_text(update: Update, context: XContext) -> str | int:
    text = update.effective_message.text or ""
    refusal = _service(context).check_description(text)
    if refusal is not None:
        await reply(update, context, _refusal(context, refusal))
        return DESCRIPTION
    draft = _draft(context)
    draft.description = text.strip()
    _save(context, draft)
    return await _after_description(update, context, draft)


@_step()
async def description_voice(update: Update, context: XContext) -> str | int:
    draft = _draft(context)
    draft.voice_file_id = update.effective_message.voice.file_id
    _save(context, draft)
    return await _after_description(update, context, draft)


@_step()
async def description_photo(update: Update, context: XContext) -> str | int:
    """A photo at the description step: its caption is the description, the photo the first photo."""
    message = update.effective_message
    service = _service(context)
    caption = (message.caption or "").strip()
    refusal = service.check_description(caption) if caption else None
    if refusal is not None:
        await reply(update, context, _refusal(context, refusal))
        return DESCRIPTION  # nothing kept: the courier sends it again with a shorter caption
    draft = _draft(context)
    if service.can_add_photo(draft) is None:
        draft.photos.append(message.photo[-1].file_id)
    if not caption:
        _save(context, draft)
        await reply(update, context, context.t("reports.flow.photo_kept_need_description"))
        return DESCRIPTION
    draft.description = caption
    _save(context, draft)
    return await _after_description(update, context, draft)


@_step()
async def description_other(update: Update, context: XContext) -> str:
    await reply(update, context, context.t("reports.flow.need_text_or_voice"))
    return DESCRIPTION


async def _after_description(update: Update, context: XContext, draft: ReportDraft) -> str | int:
    assert draft.kind is not None and draft.category is not None
    if rc.is_access(draft.kind, draft.category) and not (_state(context).get("editing") and draft.compound):
        return await _ask_compound(update, context)
    if _state(context).get("editing"):
        return await _summary(update, context)
    return await _ask_photos(update, context)


async def _ask_compound(update: Update, context: XContext) -> str:
    await reply(update, context, context.t("reports.flow.ask_compound"))
    return COMPOUND


@_step()
async def compound_text(update: Update, context: XContext) -> str:
    text = (update.effective_message.text or "").strip()
    if not text or len(text) > COMPOUND_LIMIT:
        await reply(update, context, context.t("reports.flow.compound_too_long", limit=COMPOUND_LIMIT))
        return COMPOUND
    draft = _draft(context)
    draft.compound = text
    _save(context, draft)
    await reply(
        update,
        context,
        context.t("reports.flow.ask_property"),
        reply_markup=_inline([[(context.t("reports.flow.skip"), cb("rp", "sk", "prop"))]]),
    )
    return PROPERTY


@_step()
async def property_text(update: Update, context: XContext) -> str | int:
    text = (update.effective_message.text or "").strip()
    if not text or len(text) > COMPOUND_LIMIT:
        await reply(update, context, context.t("reports.flow.compound_too_long", limit=COMPOUND_LIMIT))
        return PROPERTY
    draft = _draft(context)
    draft.property_company = text
    _save(context, draft)
    return await _after_compound(update, context)


@_step()
async def property_skipped(update: Update, context: XContext) -> str | int:
    await _answer(update)
    draft = _draft(context)
    draft.property_company = None
    _save(context, draft)
    return await _after_compound(update, context)


async def _after_compound(update: Update, context: XContext) -> str | int:
    if _state(context).get("editing"):
        return await _summary(update, context)
    return await _ask_photos(update, context)


@_step()
async def need_text(update: Update, context: XContext) -> None:
    await reply(update, context, context.t("reports.flow.need_text"))


# -- photos ---------------------------------------------------------------------------------------


def _photos_keyboard(context: XContext, draft: ReportDraft) -> InlineKeyboardMarkup:
    label = context.t("reports.flow.done" if draft.photos else "reports.flow.skip")
    return _inline([[(label, cb("rp", "ph", "done"))]])


async def _ask_photos(update: Update, context: XContext) -> str:
    draft = _draft(context)
    limit = context.core.config.reports.max_photos
    if draft.photos:  # e.g. a photo with its caption as the description
        text = context.t("reports.flow.photo_added", count=len(draft.photos), limit=limit)
    else:
        text = context.t("reports.flow.ask_photos", limit=limit)
    await reply(
        update,
        context,
        text,
        reply_markup=_photos_keyboard(context, draft),
    )
    return PHOTOS


@_step()
async def photo_received(update: Update, context: XContext) -> str | int:
    service = _service(context)
    draft = _draft(context)
    refusal = service.can_add_photo(draft)
    if refusal is not None:
        await reply(update, context, _refusal(context, refusal))
        return await _after_photos(update, context)
    draft.photos.append(update.effective_message.photo[-1].file_id)
    _save(context, draft)
    await _photo_caption(update, context, draft)
    limit = context.core.config.reports.max_photos
    if len(draft.photos) >= limit:
        return await _after_photos(update, context)
    await reply(
        update,
        context,
        context.t("reports.flow.photo_added", count=len(draft.photos), limit=limit),
        reply_markup=_photos_keyboard(context, draft),
    )
    return PHOTOS


async def _photo_caption(update: Update, context: XContext, draft: ReportDraft) -> None:
    """A caption at the photo step: the description when there is none yet; else say it was not added."""
    caption = (update.effective_message.caption or "").strip()
    if not caption:
        return
    if draft.description:
        await reply(update, context, context.t("reports.flow.caption_not_added"))
        return
    refused = _service(context).check_description(caption)
    if refused is not None:
        _state(context)["caption_refused"] = True
        await reply(update, context, context.t("reports.flow.caption_refused", **refused.values))
        return
    draft.description = caption
    _save(context, draft)
    await reply(update, context, context.t("reports.flow.caption_as_description"))


@_step()
async def photos_done(update: Update, context: XContext) -> str | int:
    await _answer(update)
    return await _after_photos(update, context)


@_step()
async def photo_other(update: Update, context: XContext) -> str:
    await reply(
        update,
        context,
        context.t("reports.flow.need_photo"),
        reply_markup=_photos_keyboard(context, _draft(context)),
    )
    return PHOTOS


async def _after_photos(update: Update, context: XContext) -> str | int:
    if _state(context).get("editing"):
        return await _summary(update, context)
    return await _ask_location(update, context)


# -- location -------------------------------------------------------------------------------------


def _location_keyboard(context: XContext, *, skip: bool) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(context.t("reports.flow.share_location"), request_location=True)]]
    if skip:
        rows.append([KeyboardButton(context.t("reports.flow.skip"))])
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


async def _ask_location(update: Update, context: XContext) -> str:
    draft = _draft(context)
    optional = draft.kind == rc.GRIEVANCE
    key = "reports.flow.ask_location_optional" if optional else "reports.flow.ask_location"
    # A hazard needs a place: only what is allowed is offered (share the location or type a place).
    await reply(update, context, context.t(key), reply_markup=_location_keyboard(context, skip=optional))
    return LOCATION


async def _take_location(update: Update, context: XContext) -> bool:
    """Store a shared location (or venue) in the draft; False (and a message) when refused."""
    message = update.effective_message
    location = message.location
    refusal = _service(context).check_location(location.latitude, location.longitude)
    if refusal is not None:
        await reply(update, context, _refusal(context, refusal))
        return False
    draft = _draft(context)
    draft.lat, draft.lon = location.latitude, location.longitude
    if message.venue is not None:
        draft.place_text = (
            " ".join(p for p in (message.venue.title, message.venue.address) if p)[:200] or None
        )
    _save(context, draft)
    await reply(update, context, context.t("reports.flow.location_saved"), reply_markup=main_menu(context))
    return True


async def _take_place(update: Update, context: XContext) -> bool:
    text = (update.effective_message.text or "").strip()
    refusal = _service(context).check_place(text)
    if refusal is not None:
        await reply(update, context, _refusal(context, refusal))
        return False
    draft = _draft(context)
    draft.place_text = text
    _save(context, draft)
    await reply(
        update, context, context.t("reports.flow.place_saved", place=text), reply_markup=main_menu(context)
    )
    return True


@_step()
async def location_received(update: Update, context: XContext) -> str | int:
    if not await _take_location(update, context):
        return LOCATION
    return await _after_location(update, context)


@_step()
async def place_received(update: Update, context: XContext) -> str | int:
    if not await _take_place(update, context):
        return LOCATION
    return await _after_location(update, context)


@_step()
async def location_skipped(update: Update, context: XContext) -> str | int:
    draft = _draft(context)
    if draft.kind == rc.HAZARD and not draft.has_location and not draft.place_text:
        await reply(update, context, _refusal(context, Refusal("needs_location")))
        return LOCATION
    await reply(update, context, context.t("reports.flow.location_skipped"), reply_markup=main_menu(context))
    return await _after_location(update, context)


@_step()
async def location_other(update: Update, context: XContext) -> str:
    await reply(update, context, context.t("reports.flow.need_location"))
    return LOCATION


async def _after_location(update: Update, context: XContext) -> str | int:
    draft = _draft(context)
    if draft.kind == rc.GRIEVANCE and not _state(context).get("editing"):
        await reply(
            update,
            context,
            context.t("reports.flow.ask_anonymous"),
            reply_markup=_inline(
                [
                    [
                        (context.t("reports.flow.named"), cb("rp", "an", 0)),
                        (context.t("reports.flow.anonymous"), cb("rp", "an", 1)),
                    ]
                ]
            ),
        )
        return ANONYMITY
    return await _before_summary(update, context)


# -- quick path: the location after the photo -----------------------------------------------------


async def _quick_gone(update: Update, context: XContext) -> int | None:
    """The photo waited longer than QUICK_WINDOW: drop its draft, say so once, leave the flow."""
    if _quick_fresh(_state(context), context.core.clock.now()):
        return None
    _drop(context)
    await reply(
        update,
        context,
        context.t("reports.flow.quick_expired", minutes=_quick_minutes()),
        reply_markup=main_menu(context),
    )
    return ConversationHandler.END


@_step(category=False)
async def quick_location(update: Update, context: XContext) -> str | int:
    if (gone := await _quick_gone(update, context)) is not None:
        return gone
    if not await _take_location(update, context):
        return QUICK_LOCATION
    await _ask_category(update, context, _draft(context), edit=False)
    return CATEGORY


@_step(category=False)
async def quick_place(update: Update, context: XContext) -> str | int:
    if (gone := await _quick_gone(update, context)) is not None:
        return gone
    if not await _take_place(update, context):
        return QUICK_LOCATION
    await _ask_category(update, context, _draft(context), edit=False)
    return CATEGORY


async def quick_cancel(update: Update, context: XContext) -> int:
    """The ❌ 取消 button under the photo's prompt: drop just this draft."""
    _drop(context)
    await reply(update, context, context.t("cancel.done"), reply_markup=main_menu(context))
    return ConversationHandler.END


@_step(category=False)
async def quick_photo_more(update: Update, context: XContext) -> str | int:
    """More photos before the location (an album arrives as one update per photo)."""
    if not _quick_fresh(_state(context), context.core.clock.now()):
        return await quick_photo(update, context)  # a new photo long after the old one: start afresh
    message = update.effective_message
    draft = _draft(context)
    refusal = _service(context).can_add_photo(draft)
    if refusal is not None:
        await reply(update, context, _refusal(context, refusal))
        return QUICK_LOCATION
    draft.photos.append(message.photo[-1].file_id)
    _save(context, draft)
    if message.media_group_id is None:
        await reply(
            update,
            context,
            context.t("reports.flow.quick_photo", minutes=_quick_minutes()),
            reply_markup=_quick_keyboard(context),
        )
    return QUICK_LOCATION


@_step(category=False)
async def quick_other(update: Update, context: XContext) -> str | int:
    if (gone := await _quick_gone(update, context)) is not None:
        return gone
    await reply(
        update,
        context,
        context.t("reports.flow.need_location"),
        reply_markup=_quick_keyboard(context),
    )
    return QUICK_LOCATION


# -- anonymity ------------------------------------------------------------------------------------


@_step()
async def anonymity_chosen(update: Update, context: XContext) -> str | int:
    query = update.callback_query
    value = query.data.rsplit(":", 1)[-1]
    draft = _draft(context)
    if value not in ("0", "1") or draft.kind != rc.GRIEVANCE:
        await _stale(update, context)
        return ANONYMITY
    draft.anonymous = value == "1"
    _save(context, draft)
    await query.answer()
    await query.edit_message_text(
        context.t("reports.flow.summary_anonymous" if draft.anonymous else "reports.flow.summary_named")
    )
    return await _before_summary(update, context)


# -- duplicate prompt -----------------------------------------------------------------------------


async def _before_summary(update: Update, context: XContext) -> str | int:
    """A hazard near an open one of the same category: ask "是否与 H-0042 相同?" once."""
    state = _state(context)
    draft = _draft(context)
    service = _service(context)
    if not state.get("dup_checked"):
        # The courier's own reports are left out: another courier's open hazard nearby is still offered.
        candidate = await service.find_duplicate(draft, exclude_reporter=update.effective_user.id)
        state["dup_checked"] = True
        state.pop("dup", None)
        if candidate is not None:
            assert draft.lat is not None and draft.lon is not None
            assert candidate.lat is not None and candidate.lon is not None
            distance = math.ceil(haversine_m(draft.lat, draft.lon, candidate.lat, candidate.lon))
            state["dup"] = candidate.id
            await reply(
                update,
                context,
                context.t(
                    "reports.flow.duplicate_ask",
                    distance=max(distance, 1),
                    ref=candidate.ref,
                    category=rc.category_label(
                        context.core.catalog, context.lang, candidate.kind, candidate.category
                    ),
                    age=service.age(candidate.created_at, context.lang),
                ),
                reply_markup=_inline(
                    [
                        [
                            (context.t("reports.flow.duplicate_yes"), cb("rp", "dup", "y")),
                            (context.t("reports.flow.duplicate_no"), cb("rp", "dup", "n")),
                        ]
                    ]
                ),
            )
            return DUPLICATE
    return await _summary(update, context)


@_step()
async def duplicate_answer(update: Update, context: XContext) -> str | int:
    query = update.callback_query
    answer = query.data.rsplit(":", 1)[-1]
    state = _state(context)
    candidate_id = state.get("dup")
    if answer not in ("y", "n") or candidate_id is None:
        await _stale(update, context)
        return DUPLICATE
    await query.answer()
    await query.edit_message_reply_markup(None)
    if answer == "n":
        return await _summary(update, context)
    outcome = await _service(context).add_supporter(int(candidate_id), update.effective_user.id)
    if outcome.changed and outcome.report is not None:
        _drop(context)
        await reply(
            update,
            context,
            context.t("reports.flow.supported", ref=outcome.report.ref),
            reply_markup=main_menu(context),
        )
        return ConversationHandler.END
    assert outcome.refusal is not None
    await reply(update, context, _refusal(context, outcome.refusal))
    if outcome.refusal.code in ("already_supporter", "own_report"):
        _drop(context)
        return ConversationHandler.END
    return await _summary(update, context)  # closed meanwhile: file it as a new one


# -- summary, edit, submit ------------------------------------------------------------------------


def _summary_text(context: XContext, draft: ReportDraft) -> str:
    t = context.t
    catalog, lang = context.core.catalog, context.lang
    assert draft.kind is not None and draft.category is not None
    lines = [
        t("reports.flow.summary_title"),
        "",
        t(
            "reports.flow.summary_kind",
            kind=rc.kind_label(catalog, lang, draft.kind),
            category=rc.category_label(catalog, lang, draft.kind, draft.category),
        ),
    ]
    if draft.description:
        lines.append(t("reports.flow.summary_description", text=draft.description))
    elif not draft.voice_file_id:
        lines.append(t("reports.flow.summary_no_description"))
        if _state(context).get("caption_refused"):
            limit = context.core.config.reports.description_limit
            lines.append(t("reports.flow.summary_add_description", limit=limit))
    if draft.voice_file_id:
        lines.append(t("reports.flow.summary_voice"))
    if draft.photos:
        lines.append(t("reports.flow.summary_photos", count=len(draft.photos)))
    if draft.compound:
        lines.append(t("reports.flow.summary_compound", compound=draft.compound))
    if draft.property_company:
        lines.append(t("reports.flow.summary_property", company=draft.property_company))
    if draft.place_text:
        lines.append(t("reports.flow.summary_place", place=draft.place_text))
    if draft.lat is not None and draft.lon is not None:
        lines.append(t("reports.flow.summary_coords", lat=f"{draft.lat:.5f}", lon=f"{draft.lon:.5f}"))
    if draft.kind == rc.GRIEVANCE:
        lines.append(t("reports.flow.summary_anonymous" if draft.anonymous else "reports.flow.summary_named"))
    return "\n".join(lines)


def _summary_keyboard(context: XContext) -> InlineKeyboardMarkup:
    return _inline(
        [
            [
                (context.t("reports.flow.submit"), cb("rp", "sum", "ok")),
                (context.t("reports.flow.edit"), cb("rp", "sum", "edit")),
                (context.t("reports.flow.cancel"), cb("rp", "sum", "x")),
            ]
        ]
    )


async def _summary(update: Update, context: XContext) -> str | int:
    draft = _draft(context)
    _state(context)["editing"] = False
    problems = _service(context).problems(draft)
    # A step left out (e.g. the kind changed while editing) is asked for instead of the summary.
    for problem in problems:
        if problem.code == "bad_category":
            await _ask_category(update, context, draft, edit=False)
            _state(context)["editing"] = True
            return CATEGORY
        if problem.code == "empty_description":
            _state(context)["editing"] = True
            return await _ask_description(update, context)
        if problem.code == "needs_location":
            _state(context)["editing"] = True
            return await _ask_location(update, context)
    await reply(update, context, _summary_text(context, draft), reply_markup=_summary_keyboard(context))
    return SUMMARY


async def summary_action(update: Update, context: XContext) -> str | int:
    query = update.callback_query
    action = query.data.rsplit(":", 1)[-1]
    if action == "x":
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(None)
        return await cancel_conversation(update, context, DRAFT)
    if not _draft_ready(context, kind=True, category=True):
        return await _expired(update, context)
    if action == "edit":
        await query.answer()
        return await _ask_edit(update, context)
    if action != "ok":
        await _stale(update, context)
        return SUMMARY
    draft = _draft(context)
    try:
        report = await _service(context).submit(update.effective_user.id, draft)
    except ReportRefused as exc:
        await query.answer()
        await reply(update, context, _refusal(context, exc.refusal))
        return SUMMARY
    await query.answer()
    with contextlib.suppress(BadRequest):
        await query.edit_message_reply_markup(None)
    _drop(context)
    await reply(
        update, context, context.t("reports.flow.submitted", ref=report.ref), reply_markup=main_menu(context)
    )
    return ConversationHandler.END


async def _ask_edit(update: Update, context: XContext, *, fresh: bool = False) -> str:
    draft = _draft(context)
    fields = ["category", "description", "photos", "location"]
    if draft.kind == rc.GRIEVANCE:
        fields.append("anonymous")
    if draft.kind is not None and draft.category is not None and rc.is_access(draft.kind, draft.category):
        fields.append("compound")
    buttons = [(context.t(f"reports.flow.edit_{f}"), cb("rp", "ed", f)) for f in fields]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([(context.t("reports.flow.back"), cb("rp", "ed", "back"))])
    query = update.callback_query
    if query is not None and not fresh:
        await query.edit_message_text(context.t("reports.flow.ask_edit"), reply_markup=_inline(rows))
    else:
        await reply(update, context, context.t("reports.flow.ask_edit"), reply_markup=_inline(rows))
    return EDIT


@_step()
async def edit_chosen(update: Update, context: XContext) -> str | int:
    query = update.callback_query
    field = query.data.rsplit(":", 1)[-1]
    await query.answer()
    state = _state(context)
    draft = _draft(context)
    if field == "back":
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(None)
        return await _summary(update, context)
    state["editing"] = True
    state["quick"] = False
    with contextlib.suppress(BadRequest):
        await query.edit_message_reply_markup(None)
    if field == "category":
        await _ask_category(update, context, draft, edit=False)
        return CATEGORY
    if field == "description":
        return await _ask_description(update, context)
    if field == "photos":
        draft.photos = []
        _save(context, draft)
        return await _ask_photos(update, context)
    if field == "location":
        draft.lat = draft.lon = None
        draft.place_text = None
        state["dup_checked"] = False
        _save(context, draft)
        return await _ask_location(update, context)
    if field == "anonymous" and draft.kind == rc.GRIEVANCE:
        state["editing"] = False
        return await _after_location(update, context)
    if field == "compound":
        return await _ask_compound(update, context)
    state["editing"] = False
    await _stale(update, context)
    return await _summary(update, context)


@_step(kind=False)
async def press_button(update: Update, context: XContext) -> None:
    """Typing where a button was expected: say so, keep the draft and the state."""
    await reply(update, context, context.t("reports.flow.press_button"))


@_step()
async def summary_nudge(update: Update, context: XContext) -> str | int:
    """Typing or a photo at the summary: the card may be far up, so send it again with its buttons."""
    await reply(update, context, context.t("reports.flow.summary_pending"))
    return await _summary(update, context)


@_step()
async def edit_nudge(update: Update, context: XContext) -> str:
    """Typing while "要修改哪一项？" waits: send the choice again."""
    await reply(update, context, context.t("reports.flow.press_button_below"))
    return await _ask_edit(update, context, fresh=True)


def _pending_draft(context: XContext) -> ReportDraft | None:
    """The courier's unsubmitted draft worth mentioning (kind chosen; not a photo that waited too long)."""
    if not _draft_ready(context, kind=True, category=False):
        return None
    draft, state = _draft(context), _state(context)
    waiting = state.get("quick") and not draft.has_location and not draft.place_text
    if waiting and not _quick_fresh(state, context.core.clock.now()):
        return None
    return draft


async def open_draft(update: Update, context: XContext) -> str | int:
    """The 📝 打开草稿 button under /myreports: show the unsubmitted draft where it stands."""
    query = update.callback_query
    draft = _pending_draft(context)
    if draft is None:
        await query.answer(stale_button_text(context), show_alert=True)
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(None)
        return ConversationHandler.END
    await query.answer()
    state = _state(context)
    if state.get("quick") and not draft.has_location and not draft.place_text:
        await reply(
            update,
            context,
            context.t("reports.flow.quick_photo", minutes=_quick_minutes()),
            reply_markup=_quick_keyboard(context),
        )
        return QUICK_LOCATION
    return await _summary(update, context)


# -- moderator card buttons -----------------------------------------------------------------------


def _parse(data: str | None, parts: int) -> list[str] | None:
    pieces = (data or "").split(":")
    return pieces if len(pieces) == parts else None


async def card_button(update: Update, context: XContext) -> None:
    """受理 / 处理中 / 已解决 / 驳回 / 标记重复 on a card: re-read the report, re-check the role."""
    query = update.callback_query
    pieces = _parse(query.data, 4)
    report_id = _parse_id(pieces[2]) if pieces is not None else None
    if pieces is None or report_id is None or pieces[3] not in MODERATOR_ACTIONS:
        await _stale(update, context)
        return
    action = pieces[3]
    service = _service(context)
    report = await service.get(report_id)
    if report is None:
        await _stale(update, context)
        return
    if not await require(update, context, Perm.REPORTS_HANDLE, report.area or ""):
        return
    message = query.message
    card_ref = (message.chat.id, message.message_id) if isinstance(message, Message) else None
    allowed_from, target = TRANSITIONS[action]
    if report.status not in allowed_from:
        # Someone else was faster (or a second press): show the current state, change nothing.
        code = "already" if report.status == target else "not_allowed"
        await query.answer(
            _refusal(context, Refusal(code, {"ref": report.ref, "status": report.status})), show_alert=True
        )
        await _edit_card(context, card_ref, report)
        return
    if action in NOTE_REQUIRED or action == "duplicate":
        key = "reports.mod.ask_duplicate_ref" if action == "duplicate" else "reports.mod.ask_note"
        status = context.t(f"reports.status.{target}")
        pending = {"report": report.id, "action": action, "card": list(card_ref) if card_ref else None}
        await _send_prompt(update, context, context.t(key, ref=report.ref, status=status), pending)
        await query.answer(context.t("reports.mod.asked"))
        return
    outcome = await service.transition(report.id, action, update.effective_user.id, edited_card=card_ref)
    await _answer_outcome(update, context, outcome, card_ref)


async def _answer_outcome(
    update: Update, context: XContext, outcome: Outcome, card_ref: tuple[int, int] | None
) -> None:
    query = update.callback_query
    report = outcome.report
    if outcome.changed and report is not None:
        text = context.t(
            "reports.mod.changed", ref=report.ref, status=context.t(f"reports.status.{report.status}")
        )
        if query is not None:
            await query.answer(text)
        else:
            await reply(
                update,
                context,
                context.t(
                    "reports.mod.reply_done",
                    ref=report.ref,
                    status=context.t(f"reports.status.{report.status}"),
                ),
            )
    else:
        refusal = outcome.refusal or Refusal("stale")
        if query is not None:
            await query.answer(_refusal(context, refusal), show_alert=True)
        else:
            await reply(update, context, _refusal(context, refusal))
    if report is not None:
        await _edit_card(context, card_ref, report)


async def _edit_card(context: XContext, card_ref: tuple[int, int] | None, report: Any) -> None:
    if card_ref is None:
        return
    params = await _service(context).card(report)
    with contextlib.suppress(BadRequest):  # unchanged, or deleted meanwhile
        await context.bot.edit_message_text(
            params["text"],
            chat_id=card_ref[0],
            message_id=card_ref[1],
            reply_markup=_markup(params["reply_markup"]),
        )


PROMPTS = "rp_prompts"
MAX_PROMPTS = 20


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def _send_prompt(update: Update, context: XContext, text: str, pending: dict[str, Any]) -> None:
    """A ✍️ prompt (or a retry after an error) as ForceReply(selective=True), remembered as pending.

    Selective targets the moderator: the retry replies to their message; the first prompt (after a
    button press) mentions them in a group. Every prompt of one pending action shares its "pid", so a
    reply to the first prompt or to an error answer counts for the same action.
    """
    chat = update.effective_chat
    user = update.effective_user
    message = update.message
    kwargs: dict[str, Any] = {"reply_markup": ForceReply(selective=True)}
    if message is not None:
        kwargs["reply_to_message_id"] = message.message_id
        kwargs["allow_sending_without_reply"] = True
    elif chat.type != "private" and user is not None:
        name = user.full_name or str(user.id)
        kwargs["entities"] = [
            MessageEntity(MessageEntity.TEXT_MENTION, _utf16_len(text) + 1, _utf16_len(name), user=user)
        ]
        text = f"{text}\n{name}"
    sent = await context.bot.send_message(chat.id, text, **kwargs)
    prompts = context.user_data.setdefault(PROMPTS, {})
    entry = dict(pending)
    entry["chat"] = sent.chat_id
    entry["at"] = context.core.clock.now().isoformat()
    entry.setdefault("pid", f"{sent.chat_id}:{sent.message_id}")
    prompts[f"{sent.chat_id}:{sent.message_id}"] = entry
    for old in list(prompts)[:-MAX_PROMPTS]:
        prompts.pop(old, None)


def _user_prompts(app: Application, message: Message) -> dict[str, Any]:
    user = message.from_user
    data = app.user_data.get(user.id) if user is not None else None
    prompts = data.get(PROMPTS) if isinstance(data, dict) else None
    return prompts if isinstance(prompts, dict) else {}


PLAIN_ANSWER_WINDOW = dt.timedelta(minutes=10)


def _pending_for(
    prompts: dict[str, Any], message: Message, now: dt.datetime
) -> tuple[str, dict[str, Any]] | None:
    """The pending action a message answers: a reply to one of its prompts (or error answers), or in
    a private chat plain text for the latest pending action there, if it was asked for within
    PLAIN_ANSWER_WINDOW (later text is something else: a search, another flow). Any command in the
    private chat drops what is pending (core.track, through cancel_keys)."""
    target = message.reply_to_message
    if target is not None:
        key = f"{target.chat_id}:{target.message_id}"
        if key in prompts:
            return key, prompts[key]
    if message.chat.type == "private":
        for key in reversed(list(prompts)):
            entry = prompts[key]
            if isinstance(entry, dict) and entry.get("chat") == message.chat_id:
                try:
                    asked = dt.datetime.fromisoformat(str(entry.get("at")))
                except ValueError:
                    return None
                return (key, entry) if now - asked <= PLAIN_ANSWER_WINDOW else None
    return None


class _PromptReply(filters.MessageFilter):
    """A text answer to a ✍️ prompt: a reply to one of the sender's prompts or error answers, a reply to
    any ✍️ prompt of the bot (answered as stale if it is not theirs), or in a private chat plain text
    while the sender has a pending prompt there (reads the app's user_data: a filter sees no context)."""

    def __init__(self, app: Application) -> None:
        super().__init__(name="PromptReply")
        self._app = app

    def filter(self, message: Message) -> bool:
        if (
            _pending_for(_user_prompts(self._app, message), message, self._app.bot_data["core"].clock.now())
            is not None
        ):
            return True
        target = message.reply_to_message
        return bool(
            target is not None
            and target.from_user is not None
            and target.from_user.is_bot
            and (target.text or "").startswith("✍️")
        )


def _drop_pending(prompts: dict[str, Any], pid: Any) -> None:
    for key in [k for k, v in prompts.items() if isinstance(v, dict) and v.get("pid") == pid]:
        prompts.pop(key, None)


async def prompt_reply(update: Update, context: XContext) -> None:
    """The moderator's note (resolve, reject) or the duplicate's reference, answering the prompt."""
    message = update.effective_message
    prompts = context.user_data.setdefault(PROMPTS, {})
    found = _pending_for(prompts, message, context.core.clock.now())
    if found is None:
        await reply(update, context, context.t("reports.mod.prompt_stale"))
        return
    key, prompt = found
    pid = prompt.get("pid", key)
    service = _service(context)
    report = await service.get(int(prompt["report"]))
    if report is None:
        _drop_pending(prompts, pid)
        await reply(update, context, context.t("reports.mod.prompt_stale"))
        return
    if not await require(update, context, Perm.REPORTS_HANDLE, report.area or ""):
        return
    card = prompt.get("card")
    card_ref = (int(card[0]), int(card[1])) if card else None
    action = prompt["action"]
    text = (message.text or "").strip()
    outcome = await service.transition(
        report.id,
        action,
        update.effective_user.id,
        note=None if action == "duplicate" else text,
        duplicate_ref=text if action == "duplicate" else None,
        edited_card=card_ref,
    )
    retry = outcome.refusal is not None and outcome.refusal.code in (
        "note_required",
        "note_too_long",
        "duplicate_unknown",
        "duplicate_self",
        "duplicate_needs_ref",
    )
    if retry:
        # The error is itself a prompt: a reply to it (or, privately, plain text) is the retry.
        await _send_prompt(update, context, _refusal(context, outcome.refusal), {**prompt, "pid": pid})
        return
    _drop_pending(prompts, pid)
    await _answer_outcome(update, context, outcome, card_ref)


# -- the reporter's answer to 已解决了吗? --------------------------------------------------------


async def feedback_button(update: Update, context: XContext) -> None:
    query = update.callback_query
    pieces = _parse(query.data, 4)
    report_id = _parse_id(pieces[2]) if pieces is not None else None
    if pieces is None or report_id is None or pieces[3] not in ("y", "n"):
        await _stale(update, context)
        return
    outcome = await _service(context).feedback(report_id, update.effective_user.id, pieces[3] == "y")
    if not outcome.changed or outcome.report is None:
        await query.answer(_refusal(context, outcome.refusal or Refusal("stale")), show_alert=True)
        return
    await query.answer()
    if pieces[3] == "y":
        extra = context.t("reports.mod.feedback_thanks")
    else:
        extra = context.t("reports.mod.feedback_reopened", ref=outcome.report.ref)
    text = (query.message.text if isinstance(query.message, Message) else "") or ""
    with contextlib.suppress(BadRequest):
        await query.edit_message_text(f"{text}\n\n{extra}".strip())


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
    params = await service.card(report)
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
                place = f"{spot.compound or unknown}（{spot.property_company or unknown}）"
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


# -- jobs and hooks -------------------------------------------------------------------------------


async def _startup(core: Core, app: Application) -> None:
    """Raise unacknowledged reports once a day: a repeating job, and at once when a fake clock jumps."""
    service = core.service(ReportService)

    async def escalate(_context: Any = None) -> None:
        if not core.db.is_open:
            return
        try:
            await service.escalate_due()
        except Exception:
            if core.db.is_open:  # not merely stopped under our feet
                log.exception("reports: escalation failed")

    if app.job_queue is not None:
        app.job_queue.run_repeating(
            escalate, interval=ESCALATION_INTERVAL_SECONDS, first=5, name="reports-escalate"
        )
    tasks: set[asyncio.Task[None]] = set()

    def on_jump() -> None:
        try:
            task = asyncio.get_running_loop().create_task(escalate())
        except RuntimeError:
            return
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    core.clock.subscribe(on_jump)


def register(app: Application) -> None:
    core: Core = app.bot_data["core"]
    cancel_keys(app).add(PROMPTS)  # /cancel also drops a moderator's pending note
    service = core.service(ReportService)
    if core.outbox is not None:
        service.install(core.outbox)
    startup_hooks(app).append(_startup)
    deep_links(app)["myreports"] = my_reports_link
    # Only new messages: editing an earlier message (a description, a caption, /report) must neither
    # answer the current step nor restart the flow.
    fresh = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE & fresh
    menu = _menu_texts(core)
    report_menu = filters.Text(sorted(core.catalog.all_languages("menu.report")))
    text_in = filters.TEXT & ~filters.COMMAND & ~menu & fresh
    # Anything else typed or sent in a step gets a clear answer and keeps the draft. A shared location
    # outside the location steps is left to other features (e.g. the 📍 nearest-stations button).
    other_in = ~filters.COMMAND & ~menu & ~filters.StatusUpdate.ALL & ~filters.LOCATION & fresh
    location_in = filters.LOCATION & filters.UpdateType.MESSAGE
    skip_words = filters.Text(sorted(core.catalog.all_languages("reports.flow.skip")))
    cancel_words = filters.Text(sorted(core.catalog.all_languages("reports.flow.cancel")))

    # Moderator and reporter buttons first: they are not part of any conversation.
    app.add_handler(CallbackQueryHandler(card_button, pattern=rf"^{CB_STATUS}:"))
    app.add_handler(CallbackQueryHandler(feedback_button, pattern=rf"^{CB_FEEDBACK}:"))
    app.add_handler(CallbackQueryHandler(list_button, pattern=r"^rp:ls:"))
    app.add_handler(CallbackQueryHandler(my_report_button, pattern=r"^rp:my:"))
    app.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND & ~menu & fresh & _PromptReply(app), prompt_reply)
    )

    restart = [
        CommandHandler("report", report_command, private),
        CommandHandler("start", report_deep_link, private & filters.Regex(r"^/start report")),
        MessageHandler(private & report_menu, report_command),
    ]
    buttons_expected = MessageHandler(private & other_in, press_button)
    conversation = ConversationHandler(
        name="reports",
        persistent=True,
        # Not re-entrant through the entry points: a photo inside the flow must not restart it
        # (the quick path). /report, the menu button and the deep link restart it as fallbacks.
        allow_reentry=False,
        entry_points=[
            *restart,
            MessageHandler(private & filters.PHOTO, quick_photo),
            CallbackQueryHandler(open_draft, pattern=r"^rp:dr:open$"),
        ],
        states={
            KIND: [CallbackQueryHandler(kind_chosen, pattern=r"^rp:k:"), buttons_expected],
            CATEGORY: [CallbackQueryHandler(category_chosen, pattern=r"^rp:c:"), buttons_expected],
            DESCRIPTION: [
                MessageHandler(private & text_in, description_text),
                MessageHandler(private & filters.VOICE, description_voice),
                MessageHandler(private & filters.PHOTO, description_photo),
                MessageHandler(private & other_in, description_other),
            ],
            COMPOUND: [
                MessageHandler(private & text_in, compound_text),
                MessageHandler(private & other_in, need_text),
            ],
            PROPERTY: [
                CallbackQueryHandler(property_skipped, pattern=r"^rp:sk:prop$"),
                MessageHandler(private & text_in, property_text),
                MessageHandler(private & other_in, need_text),
            ],
            PHOTOS: [
                MessageHandler(private & filters.PHOTO, photo_received),
                CallbackQueryHandler(photos_done, pattern=r"^rp:ph:done$"),
                MessageHandler(private & other_in, photo_other),
            ],
            LOCATION: [
                MessageHandler(private & location_in, location_received),
                MessageHandler(private & skip_words, location_skipped),
                MessageHandler(private & text_in, place_received),
                MessageHandler(private & other_in, location_other),
            ],
            QUICK_LOCATION: [
                # Only while the photo is fresh: later a location goes to 📍 nearest stations.
                MessageHandler(private & location_in & _QuickPending(app, core), quick_location),
                MessageHandler(private & filters.PHOTO, quick_photo_more),
                MessageHandler(private & cancel_words, quick_cancel),
                MessageHandler(private & text_in & ~skip_words, quick_place),
                MessageHandler(private & other_in, quick_other),
            ],
            ANONYMITY: [CallbackQueryHandler(anonymity_chosen, pattern=r"^rp:an:"), buttons_expected],
            DUPLICATE: [CallbackQueryHandler(duplicate_answer, pattern=r"^rp:dup:"), buttons_expected],
            SUMMARY: [
                CallbackQueryHandler(summary_action, pattern=r"^rp:sum:"),
                MessageHandler(private & other_in, summary_nudge),
            ],
            EDIT: [
                CallbackQueryHandler(edit_chosen, pattern=r"^rp:ed:"),
                CallbackQueryHandler(summary_action, pattern=r"^rp:sum:"),
                MessageHandler(private & other_in, edit_nudge),
            ],
        },
        fallbacks=[
            cancel_fallback(DRAFT),
            *restart,
            CallbackQueryHandler(open_draft, pattern=r"^rp:dr:open$"),
            CallbackQueryHandler(summary_action, pattern=r"^rp:sum:x$"),
            CallbackQueryHandler(_stale, pattern=FLOW_PATTERN),
        ],
    )
    app.add_handler(conversation)
    # Outside the flow: /report in groups, /myreports, /reports, and old flow buttons.
    app.add_handler(CommandHandler("report", report_in_group, filters.ChatType.GROUPS))
    app.add_handler(CommandHandler("myreports", my_reports))
    app.add_handler(CommandHandler("reports", reports_command))
    app.add_handler(CallbackQueryHandler(_stale, pattern=FLOW_PATTERN))
