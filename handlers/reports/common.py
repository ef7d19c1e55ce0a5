"""Helpers several of the reports handlers share: the service, refusals, keyboards, parsing callback data."""

from __future__ import annotations

import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.core.app import XContext
from bot.reports.service import Refusal, ReportService

# Ids in callback data and deep links: ASCII digits only (str.isdigit() also takes '²', which int()
# refuses) and short enough for SQLite's 64-bit integers.
_ID = re.compile(r"[0-9]{1,15}")
_CHAT_ID = re.compile(r"-?[0-9]{1,15}")


def _service(context: XContext) -> ReportService:
    return context.core.service(ReportService)


def _parse_id(text: str) -> int | None:
    """A row id from callback data or a deep link, or None (forged, non-ASCII, too large)."""
    return int(text) if _ID.fullmatch(text) else None


def _parse_chat_id(text: str) -> int | None:
    return int(text) if _CHAT_ID.fullmatch(text) else None


def _refusal(context: XContext, refusal: Refusal) -> str:
    return refusal.text(context.core, context.lang)


def _markup(data: dict[str, Any] | None) -> InlineKeyboardMarkup:
    rows = (data or {}).get("inline_keyboard", [])
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows]
    )


def _inline(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def _stale(update: Update, context: XContext) -> None:
    """A button of a finished or foreign flow, or forged data: nothing changes."""
    if update.callback_query is not None:
        await update.callback_query.answer(context.t("error.stale_button"), show_alert=True)


def _parse(data: str | None, parts: int) -> list[str] | None:
    pieces = (data or "").split(":")
    return pieces if len(pieces) == parts else None
