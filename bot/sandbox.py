"""`xiaoge-bot sandbox`: chat with the real bot in a terminal, against the built-in fake Bot API.

The bot runs exactly as in production (same Application, handlers, database code, HTTP), only
Telegram is replaced by fakeapi/. You play a cast of people (two couriers, a moderator, a captain,
an admin, a station keeper), each with a private chat, all in the courier group, the moderator and
the admin also in the moderators' group. `:as NAME` switches person and shows what reached their
chats since they last looked. The database and the chats (fakeapi/world.py) are kept between runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from bot.core.config import Config

GROUP_ID = -1001000000001
MOD_CHAT_ID = -1001000000002


@dataclasses.dataclass(frozen=True)
class Persona:
    key: str
    id: int
    name: str
    username: str
    role: str  # courier | moderator | captain | admin | station_keeper: granted at every start
    words: tuple[str, ...]  # what `:as` accepts besides the name, the username and the number


CAST = (
    Persona("wang", 10001, "小王", "xiaowang", "courier", ("courier", "小哥", "骑手", "wang", "xiaowang")),
    Persona("li", 10002, "小李", "xiaoli", "courier", ("courier2", "li", "xiaoli")),
    Persona("mod", 10003, "陈版主", "mod_chen", "moderator", ("moderator", "mod", "版主", "chen")),
    Persona("captain", 10004, "刘队长", "captain_liu", "captain", ("captain", "队长", "liu")),
    Persona("admin", 10005, "赵管理员", "admin_zhao", "admin", ("admin", "管理员", "zhao")),
    Persona(
        "keeper",
        10006,
        "周站长",
        "keeper_zhou",
        "station_keeper",
        ("station_keeper", "keeper", "station", "站长", "驿站", "zhou"),
    ),
)
ROLE_PERSONA = {"courier": "wang", "moderator": "mod", "captain": "captain", "admin": "admin"}
ROLE_PERSONA["station_keeper"] = "keeper"
MOD_MEMBERS = ("mod", "admin")  # who is in the moderators' group (everyone is in the courier group)
CHAT_LABELS = {"private": "私聊", "group": "小哥群", "mod": "版主群"}

HELP = """\
Sandbox commands (everything else is sent as a message):
  /loc LAT LON            share a location (WGS-84), e.g. /loc 30.2741 120.1551
  /venue LAT LON NAME     send a venue
  /photo [caption]        send a photo        /voice [SECONDS]  a voice note (5 s)
  /sticker                a sticker           /doc              a document
  NUMBER                  press button NUMBER of the newest keyboard in this chat
  N.M                     press button M of message #N (messages with buttons are shown as #N)
  :say TEXT               send TEXT as it is (a number, or text starting with ':' or '/loc')
People (each has a private chat; all are in 小哥群, the moderator and the admin also in 版主群):
  :who                    the cast, their roles and what they have not seen yet
  :as NAME                become someone else: a name (小李), a role (moderator, 版主, captain,
                          队长, admin, 管理员, keeper, 站长, courier = 小王), @username or the :who number;
                          shows what reached their chats since they last looked
  :private :group :mod    your private chat / the courier group / the moderators' group
Other:
  :wait SECONDS           wait (reminders and broadcasts go out in real time)
  :restart                restart the bot (the chats and the database stay)
  :help                   this text            :quit    leave (also Ctrl-D)
The database and the chats are kept between runs (sandbox.sqlite3 and sandbox.world.json beside the
configured database; delete sandbox.sqlite3 to start afresh).
"""

# Method families the transcript shows.
_SENDS = {
    "sendmessage",
    "sendphoto",
    "sendvoice",
    "senddocument",
    "sendlocation",
    "sendvenue",
    "sendsticker",
    "sendvideo",
    "sendaudio",
    "sendanimation",
    "sendcontact",
    "sendmediagroup",
    "copymessage",
    "forwardmessage",
}
_CONTENT = ("text", "caption", "photo", "voice", "document", "location", "venue", "sticker", "contact")
_EDITS = {"editmessagetext", "editmessagecaption", "editmessagereplymarkup"}
_OTHERS = {"pinchatmessage", "deletemessage", "deletemessages", "answercallbackquery"}
# Refusals the bot expects and handles: not worth a line (an edit that changes nothing, a pressed
# button that is too old to answer, Telegram's "slow down" that the outbox waits out).
_EXPECTED = ("message is not modified", "query is too old", "query id is invalid")


@dataclasses.dataclass
class _Event:
    """Something a person may see: an API call of the bot, or a person's message in a group."""

    chat_id: Any
    call: Any = None  # fakeapi ApiCall
    user_id: int | None = None  # who pressed (answerCallbackQuery) or who wrote (a group message)
    data: dict[str, Any] | None = None  # a person's message


class Sandbox:
    def __init__(self, config: Config, *, role: str, lang: str, stations: str, out: TextIO) -> None:
        self.role = role
        self.lang = lang
        self.stations = stations
        self.out = out
        self.base_config = config
        self.config: Config | None = None
        self.tg: Any = None
        self.runtime: Any = None
        self.world_path: Path | None = None
        self.restored = False
        self.persona = self._persona_key(ROLE_PERSONA.get(role, "wang"))
        self.current: dict[str, str] = {p.key: "private" for p in CAST}
        self.log: list[_Event] = []
        self._cursor: dict[str, int] = {p.key: 0 for p in CAST}
        self._hinted = 0
        self._numbers: dict[tuple[int, int], int] = {}
        self._by_number: dict[int, tuple[int, int]] = {}
        self._users: dict[str, Any] = {}
        self._groups: dict[str, Any] = {}

    @staticmethod
    def _persona_key(key: str) -> Persona:
        return next(p for p in CAST if p.key == key)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # -- starting and stopping ----------------------------------------------------------------

    async def start(self) -> None:
        from fakeapi import TelegramDriver, world

        self.tg = await TelegramDriver().start()
        base = self.base_config
        db_path = Path(base.storage.path).with_name("sandbox.sqlite3")
        self.world_path = db_path.with_name("sandbox.world.json")
        if db_path.exists():  # the chats belong to the database: never one without the other
            try:
                self.restored = world.restore(self.tg.server, self.world_path)
            except ValueError as exc:
                self.say(f"(could not restore the chats of the last run: {exc}; starting with empty chats)")
        admin = self._persona_key("admin")
        self.config = dataclasses.replace(
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
            bot=dataclasses.replace(
                base.bot, admins=(*base.bot.admins, admin.id), moderator_chat_id=MOD_CHAT_ID
            ),
            # One person plays everyone: the reporter hears a decision at once (an undo then corrects).
            reports=dataclasses.replace(base.reports, undo_grace_seconds=0),
        )
        users = {
            p.key: self.tg.user(p.id, p.name, username=p.username, language_code=self.lang, started=True)
            for p in CAST
        }
        self.tg.server.listeners.append(self._on_call)
        self.tg.server.event_listeners.append(self._on_entry)
        await self._start_bot()
        await self._reset_people()
        await self._load_stations(self.runtime.core)
        from fakeapi import FakeGroup

        chats = self.tg.server.chats
        for key, chat_id, title, members in (
            ("group", GROUP_ID, "演示小哥群", [p.key for p in CAST]),
            ("mod", MOD_CHAT_ID, "版主群", list(MOD_MEMBERS)),
        ):
            if chat_id in chats and chats[chat_id].bot_status == "administrator":
                group = FakeGroup(self.tg, chat_id)  # kept from the last run
            else:
                group = self.tg.group(chat_id, title, creator=users["admin"])
                await group.add_bot(by=users["admin"], admin=True)
            for member in members:
                group.chat(users[member])
            self._groups[key] = group
        self._users = users
        await self.settle()
        if not self.restored:  # a fresh world: the groups being set up is no news to anyone
            self._cursor = dict.fromkeys(self._cursor, len(self.log))
            self._hinted = len(self.log)

    async def _start_bot(self) -> None:
        from bot.core.runtime import Runtime

        self.runtime = Runtime(self.config, polling=True)
        await self.runtime.start()

    async def _reset_people(self) -> None:
        """The sandbox outlives a run: start from the roles the names say and from `--lang`, not from
        what an earlier run granted or chose with /lang."""
        from bot.community import Community

        community = self.runtime.core.service(Community)
        ids = {p.id for p in CAST}
        for held in await community.grants():
            if held.user_id in ids:
                await community.revoke(held.user_id, held.role, held.area)
        for p in CAST:
            if p.role in ("moderator", "captain", "station_keeper"):
                await community.grant(p.id, p.role, "", None)
            await community.set_language(p.id, self.lang)

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
            self.runtime = None
        if self.tg is not None:
            if self.world_path is not None:
                from fakeapi import world

                try:
                    world.save(self.tg.server, self.world_path)
                except OSError as exc:
                    self.say(f"(could not keep the chats for the next run: {exc})")
            await self.tg.stop()
            self.tg = None

    async def restart_bot(self) -> None:
        await self.settle()
        await self.runtime.stop()
        await self._start_bot()

    async def settle(self) -> None:
        """Wait until the bot took every update, handled it, and the outbox has nothing due."""
        for _ in range(2):
            await self.tg.idle(timeout=10)
            await self._handled()
            if self.runtime is not None and self.runtime.core is not None:
                await self.runtime.core.outbox.idle(timeout=10)
        await self.tg.idle(timeout=10)

    async def _handled(self, timeout: float = 10) -> None:
        app = self.runtime.app if self.runtime is not None else None
        if app is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while app.update_queue.qsize() or type(app).active_updates or self.tg.pending_updates():
            if loop.time() > deadline:
                return  # the transcript shows what came; a slow answer shows with the next line
            await asyncio.sleep(0.01)

    # -- who sees what -------------------------------------------------------------------------

    def _on_call(self, call: Any) -> None:
        method = call.method.lower()
        if call.ok is None or method not in _SENDS | _EDITS | _OTHERS:
            return
        if method == "answercallbackquery":
            record = self.tg.server.callbacks.get(str(call.params.get("callback_query_id")))
            self.log.append(_Event(None, call, user_id=record.user_id if record else None))
            return
        self.log.append(_Event(_int(call.params.get("chat_id")), call))

    def _on_entry(self, chat_id: int, entry: Any) -> None:
        if entry.kind in ("user", "service") and chat_id < 0 and any(k in entry.data for k in _CONTENT):
            self.log.append(_Event(chat_id, user_id=entry.user_id, data=entry.data))

    def chats_of(self, p: Persona) -> dict[int, str]:
        chats = {p.id: "private", GROUP_ID: "group"}
        if p.key in MOD_MEMBERS:
            chats[MOD_CHAT_ID] = "mod"
        return chats

    def _visible(self, event: _Event, p: Persona) -> bool:
        if event.call is not None and event.call.method.lower() == "answercallbackquery":
            return event.user_id == p.id
        if event.data is not None and event.user_id == p.id:
            return False  # what you typed yourself
        return event.chat_id in self.chats_of(p)

    def _news(self, event: _Event) -> bool:
        """Counts as unread: a message, an edit, a pin or a refusal worth a line (not a button's answer)."""
        call = event.call
        if call is None:
            return True
        method = call.method.lower()
        if method == "answercallbackquery":
            return False
        if not call.ok:
            return self._refusal(call) is not None
        return method not in ("deletemessage", "deletemessages")

    def unread(self, p: Persona) -> Counter[str]:
        chats = self.chats_of(p)
        return Counter(
            CHAT_LABELS[chats[e.chat_id]]
            for e in self.log[self._cursor[p.key] :]
            if self._visible(e, p) and self._news(e) and e.chat_id in chats
        )

    # -- showing what the bot did ------------------------------------------------------------

    def show_new(self) -> None:
        """What reached the current person's chats since they last looked, then who else got news."""
        me = self.persona
        for event in self.log[self._cursor[me.key] :]:
            if self._visible(event, me):
                for line in self._render(event, me):
                    self.say(line)
        self._cursor[me.key] = len(self.log)
        self._hint()

    def _hint(self) -> None:
        me = self.persona
        mine = self.chats_of(me)
        news = [e for e in self.log[self._hinted :] if e.chat_id not in mine and self._news(e)]
        self._hinted = len(self.log)
        parts = []
        for p in CAST:
            if p is me:
                continue
            theirs = self.chats_of(p)
            counts = Counter(
                CHAT_LABELS[theirs[e.chat_id]] for e in news if e.chat_id in theirs and self._visible(e, p)
            )
            if counts:
                parts.append(f"{p.name} ({', '.join(f'{label} {n}' for label, n in counts.items())})")
        if parts:
            self.say(f"  📬 new for {' · '.join(parts)}: :as NAME to look")

    def _label(self, chat_id: Any, viewer: Persona) -> str:
        key = self.chats_of(viewer).get(chat_id)
        return CHAT_LABELS[key] if key else str(chat_id)

    def _number(self, chat_id: int, message_id: int, *, assign: bool) -> str:
        number = self._numbers.get((chat_id, message_id))
        if number is None and assign:
            number = len(self._numbers) + 1
            self._numbers[(chat_id, message_id)] = number
            self._by_number[number] = (chat_id, message_id)
        return f" #{number}" if number else ""

    def _render(self, event: _Event, viewer: Persona) -> list[str]:
        label = self._label(event.chat_id, viewer)
        if event.data is not None:
            return [f"👤 [{label}] {self._name(event.user_id)}: {_body(event.data)}"]
        call = event.call
        method = call.method.lower()
        params = call.params if isinstance(call.params, dict) else {}
        if not call.ok:
            refusal = self._refusal(call)
            return [f"  ⚠️ [{label}] {refusal}"] if refusal else []
        if method == "answercallbackquery":
            text = params.get("text")
            return [f"  💬 {'(alert) ' if params.get('show_alert') else ''}{text}"] if text else []
        if method in _SENDS:
            results = call.result if isinstance(call.result, list) else [call.result]
            lines: list[str] = []
            for result in results:
                data = self._message_data(event.chat_id, result)
                if data is None:
                    continue
                markup = _markup(params.get("reply_markup"))
                head = self._number(event.chat_id, data["message_id"], assign=bool(_rows(markup)))
                lines.append(f"🤖{head} [{label}] {_body(data)}")
                lines += _buttons(markup)
            return lines
        if method in _EDITS:
            data = call.result if isinstance(call.result, dict) else {}
            mid = _int(params.get("message_id"))
            markup = _markup(params.get("reply_markup"))
            head = self._number(event.chat_id, mid, assign=bool(_rows(markup)))
            if method == "editmessagereplymarkup":
                lines = [f"✏️ buttons changed{head} [{label}]" + ("" if _rows(markup) else ": none left")]
            else:
                lines = [f"✏️ edited{head} [{label}] {_body(data)}"]
            return lines + _buttons(markup)
        if method == "pinchatmessage":
            pinned = self._stored(event.chat_id, _int(params.get("message_id")))
            what = _body(pinned.data).split("\n", 1)[0][:60] if pinned else "a message"
            return [f"📌 [{label}] pinned: {what}"]
        if method in ("deletemessage", "deletemessages"):
            ids = params.get("message_ids") or [params.get("message_id")]
            numbers = "".join(self._number(event.chat_id, _int(i), assign=False) for i in ids)
            return [f"🗑 [{label}] the bot deleted {'message' + numbers if numbers else 'a message'}"]
        return []

    def _refusal(self, call: Any) -> str | None:
        """Telegram's refusal as one short line, or None when the bot expects it and copes."""
        description = call.description or ""
        if call.error_code == 429 or any(x in description.lower() for x in _EXPECTED):
            return None
        reason = re.sub(r"^(Bad Request|Forbidden): ", "", description)
        method = call.method.lower()
        if method in _SENDS:
            what = "deliver a message"
        elif method in _EDITS:
            what = "update a message"
        elif method == "pinchatmessage":
            what = "pin a message"
        elif method.startswith("delete"):
            what = "delete a message"
        else:
            what = f"do {call.method}"
        return f"Telegram did not let the bot {what} here: {reason}"

    def _message_data(self, chat_id: Any, result: Any) -> dict[str, Any] | None:
        if not isinstance(result, dict) or "message_id" not in result:
            return None
        if "chat" in result:
            return result
        stored = self._stored(chat_id, result["message_id"])  # copyMessage answers only the id
        return stored.data if stored else None

    def _stored(self, chat_id: Any, message_id: Any) -> Any:
        chat = self.tg.server.chats.get(chat_id)
        return chat.messages.get(message_id) if chat else None

    def _name(self, user_id: int | None) -> str:
        return next((p.name for p in CAST if p.id == user_id), str(user_id))

    # -- people ------------------------------------------------------------------------------

    def find_persona(self, words: str) -> Persona | None:
        word = words.strip().lstrip("@").lower()
        for index, p in enumerate(CAST, start=1):
            names = {str(index), str(p.id), p.name.lower(), p.username.lower(), p.key, *p.words}
            if word in names:
                return p
        return None

    async def who(self) -> None:
        authz = self.runtime.core.authz
        self.say(f"The cast (you are {self.persona.name}; :as NAME or number to switch):")
        for index, p in enumerate(CAST, start=1):
            held = [f"{role}" + (f" ({area})" if area else "") for role, area in await authz.roles_of(p.id)]
            chats = "私聊 小哥群" + (" 版主群" if p.key in MOD_MEMBERS else "")
            unread = self.unread(p)
            news = ", ".join(f"{label} {n}" for label, n in unread.items())
            mark = "→" if p is self.persona else " "
            self.say(
                f" {mark} {index}. {p.name} @{p.username} (id {p.id}): {', '.join(held) or 'courier'}"
                f"; chats: {chats}; " + (f"{sum(unread.values())} new ({news})" if unread else "nothing new")
            )

    async def switch(self, words: str) -> None:
        p = self.find_persona(words)
        if p is None:
            self.say(f"(nobody called {words!r}: type :who for the cast)")
            return
        self.persona = p
        chat = self.current[p.key]
        self.say(f"(you are now {p.name}, {p.role}, in {CHAT_LABELS[chat]})")
        if not self.unread(p):
            self.say("(nothing new since you last looked)")
        self.show_new()

    def driver(self, p: Persona | None = None, chat: str | None = None) -> Any:
        p = p or self.persona
        chat = chat or self.current[p.key]
        if chat == "private":
            return self.tg.private(self._users[p.key])
        return self._groups[chat].chat(self._users[p.key])

    def prompt(self) -> str:
        return f"{self.persona.name}·{CHAT_LABELS[self.current[self.persona.key]]}> "

    # -- input ------------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """One line of input. False to quit."""
        line = line.strip()
        if not line:
            return True
        try:
            if line in (":quit", ":q", ":exit"):
                return False
            if line == ":help":
                self.say(HELP)
                return True
            if line == ":who" or line == ":as":
                await self.who()
                return True
            if line.startswith(":as "):
                await self.switch(line[4:])
                return True
            if line in (":private", ":group", ":mod"):
                self._choose_chat(line[1:])
                return True
            chat = self.driver()
            if line.startswith(":wait"):
                seconds = float(line.split()[1]) if len(line.split()) > 1 else 1.0
                await asyncio.sleep(seconds)
            elif line == ":restart":
                self.say("(restarting the bot: the chats and the database stay)")
                await self.restart_bot()
            elif line.startswith(":say "):
                await self._send_text(chat, line[5:].strip())
            elif line.startswith(":"):
                self.say(f"(no sandbox command {line.split()[0]}: type :help)")
                return True
            elif re.fullmatch(r"\d+\.\d+", line):
                number, button = line.split(".")
                await self._press_on(int(number), int(button))
            elif line.isdigit():
                await self._press(chat, chat.keyboard_message(), int(line))
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
            elif line.split()[0] == "/voice":
                parts = line.split()
                await chat.send_voice(int(parts[1]) if len(parts) > 1 else 5)
            elif line == "/sticker":
                await chat.send_sticker()
            elif line == "/doc":
                await chat.send_document()
            else:
                await self._send_text(chat, line)
        except (ValueError, IndexError):
            self.say("(could not read that; type :help)")
            return True
        except AssertionError as exc:
            self.say(f"({exc})")
            return True
        await self.settle()
        self.show_new()
        return True

    def _choose_chat(self, chat: str) -> None:
        p = self.persona
        if chat == "mod" and p.key not in MOD_MEMBERS:
            members = " and ".join(self._persona_key(k).name for k in MOD_MEMBERS)
            self.say(f"({p.name} is not in 版主群; {members} are: :as moderator)")
            return
        self.current[p.key] = chat
        self.say(f"(now in {CHAT_LABELS[chat]})")

    async def _send_text(self, chat: Any, text: str) -> None:
        # Like a Telegram app: when the bot's newest message asks this person for a reply
        # (ForceReply), what they type next is that reply (needed in groups under privacy mode).
        me = self.persona.id
        recent = [m for m in chat.messages if not m.deleted][-3:]
        asking = [
            m
            for m in recent
            if (m.markup or {}).get("force_reply")
            and (m.raw.get("reply_to_message") or {}).get("from", {}).get("id", me) == me
        ]
        await chat.send(text, reply_to=asking[-1] if asking else None)

    async def _press_on(self, number: int, button: int) -> None:
        from fakeapi import BotMessage

        where = self._by_number.get(number)
        if where is None:
            raise AssertionError(
                f"no message #{number}: the numbers are shown as #N next to messages with buttons"
            )
        chat_id, message_id = where
        key = self.chats_of(self.persona).get(chat_id)
        if key is None:
            owner = self._name(chat_id)
            raise AssertionError(f"#{number} is in {owner}'s private chat: :as {owner} first")
        stored = self._stored(chat_id, message_id)
        if stored is None or stored.deleted:
            raise AssertionError(f"#{number} was deleted")
        await self._press(self.driver(chat=key), BotMessage(self.tg.server, stored), button)

    async def _press(self, chat: Any, message: Any, number: int) -> None:
        flat = [b for row in message._rows() for b in row]
        if not 1 <= number <= len(flat):
            labels = [b.get("text", "?") for b in flat]
            raise AssertionError(
                f"no button {number}; buttons: {labels}; to send {number} as text: :say {number}"
            )
        button = flat[number - 1]
        if button.get("request_location"):
            self.say("(this button shares your location: type /loc LAT LON, e.g. /loc 30.2741 120.1551)")
            return
        if message.markup and "inline_keyboard" in message.markup:
            if button.get("url"):
                self.say(f"(opens {button['url']})")
                return
            answer = await chat.press_data(button.get("callback_data", ""), message_id=message.message_id)
            await answer.wait(timeout=10)
            return
        await chat.send(button.get("text", ""))


def chat_id_of(chat: Any) -> int:
    return chat.chat_id


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _markup(markup: Any) -> dict[str, Any]:
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            return {}
    return markup if isinstance(markup, dict) else {}


def _rows(markup: dict[str, Any]) -> list[Any]:
    return markup.get("inline_keyboard") or markup.get("keyboard") or []


def _buttons(markup: dict[str, Any]) -> list[str]:
    lines = []
    n = 0
    for row in _rows(markup):
        cells = []
        for button in row:
            n += 1
            label = button.get("text", "?") if isinstance(button, dict) else str(button)
            extra = (
                " (shares location)" if isinstance(button, dict) and button.get("request_location") else ""
            )
            if isinstance(button, dict) and button.get("url"):
                url = button["url"]
                extra = f" → {url if len(url) <= 60 else url[:57] + '...'}"
            cells.append(f"[{n}] {label}{extra}")
        lines.append("    " + "   ".join(cells))
    return lines


def _body(data: dict[str, Any]) -> str:
    """A message as a line of text: its text, or what it carries and its caption."""
    if data.get("text") is not None:
        return str(data["text"])
    caption = data.get("caption") or ""
    if "voice" in data:
        what = f"🎤 voice note {data['voice'].get('duration', '?')}s"
    elif "photo" in data:
        what = "🖼 photo"
    elif "document" in data:
        doc = data["document"]
        size = doc.get("file_size")
        what = f"📄 document {doc.get('file_name') or ''}" + (f" ({size} bytes)" if size else "")
    elif "venue" in data:
        venue = data["venue"]
        what = f"📍 {venue.get('title')} — {venue.get('address')} ({_where(venue.get('location'))})"
    elif "location" in data:
        what = f"📍 location {_where(data['location'])}"
    elif "sticker" in data:
        what = f"sticker {data['sticker'].get('emoji') or ''}".strip()
    elif "contact" in data:
        what = f"📇 contact {data['contact'].get('phone_number')}"
    else:
        kind = next((k for k in ("video", "audio", "animation") if k in data), "message")
        what = f"[{kind}]"
    return f"{what} {caption}".strip()


def _where(location: Any) -> str:
    location = location if isinstance(location, dict) else {}
    lat, lon = location.get("latitude"), location.get("longitude")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        return f"{round(lat, 5)}, {round(lon, 5)}"
    return f"{lat}, {lon}"


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
    try:
        await sandbox.start()
        p = sandbox.persona
        sandbox.say(
            f"xiaoge-bot sandbox: you are {p.name} ({p.role}, {lang}). Type /start, or :help for sandbox"
            " commands (:who lists the people you can play, :as NAME becomes one of them)."
        )
        if sandbox.restored:
            sandbox.say("(the chats of the last run are kept: the bot may still edit its earlier messages)")
        sandbox.show_new()
        loop = asyncio.get_running_loop()
        while True:
            if inp.isatty():
                out.write(sandbox.prompt())
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
