"""Points (志愿分): /points (balance, history), /rank [area] (this month's 金牌哨兵), /redeem <n> (a
one-time code for a station); moderators /adjust, moderators and station keepers /confirmcode."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.kit.numbers import parse_int
from bot.points import PointsResult, PointsService, RedeemCode, Wallet
from handlers.common import Command, community, find_user, is_private, private_only, reply, require
from handlers.core import deep_links

COMMANDS = [
    Command("points", "points.cmd.points", scope="private"),
    Command("rank", "points.cmd.rank"),
    Command("redeem", "points.cmd.redeem", scope="private"),
    Command("adjust", "points.cmd.adjust", perm=Perm.POINTS_ADJUST),
    Command("confirmcode", "points.cmd.confirmcode", perm=Perm.POINTS_REDEEM_CONFIRM),
]
MEDALS = ("🥇", "🥈", "🥉")


def _points(context: XContext) -> PointsService:
    return context.core.service(PointsService)


def _points_text(context: XContext, result: PointsResult) -> str:
    return context.t(f"points.outcome.{result.outcome.value}", balance=result.balance or 0)


async def points(update: Update, context: XContext) -> None:
    # A balance and its history (with moderators' notes) are personal: private chat only.
    if not await private_only(update, context, "points"):
        return
    await _send_points(update, context)


async def points_link(update: Update, context: XContext, _arg: str) -> None:
    await _send_points(update, context)


async def redeem_link(update: Update, context: XContext, arg: str) -> None:
    """`/start redeem_<n>`: the button under /redeem n in a group; the code for n comes at once."""
    await _redeem(update, context, parse_int(arg, signed=False) if arg else None)


def _until(context: XContext, code: RedeemCode) -> str:
    return code.expires_at.astimezone(context.core.tz).strftime("%H:%M")


def _wallet_lines(context: XContext, wallet: Wallet) -> list[str]:
    """The points a live code holds, and what points buy where."""
    lines = []
    if wallet.held and wallet.code is not None:
        lines.append(
            context.t(
                "points.held", held=wallet.held, code=wallet.code.code, until=_until(context, wallet.code)
            )
        )
    return lines


def _rewards_line(context: XContext) -> list[str]:
    rewards = context.core.config.tasks.rewards
    return [context.t("points.rewards", rewards=" · ".join(rewards))] if rewards else []


async def _send_points(update: Update, context: XContext) -> None:
    service = _points(context)
    user_id = update.effective_user.id
    t = context.t
    wallet = await service.wallet(user_id)
    lines = [t("points.balance", balance=wallet.available), *_wallet_lines(context, wallet)]
    history = await service.history(user_id)
    if history:
        lines += ["", t("points.history_title")]
        for entry in history:
            reason = f"points.reason.{entry.reason}"
            lines.append(
                t(
                    "points.history_line",
                    when=entry.created_at.astimezone(context.core.tz).strftime("%m-%d"),
                    delta=f"{entry.delta:+d}",
                    reason=t(reason) if context.core.catalog.has(reason) else entry.reason,
                    note=t("points.history_note", note=entry.note) if entry.note else "",
                )
            )
    lines += ["", *_rewards_line(context), t("points.hint")]
    await reply(update, context, "\n".join(lines))


async def rank(update: Update, context: XContext) -> None:
    """/rank [area]: this month's 金牌哨兵, overall or in one area."""
    area = " ".join(context.args or []).strip() or None
    board = await _points(context).rank(update.effective_user.id, area=area)
    t = context.t
    lines = [
        t(
            "points.rank.title",
            month=board.month.month,
            year=board.month.year,
            area=area or t("points.rank.all"),
        )
    ]
    if not board.top:
        lines.append(t("points.rank.empty"))
    for entry in board.top:
        medal = MEDALS[entry.place - 1] if entry.place <= len(MEDALS) else f"{entry.place}."
        lines.append(t("points.rank.line", medal=medal, name=entry.name, points=entry.points))
    if board.own is not None and board.own.place > len(board.top):
        lines += ["…", t("points.rank.own", place=board.own.place, points=board.own.points)]
    elif board.own is None and is_private(update):
        lines += ["", t("points.rank.own_none")]
    await reply(update, context, "\n".join(lines))


async def redeem(update: Update, context: XContext) -> None:
    """/redeem <points>: a one-time code to show at a station."""
    args = list(context.args or [])
    amount = parse_int(args[0]) if len(args) == 1 else None
    # Anyone who read the code in a group could spend the points with it; the button to the private
    # chat carries the amount, so the code comes there at once (a deep link holds 64 characters).
    carried = amount is not None and 0 < amount < 10**9
    if not await private_only(update, context, f"redeem_{amount}" if carried else "redeem"):
        return
    await _redeem(update, context, amount)


async def _redeem(update: Update, context: XContext, amount: int | None) -> None:
    service = _points(context)
    user_id = update.effective_user.id
    if amount is None:
        wallet = await service.wallet(user_id)
        lines = [context.t("points.redeem.usage", balance=wallet.balance)]
        if wallet.code is not None:  # a new code would replace it: say so before one is asked for
            lines.append(
                context.t(
                    "points.redeem.live",
                    code=wallet.code.code,
                    points=wallet.code.points,
                    until=_until(context, wallet.code),
                )
            )
        lines += _rewards_line(context)
        await reply(update, context, "\n".join(lines))
        return
    result = await service.request_code(user_id, amount)
    if not result.ok or result.code is None:
        await reply(update, context, _points_text(context, result))
        return
    code = result.code
    text = context.t(
        "points.redeem.code",
        code=code.code,
        points=code.points,
        minutes=context.core.config.tasks.redeem_code_minutes,
        until=_until(context, code),
    )
    if result.replaced:  # the earlier code stops working now: say so, or it seems to expire early
        text += "\n" + context.t("points.redeem.replaced")
    await reply(update, context, text)


async def adjust(update: Update, context: XContext) -> None:
    """/adjust <user id | @username> <+n | -n> <reason>"""
    if not await require(update, context, Perm.POINTS_ADJUST):  # the role first, then the arguments
        return
    args = list(context.args or [])
    delta = parse_int(args[1]) if len(args) >= 3 else None
    if delta is None:
        await reply(update, context, context.t("points.adjust.usage"))
        return
    user_id = await find_user(context, args[0])
    record = await community(context).user(user_id) if user_id is not None else None
    if not await require(update, context, Perm.POINTS_ADJUST, (record.area or "") if record else None):
        return
    if record is None:
        await reply(update, context, context.t("roles.unknown_user", who=args[0]))
        return
    result = await _points(context).adjust(record.id, delta, " ".join(args[2:]), update.effective_user.id)
    if result.ok:
        await reply(
            update,
            context,
            context.t(
                "points.adjust.done",
                name=record.display_name,
                delta=f"{delta:+d}",
                balance=result.balance,
            ),
        )
        return
    await reply(update, context, _points_text(context, result))


async def confirm_code(update: Update, context: XContext) -> None:
    """/confirmcode <code>: a station confirms a courier's redeem code."""
    if not await require(update, context, Perm.POINTS_REDEEM_CONFIRM):
        return
    code = "".join(context.args or [])
    if not code:
        await reply(update, context, context.t("points.confirm.usage"))
        return
    result = await _points(context).confirm_code(code, update.effective_user.id)
    if result.ok and result.code is not None:
        record = await community(context).user(result.code.user_id)
        await reply(
            update,
            context,
            context.t(
                "points.confirm.done",
                name=record.display_name if record else str(result.code.user_id),
                points=result.code.points,
                balance=result.balance,
            ),
        )
        return
    await reply(update, context, _points_text(context, result))


def register(app: Application) -> None:
    deep_links(app)["points"] = points_link
    deep_links(app)["redeem"] = redeem_link
    app.add_handler(CommandHandler("points", points))
    app.add_handler(CommandHandler("rank", rank))
    app.add_handler(CommandHandler("redeem", redeem))
    app.add_handler(CommandHandler("adjust", adjust))
    app.add_handler(CommandHandler("confirmcode", confirm_code))
