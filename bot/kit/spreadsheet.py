"""CSV cells that a spreadsheet app must show, never run: text starting with = + - @ (or a tab or a
carriage return) is a formula to Excel or WPS (`=HYPERLINK(...)`, `@SUM(1+1)`, even `+86 ...`).
Exports prefix such a cell with an apostrophe, which the app hides; imports take it off again, so an
export imports back as it was."""

from __future__ import annotations

from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in _TRIGGERS:
        return "'" + value
    return value


def unescape_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] == "'" and value[1:2] in _TRIGGERS and value[1:2]:
        return value[1:]
    return value
