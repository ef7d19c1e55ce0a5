"""Grievances and hazard tips in Telegram.

* Filing, private chat only (a persistent ConversationHandler; the draft lives in user_data, so it
  survives a restart): kind -> category -> description or voice -> [access: compound, property
  company] -> photos -> location or place -> [grievance: anonymity] -> [hazard near an open one:
  "the same?"] -> summary with 提交 / 修改 / 取消. `/cancel` anywhere.
* Entry: /report, the 📝 menu button, the deep link `/start report[_<group id>]` that `/report` in a
  group answers with, and the quick path (a photo, then a shared location within QUICK_WINDOW, becomes
  a hazard draft; later a location goes to 📍 nearest stations and the stale draft is dropped).
* A draft idle for 30 minutes (flow.IDLE_AFTER, by core.clock) stops catching messages: they go to
  the other features; the draft is kept and the next /report offers 继续上次的反映？ (rp:dr:open /
  rp:dr:new), continuing at the step where it stood.
* Moderators: the card buttons (rp:st:<id>:<action>) with ForceReply prompts for notes and the
  duplicate's reference, `/reports` (filters, hotspots, `/reports H-0042` for a card), `/export`.
* Couriers: `/myreports` (an unsubmitted draft, rp:dr:open; a button per report, rp:my:<id>, or
  `/myreports H-0001`: their own report with its history), and the 是/没有 answer to "已解决了吗?"
  (rp:fb:<id>:y|n).

Callback data is never trusted: every press re-reads the report and re-checks the role and state;
ids are parsed as short ASCII numbers. Every step re-checks its draft (`_step`): a draft dropped
meanwhile (e.g. by another feature's /cancel) ends the flow with an "expired" answer. Only new
messages answer a step: edited ones are ignored.

The package: `flow` (the conversation's states, its draft, the step guard, the questions it asks),
`filing` (the conversation's handlers), `moderation` (card buttons, ✍️ prompts, the reporter's
feedback, escalation), `lists` (/myreports, /reports), `common` (helpers they share). This module
registers them all, in one place and in order.
"""

from __future__ import annotations

from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.core.authz import Perm
from bot.core.container import Core
from bot.core.runtime import startup_hooks
from bot.reports.service import CB_FEEDBACK, CB_STATUS, ReportService
from handlers.common import Command
from handlers.core import cancel_fallback, cancel_keys, deep_links
from handlers.reports.common import _stale
from handlers.reports.export import export_command, export_link
from handlers.reports.filing import (
    anonymity_chosen,
    category_chosen,
    compound_text,
    description_other,
    description_photo,
    description_text,
    description_voice,
    duplicate_answer,
    edit_chosen,
    edit_nudge,
    idle_hint,
    kind_chosen,
    location_other,
    location_received,
    location_skipped,
    need_text,
    open_draft,
    photo_other,
    photo_received,
    photos_done,
    place_received,
    press_button,
    property_skipped,
    property_text,
    quick_cancel,
    quick_location,
    quick_other,
    quick_photo,
    quick_photo_more,
    quick_place,
    report_command,
    report_deep_link,
    report_in_group,
    start_afresh,
    summary_action,
    summary_nudge,
)
from handlers.reports.flow import (
    ANONYMITY,
    CATEGORY,
    COMPOUND,
    DESCRIPTION,
    DRAFT,
    DUPLICATE,
    EDIT,
    FLOW_PATTERN,
    KIND,
    LOCATION,
    PHOTOS,
    PROPERTY,
    QUICK_LOCATION,
    RESUME,
    SUMMARY,
    _Active,
    _QuickPending,
)
from handlers.reports.lists import (
    list_button,
    my_report_button,
    my_reports,
    my_reports_link,
    reports_command,
    reports_link,
)
from handlers.reports.moderation import (
    PROMPTS,
    _PromptReply,
    _startup,
    card_button,
    feedback_button,
    prompt_reply,
)

COMMANDS = [
    Command("report", "reports.cmd.report"),
    Command("myreports", "reports.cmd.myreports"),
    Command("reports", "reports.cmd.reports", perm=Perm.REPORTS_HANDLE),
    Command("export", "reports.cmd.export", perm=Perm.REPORTS_HANDLE),
]


def _menu_texts(core: Core) -> filters.BaseFilter:
    """Main-menu buttons in any language: they belong to their features, never to a draft."""
    texts = {text for key in core.catalog.keys("menu.") for text in core.catalog.all_languages(key)}
    return filters.Text(sorted(texts))


def register(app: Application) -> None:
    core: Core = app.bot_data["core"]
    cancel_keys(app).add(PROMPTS)  # /cancel also drops a moderator's pending note
    service = core.service(ReportService)
    if core.outbox is not None:
        service.install(core.outbox)
    startup_hooks(app).append(_startup)
    deep_links(app)["myreports"] = my_reports_link
    deep_links(app)["reports"] = reports_link
    deep_links(app)["export"] = export_link
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
    # A draft idle for IDLE_AFTER stops catching messages: they go to the other features again.
    live = private & _Active(app, core)
    buttons_expected = MessageHandler(live & other_in, press_button)
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
            CallbackQueryHandler(start_afresh, pattern=r"^rp:dr:new$"),
        ],
        states={
            KIND: [CallbackQueryHandler(kind_chosen, pattern=r"^rp:k:"), buttons_expected],
            CATEGORY: [CallbackQueryHandler(category_chosen, pattern=r"^rp:c:"), buttons_expected],
            DESCRIPTION: [
                MessageHandler(live & text_in, description_text),
                MessageHandler(live & filters.VOICE, description_voice),
                MessageHandler(live & filters.PHOTO, description_photo),
                MessageHandler(live & other_in, description_other),
            ],
            COMPOUND: [
                MessageHandler(live & text_in, compound_text),
                MessageHandler(live & other_in, need_text),
            ],
            PROPERTY: [
                CallbackQueryHandler(property_skipped, pattern=r"^rp:sk:prop$"),
                MessageHandler(live & text_in, property_text),
                MessageHandler(live & other_in, need_text),
            ],
            PHOTOS: [
                MessageHandler(live & filters.PHOTO, photo_received),
                CallbackQueryHandler(photos_done, pattern=r"^rp:ph:done$"),
                MessageHandler(live & other_in, photo_other),
            ],
            LOCATION: [
                MessageHandler(live & location_in, location_received),
                MessageHandler(live & skip_words, location_skipped),
                MessageHandler(live & text_in, place_received),
                MessageHandler(live & other_in, location_other),
            ],
            QUICK_LOCATION: [
                # Only while the photo is fresh: later a location goes to 📍 nearest stations.
                MessageHandler(live & location_in & _QuickPending(app, core), quick_location),
                MessageHandler(live & filters.PHOTO, quick_photo_more),
                MessageHandler(live & cancel_words, quick_cancel),
                MessageHandler(live & text_in & ~skip_words, quick_place),
                MessageHandler(live & other_in, quick_other),
            ],
            ANONYMITY: [CallbackQueryHandler(anonymity_chosen, pattern=r"^rp:an:"), buttons_expected],
            DUPLICATE: [CallbackQueryHandler(duplicate_answer, pattern=r"^rp:dup:"), buttons_expected],
            SUMMARY: [
                CallbackQueryHandler(summary_action, pattern=r"^rp:sum:"),
                MessageHandler(live & other_in, summary_nudge),
            ],
            RESUME: [
                CallbackQueryHandler(open_draft, pattern=r"^rp:dr:open$"),
                CallbackQueryHandler(start_afresh, pattern=r"^rp:dr:new$"),
            ],
            EDIT: [
                CallbackQueryHandler(edit_chosen, pattern=r"^rp:ed:"),
                CallbackQueryHandler(summary_action, pattern=r"^rp:sum:"),
                MessageHandler(live & other_in, edit_nudge),
            ],
        },
        fallbacks=[
            cancel_fallback(DRAFT),
            *restart,
            CallbackQueryHandler(open_draft, pattern=r"^rp:dr:open$"),
            CallbackQueryHandler(start_afresh, pattern=r"^rp:dr:new$"),
            CallbackQueryHandler(summary_action, pattern=r"^rp:sum:x$"),
            # A photo or voice note for an idle draft: nothing else takes them; say how to go on.
            MessageHandler(private & (filters.PHOTO | filters.VOICE) & fresh, idle_hint),
            CallbackQueryHandler(_stale, pattern=FLOW_PATTERN),
        ],
    )
    app.add_handler(conversation)
    # Outside the flow: /report in groups, /myreports, /reports, and old flow buttons.
    app.add_handler(CommandHandler("report", report_in_group, filters.ChatType.GROUPS))
    app.add_handler(CommandHandler("myreports", my_reports))
    app.add_handler(CommandHandler("reports", reports_command))
    app.add_handler(CommandHandler("export", export_command))
    app.add_handler(CallbackQueryHandler(_stale, pattern=FLOW_PATTERN))
