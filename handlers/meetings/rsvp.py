"""For everyone: /meetings (upcoming, .ics, RSVP per item, manage buttons for moderators), the RSVP
buttons, /topic and the 💡 button, .ics downloads."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
from typing import Any

from telegram import ForceReply, InputFile, Message, Update
from telegram.error import BadRequest
from telegram.ext import Application, filters

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
#: Dates shown by 🗓 more dates (a year of a quarterly series, six weeks of a weekly one).
MORE_DATES = 6


async def meetings_command(update: Update, context: XContext) -> None:
    """The next date of each meeting (RSVP, calendar, and "more dates" for a series), not every date:
    a quarterly series is one item with five buttons, in a group too."""
    service = _service(context)
    chat = update.effective_chat
    user = update.effective_user
    actor = actor_of(update)
    if is_private(update):
        record = await community(context).user(user.id) if user else None
        area = record.area if record and record.area else None
        items = await service.upcoming_for_user(area, limit=LIST_LIMIT, lang=context.lang, per_meeting=1)
    else:
        items = await service.upcoming(chat_id=chat.id, limit=LIST_LIMIT, lang=context.lang, per_meeting=1)
    t = context.t
    rows: list[list[tuple[str, str]]] = []
    if items:
        lines = [t("meetings.ui.list_title")]
        for n, item in enumerate(items, 1):
            lines.extend(_item_lines(context, item, n))
            rsvp = service.rsvp_row(item.meeting, item.occurrence, context.lang, n=n)
            rows.append([(b["text"], b["callback_data"]) for b in rsvp])
            more = [
                (
                    t("meetings.ui.ics_one", n=n),
                    cb("mt", "ics", item.meeting.id, occ_code(item.occurrence.original_start)),
                )
            ]
            if item.meeting.rrule:
                more.append((t("meetings.ui.more_dates", n=n), cb("mt", "more", item.meeting.id)))
            rows.append(more)
    else:
        lines = [t("meetings.ui.list_empty")]
    # Moderators (in private) also get a manage button per meeting they may manage.
    if is_private(update) and user and await context.core.authz.check(actor, Perm.MEETINGS_MANAGE):
        for meeting in await service.active_meetings():
            if await _in_scope(context, user.id, meeting):
                rows.append([(t("meetings.ui.manage", title=meeting.title), cb("mt", "mg", meeting.id))])
    await reply(update, context, "\n".join(lines), reply_markup=_keyboard(rows) if rows else None)


def _item_lines(context: XContext, item: Any, n: int | None) -> list[str]:
    service = _service(context)
    when = service.format_span(item.occurrence, item.meeting.tz, context.lang)
    if n is None:
        lines = [context.t("meetings.ui.more_line", when=when)]
    else:
        lines = [context.t("meetings.ui.list_line", n=n, title=item.meeting.title, when=when)]
    if item.occurrence.moved:
        lines.append(context.t("meetings.ui.list_moved"))
    if item.holiday:
        lines.append(context.t("meetings.ui.list_holiday", holiday=item.holiday))
    return lines


async def more_dates(update: Update, context: XContext) -> None:
    """🗓 More dates of a series from /meetings: the next MORE_DATES, and the whole series' .ics."""
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None:
        return
    await update.callback_query.answer()
    lines = [context.t("meetings.ui.more_title", title=meeting.title)]
    for item in _service(context).next_dates(meeting, MORE_DATES, context.lang):
        lines.extend(_item_lines(context, item, None))
    rows = [[(context.t("meetings.ui.ics_series", title=meeting.title), cb("mt", "ics", meeting.id))]]
    await context.bot.send_message(update.effective_chat.id, "\n".join(lines), reply_markup=_keyboard(rows))


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

#: What a /topic without text (or a choice among several meetings) waits for, in user_data: the chat,
#: when it was asked, the occurrence ("m", "o") once known, the prompt's message id in a group, and a
#: topic typed before the meeting was chosen ("text"). A command in private drops it (cancel_keys).
TOPIC_WAIT = "mt_topic_wait"
#: Plain text in a private chat is taken as the awaited topic only this long after the question:
#: later text is something else (a station search, another flow).
TOPIC_WINDOW = dt.timedelta(minutes=10)


def _pending_topic(wait: Any, message: Message, now: dt.datetime) -> bool:
    """Whether ``message`` is the topic a /topic question waits for (see TOPIC_WAIT)."""
    if not isinstance(wait, dict) or wait.get("chat") != message.chat_id or "m" not in wait:
        return False
    try:
        asked = dt.datetime.fromisoformat(str(wait.get("at")))
    except ValueError:
        return False
    if message.chat.type == "private":
        return now - asked <= TOPIC_WINDOW
    target = message.reply_to_message  # in a group: an answer to the bot's question only
    return target is not None and target.message_id == wait.get("prompt")


class TopicText(filters.MessageFilter):
    """Text answering a /topic question (reads the app's user_data: a filter sees no context)."""

    def __init__(self, app: Application) -> None:
        super().__init__(name="TopicText")
        self._app = app

    def filter(self, message: Message) -> bool:
        user = message.from_user
        data = self._app.user_data.get(user.id) if user is not None else None
        wait = data.get(TOPIC_WAIT) if isinstance(data, dict) else None
        return _pending_topic(wait, message, self._app.bot_data["core"].clock.now())


def _wait(context: XContext, chat_id: int, **values: Any) -> None:
    context.user_data[TOPIC_WAIT] = {"chat": chat_id, "at": context.core.clock.now().isoformat(), **values}


async def _open_target(service: Any, meeting_id: int, original: dt.datetime, now: dt.datetime) -> Any:
    """(meeting, occurrence) if that occurrence is still ahead, else None."""
    meeting = await service.get(meeting_id)
    if meeting is None or not meeting.active:
        return None
    occ = service.find_occurrence(meeting, original)
    return (meeting, occ) if occ is not None and occ.start_utc > now else None


async def _topic_target(update: Update, context: XContext, text: str) -> tuple[Any, Any] | None:
    """The occurrence a topic from this user in this chat is for: the one whose button they pressed
    last (if still taking topics), else the next one announced here / visible to them in private.
    With several meetings open in private, the user picks one first (a typed ``text`` is kept and
    sent with the choice): None is returned then, and when nothing is coming up (said here)."""
    service = _service(context)
    now = context.core.clock.now()
    chosen = context.user_data.get("meeting_topic") if context.user_data is not None else None
    if isinstance(chosen, dict):
        found = await _open_target(service, int(chosen.get("m", 0)), occ_from_code(chosen.get("o", 0)), now)
        if found is not None and now < service.topic_deadline(*found):
            return found
    if is_private(update):
        record = await community(context).user(update.effective_user.id)
        area = record.area if record and record.area else None
        targets = await service.topic_targets_for_user(area)
        if len(targets) > 1:
            await _ask_topic_meeting(update, context, targets, text)
            return None
        if not targets:  # nothing open: say why (closed, or nothing coming up)
            targets = await service.topic_targets_for_user(area, open_only=False)
        target = targets[0] if targets else None
    else:
        target = await service.topic_target(chat_id=update.effective_chat.id)
    if target is None:
        await reply(update, context, context.t("meetings.ui.topic_none"))
        return None
    return target.meeting, target.occurrence


async def _ask_topic_meeting(
    update: Update, context: XContext, targets: list[TopicTarget], text: str
) -> None:
    """Several meetings are open for topics: a button per meeting; a topic already typed is kept and
    goes to the one tapped."""
    service = _service(context)
    rows = []
    for target in targets[:LIST_LIMIT]:
        when = service.format_when(target.occurrence.start, target.meeting.tz, context.lang)
        label = context.t("meetings.ui.topic_choice", title=target.meeting.title, when=when)
        rows.append(
            [(label, cb("mt", "topic", target.meeting.id, occ_code(target.occurrence.original_start)))]
        )
    key = "meetings.ui.topic_choose_send" if text else "meetings.ui.topic_choose"
    _wait(context, update.effective_chat.id, **({"text": text} if text else {}))
    await reply(update, context, context.t(key), reply_markup=_keyboard(rows))


async def _ask_topic_text(update: Update, context: XContext, meeting: Any, occ: Any) -> None:
    """Ask for the topic and catch the next text (in a group: the answer to this question)."""
    service = _service(context)
    when = service.format_when(occ.start, meeting.tz, context.lang)
    chat = update.effective_chat
    values = {"m": meeting.id, "o": occ_code(occ.original_start)}
    if is_private(update):
        _wait(context, chat.id, **values)
        await reply(update, context, context.t("meetings.ui.topic_ask", title=meeting.title, when=when))
        return
    kwargs: dict[str, Any] = {"reply_markup": ForceReply(selective=True)}
    if update.effective_message is not None and update.callback_query is None:
        kwargs["reply_to_message_id"] = update.effective_message.message_id
    sent = await context.bot.send_message(
        chat.id, context.t("meetings.ui.topic_ask_group", title=meeting.title, when=when), **kwargs
    )
    _wait(context, chat.id, prompt=sent.message_id, **values)


async def _save_topic(update: Update, context: XContext, meeting: Any, occ: Any, text: str) -> None:
    service = _service(context)
    try:
        await service.add_topic(meeting.id, occ.original_start, update.effective_user.id, text)
    except MeetingError as exc:
        await _error(update, context, exc)
        return
    context.user_data.pop("meeting_topic", None)
    context.user_data.pop(TOPIC_WAIT, None)
    when = service.format_when(occ.start, meeting.tz, context.lang)
    saved = context.t("meetings.ui.topic_saved", title=meeting.title, when=when)
    message = update.effective_message if update.callback_query is None else None
    if message is not None:
        await context.bot.send_message(
            update.effective_chat.id, saved, reply_to_message_id=message.message_id
        )
    else:
        await context.bot.send_message(update.effective_chat.id, saved)


async def topic_command(update: Update, context: XContext) -> None:
    if update.effective_user is None or actor_of(update).anonymous_admin:
        return
    message = update.effective_message
    full = (message.text or "").split(maxsplit=1)
    text = full[1].strip() if len(full) > 1 else ""  # keep the user's own line breaks
    target = await _topic_target(update, context, text)
    if target is None:
        return
    meeting, occ = target
    service = _service(context)
    if not text:
        deadline = service.topic_deadline(meeting, occ)
        if context.core.clock.now() >= deadline:
            await _error(update, context, MeetingError("topics_closed", deadline=deadline))
            return
        await _ask_topic_text(update, context, meeting, occ)
        return
    await _save_topic(update, context, meeting, occ, text)


async def topic_text(update: Update, context: XContext) -> None:
    """The text a /topic question waited for."""
    wait = context.user_data.pop(TOPIC_WAIT, None)
    if not isinstance(wait, dict):
        return
    found = await _open_target(
        _service(context), int(wait.get("m", 0)), occ_from_code(wait.get("o", 0)), context.core.clock.now()
    )
    if found is None:
        await reply(update, context, context.t("meetings.ui.topic_none"))
        return
    await _save_topic(update, context, *found, update.effective_message.text or "")


async def topic_pressed(update: Update, context: XContext) -> None:
    """A meeting chosen for a topic: the 💡 button of a reminder, or the choice after /topic. A topic
    typed before the choice is sent now; in private, otherwise, the topic is asked for; in a group the
    button remembers the occurrence for /topic."""
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
    wait = context.user_data.get(TOPIC_WAIT)
    typed = (
        wait.get("text") if isinstance(wait, dict) and wait.get("chat") == update.effective_chat.id else None
    )
    if typed:
        await query.answer()
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(None)
        await _save_topic(update, context, meeting, occ, str(typed))
        return
    if is_private(update):
        await query.answer()
        await _ask_topic_text(update, context, meeting, occ)
        return
    when = service.format_when(occ.start, meeting.tz, context.lang)
    await query.answer(
        context.t("meetings.ui.topic_usage_for", title=meeting.title, when=when)[:200], show_alert=True
    )
