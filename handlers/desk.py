"""The moderators' desk from the Telegram side: /desk (private, moderators and captains) answers with a
button that opens the Mini App, and those users get it as their chat's menu button too. Starts the
desk's web server (bot/webapp/) with the bot when webapp.public_url is set, and the weekly digest job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, MenuButtonWebApp, Update, WebAppInfo
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler

from bot.core.app import XContext
from bot.core.authz import Perm
from bot.core.container import Core
from bot.core.runtime import startup_hooks
from bot.desk import DeskService
from bot.digest import DigestService
from handlers.common import Command, is_private, reply

log = logging.getLogger(__name__)

COMMANDS = [Command("desk", "webapp.cmd.desk", scope="private", perm=Perm.TASKS_MANAGE)]
DIGEST_CHECK_SECONDS = 600


def desk_url(core: Core) -> str:
    return core.config.webapp.public_url


async def desk(update: Update, context: XContext) -> None:
    if not is_private(update):
        await reply(update, context, context.t("webapp.desk.private_only"))
        return
    core = context.core
    user_id = update.effective_user.id
    if not (await core.service(DeskService).access(user_id)).allowed:
        await reply(update, context, context.t("webapp.desk.denied"))
        return
    url = desk_url(core)
    if not url:
        await reply(update, context, context.t("webapp.desk.off"))
        return
    label = context.t("webapp.desk.button")
    await reply(
        update,
        context,
        context.t("webapp.desk.open"),
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(label, web_app=WebAppInfo(url))]]),
    )
    try:
        await context.bot.set_chat_menu_button(
            chat_id=update.effective_chat.id, menu_button=MenuButtonWebApp(label, WebAppInfo(url))
        )
    except TelegramError as exc:
        log.info("desk: could not set the menu button for %s: %s", user_id, exc)


async def _startup(core: Core, app: Application) -> None:
    if desk_url(core):
        from bot.webapp.server import WebappServer

        server = WebappServer(core, app.bot)
        await server.start()
        app.bot_data["webapp"] = server
        core.closers.append(server.stop)
        queued = await core.service(DeskService).queue_menu_buttons(desk_url(core))
        if queued:
            log.info("desk: menu button queued for %d moderator(s)/captain(s)", queued)
    digest = core.service(DigestService)

    async def check(_context: Any = None) -> None:
        if not core.db.is_open:
            return
        try:
            await digest.queue_due()
        except Exception:
            if core.db.is_open:
                log.exception("digest: could not queue the weekly digest")

    if app.job_queue is not None:
        app.job_queue.run_repeating(check, interval=DIGEST_CHECK_SECONDS, first=5, name="weekly-digest")
    tasks: set[asyncio.Task[None]] = set()

    def on_jump() -> None:  # a fake clock moved (tests): look at once
        try:
            task = asyncio.get_running_loop().create_task(check())
        except RuntimeError:
            return
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    core.clock.subscribe(on_jump)


def register(app: Application) -> None:
    app.add_handler(CommandHandler("desk", desk))
    startup_hooks(app).append(_startup)
