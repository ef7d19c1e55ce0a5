import asyncio
import datetime as dt

import pytest

from storage import outbox, points, roles, users
from storage.db import from_db, to_db
from tests.dbs import make_database

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "t.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


async def test_migrate_is_idempotent(db):
    assert await db.migrate() == []
    assert await db.schema_version() >= 1


def test_time_round_trip():
    when = dt.datetime(2026, 11, 25, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert from_db(to_db(when)) == when
    assert to_db(when).endswith("Z")


async def test_transaction_rolls_back(db):
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await users.touch(
                tx,
                user_id=1,
                first_name="A",
                last_name=None,
                username=None,
                language_code="zh",
                private_chat=True,
                now=NOW,
            )
            raise RuntimeError("boom")
    assert await users.get(db, 1) is None


async def test_outbox_claim_is_exclusive(db):
    msgs = [outbox.NewMessage("text", f"k{i}", 100 + i, {"text": "hi"}, NOW) for i in range(20)]
    assert await outbox.enqueue(db, msgs, NOW) == 20
    assert await outbox.enqueue(db, msgs, NOW) == 0

    async def worker() -> list[int]:
        # What each sender does: read the due rows, then move each to 'sending' right before its send.
        rows = await outbox.fetch_due(db, NOW, 20)
        return [r.id for r in rows if await outbox.start_sending(db, r.id, NOW)]

    got = await asyncio.gather(*(worker() for _ in range(6)))
    ids = [i for batch in got for i in batch]
    assert len(ids) == len(set(ids)) == 20
    # While their sender's lease runs they are not in doubt; once it lapsed, 'delivery unknown'.
    assert await outbox.recover_interrupted(db, NOW) == (0, 0)
    lapsed = NOW + outbox.SEND_LEASE + dt.timedelta(seconds=1)
    assert await outbox.recover_interrupted(db, lapsed) == (0, 20)  # (sent again, delivery unknown)


async def test_ledger_is_append_only(db):
    await points.append(db, user_id=7, delta=5, reason="task", ref="T-1", idem_key="t1", now=NOW)
    await points.append(db, user_id=7, delta=5, reason="task", ref="T-1", idem_key="t1", now=NOW)
    assert await points.balance(db, 7) == 5
    with pytest.raises(Exception, match="append-only"):
        await db.execute("UPDATE points_ledger SET delta = 100")
    with pytest.raises(Exception, match="append-only"):
        await db.execute("DELETE FROM points_ledger")


async def test_roles(db):
    assert await roles.grant(db, user_id=5, role="moderator", area="", granted_by=1, now=NOW)
    assert not await roles.grant(db, user_id=5, role="moderator", area="", granted_by=1, now=NOW)
    assert [g.role for g in await roles.for_user(db, 5)] == ["moderator"]
    assert await roles.revoke(db, user_id=5, role="moderator", area=None) == 1


async def test_lookup_by_an_id_beyond_64_bits_finds_nothing(tmp_path):
    """A forged button or command with a 25-digit id reads as "no such row", not a crash."""

    async with make_database(tmp_path / "o.sqlite3") as db:
        await db.migrate()
        huge = 10**25
        assert await db.fetchone("SELECT * FROM users WHERE id = ?", (huge,)) is None
        assert await db.fetchall("SELECT * FROM users WHERE id = ?", (huge,)) == []
        assert await db.fetchval("SELECT COUNT(*) FROM users WHERE id = ?", (huge,)) is None
        async with db.transaction() as tx:
            assert await tx.fetchone("SELECT * FROM users WHERE id = ?", (huge,)) is None
