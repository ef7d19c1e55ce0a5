"""PTB persistence on the project's SQLite database (no pickle files).

Conversation states, user_data and chat_data are stored as JSON, so what handlers keep there must be
JSON-serialisable (dicts with string keys, lists, numbers, strings). The application flushes after
every update (handlers/__init__.py, last group), so a kill -9 loses no draft.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from bot.core.ptb import ConversationDict, ConversationKey
from storage import ptb_store
from storage.db import Database


def _jsonable(data: Any) -> Any:
    """Round-trip through JSON now, so a value that can't be stored fails loudly at write time."""
    return json.loads(json.dumps(data, ensure_ascii=False))


class SqlitePersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    def __init__(self, db: Database) -> None:
        super().__init__(
            store_data=PersistenceInput(bot_data=False, chat_data=True, user_data=True, callback_data=False),
            update_interval=60,
        )
        self.db = db

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        return defaultdict(dict, await ptb_store.load_data(self.db, "ptb_user_data"))

    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        return defaultdict(dict, await ptb_store.load_data(self.db, "ptb_chat_data"))

    async def get_bot_data(self) -> dict[str, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        return await ptb_store.load_conversations(self.db, name)

    async def update_conversation(self, name: str, key: ConversationKey, new_state: object | None) -> None:
        await ptb_store.save_conversation(self.db, name, key, new_state)

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        await ptb_store.save_data(self.db, "ptb_user_data", user_id, _jsonable(data))

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        await ptb_store.save_data(self.db, "ptb_chat_data", chat_id, _jsonable(data))

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        await ptb_store.drop_data(self.db, "ptb_chat_data", chat_id)

    async def drop_user_data(self, user_id: int) -> None:
        await ptb_store.drop_data(self.db, "ptb_user_data", user_id)

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        return None

    async def flush(self) -> None:
        return None
