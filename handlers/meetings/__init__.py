"""Council meetings (议事会): /newmeeting (moderators' scheduling conversation), /meetings (upcoming,
加入日历, RSVP per item, manage), RSVP buttons on reminders and announcements, /topic, holiday skip/move buttons, outcome notes.

Rules live in bot/meetings/service.py (MeetingService); this package parses updates and renders replies:
scheduling.py (/newmeeting), managing.py (the organiser's manage menu), rsvp.py (/meetings, RSVP,
/topic, .ics) and common.py (what several of them need). This file registers them, in one place.
Callback data is never trusted: the meeting is re-read and the actor's right re-checked on every press.

Callback data (all ``mt:``): ``rsvp:{id}:{occ}:{y|n|m}``, ``topic:{id}:{occ}``, ``ics:{id}[:{occ}]``, ``more:{id}``,
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
import logging
from typing import Any

from telegram import Update
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
from bot.meetings.service import MeetingService
from handlers.common import Command, menu_text
from handlers.core import cancel_fallback, cancel_keys, deep_links
from handlers.meetings.common import (
    CONFIRM,
    DEADLINE,
    DRAFT,
    DURATION,
    EDIT_PLACE,
    EDIT_TITLE,
    MOVE,
    NWEEKS,
    OFFSETS,
    OUTCOME,
    PLACE,
    RECUR,
    RRULE,
    TARGETS,
    TIMEZONE,
    TITLE,
    WHEN,
    _stale,
)
from handlers.meetings.managing import (
    cancel_pressed,
    edit_pressed,
    got_edit_place,
    got_edit_title,
    got_move,
    got_outcome,
    holiday_pressed,
    manage_pressed,
    move_pressed,
    outcome_pressed,
    reschedule_pressed,
    skip_pressed,
    who_pressed,
)
from handlers.meetings.rsvp import (
    TOPIC_WAIT,
    TopicText,
    meetings_command,
    more_dates,
    rsvp_pressed,
    send_ics,
    topic_command,
    topic_pressed,
    topic_text,
)
from handlers.meetings.scheduling import (
    _use_buttons,
    confirmed,
    deadline_default,
    deadline_text,
    discarded,
    got_duration_button,
    got_duration_text,
    got_nweeks,
    got_nweeks_text,
    got_place_text,
    got_recur,
    got_rrule,
    got_title,
    got_tz,
    got_when,
    new_meeting,
    new_meeting_link,
    offsets_default,
    offsets_text,
    skip_place,
    targets_done,
    toggle_target,
    tz_default,
    tz_pressed,
)

log = logging.getLogger(__name__)


COMMANDS = [
    Command("meetings", "meetings.cmd.meetings"),
    Command("topic", "meetings.cmd.topic"),
    Command("newmeeting", "meetings.cmd.newmeeting", scope="private", perm=Perm.MEETINGS_MANAGE),
]


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


async def _meetings_link(update: Update, context: XContext, _arg: str) -> None:
    """`/start meetings` (the button given in a group where a list of names may not be shown)."""
    await meetings_command(update, context)


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
    deep_links(app)["meetings"] = _meetings_link
    app.add_handler(MessageHandler(menu_text(catalog, "menu.meetings"), meetings_command))
    app.add_handler(CommandHandler("topic", topic_command))
    # The topic a /topic question waits for: before other features' text handlers (station search).
    menu = filters.Text(sorted({t for key in catalog.keys("menu.") for t in catalog.all_languages(key)}))
    app.add_handler(
        MessageHandler(
            filters.TEXT & ~filters.COMMAND & ~menu & filters.UpdateType.MESSAGE & TopicText(app), topic_text
        )
    )
    cancel_keys(app).add(TOPIC_WAIT)  # a command in private (or /cancel) drops the question
    app.add_handler(CallbackQueryHandler(rsvp_pressed, pattern=r"^mt:rsvp:"))
    app.add_handler(CallbackQueryHandler(topic_pressed, pattern=r"^mt:topic:"))
    app.add_handler(CallbackQueryHandler(send_ics, pattern=r"^mt:ics:"))
    app.add_handler(CallbackQueryHandler(more_dates, pattern=r"^mt:more:"))
    app.add_handler(CallbackQueryHandler(holiday_pressed, pattern=r"^mt:hol:"))
    app.add_handler(CallbackQueryHandler(manage_pressed, pattern=r"^mt:mg:"))
    app.add_handler(CallbackQueryHandler(who_pressed, pattern=r"^mt:who:"))
    app.add_handler(CallbackQueryHandler(skip_pressed, pattern=r"^mt:sky?:"))
    app.add_handler(CallbackQueryHandler(cancel_pressed, pattern=r"^mt:cxy?:"))
    startup_hooks(app).append(_on_startup)
