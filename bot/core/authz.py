"""Authorization: the one place that decides who may do what.

Roles: admin (from config, everywhere), moderator, captain and station_keeper (granted in chat or by
CLI, each optionally scoped to an area; area "" means everywhere). Telegram group admins count only
for group housekeeping (setting the group's area). Every privileged command and button calls
`Authorizer.check`; handlers/common.py turns a refusal into a message in the user's language.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.core.container import Core
from storage import roles as roles_repo

log = logging.getLogger(__name__)

# Telegram sends messages of anonymous group admins "from" this user, with sender_chat = the group.
ANONYMOUS_ADMIN_ID = 1087968824


class Role(StrEnum):
    ADMIN = "admin"
    MODERATOR = "moderator"
    CAPTAIN = "captain"
    STATION_KEEPER = "station_keeper"


GRANTABLE = (Role.MODERATOR, Role.CAPTAIN, Role.STATION_KEEPER)


class Perm(StrEnum):
    ROLES_MANAGE = "roles_manage"
    GROUP_SET_AREA = "group_set_area"
    STATIONS_EDIT = "stations_edit"
    REPORTS_HANDLE = "reports_handle"
    POINTS_ADJUST = "points_adjust"
    POINTS_REDEEM_CONFIRM = "points_redeem_confirm"
    TASKS_POST = "tasks_post"
    TASKS_MANAGE = "tasks_manage"
    MEETINGS_MANAGE = "meetings_manage"
    BROADCAST_SEND = "broadcast_send"


# The policy: which roles hold which permission (admins hold all).
POLICY: dict[Perm, frozenset[Role]] = {
    Perm.ROLES_MANAGE: frozenset(),
    Perm.GROUP_SET_AREA: frozenset({Role.MODERATOR}),
    Perm.STATIONS_EDIT: frozenset({Role.MODERATOR}),
    Perm.REPORTS_HANDLE: frozenset({Role.MODERATOR}),
    Perm.POINTS_ADJUST: frozenset({Role.MODERATOR}),
    Perm.POINTS_REDEEM_CONFIRM: frozenset({Role.MODERATOR, Role.STATION_KEEPER}),
    Perm.TASKS_POST: frozenset({Role.MODERATOR, Role.CAPTAIN}),
    Perm.TASKS_MANAGE: frozenset({Role.MODERATOR, Role.CAPTAIN}),
    Perm.MEETINGS_MANAGE: frozenset({Role.MODERATOR}),
    Perm.BROADCAST_SEND: frozenset({Role.MODERATOR}),
}
# Permissions a Telegram admin of the group gets inside that group.
GROUP_ADMIN_PERMS = frozenset({Perm.GROUP_SET_AREA})


@dataclass(frozen=True)
class Actor:
    """Who pressed or typed, as Telegram told us (never from callback data)."""

    user_id: int | None
    chat_id: int | None = None
    chat_type: str | None = None
    # True when the message came from an anonymous group admin (sent as the group itself).
    anonymous_admin: bool = False

    @property
    def in_group(self) -> bool:
        return self.chat_type in ("group", "supergroup")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # "ok" | "role" (lacks the role) | "area" (role held, but not for this area) | "anonymous"
    reason: str
    via: str = ""  # which grant allowed it: "admin", "moderator@蒋村街道", "group_admin"

    def __bool__(self) -> bool:
        return self.allowed


AdminFetcher = Callable[[int], Awaitable[set[int]]]


class Authorizer:
    def __init__(self, core: Core, fetch_group_admins: AdminFetcher | None = None) -> None:
        self.core = core
        self.fetch_group_admins = fetch_group_admins
        self._admin_cache: dict[int, tuple[float, set[int]]] = {}

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.core.config.bot.admins

    async def roles_of(self, user_id: int) -> list[tuple[Role, str]]:
        """Every (role, area) the user holds; admins get ("admin", "")."""
        held = [(Role(g.role), g.area) for g in await roles_repo.for_user(self.core.db, user_id)]
        if self.is_admin(user_id):
            held.insert(0, (Role.ADMIN, ""))
        return held

    async def check(self, actor: Actor, perm: Perm, area: str | None = None) -> Decision:
        """May `actor` use `perm`?

        `area` None asks about the command as such (any grant of the role will do). For an object
        pass its area, "" when it has none: an object without an area belongs to everyone, so only
        grants without an area scope (and admins) may act on it, never a captain of one street.
        """
        if actor.anonymous_admin:
            if perm in GROUP_ADMIN_PERMS:
                return Decision(True, "ok", "group_admin")
            return Decision(False, "anonymous")
        if actor.user_id is None:
            return Decision(False, "role")
        if self.is_admin(actor.user_id):
            return Decision(True, "ok", "admin")
        allowed_roles = POLICY[perm]
        wrong_area = False
        for role, scope in await self.roles_of(actor.user_id):
            if role not in allowed_roles:
                continue
            if scope == "" or area is None or scope == area:
                return Decision(True, "ok", f"{role}@{scope}" if scope else str(role))
            wrong_area = True
        if perm in GROUP_ADMIN_PERMS and actor.in_group and actor.chat_id is not None:
            if actor.user_id in await self.group_admins(actor.chat_id):
                return Decision(True, "ok", "group_admin")
        return Decision(False, "area" if wrong_area else "role")

    async def covers(
        self, user_id: int, perm: Perm, areas: list[str], *, owner_id: int | None = None
    ) -> bool:
        """May the user act (with `perm`) on something that reaches `areas` ([] = everywhere)?

        Unscoped grants and the owner may; a grant scoped to some areas only when every area the thing
        reaches is one of them (a notice to all groups is beyond a street's moderator). Used for
        broadcasts (their areas) and meetings (their areas and their groups' areas, "" for a group
        without one: such a meeting belongs to everyone, so only unscoped grants and its organizer).
        """
        scoped = await self.areas_for(user_id, perm)
        if scoped is None or (owner_id is not None and owner_id == user_id):
            return True
        return bool(areas) and set(areas) <= scoped

    async def areas_for(self, user_id: int, perm: Perm) -> set[str] | None:
        """Areas where the user holds `perm`: None means everywhere, an empty set nowhere."""
        if self.is_admin(user_id):
            return None
        areas: set[str] = set()
        for role, scope in await self.roles_of(user_id):
            if role in POLICY[perm]:
                if scope == "":
                    return None
                areas.add(scope)
        return areas

    # -- Telegram group admins, cached briefly -----------------------------------------------

    async def group_admins(self, chat_id: int) -> set[int]:
        cached = self._admin_cache.get(chat_id)
        ttl = self.core.config.bot.admin_cache_seconds
        if cached and time.monotonic() - cached[0] < ttl:
            return cached[1]
        if self.fetch_group_admins is None:
            return set()
        try:
            admins = await self.fetch_group_admins(chat_id)
        except Exception:
            log.warning("could not read the admins of chat %s", chat_id, exc_info=True)
            return set()
        self._admin_cache[chat_id] = (time.monotonic(), admins)
        return admins

    def forget_group_admins(self, chat_id: int) -> None:
        """A chat_member update arrived: a demoted admin must lose power at once."""
        self._admin_cache.pop(chat_id, None)
