"""A fake Telegram Bot API server and a driver for tests and the sandbox."""

from .driver import BotMessage, CallbackAnswer, ChatDriver, FakeGroup, FakeUser, TelegramDriver
from .model import ANONYMOUS_ADMIN_ID, ApiCall, ApiError, UploadedFile
from .server import FakeTelegram

__all__ = [
    "ANONYMOUS_ADMIN_ID",
    "ApiCall",
    "ApiError",
    "BotMessage",
    "CallbackAnswer",
    "ChatDriver",
    "FakeGroup",
    "FakeTelegram",
    "FakeUser",
    "TelegramDriver",
    "UploadedFile",
]
