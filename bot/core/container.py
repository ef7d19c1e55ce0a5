"""The shared core every service is built from: config, the one clock, the database, texts, outbox.

Handlers get it with `core_of(context)`; services take it in their constructor and are cached per
class with `core.service(StationService)`, so a feature adds a service without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.core.clock import Clock
from bot.core.config import Config
from bot.core.i18n import Catalog, resolve_language
from storage import users as users_repo
from storage.db import Database, Executor

S = TypeVar("S")


@dataclass
class Core:
    config: Config
    clock: Clock
    db: Database
    catalog: Catalog
    outbox: Any = None  # bot.core.outbox.Outbox, set by the runtime (typed loosely to avoid an import cycle)
    authz: Any = None  # bot.core.authz.Authorizer
    _services: dict[type, Any] = field(default_factory=dict)
    # Called (awaited) at shutdown, before the database closes: services stop their own tasks here.
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.outbox is None:
            from bot.core.outbox import Outbox

            self.outbox = Outbox(self)

    def service(self, cls: Callable[[Core], S]) -> S:
        """The one instance of a service class for this process (built on first use)."""
        instance = self._services.get(cls)  # type: ignore[call-overload]
        if instance is None:
            instance = cls(self)
            self._services[cls] = instance  # type: ignore[index]
        return instance

    def t(self, lang: str | None, key: str, /, **values: Any) -> str:
        return self.catalog.t(lang, key, **values)

    def zone_name(self, lang: str | None, zone: str | None = None) -> str:
        """The time zone (default: bot.timezone) as shown to people: 北京时间 for Asia/Shanghai."""
        return self.catalog.zone_name(lang, zone or self.config.bot.timezone)

    async def user_lang(self, user_id: int, db: Executor | None = None) -> str:
        """The language to write to a user in (their /lang choice, else Telegram's, else default).

        Pass the open transaction as `db` when calling inside one (the database lock is not re-entrant).
        """
        user = await users_repo.get(db or self.db, user_id)
        if user is None:
            return self.config.bot.default_language
        return resolve_language(user.lang, user.language_code, self.config.bot.default_language)

    @property
    def tz(self):
        return self.config.bot.tz
