"""Wish wall (心愿墙).

Couriers: /wishes (and the 🙌 menu button) pages open tasks with 认领 / 候补 buttons, nearest first
after "📍 离我最近"; /mytasks with 取消认领; the reminder's 我会到 / 去不了; a captain's invitation.
Captains and moderators: /newtask (a conversation ending in a preview), /tasks -> one task's roster
(done / no-show after the start, stop claims, cancel), /assign. Points are in handlers/points.py.

Every button re-reads the task and re-checks the role (callback data is never trusted): the service
re-checks task and claim state, `require` checks the role for the task's area.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import replace
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden
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
from bot.core.messages import is_link
from bot.kit.numbers import parse_id, parse_int
from bot.kit.timeparse import InputError, names_a_day, parse_time
from bot.tasks import Outcome, Task, TaskCount, TaskDraft, TaskInvalid, TaskResult, TaskService, cb
from handlers.common import (
    Command,
    community,
    find_user,
    is_private,
    main_menu,
    menu_text,
    notify,
    private_only,
    reply,
    require,
)
from handlers.core import cancel_conversation, cancel_fallback, cancel_keys, deep_links

COMMANDS = [
    Command("wishes", "tasks.cmd.wishes"),
    Command("mytasks", "tasks.cmd.mytasks", scope="private"),
    Command("newtask", "tasks.cmd.newtask", scope="private", perm=Perm.TASKS_POST),
    Command("tasks", "tasks.cmd.tasks", scope="private", perm=Perm.TASKS_MANAGE),
    Command("assign", "tasks.cmd.assign", perm=Perm.TASKS_MANAGE),
]

# Posting conversation states.
TITLE, DESCRIPTION, START, END, PLACE, AREA, SLOTS, POINTS, DEADLINE, DETAILS, PREVIEW = range(11)
# Nearest-first conversation state.
NEAR = 20
DRAFT = "tasks"
AREA_WARNED = "tasks_area_warned"  # user_data: the unknown area the captain was asked about once
GROUPS = "tasks_groups"
# Set when the preview sent the user back to one step: after it, straight back to the preview.
FIXING = "tasks_fixing"
SKIP = {"-", "—", "无", "跳过", "skip"}
# Which step to go back to when the preview finds a problem.
STEP_OF = {
    "title_empty": TITLE,
    "title_too_long": TITLE,
    "description_too_long": DESCRIPTION,
    "start_missing": START,
    "start_past": START,
    "end_before_start": END,
    "place_missing": PLACE,
    "place_too_long": PLACE,
    "location_invalid": PLACE,
    "area_too_long": AREA,
    "slots_range": SLOTS,
    "points_range": POINTS,
    "deadline_past": DEADLINE,
    "deadline_after_start": DEADLINE,
    "details_too_long": DETAILS,
}
ASK = {
    TITLE: "tasks.post.ask_title",
    DESCRIPTION: "tasks.post.ask_description",
    START: "tasks.post.ask_start",
    END: "tasks.post.ask_end",
    PLACE: "tasks.post.ask_place",
    AREA: "tasks.post.ask_area",
    SLOTS: "tasks.post.ask_slots",
    POINTS: "tasks.post.ask_points",
    DEADLINE: "tasks.post.ask_deadline",
    DETAILS: "tasks.post.ask_details",
}
# One-tap answers offered under some questions.
QUICK = {SLOTS: (1, 2, 3, 5, 10), POINTS: (0, 5, 10, 20)}
OPTIONAL = {DESCRIPTION, END, AREA, DEADLINE, DETAILS}


def _tasks(context: XContext) -> TaskService:
    return context.core.service(TaskService)


def _args(query_data: str | None) -> list[str]:
    """The arguments after `tk:<action>:`."""
    return (query_data or "").split(":")[2:]


async def _ids(update: Update, context: XContext, count: int, choices: str = "") -> list[int] | None:
    """The first `count` numeric arguments of a pressed button (and, with `choices`, a last one of
    those letters, returned as 1 for the first letter and 0 otherwise); None, after telling the
    user the button is stale, when the data does not look right."""
    args = _args(update.callback_query.data)
    try:
        values = [int(a) for a in args[:count]]
    except ValueError:
        values = []
    if choices:
        if len(args) != count + 1 or args[count] not in choices:
            values = []
        else:
            values.append(int(args[count] == choices[0]))
    if len(values) != count + bool(choices):
        await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)
        return None
    return values


def _outcome_text(context: XContext, result: TaskResult) -> str:
    return context.t(
        f"tasks.outcome.{result.outcome.value}",
        title=result.task.title if result.task else "",
        place=result.place or "",
        hours=context.core.config.tasks.withdraw_hours,
        points=result.task.points if result.task else 0,
    )


def _markup(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    rows = [row for row in rows if row]
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text, url=data)
                if is_link(data)
                else InlineKeyboardButton(text, callback_data=data)
                for text, data in row
            ]
            for row in rows
        ]
    )


# -- the wall -----------------------------------------------------------------------------------


def _location(context: XContext) -> tuple[tuple[float, float] | None, dt.datetime | None]:
    """The user's last shared location (user_data["location"] = {"lat", "lon", "at"}), if any."""
    saved = context.user_data.get("location") if context.user_data is not None else None
    if not isinstance(saved, dict):
        return None, None
    try:
        return (float(saved["lat"]), float(saved["lon"])), dt.datetime.fromisoformat(saved["at"])
    except (KeyError, TypeError, ValueError):
        return None, None


def _item_lines(context: XContext, n: int, task: Task) -> list[str]:
    """A task in a list: number, title, points, time, place."""
    t = context.t
    return [
        "",
        t("tasks.wall.item", n=n, title=task.title, points=task.points),
        t("tasks.card.when", when=_tasks(context).format_span(task, context.lang)),
        t("tasks.card.place", place=task.place_text or t("tasks.card.place_pin")),
    ]


def _map_buttons(context: XContext, task: Task, n: int) -> list[tuple[str, str]]:
    """The 🗺 link of a numbered list item with a pin (none without one)."""
    return [button for row in _tasks(context).map_row(task, context.lang, n=n) for button in row]


async def _wall_view(
    context: XContext, page: int, *, private: bool = True, user_id: int | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The wall; in a group it is the same for everyone (soonest first: one courier's location
    is neither shown nor used there, and Telegram allows asking for a location only in private).
    In private (`user_id`), the tasks the viewer claimed or waits for are marked, with a withdraw
    button instead of 认领 / 候补."""
    service = _tasks(context)
    location, located_at = _location(context) if private else (None, None)
    wall = await service.wall(page, location=location, located_at=located_at)
    mine = await service.claim_states(user_id) if private and user_id is not None else {}
    t = context.t
    if not wall.items:
        return t("tasks.wall.empty"), None
    lines = [
        t("tasks.wall.title", page=wall.page + 1, pages=wall.pages),
        t("tasks.wall.by_distance" if wall.by_distance else "tasks.wall.by_time"),
    ]
    rows: list[list[tuple[str, str]]] = []
    for n, item in enumerate(wall.items, 1):
        task = item.count.task
        lines += _item_lines(context, n, task)
        if item.distance_m is not None:
            lines.append(t("tasks.wall.distance", km=f"{item.distance_m / 1000:.1f}"))
        state = mine.get(task.id)
        if item.count.left:
            lines.append(t("tasks.wall.left", left=item.count.left, slots=task.slots))
        elif state != "claimed":  # a holder is not offered the waitlist
            waiting = item.count.waiting
            lines.append(t("tasks.wall.full", waiting=waiting) if waiting else t("tasks.wall.full_none"))
        if state in ("claimed", "waitlisted"):
            lines.append(t("tasks.wall.yours" if state == "claimed" else "tasks.wall.yours_waiting"))
            # "w<page>": pressed on the wall, which is then redrawn at that page. On a row of its own,
            # away from the map link (asked first anyway).
            rows.append(_map_buttons(context, task, n))
            rows.append([(t("tasks.button.withdraw_n", n=n), cb("wd", task.id, f"w{wall.page}"))])
            continue
        if item.count.left:
            row = [(t("tasks.button.claim_n", n=n), cb("cl", task.id))]
        else:
            row = [(t("tasks.button.waitlist_n", n=n), cb("wl", task.id))]
        rows.append(row + _map_buttons(context, task, n))
    nav = []
    if wall.page > 0:
        nav.append((t("tasks.button.prev"), cb("pg", wall.page - 1)))
    if wall.page + 1 < wall.pages:
        nav.append((t("tasks.button.next"), cb("pg", wall.page + 1)))
    rows.append(nav)
    if not wall.by_distance and private:
        rows.append([(t("tasks.button.near"), cb("near"))])
    return "\n".join(lines), _markup(rows)


async def wishes_link(update: Update, context: XContext, _arg: str) -> None:
    await wishes(update, context)


async def wishes(update: Update, context: XContext) -> None:
    text, markup = await _wall_view(context, 0, private=is_private(update), user_id=update.effective_user.id)
    await reply(update, context, text, reply_markup=markup)


async def wall_page(update: Update, context: XContext) -> None:
    query = update.callback_query
    values = await _ids(update, context, 1)
    if values is None:
        return
    await query.answer()
    text, markup = await _wall_view(
        context, values[0], private=is_private(update), user_id=update.effective_user.id
    )
    await query.edit_message_text(text, reply_markup=markup)


async def ask_location(update: Update, context: XContext) -> int:
    if not await private_only(update, context, "wishes"):
        return ConversationHandler.END
    await update.callback_query.answer()
    keyboard = ReplyKeyboardMarkup(
        [[KeyboardButton(context.t("tasks.button.share_location"), request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
    await reply(update, context, context.t("tasks.wall.ask_location"), reply_markup=keyboard)
    return NEAR


async def location_given(update: Update, context: XContext) -> int:
    location = update.effective_message.location
    context.user_data["location"] = {
        "lat": location.latitude,
        "lon": location.longitude,
        "at": context.core.clock.now().isoformat(),
    }
    text, markup = await _wall_view(context, 0, user_id=update.effective_user.id)
    if is_private(update):
        await reply(update, context, context.t("tasks.wall.sorted"), reply_markup=main_menu(context))
    await reply(update, context, text, reply_markup=markup)
    return ConversationHandler.END


# -- courier buttons --------------------------------------------------------------------------


async def _send_private(context: XContext, user_id: int, text: str, markup: Any = None) -> bool:
    """Write to the user's private chat; False when they never opened it or blocked the bot."""
    try:
        await context.bot.send_message(user_id, text, reply_markup=markup)
    except (Forbidden, BadRequest):
        return False
    return True


async def _claimed_message(context: XContext, task_id: int, user_id: int) -> str:
    """What a courier holding a slot gets: the card, the private details, a withdraw button."""
    service = _tasks(context)
    count = await service.get(task_id)
    assert count is not None
    lines = [
        _outcome_text(context, TaskResult(Outcome.CLAIMED, count.task)),
        "",
        service.card_text(count, context.lang, holder=True),
    ]
    details = await service.private_details(task_id, user_id)
    if details:
        lines += ["", context.t("tasks.reminder.details", details=details)]
    return "\n".join(lines)


async def _after_claim(update: Update, context: XContext, result: TaskResult) -> None:
    query = update.callback_query
    user_id = update.effective_user.id
    if result.task is None:  # no such task (any more)
        await query.answer(_outcome_text(context, result)[:200], show_alert=True)
        return
    if result.outcome is Outcome.CLAIMED:
        text = await _claimed_message(context, result.task.id, user_id)
        markup = _markup(  # the map first, 取消认领 on a row of its own below it (asked first)
            [
                *_tasks(context).map_row(result.task, context.lang),
                [(context.t("tasks.button.withdraw"), cb("wd", result.task.id))],
            ]
        )
        sent = await _send_private(context, user_id, text, markup)
        toast = _outcome_text(context, result)
        if not sent:
            toast += "\n" + context.t("tasks.open_private")
        await query.answer(toast[:200], show_alert=not sent)
        return
    if result.outcome is Outcome.FULL and is_private(update):
        await query.answer()
        markup = _markup([[(context.t("tasks.button.waitlist"), cb("wl", result.task.id))]])
        await reply(update, context, _outcome_text(context, result), reply_markup=markup)
        return
    await query.answer(_outcome_text(context, result)[:200], show_alert=True)


async def claim(update: Update, context: XContext) -> None:
    values = await _ids(update, context, 1)
    if values is None:
        return
    await _after_claim(update, context, await _tasks(context).claim(values[0], update.effective_user.id))


async def join_waitlist(update: Update, context: XContext) -> None:
    values = await _ids(update, context, 1)
    if values is None:
        return
    await _after_claim(
        update, context, await _tasks(context).join_waitlist(values[0], update.effective_user.id)
    )


async def ask_withdraw(update: Update, context: XContext) -> None:
    """取消认领 asks first (a slip of the thumb would hand the slot away): 是，取消认领 / 不，保留.
    Refused at once when it could not be done anyway (too late, not claimed)."""
    query = update.callback_query
    values = await _ids(update, context, 1)
    if values is None:
        return
    task_id = values[0]
    check = await _tasks(context).can_withdraw(task_id, update.effective_user.id)
    if check.outcome is not Outcome.OK or check.task is None or check.claim is None:
        await query.answer(_outcome_text(context, check)[:200], show_alert=True)
        return
    await query.answer()
    # Where it was pressed ("m": /mytasks, "w<page>": the wall, "-": a single task's message) and that
    # message, so the answer can redraw it.
    where = (_args(query.data)[1:] or ["-"])[0] or "-"
    source = query.message.message_id if query.message is not None else 0
    waiting = check.claim.state == "waitlisted"
    t = context.t
    await reply(
        update,
        context,
        t("tasks.withdraw_ask_waiting" if waiting else "tasks.withdraw_ask", title=check.task.title),
        reply_markup=_markup(
            [
                [
                    (t("tasks.button.withdraw_yes"), cb("wdy", task_id, where, source)),
                    (t("tasks.button.withdraw_keep"), cb("wdk")),
                ]
            ]
        ),
    )


async def withdraw(update: Update, context: XContext) -> None:
    """是，取消认领: withdraw, then redraw the list it was asked from (or drop that message's buttons)."""
    query = update.callback_query
    values = await _ids(update, context, 1)
    if values is None:
        return
    user_id = update.effective_user.id
    result = await _tasks(context).withdraw(values[0], user_id)
    if result.claim is not None:  # the question is answered either way (a forged press: left alone)
        await _drop_buttons(update)
    if result.outcome is not Outcome.OK:
        await query.answer(_outcome_text(context, result)[:200], show_alert=True)
        return
    await query.answer(context.t("tasks.withdrawn"), show_alert=True)
    args = _args(query.data)[1:]
    where = args[0] if args else "-"
    source = parse_int(args[1], signed=False) if len(args) > 1 else None
    chat_id = update.effective_chat.id
    if not source:
        return
    page = parse_int(where[1:], signed=False) if where[:1] == "w" else None
    with contextlib.suppress(BadRequest):
        if where == "m":
            text, markup = await _my_tasks_view(context, user_id)
            await context.bot.edit_message_text(text, chat_id, source, reply_markup=markup)
        elif page is not None:
            text, markup = await _wall_view(context, page, user_id=user_id)
            await context.bot.edit_message_text(text, chat_id, source, reply_markup=markup)
        else:
            await context.bot.edit_message_reply_markup(chat_id, source, reply_markup=None)


async def withdraw_kept(update: Update, context: XContext) -> None:
    """不，保留: nothing changes, the question goes away."""
    await update.callback_query.answer(context.t("tasks.withdraw_kept"))
    await _drop_buttons(update)


async def _drop_buttons(update: Update) -> None:
    """Remove the buttons of the message pressed (when it still has some: Telegram refuses an edit
    that changes nothing)."""
    query = update.callback_query
    if query.message is not None and getattr(query.message, "reply_markup", None):
        with contextlib.suppress(BadRequest):
            await query.edit_message_reply_markup(None)


async def confirm(update: Update, context: XContext) -> None:
    """The 24 h reminder's 我会到 (y) / 去不了 (n)."""
    query = update.callback_query
    values = await _ids(update, context, 1, choices="yn")
    if values is None:
        return
    task_id, coming = values[0], bool(values[1])
    result = await _tasks(context).confirm(task_id, update.effective_user.id, coming)
    if result.outcome is Outcome.OK:
        await query.answer(context.t("tasks.confirmed" if coming else "tasks.cant_go_done"), show_alert=True)
        await query.edit_message_reply_markup(None)
        return
    await query.answer(_outcome_text(context, result)[:200], show_alert=True)


async def answer_assignment(update: Update, context: XContext) -> None:
    query = update.callback_query
    values = await _ids(update, context, 1, choices="yn")
    if values is None:
        return
    service = _tasks(context)
    user_id = update.effective_user.id
    if not values[1]:
        result = await service.decline(values[0], user_id)
        if result.outcome is Outcome.OK:
            await query.answer(context.t("tasks.declined"))
            await query.edit_message_reply_markup(None)
            return
        await query.answer(_outcome_text(context, result)[:200], show_alert=True)
        return
    result = await service.accept(values[0], user_id)
    if result.outcome is Outcome.CLAIMED:
        await query.edit_message_reply_markup(None)
    await _after_claim(update, context, result)


async def _my_tasks_view(context: XContext, user_id: int) -> tuple[str, InlineKeyboardMarkup | None]:
    service = _tasks(context)
    mine = await service.my_tasks(user_id)
    t = context.t
    if not mine:
        return t("tasks.mine.empty"), None
    lines = [t("tasks.mine.title")]
    rows: list[list[tuple[str, str]]] = []
    for n, item in enumerate(mine, 1):
        task = item.count.task
        lines += _item_lines(context, n, task)
        lines.append(t(f"tasks.mine.{item.claim.state}", place=item.place or ""))
        if item.claim.state == "claimed":
            details = await service.private_details(task.id, user_id)
            if details:
                lines.append(t("tasks.reminder.details", details=details))
        pin = _map_buttons(context, task, n)
        if item.claim.state in ("claimed", "waitlisted"):
            # "m": pressed in this list, which is then redrawn (elsewhere the button just goes away).
            # The map link on its own row: withdrawing is never one slip away from it.
            rows.append(pin)
            rows.append([(t("tasks.button.withdraw_n", n=n), cb("wd", task.id, "m"))])
        elif item.claim.state == "assigned_pending":
            rows.append(
                [
                    (t("tasks.button.accept"), cb("as", task.id, "y")),
                    (t("tasks.button.decline"), cb("as", task.id, "n")),
                ]
            )
            if pin:
                rows.append(pin)
        elif pin:
            rows.append(pin)
    return "\n".join(lines), _markup(rows)


async def my_tasks(update: Update, context: XContext) -> None:
    # Claimers' lists carry private details (an elder's address and phone): never in a group.
    if not await private_only(update, context, "mytasks"):
        return
    await _send_my_tasks(update, context)


async def my_tasks_link(update: Update, context: XContext, _arg: str) -> None:
    await _send_my_tasks(update, context)


async def managed_link(update: Update, context: XContext, _arg: str) -> None:
    await list_managed(update, context)


async def _send_my_tasks(update: Update, context: XContext) -> None:
    text, markup = await _my_tasks_view(context, update.effective_user.id)
    await reply(update, context, text, reply_markup=markup)


# -- posting (captains, moderators) -------------------------------------------------------------


def _draft(context: XContext) -> TaskDraft:
    return TaskDraft.from_json(context.user_data.setdefault("drafts", {}).get(DRAFT, {}))


def _save(context: XContext, draft: TaskDraft) -> None:
    context.user_data.setdefault("drafts", {})[DRAFT] = draft.to_json()


def _drop(context: XContext) -> None:
    drafts = context.user_data.get("drafts", {})
    drafts.pop(DRAFT, None)
    drafts.pop(GROUPS, None)
    drafts.pop(FIXING, None)


def _chosen_groups(context: XContext) -> tuple[list[int], list[int]]:
    """(the groups the card may go to, those chosen) as kept beside the draft."""
    saved = context.user_data.setdefault("drafts", {}).get(GROUPS, {})
    return list(saved.get("all", [])), list(saved.get("chosen", []))


def _save_groups(context: XContext, candidates: list[int], chosen: list[int]) -> None:
    context.user_data.setdefault("drafts", {})[GROUPS] = {"all": candidates, "chosen": chosen}


async def _ask(update: Update, context: XContext, state: int, **values: Any) -> int:
    """Ask for a step; one-tap buttons for the usual answers (typing works too)."""
    t = context.t
    rows = [[(str(n), cb("in", n)) for n in QUICK.get(state, ())]]
    if state in OPTIONAL:
        rows.append([(t("tasks.button.skip"), cb("in", "-"))])
    await reply(update, context, t(ASK[state], **values), reply_markup=_markup(rows))
    return state


def _pressed(step: Any) -> Any:
    """A step's answer given by a button (`tk:in:<value>`) instead of a message."""

    async def pressed(update: Update, context: XContext) -> int:
        query = update.callback_query
        await query.answer()
        await query.edit_message_reply_markup(None)
        return await step(update, context)

    pressed.__qualname__ = f"pressed({step.__name__})"
    return pressed


async def new_task(update: Update, context: XContext) -> int:
    if not is_private(update):
        await reply(update, context, context.t("error.private_only"))
        return ConversationHandler.END
    if not await require(update, context, Perm.TASKS_POST):
        return ConversationHandler.END
    _drop(context)
    context.user_data.pop(AREA_WARNED, None)  # a question about an earlier draft's area is void
    _save(context, TaskDraft())
    return await _ask(update, context, TITLE)


def _text(update: Update) -> str:
    """The answer to the current step: the message's text, or the pressed `tk:in:<value>`."""
    if update.callback_query is not None:
        return ":".join(_args(update.callback_query.data))
    return (update.effective_message.text or "").strip()


def _codes(step: int) -> set[str]:
    return {code for code, at in STEP_OF.items() if at == step}


async def _ask_step(update: Update, context: XContext, step: int) -> int:
    values: dict[str, Any] = {}
    if step == START:
        values["tz"] = context.core.zone_name(context.lang)
    if step == AREA:
        values["areas"] = await _area_hint(update, context)
    return await _ask(update, context, step, **values)


async def _refuse(update: Update, context: XContext, step: int, problem: TaskInvalid) -> int:
    await reply(update, context, context.t(f"tasks.invalid.{problem.code}", **problem.values))
    return step


async def _answered(update: Update, context: XContext, step: int, draft: TaskDraft) -> int:
    """Check this step's answer with the service's rules; keep the user at the step when it is
    wrong, else save it and go on (back to the preview when only this step was being fixed)."""
    problem = _tasks(context).problem(draft, _codes(step))
    if problem is not None:
        return await _refuse(update, context, step, problem)
    _save(context, draft)
    if context.user_data.setdefault("drafts", {}).pop(FIXING, None):
        return await _preview(update, context)
    return await _ask_step(update, context, step + 1)


def _read_time(text: str, after: dt.datetime, tz: dt.tzinfo) -> tuple[dt.datetime | None, str]:
    """(the time typed, after `after`) or (None, why not: "past", "too_far" or "when")."""
    try:
        return parse_time(text, after, tz), ""
    except InputError as exc:
        return None, exc.code


async def got_title(update: Update, context: XContext) -> int:
    return await _answered(update, context, TITLE, replace(_draft(context), title=_text(update)))


async def got_description(update: Update, context: XContext) -> int:
    text = _text(update)
    draft = replace(_draft(context), description="" if text in SKIP else text)
    return await _answered(update, context, DESCRIPTION, draft)


async def got_start(update: Update, context: XContext) -> int:
    when, why = _read_time(_text(update), context.core.clock.now(), context.core.tz)
    if when is None:
        if why == "past":
            return await _refuse(update, context, START, TaskInvalid("start_past"))
        await reply(update, context, context.t("tasks.post.bad_time"))
        return START
    return await _answered(update, context, START, replace(_draft(context), starts_at=when))


async def got_end(update: Update, context: XContext) -> int:
    text = _text(update)
    draft = _draft(context)
    end = None
    if text not in SKIP:
        assert draft.starts_at is not None
        # A bare time ("12:00") is read on the start's day: "09:00" after a 10:30 start is refused,
        # not silently moved to the next day. Anything with a day in it ("明天 12:00", "12-02 09:00")
        # is read from now, as the courier means it.
        tz = context.core.tz
        if not names_a_day(text):
            base = draft.starts_at.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            base = context.core.clock.now()
        end, _ = _read_time(text, base, tz)
        if end is None:
            await reply(update, context, context.t("tasks.post.bad_time"))
            return END
    return await _answered(update, context, END, replace(draft, ends_at=end))


async def got_place(update: Update, context: XContext) -> int:
    message = update.effective_message
    draft = _draft(context)
    if message.location is not None:
        values = {"place_text": "", "lat": message.location.latitude, "lon": message.location.longitude}
        if message.venue is not None:
            values["place_text"] = f"{message.venue.title} {message.venue.address}".strip()
    else:
        values = {"place_text": _text(update), "lat": None, "lon": None}
    return await _answered(update, context, PLACE, replace(draft, **values))


async def _area_hint(update: Update, context: XContext) -> str:
    """The areas a captain may pick: theirs, or (unscoped) the areas groups carry today."""
    areas = await context.core.authz.areas_for(update.effective_user.id, Perm.TASKS_POST)
    if areas:
        return "、".join(sorted(areas))
    known = [name for name, _count in await community(context).areas()]
    return "、".join(known) if known else context.t("tasks.post.any_area")


async def got_area(update: Update, context: XContext) -> int:
    text = _text(update)
    area = None if text in SKIP else text
    allowed = await context.core.authz.areas_for(update.effective_user.id, Perm.TASKS_POST)
    if allowed is not None and area not in allowed:
        await reply(update, context, context.t("tasks.post.area_not_yours", areas="、".join(sorted(allowed))))
        return AREA
    known = [name for name, _count in await community(context).areas()]
    if area and area not in known and context.user_data.get(AREA_WARNED) != area:
        # Free text: a typo (蒋村 for 蒋村街道) would find no group to post the card to. Ask once;
        # the same answer again is taken as meant.
        context.user_data[AREA_WARNED] = area
        text = (
            context.t("tasks.post.area_no_groups", area=area, known="、".join(known))
            if known
            else context.t("tasks.post.area_no_groups_none", area=area)
        )
        await reply(update, context, text)
        return AREA
    context.user_data.pop(AREA_WARNED, None)
    return await _answered(update, context, AREA, replace(_draft(context), area=area))


async def got_slots(update: Update, context: XContext) -> int:
    slots = parse_int(_text(update))
    if slots is None:
        await reply(update, context, context.t("tasks.post.bad_number"))
        return SLOTS
    return await _answered(update, context, SLOTS, replace(_draft(context), slots=slots))


async def got_points(update: Update, context: XContext) -> int:
    points = parse_int(_text(update))
    if points is None:
        await reply(update, context, context.t("tasks.post.bad_number"))
        return POINTS
    return await _answered(update, context, POINTS, replace(_draft(context), points=points))


async def got_deadline(update: Update, context: XContext) -> int:
    text = _text(update)
    deadline = None
    if text not in SKIP:
        deadline, why = _read_time(text, context.core.clock.now(), context.core.tz)
        if deadline is None:
            if why == "past":
                return await _refuse(update, context, DEADLINE, TaskInvalid("deadline_past"))
            await reply(update, context, context.t("tasks.post.bad_time"))
            return DEADLINE
    return await _answered(update, context, DEADLINE, replace(_draft(context), claim_deadline=deadline))


async def got_details(update: Update, context: XContext) -> int:
    text = _text(update)
    draft = replace(_draft(context), private_details=None if text in SKIP else text)
    problem = _tasks(context).problem(draft, _codes(DETAILS))
    if problem is not None:
        return await _refuse(update, context, DETAILS, problem)
    _save(context, draft)
    context.user_data.setdefault("drafts", {}).pop(FIXING, None)
    return await _preview(update, context)


async def _groups_for(context: XContext, draft: TaskDraft) -> list[int]:
    """Groups a card goes to: the task's area, or every active group for a task without an area;
    never the moderators' chats."""
    bot_config = context.core.config.bot
    moderators = {bot_config.moderator_chat_id, *bot_config.area_moderator_chats.values()}
    groups = await community(context).active_groups([draft.area] if draft.area else None)
    return [g.chat_id for g in groups if g.chat_id not in moderators]


async def _preview(update: Update, context: XContext) -> int:
    draft = _draft(context)
    service = _tasks(context)
    try:
        service.validate(draft)
    except TaskInvalid as exc:
        await reply(update, context, context.t(f"tasks.invalid.{exc.code}", **exc.values))
        # Only that step again, then straight back here.
        context.user_data.setdefault("drafts", {})[FIXING] = True
        return await _ask_step(update, context, STEP_OF.get(exc.code, TITLE))
    candidates = await _groups_for(context, draft)
    _save_groups(context, candidates, candidates)
    await reply(update, context, service.preview(draft, context.lang), reply_markup=_preview_buttons(context))
    return PREVIEW


def _preview_buttons(context: XContext) -> InlineKeyboardMarkup | None:
    t = context.t
    candidates, chosen = _chosen_groups(context)
    rows = [[(t("tasks.button.publish"), cb("pub", 0))]]
    if chosen:
        rows.append([(t("tasks.button.publish_groups", count=len(chosen)), cb("pub", 1))])
    if candidates:
        rows.append([(t("tasks.button.choose_groups"), cb("gs"))])
    rows.append([(t("tasks.button.cancel"), cb("pcx"))])
    return _markup(rows)


async def _groups_buttons(context: XContext) -> InlineKeyboardMarkup | None:
    candidates, chosen = _chosen_groups(context)
    titles = {g.chat_id: g.title for g in await community(context).active_groups()}
    rows = [
        [(("✅ " if chat_id in chosen else "⬜ ") + titles.get(chat_id, str(chat_id)), cb("gt", i))]
        for i, chat_id in enumerate(candidates)
    ]
    rows.append([(context.t("tasks.button.groups_done"), cb("gd"))])
    return _markup(rows)


async def choose_groups(update: Update, context: XContext) -> int:
    """The preview's "选择群": a checklist of the groups the card may go to."""
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(await _groups_buttons(context))
    return PREVIEW


async def toggle_group(update: Update, context: XContext) -> int:
    values = await _ids(update, context, 1)
    candidates, chosen = _chosen_groups(context)
    if values is None or not 0 <= values[0] < len(candidates):
        return PREVIEW
    chat_id = candidates[values[0]]
    chosen = [c for c in chosen if c != chat_id] if chat_id in chosen else [*chosen, chat_id]
    _save_groups(context, candidates, chosen)
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(await _groups_buttons(context))
    return PREVIEW


async def groups_done(update: Update, context: XContext) -> int:
    await update.callback_query.answer()
    await update.callback_query.edit_message_reply_markup(_preview_buttons(context))
    return PREVIEW


async def publish(update: Update, context: XContext) -> int:
    query = update.callback_query
    draft = _draft(context)
    if not await require(update, context, Perm.TASKS_POST, draft.area or ""):
        return ConversationHandler.END
    # Re-read which groups may receive it (a group may have left since the checklist was drawn).
    allowed = set(await _groups_for(context, draft))
    _, chosen = _chosen_groups(context)
    groups = [g for g in chosen if g in allowed] if _args(update.callback_query.data) == ["1"] else []
    try:
        task = await _tasks(context).publish(draft, update.effective_user.id, groups)
    except TaskInvalid as exc:
        await query.answer(context.t(f"tasks.invalid.{exc.code}", **exc.values), show_alert=True)
        return PREVIEW
    _drop(context)
    await query.answer()
    await query.edit_message_reply_markup(None)
    await reply(
        update,
        context,
        context.t("tasks.post.published", title=task.title, groups=len(groups)),
        reply_markup=_markup([[(context.t("tasks.button.manage"), cb("ad", task.id))]]),
    )
    return ConversationHandler.END


async def cancel_button(update: Update, context: XContext) -> int:
    _drop(context)
    return await cancel_conversation(update, context)


async def stale_in_conversation(update: Update, context: XContext) -> None:
    await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


# -- managing a task (captains, moderators) -----------------------------------------------------


async def _managed_task(
    update: Update, context: XContext, task_id: int, *, private: bool = True
) -> TaskCount | None:
    """The task, if it exists and the actor may manage tasks of its area (refusal sent otherwise).

    ``private``: the action shows the roster or private details, so it works in a private chat only.
    """
    count = await _tasks(context).get(task_id)
    if count is None:
        await notify(update, context, context.t("tasks.outcome.not_found"), alert=True)
        return None
    if not await require(update, context, Perm.TASKS_MANAGE, count.task.area or ""):
        return None
    if private and not await private_only(update, context, "tasks"):
        return None
    return count


async def list_managed(update: Update, context: XContext) -> None:
    if not await require(update, context, Perm.TASKS_MANAGE):
        return
    # The roster and the private details are for the captain's eyes only.
    if not await private_only(update, context, "tasks"):
        return
    service = _tasks(context)
    counts = await service.managed(update.effective_user.id)
    if not counts:
        await reply(update, context, context.t("tasks.manage.none"))
        return
    lines = [context.t("tasks.manage.title")]
    rows = []
    for count in counts:
        task = count.task
        lines.append(
            context.t(
                "tasks.manage.line",
                id=task.id,
                title=task.title,
                when=service.format_time(task.starts_at, context.lang),
                taken=count.taken,
                slots=task.slots,
            )
        )
        rows.append([(context.t("tasks.button.manage_n", id=task.id), cb("ad", task.id))])
    await reply(update, context, "\n".join(lines), reply_markup=_markup(rows))


async def _admin_view(context: XContext, count: TaskCount) -> tuple[str, InlineKeyboardMarkup | None]:
    service = _tasks(context)
    task = count.task
    t = context.t
    roster = await service.roster(task.id)
    lines = [
        service.card_text(count, context.lang),
        "",
        t("tasks.manage.roster", taken=count.taken, slots=task.slots),
    ]
    started = context.core.clock.now() >= task.starts_at
    rows: list[list[tuple[str, str]]] = []
    for entry in roster:
        state = entry.claim.state
        if state in ("withdrawn", "declined"):
            continue
        mark = ""
        if state == "claimed" and service.asks_confirmation:  # else nobody was asked 我会到
            mark = t("tasks.manage.confirmed" if entry.claim.confirmed else "tasks.manage.unconfirmed")
        lines.append(t("tasks.manage.entry", name=entry.name, state=t(f"tasks.state.{state}"), mark=mark))
        if started and state == "claimed" and task.state in ("open", "full", "closed"):
            rows.append(
                [
                    (
                        t("tasks.button.done", name=entry.name[:16]),
                        cb("mk", task.id, entry.claim.user_id, "d"),
                    ),
                    (
                        t("tasks.button.no_show", name=entry.name[:16]),
                        cb("mk", task.id, entry.claim.user_id, "n"),
                    ),
                ]
            )
    if not roster:
        lines.append(t("tasks.manage.nobody"))
    if task.private_details:
        lines += ["", t("tasks.reminder.details", details=task.private_details)]
    if task.state in ("open", "full") and not started:
        # Both ask for confirmation; 🔒 停止认领 is kept out of the first (top-left) place.
        rows.append(
            [
                (t("tasks.button.cancel_task"), cb("cx", task.id)),
                (t("tasks.button.close"), cb("sca", task.id)),
            ]
        )
    elif task.state == "closed" and not started:
        rows.append([(t("tasks.button.cancel_task"), cb("cx", task.id))])
    rows.append([(t("tasks.button.refresh"), cb("ad", task.id))])
    return "\n".join(lines), _markup(rows)


async def _pressed_on_managed_task(update: Update, context: XContext) -> TaskCount | None:
    """A captain's button carrying a task id: the task once id, role and area check out (the press is
    answered), else None (a refusal was sent)."""
    values = await _ids(update, context, 1)
    if values is None:
        return None
    count = await _managed_task(update, context, values[0])
    if count is not None:
        await update.callback_query.answer()
    return count


async def admin_view(update: Update, context: XContext) -> None:
    count = await _pressed_on_managed_task(update, context)
    if count is None:
        return
    text, markup = await _admin_view(context, count)
    await reply(update, context, text, reply_markup=markup)


async def _refresh_admin_view(update: Update, context: XContext, task_id: int) -> None:
    count = await _tasks(context).get(task_id)
    if count is None:
        return
    text, markup = await _admin_view(context, count)
    try:
        await update.callback_query.edit_message_text(text, reply_markup=markup)
    except BadRequest:
        pass  # "message is not modified"


async def mark(update: Update, context: XContext) -> None:
    query = update.callback_query
    values = await _ids(update, context, 2, choices="dn")
    if values is None:
        return
    task_id, user_id, done = values
    if await _managed_task(update, context, task_id) is None:
        return
    result = await _tasks(context).mark(task_id, user_id, bool(done), update.effective_user.id)
    await query.answer(
        context.t("tasks.manage.marked")
        if result.outcome is Outcome.OK
        else _outcome_text(context, result)[:200],
        show_alert=result.outcome is Outcome.SELF_DONE,  # no points: said so it is not missed
    )
    await _refresh_admin_view(update, context, task_id)


async def _ask_first(update: Update, context: XContext, what: str, action: str) -> None:
    """A step that cannot be undone asks first: `tasks.manage.<what>_ask`, button `<what>_yes`."""
    count = await _pressed_on_managed_task(update, context)
    if count is None:
        return
    await reply(
        update,
        context,
        context.t(f"tasks.manage.{what}_ask", title=count.task.title),
        reply_markup=_markup(
            [
                [
                    (context.t(f"tasks.button.{what}_yes"), cb(action, count.task.id)),
                    (context.t("tasks.button.keep"), cb("keep")),
                ]
            ]
        ),
    )


async def keep_pressed(update: Update, context: XContext) -> None:
    """ "No, keep it" under a confirm-first question: nothing changes, the question goes away."""
    query = update.callback_query
    await query.answer(context.t("tasks.manage.kept"))
    with contextlib.suppress(BadRequest):
        await query.edit_message_reply_markup(None)


async def ask_close(update: Update, context: XContext) -> None:
    """🔒 停止认领 (it cannot be undone)."""
    await _ask_first(update, context, "close", "sc")


async def close_task(update: Update, context: XContext) -> None:
    query = update.callback_query
    values = await _ids(update, context, 1)
    if values is None:
        return
    if await _managed_task(update, context, values[0]) is None:
        return
    result = await _tasks(context).close(values[0], update.effective_user.id)
    await query.answer(
        context.t("tasks.manage.closed") if result.outcome is Outcome.OK else _outcome_text(context, result)
    )
    await _refresh_admin_view(update, context, values[0])


async def ask_cancel(update: Update, context: XContext) -> None:
    await _ask_first(update, context, "cancel", "cxy")


async def cancel_task(update: Update, context: XContext) -> None:
    query = update.callback_query
    values = await _ids(update, context, 1)
    if values is None:
        return
    if await _managed_task(update, context, values[0]) is None:
        return
    result = await _tasks(context).cancel(values[0], update.effective_user.id)
    if result.outcome is Outcome.OK:
        await query.answer(context.t("tasks.manage.cancelled"), show_alert=True)
        await query.edit_message_reply_markup(None)
        return
    await query.answer(_outcome_text(context, result)[:200], show_alert=True)


async def assign(update: Update, context: XContext) -> None:
    """/assign <task id> <user id | @username>"""
    if not await require(update, context, Perm.TASKS_MANAGE):  # the role first, then the arguments
        return
    args = list(context.args or [])
    task_id = parse_id(args[0]) if len(args) == 2 else None
    if task_id is None:
        await reply(update, context, context.t("tasks.assign.usage"))
        return
    count = await _managed_task(update, context, task_id, private=False)
    if count is None:
        return
    user_id = await find_user(context, args[1])
    if user_id is None:
        await reply(update, context, context.t("roles.unknown_user", who=args[1]))
        return
    result = await _tasks(context).assign(count.task.id, user_id, update.effective_user.id)
    if result.outcome is Outcome.OK:
        await reply(update, context, context.t("tasks.assign.sent", title=count.task.title))
        return
    key = f"tasks.assign.{result.outcome.value}"
    if context.core.catalog.has(key):
        await reply(update, context, context.t(key, title=count.task.title))
    else:
        await reply(update, context, _outcome_text(context, result))


# -- wiring -------------------------------------------------------------------------------------


def register(app: Application) -> None:
    core = app.bot_data["core"]
    if core.outbox is not None:
        # A card posted into a group: remember its message so it can be edited as slots fill.
        core.outbox.on_done("task_card", core.service(TaskService).on_card_done)
    text = filters.TEXT & ~filters.COMMAND

    def answer(step: Any) -> CallbackQueryHandler:
        return CallbackQueryHandler(_pressed(step), pattern=r"^tk:in:")

    posting = ConversationHandler(
        entry_points=[CommandHandler("newtask", new_task)],
        states={
            TITLE: [MessageHandler(text, got_title)],
            DESCRIPTION: [MessageHandler(text, got_description), answer(got_description)],
            START: [MessageHandler(text, got_start)],
            END: [MessageHandler(text, got_end), answer(got_end)],
            PLACE: [MessageHandler(text | filters.LOCATION, got_place)],
            AREA: [MessageHandler(text, got_area), answer(got_area)],
            SLOTS: [MessageHandler(text, got_slots), answer(got_slots)],
            POINTS: [MessageHandler(text, got_points), answer(got_points)],
            DEADLINE: [MessageHandler(text, got_deadline), answer(got_deadline)],
            DETAILS: [MessageHandler(text, got_details), answer(got_details)],
            PREVIEW: [
                CallbackQueryHandler(publish, pattern=r"^tk:pub:[01]$"),
                CallbackQueryHandler(choose_groups, pattern=r"^tk:gs$"),
                CallbackQueryHandler(toggle_group, pattern=r"^tk:gt:\d+$"),
                CallbackQueryHandler(groups_done, pattern=r"^tk:gd$"),
            ],
        },
        fallbacks=[
            cancel_fallback(DRAFT),
            CallbackQueryHandler(cancel_button, pattern=r"^tk:pcx$"),
        ],
        name="tasks_post",
        persistent=True,
        allow_reentry=True,
    )
    # "📍 离我最近" waits for one location message (so it never competes with other features' location
    # handlers outside this short exchange).
    near = ConversationHandler(
        entry_points=[CallbackQueryHandler(ask_location, pattern=r"^tk:near$")],
        states={NEAR: [MessageHandler(filters.LOCATION, location_given)]},
        fallbacks=[cancel_fallback()],
        name="tasks_near",
        persistent=True,
        allow_reentry=True,
    )
    # Conversations first: their states take precedence over the plain handlers below.
    app.add_handler(posting)
    app.add_handler(near)
    app.add_handler(CommandHandler("wishes", wishes))
    app.add_handler(MessageHandler(menu_text(core.catalog, "menu.wishes"), wishes))
    cancel_keys(app).add(AREA_WARNED)
    deep_links(app)["mytasks"] = my_tasks_link
    deep_links(app)["wishes"] = wishes_link
    deep_links(app)["tasks"] = managed_link
    app.add_handler(CommandHandler("mytasks", my_tasks))
    app.add_handler(CommandHandler("tasks", list_managed))
    app.add_handler(CommandHandler("assign", assign))
    for action, callback in (
        ("pg", wall_page),
        ("cl", claim),
        ("wl", join_waitlist),
        ("wd", ask_withdraw),
        ("wdy", withdraw),
        ("wdk", withdraw_kept),
        ("cf", confirm),
        ("as", answer_assignment),
        ("ad", admin_view),
        ("mk", mark),
        ("sca", ask_close),
        ("sc", close_task),
        ("cx", ask_cancel),
        ("cxy", cancel_task),
        ("keep", keep_pressed),
    ):
        app.add_handler(CallbackQueryHandler(callback, pattern=rf"^tk:{action}(:|$)"))
    # Buttons of a finished posting conversation.
    app.add_handler(CallbackQueryHandler(stale_in_conversation, pattern=r"^tk:"))
