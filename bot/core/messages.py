"""Building outbox rows for messages to one person (notices, reminders) and inline keyboards.

Payloads follow DEVELOPERS.md: `{"method": ..., "params": {...}}`; the worker adds `chat_id`.
Keyboards are plain Bot API JSON, so they can be stored in an outbox row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from storage.outbox import NewMessage

if TYPE_CHECKING:
    pass

Button = tuple[str, str]  # (text, callback_data or an https:// link)


def keyboard(rows: Sequence[Sequence[Button]]) -> dict[str, Any]:
    """An inline keyboard; every callback_data must fit Telegram's 64 bytes. A button whose data is
    an https:// address is a link button (e.g. a map)."""
    for row in rows:
        for _, data in row:
            if not is_link(data) and not 1 <= len(data.encode()) <= 64:
                raise ValueError(f"callback_data must be 1-64 bytes: {data!r}")
    return {
        "inline_keyboard": [
            [{"text": text, "url" if is_link(data) else "callback_data": data} for text, data in row]
            for row in rows
        ]
    }


def is_link(data: str) -> bool:
    return data.startswith("https://")


def send_payload(text: str, markup: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"text": text}
    if markup:
        params["reply_markup"] = markup
    return {"method": "sendMessage", "params": params}


def edit_payload(message_id: int, text: str, markup: dict[str, Any] | None = None) -> dict[str, Any]:
    """Edit a message's text; without markup its inline keyboard is removed."""
    params: dict[str, Any] = {"message_id": message_id, "text": text}
    if markup:
        params["reply_markup"] = markup
    return {"method": "editMessageText", "params": params}


def notice(
    *,
    kind: str,
    dedup_key: str,
    user_id: int,
    text: str,
    now: dt.datetime,
    markup: dict[str, Any] | None = None,
    expires_at: dt.datetime | None = None,
) -> NewMessage:
    """A message to one chat (a person's private chat, or a moderators' chat), sent as soon as
    possible (priority 0)."""
    return NewMessage(
        kind=kind,
        dedup_key=dedup_key,
        chat_id=user_id,
        payload=send_payload(text, markup),
        due_at=now,
        priority=0,
        expires_at=expires_at,
    )
