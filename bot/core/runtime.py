"""Running the bot: one async context manager shared by the CLI, the sandbox, tests and benchmarks.

async with Runtime(config) as rt:   # db opened + migrated, app started, outbox running, "ready"
    await rt.wait_closed()          # until SIGINT/SIGTERM (CLI) ... tests just leave the block
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application

from bot.core.app import build_application
from bot.core.authz import Authorizer
from bot.core.clock import Clock, SystemClock
from bot.core.cluster import HealthServer, Leadership
from bot.core.config import Config
from bot.core.container import Core
from bot.core.i18n import LANGUAGES, Catalog
from storage import bot_state
from storage.engine import open_database

log = logging.getLogger("xiaoge")
MENUS_KEY = "command_menus"
WEBHOOK_SECRET_KEY = "webhook_secret"

Startup = Callable[[Core, Application], Awaitable[None]]


def startup_hooks(app: Application) -> list[Startup]:
    """Features add coroutines run once the bot is up (re-arm reminders, schedule daily jobs)."""
    return app.bot_data.setdefault("startup", [])


class Runtime:
    def __init__(self, config: Config, *, clock: Clock | None = None, polling: bool | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.polling = (config.telegram.mode == "polling") if polling is None else polling
        self.db = open_database(config.storage.path, config.storage.url)
        self.core: Core | None = None
        self.app: Application | None = None
        self._closed = asyncio.Event()
        self._menus: asyncio.Task[None] | None = None
        self.leadership: Leadership | None = None
        self.health: HealthServer | None = None
        self.lost_lease = False  # the lease was lost while active: the process should exit non-zero

    async def __aenter__(self) -> Runtime:
        try:
            await self.start()
        except BaseException:
            # Close what did start (the database thread above all): otherwise the process would
            # never exit and a supervisor's restart would never come.
            try:
                await self.stop()
            except Exception:
                log.exception("error while cleaning up after a failed start")
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def clustered(self) -> bool:
        """Whether instances elect an active one: on a shared (PostgreSQL) database, unless turned off."""
        return self.config.cluster.enabled and self.db.dialect == "postgresql"

    @property
    def active(self) -> bool:
        return self.app is not None and (self.leadership is None or self.leadership.active)

    async def start(self) -> None:
        await self.db.open()
        applied = await self.db.migrate()
        if applied:
            log.info("database %s: applied %s", self.db.path, ", ".join(applied))
        cluster = self.config.cluster
        if cluster.health_port:
            self.health = HealthServer(lambda: self.active, cluster.health_listen, cluster.health_port)
            await self.health.start()
        if self.clustered:
            self.leadership = Leadership(self.db, ttl=cluster.lease_seconds)
            if not await self.leadership.wait_acquired(self._closed):
                return  # asked to stop while on standby
            self.leadership.start_heartbeat(self._lease_lost)
        core = Core(self.config, self.clock, self.db, Catalog.load(self.config.bot.default_language))
        self.core = core
        app = build_application(core)
        self.app = app

        async def fetch_admins(chat_id: int) -> set[int]:
            admins = await app.bot.get_chat_administrators(chat_id)
            return {m.user.id for m in admins}

        core.authz = Authorizer(core, fetch_admins)
        await app.initialize()
        if self.polling:
            await app.updater.start_polling(
                poll_interval=0,
                timeout=self.config.telegram.poll_timeout,
                allowed_updates=Update.ALL_TYPES,
                drop_pending_updates=False,
                error_callback=self._polling_error,
            )
        else:
            tg = self.config.telegram
            await app.updater.start_webhook(
                listen=tg.webhook_listen,
                port=tg.webhook_port,
                url_path=tg.webhook_path,
                webhook_url=tg.webhook_url.rstrip("/") + "/" + tg.webhook_path,
                # Always a secret: without one, anyone who reaches the proxy could post an update
                # "from" an admin. PTB's webhook server refuses a request without the right header.
                secret_token=await self._webhook_secret(core),
                allowed_updates=Update.ALL_TYPES,
            )
        await app.start()
        # After polling started: a distant Telegram must not hold the first answer back.
        self._menus = asyncio.create_task(self._set_commands(app), name="command-menus")
        limiter = app.bot_data.get("limiter")
        if limiter is not None:
            limiter.defer = core.outbox.defer_call
        await core.outbox.start(app.bot, limiter, app.job_queue)
        for hook in startup_hooks(app):
            await hook(core, app)
        log.info(
            "ready: @%s serving (%s), database %s, timezone %s",
            app.bot.username,
            "polling" if self.polling else "webhook",
            self.db.path,
            self.config.bot.timezone,
        )

    async def _webhook_secret(self, core: Core) -> str:
        """The configured `telegram.webhook_secret_token`, else one generated at the first start in
        webhook mode and kept in the database (the same on every restart and on a second instance)."""
        configured = self.config.telegram.webhook_secret_token
        if configured:
            return configured
        stored = await bot_state.get(core.db, WEBHOOK_SECRET_KEY)
        if stored:
            return stored
        secret = secrets.token_urlsafe(48)  # A-Z a-z 0-9 _ -, as Telegram allows
        # Two instances starting at once agree on the first one stored.
        stored = await bot_state.put_if_absent(core.db, WEBHOOK_SECRET_KEY, secret, core.clock.now())
        log.warning(
            "telegram.webhook_secret_token is not set: generated one and stored it in the database;"
            " Telegram sends it with every update and requests without it are refused"
        )
        return stored

    @staticmethod
    def _polling_error(exc: TelegramError) -> None:
        log.warning("polling: %s (retrying)", exc)

    async def _set_commands(self, app: Application) -> None:
        """Register the command menus (3 scopes x the default and each language), all at once, and
        only when they differ from what was registered last time (a digest kept in the database)."""
        from handlers import all_commands

        core: Core = app.bot_data["core"]
        catalog = core.catalog
        commands = all_commands()
        scopes: list[tuple[Any, Callable[[Any], bool]]] = [
            (BotCommandScopeAllPrivateChats(), lambda c: c.scope in ("all", "private") and c.perm is None),
            (BotCommandScopeAllGroupChats(), lambda c: c.scope in ("all", "group") and c.perm is None),
            (BotCommandScopeAllChatAdministrators(), lambda c: c.scope in ("all", "group")),
        ]
        menus = []
        for scope, keep in scopes:
            for lang in ("", *LANGUAGES):
                texts = catalog.texts.get(lang or self.config.bot.default_language)
                chosen = [
                    BotCommand(c.name, texts.get(c.description) or catalog.t(None, c.description))
                    for c in commands
                    if keep(c)
                ]
                menus.append((scope, lang or None, chosen))
        digest = hashlib.sha256(
            json.dumps(
                [app.bot.id, [(s.type, lang, [c.to_dict() for c in cs]) for s, lang, cs in menus]],
                ensure_ascii=False,
                sort_keys=True,
            ).encode()
        ).hexdigest()
        try:
            if await bot_state.get(core.db, MENUS_KEY) == digest:
                return
            await asyncio.gather(
                *(app.bot.set_my_commands(cs, scope=scope, language_code=lang) for scope, lang, cs in menus)
            )
            await bot_state.put(core.db, MENUS_KEY, digest, core.clock.now())
            log.info("command menus registered (%d)", len(menus))
        except TelegramError as exc:
            log.warning("could not register the command menus: %s", exc)

    async def stop(self) -> None:
        app = self.app
        try:
            if self._menus is not None:
                self._menus.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._menus
                self._menus = None
            if app is not None:
                if self.core is not None and self.core.outbox is not None:
                    await self.core.outbox.stop()
                if self.core is not None:
                    for close in self.core.closers:
                        try:
                            await close()
                        except Exception:
                            log.exception("error while stopping %s", close)
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
                if app.running:
                    await app.stop()
                await app.shutdown()  # writes the persistence one last time
        finally:
            try:
                if self.leadership is not None:
                    # After the last persistence write: the next active instance loads it all.
                    await self.leadership.stop(release=not self.lost_lease)
                if self.health is not None:
                    await self.health.stop()
            finally:
                await self.db.close()
                self._closed.set()
                log.info("stopped")

    def _lease_lost(self) -> None:
        """Another instance is (or may be) active now: stop sending at once, then stop."""
        self.lost_lease = True
        if self.core is not None and self.core.outbox is not None:
            self.core.outbox.halt()
        self._closed.set()  # `stop` follows: polling ends, the lease is not released (not ours)

    def request_stop(self) -> None:
        self._closed.set()

    async def wait_closed(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._closed.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        await self._closed.wait()
