"""A fake Telegram Bot API server (aiohttp) with a small world model.

Real PTB `Bot`s talk to it over HTTP (`base_url` / `base_file_url`). Tests and the sandbox
change the world (users write, press buttons, groups add the bot) through `fakeapi.driver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import itertools
import json
import logging
import math
import mimetypes
import random
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from .html import ParseError, check_markdown_v2, parse_html
from .model import (
    ADMIN_RIGHTS,
    ANONYMOUS_ADMIN_ID,
    ApiCall,
    ApiError,
    CallbackRecord,
    ChatState,
    JSONDict,
    Member,
    StoredFile,
    StoredMessage,
    TranscriptEntry,
    UploadedFile,
    UserState,
    bad_request,
)

log = logging.getLogger(__name__)

BOT_FIRST_NAME = "小哥助手"
DEFAULT_TOKEN = "123456789:TEST-fake-token"
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

# Update types Telegram sends when allowed_updates was never given (or given as []).
DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)

_INT_KEYS = {
    "message_id",
    "offset",
    "limit",
    "timeout",
    "user_id",
    "from_chat_id",
    "reply_to_message_id",
    "message_thread_id",
    "cache_time",
    "max_connections",
    "live_period",
    "heading",
    "proximity_alert_radius",
    "until_date",
    "duration",
}
_FLOAT_KEYS = {"latitude", "longitude", "horizontal_accuracy"}
_BOOL_KEYS = {
    "show_alert",
    "disable_notification",
    "protect_content",
    "drop_pending_updates",
    "allow_sending_without_reply",
    "disable_web_page_preview",
    "is_anonymous",
    "only_if_banned",
    "revoke_messages",
    "disable_content_type_detection",
    "has_spoiler",
    "show_caption_above_media",
    "allow_paid_broadcast",
    "can_pin_messages",
}
_JSON_KEYS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "scope",
    "menu_button",
    "link_preview_options",
    "reply_parameters",
    "media",
    "message_ids",
    "permissions",
    "reaction",
    "results",
    "rights",
    "input_message_content",
}
_SEND_METHODS = {
    "sendmessage",
    "sendlocation",
    "sendvenue",
    "sendphoto",
    "senddocument",
    "sendvoice",
    "sendsticker",
    "sendcontact",
    "copymessage",
    "forwardmessage",
}
_TOKEN = re.compile(r"^(\d+):[A-Za-z0-9_-]+$")
_CHAT_ID_INT = re.compile(r"^-?\d+$")

Handler = Callable[[JSONDict], Awaitable[Any]]
_REQUEST: contextvars.ContextVar[web.Request] = contextvars.ContextVar("fake_telegram_request")


class _Disconnected(Exception):
    """The long-polling client went away (e.g. PTB cancelled the request while stopping)."""


def _coerce(key: str, value: Any) -> Any:
    """Turn a form value (always a string) into the typed value Telegram would see."""
    if not isinstance(value, str):
        return value
    if key == "chat_id":
        return int(value) if _CHAT_ID_INT.match(value) else value
    if key in _INT_KEYS:
        with contextlib.suppress(ValueError):
            return int(value)
        return value
    if key in _FLOAT_KEYS:
        with contextlib.suppress(ValueError):
            return float(value)
        return value
    if key in _BOOL_KEYS:
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        return value
    if key in _JSON_KEYS and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _plain(obj: Any) -> Any:
    return copy.deepcopy(obj)


class FakeTelegram:
    """The fake Bot API server plus its world model.

    `await FakeTelegram().start()` (or `async with FakeTelegram() as server`) binds 127.0.0.1 on a
    free port. Point PTB at `base_url` / `base_file_url` with `token` (any `digits:secret` works).
    """

    def __init__(
        self,
        flood_limits: bool = False,
        *,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "xiaoge_test_bot",
        bot_first_name: str = BOT_FIRST_NAME,
        privacy_mode: bool = True,
        clock: Callable[[], float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        m = _TOKEN.match(token)
        self.bot_id = int(m.group(1)) if m else 123456789
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.privacy_mode = privacy_mode
        self.clock = clock or time.time
        self.host = host
        self.port = port
        self.latency = 0.0
        self.latency_jitter = 0.0
        self._random = random.Random(20261204)

        self.users: dict[int, UserState] = {}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.default_menu_button: JSONDict = {"type": "commands"}
        self.calls: list[ApiCall] = []
        self.stats: Counter[str] = Counter()
        self.listeners: list[Callable[[ApiCall], None]] = []  # called after every API call
        self.event_listeners: list[Callable[[int, TranscriptEntry], None]] = []  # every transcript entry

        self.updates: deque[JSONDict] = deque()  # not yet confirmed
        self._next_update_id = 100_000
        self._delivered_upto = 0  # highest update_id handed to the bot
        self._allowed: frozenset[str] = DEFAULT_ALLOWED
        self._poll_generation = 0

        self.webhook: JSONDict | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_error: tuple[int, str] | None = None

        self.flood_enabled = False
        self.global_per_second = 30
        self.group_per_minute = 20
        self._global_sends: deque[float] = deque()
        self._group_sends: dict[int, deque[float]] = {}
        if flood_limits:
            self.set_flood_limits()

        self._faults: list[JSONDict] = []
        self._inflight = 0
        self._last_activity = time.monotonic()
        self._changed = asyncio.Event()
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self._methods: dict[str, Handler] = {
            name.lower(): getattr(self, f"_api_{name}")
            for name in (
                "getMe getUpdates setWebhook deleteWebhook getWebhookInfo sendMessage editMessageText "
                "editMessageReplyMarkup editMessageCaption answerCallbackQuery sendLocation sendVenue "
                "sendPhoto sendDocument sendVoice sendSticker sendContact sendChatAction deleteMessage "
                "deleteMessages pinChatMessage unpinChatMessage unpinAllChatMessages getChat "
                "getChatMember getChatAdministrators getChatMemberCount leaveChat setMyCommands "
                "getMyCommands deleteMyCommands setChatMenuButton getChatMenuButton getFile close "
                "logOut copyMessage forwardMessage setMyDescription setMyShortDescription setMyName "
                "setMessageReaction sendVideo sendAudio sendAnimation sendMediaGroup "
                "editMessageLiveLocation stopMessageLiveLocation banChatMember unbanChatMember "
                "restrictChatMember createChatInviteLink exportChatInviteLink getMyDescription "
                "getMyShortDescription getMyName"
            ).split()
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._stopping = False
        return self

    async def stop(self) -> None:
        self._stopping = True
        self._bump()
        if self._webhook_task:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ configuration

    def set_flood_limits(self, global_per_second: int = 30, group_per_minute: int = 20) -> None:
        """Turn on Telegram's send limits (sliding windows; resets the counters)."""
        self.flood_enabled = True
        self._global_sends.clear()
        self._group_sends.clear()
        self.global_per_second = global_per_second
        self.group_per_minute = group_per_minute

    def disable_flood_limits(self) -> None:
        self.flood_enabled = False

    def set_latency(self, seconds: float, jitter: float = 0.0) -> None:
        """Delay every call by `seconds` (real Telegram is 50-300 ms from a server in China), give or
        take up to `jitter` seconds (uniformly), before it takes effect and is answered."""
        self.latency = seconds
        self.latency_jitter = jitter

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` (optionally to `chat_id`) fail like this."""
        params: JSONDict = {}
        if retry_after is not None:
            params["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            params["migrate_to_chat_id"] = migrate_to_chat_id
        self._faults.append(
            {
                "method": method.lower(),
                "chat_id": chat_id,
                "error": ApiError(error_code, description, params or None),
                "times": times,
            }
        )

    # ------------------------------------------------------------------ world model

    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh",
        is_bot: bool = False,
        started: bool = False,
    ) -> UserState:
        user = UserState(user_id, first_name, last_name, username, language_code, is_bot, started=started)
        self.users[user_id] = user
        if not is_bot and user_id not in self.chats:
            self.chats[user_id] = ChatState(user_id, "private")
        return user

    def add_group(
        self, chat_id: int, title: str, *, type: str = "supergroup", username: str | None = None
    ) -> ChatState:
        if type not in ("group", "supergroup"):
            raise ValueError("type must be 'group' or 'supergroup'")
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        if type == "supergroup" and not str(chat_id).startswith("-100"):
            raise ValueError("supergroup ids start with -100")
        chat = ChatState(chat_id, type, title=title, username=username)
        self.chats[chat_id] = chat
        return chat

    @property
    def bot_user(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def anonymous_admin_user(self) -> JSONDict:
        return {
            "id": ANONYMOUS_ADMIN_ID,
            "is_bot": True,
            "first_name": "Group",
            "username": "GroupAnonymousBot",
        }

    def chat_dict(self, chat: ChatState) -> JSONDict:
        if chat.type == "private":
            user = self.users.get(chat.id)
            data: JSONDict = {"id": chat.id, "type": "private"}
            if user:
                data["first_name"] = user.first_name
                if user.last_name:
                    data["last_name"] = user.last_name
                if user.username:
                    data["username"] = user.username
            return data
        data = {"id": chat.id, "type": chat.type, "title": chat.title}
        if chat.username:
            data["username"] = chat.username
        return data

    def user_dict(self, user_id: int) -> JSONDict:
        if user_id == self.bot_id:
            return self.bot_user
        if user_id == ANONYMOUS_ADMIN_ID:
            return self.anonymous_admin_user()
        return self.users[user_id].to_dict()

    def calls_to(self, method: str, chat_id: int | None = None) -> list[ApiCall]:
        """Recorded calls of `method` (case-insensitive), optionally to one chat."""
        name = method.lower()
        return [
            c
            for c in self.calls
            if c.method.lower() == name and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    def sent_messages(self, chat_id: int | None = None) -> list[JSONDict]:
        """Messages the bot sent (current state), in order, optionally in one chat."""
        chats = [self.chats[chat_id]] if chat_id is not None else list(self.chats.values())
        stored = [m for chat in chats for m in chat.bot_messages]
        stored.sort(key=lambda m: m.seq)
        return [_plain(m.data) for m in stored]

    def transcript(self, chat_id: int) -> list[TranscriptEntry]:
        return list(self.chats[chat_id].transcript)

    def _log(
        self, chat: ChatState, kind: str, message_id: int | None, data: JSONDict, user_id: int | None = None
    ) -> None:
        entry = TranscriptEntry(kind, message_id, _plain(data), time.monotonic(), user_id)
        chat.transcript.append(entry)
        for listener in list(self.event_listeners):
            listener(chat.id, entry)

    def _now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------------ waiting helpers

    def _bump(self) -> None:
        """Wake everyone waiting for a change."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Wait until predicate() is truthy (re-checked on every change); None on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.05))

    def pending_updates(self) -> int:
        """Updates the bot has not fetched yet."""
        return sum(1 for u in self.updates if u["update_id"] > self._delivered_upto)

    def is_idle(self, quiet: float = 0.05) -> bool:
        return (
            self.pending_updates() == 0
            and self._inflight == 0
            and time.monotonic() - self._last_activity >= quiet
        )

    async def idle(self, timeout: float = 5.0, quiet: float = 0.05) -> None:
        """Wait until the bot fetched every update and made no API call for `quiet` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_idle(quiet):
            if loop.time() >= deadline:
                raise AssertionError(
                    f"bot did not settle within {timeout}s: {self.pending_updates()} update(s) not fetched, "
                    f"{self._inflight} call(s) in flight"
                )
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ updates

    def enqueue_update(self, kind: str, payload: JSONDict) -> JSONDict:
        self._next_update_id += 1
        update = {"update_id": self._next_update_id, kind: _plain(payload)}
        self.updates.append(update)
        self._bump()
        return update

    @staticmethod
    def update_kind(update: JSONDict) -> str:
        return next(k for k in update if k != "update_id")

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            while len(self.updates) > -offset:
                self.updates.popleft()
            return
        while self.updates and self.updates[0]["update_id"] < offset:
            self.updates.popleft()

    def _deliverable(self, limit: int) -> list[JSONDict]:
        out: list[JSONDict] = []
        for update in list(self.updates):
            if self.update_kind(update) not in self._allowed:
                self.updates.remove(update)
                self.stats["updates_filtered"] += 1
                continue
            out.append(update)
            if len(out) >= limit:
                break
        return out

    # ------------------------------------------------------------------ HTTP

    async def _read_params(self, request: web.Request) -> JSONDict:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    raw.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        upload = UploadedFile(value.filename, value.content_type, value.file.read())
                        files[key] = upload
                        raw[key] = upload
                    else:
                        raw[key] = value
        params = {key: _coerce(key, value) for key, value in raw.items()}
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
                params[key] = files[value[9:]]
                params.pop(value[9:], None)
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method_name = request.match_info["method"]
        m = _TOKEN.match(token)
        if not m:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        if int(m.group(1)) != self.bot_id:
            self.bot_id = int(m.group(1))
        method = method_name.lower()
        try:
            params = await self._read_params(request)
        except (ValueError, json.JSONDecodeError):
            params = {}
        call = ApiCall(method_name, params, time.monotonic(), time.time())
        self.calls.append(call)
        self.stats["calls"] += 1
        is_poll = method == "getupdates"
        if not is_poll:
            self._inflight += 1
        token_var = _REQUEST.set(request)
        try:
            if self.latency or self.latency_jitter:
                delay = self.latency + self._random.uniform(-self.latency_jitter, self.latency_jitter)
                await asyncio.sleep(max(0.0, delay))
            handler = self._methods.get(method)
            if handler is None:
                self.stats["unknown_method"] += 1
                log.warning("fake Telegram: unknown method %s", method_name)
                raise ApiError(404, "Not Found")
            self._check_faults(method, params)
            result = await handler(params)
            call.ok, call.result = True, result
            body: JSONDict = {"ok": True, "result": result}
            status = 200
        except ApiError as exc:
            call.ok, call.error_code, call.description = False, exc.code, exc.description
            self.stats["errors"] += 1
            self.stats[str(exc.code)] += 1
            body, status = exc.payload(), exc.code
        except _Disconnected:
            call.description = "client disconnected"
            body, status = {"ok": True, "result": []}, 200
        finally:
            _REQUEST.reset(token_var)
            call.duration = time.monotonic() - call.time
            if not is_poll:
                self._inflight -= 1
                self._last_activity = time.monotonic()
            self._bump()
            for listener in list(self.listeners):
                listener(call)
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(
                    body=stored.data, content_type=stored.mime_type or "application/octet-stream"
                )
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    def _check_faults(self, method: str, params: JSONDict) -> None:
        for fault in self._faults:
            if fault["method"] != method:
                continue
            if fault["chat_id"] is not None and params.get("chat_id") != fault["chat_id"]:
                continue
            fault["times"] -= 1
            if fault["times"] <= 0:
                self._faults.remove(fault)
            error: ApiError = fault["error"]
            raise ApiError(error.code, error.description, _plain(error.parameters))

    # ------------------------------------------------------------------ validation helpers

    def _chat(self, chat_id: Any) -> ChatState:
        if isinstance(chat_id, str):
            if chat_id.startswith("@"):
                name = chat_id[1:].lower()
                for chat in self.chats.values():
                    if chat.username and chat.username.lower() == name:
                        return chat
            raise bad_request("chat not found")
        if chat_id is None:
            raise bad_request("chat_id is empty")
        chat = self.chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, chat_id: Any) -> ChatState:
        """The chat the bot wants to write to, or the error Telegram would give."""
        chat = self._chat(chat_id)
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        if chat.type == "private":
            user = self.users[chat.id]
            if user.deactivated:
                raise ApiError(403, "Forbidden: user is deactivated")
            if user.blocked_bot:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not user.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        else:
            self._check_member(chat)
        return chat

    @staticmethod
    def _check_member(chat: ChatState) -> None:
        if chat.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        if chat.bot_status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat.type} chat")

    def _bot_can(self, chat: ChatState, right: str) -> bool:
        if chat.type == "private":
            return True
        return chat.bot_status == "administrator" and bool(chat.bot_rights.get(right))

    def _message(self, chat: ChatState, message_id: Any, what: str) -> StoredMessage:
        stored = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if stored is None or stored.deleted:
            raise bad_request(f"message to {what} not found")
        return stored

    def _format(self, text: Any, parse_mode: Any, entities: Any, *, empty: str) -> tuple[str, list[JSONDict]]:
        if text is None or (isinstance(text, str) and not text.strip()):
            raise bad_request(empty)
        text = str(text)
        mode = (parse_mode or "").lower() if isinstance(parse_mode, str) else ""
        if mode == "html":
            try:
                plain, ents = parse_html(text)
            except ParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        elif mode == "markdownv2":
            try:
                plain, ents = check_markdown_v2(text), []
            except ParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        elif mode == "markdown":
            plain, ents = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", text), []
        elif mode:
            raise bad_request("unsupported parse_mode")
        else:
            plain = text
            ents = list(entities) if isinstance(entities, list) else []
        if not plain.strip():
            raise bad_request(empty)
        return plain, ents

    def _check_markup(self, markup: Any) -> JSONDict | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list):
                raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise bad_request(
                            "BUTTON_TEXT_INVALID"
                            if isinstance(button, dict)
                            else "can't parse inline keyboard button"
                        )
                    data = button.get("callback_data")
                    if data is not None:
                        size = len(str(data).encode("utf-8"))
                        if size == 0 or size > MAX_CALLBACK_DATA:
                            raise bad_request("BUTTON_DATA_INVALID")
                    elif "url" in button:
                        if not str(button["url"]).startswith(("http://", "https://", "tg://")):
                            raise bad_request(
                                f"inline keyboard button URL '{button['url']}' is invalid: Wrong HTTP URL"
                            )
                    elif not any(
                        k in button
                        for k in (
                            "switch_inline_query",
                            "switch_inline_query_current_chat",
                            "web_app",
                            "login_url",
                            "pay",
                            "callback_game",
                            "copy_text",
                            "switch_inline_query_chosen_chat",
                        )
                    ):
                        raise bad_request('can\'t find field "callback_data"')
        elif "keyboard" in markup:
            for row in markup["keyboard"]:
                for button in row:
                    if isinstance(button, dict) and not button.get("text"):
                        raise bad_request("BUTTON_TEXT_INVALID")
        return markup

    def _flood_check(self, chat: ChatState) -> None:
        if not self.flood_enabled:
            return
        now = time.monotonic()
        window = self._global_sends
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.global_per_second:
            self._too_many(window[0] + 1.0 - now)
        group_window: deque[float] | None = None
        if chat.id < 0:
            group_window = self._group_sends.setdefault(chat.id, deque())
            while group_window and group_window[0] <= now - 60.0:
                group_window.popleft()
            if len(group_window) >= self.group_per_minute:
                self._too_many(group_window[0] + 60.0 - now)
        window.append(now)
        if group_window is not None:
            group_window.append(now)

    def _too_many(self, wait: float) -> None:
        retry = max(1, math.ceil(wait))
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    # ------------------------------------------------------------------ message creation

    def _base_message(self, chat: ChatState, from_user: JSONDict | None) -> JSONDict:
        mid = chat.take_message_id()
        data: JSONDict = {"message_id": mid}
        if from_user is not None:
            data["from"] = from_user
        data["chat"] = self.chat_dict(chat)
        data["date"] = self._now()
        return data

    def _reply_target(self, chat: ChatState, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        mid = params.get("reply_to_message_id")
        allow = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            mid = reply.get("message_id")
            allow = allow or bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat.id):
                return None
        if mid is None:
            return None
        stored = chat.messages.get(mid)
        if stored is None or stored.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        target = _plain(stored.data)
        target.pop("reply_to_message", None)
        return target

    def _bot_send(
        self,
        params: JSONDict,
        content: JSONDict,
        *,
        markup: JSONDict | None = None,
        source: str | None = None,
        parse_mode: str | None = None,
        files: Iterable[str] = (),
        chat: ChatState | None = None,
    ) -> JSONDict:
        """Create a bot message (validation done by caller except flood)."""
        chat = chat or self._writable_chat(params.get("chat_id"))
        if chat.type != "private" and markup and "keyboard" in markup:
            asks = [b for row in markup["keyboard"] for b in row if isinstance(b, dict)]
            if any(b.get("request_location") for b in asks):
                raise ApiError(400, "Bad Request: location can be requested in private chats only")
            if any(b.get("request_contact") for b in asks):
                raise ApiError(400, "Bad Request: phone number can be requested in private chats only")
        reply_to = self._reply_target(chat, params)
        self._flood_check(chat)
        data = self._base_message(chat, self.bot_user)
        if reply_to is not None:
            data["reply_to_message"] = reply_to
        data.update(content)
        if markup and "inline_keyboard" in markup:
            data["reply_markup"] = markup
        stored = StoredMessage(
            chat.id,
            data["message_id"],
            data,
            True,
            markup=markup,
            source=source,
            parse_mode=parse_mode,
            files=list(files),
        )
        stored.seq = next(self._ids)
        chat.messages[stored.message_id] = stored
        chat.bot_messages.append(stored)
        self._log(chat, "bot", stored.message_id, data)
        self.stats["sent"] += 1
        return _plain(data)

    def user_message(
        self,
        chat_id: int,
        user_id: int,
        content: JSONDict,
        *,
        sender_chat: JSONDict | None = None,
        deliver: bool | None = None,
    ) -> JSONDict:
        """A human (or GroupAnonymousBot) writes into a chat; emits a `message` update if the bot may see it."""
        chat = self.chats[chat_id]
        if chat.migrated_to is not None:
            raise AssertionError(f"chat {chat_id} was migrated to {chat.migrated_to}")
        data = self._base_message(chat, self.user_dict(user_id))
        if sender_chat is not None:
            data["sender_chat"] = sender_chat
        data.update(_plain(content))
        if chat.type == "private":
            user = self.users[user_id]
            user.started = True
            if user.blocked_bot:
                self.set_blocked(user_id, False)
        elif user_id not in chat.members and user_id not in (ANONYMOUS_ADMIN_ID, self.bot_id):
            chat.members[user_id] = Member(user_id)
        if deliver is None:
            deliver = self._bot_sees(chat, data)
        stored = StoredMessage(chat.id, data["message_id"], data, False, delivered=deliver)
        chat.messages[stored.message_id] = stored
        chat.user_messages.append(stored)
        self._log(
            chat,
            "user" if "text" in data or "caption" in data else "service",
            stored.message_id,
            data,
            user_id,
        )
        if deliver:
            self.enqueue_update("message", data)
        return _plain(data)

    def _bot_sees(self, chat: ChatState, data: JSONDict) -> bool:
        """Telegram's rules for which group messages reach a bot (privacy mode)."""
        if chat.type == "private":
            return True
        if chat.bot_status not in ("member", "administrator"):
            return False
        if not self.privacy_mode or chat.bot_status == "administrator":
            return True
        service = (
            "new_chat_members",
            "left_chat_member",
            "migrate_to_chat_id",
            "migrate_from_chat_id",
            "pinned_message",
            "group_chat_created",
            "supergroup_chat_created",
            "new_chat_title",
        )
        if any(k in data for k in service):
            return True
        reply = data.get("reply_to_message")
        if reply and reply.get("from", {}).get("id") == self.bot_id:
            return True
        text = data.get("text") or ""
        if text.startswith("/"):
            command = text.split()[0]
            if "@" not in command:
                return True
            return command.split("@", 1)[1].lower() == self.bot_username.lower()
        return False

    def store_user_file(
        self, data: bytes, *, file_name: str | None = None, mime_type: str | None = None
    ) -> StoredFile:
        return self._store_file(data, file_name, mime_type)

    def _store_file(self, data: bytes, file_name: str | None, mime_type: str | None) -> StoredFile:
        n = next(self._ids)
        stored = StoredFile(f"FILE{n:06d}{uuid.uuid4().hex[:16]}", f"U{n:06d}", data, file_name, mime_type)
        self.files[stored.file_id] = stored
        return stored

    def _input_file(self, value: Any, kind: str, default_name: str) -> StoredFile:
        if isinstance(value, UploadedFile):
            if not value.data:
                raise bad_request("file must be non-empty")
            name = value.filename or default_name
            mime = value.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(name)[0] or mime
            return self._store_file(value.data, name, mime)
        if isinstance(value, str) and value:
            if value in self.files:
                return self.files[value]
            if value.rsplit("_", 1)[0] in self.files:
                return self.files[value.rsplit("_", 1)[0]]
            if value.startswith(("http://", "https://")):
                return self._store_file(b"", value.rsplit("/", 1)[-1] or default_name, None)
        raise bad_request(
            "wrong file identifier/HTTP URL specified" if value else f"there is no {kind} in the request"
        )

    def _caption(self, params: JSONDict) -> tuple[JSONDict, str | None]:
        caption = params.get("caption")
        if caption is None or caption == "":
            return {}, None
        text, ents = self._format(
            caption,
            params.get("parse_mode"),
            params.get("caption_entities"),
            empty="message caption is empty",
        )
        if len(text) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        content: JSONDict = {"caption": text}
        if ents:
            content["caption_entities"] = ents
        return content, caption

    # ------------------------------------------------------------------ API: bot & updates

    async def _api_getMe(self, p: JSONDict) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_getUpdates(self, p: JSONDict) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        offset = p.get("offset")
        if isinstance(offset, int) and offset != 0:
            self._confirm(offset)
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        limit = p.get("limit") if isinstance(p.get("limit"), int) else 100
        limit = min(max(limit, 1), 100)
        timeout = p.get("timeout") if isinstance(p.get("timeout"), int) else 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0, timeout)
        while True:
            batch = self._deliverable(limit)
            if batch or self._stopping:
                break
            transport = _REQUEST.get(None) and _REQUEST.get().transport
            if transport is None or transport.is_closing():
                raise _Disconnected
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))
        if batch:
            self._delivered_upto = max(self._delivered_upto, batch[-1]["update_id"])
            self._last_activity = time.monotonic()
        return _plain(batch)

    async def _api_setWebhook(self, p: JSONDict) -> bool:
        url = p.get("url") or ""
        if not url:
            return await self._api_deleteWebhook(p)
        if not str(url).startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if p.get("drop_pending_updates"):
            self.updates.clear()
        allowed = p.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed = frozenset(allowed) if allowed else DEFAULT_ALLOWED
        self.webhook = {
            "url": url,
            "secret_token": p.get("secret_token"),
            "max_connections": p.get("max_connections", 40),
        }
        self._poll_generation += 1
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_loop())
        self._bump()
        return True

    async def _api_deleteWebhook(self, p: JSONDict) -> bool:
        self.webhook = None
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None
        if p.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def _api_getWebhookInfo(self, p: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if self._allowed != DEFAULT_ALLOWED:
                info["allowed_updates"] = sorted(self._allowed)
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    async def _webhook_loop(self) -> None:
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while self.webhook is not None and not self._stopping:
                batch = self._deliverable(1)
                if not batch:
                    event = self._changed
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), 1.0)
                    continue
                update = batch[0]
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                self._inflight += 1
                try:
                    self._delivered_upto = max(self._delivered_upto, update["update_id"])
                    async with session.post(self.webhook["url"], json=update, headers=headers) as resp:
                        ok = 200 <= resp.status < 300
                        if not ok:
                            self._webhook_error = (
                                self._now(),
                                f"Wrong response from the webhook: {resp.status}",
                            )
                except Exception as exc:
                    ok = False
                    self._webhook_error = (self._now(), f"Connection failed: {exc}")
                finally:
                    self._inflight -= 1
                    self._last_activity = time.monotonic()
                if ok:
                    with contextlib.suppress(ValueError):
                        self.updates.remove(update)
                    self._bump()
                else:
                    self._delivered_upto = min(self._delivered_upto, update["update_id"] - 1)
                    await asyncio.sleep(0.2)

    async def _api_close(self, p: JSONDict) -> bool:
        return True

    async def _api_logOut(self, p: JSONDict) -> bool:
        return True

    # ------------------------------------------------------------------ API: sending

    async def _api_sendMessage(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        text, ents = self._format(
            p.get("text"), p.get("parse_mode"), p.get("entities"), empty="message text is empty"
        )
        if len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        markup = self._check_markup(p.get("reply_markup"))
        content: JSONDict = {"text": text}
        if ents:
            content["entities"] = ents
        mode = p.get("parse_mode") if isinstance(p.get("parse_mode"), str) else None
        return self._bot_send(p, content, markup=markup, source=p.get("text"), parse_mode=mode, chat=chat)

    async def _api_sendLocation(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        lat, lon = p.get("latitude"), p.get("longitude")
        if (
            not isinstance(lat, int | float)
            or not isinstance(lon, int | float)
            or abs(lat) > 90
            or abs(lon) > 180
        ):
            raise bad_request(
                "wrong latitude/longitude specified" if lat is not None else "latitude is empty"
            )
        location: JSONDict = {"latitude": float(lat), "longitude": float(lon)}
        if p.get("live_period"):
            location["live_period"] = p["live_period"]
        markup = self._check_markup(p.get("reply_markup"))
        return self._bot_send(p, {"location": location}, markup=markup, chat=chat)

    async def _api_sendVenue(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        lat, lon = p.get("latitude"), p.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            raise bad_request("wrong latitude/longitude specified")
        if not p.get("title"):
            raise bad_request("venue title is empty")
        if not p.get("address"):
            raise bad_request("venue address is empty")
        location = {"latitude": float(lat), "longitude": float(lon)}
        venue: JSONDict = {"location": location, "title": p["title"], "address": p["address"]}
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if p.get(key):
                venue[key] = p[key]
        markup = self._check_markup(p.get("reply_markup"))
        return self._bot_send(p, {"venue": venue, "location": location}, markup=markup, chat=chat)

    async def _api_sendPhoto(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        stored = self._input_file(p.get("photo"), "photo", "photo.jpg")
        caption, source = self._caption(p)
        markup = self._check_markup(p.get("reply_markup"))
        content = {"photo": self.photo_sizes(stored), **caption}
        return self._bot_send(
            p,
            content,
            markup=markup,
            source=source,
            parse_mode=p.get("parse_mode"),
            files=[stored.file_id],
            chat=chat,
        )

    def photo_sizes(self, stored: StoredFile) -> list[JSONDict]:
        sizes = []
        for i, side in enumerate((90, 320, 800)):
            fid = stored.file_id if side == 800 else f"{stored.file_id}_{side}"
            sizes.append(
                {
                    "file_id": fid,
                    "file_unique_id": f"{stored.file_unique_id}{i}",
                    "width": side,
                    "height": side * 3 // 4,
                    "file_size": max(1, len(stored.data) * (i + 1) // 3),
                }
            )
        return sizes

    async def _api_sendDocument(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        stored = self._input_file(p.get("document"), "document", "document")
        caption, source = self._caption(p)
        markup = self._check_markup(p.get("reply_markup"))
        doc: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name:
            doc["file_name"] = stored.file_name
        if stored.mime_type:
            doc["mime_type"] = stored.mime_type
        return self._bot_send(
            p,
            {"document": doc, **caption},
            markup=markup,
            source=source,
            parse_mode=p.get("parse_mode"),
            files=[stored.file_id],
            chat=chat,
        )

    async def _api_sendVoice(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        stored = self._input_file(p.get("voice"), "voice", "voice.ogg")
        caption, source = self._caption(p)
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": p.get("duration") or stored.duration or 1,
            "mime_type": "audio/ogg",
        }
        return self._bot_send(
            p,
            {"voice": voice, **caption},
            markup=self._check_markup(p.get("reply_markup")),
            source=source,
            files=[stored.file_id],
            chat=chat,
        )

    async def _api_sendSticker(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        stored = self._input_file(p.get("sticker"), "sticker", "sticker.webp")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return self._bot_send(
            p,
            {"sticker": sticker},
            markup=self._check_markup(p.get("reply_markup")),
            files=[stored.file_id],
            chat=chat,
        )

    def _media(self, kind: str, stored: StoredFile, p: JSONDict) -> JSONDict:
        media: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if kind in ("video", "animation"):
            media.update(
                width=p.get("width") or 640, height=p.get("height") or 480, duration=p.get("duration") or 1
            )
        elif kind == "audio":
            media["duration"] = p.get("duration") or 1
        if kind != "photo" and stored.file_name:
            media["file_name"] = stored.file_name
        if kind != "photo" and stored.mime_type:
            media["mime_type"] = stored.mime_type
        return media

    async def _send_media(self, p: JSONDict, kind: str, default_name: str) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        stored = self._input_file(p.get(kind), kind, default_name)
        caption, source = self._caption(p)
        content = {kind: self._media(kind, stored, p), **caption}
        return self._bot_send(
            p,
            content,
            markup=self._check_markup(p.get("reply_markup")),
            source=source,
            parse_mode=p.get("parse_mode"),
            files=[stored.file_id],
            chat=chat,
        )

    async def _api_sendVideo(self, p: JSONDict) -> JSONDict:
        return await self._send_media(p, "video", "video.mp4")

    async def _api_sendAudio(self, p: JSONDict) -> JSONDict:
        return await self._send_media(p, "audio", "audio.mp3")

    async def _api_sendAnimation(self, p: JSONDict) -> JSONDict:
        return await self._send_media(p, "animation", "animation.mp4")

    async def _api_sendMediaGroup(self, p: JSONDict) -> list[JSONDict]:
        chat = self._writable_chat(p.get("chat_id"))
        items = p.get("media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise bad_request("wrong number of messages in a media group: must be 2-10")
        group_id = str(next(self._ids) * 1_000_003)
        prepared = []
        for item in items:
            kind = item.get("type")
            if kind not in ("photo", "video", "document", "audio"):
                raise bad_request(f"unsupported media type in a media group: {kind}")
            value = item.get("media")
            if isinstance(value, str) and value.startswith("attach://"):
                value = p.get(value[9:])
            stored = self._input_file(value, kind, f"{kind}.bin")
            caption, source = self._caption(item)
            media = self.photo_sizes(stored) if kind == "photo" else self._media(kind, stored, item)
            prepared.append(({kind: media, "media_group_id": group_id, **caption}, stored, source, item))
        return [
            self._bot_send(
                p,
                content,
                source=source,
                parse_mode=item.get("parse_mode"),
                files=[stored.file_id],
                chat=chat,
            )
            for content, stored, source, item in prepared
        ]

    async def _api_editMessageLiveLocation(self, p: JSONDict) -> JSONDict:
        chat, stored = self._editable(p)
        location = stored.data.get("location")
        if not location or not location.get("live_period"):
            raise bad_request("message can't be edited")
        lat, lon = p.get("latitude"), p.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            raise bad_request("wrong latitude/longitude specified")
        new_location = {**location, "latitude": float(lat), "longitude": float(lon)}
        return self._apply_edit(
            chat, stored, {"location": new_location}, self._check_markup(p.get("reply_markup"))
        )

    async def _api_stopMessageLiveLocation(self, p: JSONDict) -> JSONDict:
        chat, stored = self._editable(p)
        location = stored.data.get("location")
        if not location or not location.get("live_period"):
            raise bad_request("message can't be edited")
        stopped = {k: v for k, v in location.items() if k != "live_period"}
        return self._apply_edit(
            chat, stored, {"location": stopped}, self._check_markup(p.get("reply_markup"))
        )

    def _admin_chat(self, p: JSONDict, right: str, error: str) -> ChatState:
        chat = self._chat(p.get("chat_id"))
        if chat.type == "private":
            raise bad_request("method is available for supergroup and channel chats only")
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        self._check_member(chat)
        if not self._bot_can(chat, right):
            raise bad_request(error)
        return chat

    def _target_member(self, chat: ChatState, p: JSONDict) -> int:
        user_id = p.get("user_id")
        if not isinstance(user_id, int) or user_id not in self.users:
            raise bad_request("user not found" if isinstance(user_id, int) else "invalid user_id specified")
        member = chat.members.get(user_id)
        if member and member.status == "creator":
            raise bad_request("can't remove chat owner")
        if member and member.status == "administrator":
            raise bad_request("user is an administrator of the chat")
        return user_id

    async def _api_banChatMember(self, p: JSONDict) -> bool:
        chat = self._admin_chat(
            p, "can_restrict_members", "not enough rights to restrict/unrestrict chat member"
        )
        user_id = self._target_member(chat, p)
        self.set_member_status(chat.id, user_id, "kicked", by=self.bot_id)
        return True

    async def _api_unbanChatMember(self, p: JSONDict) -> bool:
        chat = self._admin_chat(
            p, "can_restrict_members", "not enough rights to restrict/unrestrict chat member"
        )
        user_id = self._target_member(chat, p)
        member = chat.members.get(user_id)
        if member and member.status == "kicked":
            self.set_member_status(chat.id, user_id, "left", by=self.bot_id)
        elif member and member.status == "member" and not p.get("only_if_banned"):
            self.set_member_status(chat.id, user_id, "left", by=self.bot_id)
        return True

    async def _api_restrictChatMember(self, p: JSONDict) -> bool:
        chat = self._admin_chat(
            p, "can_restrict_members", "not enough rights to restrict/unrestrict chat member"
        )
        if chat.type != "supergroup":
            raise bad_request("method is available only for supergroups")
        self._target_member(chat, p)
        self._log(
            chat, "service", None, {"restricted": p.get("user_id"), "permissions": p.get("permissions")}
        )
        return True

    def _invite_link(self, chat: ChatState, p: JSONDict, primary: bool) -> JSONDict:
        link: JSONDict = {
            "invite_link": f"https://t.me/+fake{abs(chat.id)}x{next(self._ids)}",
            "creator": self.bot_user,
            "creates_join_request": bool(p.get("creates_join_request")),
            "is_primary": primary,
            "is_revoked": False,
        }
        for key in ("name", "expire_date", "member_limit"):
            if p.get(key) is not None:
                link[key] = p[key]
        return link

    async def _api_createChatInviteLink(self, p: JSONDict) -> JSONDict:
        chat = self._admin_chat(p, "can_invite_users", "not enough rights to manage chat invite link")
        return self._invite_link(chat, p, False)

    async def _api_exportChatInviteLink(self, p: JSONDict) -> str:
        chat = self._admin_chat(p, "can_invite_users", "not enough rights to manage chat invite link")
        return self._invite_link(chat, p, True)["invite_link"]

    async def _api_getMyDescription(self, p: JSONDict) -> JSONDict:
        return {"description": ""}

    async def _api_getMyShortDescription(self, p: JSONDict) -> JSONDict:
        return {"short_description": ""}

    async def _api_getMyName(self, p: JSONDict) -> JSONDict:
        return {"name": self.bot_first_name}

    async def _api_sendContact(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        if not p.get("phone_number") or not p.get("first_name"):
            raise bad_request("phone number and first name must be non-empty")
        contact = {
            k: p[k] for k in ("phone_number", "first_name", "last_name", "user_id", "vcard") if p.get(k)
        }
        return self._bot_send(
            p, {"contact": contact}, markup=self._check_markup(p.get("reply_markup")), chat=chat
        )

    async def _api_copyMessage(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        source_chat = self._chat(p.get("from_chat_id"))
        original = self._message(source_chat, p.get("message_id"), "copy")
        content = {
            k: _plain(v)
            for k, v in original.data.items()
            if k
            in (
                "text",
                "entities",
                "caption",
                "caption_entities",
                "photo",
                "document",
                "location",
                "venue",
                "voice",
                "sticker",
                "contact",
            )
        }
        if "caption" in p:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption(p)[0])
        sent = self._bot_send(p, content, markup=self._check_markup(p.get("reply_markup")), chat=chat)
        return {"message_id": sent["message_id"]}

    async def _api_forwardMessage(self, p: JSONDict) -> JSONDict:
        chat = self._writable_chat(p.get("chat_id"))
        source_chat = self._chat(p.get("from_chat_id"))
        original = self._message(source_chat, p.get("message_id"), "forward")
        content = {
            k: _plain(v)
            for k, v in original.data.items()
            if k
            not in (
                "message_id",
                "from",
                "chat",
                "date",
                "reply_to_message",
                "reply_markup",
                "sender_chat",
                "edit_date",
            )
        }
        origin_user = original.data.get("from")
        content["forward_origin"] = (
            {"type": "user", "sender_user": origin_user, "date": original.data["date"]}
            if origin_user
            else {"type": "chat", "sender_chat": self.chat_dict(source_chat), "date": original.data["date"]}
        )
        return self._bot_send(p, content, chat=chat)

    async def _api_sendChatAction(self, p: JSONDict) -> bool:
        chat = self._writable_chat(p.get("chat_id"))
        action = p.get("action")
        if not action:
            raise bad_request("action is empty" if action is None else "wrong parameter action in request")
        chat.actions.append(str(action))
        self._log(chat, "action", None, {"action": action})
        return True

    # ------------------------------------------------------------------ API: edits

    def _editable(self, p: JSONDict) -> tuple[ChatState, StoredMessage]:
        if p.get("inline_message_id"):
            raise bad_request("inline messages are not supported by the fake server")
        chat = self._writable_chat(p.get("chat_id"))
        stored = self._message(chat, p.get("message_id"), "edit")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        return chat, stored

    def _apply_edit(
        self,
        chat: ChatState,
        stored: StoredMessage,
        changes: JSONDict,
        markup: JSONDict | None,
        source: str | None = None,
        parse_mode: str | None = None,
    ) -> JSONDict:
        new = _plain(stored.data)
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        new.pop("reply_markup", None)
        if markup and "inline_keyboard" in markup:
            new["reply_markup"] = markup

        def content(data: JSONDict) -> JSONDict:
            return {key: value for key, value in data.items() if key != "edit_date"}

        if content(new) == content(stored.data):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        new["edit_date"] = self._now()
        stored.data = new
        stored.markup = markup
        stored.edits += 1
        if source is not None:
            stored.source = source
            stored.parse_mode = parse_mode
        chat.edits.append((stored.message_id, _plain(new)))
        self._log(chat, "edit", stored.message_id, new)
        return _plain(new)

    async def _api_editMessageText(self, p: JSONDict) -> JSONDict:
        chat, stored = self._editable(p)
        if "text" not in stored.data:
            raise bad_request("there is no text in the message to edit")
        text, ents = self._format(
            p.get("text"), p.get("parse_mode"), p.get("entities"), empty="message text is empty"
        )
        if len(text) > MAX_TEXT:
            raise bad_request("MESSAGE_TOO_LONG")
        markup = self._check_markup(p.get("reply_markup"))
        mode = p.get("parse_mode") if isinstance(p.get("parse_mode"), str) else None
        return self._apply_edit(
            chat, stored, {"text": text, "entities": ents or None}, markup, p.get("text"), mode
        )

    async def _api_editMessageCaption(self, p: JSONDict) -> JSONDict:
        chat, stored = self._editable(p)
        if not any(k in stored.data for k in ("photo", "document", "voice", "video", "audio", "animation")):
            raise bad_request("there is no caption in the message to edit")
        caption, source = self._caption(p)
        markup = self._check_markup(p.get("reply_markup"))
        changes = {"caption": caption.get("caption"), "caption_entities": caption.get("caption_entities")}
        return self._apply_edit(chat, stored, changes, markup, source, p.get("parse_mode"))

    async def _api_editMessageReplyMarkup(self, p: JSONDict) -> JSONDict:
        chat, stored = self._editable(p)
        markup = self._check_markup(p.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        return self._apply_edit(chat, stored, {}, markup)

    async def _api_deleteMessage(self, p: JSONDict) -> bool:
        chat = self._chat(p.get("chat_id"))
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        if chat.is_group:
            self._check_member(chat)
        stored = self._message(chat, p.get("message_id"), "delete")
        if chat.is_group and not stored.from_bot and not self._bot_can(chat, "can_delete_messages"):
            raise bad_request("message can't be deleted")
        stored.deleted = True
        self._log(chat, "delete", stored.message_id, {"message_id": stored.message_id})
        return True

    async def _api_deleteMessages(self, p: JSONDict) -> bool:
        ids = p.get("message_ids") or []
        for mid in ids:
            with contextlib.suppress(ApiError):
                await self._api_deleteMessage({"chat_id": p.get("chat_id"), "message_id": mid})
        return True

    async def _api_setMessageReaction(self, p: JSONDict) -> bool:
        chat = self._writable_chat(p.get("chat_id"))
        self._message(chat, p.get("message_id"), "react")
        return True

    # ------------------------------------------------------------------ API: callbacks

    def new_callback(
        self, chat_id: int, user_id: int, message_id: int | None, data: str | None
    ) -> CallbackRecord:
        """A user pressed an inline button: emit the callback_query update."""
        chat = self.chats[chat_id]
        qid = f"{next(self._ids)}{uuid.uuid4().int % 10**12:012d}"
        record = CallbackRecord(qid, chat_id, user_id, message_id, data, time.monotonic())
        self.callbacks[qid] = record
        query: JSONDict = {
            "id": qid,
            "from": self.user_dict(user_id),
            "chat_instance": str(abs(hash(("ci", chat_id))) % 10**18),
        }
        if message_id is not None:
            query["message"] = _plain(chat.messages[message_id].data)
        if data is not None:
            query["data"] = data
        self._log(chat, "callback", message_id, {"data": data, "id": qid}, user_id)
        self.enqueue_update("callback_query", query)
        return record

    async def _api_answerCallbackQuery(self, p: JSONDict) -> bool:
        record = self.callbacks.get(str(p.get("callback_query_id")))
        if record is None or record.answer is not None:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answer = {k: v for k, v in p.items() if k != "callback_query_id"}
        record.answer.setdefault("show_alert", False)
        chat = self.chats.get(record.chat_id)
        if chat:
            self._log(chat, "answer", record.message_id, record.answer, record.user_id)
        return True

    # ------------------------------------------------------------------ API: pins

    async def _api_pinChatMessage(self, p: JSONDict) -> bool:
        chat = self._writable_chat(p.get("chat_id"))
        if not self._bot_can(chat, "can_pin_messages"):
            raise bad_request("not enough rights to pin a message")
        stored = self._message(chat, p.get("message_id"), "pin")
        if stored.message_id in chat.pinned:
            chat.pinned.remove(stored.message_id)
        chat.pinned.append(stored.message_id)
        self._log(chat, "pin", stored.message_id, {"message_id": stored.message_id})
        if not p.get("disable_notification") or chat.type != "private":
            service = self._base_message(chat, self.bot_user)
            service["pinned_message"] = _plain(stored.data)
            chat.messages[service["message_id"]] = StoredMessage(
                chat.id, service["message_id"], service, True
            )
        return True

    async def _api_unpinChatMessage(self, p: JSONDict) -> bool:
        chat = self._writable_chat(p.get("chat_id"))
        if not self._bot_can(chat, "can_pin_messages"):
            raise bad_request("not enough rights to manage pinned messages in the chat")
        mid = p.get("message_id")
        if mid is None:
            if not chat.pinned:
                raise bad_request("message to unpin not found")
            mid = chat.pinned[-1]
        if mid not in chat.pinned:
            raise bad_request("message to unpin not found")
        chat.pinned.remove(mid)
        self._log(chat, "unpin", mid, {"message_id": mid})
        return True

    async def _api_unpinAllChatMessages(self, p: JSONDict) -> bool:
        chat = self._writable_chat(p.get("chat_id"))
        if not self._bot_can(chat, "can_pin_messages"):
            raise bad_request("not enough rights to manage pinned messages in the chat")
        chat.pinned.clear()
        return True

    # ------------------------------------------------------------------ API: chats & members

    def member_dict(self, chat: ChatState, user_id: int) -> JSONDict:
        if user_id == self.bot_id:
            return self.bot_member_dict(chat.bot_status, chat.bot_rights)
        member = chat.members.get(user_id) or Member(user_id, "left")
        return self._member_json(self.user_dict(user_id), member.status, member.rights, member.custom_title)

    def bot_member_dict(self, status: str, rights: dict[str, bool]) -> JSONDict:
        return self._member_json(self.bot_user, status, rights, None)

    @staticmethod
    def _member_json(user: JSONDict, status: str, rights: dict[str, bool], title: str | None) -> JSONDict:
        data: JSONDict = {"status": status, "user": user}
        if status == "creator":
            data["is_anonymous"] = False
        elif status == "administrator":
            data["can_be_edited"] = False
            data["is_anonymous"] = False
            for right in ADMIN_RIGHTS:
                data[right] = bool(rights.get(right, right in ("can_manage_chat", "can_invite_users")))
        elif status == "kicked":
            data["until_date"] = 0
        if title and status in ("creator", "administrator"):
            data["custom_title"] = title
        return data

    async def _api_getChat(self, p: JSONDict) -> JSONDict:
        chat = self._chat(p.get("chat_id"))
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        if chat.is_group:
            self._check_member(chat)
        data = self.chat_dict(chat)
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        if chat.pinned and chat.pinned[-1] in chat.messages:
            data["pinned_message"] = _plain(chat.messages[chat.pinned[-1]].data)
        return data

    async def _api_getChatMember(self, p: JSONDict) -> JSONDict:
        chat = self._chat(p.get("chat_id"))
        user_id = p.get("user_id")
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        if not isinstance(user_id, int) or (user_id not in self.users and user_id != self.bot_id):
            raise bad_request("user not found" if isinstance(user_id, int) else "invalid user_id specified")
        if chat.type == "private":
            if user_id not in (chat.id, self.bot_id):
                raise bad_request("user not found")
            return self._member_json(self.user_dict(user_id), "member", {}, None)
        self._check_member(chat)
        return self.member_dict(chat, user_id)

    async def _api_getChatAdministrators(self, p: JSONDict) -> list[JSONDict]:
        chat = self._chat(p.get("chat_id"))
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
            )
        self._check_member(chat)
        out = [
            self.member_dict(chat, m.user_id)
            for m in chat.members.values()
            if m.status in ("creator", "administrator")
        ]
        if chat.bot_status == "administrator":
            out.append(self.member_dict(chat, self.bot_id))
        return out

    async def _api_getChatMemberCount(self, p: JSONDict) -> int:
        chat = self._chat(p.get("chat_id"))
        if chat.type == "private":
            return 2
        self._check_member(chat)
        humans = sum(1 for m in chat.members.values() if m.status in ("creator", "administrator", "member"))
        return humans + 1

    async def _api_leaveChat(self, p: JSONDict) -> bool:
        chat = self._chat(p.get("chat_id"))
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        self._check_member(chat)
        old = self.bot_member_dict(chat.bot_status, chat.bot_rights)
        chat.bot_status, chat.bot_rights = "left", {}
        self.enqueue_update(
            "my_chat_member",
            {
                "chat": self.chat_dict(chat),
                "from": self.bot_user,
                "date": self._now(),
                "old_chat_member": old,
                "new_chat_member": self.bot_member_dict("left", {}),
            },
        )
        return True

    # ------------------------------------------------------------------ API: commands, menu, files

    @staticmethod
    def _scope_key(p: JSONDict) -> tuple[str, str]:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")

    async def _api_setMyCommands(self, p: JSONDict) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for cmd in commands:
            name = str(cmd.get("command", "")) if isinstance(cmd, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise bad_request(
                    "BOT_COMMAND_DESCRIPTION_INVALID"
                    if cmd.get("description")
                    else "command description is empty"
                )
        self.commands[self._scope_key(p)] = _plain(commands)
        return True

    async def _api_getMyCommands(self, p: JSONDict) -> list[JSONDict]:
        return _plain(self.commands.get(self._scope_key(p), []))

    async def _api_deleteMyCommands(self, p: JSONDict) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    async def _api_setChatMenuButton(self, p: JSONDict) -> bool:
        button = p.get("menu_button") or {"type": "default"}
        if p.get("chat_id") is not None:
            self._chat(p["chat_id"]).menu_button = button
        else:
            self.default_menu_button = button
        return True

    async def _api_getChatMenuButton(self, p: JSONDict) -> JSONDict:
        if p.get("chat_id") is not None:
            button = self._chat(p["chat_id"]).menu_button
            if button and button.get("type") != "default":
                return button
        button = self.default_menu_button
        return button if button.get("type") != "default" else {"type": "commands"}

    async def _api_setMyDescription(self, p: JSONDict) -> bool:
        return True

    async def _api_setMyShortDescription(self, p: JSONDict) -> bool:
        return True

    async def _api_setMyName(self, p: JSONDict) -> bool:
        return True

    async def _api_getFile(self, p: JSONDict) -> JSONDict:
        stored = self.files.get(str(p.get("file_id")))
        if stored is None:
            base = str(p.get("file_id")).rsplit("_", 1)[0]
            stored = self.files.get(base)
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": p["file_id"],
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------------ world changes (driver side)

    def set_blocked(self, user_id: int, blocked: bool) -> None:
        user = self.users[user_id]
        if user.blocked_bot == blocked:
            return
        user.blocked_bot = blocked
        chat = self.chats[user_id]
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        self._log(chat, "service", None, {"blocked": blocked}, user_id)
        self.enqueue_update(
            "my_chat_member",
            {
                "chat": self.chat_dict(chat),
                "from": user.to_dict(),
                "date": self._now(),
                "old_chat_member": self.bot_member_dict(old, {}),
                "new_chat_member": self.bot_member_dict(new, {}),
            },
        )

    def set_bot_status(self, chat_id: int, status: str, rights: dict[str, bool] | None, by: int) -> None:
        """Change the bot's membership in a group and emit my_chat_member."""
        chat = self.chats[chat_id]
        old = self.bot_member_dict(chat.bot_status, chat.bot_rights)
        chat.bot_status = status
        chat.bot_rights = dict(rights or {}) if status == "administrator" else {}
        new = self.bot_member_dict(status, chat.bot_rights)
        self._log(chat, "service", None, {"bot_status": status, "rights": chat.bot_rights}, by)
        self.enqueue_update(
            "my_chat_member",
            {
                "chat": self.chat_dict(chat),
                "from": self.user_dict(by),
                "date": self._now(),
                "old_chat_member": old,
                "new_chat_member": new,
            },
        )

    def set_member_status(
        self, chat_id: int, user_id: int, status: str, *, by: int, rights: dict[str, bool] | None = None
    ) -> None:
        """Change a human's status in a group; emits chat_member if the bot is an admin there."""
        chat = self.chats[chat_id]
        member = chat.members.get(user_id) or Member(user_id, "left")
        old = self.member_dict(chat, user_id)
        chat.members[user_id] = Member(user_id, status, dict(rights or {}), member.custom_title)
        new = self.member_dict(chat, user_id)
        self._log(chat, "service", None, {"member": user_id, "status": status}, by)
        if chat.bot_status == "administrator":
            self.enqueue_update(
                "chat_member",
                {
                    "chat": self.chat_dict(chat),
                    "from": self.user_dict(by),
                    "date": self._now(),
                    "old_chat_member": old,
                    "new_chat_member": new,
                },
            )

    def migrate(self, chat_id: int, new_id: int, by: int) -> ChatState:
        old = self.chats[chat_id]
        if old.type != "group":
            raise ValueError("only basic groups migrate")
        new = ChatState(
            new_id,
            "supergroup",
            title=old.title,
            bot_status=old.bot_status,
            bot_rights=dict(old.bot_rights),
            members={
                k: Member(m.user_id, m.status, dict(m.rights), m.custom_title) for k, m in old.members.items()
            },
        )
        self.chats[new_id] = new
        self.user_message(chat_id, by, {"migrate_to_chat_id": new_id})
        old.migrated_to = new_id
        self.user_message(new_id, by, {"migrate_from_chat_id": chat_id})
        return new
