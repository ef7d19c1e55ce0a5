"""The community: who talks to the bot, the groups it serves, their areas, and granted roles.

Handlers reach users, groups and roles only through this service (handlers -> services -> storage).
"""

from __future__ import annotations

import datetime as dt
import logging

from bot.core.container import Core
from bot.kit.numbers import parse_int
from bot.points import PointsService
from storage import groups as groups_repo
from storage import outbox as outbox_repo
from storage import roles as roles_repo
from storage import users as users_repo
from storage.db import Database
from storage.groups import GroupRecord
from storage.roles import RoleGrant
from storage.users import UserRecord

log = logging.getLogger(__name__)


class Community:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def _db(self) -> Database:
        return self.core.db

    def _now(self) -> dt.datetime:
        return self.core.clock.now()

    # -- users ---------------------------------------------------------------------------------

    async def seen_user(
        self,
        user_id: int,
        *,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: str | None,
        private_chat: bool,
    ) -> UserRecord | None:
        """Record that a user spoke (a private message also means they can be messaged again)."""
        await users_repo.touch(
            self._db,
            user_id=user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            private_chat=private_chat,
            now=self._now(),
        )
        return await users_repo.get(self._db, user_id)

    async def user(self, user_id: int) -> UserRecord | None:
        return await users_repo.get(self._db, user_id)

    async def users(self, user_ids: list[int]) -> dict[int, UserRecord]:
        return await users_repo.get_many(self._db, user_ids)

    async def find_user(self, who: str) -> UserRecord | None:
        """A user by id ("123") or username ("@name" or "name")."""
        who = who.strip()[:64]
        user_id = parse_int(who)
        if user_id is not None:
            return await users_repo.get(self._db, user_id)
        return await users_repo.find_by_username(self._db, who.lstrip("@"))

    async def set_language(self, user_id: int, lang: str | None) -> None:
        await users_repo.set_lang(self._db, user_id, lang)

    async def set_subscribed(self, user_id: int, subscribed: bool) -> None:
        await users_repo.set_subscribed(self._db, user_id, subscribed)

    async def subscribers(self) -> list[int]:
        return await users_repo.reachable_subscribers(self._db)

    async def balance(self, user_id: int) -> int:
        """The points the user can still use: the ledger less what a live redeem code holds (as
        /points shows them; bot/points.py)."""
        return (await self.core.service(PointsService).wallet(user_id)).available

    # -- groups --------------------------------------------------------------------------------

    async def seen_group(self, chat_id: int, title: str, type: str) -> None:
        await groups_repo.touch(self._db, chat_id=chat_id, title=title, type=type, now=self._now())

    async def bot_membership(
        self, chat_id: int, *, title: str, type: str, active: bool, status: str, can_pin: bool
    ) -> None:
        """The bot was added, removed or promoted; a group it left gets nothing more from the outbox."""
        await groups_repo.upsert(
            self._db,
            chat_id=chat_id,
            title=title,
            type=type,
            active=active,
            bot_status=status,
            can_pin=can_pin,
            now=self._now(),
        )
        if not active:
            await outbox_repo.cancel_for_chat(self._db, chat_id, "bot removed from the group", self._now())

    async def group_migrated(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: its record (and area) and its unsent messages follow."""
        await groups_repo.migrate(self._db, old_id=old_id, new_id=new_id, now=self._now())
        await outbox_repo.retarget_chat(self._db, old_id, new_id, self._now())

    async def group(self, chat_id: int) -> GroupRecord | None:
        return await groups_repo.get(self._db, chat_id)

    async def active_groups(self, areas: list[str] | None = None) -> list[GroupRecord]:
        return await groups_repo.list_active(self._db, areas)

    async def areas(self) -> list[tuple[str, int]]:
        """(area, number of active groups) for every area in use."""
        return await groups_repo.areas(self._db)

    async def set_group_area(self, chat_id: int, area: str | None) -> None:
        await groups_repo.set_area(self._db, chat_id, area, self._now())

    # -- roles ---------------------------------------------------------------------------------

    async def grant(self, user_id: int, role: str, area: str, granted_by: int | None) -> bool:
        return await roles_repo.grant(
            self._db, user_id=user_id, role=role, area=area, granted_by=granted_by, now=self._now()
        )

    async def revoke(self, user_id: int, role: str, area: str) -> int:
        return await roles_repo.revoke(self._db, user_id=user_id, role=role, area=area)

    async def grants(self) -> list[RoleGrant]:
        return await roles_repo.all_grants(self._db)
