"""The one Application builder, used by `xiaoge-bot run`, the sandbox, tests and benchmarks."""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackContext,
    ContextTypes,
    ConversationHandler,
    ExtBot,
)

from bot.core.container import Core
from bot.core.persistence import SqlitePersistence
from bot.core.ratelimit import FloodLimiter
from bot.core.updates import KeyedUpdateProcessor

log = logging.getLogger("xiaoge.updates")

# Name of the handler that took the current update (for the one log line per update).
_current_handler: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("handler", default=None)


class XContext(CallbackContext[ExtBot, dict[str, Any], dict[str, Any], dict[str, Any]]):
    """CallbackContext with the project's core and the user's language."""

    def __init__(
        self, application: Application, chat_id: int | None = None, user_id: int | None = None
    ) -> None:
        super().__init__(application, chat_id, user_id)
        self.lang: str = application.bot_data["core"].config.bot.default_language

    @property
    def core(self) -> Core:
        return self.application.bot_data["core"]

    def t(self, key: str, /, **values: Any) -> str:
        return self.core.catalog.t(self.lang, key, **values)


class XApplication(Application):
    """Logs one structured line per update: id, chat, user, handler, outcome, milliseconds."""

    active_updates = 0  # updates being handled right now (tests wait for 0)

    async def process_update(self, update: object) -> None:
        XApplication.active_updates += 1
        try:
            await self._process_and_log(update)
        finally:
            XApplication.active_updates -= 1

    async def _process_and_log(self, update: object) -> None:
        names: list[str] = []
        token = _current_handler.set(names)
        started = time.perf_counter()
        outcome = "ok"
        try:
            await super().process_update(update)
        except Exception as exc:
            outcome = f"error:{type(exc).__name__}"
            raise
        finally:
            _current_handler.reset(token)
            elapsed = (time.perf_counter() - started) * 1000
            if isinstance(update, Update):
                chat = update.effective_chat.id if update.effective_chat else None
                user = update.effective_user.id if update.effective_user else None
                failed = [n for n in names if n.startswith("!")]
                if outcome == "ok" and failed:
                    outcome = "error:" + failed[0][1:]
                names = [n for n in names if not n.startswith("!")]
                handled = ",".join(names) or "-"
                log.info(
                    "update id=%s chat=%s user=%s handler=%s outcome=%s ms=%.1f",
                    update.update_id,
                    chat,
                    user,
                    handled,
                    outcome,
                    elapsed,
                )


def _wrap_callback(name: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    async def wrapped(update: object, context: Any) -> Any:
        names = _current_handler.get()
        if names is not None:
            names.append(name)
        try:
            return await callback(update, context)
        except Exception as exc:
            if names is not None:
                names.append("!" + type(exc).__name__)
            raise

    return wrapped


def instrument(handler: BaseHandler[Any, Any, Any]) -> None:
    """Wrap every callback of a handler (and of a conversation's handlers) for the update log line."""
    if isinstance(handler, ConversationHandler):
        inner = list(handler.entry_points) + list(handler.fallbacks)
        for state_handlers in handler.states.values():
            inner.extend(state_handlers)
        for h in inner:
            instrument(h)
        return
    callback = getattr(handler, "callback", None)
    if callback is None or getattr(callback, "__wrapped__", None) is not None:
        return
    handler.callback = _wrap_callback(getattr(callback, "__qualname__", repr(callback)), callback)


def build_application(core: Core, *, register: Callable[[Application], None] | None = None) -> Application:
    """Build the Application for this config: HTTP to config.telegram.base_url, SQLite persistence,
    the flood limiter, the project's context type, and every feature's handlers."""
    tg = core.config.telegram
    limiter = FloodLimiter(
        bulk_per_second=core.config.broadcast.max_per_second,
        group_per_minute=core.config.broadcast.group_per_minute,
    )
    builder = ApplicationBuilder()
    if tg.concurrent_updates > 1:
        builder = builder.concurrent_updates(KeyedUpdateProcessor(tg.concurrent_updates))
    app = (
        builder.application_class(XApplication)
        .token(tg.token)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .rate_limiter(limiter)
        .persistence(SqlitePersistence(core.db))
        .context_types(ContextTypes(context=XContext))
        .connect_timeout(10)
        .read_timeout(15)
        .write_timeout(15)
        .get_updates_read_timeout(tg.poll_timeout + 10)
        # A second connection, so the last getUpdates at shutdown (which confirms the handled updates)
        # never waits for the long poll being cancelled: no update is handled twice after a restart.
        .get_updates_connection_pool_size(2)
        .build()
    )
    app.bot_data["core"] = core
    app.bot_data["limiter"] = limiter
    if register is None:
        from handlers import register_all

        register = register_all
    register(app)
    for group_handlers in app.handlers.values():
        for handler in group_handlers:
            instrument(handler)
    return app
