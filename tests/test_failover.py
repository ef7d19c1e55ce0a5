"""Two `xiaoge-bot run` processes on one PostgreSQL database: one active, one standby; kill -9 the
active one mid-broadcast and mid-conversation, and the standby carries on (issue 15, section 4).

Real processes against the fake Bot API (this test's server), 150 ms a Bot API call. PostgreSQL only
(`pytest --db postgresql`): two processes cannot share a SQLite file across machines.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.bench_failover import Instance
from storage import outbox as outbox_repo
from tests import dbs
from tests.conftest import ADMIN_ID
from tests.test_broadcast import compose, delivered, make_groups, moderator

pytestmark = pytest.mark.postgresql_only

LEASE = 3.0  # seconds (the default is 10: a takeover within 11 s)


async def test_kill_the_active_instance_mid_broadcast_and_mid_conversation(bot, tg, tmp_path):
    # Set up through the in-process bot: 40 groups, a moderator, a courier; then hand the database
    # over to two real processes.
    groups = await make_groups(tg, bot, 40)
    mod = await moderator(tg, bot)
    courier = tg.private(tg.user(7301, "小王"))
    await courier.send("/start")
    await courier.expect_message()
    await bot.stop()
    url = dbs.url_for(bot.db_path)
    config = tmp_path / "cluster.toml"
    config.write_text(
        f'[telegram]\ntoken = "{tg.token.split(":")[0]}:{"x" * 35}"\nbase_url = "{tg.base_url}"\n'
        f'base_file_url = "{tg.base_file_url}"\npoll_timeout = 1\n'
        f'[storage]\nurl = "{url}"\n'
        f"[bot]\nadmins = [{ADMIN_ID}]\n[digest]\nenabled = false\n"
        # Real processes on the wall clock: no meal-time hold on the notice, whatever the hour.
        "[broadcast]\nmax_per_second = 8\nrush_windows = []\n",
        encoding="utf-8",
    )
    tg.server.set_latency(0.15)
    text = config.read_text(encoding="utf-8")
    a = await Instance("a", text, tmp_path, LEASE).start()
    b = None
    try:
        await a.wait_health(200, 30)
        b = await Instance("b", text, tmp_path, LEASE).start()
        await b.wait_health(503, 30)  # standby

        # A conversation half-way on A...
        await courier.send("/report")
        await courier.expect_message(contains="要反映什么", timeout=10)
        await (await courier.press("隐患随手拍")).wait()
        await courier.expect_edit(timeout=10)
        await (await courier.press("积水")).wait()
        await courier.expect_message(contains="请简单描述", timeout=10)
        # ... and a broadcast to 40 groups, killed part-way.
        await compose(mod, "台风蓝色预警：今晚停止配送", "所有群")
        await (await mod.press("✅ 发送")).wait()
        text = "台风蓝色预警：今晚停止配送"
        assert await tg.server.wait_for(lambda: sum(len(delivered(tg, g, text)) for g in groups) >= 8, 30)
        a.kill()
        killed = time.monotonic()
        await a.proc.wait()

        await b.wait_health(200, 30)
        failover = time.monotonic() - killed
        assert failover <= 15, failover

        # The conversation goes on where it was, on B.
        await courier.send("地下通道积水半米深")
        await courier.expect_message(contains="照片", timeout=15)
        # Every group gets the notice once; a send cut off by the kill is 'delivery unknown', never
        # sent twice.
        db = await dbs.make_database(bot.db_path).open()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows = await outbox_repo.rows_in_batch(db, await _batch(db))
                if all(r.state in ("sent", "unknown") for r in rows):
                    break
                await asyncio.sleep(0.2)
            states = {r.chat_id: r.state for r in rows}
        finally:
            await db.close()
        assert set(states) == set(groups)
        for g in groups:
            got = len(delivered(tg, g, text))
            assert got <= 1, (g, got)
            assert got == 1 or states[g] == "unknown", (g, states[g])
        # At most the sends in flight at the kill (the outbox allows 2 x max_per_second at once).
        assert sum(s == "unknown" for s in states.values()) <= 16
        print(f"failover: kill -> standby active in {failover:.1f} s")
    finally:
        for inst in (a, b):
            if inst is not None:
                await inst.stop()


async def _batch(db) -> str:
    return await db.fetchval("SELECT batch FROM outbox WHERE kind = 'broadcast' ORDER BY id DESC LIMIT 1")


async def test_an_active_instance_that_loses_its_lease_stops_sending(tg, tmp_path, clock):
    """Someone else holds the lease now (this one stalled past it): stop sending at once, stop, and
    do not release the other's lease; `xiaoge-bot run` then exits 3 for its supervisor."""
    from bot.core.runtime import Runtime
    from storage import leader
    from tests.conftest import make_config

    url = await dbs.ensure(tmp_path / "lease.sqlite3")
    config = make_config(tg, tmp_path / "lease.sqlite3", storage={"url": url}, cluster={"lease_seconds": 3})
    runtime = Runtime(config, clock=clock, polling=True)
    await runtime.start()
    try:
        assert runtime.active and runtime.leadership is not None
        holder = runtime.leadership.holder
        assert (await leader.holder(runtime.db, "bot"))[0] == holder
        await runtime.db.execute("UPDATE leader_lease SET holder = 'other:1:x' WHERE name = 'bot'")
        await asyncio.wait_for(runtime.wait_closed(), 5)  # noticed at the next renewal (1 s)
        assert runtime.lost_lease and not runtime.leadership.active
        assert runtime.core.outbox._stopping
    finally:
        await runtime.stop()
    db = await dbs.make_database(tmp_path / "lease.sqlite3").open()
    try:
        assert (await leader.holder(db, "bot"))[0] == "other:1:x"  # not released: not ours
    finally:
        await db.close()
