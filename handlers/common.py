"""Helpers every feature's handlers share: the actor, the authorization gate, replies, menus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType
from telegram.ext import filters

from bot.community import Community
from bot.core.app import XContext
from bot.core.authz import ANONYMOUS_ADMIN_ID, POLICY, Actor, Perm
from bot.core.i18n import Catalog

MAX_CALLBACK_BYTES = 64


@dataclass(frozen=True)
class Command:
    """A bot command for /help and setMyCommands."""

    name: str
    # Catalog key of the one-line description.
    description: str
    # "private", "group" or "all"
    scope: str = "all"
    # Shown in /help only to users holding this permission (None: everyone).
    perm: Perm | None = None


def community(context: XContext) -> Community:
    """Users, groups, areas and roles (bot/community.py)."""
    return context.core.service(Community)


def cb(*parts: object) -> str:
    """Callback data "feature:action:args"; Telegram allows at most 64 bytes."""
    data = ":".join(str(p) for p in parts)
    if len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data over 64 bytes: {data!r}")
    return data


def actor_of(update: Update) -> Actor:
    chat = update.effective_chat
    user = update.effective_user
    message = update.effective_message
    anonymous = bool(
        message is not None
        and message.sender_chat is not None
        and chat is not None
        and message.sender_chat.id == chat.id
        and (user is None or user.id == ANONYMOUS_ADMIN_ID)
    )
    return Actor(
        user_id=None if anonymous or user is None else user.id,
        chat_id=chat.id if chat else None,
        chat_type=chat.type if chat else None,
        anonymous_admin=anonymous,
    )


async def require(update: Update, context: XContext, perm: Perm, area: str | None = None) -> bool:
    """The gate for every privileged command and button: True, or a refusal sent and False."""
    decision = await context.core.authz.check(actor_of(update), perm, area)
    if decision.allowed:
        return True
    if decision.reason == "anonymous":
        text = context.t("authz.anonymous_admin")
    elif decision.reason == "area":
        text = context.t("authz.wrong_area")
    else:
        roles = ["admin", *sorted(r.value for r in POLICY[perm])]
        text = context.t(
            "authz.denied", roles=context.t("role.list_sep").join(context.t(f"role.{r}") for r in roles)
        )
    await notify(update, context, text, alert=True)
    return False


async def notify(
    update: Update, context: XContext, text: str, *, alert: bool = False, **kwargs: Any
) -> Message | None:
    """Answer a button press (as a toast/alert) or reply to a message."""
    query = update.callback_query
    if query is not None:
        await query.answer(text[:200], show_alert=alert)
        return None
    return await reply(update, context, text, **kwargs)


async def reply(update: Update, context: XContext, text: str, **kwargs: Any) -> Message | None:
    chat = update.effective_chat
    if chat is None:
        return None
    return await context.bot.send_message(chat.id, text, **kwargs)


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE


def menu_text(catalog: Catalog, key: str) -> filters.BaseFilter:
    """Matches a main-menu button's text in any language."""
    return filters.Text(sorted(catalog.all_languages(key)))


def main_menu(context: XContext) -> ReplyKeyboardMarkup:
    t = context.t
    return ReplyKeyboardMarkup(
        [
            [KeyboardButton(t("menu.stations"), request_location=True), KeyboardButton(t("menu.report"))],
            [
                KeyboardButton(t("menu.wishes")),
                KeyboardButton(t("menu.meetings")),
                KeyboardButton(t("menu.me")),
            ],
        ],
        resize_keyboard=True,
        is_persistent=True,
        input_field_placeholder=t("menu.placeholder"),
    )


def deep_link(context: XContext, payload: str) -> str:
    return f"https://t.me/{context.bot.username}?start={payload}"


def open_private_button(
    context: XContext, payload: str, label_key: str = "error.open_private"
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(context.t(label_key), url=deep_link(context, payload))]]
    )


def is_moderators_chat(context: XContext, chat_id: int | None) -> bool:
    """One of the configured moderators' chats (bot.moderator_chat_id, bot.area_moderator_chats)."""
    bot = context.core.config.bot
    return (
        chat_id is not None
        and chat_id != 0
        and (chat_id == bot.moderator_chat_id or chat_id in bot.area_moderator_chats.values())
    )


async def private_only(
    update: Update, context: XContext, payload: str, *, moderators_chat: bool = False
) -> bool:
    """True in a private chat (and, with `moderators_chat`, in a moderators' chat). Elsewhere, where
    personal data (names, exact locations, photos, balances, codes, rosters) must not be shown,
    answer with a button that opens the private chat at `/start <payload>`, and return False."""
    if is_private(update):
        return True
    if moderators_chat and is_moderators_chat(
        context, update.effective_chat.id if update.effective_chat else None
    ):
        return True
    query = update.callback_query
    if query is not None:
        await query.answer(context.t("error.private_only_alert"), show_alert=True)
        return False
    await reply(
        update, context, context.t("error.private_only"), reply_markup=open_private_button(context, payload)
    )
    return False


def draft_state(context: XContext, name: str) -> dict[str, Any]:
    """A conversation's draft in user_data["drafts"][name] (persisted; JSON values only)."""
    drafts = context.user_data.setdefault("drafts", {})
    return drafts.setdefault(name, {})


def drop_draft(context: XContext, name: str) -> None:
    context.user_data.get("drafts", {}).pop(name, None)


def stale_button_text(context: XContext) -> str:
    return context.t("error.stale_button")


async def find_user(context: XContext, who: str) -> int | None:
    """A known user by id ("123456789") or @username; None if the bot never saw them."""
    record = await community(context).find_user(who)
    return record.id if record else None
