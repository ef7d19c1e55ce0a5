"""`xiaoge-bot sandbox`: chat with the real bot in a terminal, against the built-in fake Bot API.

The bot runs exactly as in production (same Application, handlers, database code, HTTP), only
Telegram is replaced by fakeapi/. You are one user (a courier, moderator, captain or admin) with a
private chat, a courier group and the moderators' group.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.core.config import Config

USER_ID = 10001
GROUP_ID = -1001000000001
MOD_CHAT_ID = -1001000000002

HELP = """\
Sandbox commands (everything else is sent as a message):
  /loc LAT LON            share a location (WGS-84), e.g. /loc 30.2741 120.1551
  /venue LAT LON NAME     send a venue
  /photo [caption]        send a photo        /voice   a voice note     /sticker  a sticker
  /doc                    send a document
  NUMBER                  press button NUMBER of the newest keyboard in this chat
  :private :group :mod    switch to your private chat / the courier group / the moderators' group
  :wait SECONDS           wait (reminders and broadcasts go out in real time)
  :help                   this text            :quit    leave (also Ctrl-D)
"""


class Sandbox:
    def __init__(self, config: Config, *, role: str, lang: str, stations: str, out: TextIO) -> None:
        self.role = role
        self.lang = lang
        self.stations = stations
        self.out = out
        self.base_config = config
        self.tg: Any = None
        self.runtime: Any = None
        self.chats: dict[str, Any] = {}
        self.current = "private"
        self._seen = 0
        self._buttons: dict[int, list[str]] = {}

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def start(self) -> None:
        from bot.core.runtime import Runtime
        from fakeapi import TelegramDriver

        self.tg = await TelegramDriver().start()
        base = self.base_config
        db_path = Path(base.storage.path).with_name("sandbox.sqlite3")
        admins = (*base.bot.admins, USER_ID) if self.role == "admin" else base.bot.admins
        config = dataclasses.replace(
            base,
            telegram=dataclasses.replace(
                base.telegram,
                token=self.tg.token,
                base_url=self.tg.base_url,
                base_file_url=self.tg.base_file_url,
                mode="polling",
                poll_timeout=5,
            ),
            storage=dataclasses.replace(base.storage, path=str(db_path)),
            bot=dataclasses.replace(base.bot, admins=admins, moderator_chat_id=MOD_CHAT_ID),
        )
        self.runtime = Runtime(config, polling=True)
        await self.runtime.start()
        core = self.runtime.core
        from storage import roles

        # The sandbox file outlives a session: start from the role asked for, not the last one's.
        for held in await roles.for_user(core.db, USER_ID):
            await roles.revoke(core.db, user_id=USER_ID, role=held.role, area=held.area)
        if self.role in ("moderator", "captain"):
            await roles.grant(
                core.db, user_id=USER_ID, role=self.role, area="", granted_by=None, now=core.clock.now()
            )
        await self._load_stations(core)
        names = {"courier": "沙盒小哥", "moderator": "沙盒版主", "captain": "沙盒队长", "admin": "沙盒管理员"}
        user = self.tg.user(
            USER_ID, names[self.role], username="sandbox_user", language_code=self.lang, started=True
        )
        group = self.tg.group(GROUP_ID, "演示小哥群", creator=user)
        await group.add_bot(by=user, admin=True)
        mod = self.tg.group(MOD_CHAT_ID, "版主群", creator=user)
        await mod.add_bot(by=user, admin=True)
        self.chats = {"private": self.tg.private(user), "group": group.chat(user), "mod": mod.chat(user)}
        await self.settle()
        self._seen = len(self.tg.calls)

    async def _load_stations(self, core: Any) -> None:
        if not self.stations:
            return
        path = Path(self.stations)
        if not path.is_file() and not path.is_absolute():
            # The default (data/stations.demo.csv) names the project's file: find it from anywhere.
            shipped = Path(__file__).resolve().parents[1] / path
            path = shipped if shipped.is_file() else path
        if not path.is_file():
            self.say(f"(no stations file at {self.stations}: station search will find nothing)")
            return
        self.stations = str(path)
        try:
            module = importlib.import_module("bot.stations.importer")
        except ImportError:
            return
        try:
            result = await module.import_file(core, Path(self.stations), "wgs84")
            self.say(
                f"(loaded stations from {self.stations}: {getattr(result, 'summary', lambda: result)()})"
            )
        except Exception as exc:  # the sandbox still works without stations
            self.say(f"(could not load {self.stations}: {exc})")

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
        if self.tg is not None:
            await self.tg.stop()

    async def settle(self) -> None:
        await self.tg.idle(timeout=10)
        if self.runtime is not None and self.runtime.core is not None:
            await self.runtime.core.outbox.idle(timeout=10)
        await self.tg.idle(timeout=10)

    # -- showing what the bot did ------------------------------------------------------------

    def _chat_label(self, chat_id: Any) -> str:
        return {USER_ID: "私聊", GROUP_ID: "小哥群", MOD_CHAT_ID: "版主群"}.get(chat_id, str(chat_id))

    def show_new(self) -> None:
        calls = self.tg.calls[self._seen :]
        self._seen = len(self.tg.calls)
        for call in calls:
            if not call.ok:
                if call.method.lower().startswith(("send", "edit")):
                    self.say(f"  [telegram refused {call.method}: {call.error_code}]")
                continue
            self._show_call(call)

    def _show_call(self, call: Any) -> None:
        method = call.method
        params = call.params if isinstance(call.params, dict) else {}
        chat = self._chat_label(_int(params.get("chat_id")))
        lower = method.lower()
        if lower == "answercallbackquery":
            if params.get("text"):
                self.say(f"  💬 {'(alert) ' if params.get('show_alert') else ''}{params['text']}")
            return
        if lower in ("sendmessage", "editmessagetext"):
            head = "✏️ edited" if lower.startswith("edit") else "🤖"
            self.say(f"{head} [{chat}] {_strip(params.get('text', ''))}")
        elif lower == "sendphoto":
            self.say(f"🤖 [{chat}] 🖼 [photo] {_strip(params.get('caption', '') or '')}")
        elif lower == "sendlocation":
            self.say(f"🤖 [{chat}] 📍 location {params.get('latitude')}, {params.get('longitude')}")
        elif lower == "sendvenue":
            self.say(
                f"🤖 [{chat}] 📍 {params.get('title')} — {params.get('address')} ({params.get('latitude')}, {params.get('longitude')})"
            )
        elif lower == "senddocument":
            self.say(f"🤖 [{chat}] 📄 [document]")
        elif lower == "editmessagereplymarkup":
            self.say(f"✏️ buttons changed [{chat}]")
        elif lower == "pinchatmessage":
            self.say(f"📌 [{chat}] pinned a message")
        else:
            return
        self._show_markup(params.get("reply_markup"))

    def _show_markup(self, markup: Any) -> None:
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                return
        if not isinstance(markup, dict):
            return
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        n = 0
        for row in rows:
            cells = []
            for button in row:
                n += 1
                label = button.get("text", "?") if isinstance(button, dict) else str(button)
                extra = (
                    " (shares location)"
                    if isinstance(button, dict) and button.get("request_location")
                    else ""
                )
                if isinstance(button, dict) and button.get("url"):
                    url = button["url"]
                    extra = f" → {url if len(url) <= 60 else url[:57] + '...'}"
                cells.append(f"[{n}] {label}{extra}")
            self.say("    " + "   ".join(cells))

    # -- input ------------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """One line of input. False to quit."""
        line = line.strip()
        if not line:
            return True
        chat = self.chats[self.current]
        try:
            if line in (":quit", ":q", ":exit"):
                return False
            if line == ":help":
                self.say(HELP)
                return True
            if line in (":private", ":group", ":mod"):
                self.current = line[1:]
                self.say(f"(now in {self._chat_label(chat_id_of(self.chats[self.current]))})")
                return True
            if line.startswith(":wait"):
                seconds = float(line.split()[1]) if len(line.split()) > 1 else 1.0
                await asyncio.sleep(seconds)
            elif line.isdigit():
                await self._press(chat, int(line))
            elif line.startswith("/loc"):
                _, lat, lon = line.split()[:3]
                await chat.share_location(float(lat), float(lon))
            elif line.startswith("/venue"):
                parts = line.split(maxsplit=3)
                await chat.send_venue(
                    float(parts[1]), float(parts[2]), parts[3] if len(parts) > 3 else "地点", ""
                )
            elif line.startswith("/photo"):
                caption = line[len("/photo") :].strip() or None
                await chat.send_photo(caption)
            elif line == "/voice":
                await chat.send_voice()
            elif line == "/sticker":
                await chat.send_sticker()
            elif line == "/doc":
                await chat.send_document()
            else:
                # Like a Telegram app: when the bot's newest message asks for a reply (ForceReply),
                # what you type next is sent as that reply (needed in groups under privacy mode).
                recent = [m for m in chat.messages if not m.deleted][-3:]
                asking = [m for m in recent if (m.markup or {}).get("force_reply")]
                await chat.send(line, reply_to=asking[-1] if asking else None)
        except (ValueError, IndexError):
            self.say("(could not read that; type :help)")
            return True
        except AssertionError as exc:
            self.say(f"({exc})")
            return True
        await self.settle()
        self.show_new()
        return True

    async def _press(self, chat: Any, number: int) -> None:
        message = chat.keyboard_message()
        flat = [label for row in message.buttons for label in row]
        if not 1 <= number <= len(flat):
            raise AssertionError(f"no button {number}; buttons: {flat}")
        label = flat[number - 1]
        button = message.button(label)
        if button.get("request_location"):
            self.say("(this button shares your location: type /loc LAT LON, e.g. /loc 30.2741 120.1551)")
            return
        result = await chat.press(label, message=message)
        if hasattr(result, "wait"):
            await result.wait(timeout=10)
        elif isinstance(result, str):
            self.say(f"(opens {result})")


def chat_id_of(chat: Any) -> int:
    return chat.chat_id


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _strip(text: str) -> str:
    import re

    return re.sub(r"</?(b|i|u|s|code|pre|a[^>]*|tg-spoiler|blockquote)>", "", text)


async def run_sandbox(
    config: Config,
    *,
    role: str = "courier",
    lang: str = "zh",
    stations: str = "",
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    logging.getLogger().setLevel(logging.WARNING)  # the transcript is the output; problems still show
    out = stdout or sys.stdout
    inp = stdin or sys.stdin
    sandbox = Sandbox(config, role=role, lang=lang, stations=stations, out=out)
    await sandbox.start()
    sandbox.say(f"xiaoge-bot sandbox: you are a {role} ({lang}). Type /start, or :help for sandbox commands.")
    loop = asyncio.get_running_loop()
    try:
        while True:
            if inp.isatty():
                out.write(f"{sandbox._chat_label(chat_id_of(sandbox.chats[sandbox.current]))}> ")
                out.flush()
            line = await loop.run_in_executor(None, inp.readline)
            if not line:
                break
            if not await sandbox.handle(line):
                break
    finally:
        await sandbox.stop()
    sandbox.say("bye")
    return 0
