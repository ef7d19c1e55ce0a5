"""Broadcast notices: /broadcast (compose -> audience -> preview -> send / schedule / cancel),
/broadcasts (recent figures, cancel a queued one), /subscribe and /unsubscribe for couriers."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.broadcast import Broadcast, BroadcastError, BroadcastService, Draft
from bot.core.app import XContext
from bot.core.authz import Perm
from bot.core.runtime import startup_hooks
from bot.kit.timeparse import InputError, parse_time
from handlers.common import (
    Command,
    cb,
    community,
    draft_state,
    drop_draft,
    is_private,
    open_private_button,
    reply,
    require,
)
from handlers.core import cancel_conversation, cancel_fallback

COMPOSE, AUDIENCE, AREAS, PREVIEW, WHEN = range(5)
DRAFT = "broadcast"
MESSAGE_LIMIT = 4096  # Telegram's limit for the text of one message

COMMANDS = [
    Command("broadcast", "broadcast.cmd", scope="private", perm=Perm.BROADCAST_SEND),
    Command("broadcasts", "broadcast.cmd_list", scope="private", perm=Perm.BROADCAST_SEND),
    Command("subscribe", "broadcast.cmd_subscribe", scope="private"),
    Command("unsubscribe", "broadcast.cmd_unsubscribe", scope="private"),
]


def _service(context: XContext) -> BroadcastService:
    return context.core.service(BroadcastService)


def _draft_state(context: XContext) -> dict[str, Any]:
    return draft_state(context, DRAFT)


def _draft(context: XContext) -> Draft:
    return Draft.from_json(_draft_state(context).get("draft", {}))


def _save(context: XContext, draft: Draft, **extra: Any) -> None:
    state = _draft_state(context)
    state["draft"] = draft.to_json()
    state.update(extra)


def _drop(context: XContext) -> None:
    drop_draft(context, DRAFT)


# -- entry ------------------------------------------------------------------------------------


async def start(update: Update, context: XContext) -> int:
    if not is_private(update):
        await reply(
            update,
            context,
            context.t("broadcast.private_only"),
            reply_markup=open_private_button(context, "broadcast"),
        )
        return ConversationHandler.END
    if not await require(update, context, Perm.BROADCAST_SEND):
        return ConversationHandler.END
    _drop(context)
    _save(context, Draft())
    await reply(update, context, context.t("broadcast.ask_text"))
    return COMPOSE


async def composed(update: Update, context: XContext) -> int:
    message = update.effective_message
    draft = _draft(context)
    if message.photo:
        draft.photo_file_id = message.photo[-1].file_id
        draft.text = message.caption or ""
    else:
        draft.photo_file_id = None
        draft.text = message.text or ""
    try:
        _service(context).validate(
            Draft(text=draft.text, photo_file_id=draft.photo_file_id, audience="groups")
        )
    except BroadcastError as exc:
        await reply(update, context, context.t(exc.key, **exc.values))
        return COMPOSE
    _save(context, draft)
    return await _ask_audience(update, context)


async def not_composable(update: Update, context: XContext) -> int:
    await reply(update, context, context.t("broadcast.not_text"))
    return COMPOSE


async def _ask_audience(update: Update, context: XContext) -> int:
    core = context.core
    allowed = await core.authz.areas_for(update.effective_user.id, Perm.BROADCAST_SEND)
    rows = []
    if allowed is None:
        groups = await _service(context).group_audience()
        subscribers = await community(context).subscribers()
        rows.append(
            [
                InlineKeyboardButton(
                    context.t("broadcast.aud_groups", count=len(groups)),
                    callback_data=cb("bc", "aud", "groups"),
                )
            ]
        )
        rows.append(
            [InlineKeyboardButton(context.t("broadcast.aud_areas"), callback_data=cb("bc", "aud", "areas"))]
        )
        rows.append(
            [
                InlineKeyboardButton(
                    context.t("broadcast.aud_subscribers", count=len(subscribers)),
                    callback_data=cb("bc", "aud", "subscribers"),
                )
            ]
        )
    else:
        rows.append(
            [InlineKeyboardButton(context.t("broadcast.aud_areas"), callback_data=cb("bc", "aud", "areas"))]
        )
    rows.append([InlineKeyboardButton(context.t("broadcast.btn_cancel"), callback_data=cb("bc", "cancel"))])
    await reply(update, context, context.t("broadcast.ask_audience"), reply_markup=InlineKeyboardMarkup(rows))
    return AUDIENCE


async def audience_chosen(update: Update, context: XContext) -> int:
    query = update.callback_query
    choice = query.data.rsplit(":", 1)[-1]
    if not await require(update, context, Perm.BROADCAST_SEND):
        return ConversationHandler.END
    allowed = await context.core.authz.areas_for(update.effective_user.id, Perm.BROADCAST_SEND)
    draft = _draft(context)
    if choice in ("groups", "subscribers"):
        if allowed is not None:
            await query.answer(
                context.t("broadcast.only_your_areas", areas="、".join(sorted(allowed))), show_alert=True
            )
            return AUDIENCE
        draft.audience, draft.areas = choice, []
        _save(context, draft)
        await query.answer()
        return await _preview(update, context, new_message=True)
    if choice != "areas":
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return AUDIENCE
    areas = [name for name, _count in await community(context).areas()]
    if allowed is not None:
        areas = [a for a in areas if a in allowed]
    if not areas:
        await query.answer(context.t("broadcast.no_area_groups"), show_alert=True)
        return AUDIENCE
    draft.audience, draft.areas = "areas", []
    _save(context, draft, areas_all=areas)
    await query.answer()
    await query.edit_message_text(
        context.t("broadcast.ask_areas"), reply_markup=_areas_keyboard(context, areas, [])
    )
    return AREAS


def _areas_keyboard(context: XContext, areas: list[str], chosen: list[str]) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(("✅ " if a in chosen else "⬜ ") + a, callback_data=cb("bc", "area", i))]
        for i, a in enumerate(areas)
    ]
    rows.append(
        [
            InlineKeyboardButton(context.t("broadcast.areas_done"), callback_data=cb("bc", "areas", "ok")),
            InlineKeyboardButton(context.t("broadcast.btn_cancel"), callback_data=cb("bc", "cancel")),
        ]
    )
    return InlineKeyboardMarkup(rows)


async def area_toggled(update: Update, context: XContext) -> int:
    query = update.callback_query
    state = _draft_state(context)
    areas = state.get("areas_all", [])
    try:
        index = int(query.data.rsplit(":", 1)[-1])
        area = areas[index]
    except (ValueError, IndexError):
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return AREAS
    draft = _draft(context)
    draft.areas = [a for a in draft.areas if a != area] if area in draft.areas else [*draft.areas, area]
    _save(context, draft)
    await query.answer()
    await query.edit_message_reply_markup(_areas_keyboard(context, areas, draft.areas))
    return AREAS


async def areas_done(update: Update, context: XContext) -> int:
    query = update.callback_query
    draft = _draft(context)
    if not draft.areas:
        await query.answer(context.t("broadcast.no_areas"), show_alert=True)
        return AREAS
    await query.answer()
    return await _preview(update, context, new_message=True)


# -- preview, options, send -------------------------------------------------------------------


async def _preview(update: Update, context: XContext, *, new_message: bool) -> int:
    service = _service(context)
    draft = _draft(context)
    try:
        plan = await service.plan(draft)
    except BroadcastError as exc:
        await reply(update, context, context.t(exc.key, **exc.values))
        return PREVIEW
    t = context.t
    tz = context.core.tz
    lines = [t("broadcast.preview_title"), "", "", ""]  # the notice goes in [2] once the rest is known
    if draft.audience == "areas":
        lines.append(t("broadcast.preview_audience_areas", areas=("、".join(draft.areas))))
    else:
        lines.append(t(f"broadcast.preview_audience_{draft.audience}"))
    lines.append(t("broadcast.preview_count", count=len(plan.recipients)))
    # When it goes: the time set, else now, unless the rush holds it (the held line says until when).
    # Urgent means "not held by the rush", not "now": a time set still holds.
    if draft.at:
        lines.append(t("broadcast.preview_at", at=draft.at.astimezone(tz).strftime("%Y-%m-%d %H:%M")))
    elif plan.held_until is None:
        lines.append(t("broadcast.preview_now"))
    if plan.held_until is not None:
        window = next(
            (
                w
                for w in context.core.config.broadcast.rush_windows
                if w.split("-")[1].strip() == plan.held_until.astimezone(tz).strftime("%H:%M")
            ),
            "",
        )
        lines.append(
            t("broadcast.preview_held", window=window, at=plan.held_until.astimezone(tz).strftime("%H:%M"))
        )
    if draft.urgent:
        lines.append(t("broadcast.preview_urgent"))
    if draft.pin:
        lines.append(t("broadcast.preview_pin"))
    mark = {True: "✅ ", False: "⬜ "}
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    mark[draft.urgent] + t("broadcast.btn_urgent"), callback_data=cb("bc", "opt", "urgent")
                ),
                InlineKeyboardButton(
                    mark[draft.pin] + t("broadcast.btn_pin"), callback_data=cb("bc", "opt", "pin")
                ),
            ],
            [
                InlineKeyboardButton(t("broadcast.btn_send"), callback_data=cb("bc", "send")),
                InlineKeyboardButton(t("broadcast.btn_schedule"), callback_data=cb("bc", "when")),
            ],
            [InlineKeyboardButton(t("broadcast.btn_cancel"), callback_data=cb("bc", "cancel"))],
        ]
    )
    lines[2] = _fit_notice(context, draft.text, len("\n".join(lines)))
    text = "\n".join(lines)
    # Plain text, like the notice itself: "<8点>" or "A & B" are shown as typed.
    query = update.callback_query
    if query is not None and not new_message:
        await query.edit_message_text(text, reply_markup=keyboard)
    else:
        await reply(update, context, text, reply_markup=keyboard)
    return PREVIEW


def _fit_notice(context: XContext, text: str, rest: int) -> str:
    """The notice as the preview shows it: whole when the preview fits one message (4,096
    characters), else its start and a line saying it goes out in full."""
    if not text:
        return "🖼"
    room = MESSAGE_LIMIT - rest
    if len(text) <= room:
        return text
    note = context.t("broadcast.preview_cut", shown="{shown}", total=len(text))
    shown = max(0, room - len(note) - 8)
    return text[:shown] + "…\n" + note.replace("{shown}", str(shown))


async def option_toggled(update: Update, context: XContext) -> int:
    query = update.callback_query
    option = query.data.rsplit(":", 1)[-1]
    draft = _draft(context)
    if option == "urgent":
        draft.urgent = not draft.urgent
    elif option == "pin":
        draft.pin = not draft.pin
    else:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return PREVIEW
    _save(context, draft)
    await query.answer()
    return await _preview(update, context, new_message=False)


async def ask_when(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await reply(update, context, context.t("broadcast.ask_when", tz=context.core.zone_name(context.lang)))
    return WHEN


async def when_given(update: Update, context: XContext) -> int:
    text = (update.effective_message.text or "").strip()
    core = context.core
    now = core.clock.now()
    try:
        when = parse_time(text, now, core.tz)
    except InputError as exc:
        key = "broadcast.past_when" if exc.code in ("past", "past_date") else "broadcast.bad_when"
        await reply(update, context, context.t(key, text=text[:40]))
        return WHEN
    draft = _draft(context)
    draft.at = when
    _save(context, draft)
    return await _preview(update, context, new_message=True)


async def send(update: Update, context: XContext) -> int:
    query = update.callback_query
    if not await require(update, context, Perm.BROADCAST_SEND):
        return ConversationHandler.END
    draft = _draft(context)
    allowed = await context.core.authz.areas_for(update.effective_user.id, Perm.BROADCAST_SEND)
    if allowed is not None and (draft.audience != "areas" or not set(draft.areas) <= allowed):
        await query.answer(
            context.t("broadcast.only_your_areas", areas="、".join(sorted(allowed))), show_alert=True
        )
        return PREVIEW
    service = _service(context)
    try:
        broadcast, plan = await service.submit(
            draft,
            author_id=update.effective_user.id,
            lang=context.lang,
            progress_chat_id=query.message.chat.id,
            progress_message_id=query.message.message_id,
        )
    except BroadcastError as exc:
        await query.answer(context.t(exc.key, **exc.values), show_alert=True)
        return PREVIEW
    _drop(context)
    await query.answer(context.t("broadcast.queued", count=len(plan.recipients)))
    # Through the service's one lock, so this first edit and the watcher's never cross.
    await service.refresh_progress(broadcast.id)
    return ConversationHandler.END


async def cancel_button(update: Update, context: XContext) -> int:
    _drop(context)
    return await cancel_conversation(update, context)


async def stale_in_conversation(update: Update, context: XContext) -> int | None:
    await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)
    return None


# -- outside the conversation -----------------------------------------------------------------


async def _may_manage(context: XContext, user_id: int, b: Broadcast) -> bool:
    """A moderator of some areas sees and stops their own notices and those to their areas only."""
    reach = b.areas if b.audience == "areas" else []  # "all groups" or subscribers reach everywhere
    return await context.core.authz.covers(user_id, Perm.BROADCAST_SEND, reach, owner_id=b.author_id)


async def list_broadcasts(update: Update, context: XContext) -> None:
    if not await require(update, context, Perm.BROADCAST_SEND):
        return
    service = _service(context)
    user_id = update.effective_user.id
    items = [(b, f) for b, f in await service.recent(30) if await _may_manage(context, user_id, b)][:10]
    if not items:
        await reply(update, context, context.t("broadcast.list_empty"))
        return
    lines = [context.t("broadcast.list_title")]
    buttons = []
    tz = context.core.tz
    for b, f in items:
        preview = (b.text or "🖼").replace("\n", " ")
        lines.append(
            context.t(
                "broadcast.list_line",
                id=b.id,
                when=b.send_at.astimezone(tz).strftime("%m-%d %H:%M"),
                state=context.t(f"broadcast.state_{b.state}"),
                sent=f.sent,
                total=f.total,
                failed=f.failed,
                skipped=f.skipped,
                text=(preview[:40] + ("…" if len(preview) > 40 else "")),
            )
        )
        if b.state in ("queued", "sending"):
            buttons.append(
                [
                    InlineKeyboardButton(
                        context.t("broadcast.btn_cancel_broadcast", id=b.id),
                        callback_data=cb("bc", "stop", b.id),
                    )
                ]
            )
    await reply(
        update, context, "\n".join(lines), reply_markup=InlineKeyboardMarkup(buttons) if buttons else None
    )


async def stop_broadcast(update: Update, context: XContext) -> None:
    query = update.callback_query
    if not await require(update, context, Perm.BROADCAST_SEND):
        return
    try:
        broadcast_id = int(query.data.rsplit(":", 1)[-1])
    except ValueError:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    broadcast = await _service(context).get(broadcast_id)
    if broadcast is None:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    if not await _may_manage(context, update.effective_user.id, broadcast):
        await query.answer(context.t("authz.wrong_area"), show_alert=True)
        return
    if await _service(context).cancel(broadcast_id):
        await query.answer(context.t("broadcast.cancelled", id=broadcast_id), show_alert=True)
        await _service(context).refresh_progress(broadcast_id)
    else:
        await query.answer(context.t("broadcast.cancel_too_late", id=broadcast_id), show_alert=True)


async def subscribe(update: Update, context: XContext) -> None:
    await community(context).set_subscribed(update.effective_user.id, True)
    await reply(update, context, context.t("broadcast.subscribed"))


async def unsubscribe(update: Update, context: XContext) -> None:
    await community(context).set_subscribed(update.effective_user.id, False)
    await reply(update, context, context.t("broadcast.unsubscribed"))


async def _startup(core: Any, _app: Application) -> None:
    await core.service(BroadcastService).resume()


def register(app: Application) -> None:
    conversation = ConversationHandler(
        entry_points=[
            CommandHandler("broadcast", start),
            # The group's "open private chat" button lands here (t.me/<bot>?start=broadcast).
            CommandHandler("start", start, filters.ChatType.PRIVATE & filters.Regex(r"^/start broadcast$")),
        ],
        states={
            COMPOSE: [
                MessageHandler(filters.PHOTO | (filters.TEXT & ~filters.COMMAND), composed),
                MessageHandler(~filters.COMMAND, not_composable),
            ],
            AUDIENCE: [CallbackQueryHandler(audience_chosen, pattern=r"^bc:aud:")],
            AREAS: [
                CallbackQueryHandler(area_toggled, pattern=r"^bc:area:"),
                CallbackQueryHandler(areas_done, pattern=r"^bc:areas:ok$"),
            ],
            PREVIEW: [
                CallbackQueryHandler(option_toggled, pattern=r"^bc:opt:"),
                CallbackQueryHandler(ask_when, pattern=r"^bc:when$"),
                CallbackQueryHandler(send, pattern=r"^bc:send$"),
            ],
            WHEN: [MessageHandler(filters.TEXT & ~filters.COMMAND, when_given)],
        },
        fallbacks=[
            cancel_fallback(DRAFT),
            CallbackQueryHandler(cancel_button, pattern=r"^bc:cancel$"),
            CallbackQueryHandler(stale_in_conversation, pattern=r"^bc:(aud|area|areas|opt|when|send)"),
        ],
        name="broadcast",
        persistent=True,
        allow_reentry=True,
    )
    app.add_handler(conversation)
    app.add_handler(CommandHandler("broadcasts", list_broadcasts))
    app.add_handler(CallbackQueryHandler(stop_broadcast, pattern=r"^bc:stop:\d+$"))
    app.add_handler(CallbackQueryHandler(stale_outside, pattern=r"^bc:"))
    app.add_handler(CommandHandler("subscribe", subscribe, filters.ChatType.PRIVATE))
    app.add_handler(CommandHandler("unsubscribe", unsubscribe, filters.ChatType.PRIVATE))
    startup_hooks(app).append(_startup)


async def stale_outside(update: Update, context: XContext) -> None:
    """A button of a finished or forgotten broadcast draft."""
    await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)
