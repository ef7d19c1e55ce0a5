"""Points (志愿分): balances, history, the monthly leaderboard (金牌哨兵), adjustments, redemption.

Everything goes through the one append-only ledger (storage/points.py); a balance is a sum, a
correction is a new entry. Redeeming: the courier asks for a one-time 6-digit code, a moderator or
station keeper confirms it; checking the balance, marking the code used and writing the deduction
happen in one transaction, so a code is spent once and a balance never goes below zero.

A live (unused, unexpired) code holds its points: what a courier can still use is the balance less
the holds (`Wallet.available`), a correction cannot take held points, and confirming a code spends
exactly what it held. One live code per courier: a new code replaces the earlier one, releasing its
hold; an expired code releases it by itself.
Who may adjust or confirm is decided by the handlers through bot.core.authz.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from enum import StrEnum

from dateutil.relativedelta import relativedelta

from bot.core.container import Core
from bot.core.messages import notice
from storage import locks
from storage import points as ledger
from storage import users as users_repo
from storage.db import Executor
from storage.points import LedgerEntry, RedeemCode

RANK_SIZE = 10
CODE_DIGITS = 6


MAX_ADJUST = 10_000  # points one /adjust may add or take


REASON_LIMIT = 200  # characters of a moderator's reason for a correction


class PointsOutcome(StrEnum):
    """What an operation did; handlers show `points.outcome.<value>`."""

    OK = "ok"
    INVALID_AMOUNT = "invalid_amount"
    INSUFFICIENT = "insufficient"
    REASON_MISSING = "reason_missing"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    OWN_CODE = "own_code"
    TOO_LARGE = "too_large"
    REASON_TOO_LONG = "reason_too_long"
    HELD = "held"  # a correction would take points a live redeem code holds


@dataclass(frozen=True)
class PointsResult:
    outcome: PointsOutcome
    balance: int | None = None
    code: RedeemCode | None = None
    replaced: int = 0  #: live codes of the user that a new code made invalid

    @property
    def ok(self) -> bool:
        return self.outcome is PointsOutcome.OK


@dataclass(frozen=True)
class Wallet:
    """A courier's points as they can use them."""

    balance: int  #: the ledger's sum
    held: int  #: held by live redeem codes
    code: RedeemCode | None  #: the live code (the newest), if any

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True)
class RankEntry:
    place: int
    user_id: int
    points: int
    name: str


@dataclass(frozen=True)
class Leaderboard:
    month: dt.date  # first day of the month, local time
    area: str | None
    top: list[RankEntry]
    own: RankEntry | None  # the asking user's place (also when in the top), None without points


class PointsService:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def balance(self, user_id: int) -> int:
        return await ledger.balance(self.core.db, user_id)

    async def wallet(self, user_id: int) -> Wallet:
        return await self._wallet(self.core.db, user_id, self.core.clock.now())

    @staticmethod
    async def _wallet(ex: Executor, user_id: int, now: dt.datetime) -> Wallet:
        codes = await ledger.live_codes(ex, user_id, now)
        return Wallet(
            await ledger.balance(ex, user_id), sum(c.points for c in codes), codes[0] if codes else None
        )

    async def history(self, user_id: int, limit: int = 10) -> list[LedgerEntry]:
        return await ledger.history(self.core.db, user_id, limit)

    def month_bounds(self, month: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC of a month in the configured time zone (default: this month)."""
        if month is None:
            month = self.core.clock.now().astimezone(self.core.tz).date()
        start = dt.datetime(month.year, month.month, 1, tzinfo=self.core.tz)
        end = start + relativedelta(months=1)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    async def rank(self, user_id: int, month: dt.date | None = None, area: str | None = None) -> Leaderboard:
        """Points earned in the month (redemptions don't lower it), overall or in one area.

        Ties go to whoever started earning first that month, then the lower user id: the order is
        always the same.
        """
        start, end = self.month_bounds(month)
        db = self.core.db
        if not await ledger.month_ready(db, start, end):  # a month of another time zone than 0032's
            async with db.transaction() as tx:
                await ledger.build_month(tx, start, end)
        top = await ledger.month_top(db, start, RANK_SIZE, area)
        own = await ledger.month_place(db, start, user_id, area)
        shown = [uid for uid, _ in top]
        if own is not None and user_id not in shown:
            shown.append(user_id)
        users = await users_repo.get_many(db, shown)

        def entry(place: int, uid: int, pts: int) -> RankEntry:
            return RankEntry(place, uid, pts, users[uid].display_name if uid in users else str(uid))

        return Leaderboard(
            month=start.astimezone(self.core.tz).date(),
            area=area,
            top=[entry(place, uid, pts) for place, (uid, pts) in enumerate(top, 1)],
            own=entry(own[0], user_id, own[1]) if own is not None else None,
        )

    async def adjust(self, user_id: int, delta: int, reason: str, actor_id: int) -> PointsResult:
        """A moderator's correction: a ledger entry with the reason, never below zero. The user is told."""
        reason = reason.strip()
        if delta == 0:
            return PointsResult(PointsOutcome.INVALID_AMOUNT)
        if abs(delta) > MAX_ADJUST:  # a typo, not a correction (and SQLite's integers are 64-bit)
            return PointsResult(PointsOutcome.TOO_LARGE)
        if not reason:
            return PointsResult(PointsOutcome.REASON_MISSING)
        if len(reason) > REASON_LIMIT:  # it is stored, shown in /points and sent to the courier
            return PointsResult(PointsOutcome.REASON_TOO_LONG)
        now = self.core.clock.now()
        token = secrets.token_hex(6)
        async with self.core.db.transaction() as tx:
            await locks.hold(tx, locks.points(user_id))  # the balance checked is the balance written
            wallet = await self._wallet(tx, user_id, now)
            balance = wallet.balance
            if wallet.available + delta < 0:
                if wallet.held and balance + delta >= 0:  # the points are there, a live code holds them
                    return PointsResult(PointsOutcome.HELD, wallet.available, wallet.code)
                return PointsResult(PointsOutcome.INSUFFICIENT, balance)
            user = await users_repo.get(tx, user_id)
            await ledger.append(
                tx,
                user_id=user_id,
                delta=delta,
                reason="adjust",
                note=reason,
                area=user.area if user else None,
                actor_id=actor_id,
                idem_key=f"adjust:{token}",
                now=now,
            )
            lang = await self.core.user_lang(user_id, tx)
            text = self.core.t(
                lang, "points.notice.adjusted", delta=f"{delta:+d}", reason=reason, balance=balance + delta
            )
            await self.core.outbox.enqueue(
                [
                    notice(
                        kind="points_notice",
                        dedup_key=f"points:adjust:{token}",
                        user_id=user_id,
                        text=text,
                        now=now,
                    )
                ],
                tx,
            )
            return PointsResult(PointsOutcome.OK, balance + delta)

    async def request_code(self, user_id: int, points: int) -> PointsResult:
        """A one-time code to redeem `points` at a station, valid `tasks.redeem_code_minutes`; it holds
        the points until it is used or expires. A new code replaces the user's earlier live ones,
        releasing their holds (counted in `replaced`, so the user is told): it may use the whole
        balance, never points another live code holds."""
        if points < 1:
            return PointsResult(PointsOutcome.INVALID_AMOUNT)
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            # Every live code is replaced, so every point of the balance is free for the new one (a
            # refused request replaces nothing).
            await locks.hold(tx, locks.points(user_id))
            balance = await ledger.balance(tx, user_id)
            if points > balance:
                return PointsResult(PointsOutcome.INSUFFICIENT, balance)
            replaced = await ledger.expire_codes_of(tx, user_id, now)
            while True:
                code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
                if not await ledger.code_is_live(tx, code, now):
                    break
            row = await ledger.insert_code(
                tx,
                code=code,
                user_id=user_id,
                points=points,
                expires_at=now + dt.timedelta(minutes=self.core.config.tasks.redeem_code_minutes),
                now=now,
            )
            return PointsResult(PointsOutcome.OK, balance, row, replaced=replaced)

    async def confirm_code(self, code: str, actor_id: int) -> PointsResult:
        """The station confirms a code: deducts its points exactly once, never below zero."""
        code = "".join(code.split())
        if len(code) != CODE_DIGITS or not code.isdigit():
            return PointsResult(PointsOutcome.UNKNOWN)
        now = self.core.clock.now()
        async with self.core.db.transaction() as tx:
            row = await ledger.find_code(tx, code, now)
            if row is None:
                return PointsResult(PointsOutcome.UNKNOWN)
            # One redemption of this user's points at a time; the code read again under the lock.
            await locks.hold(tx, locks.points(row.user_id))
            row = await ledger.find_code(tx, code, now)
            if row is None:
                return PointsResult(PointsOutcome.UNKNOWN)
            if row.used_at is not None:
                return PointsResult(PointsOutcome.USED, code=row)
            if row.expires_at <= now:
                return PointsResult(PointsOutcome.EXPIRED, code=row)
            if row.user_id == actor_id:
                return PointsResult(PointsOutcome.OWN_CODE, code=row)
            balance = await ledger.balance(tx, row.user_id)
            if balance < row.points:
                return PointsResult(PointsOutcome.INSUFFICIENT, balance, row)
            if not await ledger.use_code(tx, row.id, actor_id, now):
                return PointsResult(PointsOutcome.USED, code=row)
            await ledger.append(
                tx,
                user_id=row.user_id,
                delta=-row.points,
                reason="redeem",
                ref=f"redeem:{row.id}",
                actor_id=actor_id,
                idem_key=f"redeem:{row.id}",
                now=now,
            )
            lang = await self.core.user_lang(row.user_id, tx)
            text = self.core.t(
                lang, "points.notice.redeemed", points=row.points, balance=balance - row.points
            )
            await self.core.outbox.enqueue(
                [
                    notice(
                        kind="points_notice",
                        dedup_key=f"points:redeem:{row.id}",
                        user_id=row.user_id,
                        text=text,
                        now=now,
                    )
                ],
                tx,
            )
            return PointsResult(PointsOutcome.OK, balance - row.points, row)
