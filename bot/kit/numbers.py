"""Whole numbers typed by people or carried in button data: ASCII digits only (full-width digits,
as a Chinese keyboard types them, are read as ASCII), at most 18 of them, so the value always fits a
64-bit integer; nothing else (`str.isdigit` and `int()` accept '²', '٣' or '1_000')."""

from __future__ import annotations

import re

_FULLWIDTH = str.maketrans("０１２３４５６７８９＋－", "0123456789+-")
_SIGNED = re.compile(r"[+-]?[0-9]{1,18}")
_UNSIGNED = re.compile(r"[0-9]{1,18}")


def parse_int(text: str | None, *, signed: bool = True) -> int | None:
    """The number in `text` (surrounding spaces allowed), or None."""
    if text is None:
        return None
    candidate = text.strip().translate(_FULLWIDTH)
    if not (_SIGNED if signed else _UNSIGNED).fullmatch(candidate):
        return None
    return int(candidate)


def parse_id(text: str | None) -> int | None:
    """A positive id (a task, a report, a Telegram user): digits only, no sign, not 0."""
    value = parse_int(text, signed=False)
    return value if value else None
