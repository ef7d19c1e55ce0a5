"""Hostile and clumsy input, end to end: every button prefix the bot registers, forged by a courier
without any role and mutated or random; every command with odd and overlong arguments, by a courier
and by an admin; the same in a group. Each must get a clear answer, change nothing it should not, log
no traceback, and never make the bot send something Telegram refuses (400)."""

from __future__ import annotations

import logging
import random
import re
from typing import Any

import pytest
from telegram.ext import CallbackQueryHandler, ConversationHandler

from handlers import all_commands
from tests.conftest import ADMIN_ID

COURIER = 6001
GROUP = -1006000000001
LONG = "长" * 4096

# Tables whose rows a forged button or an odd command from a courier must never change. (users,
# groups and PTB's own conversation/user data legitimately change on every update.)
GUARDED = (
    "roles",
    "stations",
    "station_flags",
    "reports",
    "report_events",
    "tasks",
    "task_claims",
    "points_ledger",
    "redeem_codes",
    "meetings",
    "meeting_rsvps",
    "meeting_topics",
    "broadcasts",
)


def callback_prefixes(app: Any) -> list[str]:
    """The literal start of every CallbackQueryHandler pattern the application registers."""
    found: set[str] = set()

    def visit(handler: Any) -> None:
        if isinstance(handler, ConversationHandler):
            for h in [*handler.entry_points, *handler.fallbacks]:
                visit(h)
            for state in handler.states.values():
                for h in state:
                    visit(h)
        elif isinstance(handler, CallbackQueryHandler) and isinstance(handler.pattern, re.Pattern):
            literal = re.match(r"[\w:]*", handler.pattern.pattern.lstrip("^").replace("\\", ""))
            if literal and literal.group(0):
                found.add(literal.group(0))

    for group in app.handlers.values():
        for handler in group:
            visit(handler)
    return sorted(found)


def mutations(prefix: str, rng: random.Random) -> list[str]:
    tails = [
        "",
        "0",
        "-1",
        "1",
        "99999999999999999",
        "9" * 40,
        "x",
        "1:2:3:4:5",
        "²",
        "NaN",
        "1e308",
        ":" * 10,
        "".join(rng.choice("abcxyz0123456789:-_") for _ in range(30)),
        "长" * 10,
    ]
    out = []
    for tail in tails:
        data = (prefix if prefix.endswith(":") or not tail else prefix + ":") + tail
        out.append(data.encode()[:64].decode(errors="ignore") or prefix)
    return out


async def snapshot(db) -> dict[str, int]:
    counts = {}
    for table in GUARDED:
        counts[table] = await db.fetchval(f"SELECT COUNT(*) FROM {table}")
    counts["state"] = await db.fetchval(
        "SELECT COALESCE(SUM(LENGTH(status)), 0) FROM reports"
    ) + await db.fetchval("SELECT COALESCE(SUM(LENGTH(state)), 0) FROM tasks")
    return counts


def tracebacks(caplog) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def refused_by_telegram(tg, since: int) -> list[str]:
    return [f"{c.method} {c.error_code} {c.description}" for c in tg.calls[since:] if c.error_code == 400]


@pytest.fixture
async def world(bot, tg):
    courier = tg.user(COURIER, "捣蛋鬼", started=True)
    chat = tg.private(courier)
    await chat.send("/start")
    await chat.expect_message()
    group = tg.group(GROUP, "小哥群", creator=courier)
    await group.add_bot(by=courier)
    await bot.settle()
    return courier, chat, group


async def test_every_forged_button_from_a_courier_is_answered_and_changes_nothing(bot, tg, world, caplog):
    caplog.set_level(logging.INFO)
    courier, chat, group = world
    in_group = group.chat(courier)
    rng = random.Random(13)
    prefixes = callback_prefixes(bot.app)
    assert len(prefixes) > 40  # the walk found the bot's buttons
    before = await snapshot(bot.db)
    since = len(tg.calls)
    unanswered = []
    for where in (chat, in_group):
        for prefix in prefixes:
            presses = [(data, await where.press_data(data)) for data in mutations(prefix, rng)]
            await bot.settle(timeout=30)
            unanswered += [f"{where.chat_id} {data}" for data, answer in presses if not answer.answered]
    await bot.settle(timeout=30)
    assert unanswered == []
    assert await snapshot(bot.db) == before
    assert tracebacks(caplog) == []
    assert sorted(set(refused_by_telegram(tg, since))) == []


@pytest.mark.parametrize("who", ["courier", "admin"])
async def test_every_command_with_odd_arguments(bot, tg, world, caplog, who):
    caplog.set_level(logging.INFO)
    courier, chat, group = world
    person = courier
    if who == "admin":
        person = tg.user(ADMIN_ID, "管理员", started=True)
        chat = tg.private(person)
    in_group = group.chat(person)
    names = sorted({c.name for c in all_commands()})
    odd = [
        LONG,
        "²",
        "² 20020",
        "² +5 x",
        "-1",
        "99999999999999999999",
        "@",
        "<b>x</b> & <",
        "1\n2",
        "🚀" * 50,
    ]
    before = await snapshot(bot.db)
    since = len(tg.calls)
    for name in names:
        for arg in odd:
            await chat.send(f"/{name} {arg}")
            await bot.settle(timeout=30)
            await chat.send("/cancel")
        await in_group.send(f"/{name} {LONG}")
    await bot.settle(timeout=30)
    if who == "courier":
        assert await snapshot(bot.db) == before
    assert tracebacks(caplog) == []
    assert sorted(set(refused_by_telegram(tg, since))) == []


@pytest.mark.parametrize(
    "point",
    [(float("nan"), float("nan")), (float("inf"), 120.0), (1e308, 120.0), (91.0, 120.1), (30.2, -181.0)],
)
async def test_impossible_locations_are_refused_at_the_edge(bot, tg, world, caplog, point):
    _, chat, _ = world
    chat.skip()
    await chat.share_location(*point)
    await chat.expect_message(contains="无法识别")
    await chat.send("/wishes")  # nothing remembered the bad point: the wall still opens
    await chat.expect_message(contains="心愿墙")
    await chat.share_location(30.2741, 120.1551)  # and a real one is answered as always
    await chat.expect_message()
    assert tracebacks(caplog) == []


async def test_a_busy_group_holds_nobody_and_repeated_help_is_answered_once(bot, tg, world, caplog):
    """26 /help@bot in one group, with Telegram's 20-a-minute limit per group: the first answers go
    at once, the rest wait in the outbox (the same help once), no handler sleeps, and a private /start
    sent meanwhile is answered at once."""
    caplog.set_level(logging.INFO)
    tg.server.set_flood_limits(global_per_second=30, group_per_minute=20)
    courier, chat, group = world
    in_group = group.chat(courier)
    before = len(tg.server.chats[GROUP].bot_messages)
    for _ in range(26):
        await in_group.send("/help@xiaoge_test_bot")
    chat.skip()
    await chat.send("/start")
    await chat.expect_message(contains="你好", timeout=3)
    await bot.settle(timeout=30)
    answered = len(tg.server.chats[GROUP].bot_messages) - before
    # The group's window (20 a minute, the bot's greeting on joining included) filled at once; the
    # other /help are one queued answer.
    assert 15 <= answered <= 20
    queued = await bot.db.fetchall("SELECT state FROM outbox WHERE kind = 'deferred_reply'")
    assert len(queued) == 1
    assert not [c for c in tg.calls if c.error_code == 429]
    slow = [r.getMessage() for r in caplog.records if "update id=" in r.getMessage() and _ms(r) > 2000]
    assert slow == []  # no handler waited for the group's window
    assert tracebacks(caplog) == []


def _ms(record) -> float:
    return float(record.getMessage().rsplit("ms=", 1)[-1])


async def test_transient_telegram_errors_are_retried_or_one_line(bot, tg, world, caplog):
    caplog.set_level(logging.INFO)
    _, chat, _ = world
    chat.skip()
    # A 502 to a button's answer: tried again, the courier sees the answer.
    tg.server.fail_next("answerCallbackQuery", 502, "Bad Gateway", chat_id=None)
    await chat.send("/lang")
    await chat.expect_message()
    answer = await (await chat.press("English")).wait()
    assert answer.answered
    # A 502 to a new message (not repeated: it might arrive twice): one warning line, no traceback.
    tg.server.fail_next("sendMessage", 502, "Bad Gateway", chat_id=COURIER)
    await chat.send("/help")
    await bot.settle()
    assert tracebacks(caplog) == []
    assert any("Bad Gateway" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
