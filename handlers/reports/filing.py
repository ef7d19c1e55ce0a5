"""The courier's /report conversation: the handlers of its entry points and steps (kind, category,
description or voice, compound, photos, location, quick path, anonymity, "the same?", summary, edit,
submit, the unsubmitted draft). What they ask next and the draft itself live in `flow`.
"""

from __future__ import annotations

import contextlib

from telegram import Message, Update
from telegram.error import BadRequest
from telegram.ext import ConversationHandler

from bot.core.app import XContext
from bot.reports import categories as rc
from bot.reports.service import Refusal, ReportDraft, ReportRefused, blur_location
from handlers.common import cb, community, main_menu, open_private_button, reply, stale_button_text
from handlers.core import cancel_conversation
from handlers.reports.common import _inline, _parse_chat_id, _refusal, _service, _stale
from handlers.reports.flow import (
    ANONYMITY,
    CATEGORY,
    COMPOUND,
    DESCRIPTION,
    DRAFT,
    DUPLICATE,
    KIND,
    LOCATION,
    PHOTOS,
    PROPERTY,
    QUICK_LOCATION,
    SUMMARY,
    _after_compound,
    _after_description,
    _after_location,
    _after_photos,
    _ask_category,
    _ask_compound,
    _ask_description,
    _ask_edit,
    _ask_location,
    _ask_photos,
    _ask_property,
    _before_summary,
    _begin,
    _draft,
    _draft_label,
    _draft_ready,
    _drop,
    _expired,
    _pending_draft,
    _photo_caption,
    _photos_keyboard,
    _quick_fresh,
    _quick_gone,
    _quick_keyboard,
    _quick_minutes,
    _raw_state,
    _resume,
    _save,
    _state,
    _step,
    _summary,
    _take_location,
    _take_place,
)

COMPOUND_LIMIT = 60


async def _answer(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


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


@_step()
async def compound_text(update: Update, context: XContext) -> str:
    text = (update.effective_message.text or "").strip()
    if not text or len(text) > COMPOUND_LIMIT:
        await reply(update, context, context.t("reports.flow.compound_too_long", limit=COMPOUND_LIMIT))
        return COMPOUND
    draft = _draft(context)
    draft.compound = text
    _save(context, draft)
    return await _ask_property(update, context)


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


@_step()
async def need_text(update: Update, context: XContext) -> None:
    await reply(update, context, context.t("reports.flow.need_text"))


# -- photos ---------------------------------------------------------------------------------------


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


# -- location -------------------------------------------------------------------------------------


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


# -- quick path: the location after the photo -----------------------------------------------------


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
    """Named or anonymous; an anonymous courier is then told what can still give them away (their
    voice, an exact spot) and may blur the spot to about 100 m (grievances only: a hazard needs it)."""
    query = update.callback_query
    value = query.data.rsplit(":", 1)[-1]
    draft = _draft(context)
    if value not in ("0", "1", "blur", "keep") or draft.kind != rc.GRIEVANCE:
        await _stale(update, context)
        return ANONYMITY
    exact = draft.lat is not None and draft.lon is not None and not draft.blurred
    if value in ("blur", "keep"):
        if value == "blur" and exact:
            draft.lat, draft.lon = blur_location(draft.lat, draft.lon)  # type: ignore[arg-type]
            draft.blurred = True
        _save(context, draft)
        await query.answer()
        await query.edit_message_reply_markup(None)
        return await _before_summary(update, context)
    draft.anonymous = value == "1"
    _save(context, draft)
    await query.answer()
    await query.edit_message_text(
        context.t("reports.flow.summary_anonymous" if draft.anonymous else "reports.flow.summary_named")
    )
    if draft.anonymous and (exact or draft.voice_file_id):
        t = context.t
        telltales = [t("reports.flow.telltale_voice")] if draft.voice_file_id else []
        telltales += [t("reports.flow.telltale_location")] if exact else []
        text = t("reports.flow.anonymous_caution", telltales=t("reports.flow.telltale_sep").join(telltales))
        buttons = [(t("reports.flow.blur_location"), cb("rp", "an", "blur"))] if exact else []
        buttons.append(
            (t("reports.flow.keep_location" if exact else "reports.flow.understood"), cb("rp", "an", "keep"))
        )
        await reply(update, context, text, reply_markup=_inline([buttons]))
        return ANONYMITY
    return await _before_summary(update, context)


# -- duplicate prompt -----------------------------------------------------------------------------


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
    if query.data == "rp:dr:open" and isinstance(query.message, Message):
        with contextlib.suppress(BadRequest):  # 继续 under "继续上次的反映？" is used up
            await query.edit_message_reply_markup(None)
    state = _state(context)
    if state.get("quick") and not draft.has_location and not draft.place_text:
        state["at"] = context.core.clock.now().isoformat()
        await reply(
            update,
            context,
            context.t("reports.flow.quick_photo", minutes=_quick_minutes()),
            reply_markup=_quick_keyboard(context),
        )
        return QUICK_LOCATION
    return await _resume(update, context)


async def start_afresh(update: Update, context: XContext) -> str | int:
    """重新开始 under "继续上次的反映？": the kept draft goes, a new one starts (same origin)."""
    query = update.callback_query
    await query.answer()
    with contextlib.suppress(BadRequest):
        await query.edit_message_reply_markup(None)
    state = _raw_state(context.user_data)
    origin = state.get("afresh_origin") if isinstance(state, dict) else None
    return await _begin(
        update, context, origin_chat_id=origin if isinstance(origin, int) else None, fresh=True
    )


async def idle_hint(update: Update, context: XContext) -> str | int | None:
    """A photo or voice note while the draft is idle: not taken into it; say how to go on."""
    draft = _pending_draft(context)
    if draft is None:  # nothing worth keeping (no kind chosen): a photo starts the quick path
        if update.effective_message.photo:
            return await quick_photo(update, context)
        return None
    what = _draft_label(context, draft)
    await reply(update, context, context.t("reports.flow.idle_hint", what=what))
