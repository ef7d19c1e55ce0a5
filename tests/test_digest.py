"""The weekly digest: the week that is due, one PNG per moderators' chat through the outbox, never
twice for the same week, a text-only digest without a CJK font."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt

import pytest

import bot.digest as digest_module
from bot.core.clock import FakeClock
from bot.core.config import parse_config
from bot.core.container import Core
from bot.core.i18n import Catalog
from bot.digest import DigestService, cjk_font
from bot.reports.service import ReportDraft, ReportService
from storage import outbox as outbox_repo
from storage import users
from tests.conftest import ADMIN_ID, MODERATOR_CHAT_ID
from tests.dbs import make_database

MOD_CHAT = -1001
AREA_CHAT = -1002
COURIER = 7101
TZ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
async def db(tmp_path):
    database = await make_database(tmp_path / "d.sqlite3").open()
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def clock():
    # Monday 2026-11-30 09:30 in Hangzhou
    return FakeClock(dt.datetime(2026, 11, 30, 9, 30, tzinfo=TZ))


@pytest.fixture
async def core(db, clock):
    config = parse_config(
        {"bot": {"moderator_chat_id": MOD_CHAT, "area_moderator_chats": {"文新街道": AREA_CHAT}}}, env={}
    )
    return Core(config=config, clock=clock, db=db, catalog=Catalog.load())


async def _reports(core, clock):
    await users.touch(
        core.db,
        user_id=COURIER,
        first_name="小王",
        last_name=None,
        username=None,
        language_code="zh",
        now=clock.now(),
        private_chat=True,
    )
    service = core.service(ReportService)
    saved = clock.now()
    clock.set(dt.datetime(2026, 11, 24, 10, 0, tzinfo=TZ))  # Tuesday of the week before
    first = await service.submit(
        COURIER,
        ReportDraft(
            kind="hazard", category="road_damage", description="坑", lat=30.25, lon=120.13, area="文新街道"
        ),
    )
    clock.advance(dt.timedelta(hours=3))
    await service.transition(first.id, "ack", 1)
    clock.set(dt.datetime(2026, 11, 26, 10, 0, tzinfo=TZ))
    await service.submit(
        COURIER, ReportDraft(kind="grievance", category="wages", description="拖欠工资", area="蒋村街道")
    )
    clock.set(saved)


def test_the_due_week_is_the_one_that_ended(core, clock):
    svc = core.service(DigestService)
    assert svc.due_week(clock.now()) == dt.date(2026, 11, 23)
    # Before Monday 09:00 the week before last is the latest that was due.
    assert svc.due_week(dt.datetime(2026, 11, 30, 8, 59, tzinfo=TZ)) == dt.date(2026, 11, 16)
    assert svc.due_week(dt.datetime(2026, 12, 6, 23, 0, tzinfo=TZ)) == dt.date(2026, 11, 23)
    assert svc.chats() == {AREA_CHAT: frozenset({"文新街道"}), MOD_CHAT: None}


async def test_digest_png_queued_once_per_week_and_chat(core, clock):
    assert cjk_font(), "fonts-noto-cjk is installed here (apt-get install -y fonts-noto-cjk)"
    await _reports(core, clock)
    svc = core.service(DigestService)
    assert await svc.queue_due() == 2
    assert await svc.queue_due() == 0  # never twice
    clock.advance(dt.timedelta(days=1))
    assert await svc.queue_due() == 0
    row = await outbox_repo.get_by_key(core.db, "digest:2026-11-23:-1001")
    assert row.payload["method"] == "sendPhoto"
    png = base64.b64decode(row.payload["params"]["photo"]["upload_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    caption = row.payload["params"]["caption"]
    assert "11-23 ~ 11-29" in caption and "反映 2 件" in caption and "已受理 1 件" in caption
    assert "受理中位用时 3.0 小时" in caption
    area_row = await outbox_repo.get_by_key(core.db, "digest:2026-11-23:-1002")
    assert (
        "反映 1 件" in area_row.payload["params"]["caption"]
        and "文新街道" in area_row.payload["params"]["caption"]
    )
    # The next Monday brings the next week.
    clock.advance(dt.timedelta(days=6))
    assert await svc.queue_due() == 2
    assert await outbox_repo.get_by_key(core.db, "digest:2026-11-30:-1001") is not None


async def test_without_a_cjk_font_the_digest_is_text(core, clock, monkeypatch):
    monkeypatch.setattr(digest_module, "cjk_font", lambda: None)
    svc = core.service(DigestService)
    assert await svc.queue_due() == 2
    row = await outbox_repo.get_by_key(core.db, "digest:2026-11-23:-1001")
    assert row.payload["method"] == "sendMessage"
    assert "反映 0 件" in row.payload["params"]["text"] and "fonts-noto-cjk" in row.payload["params"]["text"]


async def test_disabled_digest_queues_nothing(db, clock):
    config = parse_config({"bot": {"moderator_chat_id": MOD_CHAT}, "digest": {"enabled": False}}, env={})
    core = Core(config=config, clock=clock, db=db, catalog=Catalog.load())
    assert await core.service(DigestService).queue_due() == 0


@pytest.fixture
def config_overrides():
    return {"digest": {"enabled": True}}


async def test_the_digest_reaches_the_moderators_chat_as_a_photo_once(bot, tg):
    admin = tg.user(ADMIN_ID, "管理员", started=True)
    group = tg.group(MODERATOR_CHAT_ID, "版主群", creator=admin)
    await group.add_bot(by=admin)
    await bot.advance(seconds=1)  # the clock moved: the job looks at once
    for _ in range(300):  # the chart renders in a thread (matplotlib's first import takes a while)
        if tg.calls_to("sendPhoto"):
            break
        await asyncio.sleep(0.1)
    await bot.settle()
    photos = [c for c in tg.calls_to("sendPhoto") if int(c.params.get("chat_id")) == MODERATOR_CHAT_ID]
    assert len(photos) == 1
    assert "本周小结" in photos[0].params["caption"]
    await bot.restart()
    await bot.advance(hours=1)
    assert (
        len([c for c in tg.calls_to("sendPhoto") if int(c.params.get("chat_id")) == MODERATOR_CHAT_ID]) == 1
    )


async def test_the_desk_is_off_without_a_public_url(bot, tg):
    assert "webapp" not in bot.app.bot_data
    chat = tg.private(tg.user(ADMIN_ID, "管理员"))
    await chat.send("/desk")
    await chat.expect_message(contains="webapp.public_url")


class _Recorder:
    """An Executor that keeps the statements a storage function sends (to explain their plans)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, list]] = []

    async def fetchall(self, sql, params=()):
        self.statements.append((sql, list(params)))
        return []


async def _plans(db, call) -> list[str]:
    recorder = _Recorder()
    await call(recorder)
    out = []
    for sql, params in recorder.statements:
        rows = await db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
        out.append(" | ".join(r["detail"] for r in rows))
    return out


@pytest.mark.sqlite_only
async def test_the_desk_queries_use_their_indexes(db):
    """The board, the map and the week at a million reports: index ranges per area and status, never
    a scan of the table or of an area's whole history."""
    from storage import desk

    since = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
    area = frozenset({"文新街道"})
    bounds = [since + dt.timedelta(days=i) for i in range(8)]
    cases = {
        "open column": (
            lambda ex: desk.reports(ex, statuses=("new",), areas=area, limit=100),
            "reports_status_area",
        ),
        "closed column": (
            lambda ex: desk.reports(
                ex, statuses=("resolved",), areas=area, updated_since=since, latest_first=True
            ),
            "reports_closed_area",
        ),
        "closed column, all areas": (
            lambda ex: desk.reports(
                ex, statuses=("resolved",), areas=None, updated_since=since, latest_first=True
            ),
            "reports_status_updated",
        ),
        "map": (
            lambda ex: desk.reports(
                ex, statuses=("new", "acknowledged", "in_progress"), areas=area, located_only=True
            ),
            "reports_status_area",
        ),
        "week by area": (lambda ex: desk.week_rows(ex, bounds, area), "reports_status_area"),
        "week": (lambda ex: desk.week_rows(ex, bounds, None), "reports_"),
    }
    for name, (call, index) in cases.items():
        for plan in await _plans(db, call):
            assert f"INDEX {index}" in plan and "SCAN reports" not in plan, (name, plan)
