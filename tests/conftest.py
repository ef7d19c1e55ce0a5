"""The end-to-end harness: the real Application (bot/runtime.py) over real HTTP against the project's
fake Telegram Bot API (fakeapi/), with a temp SQLite file and a controllable clock.

    async def test_start(bot, tg):
        chat = tg.private(tg.user(1001, "小王"))
        await chat.send("/start")
        msg = await chat.expect_message(contains="小哥助手")
        await chat.press("📍 附近驿站", location=(30.27, 120.13))

`bot` is a started `BotHarness`; `await bot.restart()` stops the process state (keeping the database
file and the fake Telegram's world) and starts again; `bot.clock` is a FakeClock;
`await bot.settle()` waits until the bot has taken every update and the outbox is idle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.config import Config, parse_config
from bot.core.runtime import Runtime
from fakeapi import TelegramDriver
from tests import dbs

ADMIN_ID = 9001
MODERATOR_CHAT_ID = -1009000000001


class BotHarness:
    def __init__(self, tg: TelegramDriver, db_path: Path, *, clock: FakeClock, config: Config) -> None:
        self.tg = tg
        self.db_path = db_path
        self.clock = clock
        self.config = config
        self.runtime: Runtime | None = None

    @property
    def core(self) -> Any:
        assert self.runtime is not None and self.runtime.core is not None
        return self.runtime.core

    @property
    def app(self) -> Any:
        assert self.runtime is not None
        return self.runtime.app

    @property
    def db(self) -> Any:
        return self.core.db

    async def start(self) -> BotHarness:
        if dbs.on_postgresql():
            url = await dbs.ensure(self.db_path)
            self.config = dataclasses.replace(
                self.config, storage=dataclasses.replace(self.config.storage, url=url)
            )
        self.runtime = Runtime(self.config, clock=self.clock, polling=True)
        await self.runtime.start()
        return self

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
            self.runtime = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the bot fetched every update, handled it, and the outbox has nothing due."""
        await self.tg.idle(timeout)
        await self._handled(timeout)
        if self.runtime is not None and self.runtime.core is not None:
            await self.core.outbox.idle(timeout)
        await self.tg.idle(timeout)
        await self._handled(timeout)

    async def _handled(self, timeout: float) -> None:
        """No update waiting in the application's queue or being handled."""
        if self.runtime is None or self.runtime.app is None:
            return
        app = self.runtime.app
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while app.update_queue.qsize() or type(app).active_updates or self.tg.pending_updates():
            if loop.time() > deadline:
                raise AssertionError("the bot did not finish handling its updates in time")
            await asyncio.sleep(0.01)

    async def advance(self, **delta: float) -> None:
        """Move the clock (e.g. hours=24) and let due outbox rows go out."""
        self.clock.advance(dt.timedelta(**delta))
        await self.settle()

    async def grant(self, user_id: int, role: str, area: str = "") -> None:
        from storage import roles

        await roles.grant(
            self.db, user_id=user_id, role=role, area=area, granted_by=None, now=self.clock.now()
        )


def make_config(tg: TelegramDriver, db_path: Path, **sections: dict[str, Any]) -> Config:
    base = parse_config(
        {
            "telegram": {
                "token": tg.token,
                "base_url": tg.base_url,
                "base_file_url": tg.base_file_url,
                "poll_timeout": 1,
            },
            "storage": {"path": str(db_path)},
            "bot": {"admins": [ADMIN_ID], "moderator_chat_id": MODERATOR_CHAT_ID},
            # The weekly digest posts into the moderators' chat: only its own tests turn it on.
            "digest": {"enabled": False},
        },
        env={},
    )
    changes = {name: dataclasses.replace(getattr(base, name), **values) for name, values in sections.items()}
    return dataclasses.replace(base, **changes)


@pytest.fixture
async def tg():
    async with TelegramDriver() as driver:
        yield driver


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config_overrides() -> dict[str, dict[str, Any]]:
    """Override in a test module to change config sections: {"stations": {"radius_m": 500}}."""
    return {}


@pytest.fixture
async def bot(tg, tmp_path, clock, config_overrides):
    harness = BotHarness(
        tg,
        tmp_path / "bot.sqlite3",
        clock=clock,
        config=make_config(tg, tmp_path / "bot.sqlite3", **config_overrides),
    )
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
        _assert_callback_data_fits(tg)


def _assert_callback_data_fits(tg: TelegramDriver) -> None:
    """Every inline button the bot sent had callback_data of at most 64 bytes (Telegram's limit)."""
    for call in tg.calls:
        markup = call.params.get("reply_markup") if isinstance(call.params, dict) else None
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data")
                    if data is not None:
                        assert len(data.encode("utf-8")) <= 64, f"callback_data over 64 bytes: {data!r}"


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.INFO, logger="xiaoge")
    yield


def pytest_addoption(parser):
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default=None,
        help="database engine the tests run on (default: XIAOGE_TEST_DB or sqlite)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: runs on SQLite only (skipped with --db postgresql)")
    config.addinivalue_line("markers", "postgresql_only: runs with --db postgresql only")
    chosen = config.getoption("--db") or dbs.backend()
    dbs.BACKEND["name"] = chosen
    if chosen == "postgresql":
        problem = asyncio.run(dbs.check_reachable())
        if problem:
            pytest.exit(f"--db postgresql: {problem}", returncode=3)


def pytest_collection_modifyitems(config, items):
    # SQLite-only tests (query plans, the connections' trace, upgrades of old SQLite files) say so
    # with @pytest.mark.sqlite_only; on PostgreSQL they are skipped and listed as skipped (-ra).
    # PostgreSQL-only tests (two processes on one database) say so with @pytest.mark.postgresql_only.
    if not dbs.on_postgresql():
        pg_only = pytest.mark.skip(reason="PostgreSQL only (run with --db postgresql)")
        for item in items:
            if item.get_closest_marker("postgresql_only"):
                item.add_marker(pg_only)
        return
    skip = pytest.mark.skip(reason="SQLite-specific (query plan, trace or an old SQLite file)")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


def pytest_report_header(config):
    return f"database engine: {dbs.backend()}"


def pytest_sessionfinish(session, exitstatus):
    if dbs.on_postgresql():
        asyncio.run(dbs.drop_all())
