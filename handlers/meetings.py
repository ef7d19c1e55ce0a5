"""Council meetings (议事会): /newmeeting (moderators' scheduling conversation), /meetings (upcoming,
加入日历, RSVP per item, manage), RSVP buttons on reminders and announcements, /topic, holiday skip/move buttons, outcome notes.

Rules live in bot/meetings.py (MeetingService); this module parses updates and renders replies.
Callback data is never trusted: the meeting is re-read and the actor's right re-checked on every press.

Callback data (all ``mt:``): ``rsvp:{id}:{occ}:{y|n|m}``, ``topic:{id}:{occ}``, ``ics:{id}[:{occ}]``,
``hol:{id}:{occ}:{skip|next|keep}``, ``mg:{id}``, ``who:{id}:{occ}``, ``sk:{id}:{occ}``,
``sky:{id}:{occ}``, ``cx:{id}``, ``cxy:{id}``, ``mv:{id}:{occ}``, ``out:{id}``, ``rs:{id}``, and the
edits ``et:{id}`` (title), ``ep:{id}`` (place), ``eo:{id}`` (reminder offsets), ``ed:{id}`` (topic
deadline), ``eg:{id}`` (groups / areas); in the scheduling conversation ``nr:{preset}``, ``nw:{n}``,
``du:{minutes}``, ``pl:skip``, ``tg:{i}``, ``ta:{i}``, ``td``, ``rm:default``, ``dl:default``, ``tz``,
``tz:default``, ``ok``, ``no``. ``{occ}`` is the occurrence's original start in epoch minutes.

The edits of offsets, deadline and groups reuse the scheduling steps (OFFSETS, DEADLINE, TARGETS):
with ``edit_m`` in the draft, the step applies the change to that meeting instead of going on.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import unicodedata
from typing import Any

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
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
from bot.kit.recurrence import (
    Preset,
    RecurrenceError,
    Schedule,
    describe,
    get_zone,
    rrule_monthly_day,
    rrule_monthly_nth_weekday,
    rrule_quarterly_first_monday,
    rrule_weekly,
    to_local_naive,
    zone_name,
)
from bot.meetings.input import InputError, parse_duration, parse_offsets, parse_place, parse_when
from bot.meetings.service import (
    ANSWER_CODES,
    MeetingDraft,
    MeetingError,
    MeetingService,
    TopicTarget,
    occ_code,
    occ_from_code,
)
from handlers.common import (
    Command,
    actor_of,
    cb,
    community,
    draft_state,
    drop_draft,
    is_private,
    menu_text,
    open_private_button,
    reply,
    require,
)
from handlers.core import cancel_fallback
from storage.meetings import MeetingRecord

log = logging.getLogger(__name__)

# Conversation states.
TITLE, WHEN, RECUR, NWEEKS, RRULE, DURATION, PLACE, TARGETS, OFFSETS, DEADLINE, CONFIRM = range(11)
MOVE, OUTCOME, EDIT_TITLE, EDIT_PLACE, TIMEZONE = range(11, 16)
DRAFT = "meeting"
LIST_LIMIT = 5
DURATION_CHOICES = (60, 90, 120)
NWEEKS_CHOICES = (2, 3, 4)
MAX_NWEEKS = 52  #: every N weeks typed at that step: 1..52

COMMANDS = [
    Command("meetings", "meetings.cmd.meetings"),
    Command("topic", "meetings.cmd.topic"),
    Command("newmeeting", "meetings.cmd.newmeeting", scope="private", perm=Perm.MEETINGS_MANAGE),
]


def _service(context: XContext) -> MeetingService:
    return context.core.service(MeetingService)


def _markup(data: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    """A reply_markup dict as the services build it (outbox payload shape) -> PTB markup."""
    if not data:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row]
            for row in data["inline_keyboard"]
        ]
    )


def _keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def _parts(update: Update) -> list[str]:
    return (update.callback_query.data or "").split(":")


async def _stale(update: Update, context: XContext) -> None:
    await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


async def _error(update: Update, context: XContext, exc: MeetingError | RecurrenceError | InputError) -> None:
    """Tell the user why (a toast/alert for a button, a reply for a message)."""
    if isinstance(exc, InputError):
        text = context.t(f"meetings.input.{exc.code}")
    else:
        text = _service(context).error_text(exc, context.lang)
    if update.callback_query is not None:
        await update.callback_query.answer(text[:200], show_alert=True)
    else:
        await reply(update, context, text)


# -- authorization ------------------------------------------------------------------------------------


async def _in_scope(context: XContext, user_id: int, meeting: MeetingRecord) -> bool:
    """A moderator's scope: everywhere, the meetings they organize, or those whose every target
    (areas, and the areas of the chosen groups) lies in their areas."""
    allowed = await context.core.authz.areas_for(user_id, Perm.MEETINGS_MANAGE)
    if allowed is None or meeting.organizer_id == user_id:
        return True
    areas = set(meeting.areas)
    for chat_id in meeting.chat_ids:
        group = await community(context).group(chat_id)
        areas.add(group.area if group and group.area else "")
    return bool(areas) and areas <= allowed


async def _may_manage(update: Update, context: XContext, meeting: MeetingRecord) -> bool:
    """The gate for every manage button and step: the permission, then the scope. Sends the refusal."""
    if not await require(update, context, Perm.MEETINGS_MANAGE):
        return False
    if await _in_scope(context, update.effective_user.id, meeting):
        return True
    text = context.t("authz.wrong_area")
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    else:
        await reply(update, context, text)
    return False


async def _meeting_of(
    update: Update, context: XContext, raw_id: str, *, active: bool = True
) -> MeetingRecord | None:
    try:
        meeting = await _service(context).get(int(raw_id))
    except ValueError:
        meeting = None
    if meeting is None or (active and not meeting.active):
        if update.callback_query is not None:
            await _stale(update, context)
        return None
    return meeting


# -- the scheduling conversation ---------------------------------------------------------------------


def _draft(context: XContext) -> dict[str, Any]:
    return draft_state(context, DRAFT)


def _drop(context: XContext) -> None:
    drop_draft(context, DRAFT)


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
    await reply(update, context, context.t("meetings.ui.ask_when"))
    return WHEN


async def got_when(update: Update, context: XContext) -> int:
    try:
        zone = get_zone(await _draft_tz(context))
        start = parse_when(
            update.effective_message.text or "", to_local_naive(context.core.clock.now(), zone)
        )
    except InputError as exc:
        await _error(update, context, exc)
        return WHEN
    _draft(context)["start"] = start.isoformat()
    return await _ask_recur(update, context)


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
        await reply(update, context, context.t("meetings.ui.ask_when"))
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
        await reply(update, context, context.t("meetings.ui.ask_when"))
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
        await reply(update, context, context.t("meetings.ui.ask_when"))
        return WHEN
    _drop(context)
    await reply(
        update, context, context.t("meetings.ui.rescheduled", rule=service.describe(updated, context.lang))
    )
    await _show_holiday_flags(update, context, updated)
    return ConversationHandler.END


async def reschedule_pressed(update: Update, context: XContext) -> int:
    query = update.callback_query
    parts = _parts(update)
    meeting = await _meeting_of(update, context, parts[2] if len(parts) > 2 else "")
    if meeting is None or not await _may_manage(update, context, meeting):
        return ConversationHandler.END
    await query.answer()
    _drop(context)
    _draft(context)["resched"] = meeting.id
    await reply(update, context, context.t("meetings.ui.ask_reschedule", title=meeting.title))
    return WHEN


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


async def _target_options(
    context: XContext, user_id: int
) -> tuple[list[tuple[int, str]], list[tuple[str, int]]]:
    """Groups and areas this moderator may announce in."""
    allowed = await context.core.authz.areas_for(user_id, Perm.MEETINGS_MANAGE)
    groups = await community(context).active_groups(None if allowed is None else sorted(allowed))
    areas = await community(context).areas()
    if allowed is not None:
        areas = [(a, n) for a, n in areas if a in allowed]
    return [(g.chat_id, g.title or str(g.chat_id)) for g in groups], areas


def _targets_keyboard(context: XContext) -> InlineKeyboardMarkup:
    draft = _draft(context)
    chosen_chats, chosen_areas = set(draft.get("chats", [])), set(draft.get("areas", []))
    rows = []
    for i, (chat_id, title) in enumerate(draft.get("opt_chats", [])):
        mark = "✅ " if chat_id in chosen_chats else "⬜ "
        rows.append([(mark + title, cb("mt", "tg", i))])
    for i, (area, count) in enumerate(draft.get("opt_areas", [])):
        mark = "✅ " if area in chosen_areas else "⬜ "
        rows.append(
            [(mark + context.t("meetings.ui.target_area", area=area, count=count), cb("mt", "ta", i))]
        )
    rows.append([(context.t("meetings.ui.targets_done"), cb("mt", "td"))])
    return _keyboard(rows)


async def _ask_targets(update: Update, context: XContext, prompt: str | None = None) -> int:
    chats, areas = await _target_options(context, update.effective_user.id)
    if not chats:
        _drop(context)
        await reply(update, context, context.t("meetings.ui.no_groups"))
        return ConversationHandler.END
    draft = _draft(context)
    draft["opt_chats"] = [list(c) for c in chats]
    draft["opt_areas"] = [list(a) for a in areas]
    draft.setdefault("chats", [])
    draft.setdefault("areas", [])
    await reply(
        update,
        context,
        prompt or context.t("meetings.ui.ask_targets"),
        reply_markup=_targets_keyboard(context),
    )
    return TARGETS


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
        await reply(update, context, context.t("meetings.ui.ask_when"))
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
        [(context.t("meetings.ui.tz_button", tz=tz), cb("mt", "tz"))],
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
    rows = [[(context.t("meetings.ui.tz_default", tz=default), cb("mt", "tz", "default"))]]
    await reply(update, context, context.t("meetings.ui.ask_tz"), reply_markup=_keyboard(rows))
    return TIMEZONE


async def tz_default(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(None)
    _draft(context).pop("tz", None)
    return await _preview(update, context)


async def got_tz(update: Update, context: XContext) -> int:
    try:
        name = zone_name(update.effective_message.text or "")
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


async def _show_holiday_flags(update: Update, context: XContext, meeting: MeetingRecord) -> None:
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


# -- /meetings ------------------------------------------------------------------------------------------


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


# -- holidays, manage ----------------------------------------------------------------------------------


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
    await reply(update, context, context.t("meetings.ui.ask_move", when=when), reply_markup=ForceReply())
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
        new_start = parse_when(
            update.effective_message.text or "", to_local_naive(context.core.clock.now(), zone)
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


async def _edited_meeting(update: Update, context: XContext) -> MeetingRecord | None:
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


async def _finish_edit(
    update: Update, context: XContext, meeting: MeetingRecord, retry: int, **fields: Any
) -> int:
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


# -- wiring -----------------------------------------------------------------------------------------------


async def _replan_job(context: Any) -> None:
    await context.application.bot_data["core"].service(MeetingService).replan_all()


async def _on_startup(core: Core, app: Application) -> None:
    """Re-plan every meeting (drops stale reminders, extends the horizon), then daily."""
    planned = await core.service(MeetingService).replan_all()
    log.info("meetings: re-planned at start-up (%d rows written)", planned)
    if app.job_queue is not None:
        for job in app.job_queue.get_jobs_by_name("meetings-replan"):
            job.schedule_removal()
        app.job_queue.run_repeating(
            _replan_job, interval=dt.timedelta(days=1), first=dt.timedelta(hours=1), name="meetings-replan"
        )


def register(app: Application) -> None:
    core = app.bot_data["core"]
    catalog = core.catalog
    if core.outbox is not None:
        # An announcement posted into a group: remember its message so RSVP answers update its counts.
        core.service(MeetingService).install(core.outbox)
    private = filters.ChatType.PRIVATE
    text = filters.TEXT & ~filters.COMMAND & private
    conversation = ConversationHandler(
        entry_points=[
            CommandHandler("newmeeting", new_meeting),
            CommandHandler("start", new_meeting_link, private & filters.Regex(r"^/start newmeeting")),
            CallbackQueryHandler(move_pressed, pattern=r"^mt:mv:"),
            CallbackQueryHandler(outcome_pressed, pattern=r"^mt:out:"),
            CallbackQueryHandler(reschedule_pressed, pattern=r"^mt:rs:"),
            CallbackQueryHandler(edit_pressed, pattern=r"^mt:e[tpodg]:"),
        ],
        states={
            TITLE: [MessageHandler(text, got_title)],
            WHEN: [MessageHandler(text, got_when)],
            RECUR: [
                CallbackQueryHandler(got_recur, pattern=r"^mt:nr:"),
                MessageHandler(text, _use_buttons(RECUR)),
            ],
            NWEEKS: [
                CallbackQueryHandler(got_nweeks, pattern=r"^mt:nw:"),
                MessageHandler(text, got_nweeks_text),
            ],
            RRULE: [MessageHandler(text, got_rrule)],
            DURATION: [
                CallbackQueryHandler(got_duration_button, pattern=r"^mt:du:"),
                MessageHandler(text, got_duration_text),
            ],
            PLACE: [
                CallbackQueryHandler(skip_place, pattern=r"^mt:pl:skip$"),
                MessageHandler(
                    (filters.TEXT & ~filters.COMMAND | filters.LOCATION) & private, got_place_text
                ),
            ],
            TARGETS: [
                CallbackQueryHandler(toggle_target, pattern=r"^mt:t[ga]:"),
                CallbackQueryHandler(targets_done, pattern=r"^mt:td$"),
                MessageHandler(text, _use_buttons(TARGETS)),
            ],
            OFFSETS: [
                CallbackQueryHandler(offsets_default, pattern=r"^mt:rm:default$"),
                MessageHandler(text, offsets_text),
            ],
            DEADLINE: [
                CallbackQueryHandler(deadline_default, pattern=r"^mt:dl:default$"),
                MessageHandler(text, deadline_text),
            ],
            CONFIRM: [
                CallbackQueryHandler(confirmed, pattern=r"^mt:ok$"),
                CallbackQueryHandler(discarded, pattern=r"^mt:no$"),
                CallbackQueryHandler(tz_pressed, pattern=r"^mt:tz$"),
                MessageHandler(text, _use_buttons(CONFIRM)),
            ],
            TIMEZONE: [
                CallbackQueryHandler(tz_default, pattern=r"^mt:tz:default$"),
                MessageHandler(text, got_tz),
            ],
            MOVE: [MessageHandler(text, got_move)],
            OUTCOME: [MessageHandler(text, got_outcome)],
            EDIT_TITLE: [MessageHandler(text, got_edit_title)],
            EDIT_PLACE: [
                MessageHandler((filters.TEXT & ~filters.COMMAND | filters.LOCATION) & private, got_edit_place)
            ],
        },
        fallbacks=[cancel_fallback(DRAFT)],
        name="meetings",
        persistent=True,
        allow_reentry=True,
    )
    app.add_handler(conversation)
    # A conversation button pressed after its conversation ended (double tap, old message).
    app.add_handler(CallbackQueryHandler(_stale, pattern=r"^mt:(nr|nw|du|pl|tg|ta|td|rm|dl|tz|ok|no)(:|$)"))
    app.add_handler(CommandHandler("meetings", meetings_command))
    app.add_handler(MessageHandler(menu_text(catalog, "menu.meetings"), meetings_command))
    app.add_handler(CommandHandler("topic", topic_command))
    app.add_handler(CallbackQueryHandler(rsvp_pressed, pattern=r"^mt:rsvp:"))
    app.add_handler(CallbackQueryHandler(topic_pressed, pattern=r"^mt:topic:"))
    app.add_handler(CallbackQueryHandler(send_ics, pattern=r"^mt:ics:"))
    app.add_handler(CallbackQueryHandler(holiday_pressed, pattern=r"^mt:hol:"))
    app.add_handler(CallbackQueryHandler(manage_pressed, pattern=r"^mt:mg:"))
    app.add_handler(CallbackQueryHandler(who_pressed, pattern=r"^mt:who:"))
    app.add_handler(CallbackQueryHandler(skip_pressed, pattern=r"^mt:sky?:"))
    app.add_handler(CallbackQueryHandler(cancel_pressed, pattern=r"^mt:cxy?:"))
    startup_hooks(app).append(_on_startup)
