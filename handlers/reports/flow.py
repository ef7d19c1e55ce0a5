"""The /report conversation's machinery: its states, the draft in user_data, the step guard, and the
questions it asks (each `_ask_*` sends one and returns the state that waits for the answer; the
`_after_*` steps pick the next one; `_summary` shows the draft with 提交 / 修改 / 取消).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import InlineKeyboardMarkup, KeyboardButton, Message, ReplyKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, ConversationHandler, filters

from bot.core.app import XContext
from bot.core.container import Core
from bot.kit.geo import LatLon, distance_m
from bot.reports import categories as rc
from bot.reports.service import Refusal, ReportDraft
from handlers.common import cb, draft_state, drop_draft, main_menu, reply, stale_button_text
from handlers.reports.common import _inline, _refusal, _service

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
RESUME = "resume"  # "继续上次的反映？": an idle draft met a new /report
# A draft untouched this long stops catching what the courier sends (text goes to other features
# again: a station search, the wall); it is kept, and the next /report offers to continue it.
IDLE_AFTER = dt.timedelta(minutes=30)
# The quick path (a photo, then a location) waits this long for the location (measured with core.clock);
# after that a shared location belongs to other features again (📍 nearest stations) and the photo's
# draft is dropped.
QUICK_WINDOW = dt.timedelta(minutes=10)
# Callback prefixes that only mean something inside the filing conversation.
FLOW_PATTERN = r"^rp:(k|c|ph|sk|an|dup|sum|ed):"


# -- the draft in user_data -----------------------------------------------------------------------


def _state(context: XContext) -> dict[str, Any]:
    return draft_state(context, DRAFT)


def _draft(context: XContext) -> ReportDraft:
    return ReportDraft.from_dict(_state(context).get("draft"))


def _save(context: XContext, draft: ReportDraft, **extra: Any) -> None:
    state = _state(context)
    state["draft"] = draft.to_dict()
    state.update(extra)
    state["at"] = context.core.clock.now().isoformat()


def _raw_state(user_data: Any) -> Any:
    """The draft's state in user_data without creating it (None when there is none)."""
    drafts = user_data.get("drafts") if isinstance(user_data, dict) else None
    return drafts.get(DRAFT) if isinstance(drafts, dict) else None


def _idle(state: Any, now: dt.datetime) -> bool:
    """A draft nobody touched for IDLE_AFTER (or, from before that was recorded, with no time)."""
    if not isinstance(state, dict) or not isinstance(state.get("draft"), dict):
        return False  # no draft: the step guard answers "expired" as before
    try:
        at = dt.datetime.fromisoformat(str(state.get("at")))
    except ValueError:
        return True
    return at.tzinfo is None or now - at > IDLE_AFTER


class _Active(filters.MessageFilter):
    """The sender's draft is in use: touched within IDLE_AFTER. Messages to an idle draft are left to
    the other features (reads the app's user_data: a filter sees no context)."""

    def __init__(self, app: Application, core: Core) -> None:
        super().__init__(name="ActiveDraft")
        self._app, self._core = app, core

    def filter(self, message: Message) -> bool:
        user = message.from_user
        data = self._app.user_data.get(user.id) if user is not None else None
        return not _idle(_raw_state(data), self._core.clock.now())


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
            _state(context)["at"] = context.core.clock.now().isoformat()
            result = await fn(update, context)
            state = _raw_state(context.user_data)
            if isinstance(result, str) and isinstance(state, dict):
                state["step"] = result  # where a resumed draft picks up
            return result

        return guarded

    return wrap


# -- entry ----------------------------------------------------------------------------------------


async def _begin(
    update: Update, context: XContext, *, origin_chat_id: int | None, fresh: bool = False
) -> str | int:
    """A new /report: a fresh draft, or, when a kept draft has been idle, "继续上次的反映？" first
    (`fresh`: the courier chose 重新开始)."""
    service = _service(context)
    remaining = await service.remaining_today(update.effective_user.id)
    if remaining <= 0:
        _drop(context)
        limit = context.core.config.reports.daily_limit
        await reply(update, context, _refusal(context, Refusal("daily_limit", {"limit": limit})))
        return ConversationHandler.END
    if not fresh and _pending_draft(context) is not None and _idle(_state(context), context.core.clock.now()):
        return await _offer_resume(update, context, origin_chat_id)
    _drop(context)
    _save(context, ReportDraft(origin_chat_id=origin_chat_id), quick=False, editing=False, step=KIND)
    return await _ask_kind(update, context, remaining)


async def _ask_kind(update: Update, context: XContext, remaining: int) -> str:
    kinds = [
        (rc.kind_label(context.core.catalog, context.lang, kind), cb("rp", "k", kind)) for kind in rc.KINDS
    ]
    keyboard = _inline([kinds, [(context.t("reports.flow.cancel"), cb("rp", "sum", "x"))]])
    await reply(
        update, context, context.t("reports.flow.ask_kind", remaining=remaining), reply_markup=keyboard
    )
    return KIND


def _draft_label(context: XContext, draft: ReportDraft) -> str:
    """What an unsubmitted draft is about, in a few words: 隐患随手拍 · 道路破损 · 文三路有个大坑…"""
    catalog, lang = context.core.catalog, context.lang
    parts = [rc.kind_label(catalog, lang, draft.kind)] if draft.kind else []
    if draft.kind and draft.category and rc.category(draft.kind, draft.category) is not None:
        parts.append(rc.category_label(catalog, lang, draft.kind, draft.category))
    if draft.description:
        text = draft.description.strip()
        parts.append(text if len(text) <= 20 else text[:20] + "…")
    return " · ".join(parts)


async def _offer_resume(update: Update, context: XContext, origin_chat_id: int | None) -> str:
    """继续上次的反映？ with 继续 / 重新开始 (a fresh /report keeps where it came from)."""
    _state(context)["afresh_origin"] = origin_chat_id
    draft = _draft(context)
    keyboard = _inline(
        [
            [
                (context.t("reports.flow.resume_continue"), cb("rp", "dr", "open")),
                (context.t("reports.flow.resume_afresh"), cb("rp", "dr", "new")),
            ]
        ]
    )
    await reply(
        update,
        context,
        context.t("reports.flow.resume_ask", what=_draft_label(context, draft)),
        reply_markup=keyboard,
    )
    return RESUME


async def _resume(update: Update, context: XContext) -> str | int:
    """Continue a kept draft at the step where it stood (the question asked again)."""
    state = _state(context)
    state["at"] = context.core.clock.now().isoformat()
    draft = _draft(context)
    step = state.get("step")
    if step == KIND or draft.kind is None:
        remaining = await _service(context).remaining_today(update.effective_user.id)
        return await _ask_kind(update, context, remaining)
    if step == CATEGORY or draft.category is None:
        await _ask_category(update, context, draft, edit=False)
        return CATEGORY
    if step == DESCRIPTION:
        return await _ask_description(update, context)
    if step == COMPOUND:
        return await _ask_compound(update, context)
    if step == PROPERTY:
        return await _ask_property(update, context)
    if step == PHOTOS:
        return await _ask_photos(update, context)
    if step == LOCATION:
        return await _ask_location(update, context)
    if step == ANONYMITY:
        return await _after_location(update, context)
    if step == DUPLICATE:
        state["dup_checked"] = False
        return await _before_summary(update, context)
    return await _summary(update, context)


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


# -- description (text or voice), compound -----------------------------------------------------


async def _ask_description(update: Update, context: XContext) -> str:
    limit = context.core.config.reports.description_limit
    await reply(update, context, context.t("reports.flow.ask_description", limit=limit))
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


async def _ask_property(update: Update, context: XContext) -> str:
    await reply(
        update,
        context,
        context.t("reports.flow.ask_property"),
        reply_markup=_inline([[(context.t("reports.flow.skip"), cb("rp", "sk", "prop"))]]),
    )
    return PROPERTY


async def _after_compound(update: Update, context: XContext) -> str | int:
    if _state(context).get("editing"):
        return await _summary(update, context)
    return await _ask_photos(update, context)


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
    draft.blurred = False
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


async def _anonymous_caution(update: Update, context: XContext, draft: ReportDraft) -> bool:
    """An anonymous grievance with a voice note or an exact spot: say these can still give the
    courier away, and offer to blur the spot to ~100 m (answered by `anonymity_chosen`). True when
    asked."""
    exact = draft.lat is not None and draft.lon is not None and not draft.blurred
    if draft.kind != rc.GRIEVANCE or not draft.anonymous or not (exact or draft.voice_file_id):
        return False
    t = context.t
    telltales = [t("reports.flow.telltale_voice")] if draft.voice_file_id else []
    telltales += [t("reports.flow.telltale_location")] if exact else []
    text = t("reports.flow.anonymous_caution", telltales=t("reports.flow.telltale_sep").join(telltales))
    buttons = [(t("reports.flow.blur_location"), cb("rp", "an", "blur"))] if exact else []
    buttons.append(
        (t("reports.flow.keep_location" if exact else "reports.flow.understood"), cb("rp", "an", "keep"))
    )
    await reply(update, context, text, reply_markup=_inline([buttons]))
    return True


async def _after_location(update: Update, context: XContext) -> str | int:
    draft = _draft(context)
    if (
        draft.kind == rc.GRIEVANCE
        and _state(context).get("editing")
        and await _anonymous_caution(update, context, draft)
    ):
        return ANONYMITY  # a new exact spot for an anonymous report: the same caution again
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
            distance = math.ceil(
                distance_m(LatLon(draft.lat, draft.lon), LatLon(candidate.lat, candidate.lon))
            )
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
    if draft.lat is not None and draft.lon is not None and draft.blurred:
        lines.append(t("reports.flow.summary_blurred", lat=f"{draft.lat:.3f}", lon=f"{draft.lon:.3f}"))
    elif draft.lat is not None and draft.lon is not None:
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


def _pending_draft(context: XContext) -> ReportDraft | None:
    """The courier's unsubmitted draft worth mentioning (kind chosen; not a photo that waited too long)."""
    if not _draft_ready(context, kind=True, category=False):
        return None
    draft, state = _draft(context), _state(context)
    waiting = state.get("quick") and not draft.has_location and not draft.place_text
    if waiting and not _quick_fresh(state, context.core.clock.now()):
        return None
    return draft
