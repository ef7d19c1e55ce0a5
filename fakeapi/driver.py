"""A pleasant driver for tests and the sandbox: users write, press buttons, groups change.

async with TelegramDriver() as tg:               # starts a FakeTelegram
    alice = tg.user(1001, "Alice")
    chat = tg.private(alice)
    await chat.send("/start")
    msg = await chat.expect_message("欢迎")
    answer = await chat.press("站点")
    await answer                                 # waits for answerCallbackQuery
"""

from __future__ import annotations

import copy
import itertools
import mimetypes
from collections.abc import Generator
from typing import Any

from .model import ADMIN_RIGHTS, ANONYMOUS_ADMIN_ID, ApiCall, CallbackRecord, JSONDict, Member, StoredMessage
from .server import FakeTelegram

# A tiny valid JPEG (1x1) so photo bytes look like a photo.
_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f"
    "141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100"
    "ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000"
    "017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a2526272829"
    "2a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a9293"
    "9495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8"
    "e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9"
)


_KINDS = (
    "photo",
    "venue",
    "location",
    "document",
    "voice",
    "sticker",
    "contact",
    "video",
    "audio",
    "animation",
)


def _label(button: Any) -> str:
    return button if isinstance(button, str) else str(button.get("text", ""))


def _norm(button: Any) -> JSONDict:
    return {"text": button} if isinstance(button, str) else dict(button)


class BotMessage:
    """A message the bot sent, as the user sees it (a snapshot)."""

    def __init__(self, server: FakeTelegram, stored: StoredMessage, data: JSONDict | None = None) -> None:
        self._server = server
        self.stored = stored
        self.raw: JSONDict = copy.deepcopy(data if data is not None else stored.data)
        self.markup: JSONDict | None = (
            copy.deepcopy(stored.markup) if data is None else self.raw.get("reply_markup")
        )
        self.message_id: int = self.raw["message_id"]
        self.chat_id: int = self.raw["chat"]["id"]
        self.deleted = stored.deleted

    def __repr__(self) -> str:
        return f"<BotMessage {self.message_id} {self.kind} {self.text!r:.80} buttons={self.buttons}>"

    @property
    def text(self) -> str:
        """The text, or the caption of a media message ('' if none)."""
        return self.raw.get("text") or self.raw.get("caption") or ""

    @property
    def html(self) -> str:
        """The source as the bot sent it (HTML with tags when parse_mode was HTML)."""
        return self.stored.source if self.stored.source is not None else self.text

    @property
    def parse_mode(self) -> str | None:
        return self.stored.parse_mode

    @property
    def entities(self) -> list[JSONDict]:
        return self.raw.get("entities") or self.raw.get("caption_entities") or []

    @property
    def kind(self) -> str:
        for key in _KINDS:
            if key in self.raw:
                return key
        return "text"

    @property
    def reply_keyboard(self) -> bool:
        return bool(self.markup and "keyboard" in self.markup)

    @property
    def remove_keyboard(self) -> bool:
        return bool(self.markup and self.markup.get("remove_keyboard"))

    def _rows(self) -> list[list[JSONDict]]:
        if not self.markup:
            return []
        rows = self.markup.get("inline_keyboard") or self.markup.get("keyboard") or []
        return [[_norm(b) for b in row] for row in rows]

    @property
    def buttons(self) -> list[list[str]]:
        """Rows of button labels (inline or reply keyboard)."""
        return [[_label(b) for b in row] for row in self._rows()]

    @property
    def labels(self) -> list[str]:
        return [label for row in self.buttons for label in row]

    @property
    def inline(self) -> list[tuple[str, str | None]]:
        """Inline buttons as (label, callback_data or url)."""
        if not self.markup or "inline_keyboard" not in self.markup:
            return []
        return [(_label(b), b.get("callback_data", b.get("url"))) for row in self._rows() for b in row]

    def button(self, label: str) -> JSONDict:
        """The button with this label (exact, or a unique substring); AssertionError if none."""
        return find_button(self, label)

    @property
    def location(self) -> tuple[float, float] | None:
        loc = self.raw.get("location")
        return (loc["latitude"], loc["longitude"]) if loc else None

    @property
    def venue(self) -> JSONDict | None:
        return self.raw.get("venue")

    def _file(self) -> Any:
        if not self.stored.files:
            return None
        return self._server.files.get(self.stored.files[0])

    @property
    def document(self) -> bytes | None:
        """Bytes of the uploaded document/photo (None for text messages)."""
        stored = self._file()
        return stored.data if stored else None

    @property
    def file_name(self) -> str | None:
        doc = self.raw.get("document")
        return doc.get("file_name") if doc else None

    @property
    def reply_to_message_id(self) -> int | None:
        reply = self.raw.get("reply_to_message")
        return reply["message_id"] if reply else None


def find_button(message: BotMessage, label: str) -> JSONDict:
    buttons = [b for row in message._rows() for b in row]
    exact = [b for b in buttons if _label(b) == label]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [b for b in buttons if label in _label(b)]
    if len(partial) == 1:
        return partial[0]
    available = [_label(b) for b in buttons]
    problem = "is ambiguous" if partial else "not found"
    raise AssertionError(
        f"button {label!r} {problem} on bot message {message.message_id} ({message.text[:80]!r}); "
        f"available buttons: {available}"
    )


class CallbackAnswer:
    """The pending answer to a button press. `await answer` waits for answerCallbackQuery."""

    def __init__(self, server: FakeTelegram, record: CallbackRecord, timeout: float = 5.0) -> None:
        self._server = server
        self.record = record
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<CallbackAnswer {self.record.data!r} answer={self.record.answer}>"

    @property
    def query_id(self) -> str:
        return self.record.id

    @property
    def data(self) -> str | None:
        return self.record.data

    @property
    def answered(self) -> bool:
        return self.record.answer is not None

    @property
    def params(self) -> JSONDict:
        return dict(self.record.answer or {})

    @property
    def text(self) -> str | None:
        return (self.record.answer or {}).get("text")

    @property
    def show_alert(self) -> bool:
        return bool((self.record.answer or {}).get("show_alert"))

    @property
    def url(self) -> str | None:
        return (self.record.answer or {}).get("url")

    async def wait(self, timeout: float | None = None) -> CallbackAnswer:
        limit = self.timeout if timeout is None else timeout
        if not await self._server.wait_for(lambda: self.record.answer is not None, limit):
            raise AssertionError(
                f"the bot did not answer the callback query {self.record.data!r} within {limit}s"
                f"{_failures(self._server, self.record.chat_id, self.record.time)}"
            )
        return self

    def __await__(self) -> Generator[Any, None, CallbackAnswer]:
        return self.wait().__await__()


def _failures(server: FakeTelegram, chat_id: int | None, since: float) -> str:
    failed = [
        c
        for c in server.calls
        if c.ok is False
        and c.time >= since
        and (chat_id is None or c.params.get("chat_id") in (chat_id, None))
    ]
    if not failed:
        return ""
    lines = [f"  {c.method} -> {c.error_code} {c.description}" for c in failed[-10:]]
    return "\nfailed API calls meanwhile:\n" + "\n".join(lines)


class ChatDriver:
    """One person speaking in one chat (private or group), with a cursor over the bot's messages."""

    def __init__(
        self, tg: TelegramDriver, chat_id: int, user_id: int, *, sender_chat: JSONDict | None = None
    ) -> None:
        self.tg = tg
        self.server = tg.server
        self.chat_id = chat_id
        self.user_id = user_id
        self.sender_chat = sender_chat
        self.sent: list[JSONDict] = []
        self._cursor = 0
        self._edit_cursor = 0
        self._since = 0.0
        self._last_press: CallbackAnswer | None = None

    def __repr__(self) -> str:
        return f"<ChatDriver chat={self.chat_id} user={self.user_id}>"

    @property
    def state(self) -> Any:
        return self.server.chats[self.chat_id]

    # -------------------------------------------------------------- user actions

    async def _post(self, content: JSONDict) -> JSONDict:
        message = self.server.user_message(self.chat_id, self.user_id, content, sender_chat=self.sender_chat)
        self.sent.append(message)
        return message

    async def send(self, text: str, *, reply_to: Any = None) -> JSONDict:
        """Send a text message; a leading /command gets a bot_command entity."""
        content: JSONDict = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}
            ]
        if reply_to is not None:
            content["reply_to_message"] = self._reply_target(reply_to)
        return await self._post(content)

    async def reply_to(self, message: Any, text: str) -> JSONDict:
        """Reply to a message (a BotMessage, a message dict, or a message_id)."""
        return await self.send(text, reply_to=message)

    def _reply_target(self, message: Any) -> JSONDict:
        if isinstance(message, BotMessage):
            mid = message.message_id
        elif isinstance(message, dict):
            mid = message["message_id"]
        else:
            mid = int(message)
        stored = self.state.messages.get(mid)
        if stored is None:
            raise AssertionError(f"no message {mid} in chat {self.chat_id}")
        target = copy.deepcopy(stored.data)
        target.pop("reply_to_message", None)
        return target

    async def share_location(
        self, latitude: float, longitude: float, *, live_period: int | None = None
    ) -> JSONDict:
        location: JSONDict = {"latitude": latitude, "longitude": longitude}
        if live_period:
            location["live_period"] = live_period
        return await self._post({"location": location})

    async def send_venue(self, latitude: float, longitude: float, title: str, address: str) -> JSONDict:
        location = {"latitude": latitude, "longitude": longitude}
        return await self._post(
            {"location": location, "venue": {"location": location, "title": title, "address": address}}
        )

    async def send_photo(self, caption: str | None = None, *, data: bytes = _JPEG) -> str:
        """Send a photo; returns the file_id of its largest size."""
        stored = self.server.store_user_file(data, file_name="photo.jpg", mime_type="image/jpeg")
        content: JSONDict = {"photo": self.server.photo_sizes(stored)}
        if caption:
            content["caption"] = caption
        await self._post(content)
        return stored.file_id

    async def send_voice(self, duration: int = 5) -> JSONDict:
        stored = self.server.store_user_file(
            b"OggS" + bytes(64), file_name="voice.ogg", mime_type="audio/ogg"
        )
        stored.duration = duration
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(stored.data),
        }
        return await self._post({"voice": voice})

    async def send_document(
        self,
        file_name: str = "a.pdf",
        *,
        data: bytes = b"%PDF-1.4\n%fake\n",
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> JSONDict:
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        stored = self.server.store_user_file(data, file_name=file_name, mime_type=mime)
        doc = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime,
            "file_size": len(data),
        }
        content: JSONDict = {"document": doc}
        if caption:
            content["caption"] = caption
        return await self._post(content)

    async def send_sticker(self, emoji: str = "👍") -> JSONDict:
        stored = self.server.store_user_file(
            b"RIFF" + bytes(32), file_name="sticker.webp", mime_type="image/webp"
        )
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._post({"sticker": sticker})

    async def send_contact(self, phone_number: str = "+8613800000000") -> JSONDict:
        user = self.server.users.get(self.user_id)
        contact: JSONDict = {
            "phone_number": phone_number,
            "first_name": user.first_name if user else "?",
            "user_id": self.user_id,
        }
        return await self._post({"contact": contact})

    # -------------------------------------------------------------- buttons

    def keyboard_message(self) -> BotMessage:
        """The newest bot message in this chat that carries a keyboard."""
        for stored in reversed(self.state.bot_messages):
            if stored.deleted or not stored.markup:
                continue
            if "inline_keyboard" in stored.markup or "keyboard" in stored.markup:
                return BotMessage(self.server, stored)
        raise AssertionError(
            f"no bot message with a keyboard in chat {self.chat_id}; bot messages: "
            f"{[m.text for m in self.messages][-5:]}"
        )

    async def press(
        self,
        label: str,
        *,
        location: tuple[float, float] | None = None,
        message: BotMessage | int | None = None,
    ) -> Any:
        """Press a button on the newest bot message with a keyboard (or on `message`).

        Inline callback button -> CallbackAnswer (await it for the answer); inline url button -> the url;
        reply-keyboard button -> the user message it sends (its text, or `location` if it requests one).
        """
        if message is None:
            target = self.keyboard_message()
        else:
            mid = message.message_id if isinstance(message, BotMessage) else int(message)
            stored = self.state.messages.get(mid)
            if stored is None or not stored.from_bot:
                raise AssertionError(f"no bot message {mid} in chat {self.chat_id}")
            target = BotMessage(self.server, stored)
        button = find_button(target, label)
        if target.markup and "inline_keyboard" in target.markup:
            if "callback_data" in button:
                return self._callback(target.message_id, button["callback_data"])
            if "url" in button:
                return button["url"]
            raise AssertionError(f"button {label!r} is neither a callback nor a url button: {button}")
        if button.get("request_location"):
            if location is None:
                raise AssertionError(f"button {label!r} requests a location: pass location=(lat, lon)")
            return await self.share_location(*location)
        if button.get("request_contact"):
            return await self.send_contact()
        return await self.send(button["text"])

    def _callback(self, message_id: int | None, data: str) -> CallbackAnswer:
        record = self.server.new_callback(self.chat_id, self.user_id, message_id, data)
        self._last_press = CallbackAnswer(self.server, record)
        return self._last_press

    async def press_data(self, data: str, message_id: int | None = None) -> CallbackAnswer:
        """Emit a callback query with arbitrary (possibly forged) data on a bot message."""
        if message_id is None:
            live = [m for m in self.state.bot_messages if not m.deleted]
            if not live:
                raise AssertionError(f"no bot message in chat {self.chat_id} to attach the callback to")
            message_id = live[-1].message_id
        elif message_id not in self.state.messages:
            raise AssertionError(f"no message {message_id} in chat {self.chat_id}")
        return self._callback(message_id, data)

    async def wait_answer(self, timeout: float = 5.0) -> JSONDict:
        """The answerCallbackQuery params (text, show_alert, ...) for the last press."""
        if self._last_press is None:
            raise AssertionError("no button was pressed in this chat")
        await self._last_press.wait(timeout)
        return self._last_press.params

    # -------------------------------------------------------------- expectations

    @property
    def messages(self) -> list[BotMessage]:
        """All bot messages in this chat (current state, oldest first)."""
        return [BotMessage(self.server, m) for m in self.state.bot_messages]

    @property
    def last(self) -> BotMessage | None:
        msgs = self.state.bot_messages
        return BotMessage(self.server, msgs[-1]) if msgs else None

    def skip(self) -> None:
        """Consume everything the bot sent so far (messages and edits)."""
        self._cursor = len(self.state.bot_messages)
        self._edit_cursor = len(self.state.edits)

    def _describe(self, start: int) -> str:
        msgs = self.state.bot_messages

        def line(m: StoredMessage) -> str:
            return f"  #{m.message_id}: {(m.text or '[' + _kind(m) + ']')[:200]!r}"

        body = "\n".join(line(m) for m in msgs[start:]) or "  (nothing)"
        text = f"bot messages in chat {self.chat_id} since the last expect:\n{body}"
        if start > 0:
            earlier = "\n".join(line(m) for m in msgs[max(0, start - 3) : start])
            text += f"\nalready consumed before that:\n{earlier}"
        return text

    async def expect_message(self, contains: str | None = None, *, timeout: float = 5.0) -> BotMessage:
        """The next unconsumed bot message (the first containing `contains`); consumes up to it."""
        started = self.server.calls[-1].time if self.server.calls else 0.0
        start = self._cursor

        def find() -> tuple[int] | None:
            msgs = self.state.bot_messages
            for i in range(self._cursor, len(msgs)):
                if contains is None or contains in (msgs[i].text or ""):
                    return (i,)
            return None

        found = await self.server.wait_for(find, timeout)
        if not found:
            what = f"containing {contains!r}" if contains is not None else ""
            raise AssertionError(
                f"no bot message {what} in chat {self.chat_id} within {timeout}s\n{self._describe(start)}"
                f"{_failures(self.server, self.chat_id, min(started, self._since))}"
            )
        index = found[0]
        self._cursor = index + 1
        self._since = self.server.calls[-1].time if self.server.calls else 0.0
        return BotMessage(self.server, self.state.bot_messages[index])

    async def expect_edit(
        self, contains: str | None = None, *, message_id: int | None = None, timeout: float = 5.0
    ) -> BotMessage:
        """The next unconsumed edit of a bot message (optionally of `message_id` / containing text)."""

        def find() -> tuple[int] | None:
            edits = self.state.edits
            for i in range(self._edit_cursor, len(edits)):
                mid, data = edits[i]
                text = data.get("text") or data.get("caption") or ""
                if (message_id is None or mid == message_id) and (contains is None or contains in text):
                    return (i,)
            return None

        found = await self.server.wait_for(find, timeout)
        if not found:
            edits = [
                (mid, (d.get("text") or d.get("caption") or "")[:120])
                for mid, d in self.state.edits[self._edit_cursor :]
            ]
            raise AssertionError(
                f"no edit (message_id={message_id}, contains={contains!r}) in chat {self.chat_id} within {timeout}s; "
                f"edits seen: {edits}{_failures(self.server, self.chat_id, self._since)}"
            )
        index = found[0]
        self._edit_cursor = index + 1
        mid, data = self.state.edits[index]
        return BotMessage(self.server, self.state.messages[mid], data)

    async def expect_no_message(self, within: float = 0.3) -> None:
        """Assert no unconsumed bot message is in this chat or arrives within `within` seconds."""

        def arrived() -> bool:
            return len(self.state.bot_messages) > self._cursor

        if await self.server.wait_for(arrived, within):
            raise AssertionError(
                f"unexpected bot message in chat {self.chat_id}:\n{self._describe(self._cursor)}"
            )

    @property
    def transcript(self) -> list[Any]:
        return self.server.transcript(self.chat_id)


def _kind(stored: StoredMessage) -> str:
    for key in (*_KINDS, "pinned_message"):
        if key in stored.data:
            return key
    return "?"


class FakeUser:
    """A human Telegram user."""

    def __init__(self, tg: TelegramDriver, user_id: int) -> None:
        self.tg = tg
        self.id = user_id

    def __repr__(self) -> str:
        return f"<FakeUser {self.id} {self.first_name}>"

    @property
    def state(self) -> Any:
        return self.tg.server.users[self.id]

    @property
    def first_name(self) -> str:
        return self.state.first_name

    @property
    def username(self) -> str | None:
        return self.state.username

    @property
    def dict(self) -> JSONDict:
        return self.state.to_dict()

    @property
    def blocked_bot(self) -> bool:
        return self.state.blocked_bot

    async def block_bot(self) -> None:
        """The user blocks the bot (my_chat_member kicked; sends to them get 403)."""
        self.tg.server.set_blocked(self.id, True)

    async def unblock_bot(self) -> None:
        self.tg.server.set_blocked(self.id, False)

    async def deactivate(self) -> None:
        """The account is deleted (sends get 403 user is deactivated)."""
        self.state.deactivated = True


class FakeGroup:
    """A group or supergroup."""

    def __init__(self, tg: TelegramDriver, chat_id: int) -> None:
        self.tg = tg
        self.server = tg.server
        self.id = chat_id
        self._chats: dict[int, ChatDriver] = {}

    def __repr__(self) -> str:
        return f"<FakeGroup {self.id} {self.title!r}>"

    @property
    def state(self) -> Any:
        return self.server.chats[self.id]

    @property
    def title(self) -> str:
        return self.state.title

    @property
    def type(self) -> str:
        return self.state.type

    @property
    def bot_status(self) -> str:
        return self.state.bot_status

    @property
    def dict(self) -> JSONDict:
        return self.server.chat_dict(self.state)

    def chat(self, user: FakeUser) -> ChatDriver:
        """That user speaking in this group (one driver per user, with its own cursor)."""
        if user.id not in self._chats:
            if user.id not in self.state.members:
                self.state.members[user.id] = Member(user.id)
            self._chats[user.id] = ChatDriver(self.tg, self.id, user.id)
        return self._chats[user.id]

    def anonymous_admin(self) -> ChatDriver:
        """An anonymous admin speaking: from = GroupAnonymousBot, sender_chat = this group."""
        if ANONYMOUS_ADMIN_ID not in self._chats:
            self._chats[ANONYMOUS_ADMIN_ID] = ChatDriver(
                self.tg, self.id, ANONYMOUS_ADMIN_ID, sender_chat=self.dict
            )
        return self._chats[ANONYMOUS_ADMIN_ID]

    def _ensure_member(self, user: FakeUser) -> None:
        self.chat(user)

    async def add_bot(
        self, by: FakeUser, admin: bool = False, *, can_pin: bool = True, can_delete: bool = True
    ) -> None:
        """`by` adds the bot: my_chat_member left -> member/administrator, then a new_chat_members message."""
        self._ensure_member(by)
        rights = self._rights(can_pin, can_delete) if admin else None
        self.server.set_bot_status(self.id, "administrator" if admin else "member", rights, by.id)
        self.server.user_message(self.id, by.id, {"new_chat_members": [self.server.bot_user]})

    async def remove_bot(self, by: FakeUser, *, kicked: bool = True) -> None:
        """`by` removes the bot: my_chat_member -> kicked (or left); later sends get 403."""
        self._ensure_member(by)
        self.server.user_message(self.id, by.id, {"left_chat_member": self.server.bot_user}, deliver=False)
        self.server.set_bot_status(self.id, "kicked" if kicked else "left", None, by.id)

    async def promote_bot(self, by: FakeUser, can_pin: bool = True, *, can_delete: bool = True) -> None:
        self._ensure_member(by)
        self.server.set_bot_status(self.id, "administrator", self._rights(can_pin, can_delete), by.id)

    async def demote_bot(self, by: FakeUser) -> None:
        self._ensure_member(by)
        self.server.set_bot_status(self.id, "member", None, by.id)

    @staticmethod
    def _rights(can_pin: bool, can_delete: bool) -> dict[str, bool]:
        rights = dict.fromkeys(ADMIN_RIGHTS, False)
        rights.update(
            can_manage_chat=True,
            can_invite_users=True,
            can_restrict_members=True,
            can_pin_messages=can_pin,
            can_delete_messages=can_delete,
        )
        return rights

    async def set_admin(
        self, user: FakeUser, is_admin: bool = True, *, by: FakeUser | None = None, creator: bool = False
    ) -> None:
        """Promote/demote a human (chat_member update if the bot is an admin and asked for chat_member)."""
        self._ensure_member(user)
        status = "creator" if creator else ("administrator" if is_admin else "member")
        rights = FakeGroup._rights(True, True) if is_admin else None
        self.server.set_member_status(self.id, user.id, status, by=(by or user).id, rights=rights)

    async def add_member(self, user: FakeUser, *, by: FakeUser | None = None) -> JSONDict:
        """A user joins (or is added): chat_member update and a new_chat_members message."""
        actor = by or user
        self.server.set_member_status(self.id, user.id, "member", by=actor.id)
        return self.server.user_message(self.id, actor.id, {"new_chat_members": [user.dict]})

    async def remove_member(self, user: FakeUser, *, by: FakeUser | None = None) -> JSONDict:
        actor = by or user
        message = self.server.user_message(self.id, actor.id, {"left_chat_member": user.dict})
        self.server.set_member_status(self.id, user.id, "left" if actor is user else "kicked", by=actor.id)
        return message

    async def migrate_to_supergroup(self, new_id: int, *, by: FakeUser | None = None) -> FakeGroup:
        """Upgrade a basic group; the old id answers 400 with migrate_to_chat_id from now on."""
        actor = by or next(
            (
                self.tg._user(m.user_id)
                for m in self.state.members.values()
                if m.status in ("creator", "administrator")
            ),
            None,
        )
        if actor is None:
            raise AssertionError("migrate_to_supergroup needs by=<an admin>")
        self.server.migrate(self.id, new_id, actor.id)
        return FakeGroup(self.tg, new_id)


class TelegramDriver:
    """The world, from the users' side. Owns (or wraps) a FakeTelegram server."""

    def __init__(self, server: FakeTelegram | None = None, **server_kwargs: Any) -> None:
        self.server = server or FakeTelegram(**server_kwargs)
        self._owns = server is None
        self._privates: dict[int, ChatDriver] = {}
        self._ids = itertools.count(1)

    async def start(self) -> TelegramDriver:
        if self.server._runner is None:
            await self.server.start()
        return self

    async def stop(self) -> None:
        if self._owns:
            await self.server.stop()

    async def __aenter__(self) -> TelegramDriver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # passthroughs
    @property
    def token(self) -> str:
        return self.server.token

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def base_file_url(self) -> str:
        return self.server.base_file_url

    @property
    def bot_id(self) -> int:
        return self.server.bot_id

    @property
    def calls(self) -> list[ApiCall]:
        return self.server.calls

    def calls_to(self, method: str, chat_id: int | None = None) -> list[ApiCall]:
        return self.server.calls_to(method, chat_id)

    def sent_messages(self, chat_id: int | None = None) -> list[JSONDict]:
        return self.server.sent_messages(chat_id)

    def pending_updates(self) -> int:
        return self.server.pending_updates()

    async def idle(self, timeout: float = 5.0, quiet: float = 0.05) -> None:
        await self.server.idle(timeout, quiet)

    # world
    def user(
        self,
        id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh",
        started: bool = False,
    ) -> FakeUser:
        """Create a user. `started=True`: the user already pressed Start (the bot may message them)."""
        self.server.add_user(
            id,
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            started=started,
        )
        return FakeUser(self, id)

    def _user(self, user_id: int) -> FakeUser:
        return FakeUser(self, user_id)

    def private(self, user: FakeUser) -> ChatDriver:
        """The user's private chat with the bot (one driver per user)."""
        if user.id not in self._privates:
            self._privates[user.id] = ChatDriver(self, user.id, user.id)
        return self._privates[user.id]

    def group(
        self,
        chat_id: int,
        title: str,
        *,
        type: str = "supergroup",
        creator: FakeUser | None = None,
        username: str | None = None,
    ) -> FakeGroup:
        """Create a group (the bot is not a member until `add_bot`)."""
        self.server.add_group(chat_id, title, type=type, username=username)
        group = FakeGroup(self, chat_id)
        if creator is not None:
            self.server.chats[chat_id].members[creator.id] = Member(creator.id, "creator")
        return group
