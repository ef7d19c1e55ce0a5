"""Points service: balances from the ledger, monthly rank, adjustments, one-time redeem codes."""

import asyncio
import datetime as dt

import pytest

from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.points import PointsOutcome, PointsService
from storage import points as ledger
from storage import users
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
MOD = 800


@pytest.fixture
async def core(tmp_path):
    db = await make_database(tmp_path / "t.sqlite3").open()
    await db.migrate()
    yield Core(config=parse_config({}, env={}), clock=FakeClock(NOW), db=db, catalog=Catalog.load())
    await db.close()


@pytest.fixture
def svc(core) -> PointsService:
    return core.service(PointsService)


async def credit(core, user_id: int, delta: int, at: dt.datetime = NOW, area: str | None = None) -> None:
    await ledger.append(
        core.db, user_id=user_id, delta=delta, reason="task_done", area=area, now=at, idem_key=None
    )


async def test_ledger_sum_equals_balance(core, svc):
    await credit(core, 1, 10)
    await credit(core, 1, 5)
    assert (await svc.adjust(1, -3, "重复登记", MOD)).balance == 12
    code = (await svc.request_code(1, 4)).code
    assert code is not None
    assert (await svc.confirm_code(code.code, MOD)).balance == 8
    for user in (1, 2):
        total = await core.db.fetchval(
            "SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE user_id = ?", (user,)
        )
        assert await svc.balance(user) == total
    assert [e.delta for e in await svc.history(1)] == [-4, -3, 5, 10]


async def test_adjust_records_reason_and_actor_never_below_zero(core, svc):
    await credit(core, 1, 5)
    assert (await svc.adjust(1, 0, "x", MOD)).outcome is PointsOutcome.INVALID_AMOUNT
    assert (await svc.adjust(1, 3, "  ", MOD)).outcome is PointsOutcome.REASON_MISSING
    refused = await svc.adjust(1, -6, "too much", MOD)
    assert (refused.outcome, refused.balance) == (PointsOutcome.INSUFFICIENT, 5)
    assert (await svc.adjust(1, 20, "台风巡查补登", MOD)).balance == 25
    entry = (await svc.history(1))[0]
    assert (entry.delta, entry.reason, entry.note, entry.actor_id) == (20, "adjust", "台风巡查补登", MOD)
    told = await core.db.fetchall("SELECT chat_id, payload FROM outbox WHERE kind = 'points_notice'")
    assert len(told) == 1 and told[0][0] == 1 and "+20" in told[0][1]


async def test_rank_order_month_and_area(core, svc):
    tz_month_start = dt.datetime(2026, 10, 31, 16, 0, tzinfo=dt.UTC)  # 1 Nov 00:00 in Asia/Shanghai
    await credit(core, 1, 50, tz_month_start - dt.timedelta(seconds=1))  # October (local): not counted
    await credit(core, 1, 10, tz_month_start, area="蒋村")
    await credit(core, 2, 30, tz_month_start + dt.timedelta(hours=1), area="文新")
    await credit(core, 3, 10, tz_month_start + dt.timedelta(hours=2), area="蒋村")  # ties with 1, later
    await credit(core, 4, 10, tz_month_start + dt.timedelta(hours=2), area="蒋村")  # ties with 3, higher id
    await users.touch(
        core.db, user_id=2, first_name="阿强", last_name=None, username=None, language_code="zh",
        now=NOW, private_chat=True,
    )  # fmt: skip
    for i in range(20):
        await credit(core, 100 + i, 1, NOW)
    await svc.adjust(2, 7, "wrongly credited", MOD)
    await svc.adjust(2, -7, "correcting the wrong credit", MOD)  # a correction cancels it in the rank
    code = (await svc.request_code(2, 5)).code
    assert code is not None and (await svc.confirm_code(code.code, MOD)).ok  # spending doesn't lower it

    board = await svc.rank(3)
    assert board.month == dt.date(2026, 11, 1)
    assert [(e.place, e.user_id, e.points) for e in board.top[:4]] == [
        (1, 2, 30),
        (2, 1, 10),
        (3, 3, 10),
        (4, 4, 10),
    ]
    assert board.top[0].name == "阿强"
    assert len(board.top) == 10
    assert board.own is not None and board.own.place == 3

    late = await svc.rank(119)
    assert late.own is not None and late.own.place == 24 and late.own.user_id == 119
    assert (await svc.rank(999)).own is None

    area = await svc.rank(4, area="蒋村")
    assert [e.user_id for e in area.top] == [1, 3, 4]
    assert area.own is not None and area.own.place == 3

    october = await svc.rank(1, month=dt.date(2026, 10, 1))
    assert [(e.user_id, e.points) for e in october.top] == [(1, 50)]


async def test_rank_leaves_out_a_credit_taken_back(core, svc):
    await credit(core, 1, 10)
    await svc.adjust(2, 50, "typo", MOD)
    await svc.adjust(2, -50, "typo corrected", MOD)
    board = await svc.rank(2)
    assert [(e.user_id, e.points) for e in board.top] == [(1, 10)]
    assert board.own is None


async def test_adjust_refuses_absurd_amounts_and_the_ledger_stays_usable(core, svc):
    await credit(core, 1, 5)
    for delta in (10**19, 2**62, -(10**19), 10_001):
        assert (await svc.adjust(1, delta, "typo", MOD)).outcome is PointsOutcome.TOO_LARGE
    assert (await svc.adjust(1, 10_000, "big but fine", MOD)).balance == 10_005
    assert await svc.balance(1) == 10_005


async def test_redeem_code_once_and_never_below_zero(core, svc):
    await credit(core, 1, 10)
    assert (await svc.request_code(1, 0)).outcome is PointsOutcome.INVALID_AMOUNT
    assert (await svc.request_code(1, 11)).outcome is PointsOutcome.INSUFFICIENT
    issued = await svc.request_code(1, 8)
    assert issued.ok and issued.code is not None
    code = issued.code.code
    assert len(code) == 6 and code.isdigit()
    assert issued.code.expires_at == NOW + dt.timedelta(minutes=10)

    assert (await svc.confirm_code(code, 1)).outcome is PointsOutcome.OWN_CODE
    results = await asyncio.gather(*(svc.confirm_code(code, MOD) for _ in range(10)))
    assert [r.outcome for r in results].count(PointsOutcome.OK) == 1
    assert {r.outcome for r in results} == {PointsOutcome.OK, PointsOutcome.USED}
    assert await svc.balance(1) == 2
    assert (await svc.confirm_code(code, MOD)).outcome is PointsOutcome.USED
    assert (await svc.confirm_code("12 34", MOD)).outcome is PointsOutcome.UNKNOWN


async def test_redeem_code_expired_or_superseded(core, svc):
    await credit(core, 1, 10)
    first = (await svc.request_code(1, 5)).code
    second = (await svc.request_code(1, 5)).code
    assert first is not None and second is not None and first.code != second.code
    assert (await svc.confirm_code(first.code, MOD)).outcome is PointsOutcome.EXPIRED  # replaced
    core.clock.advance(minutes=10)
    assert (await svc.confirm_code(second.code, MOD)).outcome is PointsOutcome.EXPIRED
    assert await svc.balance(1) == 10


async def test_redeem_two_codes_cannot_overdraw(core, svc):
    """A live code holds its points: a correction cannot take them, and confirming the code spends
    exactly what it held (it never fails for want of points it was issued with)."""
    await credit(core, 1, 10)
    await credit(core, 2, 10)
    code = (await svc.request_code(1, 8)).code
    assert code is not None
    refused = await svc.adjust(1, -5, "correction", MOD)
    assert (refused.outcome, refused.balance) == (PointsOutcome.HELD, 2)
    assert (await svc.adjust(1, -12, "correction", MOD)).outcome is PointsOutcome.INSUFFICIENT
    assert (await svc.adjust(1, -2, "correction", MOD)).outcome is PointsOutcome.OK
    spent = await svc.confirm_code(code.code, MOD)
    assert (spent.outcome, spent.balance) == (PointsOutcome.OK, 0)
    assert [e.delta for e in await svc.history(1)][:2] == [-8, -2]


async def test_a_live_code_holds_its_points_until_used_replaced_or_expired(core, svc):
    """What a courier is shown as theirs to use is the balance less what a live code holds; a new
    code replaces the old one and takes over (releases) its hold; an expired code releases it."""
    await credit(core, 1, 20)
    first = (await svc.request_code(1, 20)).code
    assert first is not None
    wallet = await svc.wallet(1)
    assert (wallet.balance, wallet.held, wallet.available, wallet.code) == (20, 20, 0, first)
    second = (await svc.request_code(1, 15)).code  # replaces the first: its 20 are free again
    assert second is not None
    wallet = await svc.wallet(1)
    assert (wallet.held, wallet.available, wallet.code) == (15, 5, second)
    assert (await svc.confirm_code(first.code, MOD)).outcome is PointsOutcome.EXPIRED
    assert (await svc.request_code(1, 21)).outcome is PointsOutcome.INSUFFICIENT
    assert (await svc.wallet(1)).code == second  # a refused request replaces nothing
    core.clock.advance(minutes=10)
    wallet = await svc.wallet(1)
    assert (wallet.held, wallet.available, wallet.code) == (0, 20, None)
    third = (await svc.request_code(1, 20)).code
    assert third is not None
    assert (await svc.confirm_code(third.code, MOD)).balance == 0
    assert (await svc.wallet(1)).available == 0


async def test_new_code_says_how_many_live_codes_it_replaced(core, svc):
    await credit(core, 1, 10)
    assert (await svc.request_code(1, 5)).replaced == 0
    assert (await svc.request_code(1, 5)).replaced == 1
    core.clock.advance(minutes=30)  # the last one expired by itself: nothing live is replaced
    assert (await svc.request_code(1, 5)).replaced == 0


async def test_adjust_refuses_a_reason_too_long_to_send(core, svc):
    await credit(core, 1, 5)
    assert (await svc.adjust(1, 5, "长" * 4075, MOD)).outcome is PointsOutcome.REASON_TOO_LONG
    assert await svc.balance(1) == 5  # nothing stored, nothing queued
    assert not await core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE kind = 'points_notice'")
    assert (await svc.adjust(1, 5, "长" * 200, MOD)).balance == 10
