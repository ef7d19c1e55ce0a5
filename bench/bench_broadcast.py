"""Benchmark: a broadcast to 1,000 groups under Telegram's flood limits, while a courier keeps asking.

Everything real: the bot's Runtime (PTB Application, HTTP, SQLite outbox, flood limiter) against the
project's fake Bot API with flood limits on (30 messages/s overall, 20/min per group, 429 beyond).
A simulated courier sends /help every second during the broadcast; we time each reply.

Baseline in the same run: the naive approach (PTB's own AIORateLimiter at 30/s, every message sent
through it at once, replies queued behind the broadcast), measured on a fresh fake server.

    python bench/bench_broadcast.py [--groups 1000]

Targets (issue #7): >= 80% of 30/s (1,000 groups in <= ~42 s), 0 x 429, 0 duplicates, 0 losses,
courier replies p95 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.broadcast import BroadcastService, Draft
from bot.core.config import parse_config
from bot.core.runtime import Runtime
from fakeapi import FakeTelegram, TelegramDriver
from storage import groups as groups_repo

TEXT = "【通知】今晚 20:00 小哥学堂：电动车安全与保险理赔"
COURIER = 424242
FIRST_GROUP = -1005000000000


def make_world(tg: TelegramDriver, count: int) -> list[int]:
    """Groups the bot is already a member of (as after months of use), created quietly."""
    ids = []
    for i in range(count):
        chat_id = FIRST_GROUP - i
        state = tg.server.add_group(chat_id, f"小哥群{i:04d}")
        state.bot_status = "member"
        ids.append(chat_id)
    return ids


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def courier_loop(tg: TelegramDriver, stop: asyncio.Event, latencies: list[float]) -> None:
    """A courier sends /help every second and waits for the answer."""
    chat = tg.private(tg.server_user)  # type: ignore[attr-defined]
    while not stop.is_set():
        chat.skip()
        started = time.perf_counter()
        await chat.send("/help")
        try:
            await chat.expect_message(timeout=10)
            latencies.append(time.perf_counter() - started)
        except AssertionError:
            latencies.append(10.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, 1.0 - (time.perf_counter() - started)))


def tally(tg: TelegramDriver, ids: list[int]) -> tuple[int, int]:
    duplicates = losses = 0
    for chat_id in ids:
        n = sum(1 for m in tg.server.chats[chat_id].bot_messages if m.text == TEXT)
        duplicates += max(0, n - 1)
        losses += n == 0
    return duplicates, losses


def count_429(tg: TelegramDriver) -> int:
    return sum(1 for c in tg.calls if c.error_code == 429)


async def run_ours(count: int) -> dict[str, float]:
    server = FakeTelegram(flood_limits=True)
    async with TelegramDriver(server) as tg:
        tg.server.set_flood_limits(global_per_second=30, group_per_minute=20)
        ids = make_world(tg, count)
        tg.server_user = tg.user(COURIER, "骑手小王", started=True)  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(
                {
                    "telegram": {
                        "token": tg.token,
                        "base_url": tg.base_url,
                        "base_file_url": tg.base_file_url,
                        "poll_timeout": 5,
                    },
                    "storage": {"path": str(Path(tmp) / "bench.sqlite3")},
                },
                env={},
            )
            async with Runtime(config, polling=True) as runtime:
                core = runtime.core
                now = core.clock.now()
                for chat_id in ids:
                    await groups_repo.upsert(
                        core.db,
                        chat_id=chat_id,
                        title="g",
                        type="supergroup",
                        active=True,
                        bot_status="member",
                        can_pin=False,
                        now=now,
                    )
                await tg.idle()
                latencies: list[float] = []
                stop = asyncio.Event()
                courier = asyncio.create_task(courier_loop(tg, stop, latencies))
                await asyncio.sleep(1.5)  # the courier is already chatting when the broadcast starts
                errors_before = count_429(tg)
                service = core.service(BroadcastService)
                started = time.perf_counter()
                broadcast, _ = await service.submit(
                    Draft(text=TEXT, audience="groups", urgent=True), author_id=1, lang="zh"
                )
                while True:
                    figures = await service.figures(broadcast.id)
                    if figures.finished:
                        break
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
                stop.set()
                await courier
        duplicates, losses = tally(tg, ids)
        return {
            "elapsed": elapsed,
            "rate": count / elapsed,
            "429": count_429(tg) - errors_before,
            "duplicates": duplicates,
            "losses": losses,
            "failed": figures.failed + figures.skipped,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "replies": len(latencies),
        }


async def run_naive(count: int) -> dict[str, float]:
    """PTB's AIORateLimiter (30/s, 20/min per group), every message handed to it at once."""
    server = FakeTelegram(flood_limits=True)
    async with TelegramDriver(server) as tg:
        tg.server.set_flood_limits(global_per_second=30, group_per_minute=20)
        ids = make_world(tg, count)
        user = tg.user(COURIER, "骑手小王", started=True)
        chat = tg.private(user)
        app = (
            ApplicationBuilder()
            .token(tg.token)
            .base_url(tg.base_url)
            .rate_limiter(AIORateLimiter(max_retries=10))
            .build()
        )
        await app.initialize()
        bot = app.bot
        latencies: list[float] = []
        stop = asyncio.Event()

        async def courier() -> None:
            # The courier's reply goes through the same limiter as the broadcast.
            while not stop.is_set():
                started = time.perf_counter()
                await chat.send("/help")
                await bot.send_message(COURIER, "help text")
                latencies.append(time.perf_counter() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=max(0.0, 1.0 - (time.perf_counter() - started))
                    )

        async def send(chat_id: int) -> None:
            with contextlib.suppress(RetryAfter):
                await bot.send_message(chat_id, TEXT)

        task = asyncio.create_task(courier())
        await asyncio.sleep(1.5)
        before = count_429(tg)
        started = time.perf_counter()
        await asyncio.gather(*(send(c) for c in ids))
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        await app.shutdown()
        duplicates, losses = tally(tg, ids)
        return {
            "elapsed": elapsed,
            "rate": count / elapsed,
            "429": count_429(tg) - before,
            "duplicates": duplicates,
            "losses": losses,
            "failed": losses,
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "replies": len(latencies),
        }


def show(name: str, r: dict[str, float]) -> None:
    print(
        f"{name:<34} elapsed {r['elapsed']:6.1f} s | {r['rate']:5.1f} msg/s = {r['rate'] / 30:5.1%} of 30/s | "
        f"429s {int(r['429']):4d} | duplicates {int(r['duplicates'])} | losses {int(r['losses'])} | "
        f"courier replies n={int(r['replies'])} p50 {r['p50'] * 1000:6.0f} ms p95 {r['p95'] * 1000:6.0f} ms"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"broadcast to {args.groups} groups, fake Bot API flood limits 30/s overall, 20/min per group")
    ours = await run_ours(args.groups)
    show("xiaoge-bot outbox (25/s bulk cap)", ours)
    if not args.skip_baseline:
        naive = await run_naive(args.groups)
        show("naive: AIORateLimiter, all at once", naive)
    ok = (
        ours["rate"] / 30 >= 0.8
        and ours["429"] == 0
        and ours["duplicates"] == 0
        and ours["losses"] == 0
        and ours["p95"] < 1.0
    )
    print(
        "targets (>=80% of 30/s, 0 x 429, 0 duplicates, 0 losses, reply p95 < 1 s):",
        "MET" if ok else "NOT MET",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
