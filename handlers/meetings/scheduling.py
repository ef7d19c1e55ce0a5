"""/newmeeting: the scheduling conversation (title, date, recurrence, duration, place, groups, reminder
offsets, topic deadline, preview, time zone). Its steps are reused by the manage menu: the new date
and rule of a reschedule, and the edits of offsets, deadline and groups (see handlers/meetings/managing.py)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from telegram import Update
from telegram.ext import ConversationHandler

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.kit.recurrence import (
    Preset,
    RecurrenceError,
    Schedule,
    describe,
    format_date,
    get_zone,
    parse_spoken_rule,
    rrule_monthly_day,
    rrule_monthly_nth_weekday,
    rrule_quarterly_first_monday,
    rrule_weekly,
    to_local_naive,
    zone_name,
)
from bot.kit.timeparse import parse_time
from bot.meetings.input import InputError, parse_duration, parse_offsets, parse_place
from bot.meetings.service import Meeting, MeetingDraft, MeetingError
from handlers.common import cb, is_private, open_private_button, reply, require
from handlers.meetings.common import (
    CONFIRM,
    DEADLINE,
    DURATION,
    NWEEKS,
    OFFSETS,
    PLACE,
    RECUR,
    RRULE,
    TARGETS,
    TIMEZONE,
    TITLE,
    WHEN,
    _ask_targets,
    _draft,
    _drop,
    _error,
    _keyboard,
    _markup,
    _may_manage,
    _parts,
    _service,
    _stale,
    _target_options,
    _targets_keyboard,
)
from handlers.meetings.managing import _edited_meeting, _editing, _finish_edit

DURATION_CHOICES = (60, 90, 120)
NWEEKS_CHOICES = (2, 3, 4)
MAX_NWEEKS = 52  #: every N weeks typed at that step: 1..52


def _draft_obj(context: XContext, user_id: int) -> MeetingDraft:
    d = _draft(context)
    return MeetingDraft(
        title=d.get("title", ""),
        first_start=dt.datetime.fromisoformat(d["start"]),
        organizer_id=user_id,
        rrule=d.get("rrule"),
        tz=d.get("tz"),
        duration_minutes=d.get("duration"),
        place=d.get("place", ""),
        lat=d.get("lat"),
        lon=d.get("lon"),
        chat_ids=tuple(d.get("chats", [])),
        areas=tuple(d.get("areas", [])),
        reminder_offsets=tuple(d["offsets"]) if d.get("offsets") else None,
        topic_deadline_minutes=d.get("deadline"),
    )


async def _draft_tz(context: XContext) -> str:
    """The zone times typed in this conversation are in: the one chosen for the new meeting, the
    meeting's own when rescheduling it, else the configured default."""
    draft = _draft(context)
    if draft.get("tz"):
        return str(draft["tz"])
    if "resched" in draft:
        meeting = await _service(context).get(int(draft["resched"]))
        if meeting is not None:
            return meeting.tz
    return context.core.config.bot.timezone


async def _ask_when(update: Update, context: XContext) -> None:
    """Step 2 (or a reschedule's new date): the zone named as people say it (北京时间)."""
    tz = context.core.zone_name(context.lang, await _draft_tz(context))
    await reply(update, context, context.t("meetings.ui.ask_when", tz=tz))


async def new_meeting(update: Update, context: XContext) -> int:
    if not is_private(update):
        await reply(
            update,
            context,
            context.t("meetings.ui.private_only"),
            reply_markup=open_private_button(context, "newmeeting"),
        )
        return ConversationHandler.END
    if not await require(update, context, Perm.MEETINGS_MANAGE):
        return ConversationHandler.END
    _drop(context)
    _draft(context)
    await reply(update, context, context.t("meetings.ui.ask_title"))
    return TITLE


async def new_meeting_link(update: Update, context: XContext) -> int:
    """/start newmeeting (deep link from a group)."""
    return await new_meeting(update, context)


async def got_title(update: Update, context: XContext) -> int:
    title = " ".join((update.effective_message.text or "").split())
    limit = context.core.config.meetings.title_max_chars
    if not title:
        await reply(update, context, context.t("meetings.error.empty_title"))
        return TITLE
    if len(title) > limit:
        await reply(update, context, context.t("meetings.error.title_too_long", limit=limit))
        return TITLE
    _draft(context)["title"] = title
    await _ask_when(update, context)
    return WHEN


async def got_when(update: Update, context: XContext) -> int:
    text = update.effective_message.text or ""
    tz = await _draft_tz(context)
    zone = get_zone(tz)
    try:
        spoken = parse_spoken_rule(text)
        if spoken is not None:
            return await _got_spoken_rule(update, context, *spoken)
        start = to_local_naive(parse_time(text, context.core.clock.now(), zone), zone)
    except (InputError, RecurrenceError) as exc:
        await _error(update, context, exc)
        return WHEN
    _draft(context)["start"] = start.isoformat()
    return await _ask_recur(update, context)


async def _got_spoken_rule(update: Update, context: XContext, rule: str, rest: str) -> int:
    """The date step said how often (每周三晚上八点, first Monday of each quarter at 14:30): the first
    meeting is the rule's first day at that time (from the date said, if any), no step 3."""
    tz = await _draft_tz(context)
    zone = get_zone(tz)
    if not rest:
        raise InputError("rule_time")
    earliest = to_local_naive(parse_time(rest, context.core.clock.now(), zone), zone)
    sched = Schedule.create(earliest, dt.timedelta(minutes=60), rule, tz)
    draft = _draft(context)
    draft["start"] = to_local_naive(sched.dtstart, zone).isoformat()
    draft["rrule"] = rule
    t = lambda key, **v: context.t(key, **v)  # noqa: E731
    await reply(
        update,
        context,
        context.t("meetings.ui.spoken_rule", rule=describe(sched, t), first=format_date(sched.dtstart, t)),
    )
    return await _after_rule(update, context)


def _recur_choices(context: XContext, start: dt.datetime) -> list[tuple[str, str | None]]:
    """(preset, rule) pairs offered for this first start."""
    nth = (start.day - 1) // 7 + 1
    return [
        (Preset.WEEKLY, rrule_weekly(start.weekday())),
        (Preset.MONTHLY_DAY, rrule_monthly_day(start.day)),
        (Preset.MONTHLY_NTH_WEEKDAY, rrule_monthly_nth_weekday(nth if nth <= 4 else -1, start.weekday())),
        (Preset.QUARTERLY_FIRST_MONDAY, rrule_quarterly_first_monday()),
    ]


async def _ask_recur(update: Update, context: XContext) -> int:
    start = dt.datetime.fromisoformat(_draft(context)["start"])
    tz = await _draft_tz(context)
    t = context.t
    rows = [[(t("meetings.ui.recur_once"), cb("mt", "nr", Preset.ONCE))]]
    for preset, rule in _recur_choices(context, start):
        try:
            sched = Schedule.create(start, dt.timedelta(minutes=60), rule, tz)
        except RecurrenceError:
            continue  # a preset this start cannot use is simply not offered
        rows.append([(describe(sched, lambda key, **v: context.t(key, **v)), cb("mt", "nr", preset))])
    rows.append([(t("meetings.ui.recur_nweeks"), cb("mt", "nr", Preset.EVERY_N_WEEKS))])
    rows.append([(t("meetings.ui.recur_custom"), cb("mt", "nr", Preset.CUSTOM))])
    await reply(update, context, t("meetings.ui.ask_recur"), reply_markup=_keyboard(rows))
    return RECUR


async def got_recur(update: Update, context: XContext) -> int:
    query = update.callback_query
    preset = _parts(update)[-1]
    draft = _draft(context)
    if "start" not in draft:
        await _stale(update, context)
        return ConversationHandler.END
    await query.answer()
    start = dt.datetime.fromisoformat(draft["start"])
    if preset == Preset.ONCE:
        draft["rrule"] = None
    elif preset == Preset.EVERY_N_WEEKS:
        rows = [[(context.t("meetings.ui.nweeks", n=n), cb("mt", "nw", n)) for n in NWEEKS_CHOICES]]
        await query.edit_message_text(context.t("meetings.ui.ask_nweeks"), reply_markup=_keyboard(rows))
        return NWEEKS
    elif preset == Preset.CUSTOM:
        await query.edit_message_text(context.t("meetings.ui.ask_rrule"))
        return RRULE
    else:
        rules = dict(_recur_choices(context, start))
        if preset not in rules:
            return RECUR
        draft["rrule"] = rules[preset]
    await query.edit_message_reply_markup(None)
    return await _after_rule(update, context)


async def got_nweeks(update: Update, context: XContext) -> int:
    query = update.callback_query
    draft = _draft(context)
    try:
        n = int(_parts(update)[-1])
        start = dt.datetime.fromisoformat(draft["start"])
    except (ValueError, KeyError):
        await _stale(update, context)
        return NWEEKS
    await query.answer()
    draft["rrule"] = rrule_weekly(start.weekday(), n)
    await query.edit_message_reply_markup(None)
    return await _after_rule(update, context)


async def got_nweeks_text(update: Update, context: XContext) -> int:
    """Every N weeks typed as a number (1-52) instead of tapping 2/3/4."""
    draft = _draft(context)
    text = unicodedata.normalize("NFKC", update.effective_message.text or "").strip()
    if "start" not in draft:
        await _ask_when(update, context)
        return WHEN
    if not text.isdigit() or not 1 <= int(text) <= MAX_NWEEKS:
        await reply(update, context, context.t("meetings.ui.nweeks_typed"))
        return NWEEKS
    start = dt.datetime.fromisoformat(draft["start"])
    draft["rrule"] = rrule_weekly(start.weekday(), int(text))
    return await _after_rule(update, context)


def _use_buttons(state: int) -> Any:
    """Text typed at a step answered with buttons: say so and keep the step."""

    async def hint(update: Update, context: XContext) -> int:
        await reply(update, context, context.t("meetings.ui.use_buttons"))
        return state

    return hint


async def got_rrule(update: Update, context: XContext) -> int:
    draft = _draft(context)
    text = (update.effective_message.text or "").strip()
    if "start" not in draft:
        await _ask_when(update, context)
        return WHEN
    try:
        Schedule.create(
            dt.datetime.fromisoformat(draft["start"]),
            dt.timedelta(minutes=60),
            text,
            await _draft_tz(context),
        )
    except RecurrenceError as exc:  # every rule problem, dateutil's included, stays at this step
        await _error(update, context, exc)
        return RRULE
    # Kept as typed: it is normalised again in the zone finally chosen (a local UNTIL depends on it).
    draft["rrule"] = text
    return await _after_rule(update, context)


async def _after_rule(update: Update, context: XContext) -> int:
    """The rule is chosen: a new meeting goes on to the duration; a series reschedule is applied now."""
    draft = _draft(context)
    if "resched" not in draft:
        return await _ask_duration(update, context)
    service = _service(context)
    meeting = await service.get(int(draft["resched"]))
    if meeting is None or not meeting.active or not await _may_manage(update, context, meeting):
        _drop(context)
        return ConversationHandler.END
    try:
        updated = await service.reschedule(
            meeting.id, first_start=dt.datetime.fromisoformat(draft["start"]), rrule=draft.get("rrule")
        )
    except (MeetingError, RecurrenceError) as exc:
        await _error(update, context, exc)
        await _ask_when(update, context)
        return WHEN
    _drop(context)
    await reply(
        update, context, context.t("meetings.ui.rescheduled", rule=service.describe(updated, context.lang))
    )
    await _show_holiday_flags(update, context, updated)
    return ConversationHandler.END


async def _ask_duration(update: Update, context: XContext) -> int:
    rows = [[(context.t("meetings.ui.minutes", n=n), cb("mt", "du", n)) for n in DURATION_CHOICES]]
    await reply(update, context, context.t("meetings.ui.ask_duration"), reply_markup=_keyboard(rows))
    return DURATION


async def got_duration_button(update: Update, context: XContext) -> int:
    query = update.callback_query
    try:
        minutes = int(_parts(update)[-1])
    except ValueError:
        await _stale(update, context)
        return DURATION
    if minutes not in DURATION_CHOICES:
        await _stale(update, context)
        return DURATION
    await query.answer()
    await query.edit_message_reply_markup(None)
    _draft(context)["duration"] = minutes
    return await _ask_place(update, context)


async def got_duration_text(update: Update, context: XContext) -> int:
    try:
        minutes = parse_duration(update.effective_message.text or "")
    except InputError as exc:
        await _error(update, context, exc)
        return DURATION
    _draft(context)["duration"] = minutes
    return await _ask_place(update, context)


async def _ask_place(update: Update, context: XContext) -> int:
    rows = [[(context.t("meetings.ui.place_skip"), cb("mt", "pl", "skip"))]]
    await reply(update, context, context.t("meetings.ui.ask_place"), reply_markup=_keyboard(rows))
    return PLACE


async def got_place_text(update: Update, context: XContext) -> int:
    message = update.effective_message
    draft = _draft(context)
    if message.venue is not None:
        draft["place"] = message.venue.title
        draft["lat"], draft["lon"] = message.venue.location.latitude, message.venue.location.longitude
        return await _ask_targets(update, context)
    if message.location is not None:
        draft["lat"], draft["lon"] = message.location.latitude, message.location.longitude
        rows = [[(context.t("meetings.ui.place_skip"), cb("mt", "pl", "skip"))]]
        await reply(
            update, context, context.t("meetings.ui.place_got_location"), reply_markup=_keyboard(rows)
        )
        return PLACE
    draft["place"] = parse_place(message.text or "")
    return await _ask_targets(update, context)


async def skip_place(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(None)
    return await _ask_targets(update, context)


async def toggle_target(update: Update, context: XContext) -> int:
    query = update.callback_query
    parts = _parts(update)
    draft = _draft(context)
    try:
        index = int(parts[-1])
        if parts[1] == "tg":
            value, key = draft["opt_chats"][index][0], "chats"
        else:
            value, key = draft["opt_areas"][index][0], "areas"
    except (ValueError, IndexError, KeyError):
        await _stale(update, context)
        return TARGETS
    chosen = draft.setdefault(key, [])
    if value in chosen:
        chosen.remove(value)
    else:
        chosen.append(value)
    await query.answer()
    await query.edit_message_reply_markup(_targets_keyboard(context))
    return TARGETS


async def targets_done(update: Update, context: XContext) -> int:
    query = update.callback_query
    draft = _draft(context)
    if not draft.get("chats") and not draft.get("areas"):
        await query.answer(context.t("meetings.ui.no_targets"), show_alert=True)
        return TARGETS
    if _editing(context):
        meeting = await _edited_meeting(update, context)
        if meeting is None:
            return ConversationHandler.END
        # Re-checked against the moderator's scope now; targets they cannot see are kept as they are.
        chats, areas = await _target_options(context, update.effective_user.id)
        allowed_chats, allowed_areas = {c for c, _ in chats}, {a for a, _ in areas}
        chat_ids = [c for c in meeting.chat_ids if c not in allowed_chats]
        chat_ids += [c for c in draft.get("chats", []) if c in allowed_chats]
        area_list = [a for a in meeting.areas if a not in allowed_areas]
        area_list += [a for a in draft.get("areas", []) if a in allowed_areas]
        return await _finish_edit(update, context, meeting, TARGETS, chat_ids=chat_ids, areas=area_list)
    await query.answer()
    await query.edit_message_reply_markup(None)
    rows = [[(context.t("meetings.ui.offsets_default"), cb("mt", "rm", "default"))]]
    await reply(update, context, context.t("meetings.ui.ask_offsets"), reply_markup=_keyboard(rows))
    return OFFSETS


async def offsets_default(update: Update, context: XContext) -> int:
    if _editing(context):
        meeting = await _edited_meeting(update, context)
        if meeting is None:
            return ConversationHandler.END
        offsets = context.core.config.meetings.reminder_offsets_minutes
        return await _finish_edit(update, context, meeting, OFFSETS, reminder_offsets=list(offsets))
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(None)
    _draft(context)["offsets"] = None
    return await _ask_deadline(update, context)


async def offsets_text(update: Update, context: XContext) -> int:
    try:
        offsets = parse_offsets(update.effective_message.text or "")
    except InputError as exc:
        await _error(update, context, exc)
        return OFFSETS
    if _editing(context):
        meeting = await _edited_meeting(update, context)
        if meeting is None:
            return ConversationHandler.END
        return await _finish_edit(update, context, meeting, OFFSETS, reminder_offsets=list(offsets))
    _draft(context)["offsets"] = list(offsets)
    return await _ask_deadline(update, context)


async def _ask_deadline(update: Update, context: XContext) -> int:
    default = context.core.config.meetings.topic_deadline_minutes
    label = context.t(
        "meetings.ui.deadline_default", offset=_service(context).format_offset(default, context.lang)
    )
    rows = [[(label, cb("mt", "dl", "default"))]]
    await reply(update, context, context.t("meetings.ui.ask_deadline"), reply_markup=_keyboard(rows))
    return DEADLINE


async def deadline_default(update: Update, context: XContext) -> int:
    if _editing(context):
        meeting = await _edited_meeting(update, context)
        if meeting is None:
            return ConversationHandler.END
        default = context.core.config.meetings.topic_deadline_minutes
        return await _finish_edit(update, context, meeting, DEADLINE, topic_deadline_minutes=default)
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(None)
    _draft(context)["deadline"] = None
    return await _preview(update, context)


async def deadline_text(update: Update, context: XContext) -> int:
    try:
        values = parse_offsets(update.effective_message.text or "")
    except InputError as exc:
        await _error(update, context, exc)
        return DEADLINE
    if len(values) != 1:
        await reply(update, context, context.t("meetings.input.offsets"))
        return DEADLINE
    if _editing(context):
        meeting = await _edited_meeting(update, context)
        if meeting is None:
            return ConversationHandler.END
        return await _finish_edit(update, context, meeting, DEADLINE, topic_deadline_minutes=values[0])
    _draft(context)["deadline"] = values[0]
    return await _preview(update, context)


async def _preview(update: Update, context: XContext) -> int:
    service = _service(context)
    draft = _draft(context)
    try:
        text = service.preview_text(_draft_obj(context, update.effective_user.id), context.lang)
    except (MeetingError, RecurrenceError) as exc:
        await _error(update, context, exc)
        await _ask_when(update, context)
        return WHEN
    names = [title for chat_id, title in draft.get("opt_chats", []) if chat_id in draft.get("chats", [])]
    names += draft.get("areas", [])
    lines = [
        context.t("meetings.ui.preview_title"),
        "",
        text,
        context.t("meetings.ui.preview_targets", targets="、".join(names)),
    ]
    tz = draft.get("tz") or context.core.config.bot.timezone
    rows = [
        [
            (context.t("meetings.ui.confirm"), cb("mt", "ok")),
            (context.t("meetings.ui.discard"), cb("mt", "no")),
        ],
        [(context.t("meetings.ui.tz_button", tz=context.core.zone_name(context.lang, tz)), cb("mt", "tz"))],
    ]
    await reply(update, context, "\n".join(lines), reply_markup=_keyboard(rows))
    return CONFIRM


async def tz_pressed(update: Update, context: XContext) -> int:
    """🌐 on the preview: ask for another IANA zone (the default needs no step at all)."""
    query = update.callback_query
    if "start" not in _draft(context):
        await _stale(update, context)
        return ConversationHandler.END
    await query.answer()
    await query.edit_message_reply_markup(None)
    default = context.core.config.bot.timezone
    label = context.t("meetings.ui.tz_default", tz=context.core.zone_name(context.lang, default))
    rows = [[(label, cb("mt", "tz", "default"))]]
    await reply(update, context, context.t("meetings.ui.ask_tz"), reply_markup=_keyboard(rows))
    return TIMEZONE


async def tz_default(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(None)
    _draft(context).pop("tz", None)
    return await _preview(update, context)


async def got_tz(update: Update, context: XContext) -> int:
    typed = (update.effective_message.text or "").strip()
    beijing = {name.casefold() for name in context.core.catalog.all_languages("zone.beijing")}
    try:
        name = "Asia/Shanghai" if typed.casefold() in beijing else zone_name(typed)
    except RecurrenceError as exc:  # unknown zone: explained, the step kept
        await _error(update, context, exc)
        return TIMEZONE
    draft = _draft(context)
    if name == context.core.config.bot.timezone:
        draft.pop("tz", None)
    else:
        draft["tz"] = name
    return await _preview(update, context)


async def confirmed(update: Update, context: XContext) -> int:
    query = update.callback_query
    if not await require(update, context, Perm.MEETINGS_MANAGE):
        _drop(context)
        return ConversationHandler.END
    draft = _draft(context)
    if "start" not in draft:
        await _stale(update, context)
        return ConversationHandler.END
    # Targets are re-checked against the moderator's areas now, not trusted from the draft.
    chats, areas = await _target_options(context, update.effective_user.id)
    allowed_chats, allowed_areas = {c for c, _ in chats}, {a for a, _ in areas}
    draft["chats"] = [c for c in draft.get("chats", []) if c in allowed_chats]
    draft["areas"] = [a for a in draft.get("areas", []) if a in allowed_areas]
    service = _service(context)
    try:
        result = await service.create(_draft_obj(context, update.effective_user.id))
    except (MeetingError, RecurrenceError) as exc:
        await _error(update, context, exc)
        return CONFIRM
    await query.answer()
    await query.edit_message_reply_markup(None)
    _drop(context)
    meeting = result.meeting
    groups = await service.target_chats(meeting)
    await reply(update, context, context.t("meetings.ui.created", title=meeting.title, groups=len(groups)))
    await _show_holiday_flags(update, context, meeting)
    return ConversationHandler.END


async def _show_holiday_flags(update: Update, context: XContext, meeting: Meeting) -> None:
    """Upcoming occurrences on a public holiday, each with skip / move / keep buttons (after scheduling
    or rescheduling; the week-ahead notice comes later anyway)."""
    service = _service(context)
    flags = service.holiday_flags(meeting, context.lang)
    if not flags:
        return
    await reply(update, context, context.t("meetings.ui.holiday_intro"))
    for flag in flags[:4]:
        payload = service.holiday_payload(meeting, flag.occurrence, flag.name, context.lang)
        params = payload["params"]
        await reply(update, context, params["text"], reply_markup=_markup(params["reply_markup"]))


async def discarded(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(None)
    _drop(context)
    await reply(update, context, context.t("meetings.ui.discarded"))
    return ConversationHandler.END
