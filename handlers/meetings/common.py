"""Helpers the meeting handlers share: conversation states and the draft, buttons, error replies,
the authorization gate of every manage button and step, and the group/area picker (used when
scheduling and when editing a meeting's groups)."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ConversationHandler

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.kit.recurrence import RecurrenceError
from bot.meetings.input import InputError
from bot.meetings.service import Meeting, MeetingError, MeetingService
from handlers.common import cb, community, draft_state, drop_draft, reply, require

# Conversation states.
TITLE, WHEN, RECUR, NWEEKS, RRULE, DURATION, PLACE, TARGETS, OFFSETS, DEADLINE, CONFIRM = range(11)
MOVE, OUTCOME, EDIT_TITLE, EDIT_PLACE, TIMEZONE = range(11, 16)
DRAFT = "meeting"


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


async def _in_scope(context: XContext, user_id: int, meeting: Meeting) -> bool:
    """May this moderator manage the meeting? The rule is authz's `covers`: everywhere, the meetings
    they organize, or those whose every target (areas, and the areas of the chosen groups; "" for a
    group without one) lies in their areas."""
    reach = sorted(await _service(context).meeting_areas(meeting))
    return await context.core.authz.covers(
        user_id, Perm.MEETINGS_MANAGE, reach, owner_id=meeting.organizer_id
    )


async def _may_manage(update: Update, context: XContext, meeting: Meeting) -> bool:
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
) -> Meeting | None:
    try:
        meeting = await _service(context).get(int(raw_id))
    except ValueError:
        meeting = None
    if meeting is None or (active and not meeting.active):
        if update.callback_query is not None:
            await _stale(update, context)
        return None
    return meeting


# -- the conversation's draft ------------------------------------------------------------------------


def _draft(context: XContext) -> dict[str, Any]:
    return draft_state(context, DRAFT)


def _drop(context: XContext) -> None:
    drop_draft(context, DRAFT)


# -- groups and areas to announce in (scheduling, and the groups edit) -------------------------------


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
