"""Benchmark: lunch rush on a distant Telegram. The real Application (polling, the flood limiter, the
outbox, SQLite) against the fake Bot API with every call delayed (default 150 ms, as from a server in
China), couriers sharing a location or sending a command at R updates/s for S seconds.

For each offered rate it prints served updates/s and the reply latency p50/p95/max (from the moment a
courier's update reaches Telegram to the moment the bot's first answer reaches the courier's chat),
for the bot as configured (updates handled concurrently, in order per user and chat) and, in the same
run, the one-update-at-a-time baseline (PTB's default, `telegram.concurrent_updates = 1`).

    python bench/bench_rush.py [--rates 20,30] [--seconds 60] [--latency 0.15] [--jitter 0.0]
                               [--modes ours,baseline] [--db sqlite,postgresql] [--pg-url URL]

``--db``: the engines each mode runs on, side by side in one run (default sqlite). On PostgreSQL the
bot gets ``storage.url`` of a scratch database (created at ``--pg-url``, an admin URL, migrated by
the bot at start as in production, dropped afterwards); one instance, so it takes the cluster lease
at once and is the active one.

Targets (issue #12), for ours on each engine: 20/s offered -> p95 < 1 s; 30/s offered -> served >= 25/s (83% of Telegram's
~30 messages/s) with p95 < 2 s. Every courier sends one update (a location 7 times in 10, else /help),
so each update's answer is the first bot message in that courier's chat after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pgscratch
from bot.core.config import parse_config
from bot.core.runtime import Runtime
from bot.stations.importer import import_file
from fakeapi import FakeTelegram, TelegramDriver
from fakeapi.model import ApiCall

ROOT = Path(__file__).resolve().parents[1]
HANGZHOU = (30.2741, 120.1551)
FIRST_COURIER = 7_000_000
REPLY_METHODS = {"sendmessage", "sendvenue", "sendlocation", "sendphoto"}


class ErrorCount(logging.Handler):
    """Counts the records logged at ERROR or above while installed (an update whose handler failed
    is answered with an apology: answered, but not with what the courier asked for)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


async def run(
    rate: float,
    seconds: float,
    latency: float,
    jitter: float,
    concurrent: int,
    engine: str = "sqlite",
    pg_url: str = pgscratch.DEFAULT_ADMIN_URL,
) -> dict[str, float]:
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    try:
        if engine == "postgresql":
            async with pgscratch.scratch(pg_url, "rush") as url:
                result = await _run(rate, seconds, latency, jitter, concurrent, url)
        else:
            result = await _run(rate, seconds, latency, jitter, concurrent, "")
    finally:
        logging.getLogger().removeHandler(errors)
    result["errors"] = errors.count
    return result


async def _run(
    rate: float, seconds: float, latency: float, jitter: float, concurrent: int, db_url: str
) -> dict[str, float]:
    server = FakeTelegram(flood_limits=True)
    async with TelegramDriver(server) as tg:
        tg.server.set_flood_limits(global_per_second=30, group_per_minute=20)
        total = int(rate * seconds)
        couriers = [tg.user(FIRST_COURIER + i, f"骑手{i}", started=True) for i in range(total)]
        sent_at: dict[int, float] = {}
        answered_at: dict[int, float] = {}
        all_answered = asyncio.Event()

        def on_call(call: ApiCall) -> None:
            if call.method.lower() in REPLY_METHODS and call.ok:
                chat = call.params.get("chat_id")
                if isinstance(chat, str) and chat.lstrip("-").isdigit():
                    chat = int(chat)
                if chat in sent_at and chat not in answered_at:
                    answered_at[chat] = call.time + call.duration
                    if len(answered_at) == total:
                        all_answered.set()

        tg.server.listeners.append(on_call)
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(
                {
                    "telegram": {
                        "token": tg.token,
                        "base_url": tg.base_url,
                        "base_file_url": tg.base_file_url,
                        "poll_timeout": 10,
                        "concurrent_updates": concurrent,
                    },
                    "storage": {"path": str(Path(tmp) / "rush.sqlite3"), "url": db_url},
                },
                env={},
            )
            async with Runtime(config, polling=True) as runtime:
                await import_file(runtime.core, ROOT / "data" / "stations.demo.csv")
                tg.server.set_latency(latency, jitter)
                await asyncio.sleep(2 * latency + 0.5)  # the first long poll is out
                rng = random.Random(20261204)
                started = time.monotonic()
                for i, user in enumerate(couriers):
                    due = started + i / rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    chat = tg.private(user)
                    sent_at[chat.chat_id] = time.monotonic()
                    if rng.random() < 0.7:
                        lat = HANGZHOU[0] + rng.uniform(-0.03, 0.03)
                        lon = HANGZHOU[1] + rng.uniform(-0.03, 0.03)
                        await chat.share_location(lat, lon)
                    else:
                        await chat.send("/help")
                offered_s = time.monotonic() - started
                # Let what is queued drain (the baseline may need long: give it at most 2 minutes).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_answered.wait(), timeout=max(30.0, min(120.0, 4 * seconds)))
                finished = max(answered_at.values(), default=started)
                limiter = runtime.app.bot_data["limiter"]
                rtts = limiter.round_trips.ordered
                print(
                    f"    (limiter: margin {limiter.margin * 1000:.0f} ms; round trips min {rtts[0] * 1000:.0f}"
                    f" p5 {rtts[len(rtts) // 20] * 1000:.0f} p50 {rtts[len(rtts) // 2] * 1000:.0f}"
                    f" p95 {rtts[len(rtts) * 19 // 20] * 1000:.0f} max {rtts[-1] * 1000:.0f} ms)"
                )
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        waits = [answered_at[c] - sent_at[c] for c in answered_at]
        unanswered = total - len(answered_at)
        # Served per second over the offering window plus the time it took to answer what came in it.
        served = len(answered_at) / max(offered_s, finished - started)
        return {
            "offered": total / offered_s,
            "served": served,
            "answered": len(answered_at),
            "unanswered": unanswered,
            "p50": percentile(waits, 50),
            "p95": percentile(waits, 95) if not unanswered else float("inf"),
            "max": max(waits, default=float("nan")),
            "429": sum(1 for c in tg.calls if c.error_code == 429),
            "rss_mb": rss_mb,
            "answered_chats": sorted(answered_at),
        }


TOKEN = "123456789:AAH-fake-token-for-the-rush-benchmark-00"


def _vm_rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


async def startup(latency: float) -> None:
    """`xiaoge-bot run` as its own process against the fake Bot API at `latency` per call: seconds
    from the process start to its first getUpdates (twice: a first start registers the command
    menus, a second finds them unchanged), and its resident memory once idle. Beside it, the old
    start-up sequence (getMe, nine setMyCommands one after another, deleteWebhook, then polling)
    replayed against the same server."""
    import os

    root = ROOT
    async with TelegramDriver(FakeTelegram(token=TOKEN)) as tg:
        tg.server.set_latency(latency)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.toml"
            config.write_text(
                f'[telegram]\ntoken = "{TOKEN}"\nbase_url = "{tg.base_url}"\n'
                f'base_file_url = "{tg.base_file_url}"\npoll_timeout = 10\n'
                f'[storage]\npath = "{Path(tmp) / "bot.sqlite3"}"\n',
                encoding="utf-8",
            )
            env = {k: v for k, v in os.environ.items() if k != "XIAOGE_BOT_TOKEN"}
            env["PYTHONPATH"] = str(root)
            for run in ("first start", "second start"):
                since = len(tg.calls)
                started = time.monotonic()
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot.cli", "run", "--config", str(config), cwd=root, env=env,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    await tg.server.wait_for(
                        lambda s=since: any(c.method == "getUpdates" for c in tg.calls[s:]), 30
                    )
                    first_poll = next(c for c in tg.calls[since:] if c.method == "getUpdates")
                    before = [c.method for c in tg.calls[since:] if c.time < first_poll.time]
                    await asyncio.sleep(5)  # idle: menus registered, jobs armed
                    rss = _vm_rss_mb(proc.pid)
                    menus = sum(1 for c in tg.calls[since:] if c.method == "setMyCommands")
                finally:
                    proc.terminate()
                    await proc.wait()
                print(
                    f"  {run:<13} first getUpdates after {first_poll.time - started:4.2f} s "
                    f"({len(before)} calls before it: {', '.join(before)}); "
                    f"{menus} setMyCommands; idle RSS {rss:.0f} MB",
                    flush=True,
                )
            # The old order, replayed: every call waits for the one before it.
            from telegram import Bot, BotCommand

            bot = Bot(TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url)
            started = time.monotonic()
            async with bot:  # getMe
                for _ in range(9):
                    await bot.set_my_commands([BotCommand("start", "start")])
                await bot.delete_webhook()
                await bot.get_updates(timeout=0)
            print(
                f"  old order     first getUpdates after {time.monotonic() - started:4.2f} s (+ the process start)"
            )


def line(name: str, r: dict[str, float]) -> str:
    p95 = "  never" if r["p95"] == float("inf") else f"{r['p95']:7.2f}"
    return (
        f"  {name:<20} offered {r['offered']:5.1f}/s  served {r['served']:5.1f}/s  "
        f"reply p50 {r['p50']:6.2f} s  p95 {p95} s  max {r['max']:6.2f} s  "
        f"unanswered {int(r['unanswered'])}  429s {int(r['429'])}  errors logged {int(r.get('errors', 0))}"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="20,30", help="offered updates per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per Bot API call")
    parser.add_argument("--jitter", type=float, default=0.0, help="± seconds of uniform jitter per call")
    parser.add_argument("--modes", default="ours,baseline")
    parser.add_argument("--db", default="sqlite", help="engines, side by side: sqlite,postgresql")
    parser.add_argument(
        "--pg-url", default=pgscratch.DEFAULT_ADMIN_URL, help="PostgreSQL admin URL (scratch databases)"
    )
    parser.add_argument("--concurrency", type=int, default=128, help="telegram.concurrent_updates of ours")
    parser.add_argument(
        "--startup-latency", type=float, default=0.1, help="Bot API latency for the start-up run"
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    engines = pgscratch.engines(args.db)
    print(
        f"bench_rush: {args.seconds:.0f} s per run, Bot API latency {args.latency * 1000:.0f} ms"
        f" ± {args.jitter * 1000:.0f} ms, Telegram's flood limits on (30/s, 20/min per group);"
        f" engines: {', '.join(engines)}"
    )
    if not args.no_startup:
        print(f"\nstart-up, {args.startup_latency * 1000:.0f} ms per Bot API call:")
        await startup(args.startup_latency)
    failures = 0
    for rate in [float(r) for r in args.rates.split(",") if r]:
        print(f"\n{rate:.0f} updates/s offered:")
        results: dict[tuple[str, str], dict] = {}
        for mode in modes:
            concurrent = args.concurrency if mode == "ours" else 1
            for engine in engines:
                r = await run(rate, args.seconds, args.latency, args.jitter, concurrent, engine, args.pg_url)
                results[mode, engine] = r
                print(line(f"{mode} ({engine})", r), flush=True)
        for engine in engines:
            if ("ours", engine) not in results:
                continue
            r = results["ours", engine]
            if rate <= 20:
                ok = r["p95"] < 1.0
                print(f"  ours ({engine}) target p95 < 1 s: {'met' if ok else 'MISSED'}")
            else:
                ok = r["served"] >= 25.0 and r["p95"] < 2.0
                print(f"  ours ({engine}) target served >= 25/s and p95 < 2 s: {'met' if ok else 'MISSED'}")
            if r["errors"]:
                ok = False
                print(
                    f"  ours ({engine}): {r['errors']} errors logged: those couriers got an apology,"
                    " not an answer; the figures are not comparable"
                )
            failures += not ok
            base = results.get(("baseline", engine))
            if base and base["served"] > 0:
                print(f"  ours ({engine}) serves {r['served'] / base['served']:.1f}x the baseline's rate")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
