"""The fake server's world model: users, chats, messages, files, recorded calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]

ANONYMOUS_ADMIN_ID = 1087968824

ADMIN_RIGHTS: tuple[str, ...] = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_pin_messages",
    "can_manage_topics",
)


class ApiError(Exception):
    """An error answer: `{"ok": false, "error_code": code, "description": ...}`."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str, parameters: JSONDict | None = None) -> ApiError:
    return ApiError(400, f"Bad Request: {text}", parameters)


@dataclass
class UploadedFile:
    """A multipart file part as the bot uploaded it."""

    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None
    duration: int | None = None  # a voice note's seconds: kept when the bot sends it on by file_id

    @property
    def file_path(self) -> str:
        return f"files/{self.file_unique_id}/{self.file_name or 'file'}"


@dataclass
class ApiCall:
    """One request the bot made: `time` is monotonic, `wall` is epoch seconds."""

    method: str
    params: JSONDict
    time: float
    wall: float
    ok: bool | None = None
    error_code: int | None = None
    description: str | None = None
    result: Any = None
    duration: float = 0.0

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


@dataclass
class UserState:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh"
    is_bot: bool = False
    blocked_bot: bool = False
    started: bool = False
    deactivated: bool = False

    def to_dict(self) -> JSONDict:
        data: JSONDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Member:
    """A member of a group: status creator/administrator/member/left/kicked."""

    user_id: int
    status: str = "member"
    rights: dict[str, bool] = field(default_factory=dict)
    custom_title: str | None = None


@dataclass
class StoredMessage:
    chat_id: int
    message_id: int
    data: JSONDict
    from_bot: bool
    markup: JSONDict | None = None  # the reply_markup as sent, any kind (Telegram returns inline only)
    source: str | None = None  # raw text/caption as sent (HTML or Markdown source)
    parse_mode: str | None = None
    deleted: bool = False
    delivered: bool = True  # user messages: whether the bot got an update
    files: list[str] = field(default_factory=list)
    edits: int = 0
    seq: int = 0

    @property
    def text(self) -> str | None:
        return self.data.get("text", self.data.get("caption"))


@dataclass
class TranscriptEntry:
    """One thing that happened in a chat, in order (for the sandbox)."""

    kind: str  # user | bot | edit | delete | service | callback | answer | action | pin | unpin
    message_id: int | None
    data: JSONDict
    time: float
    user_id: int | None = None


@dataclass
class ChatState:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    username: str | None = None
    bot_status: str = "left"  # member | administrator | left | kicked (groups only)
    bot_rights: dict[str, bool] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    migrated_to: int | None = None
    next_message_id: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    bot_messages: list[StoredMessage] = field(default_factory=list)
    user_messages: list[StoredMessage] = field(default_factory=list)
    edits: list[tuple[int, JSONDict]] = field(default_factory=list)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    pinned: list[int] = field(default_factory=list)
    menu_button: JSONDict | None = None
    actions: list[str] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def take_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


@dataclass
class CallbackRecord:
    id: str
    chat_id: int
    user_id: int
    message_id: int | None
    data: str | None
    time: float
    answer: JSONDict | None = None
