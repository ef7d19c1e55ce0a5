"""Moderators: the card buttons (受理 / 处理中 / 已解决 / 驳回 / 标记重复 / 撤销), the ForceReply prompts for
notes and the duplicate's reference, the reporter's 是/没有 answer to "已解决了吗?", and the escalation job.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from telegram import ForceReply, Message, MessageEntity, Update
from telegram.error import BadRequest
from telegram.ext import Application, filters

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.core.container import Core
from bot.reports.service import (
    CARD_EMPTY,
    MODERATOR_ACTIONS,
    NOTE_REQUIRED,
    TRANSITIONS,
    UNDO_ACTION,
    Outcome,
    Refusal,
    ReportService,
)
from handlers.common import private_only, reply, require
from handlers.reports.common import _markup, _parse, _parse_id, _refusal, _service, _stale

log = logging.getLogger(__name__)

ESCALATION_INTERVAL_SECONDS = 600


# -- moderator card buttons -----------------------------------------------------------------------


async def card_button(update: Update, context: XContext) -> None:
    """受理 / 处理中 / 已解决 / 驳回 / 标记重复 / 撤销 on a card: re-read the report, re-check the role.

    Decisions reach the reporter after reports.undo_grace_seconds (as on the desk), so a mis-tap
    undone at once is never heard of: the reporter is told only of the final state."""
    query = update.callback_query
    pieces = _parse(query.data, 4)
    report_id = _parse_id(pieces[2]) if pieces is not None else None
    if pieces is not None and report_id is not None and pieces[3] == CARD_EMPTY:
        await query.answer(context.t("reports.mod.slot_empty"))  # an empty slot: nothing to do here
        return
    if pieces is None or report_id is None or pieces[3] not in (*MODERATOR_ACTIONS, UNDO_ACTION):
        await _stale(update, context)
        return
    action = pieces[3]
    service = _service(context)
    report = await service.get(report_id)
    if report is None:
        await _stale(update, context)
        return
    if not await require(update, context, Perm.REPORTS_HANDLE, report.area or ""):
        return
    if not await private_only(update, context, "reports", moderators_chat=True):
        return  # a card's buttons outside the moderators' chats (forged): the card is not drawn there
    message = query.message
    card_ref = (message.chat.id, message.message_id) if isinstance(message, Message) else None
    # A new decision on this report: the moderator's earlier ✍️ prompts for it are no longer asked.
    _supersede(context.user_data.setdefault(PROMPTS, {}), report.id)
    if action == UNDO_ACTION:
        outcome = await service.undo(report.id, update.effective_user.id, edited_card=card_ref)
        if outcome.changed and outcome.report is not None:
            status = context.t(f"reports.status.{outcome.report.status}")
            await query.answer(context.t("reports.mod.undone", ref=outcome.report.ref, status=status))
            await _edit_card(context, card_ref, outcome.report)
        else:
            await _answer_outcome(update, context, outcome, card_ref)
        return
    allowed_from, target = TRANSITIONS[action]
    if report.status not in allowed_from:
        # Someone else was faster (or a second press): show the current state, change nothing.
        code = "already" if report.status == target else "not_allowed"
        await query.answer(
            _refusal(context, Refusal(code, {"ref": report.ref, "status": report.status})), show_alert=True
        )
        await _edit_card(context, card_ref, report)
        return
    if action in NOTE_REQUIRED or action == "duplicate":
        key = "reports.mod.ask_duplicate_ref" if action == "duplicate" else "reports.mod.ask_note"
        status = context.t(f"reports.status.{target}")
        pending = {"report": report.id, "action": action, "card": list(card_ref) if card_ref else None}
        await _send_prompt(update, context, context.t(key, ref=report.ref, status=status), pending)
        await query.answer(context.t("reports.mod.asked"))
        return
    outcome = await service.transition(
        report.id,
        action,
        update.effective_user.id,
        edited_card=card_ref,
        notice_delay_seconds=context.core.config.reports.undo_grace_seconds,
    )
    await _answer_outcome(update, context, outcome, card_ref)


async def _answer_outcome(
    update: Update, context: XContext, outcome: Outcome, card_ref: tuple[int, int] | None
) -> None:
    query = update.callback_query
    report = outcome.report
    if outcome.changed and report is not None:
        text = context.t(
            "reports.mod.changed", ref=report.ref, status=context.t(f"reports.status.{report.status}")
        )
        if query is not None:
            await query.answer(text)
        else:
            await reply(
                update,
                context,
                context.t(
                    "reports.mod.reply_done",
                    ref=report.ref,
                    status=context.t(f"reports.status.{report.status}"),
                ),
            )
    else:
        refusal = outcome.refusal or Refusal("stale")
        if query is not None:
            await query.answer(_refusal(context, refusal), show_alert=True)
        else:
            await reply(update, context, _refusal(context, refusal))
    if report is not None:
        await _edit_card(context, card_ref, report)


async def _edit_card(context: XContext, card_ref: tuple[int, int] | None, report: Any) -> None:
    if card_ref is None:
        return
    params = await _service(context).card(report, chat_id=card_ref[0])
    with contextlib.suppress(BadRequest):  # unchanged, or deleted meanwhile
        await context.bot.edit_message_text(
            params["text"],
            chat_id=card_ref[0],
            message_id=card_ref[1],
            reply_markup=_markup(params["reply_markup"]),
        )


PROMPTS = "rp_prompts"
MAX_PROMPTS = 20


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def _send_prompt(update: Update, context: XContext, text: str, pending: dict[str, Any]) -> None:
    """A ✍️ prompt (or a retry after an error) as ForceReply(selective=True), remembered as pending.

    Selective targets the moderator: the retry replies to their message; the first prompt (after a
    button press) mentions them in a group. Every prompt of one pending action shares its "pid", so a
    reply to the first prompt or to an error answer counts for the same action.
    """
    chat = update.effective_chat
    user = update.effective_user
    message = update.message
    kwargs: dict[str, Any] = {"reply_markup": ForceReply(selective=True)}
    if message is not None:
        kwargs["reply_to_message_id"] = message.message_id
        kwargs["allow_sending_without_reply"] = True
    elif chat.type != "private" and user is not None:
        name = user.full_name or str(user.id)
        kwargs["entities"] = [
            MessageEntity(MessageEntity.TEXT_MENTION, _utf16_len(text) + 1, _utf16_len(name), user=user)
        ]
        text = f"{text}\n{name}"
    sent = await context.bot.send_message(chat.id, text, **kwargs)
    prompts = context.user_data.setdefault(PROMPTS, {})
    entry = dict(pending)
    entry["chat"] = sent.chat_id
    entry["at"] = context.core.clock.now().isoformat()
    entry.setdefault("pid", f"{sent.chat_id}:{sent.message_id}")
    prompts[f"{sent.chat_id}:{sent.message_id}"] = entry
    for old in list(prompts)[:-MAX_PROMPTS]:
        prompts.pop(old, None)


def _user_prompts(app: Application, message: Message) -> dict[str, Any]:
    user = message.from_user
    data = app.user_data.get(user.id) if user is not None else None
    prompts = data.get(PROMPTS) if isinstance(data, dict) else None
    return prompts if isinstance(prompts, dict) else {}


PLAIN_ANSWER_WINDOW = dt.timedelta(minutes=10)


def _pending_for(
    prompts: dict[str, Any], message: Message, now: dt.datetime
) -> tuple[str, dict[str, Any]] | None:
    """The pending action a message answers: a reply to one of its prompts (or error answers), or in
    a private chat plain text for the latest pending action there, if it was asked for within
    PLAIN_ANSWER_WINDOW (later text is something else: a search, another flow). Any command in the
    private chat drops what is pending (core.track, through cancel_keys)."""
    target = message.reply_to_message
    if target is not None:
        key = f"{target.chat_id}:{target.message_id}"
        if key in prompts:
            return key, prompts[key]
    if message.chat.type == "private":
        # The latest prompt in this chat, live or superseded: text typed just after a superseded
        # prompt gets the clear answer that it is no longer asked for, never another feature's.
        for key in reversed(list(prompts)):
            entry = prompts[key]
            if isinstance(entry, dict) and entry.get("chat") == message.chat_id:
                try:
                    asked = dt.datetime.fromisoformat(str(entry.get("at")))
                except ValueError:
                    return None
                return (key, entry) if now - asked <= PLAIN_ANSWER_WINDOW else None
    return None


class _PromptReply(filters.MessageFilter):
    """A text answer to a ✍️ prompt: a reply to one of the sender's prompts or error answers, a reply to
    any ✍️ prompt of the bot (answered as stale if it is not theirs), or in a private chat plain text
    while the sender has a pending prompt there (reads the app's user_data: a filter sees no context)."""

    def __init__(self, app: Application) -> None:
        super().__init__(name="PromptReply")
        self._app = app

    def filter(self, message: Message) -> bool:
        if (
            _pending_for(_user_prompts(self._app, message), message, self._app.bot_data["core"].clock.now())
            is not None
        ):
            return True
        target = message.reply_to_message
        return bool(
            target is not None
            and target.from_user is not None
            and target.from_user.is_bot
            and (target.text or "").startswith("✍️")
        )


def _supersede(prompts: dict[str, Any], report_id: int) -> None:
    """A moderator pressed another decision on a report: only the latest decision's prompt is live.
    Earlier prompts for that report stay as markers ("gone"), so a reply to one is told that it is no
    longer asked for (and changes nothing) instead of deciding the report."""
    for entry in prompts.values():
        if isinstance(entry, dict) and entry.get("report") == report_id:
            entry["gone"] = True


def _drop_pending(prompts: dict[str, Any], pid: Any) -> None:
    for key in [k for k, v in prompts.items() if isinstance(v, dict) and v.get("pid") == pid]:
        prompts.pop(key, None)


async def prompt_reply(update: Update, context: XContext) -> None:
    """The moderator's note (resolve, reject) or the duplicate's reference, answering the prompt."""
    message = update.effective_message
    prompts = context.user_data.setdefault(PROMPTS, {})
    found = _pending_for(prompts, message, context.core.clock.now())
    if found is None:
        await reply(update, context, context.t("reports.mod.prompt_stale"))
        return
    key, prompt = found
    pid = prompt.get("pid", key)
    service = _service(context)
    report = await service.get(int(prompt["report"]))
    if prompt.get("gone"):
        _drop_pending(prompts, pid)
        ref = report.ref if report is not None else "—"
        await reply(update, context, context.t("reports.mod.prompt_superseded", ref=ref))
        return
    if report is None:
        _drop_pending(prompts, pid)
        await reply(update, context, context.t("reports.mod.prompt_stale"))
        return
    if not await require(update, context, Perm.REPORTS_HANDLE, report.area or ""):
        return
    card = prompt.get("card")
    card_ref = (int(card[0]), int(card[1])) if card else None
    action = prompt["action"]
    text = (message.text or "").strip()
    outcome = await service.transition(
        report.id,
        action,
        update.effective_user.id,
        note=None if action == "duplicate" else text,
        duplicate_ref=text if action == "duplicate" else None,
        edited_card=card_ref,
        notice_delay_seconds=context.core.config.reports.undo_grace_seconds,
    )
    retry = outcome.refusal is not None and outcome.refusal.code in (
        "note_required",
        "note_too_long",
        "duplicate_unknown",
        "duplicate_self",
        "duplicate_needs_ref",
    )
    if retry:
        # The error is itself a prompt: a reply to it (or, privately, plain text) is the retry.
        await _send_prompt(update, context, _refusal(context, outcome.refusal), {**prompt, "pid": pid})
        return
    _drop_pending(prompts, pid)
    await _answer_outcome(update, context, outcome, card_ref)


# -- the reporter's answer to 已解决了吗? --------------------------------------------------------


async def feedback_button(update: Update, context: XContext) -> None:
    query = update.callback_query
    pieces = _parse(query.data, 4)
    report_id = _parse_id(pieces[2]) if pieces is not None else None
    if pieces is None or report_id is None or pieces[3] not in ("y", "n"):
        await _stale(update, context)
        return
    outcome = await _service(context).feedback(report_id, update.effective_user.id, pieces[3] == "y")
    if not outcome.changed or outcome.report is None:
        await query.answer(_refusal(context, outcome.refusal or Refusal("stale")), show_alert=True)
        return
    await query.answer()
    if pieces[3] == "y":
        extra = context.t("reports.mod.feedback_thanks")
    else:
        extra = context.t("reports.mod.feedback_reopened", ref=outcome.report.ref)
    text = (query.message.text if isinstance(query.message, Message) else "") or ""
    with contextlib.suppress(BadRequest):
        await query.edit_message_text(f"{text}\n\n{extra}".strip())


# -- jobs and hooks -------------------------------------------------------------------------------


async def _startup(core: Core, app: Application) -> None:
    """Raise unacknowledged reports once a day: a repeating job, and at once when a fake clock jumps."""
    service = core.service(ReportService)

    async def escalate(_context: Any = None) -> None:
        if not core.db.is_open:
            return
        try:
            await service.escalate_due()
        except Exception:
            if core.db.is_open:  # not merely stopped under our feet
                log.exception("reports: escalation failed")

    if app.job_queue is not None:
        app.job_queue.run_repeating(
            escalate, interval=ESCALATION_INTERVAL_SECONDS, first=5, name="reports-escalate"
        )
    tasks: set[asyncio.Task[None]] = set()

    def on_jump() -> None:
        try:
            task = asyncio.get_running_loop().create_task(escalate())
        except RuntimeError:
            return
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    core.clock.subscribe(on_jump)
