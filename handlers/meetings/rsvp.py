"""For everyone: /meetings (upcoming, .ics, RSVP per item, manage buttons for moderators), the RSVP
buttons, /topic and the 💡 button, .ics downloads."""

from __future__ import annotations

import datetime as dt
import io
import logging

from telegram import InputFile, Update
from telegram.error import BadRequest

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.meetings.service import ANSWER_CODES, MeetingError, TopicTarget, occ_code, occ_from_code
from handlers.common import actor_of, cb, community, is_private, reply
from handlers.meetings.common import (
    _error,
    _in_scope,
    _keyboard,
    _markup,
    _meeting_of,
    _parts,
    _service,
    _stale,
)

log = logging.getLogger(__name__)


LIST_LIMIT = 5


async def meetings_command(update: Update, context: XContext) -> None:
    service = _service(context)
    chat = update.effective_chat
    user = update.effective_user
    actor = actor_of(update)
    if is_private(update):
        record = await community(context).user(user.id) if user else None
        area = record.area if record and record.area else None
        items = await service.upcoming_for_user(area, limit=LIST_LIMIT, lang=context.lang)
    else:
        items = await service.upcoming(chat_id=chat.id, limit=LIST_LIMIT, lang=context.lang)
    t = context.t
    rows: list[list[tuple[str, str]]] = []
    if items:
        lines = [t("meetings.ui.list_title")]
        for n, item in enumerate(items, 1):
            when = service.format_span(item.occurrence, item.meeting.tz, context.lang)
            lines.append(t("meetings.ui.list_line", n=n, title=item.meeting.title, when=when))
            if item.occurrence.moved:
                lines.append(t("meetings.ui.list_moved"))
            if item.holiday:
                lines.append(t("meetings.ui.list_holiday", holiday=item.holiday))
            rows.append(
                [
                    (
                        t("meetings.ui.ics_one", n=n),
                        cb("mt", "ics", item.meeting.id, occ_code(item.occurrence.original_start)),
                    )
                ]
            )
            rsvp = service.rsvp_row(item.meeting, item.occurrence, context.lang, n=n)
            rows.append([(b["text"], b["callback_data"]) for b in rsvp])
        series = {item.meeting.id: item.meeting for item in items if item.meeting.rrule}
        for meeting in series.values():
            rows.append([(t("meetings.ui.ics_series", title=meeting.title), cb("mt", "ics", meeting.id))])
    else:
        lines = [t("meetings.ui.list_empty")]
    # Moderators (in private) also get a manage button per meeting they may manage.
    if is_private(update) and user and await context.core.authz.check(actor, Perm.MEETINGS_MANAGE):
        for meeting in await service.active_meetings():
            if await _in_scope(context, user.id, meeting):
                rows.append([(t("meetings.ui.manage", title=meeting.title), cb("mt", "mg", meeting.id))])
    await reply(update, context, "\n".join(lines), reply_markup=_keyboard(rows) if rows else None)


async def send_ics(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "", active=False)
    if meeting is None:
        return
    service = _service(context)
    try:
        if len(parts) > 3:
            name, data = await service.occurrence_ics(meeting.id, occ_from_code(parts[3]), context.lang)
        else:
            name, data = await service.ics(meeting.id, context.lang)
    except (MeetingError, ValueError):
        await _stale(update, context)
        return
    await query.answer()
    await context.bot.send_document(
        update.effective_chat.id,
        InputFile(io.BytesIO(data), filename=name),
        caption=context.t("meetings.ui.ics_caption", title=meeting.title),
    )


# -- RSVP ------------------------------------------------------------------------------------------------


async def rsvp_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    if len(parts) != 5 or parts[4] not in ANSWER_CODES or update.effective_user is None:
        await _stale(update, context)
        return
    service = _service(context)
    try:
        result = await service.rsvp(
            int(parts[2]), occ_from_code(parts[3]), update.effective_user.id, parts[4]
        )
    except (MeetingError, ValueError) as exc:
        if isinstance(exc, MeetingError):
            await _error(update, context, exc)
        else:
            await _stale(update, context)
        return
    answer = context.t(f"meetings.rsvp.button_{result.answer}")
    key = "meetings.ui.rsvp_saved" if result.changed else "meetings.ui.rsvp_same"
    await query.answer(context.t(key, answer=answer))
    pressed = (query.message.chat.id, query.message.message_id) if query.message else None
    for edit in result.edits:
        if (edit.chat_id, edit.message_id) == pressed:
            try:
                await query.edit_message_text(edit.text, reply_markup=_markup(edit.reply_markup))
            except BadRequest as exc:  # "message is not modified" after a quick double tap
                log.debug("rsvp edit skipped: %s", exc)
    await service.queue_edits(result.edits, skip=pressed)


# -- topics ----------------------------------------------------------------------------------------------


async def _topic_target(update: Update, context: XContext) -> tuple[int, dt.datetime] | str | None:
    """The occurrence a topic from this user in this chat is for: the one whose button they pressed
    last (if still upcoming), else the next one announced here / visible to them in private
    ("choose" when several meetings are visible in private: the user picks one first)."""
    service = _service(context)
    chosen = context.user_data.get("meeting_topic") if context.user_data is not None else None
    if isinstance(chosen, dict):
        meeting = await service.get(int(chosen.get("m", 0)))
        original = occ_from_code(chosen.get("o", 0))
        if meeting is not None and meeting.active:
            occ = service.find_occurrence(meeting, original)
            if occ is not None and occ.start_utc > context.core.clock.now():
                return meeting.id, original
    if is_private(update):
        record = await community(context).user(update.effective_user.id)
        targets = await service.topic_targets_for_user(record.area if record and record.area else None)
        if len(targets) > 1:
            await _ask_topic_meeting(update, context, targets)
            return "choose"
        target = targets[0] if targets else None
    else:
        target = await service.topic_target(chat_id=update.effective_chat.id)
    return (target.meeting.id, target.occurrence.original_start) if target else None


async def _ask_topic_meeting(update: Update, context: XContext, targets: list[TopicTarget]) -> None:
    """Several meetings are open for topics: a button per meeting (the 💡 button of a reminder)."""
    service = _service(context)
    rows = []
    for target in targets[:LIST_LIMIT]:
        when = service.format_when(target.occurrence.start, target.meeting.tz, context.lang)
        label = context.t("meetings.ui.topic_choice", title=target.meeting.title, when=when)
        rows.append(
            [(label, cb("mt", "topic", target.meeting.id, occ_code(target.occurrence.original_start)))]
        )
    await reply(update, context, context.t("meetings.ui.topic_choose"), reply_markup=_keyboard(rows))


async def topic_command(update: Update, context: XContext) -> None:
    if update.effective_user is None or actor_of(update).anonymous_admin:
        return
    service = _service(context)
    target = await _topic_target(update, context)
    if target == "choose":
        return
    if not isinstance(target, tuple):
        await reply(update, context, context.t("meetings.ui.topic_none"))
        return
    meeting = await service.get(target[0])
    occ = service.find_occurrence(meeting, target[1]) if meeting else None
    if meeting is None or occ is None:
        await reply(update, context, context.t("meetings.ui.topic_none"))
        return
    when = service.format_when(occ.start, meeting.tz, context.lang)
    text = " ".join(context.args or [])
    if not text.strip():
        await reply(update, context, context.t("meetings.ui.topic_usage_for", title=meeting.title, when=when))
        return
    message = update.effective_message
    full = (message.text or "").split(maxsplit=1)
    text = full[1] if len(full) > 1 else text  # keep the user's own line breaks
    try:
        await service.add_topic(meeting.id, occ.original_start, update.effective_user.id, text)
    except MeetingError as exc:
        await _error(update, context, exc)
        return
    context.user_data.pop("meeting_topic", None)
    await context.bot.send_message(
        update.effective_chat.id,
        context.t("meetings.ui.topic_saved", title=meeting.title, when=when),
        reply_to_message_id=message.message_id,
    )


async def topic_pressed(update: Update, context: XContext) -> None:
    """The 💡 button on a reminder: remember which occurrence, explain /topic."""
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None:
        return
    service = _service(context)
    try:
        occ = service.find_occurrence(meeting, occ_from_code(parts[3]))
    except (IndexError, ValueError):
        occ = None
    if occ is None:
        await _stale(update, context)
        return
    if context.core.clock.now() >= service.topic_deadline(meeting, occ):
        await _error(
            update, context, MeetingError("topics_closed", deadline=service.topic_deadline(meeting, occ))
        )
        return
    context.user_data["meeting_topic"] = {"m": meeting.id, "o": occ_code(occ.original_start)}
    when = service.format_when(occ.start, meeting.tz, context.lang)
    await query.answer(
        context.t("meetings.ui.topic_usage_for", title=meeting.title, when=when)[:200], show_alert=True
    )
