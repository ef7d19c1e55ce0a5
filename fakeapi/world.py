"""Keep the fake world (users, chats with their messages, files) in a JSON file between runs.

The sandbox's database outlives a run; Telegram's chats do too. Without this, a restarted sandbox
would start with empty chats while the bot still holds the message ids of cards, announcements and
progress reports it posted before, and its edits would fail (or land on an unrelated message that
got the same id). Calls, callbacks, transcripts and pending updates are not kept.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

from .model import ChatState, Member, StoredFile, StoredMessage, UserState
from .server import FakeTelegram

FORMAT = 1
_CHAT_FIELDS = ("id", "type", "title", "username", "bot_status", "bot_rights", "migrated_to")
_CHAT_FIELDS += ("next_message_id", "pinned", "menu_button")


def dump(server: FakeTelegram) -> dict[str, Any]:
    chats = []
    for chat in server.chats.values():
        entry = {name: getattr(chat, name) for name in _CHAT_FIELDS}
        entry["members"] = [dataclasses.asdict(m) for m in chat.members.values()]
        entry["messages"] = [dataclasses.asdict(m) for m in chat.messages.values()]
        chats.append(entry)
    files = [
        {**dataclasses.asdict(f), "data": base64.b64encode(f.data).decode("ascii")}
        for f in server.files.values()
    ]
    return {
        "format": FORMAT,
        "next_id": next(server._ids),
        "users": [dataclasses.asdict(u) for u in server.users.values()],
        "chats": chats,
        "files": files,
    }


def load(server: FakeTelegram, world: dict[str, Any]) -> None:
    """Replace the server's users, chats and files with a dumped world (ValueError if unreadable)."""
    if not isinstance(world, dict) or world.get("format") != FORMAT:
        raise ValueError("not a saved fake world of this version")
    try:
        users = {u["id"]: UserState(**u) for u in world["users"]}
        chats = {}
        for entry in world["chats"]:
            chat = ChatState(**{name: entry[name] for name in _CHAT_FIELDS})
            chat.members = {m["user_id"]: Member(**m) for m in entry["members"]}
            messages = sorted((StoredMessage(**m) for m in entry["messages"]), key=lambda m: m.message_id)
            chat.messages = {m.message_id: m for m in messages}
            chat.bot_messages = [m for m in messages if m.from_bot]
            chat.user_messages = [m for m in messages if not m.from_bot]
            chats[chat.id] = chat
        files = {
            f["file_id"]: StoredFile(**{**f, "data": base64.b64decode(f["data"])}) for f in world["files"]
        }
        next_id = int(world["next_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable saved world: {exc}") from exc
    server.users, server.chats, server.files = users, chats, files
    server._ids = itertools.count(next_id)


def save(server: FakeTelegram, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dump(server), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def restore(server: FakeTelegram, path: Path) -> bool:
    """Load the world saved at `path`; False when there is none (ValueError when it is unreadable)."""
    if not path.is_file():
        return False
    try:
        world = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable saved world: {exc}") from exc
    load(server, world)
    return True
