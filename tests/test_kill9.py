"""`xiaoge-bot run` as a real process against the fake Bot API: kill -9 mid-conversation loses nothing."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from fakeapi import FakeTelegram, TelegramDriver

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456789:AAH-fake-token-for-the-kill-nine-test-0123"


async def start_bot(config: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "XIAOGE_BOT_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "--config",
        str(config),
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    seen = []
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
        assert line, f"bot exited before ready: {seen}"
        seen.append(line.decode(errors="replace"))
        if "ready:" in seen[-1]:
            break
    asyncio.get_running_loop().create_task(_drain(proc))
    return proc


async def _drain(proc: asyncio.subprocess.Process) -> None:
    while await proc.stderr.readline():
        pass


async def test_kill_9_keeps_the_draft_and_sends_nothing_twice(tmp_path):
    async with TelegramDriver(FakeTelegram(token=TOKEN)) as tg:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[telegram]\ntoken = "{TOKEN}"\nbase_url = "{tg.base_url}"\nbase_file_url = "{tg.base_file_url}"\n'
            f'poll_timeout = 1\n[storage]\npath = "{tmp_path / "bot.sqlite3"}"\n[bot]\nadmins = [4711]\n',
            encoding="utf-8",
        )
        proc = await start_bot(config)
        chat = tg.private(tg.user(4711, "站长"))
        try:
            await chat.send("/broadcast")
            await chat.expect_message(contains="通知内容", timeout=10)
            await chat.send("今晚八点停电检修，驿站暂停开放")
            await chat.expect_message(contains="发给谁", timeout=10)
            await tg.idle()  # the bot flushed the conversation state after answering
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        proc = await start_bot(config)
        try:
            answer = await (await chat.press("订阅的小哥（1 人）")).wait(timeout=10)
            assert answer.text is None or "过期" not in answer.text, answer.text
            preview = await chat.expect_message(contains="预览", timeout=10)
            assert "停电检修" in preview.text
            await (await chat.press("⬜ 紧急")).wait(
                timeout=10
            )  # whatever the real clock says about rush hours
            await chat.expect_edit(contains="紧急", timeout=10)
            await (await chat.press("✅ 发送")).wait(timeout=10)
            await chat.expect_message(contains="今晚八点停电检修", timeout=10)
            await asyncio.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        texts = [m.text for m in chat.messages]
        assert sum("发给谁" in t for t in texts) == 1, texts
        assert sum(t == "今晚八点停电检修，驿站暂停开放" for t in texts) == 1, texts
