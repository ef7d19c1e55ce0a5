"""The terminal sandbox played in-process: lines into `Sandbox.handle`, the transcript out of its stream.

Several people (switching with :as, each seeing what reached their chats), --lang over an earlier
/lang, buttons on earlier messages (N.M), voice notes shown, Telegram's refusals as one human line
(the expected ones not at all), and the chats kept across a restart of the bot and of the sandbox.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

from bot.core.config import parse_config
from bot.sandbox import MOD_CHAT_ID, Sandbox, _body


class Session:
    def __init__(self, sandbox: Sandbox, out: io.StringIO) -> None:
        self.sandbox = sandbox
        self.out = out

    async def __call__(self, *lines: str) -> str:
        """Type the lines; what the sandbox printed meanwhile."""
        start = len(self.out.getvalue())
        for line in lines:
            assert await self.sandbox.handle(line)
        return self.out.getvalue()[start:]


@contextlib.asynccontextmanager
async def sandbox(tmp_path: Path, role: str = "courier", lang: str = "zh") -> AsyncIterator[Session]:
    # The sandbox runs on the wall clock: no meal-time hold on notices, whatever the hour of the run.
    config = parse_config(
        {"storage": {"path": str(tmp_path / "db.sqlite3")}, "broadcast": {"rush_windows": []}}, env={}
    )
    out = io.StringIO()
    box = Sandbox(config, role=role, lang=lang, stations="", out=out)
    try:
        await box.start()
        yield Session(box, out)
    finally:
        await box.stop()


def number_of(text: str, contains: str) -> int:
    """The #N the sandbox printed for the last message (or edit) whose text contains `contains`."""
    found = current = None
    for line in text.splitlines():
        numbered = re.match(r"(?:🤖|✏️ edited|✏️ buttons changed) #(\d+) ", line)
        if numbered:
            current = int(numbered.group(1))
        elif re.match(r"(🤖|✏️|👤|📌|🗑|  💬|  📬|  ⚠️|\(|    \[)", line):
            current = None
        if current is not None and contains in line:
            found = current
    assert found is not None, f"no numbered message with {contains!r} in:\n{text}"
    return found


def button(text: str, label: str) -> int:
    """The number of the last button printed with `label`."""
    matches = re.findall(r"\[(\d+)\] ([^\[\n]*)", text)
    numbers = [int(n) for n, shown in matches if label in shown]
    assert numbers, f"no button {label!r} in:\n{text}"
    return numbers[-1]


async def file_voice_report(s: Session) -> str:
    """小王 files a hazard report with a 7-second voice note and a location."""
    out = await s("/report")
    out = await s(str(button(out, "隐患")))
    out = await s("1")  # the first category
    out = await s("/voice 7")
    out = await s(str(button(out, "跳过")))  # no photos
    await s("/loc 30.2741 120.1551")
    out = s.out.getvalue()
    return await s(str(button(out, "提交")))


async def test_a_courier_sees_the_moderators_broadcast_in_the_group(tmp_path):
    async with sandbox(tmp_path, role="moderator") as s:
        cast = await s(":who")
        assert "→ 3. 陈版主" in cast
        for name, role in (
            ("小王", "courier"),
            ("小李", "courier"),
            ("陈版主", "moderator"),
            ("刘队长", "captain"),
            ("赵管理员", "admin"),
            ("周站长", "station_keeper"),
        ):
            assert re.search(rf"\d\. {name} @\w+ \(id \d+\): {role}", cast), (name, cast)

        out = await s("/broadcast", "今晚有暴雨，注意安全")
        out = await s(str(button(out, "所有群")))
        out = await s(str(button(out, "✅ 发送")))
        assert "🤖 [小哥群] 今晚有暴雨，注意安全" in out

        cast = await s(":who")
        assert re.search(r"2\. 小李 .*1 new \(小哥群 1\)", cast), cast
        # 小王 did nothing: switching shows what reached his chats meanwhile.
        seen = await s(":as 小王")
        assert seen.startswith("(you are now 小王, courier, in 私聊)")
        assert "🤖 [小哥群] 今晚有暴雨，注意安全" in seen
        assert "预览" not in seen  # the moderator's private chat is not his
        assert "(nothing new since you last looked)" in await s(":as 小王")
        assert "(you are now 陈版主" in await s(":as 版主")


async def test_a_report_reaches_the_moderators_with_its_voice_and_the_reporter_hears_back(tmp_path):
    async with sandbox(tmp_path) as s:
        out = await file_voice_report(s)
        assert "📬 new for 陈版主 (版主群 " in out and "赵管理员 (版主群 " in out
        assert "[版主群]" not in out  # 小王 is not in the moderators' group
        assert "not in 版主群" in await s(":mod")

        for who in (":as admin", ":as moderator"):
            seen = await s(who)
            assert "🤖 [版主群] 🎤 voice note 7s H-0001" in seen, seen
            assert "📍 location 30.2741, 120.1551" in seen
        card = number_of(seen, "H-0001 ·")
        out = await s(f"{card}.{button(seen, '受理')}")
        assert f"✏️ edited #{card} [版主群] H-0001" in out
        assert "📬 new for 小王 (私聊 1)" in out

        heard = await s(":as 小王")
        assert "🤖 [私聊] 📬 你反映的 H-0001" in heard
        # The admin, also in the moderators' group, sees the decision on the card too.
        assert f"✏️ edited #{card} [版主群]" in await s(":as 管理员")


async def test_a_courier_claims_the_captain_sees_the_roster_and_the_waitlisted_one_is_told(tmp_path):
    async with sandbox(tmp_path, role="captain") as s:
        await s("/newtask", "助老送餐", "给张奶奶送午饭", "明天 12:00")
        out = await s("-", "文三路100号", "-")
        await s(":say 1", ":say 10", "-", "-")  # one volunteer, 10 points
        out = await s(str(button(s.out.getvalue(), "发到")))
        card = number_of(out, "心愿墙 · 助老送餐")
        assert f"🤖 #{card} [小哥群]" in out
        manage = number_of(out, "已发布")

        await s(":as 小王")
        out = await s(f"{card}.1")
        assert f"✏️ edited #{card} [小哥群]" in out
        seen = await s(":as 小李")
        assert f"🤖 #{card} [小哥群]" in seen and f"✏️ edited #{card} [小哥群]" in seen
        out = await s(f"{card}.1")
        assert "💬 (alert) 🕐" in out  # waitlisted

        await s(":as 队长")
        roster = await s(f"{manage}.1")
        assert "· 小王 —" in roster and "· 小李 —" in roster
        assert "is in 刘队长's private chat" in await s(":as 小李", f"{manage}.1")


async def test_lang_option_wins_over_a_language_chosen_earlier(tmp_path):
    async with sandbox(tmp_path, lang="zh") as s:
        out = await s("/lang")
        assert "Language set to English" in await s(str(button(out, "English")))
        assert "Hi 小王" in await s("/start")
    async with sandbox(tmp_path, lang="zh") as s:
        assert "你好，小王" in await s("/start")
    async with sandbox(tmp_path, lang="en") as s:
        assert "Hi 小王" in await s("/start")
        assert "Hi 小李" in await s(":as 小李", "/start")


async def test_a_number_presses_the_newest_keyboard_and_n_dot_m_an_earlier_message(tmp_path):
    async with sandbox(tmp_path) as s:
        out = await s("/lang")
        languages = number_of(out, "语言")
        out = await s("/start")
        menu = number_of(out, "你好")
        assert menu != languages
        # A bare number: the newest keyboard (the main menu's 📝 button starts a report).
        assert "要反映什么" in await s(str(button(out, "反映问题")))
        await s("/cancel")
        out = await s(f"{languages}.2")
        assert "Language set to English" in out
        assert "no message #99" in await s("99.1")
        assert "no button 7" in await s(f"{languages}.7")
        out = await s(":as 小李", "/start")
        theirs = number_of(out, "你好，小李")
        assert f"#{theirs} is in 小李's private chat" in await s(":as 小王", f"{theirs}.1")


async def test_refusals_are_one_human_line_and_expected_ones_are_not_shown(tmp_path):
    async with sandbox(tmp_path) as s:
        server = s.sandbox.tg.server
        out = await s("/lang")
        languages = number_of(out, "语言")
        server.fail_next(
            "editMessageText",
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message",
        )
        out = await s(f"{languages}.1")
        assert "  ⚠️ [" not in out and "refused" not in out and "not modified" not in out
        server.fail_next("editMessageText", 400, "Bad Request: message to edit not found")
        out = await s(f"{languages}.1")
        assert (
            "  ⚠️ [私聊] Telegram did not let the bot update a message here: message to edit not found" in out
        )
        assert "[telegram refused" not in out


async def test_the_chats_stay_across_a_restart_of_the_bot_and_of_the_sandbox(tmp_path):
    async with sandbox(tmp_path) as s:
        await file_voice_report(s)
        out = await s("/lang")
        languages = number_of(out, "语言")
        assert "restarting the bot" in await s(":restart")
        out = await s(f"{languages}.2")  # a button from before the restart
        assert "Language set to English" in out and "  ⚠️ [" not in out
    assert (tmp_path / "sandbox.world.json").is_file()

    # A new run: the card posted in the moderators' group last time is still there, and a decision
    # taken now updates it (before, the chats started empty and this edit was refused).
    async with sandbox(tmp_path, role="moderator") as s:
        out = await s("/reports")
        out = await s(str(button(out, "H-0001")))
        assert "🤖 [私聊] 🎤 voice note 7s H-0001" in out  # the file is kept too
        card = number_of(out, "H-0001 ·")
        out = await s(f"{card}.{button(out, '受理')}")
        assert re.search(r"✏️ edited #\d+ \[版主群\] H-0001", out), out
        assert "  ⚠️ [" not in out
        chat = s.sandbox.tg.server.chats[MOD_CHAT_ID]
        assert sum("H-0001 ·" in (m.text or "") for m in chat.bot_messages) == 1


def test_what_the_bot_sends_is_shown_whatever_it_carries():
    assert _body({"voice": {"duration": 7}, "caption": "H-0001"}) == "🎤 voice note 7s H-0001"
    assert _body({"photo": [{}], "caption": "注意"}) == "🖼 photo 注意"
    assert _body({"document": {"file_name": "a.csv", "file_size": 12}}) == "📄 document a.csv (12 bytes)"
    assert _body({"location": {"latitude": 30.278059264, "longitude": 120.1411597}}) == (
        "📍 location 30.27806, 120.14116"
    )
    venue = {"title": "驿站", "address": "西溪路", "location": {"latitude": 30.2, "longitude": 120.1}}
    assert _body({"venue": venue, "location": venue["location"]}) == "📍 驿站 — 西溪路 (30.2, 120.1)"
    assert _body({"text": "你好"}) == "你好"


async def test_the_fake_world_round_trips():
    from fakeapi import TelegramDriver, world

    async with TelegramDriver() as tg:
        user = tg.user(1, "小王", started=True)
        await tg.private(user).send_voice(9)
        group = tg.group(-1001, "群", type="group", creator=user)
        await group.chat(user).send("大家好")
        saved = world.dump(tg.server)
    async with TelegramDriver() as tg:
        world.load(tg.server, saved)
        voice = tg.server.chats[1].user_messages[0].data["voice"]
        assert tg.server.files[voice["file_id"]].duration == 9
        assert tg.server.chats[-1001].messages[1].data["text"] == "大家好"
        assert tg.server.chats[-1001].members[1].status == "creator"
        assert tg.server.chats[-1001].next_message_id == 2
