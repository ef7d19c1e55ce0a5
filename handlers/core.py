"""Core handlers: who is talking (users, groups, language), /start with deep links, /help, /lang,
/cancel, /me, role management (/grant /revoke /roles), the group's area (/area), membership updates,
the error handler and the persistence flush."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import ChatMember, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.core.app import XContext
from bot.core.authz import GRANTABLE, Perm, Role
from bot.core.i18n import LANGUAGES, resolve_language
from bot.core.messages import notice
from bot.core.ptb import end_conversation
from bot.core.ratelimit import Deferred
from bot.kit.numbers import parse_int
from handlers.common import (
    Command,
    actor_of,
    cb,
    community,
    drop_draft,
    is_private,
    main_menu,
    menu_text,
    private_only,
    reply,
    require,
)

log = logging.getLogger(__name__)

AREA_MAX_LEN = 40

COMMANDS = [
    Command("start", "cmd.start"),
    Command("help", "cmd.help"),
    Command("lang", "cmd.lang"),
    Command("cancel", "cmd.cancel", scope="private"),
    Command("me", "cmd.me", scope="private"),
    Command("area", "cmd.area", scope="group", perm=Perm.GROUP_SET_AREA),
    Command("grant", "cmd.grant", perm=Perm.ROLES_MANAGE),
    Command("revoke", "cmd.revoke", perm=Perm.ROLES_MANAGE),
    Command("roles", "cmd.roles", perm=Perm.ROLES_MANAGE),
]

DeepLink = Callable[[Update, XContext, str], Awaitable[None]]


def deep_links(app: Application) -> dict[str, DeepLink]:
    """Features register `/start <prefix>[_arg]` targets here: deep_links(app)["report"] = handler."""
    return app.bot_data.setdefault("deep_links", {})


# -- who is talking ---------------------------------------------------------------------------


async def track(update: Update, context: XContext) -> None:
    """First in line for every update: record the user and the group, pick the reply language."""
    core = context.core
    user = update.effective_user
    chat = update.effective_chat
    record = None
    if user is not None and not user.is_bot:
        record = await community(context).seen_user(
            user.id,
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
            language_code=user.language_code,
            private_chat=chat is not None and chat.type == ChatType.PRIVATE,
        )
    if (
        chat is not None
        and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
        and update.my_chat_member is None
    ):
        await community(context).seen_group(chat.id, chat.title or "", chat.type)
    message = update.message
    if (
        message is not None
        and chat is not None
        and chat.type == ChatType.PRIVATE
        and (message.text or "").startswith("/")
        and context.user_data is not None
    ):
        # A new command in private starts something else: what features waited for outside a
        # conversation (a moderator's note) is dropped, so later text is never taken for it.
        for key in cancel_keys(context.application):
            context.user_data.pop(key, None)
    default = core.config.bot.default_language
    if record is not None:
        context.lang = resolve_language(record.lang, record.language_code, default)
    elif user is not None:
        context.lang = resolve_language(None, user.language_code, default)
    await _refuse_impossible_location(update, context)


async def _refuse_impossible_location(update: Update, context: XContext) -> None:
    """A location no phone sends (NaN, infinite, beyond the poles): answered here and handled by no
    feature, so it never reaches a search, a draft or the remembered "last location"."""
    message = update.effective_message
    location = None
    if message is not None:
        location = message.location or (message.venue.location if message.venue else None)
    if location is None:
        return
    lat, lon = location.latitude, location.longitude
    if math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
        return
    log.info("update %s: impossible location (%r, %r) refused", update.update_id, lat, lon)
    if update.message is not None and is_private(update):
        await reply(update, context, context.t("error.bad_location"))
    raise ApplicationHandlerStop


async def bot_membership(update: Update, context: XContext) -> None:
    """The bot was added to, removed from, or promoted in a group."""
    change: ChatMemberUpdated = update.my_chat_member  # type: ignore[assignment]
    core = context.core
    chat = change.chat
    if chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        return
    new = change.new_chat_member
    active = new.status in (
        ChatMember.MEMBER,
        ChatMember.ADMINISTRATOR,
        ChatMember.OWNER,
        ChatMember.RESTRICTED,
    )
    can_pin = new.status == ChatMember.ADMINISTRATOR and bool(getattr(new, "can_pin_messages", False))
    was_active = change.old_chat_member.status in (
        ChatMember.MEMBER,
        ChatMember.ADMINISTRATOR,
        ChatMember.RESTRICTED,
    )
    await community(context).bot_membership(
        chat.id, title=chat.title or "", type=chat.type, active=active, status=new.status, can_pin=can_pin
    )
    core.authz.forget_group_admins(chat.id)
    log.info("group %s (%s): bot is now %s", chat.id, chat.title, new.status)
    if active and not was_active:
        await context.bot.send_message(chat.id, context.t("start.group_greeting"))


async def member_changed(update: Update, context: XContext) -> None:
    """Someone's status in a group changed: forget cached admins, so a demoted admin loses power now."""
    if update.chat_member is not None:
        context.core.authz.forget_group_admins(update.chat_member.chat.id)


async def group_migrated(update: Update, context: XContext) -> None:
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    await community(context).group_migrated(message.chat.id, message.migrate_to_chat_id)
    log.info("group %s migrated to supergroup %s", message.chat.id, message.migrate_to_chat_id)


# -- /start, /help, /lang, /cancel, /me -------------------------------------------------------


async def start(update: Update, context: XContext) -> None:
    user = update.effective_user
    if not is_private(update):
        await reply(update, context, context.t("start.group_greeting"))
        return
    payload = context.args[0] if context.args else ""
    if payload:
        prefix, _, arg = payload.partition("_")
        target = deep_links(context.application).get(prefix)
        if target is not None:
            await target(update, context, arg)
            return
        await reply(update, context, context.t("start.deep_link_unknown"), reply_markup=main_menu(context))
        return
    name = user.first_name if user else ""
    await reply(update, context, context.t("start.greeting", name=name), reply_markup=main_menu(context))


async def help_command(update: Update, context: XContext) -> None:
    from handlers import all_commands

    actor = actor_of(update)
    private = is_private(update)
    lines = [context.t("help.title")]
    for command in all_commands():
        if command.scope == "private" and not private:
            continue
        if command.scope == "group" and private:
            continue
        if command.perm is not None and not await context.core.authz.check(actor, command.perm):
            continue
        lines.append(context.t("help.line", command=command.name, description=context.t(command.description)))
    if actor.user_id is not None:
        lines.append("")
        lines.append(context.t("help.roles_line", roles=await _roles_text(context, actor.user_id)))
    if not private:
        lines.append(context.t("help.group_note", bot=context.bot.username))
    await reply(update, context, "\n".join(lines))


async def _roles_text(context: XContext, user_id: int) -> str:
    held = await context.core.authz.roles_of(user_id)
    if not held:
        return context.t("role.courier")
    return context.t("role.list_sep").join(_role_label(context, role, area) for role, area in held)


def _role_label(context: XContext, role: Role | str, area: str) -> str:
    label = context.t(f"role.{role}")
    if role == Role.ADMIN:
        return label
    return context.t("role.with_area", role=label, area=area or context.t("role.everywhere"))


async def lang_command(update: Update, context: XContext) -> None:
    buttons = [
        [InlineKeyboardButton(context.t(f"lang.{code}"), callback_data=cb("core", "lang", code))]
        for code in LANGUAGES
    ]
    await reply(update, context, context.t("lang.choose"), reply_markup=InlineKeyboardMarkup(buttons))


async def lang_chosen(update: Update, context: XContext) -> None:
    query = update.callback_query
    code = (query.data or "").rsplit(":", 1)[-1]
    if code not in LANGUAGES or update.effective_user is None:
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    await community(context).set_language(update.effective_user.id, code)
    context.lang = code
    await query.answer()
    text = context.t("lang.set")
    await query.edit_message_text(text)
    if is_private(update):
        await context.bot.send_message(
            update.effective_chat.id, context.t("menu.placeholder"), reply_markup=main_menu(context)
        )


async def cancel_command(update: Update, context: XContext) -> None:
    """/cancel outside any conversation (conversations handle it themselves: `cancel_fallback`)."""
    cleared = end_all_conversations(update, context)  # e.g. a moderator's pending note
    await reply(
        update,
        context,
        context.t("cancel.done" if cleared else "cancel.nothing"),
        reply_markup=main_menu(context) if is_private(update) else None,
    )


def end_all_conversations(update: Update, context: XContext) -> bool:
    """Leave every flow this user has open in this chat, and drop their drafts (True when something
    a feature waited for outside a conversation, such as a pending note, was dropped too).

    A courier may have started a second flow before finishing the first (/newmeeting, then
    /broadcast): one /cancel must leave both, or the forgotten one would take the next menu button as
    its answer. PTB offers no public call for this: bot/core/ptb.py is the one adapter.
    """
    for handlers in context.application.handlers.values():
        for handler in handlers:
            if isinstance(handler, ConversationHandler):
                end_conversation(handler, update)
    drafts = context.user_data.get("drafts") if context.user_data is not None else None
    if isinstance(drafts, dict):
        drafts.clear()
    cleared = False
    if context.user_data is not None:
        for key in cancel_keys(context.application):
            cleared = context.user_data.pop(key, None) is not None or cleared
    return cleared


def cancel_keys(app: Application) -> set[str]:
    """user_data keys a /cancel also clears: features register what they wait for outside a
    ConversationHandler (e.g. a moderator's pending note), so /cancel leaves that too."""
    return app.bot_data.setdefault("cancel_keys", set())


async def cancel_conversation(update: Update, context: XContext, draft: str | None = None) -> int:
    """Leave the flow (`draft` names its draft): a /cancel command leaves every flow the user has
    open; a flow's own 取消 button leaves just that flow. Then show the menu."""
    if draft is not None:
        drop_draft(context, draft)
    if update.message is not None:  # the /cancel command, not a flow's button
        end_all_conversations(update, context)
    if update.callback_query is not None:
        await update.callback_query.answer()
    await reply(
        update,
        context,
        context.t("cancel.done"),
        reply_markup=main_menu(context) if is_private(update) else None,
    )
    return ConversationHandler.END


def cancel_fallback(draft: str | None = None) -> CommandHandler:
    """The /cancel fallback of a ConversationHandler whose draft is `draft` (None: it keeps none)."""

    async def cancel(update: Update, context: XContext) -> int:
        return await cancel_conversation(update, context, draft)

    cancel.__qualname__ = f"cancel({draft})"
    return CommandHandler("cancel", cancel)


async def me_command(update: Update, context: XContext) -> None:
    user = update.effective_user
    if user is None:
        return
    # Roles, balance and area are personal: in a group, a button to the private chat instead.
    if not await private_only(update, context, "me"):
        return
    record = await community(context).user(user.id)
    balance = await community(context).balance(user.id)
    lines = [
        context.t("me.title"),
        context.t("me.name", name=(record.display_name if record else user.full_name)),
        context.t("me.language", language=context.t(f"lang.{context.lang}")),
        context.t("me.roles", roles=await _roles_text(context, user.id)),
        context.t("me.points", points=balance),
        context.t("me.area", area=(record.area if record and record.area else context.t("me.area_none"))),
        "",
        context.t("me.links"),
    ]
    await reply(update, context, "\n".join(lines))


# -- roles ------------------------------------------------------------------------------------


async def _resolve_target(
    update: Update, context: XContext, args: list[str]
) -> tuple[int | None, str, list[str]]:
    """The target user of /grant or /revoke: the replied-to message's author, a user id or @username."""
    message = update.effective_message
    if message is not None and message.reply_to_message is not None and message.reply_to_message.from_user:
        target = message.reply_to_message.from_user
        if not target.is_bot:
            await community(context).seen_user(
                target.id,
                first_name=target.first_name,
                last_name=target.last_name,
                username=target.username,
                language_code=target.language_code,
                private_chat=False,
            )
            return target.id, target.full_name, args
    if not args:
        return None, "", args
    who, rest = args[0], args[1:]
    if parse_int(who) is not None or who.startswith("@"):
        record = await community(context).find_user(who)
        if record is None:
            return None, who, rest
        return record.id, record.display_name, rest
    return None, "", args


async def grant_command(update: Update, context: XContext) -> None:
    await _change_role(update, context, grant=True)


async def revoke_command(update: Update, context: XContext) -> None:
    await _change_role(update, context, grant=False)


async def _change_role(update: Update, context: XContext, *, grant: bool) -> None:
    if not await require(update, context, Perm.ROLES_MANAGE):
        return
    usage = context.t("roles.usage" if grant else "roles.revoke_usage")
    args = list(context.args or [])
    target_id, name, rest = await _resolve_target(update, context, args)
    if target_id is None:
        await reply(update, context, context.t("roles.unknown_user", who=name) if name else usage)
        return
    if not rest:
        await reply(update, context, usage)
        return
    role_name, area = _role_code(context, rest[0]), " ".join(rest[1:]).strip()
    if role_name not in {r.value for r in GRANTABLE}:
        await reply(update, context, context.t("roles.unknown_role", role=role_name))
        return
    if len(area) > AREA_MAX_LEN:
        await reply(update, context, context.t("group.area_too_long", limit=AREA_MAX_LEN))
        return
    values = {
        "name": name,
        "role": context.t(f"role.{role_name}"),
        "area": area or context.t("role.everywhere"),
    }
    if grant:
        changed = await community(context).grant(target_id, role_name, area, update.effective_user.id)
        text = context.t("roles.granted" if changed else "roles.already", **values)
        known = [name for name, _count in await community(context).areas()]
        if area and area not in known:
            # Areas are free text: a typo (蒋村 for 蒋村街道) would silently make a new, empty area.
            text += "\n" + (
                context.t("roles.new_area", area=area, known="、".join(known))
                if known
                else context.t("roles.new_area_first", area=area)
            )
        await reply(update, context, text)
        if changed:
            await _tell_grantee(context, target_id, role_name, area)
    else:
        removed = await community(context).revoke(target_id, role_name, area)
        await reply(update, context, context.t("roles.revoked" if removed else "roles.not_held", **values))


async def _tell_grantee(context: XContext, user_id: int, role: str, area: str) -> None:
    core = context.core
    record = await community(context).user(user_id)
    if record is None or not record.private_chat or record.blocked:
        return
    lang = await core.user_lang(user_id)
    text = core.t(
        lang,
        "roles.you_were_granted",
        role=core.t(lang, f"role.{role}"),
        area=area or core.t(lang, "role.everywhere"),
    )
    stamp = core.clock.now()
    message = notice(
        kind="notice",
        dedup_key=f"role:{user_id}:{role}:{area}:{stamp.isoformat()}",
        user_id=user_id,
        text=text,
        now=stamp,
    )
    await core.outbox.enqueue([message])


async def roles_command(update: Update, context: XContext) -> None:
    if not await require(update, context, Perm.ROLES_MANAGE):
        return
    core = context.core
    grants = await community(context).grants()
    names = await community(context).users([g.user_id for g in grants])
    lines = [context.t("roles.list_title")]
    for g in grants:
        record = names.get(g.user_id)
        lines.append(
            context.t(
                "roles.list_line",
                name=(record.display_name if record else "?"),
                user_id=g.user_id,
                role=context.t(f"role.{g.role}"),
                area=g.area or context.t("role.everywhere"),
            )
        )
    if not grants:
        lines.append(context.t("roles.list_empty"))
    lines.append(context.t("roles.admins_line", ids=", ".join(str(i) for i in core.config.bot.admins) or "-"))
    await reply(update, context, "\n".join(lines))


# -- the group's area ---------------------------------------------------------------------------


async def area_command(update: Update, context: XContext) -> None:
    chat = update.effective_chat
    if chat is None or chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        await reply(update, context, context.t("group.group_only"))
        return
    group = await community(context).group(chat.id)
    args = " ".join(context.args or []).strip()
    if not args:
        current = group.area if group else None
        text = context.t("group.area_current", area=current) if current else context.t("group.area_none")
        await reply(update, context, text + "\n" + context.t("group.area_usage"))
        return
    new_area = None if args == "-" else args
    if new_area is not None and len(new_area) > AREA_MAX_LEN:
        await reply(update, context, context.t("group.area_too_long", limit=AREA_MAX_LEN))
        return
    # A moderator scoped to an area may tag groups of that area only (and may not take another area's
    # group into theirs: both the old and the new area are checked); group admins may tag their group.
    old_area = group.area if group else None
    if not await require(update, context, Perm.GROUP_SET_AREA, new_area or old_area):
        return
    if (
        old_area
        and old_area != new_area
        and not await require(update, context, Perm.GROUP_SET_AREA, old_area)
    ):
        return
    await community(context).set_group_area(chat.id, new_area)
    if new_area is None:
        await reply(update, context, context.t("group.area_cleared"))
    else:
        await reply(update, context, context.t("group.area_set", area=new_area))


# -- errors and persistence -------------------------------------------------------------------


async def on_error(update: object, context: XContext) -> None:
    """Log with the update's context; tell the user, in their language, that nothing was lost.

    Telegram's own refusals and network trouble are one line each (no traceback: they are not our
    bugs); a reply handed to the outbox (a busy group) is no error at all. ERROR is for our bugs."""
    error = context.error
    query = update.callback_query if isinstance(update, Update) else None
    if isinstance(error, Deferred):
        log.info("update %s: %s", getattr(update, "update_id", None), error.message)
        await _answer_quietly(context, query)
        return
    if isinstance(context.error, BadRequest) and "not modified" in str(context.error).lower():
        # A double tap redrew a message with what it already shows: nothing went wrong.
        log.info("update %s: message not modified (a repeated tap)", getattr(update, "update_id", None))
        query = update.callback_query if isinstance(update, Update) else None
        if query is not None:
            with contextlib.suppress(TelegramError):
                await query.answer()
        return
    chat_id = user_id = None
    if isinstance(update, Update):
        chat_id = update.effective_chat.id if update.effective_chat else None
        user_id = update.effective_user.id if update.effective_user else None
    if isinstance(error, Forbidden | NetworkError):  # BadRequest, TimedOut, 5xx, ... (not RetryAfter)
        log.warning(
            "update %s (chat=%s user=%s): Telegram: %s: %s",
            getattr(update, "update_id", None),
            chat_id,
            user_id,
            type(error).__name__,
            error.message,
        )
        if isinstance(error, Forbidden):
            return  # blocked or removed: there is nobody to tell
    else:
        log.error(
            "error handling update %s (chat=%s user=%s)",
            getattr(update, "update_id", None),
            chat_id,
            user_id,
            exc_info=error,
        )
    if not isinstance(update, Update) or chat_id is None:
        return
    try:
        # The error handler gets a fresh context: look the user's language up again.
        lang = await context.core.user_lang(user_id) if user_id is not None else context.lang
        text = context.core.t(lang, "error.generic")
        limiter = context.application.bot_data.get("limiter")
        if query is not None and not (limiter is not None and limiter.was_answered(query.id)):
            await query.answer(text, show_alert=True)
        else:
            await context.bot.send_message(chat_id, text)
    except Exception as exc:
        log.warning("could not tell chat %s about the error: %s", chat_id, exc)


async def flush_persistence(update: object, context: XContext) -> None:
    """Last in line: write conversation states and user/chat data now, so kill -9 loses no draft."""
    await context.application.update_persistence()


async def unknown_button(update: Update, context: XContext) -> None:
    await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


async def unknown_command(update: Update, context: XContext) -> None:
    if is_private(update):
        await reply(update, context, context.t("authz.unknown_command"))


async def _answer_quietly(context: XContext, query: Any) -> None:
    """End a button's spinner unless this process already answered it (a second answer is refused)."""
    limiter = context.application.bot_data.get("limiter")
    if query is None or (limiter is not None and limiter.was_answered(query.id)):
        return
    with contextlib.suppress(TelegramError):
        await query.answer()


def register_first(app: Application) -> None:
    app.add_handler(TypeHandler(Update, track), group=-10)
    app.add_handler(ChatMemberHandler(bot_membership, ChatMemberHandler.MY_CHAT_MEMBER), group=-5)
    app.add_handler(ChatMemberHandler(member_changed, ChatMemberHandler.CHAT_MEMBER), group=-5)
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, group_migrated), group=-5)


# Short Chinese names people use besides the catalog's labels (社区管理员, 志愿队长, 驿站管理员).
_ROLE_ALIASES = {
    "管理员": "moderator",
    "版主": "moderator",
    "社工": "moderator",
    "队长": "captain",
    "站长": "station_keeper",
}


def _role_code(context: XContext, typed: str) -> str:
    """`moderator`, or its label in any language (社区管理员, Moderator), or a common short name (队长)."""
    word = typed.strip().lower()
    for role in GRANTABLE:
        if word == role.value or word in {
            x.lower() for x in context.core.catalog.all_languages(f"role.{role.value}")
        }:
            return role.value
    return _ROLE_ALIASES.get(word, word)


async def me_link(update: Update, context: XContext, _arg: str) -> None:
    await me_command(update, context)


def register(app: Application) -> None:
    catalog = app.bot_data["core"].catalog
    deep_links(app)["me"] = me_link
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("lang", lang_command))
    app.add_handler(CallbackQueryHandler(lang_chosen, pattern=r"^core:lang:"))
    app.add_handler(CommandHandler("cancel", cancel_command))
    app.add_handler(CommandHandler("me", me_command))
    app.add_handler(MessageHandler(menu_text(catalog, "menu.me"), me_command))
    app.add_handler(CommandHandler("grant", grant_command))
    app.add_handler(CommandHandler("revoke", revoke_command))
    app.add_handler(CommandHandler("roles", roles_command))
    app.add_handler(CommandHandler("area", area_command))


def register_last(app: Application) -> None:
    # Feature handlers all live in group 0, so this one only sees commands nobody took.
    app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, unknown_command))
    # A button no feature knows (an old keyboard, forged data): answered, or its spinner would spin on.
    app.add_handler(CallbackQueryHandler(unknown_button))
    app.add_handler(TypeHandler(Update, flush_persistence), group=1000)
    app.add_error_handler(on_error)  # type: ignore[arg-type]
