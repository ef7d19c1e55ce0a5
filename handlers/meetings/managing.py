"""The organiser's manage menu: who answered, skip / move one occurrence, holiday buttons, reschedule,
rename, place, reminder times, topic deadline, groups, cancel, outcome note."""

from __future__ import annotations

from typing import Any

from telegram import ForceReply, Update
from telegram.ext import ConversationHandler

from bot.core.app import XContext
from bot.kit.recurrence import RecurrenceError, get_zone, to_local_naive
from bot.kit.timeparse import parse_time
from bot.meetings.input import InputError, parse_place
from bot.meetings.service import Meeting, MeetingError, occ_code, occ_from_code
from handlers.common import cb, private_only, reply
from handlers.meetings.common import (
    DEADLINE,
    EDIT_PLACE,
    EDIT_TITLE,
    MOVE,
    OFFSETS,
    OUTCOME,
    WHEN,
    _ask_targets,
    _draft,
    _drop,
    _error,
    _keyboard,
    _may_manage,
    _meeting_of,
    _parts,
    _service,
    _stale,
)


async def reschedule_pressed(update: Update, context: XContext) -> int:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return ConversationHandler.END
    await query.answer()
    _drop(context)
    _draft(context)["resched"] = meeting.id
    tz = context.core.zone_name(context.lang, meeting.tz)
    await reply(update, context, context.t("meetings.ui.ask_reschedule", title=meeting.title, tz=tz))
    return WHEN


async def holiday_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    if len(parts) != 5:
        await _stale(update, context)
        return
    meeting = await _meeting_of(update, context, parts[2])
    if meeting is None or not await _may_manage(update, context, meeting):
        return
    service = _service(context)
    try:
        original = occ_from_code(parts[3])
        occ = service.find_occurrence(meeting, original)
        if occ is None:
            raise MeetingError("no_such_occurrence")
        updated = await service.holiday_action(meeting.id, original, parts[4])
    except (MeetingError, RecurrenceError) as exc:
        await _error(update, context, exc)
        return
    except ValueError:
        await _stale(update, context)
        return
    await query.answer()
    if parts[4] == "skip":
        text = context.t("meetings.ui.skipped", when=service.format_when(occ.start, meeting.tz, context.lang))
    elif parts[4] == "next":
        new = service.find_occurrence(updated, original)
        when = service.format_when(new.start if new else occ.start, meeting.tz, context.lang)
        text = context.t("meetings.ui.moved", when=when)
    else:
        text = context.t("meetings.ui.kept", when=service.format_when(occ.start, meeting.tz, context.lang))
    await query.edit_message_text(
        f"{query.message.text}\n\n{text}" if query.message and query.message.text else text
    )


async def manage_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return
    service = _service(context)
    t = context.t
    upcoming = service.schedule_of(meeting).next_occurrences(context.core.clock.now(), 1)
    occ = upcoming[0] if upcoming else None
    next_text = service.format_span(occ, meeting.tz, context.lang) if occ else t("meetings.ui.manage_none")
    rows: list[list[tuple[str, str]]] = []
    if occ is not None:
        code = occ_code(occ.original_start)
        rows.append([(t("meetings.ui.who"), cb("mt", "who", meeting.id, code))])
        rows.append(
            [
                (t("meetings.ui.skip_next"), cb("mt", "sk", meeting.id, code)),
                (t("meetings.ui.move_next"), cb("mt", "mv", meeting.id, code)),
            ]
        )
    rows.append(
        [
            (t("meetings.ui.edit_title"), cb("mt", "et", meeting.id)),
            (t("meetings.ui.edit_place"), cb("mt", "ep", meeting.id)),
        ]
    )
    rows.append(
        [
            (t("meetings.ui.edit_offsets"), cb("mt", "eo", meeting.id)),
            (t("meetings.ui.edit_deadline"), cb("mt", "ed", meeting.id)),
        ]
    )
    rows.append([(t("meetings.ui.edit_targets"), cb("mt", "eg", meeting.id))])
    rows.append([(t("meetings.ui.reschedule"), cb("mt", "rs", meeting.id))])
    rows.append([(t("meetings.ui.outcome"), cb("mt", "out", meeting.id))])
    rows.append([(t("meetings.button.calendar"), cb("mt", "ics", meeting.id))])
    rows.append([(t("meetings.ui.cancel_series"), cb("mt", "cx", meeting.id))])
    await query.answer()
    await reply(
        update,
        context,
        t(
            "meetings.ui.manage_title",
            title=meeting.title,
            rule=service.describe(meeting, context.lang),
            next=next_text,
        ),
        reply_markup=_keyboard(rows),
    )


async def who_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "", active=False)
    if meeting is None or not await _may_manage(update, context, meeting):
        return
    service = _service(context)
    try:
        original = occ_from_code(parts[3])
    except (IndexError, ValueError):
        await _stale(update, context)
        return
    occ = service.find_occurrence(meeting, original)
    if occ is None:
        await _stale(update, context)
        return
    if not await private_only(update, context, "meetings", moderators_chat=True):
        return  # who answered what: names, for the organizer, never into a courier group
    answered = await service.answers(meeting.id, original)
    await query.answer()
    await reply(update, context, service.answers_text(meeting, occ, answered, context.lang))


async def skip_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return
    service = _service(context)
    try:
        original = occ_from_code(parts[3])
    except (IndexError, ValueError):
        await _stale(update, context)
        return
    occ = service.find_occurrence(meeting, original)
    if occ is None:
        await _stale(update, context)
        return
    when = service.format_when(occ.start, meeting.tz, context.lang)
    if parts[1] == "sk":
        await query.answer()
        rows = [[(context.t("meetings.ui.yes_skip"), cb("mt", "sky", meeting.id, parts[3]))]]
        await reply(
            update, context, context.t("meetings.ui.confirm_skip", when=when), reply_markup=_keyboard(rows)
        )
        return
    try:
        updated = await service.skip_occurrence(meeting.id, original)
    except (MeetingError, RecurrenceError) as exc:
        await _error(update, context, exc)
        return
    await query.answer()
    key = "meetings.ui.skipped" if updated.active else "meetings.ui.skipped_only"
    await query.edit_message_text(context.t(key, when=when, title=meeting.title))


async def cancel_pressed(update: Update, context: XContext) -> None:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return
    if parts[1] == "cx":
        await query.answer()
        rows = [[(context.t("meetings.ui.yes_cancel"), cb("mt", "cxy", meeting.id))]]
        await reply(
            update,
            context,
            context.t("meetings.ui.confirm_cancel", title=meeting.title),
            reply_markup=_keyboard(rows),
        )
        return
    try:
        await _service(context).cancel(meeting.id)
    except MeetingError as exc:
        await _error(update, context, exc)
        return
    await query.answer()
    await query.edit_message_text(context.t("meetings.ui.cancelled", title=meeting.title))


async def move_pressed(update: Update, context: XContext) -> int:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return ConversationHandler.END
    service = _service(context)
    try:
        occ = service.find_occurrence(meeting, occ_from_code(parts[3]))
    except (IndexError, ValueError):
        occ = None
    if occ is None:
        await _stale(update, context)
        return ConversationHandler.END
    await query.answer()
    _draft(context).update({"move_m": meeting.id, "move_o": occ_code(occ.original_start)})
    when = service.format_when(occ.start, meeting.tz, context.lang)
    tz = context.core.zone_name(context.lang, meeting.tz)
    await reply(
        update, context, context.t("meetings.ui.ask_move", when=when, tz=tz), reply_markup=ForceReply()
    )
    return MOVE


async def got_move(update: Update, context: XContext) -> int:
    draft = _draft(context)
    service = _service(context)
    meeting = await service.get(int(draft.get("move_m", 0)))
    if meeting is None or not meeting.active or not await _may_manage(update, context, meeting):
        _drop(context)
        return ConversationHandler.END
    zone = get_zone(meeting.tz)
    try:
        new_start = to_local_naive(
            parse_time(update.effective_message.text or "", context.core.clock.now(), zone), zone
        )
        updated = await service.move_occurrence(meeting.id, occ_from_code(draft["move_o"]), new_start)
    except (InputError, MeetingError, RecurrenceError) as exc:
        await _error(update, context, exc)
        return MOVE
    _drop(context)
    occ = service.find_occurrence(updated, occ_from_code(draft["move_o"]))
    when = service.format_when(occ.start if occ else new_start.replace(tzinfo=zone), meeting.tz, context.lang)
    await reply(update, context, context.t("meetings.ui.moved", when=when))
    return ConversationHandler.END


async def edit_pressed(update: Update, context: XContext) -> int:
    """✏️ Change the title, place, reminder offsets, topic deadline or groups of a meeting: pending
    reminders are re-planned (re-rendered, withdrawn or added), groups told."""
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return ConversationHandler.END
    await query.answer()
    _drop(context)
    draft = _draft(context)
    draft["edit_m"] = meeting.id
    service = _service(context)
    if parts[1] == "eo":
        current = context.t("meetings.rule.join").join(
            service.format_offset(o, context.lang) for o in meeting.reminder_offsets
        )
        rows = [[(context.t("meetings.ui.offsets_default"), cb("mt", "rm", "default"))]]
        await reply(
            update,
            context,
            context.t("meetings.ui.ask_edit_offsets", title=meeting.title, offsets=current),
            reply_markup=_keyboard(rows),
        )
        return OFFSETS
    if parts[1] == "ed":
        default = context.core.config.meetings.topic_deadline_minutes
        label = context.t("meetings.ui.deadline_default", offset=service.format_offset(default, context.lang))
        await reply(
            update,
            context,
            context.t(
                "meetings.ui.ask_edit_deadline",
                title=meeting.title,
                offset=service.format_offset(meeting.topic_deadline_minutes, context.lang),
            ),
            reply_markup=_keyboard([[(label, cb("mt", "dl", "default"))]]),
        )
        return DEADLINE
    if parts[1] == "eg":
        draft["chats"], draft["areas"] = list(meeting.chat_ids), list(meeting.areas)
        return await _ask_targets(
            update, context, context.t("meetings.ui.ask_edit_targets", title=meeting.title)
        )
    if parts[1] == "et":
        await reply(
            update,
            context,
            context.t("meetings.ui.ask_new_title", title=meeting.title),
            reply_markup=ForceReply(),
        )
        return EDIT_TITLE
    await reply(
        update,
        context,
        context.t("meetings.ui.ask_new_place", place=meeting.place or "—"),
        reply_markup=ForceReply(),
    )
    return EDIT_PLACE


def _editing(context: XContext) -> bool:
    """Whether the reused scheduling step edits an existing meeting (a manage-menu button)."""
    return "edit_m" in _draft(context)


async def _edited_meeting(update: Update, context: XContext) -> Meeting | None:
    """The meeting being edited, re-read and re-authorized (None: refused or gone, draft dropped)."""
    service = _service(context)
    meeting = await service.get(int(_draft(context).get("edit_m", 0)))
    if meeting is None or not meeting.active:
        _drop(context)
        if update.callback_query is not None:
            await _stale(update, context)
        else:
            await reply(update, context, context.t("meetings.error.stale"))
        return None
    if not await _may_manage(update, context, meeting):
        _drop(context)
        return None
    return meeting


async def _finish_edit(update: Update, context: XContext, meeting: Meeting, retry: int, **fields: Any) -> int:
    """Apply an edit; an invalid value is explained and the step kept."""
    try:
        updated = await _service(context).edit(meeting.id, **fields)
    except MeetingError as exc:
        await _error(update, context, exc)
        return retry
    _drop(context)
    query = update.callback_query
    if query is not None:
        await query.answer()
        await query.edit_message_reply_markup(None)
    quiet = set(fields) <= {"reminder_offsets", "topic_deadline_minutes"}  # not on the card: no notice
    key = "meetings.ui.edited_quiet" if quiet else "meetings.ui.edited"
    await reply(update, context, context.t(key, title=updated.title))
    return ConversationHandler.END


async def got_edit_title(update: Update, context: XContext) -> int:
    draft = _draft(context)
    service = _service(context)
    meeting = await service.get(int(draft.get("edit_m", 0)))
    if meeting is None or not meeting.active or not await _may_manage(update, context, meeting):
        _drop(context)
        return ConversationHandler.END
    try:
        updated = await service.edit(meeting.id, title=update.effective_message.text or "")
    except MeetingError as exc:
        await _error(update, context, exc)
        return EDIT_TITLE
    _drop(context)
    await reply(update, context, context.t("meetings.ui.edited", title=updated.title))
    return ConversationHandler.END


async def got_edit_place(update: Update, context: XContext) -> int:
    draft = _draft(context)
    service = _service(context)
    meeting = await service.get(int(draft.get("edit_m", 0)))
    if meeting is None or not meeting.active or not await _may_manage(update, context, meeting):
        _drop(context)
        return ConversationHandler.END
    message = update.effective_message
    if message.venue is not None:
        loc = message.venue.location
        updated = await service.edit(
            meeting.id, place=message.venue.title, lat=loc.latitude, lon=loc.longitude
        )
    elif message.location is not None:
        loc = message.location
        updated = await service.edit(meeting.id, lat=loc.latitude, lon=loc.longitude)
    else:
        updated = await service.edit(meeting.id, place=parse_place(message.text or ""))
    _drop(context)
    await reply(update, context, context.t("meetings.ui.edited", title=updated.title))
    return ConversationHandler.END


async def outcome_pressed(update: Update, context: XContext) -> int:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "", active=False)
    if meeting is None or not await _may_manage(update, context, meeting):
        return ConversationHandler.END
    service = _service(context)
    recent = await service.recent_occurrences(meeting.id, 1)
    if not recent:
        await query.answer(context.t("meetings.ui.no_past"), show_alert=True)
        return ConversationHandler.END
    await query.answer()
    occ = recent[0]
    _draft(context).update({"out_m": meeting.id, "out_o": occ_code(occ.original_start)})
    when = service.format_when(occ.start, meeting.tz, context.lang)
    await reply(
        update,
        context,
        context.t("meetings.ui.ask_outcome", title=meeting.title, when=when),
        reply_markup=ForceReply(),
    )
    return OUTCOME


async def got_outcome(update: Update, context: XContext) -> int:
    draft = _draft(context)
    service = _service(context)
    meeting = await service.get(int(draft.get("out_m", 0)))
    if meeting is None or not await _may_manage(update, context, meeting):
        _drop(context)
        return ConversationHandler.END
    try:
        count = await service.post_outcome(
            meeting.id, occ_from_code(draft["out_o"]), update.effective_message.text or ""
        )
    except MeetingError as exc:
        await _error(update, context, exc)
        if exc.code in ("empty_outcome", "outcome_too_long"):
            return OUTCOME
        _drop(context)
        return ConversationHandler.END
    _drop(context)
    await reply(update, context, context.t("meetings.ui.outcome_sent", count=count))
    return ConversationHandler.END
