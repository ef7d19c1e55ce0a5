"""bot.kit.timeparse: the one parser of typed times for tasks, broadcasts and meetings (aware UTC out)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.kit.timeparse import InputError, parse_time

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 3, 4, 2, 0, tzinfo=dt.UTC)  # Wednesday 10:00 in Shanghai


def parse_local_time(text: str, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """The parser's answer, None when it refuses (unreadable, past or too far)."""
    try:
        return parse_time(text, now, tz)
    except InputError:
        return None


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("tomorrow 14:30", dt.datetime(2026, 3, 5, 14, 30)),
        ("today 15:00", dt.datetime(2026, 3, 4, 15, 0)),
        ("tomorrow at 14:30", dt.datetime(2026, 3, 5, 14, 30)),
        ("next monday 14:30", dt.datetime(2026, 3, 9, 14, 30)),
        ("3pm", dt.datetime(2026, 3, 4, 15, 0)),
        ("8am", dt.datetime(2026, 3, 5, 8, 0)),
        ("7 dec 2pm", dt.datetime(2026, 12, 7, 14, 0)),
        ("day after tomorrow 9:00", dt.datetime(2026, 3, 6, 9, 0)),
        ("12.7 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("3.20 14:30", dt.datetime(2026, 3, 20, 14, 30)),
        ("中午1点", dt.datetime(2026, 3, 4, 13, 0)),
        ("晚上12点", dt.datetime(2026, 3, 5, 0, 0)),
        ("明天下午3点", dt.datetime(2026, 3, 5, 15, 0)),
    ],
)
def test_parse_local_time(text: str, local: dt.datetime) -> None:
    got = parse_local_time(text, NOW, SH)
    assert got is not None and got.tzinfo is dt.UTC
    assert got == local.replace(tzinfo=SH).astimezone(dt.UTC)


@pytest.mark.parametrize(
    "text",
    ["9999-12-31 23:59", "2030-01-01 10:00", "hello", "14pm", "2025-01-01 10:00", "3.1 14:30", "3-3 9:00"],
)
def test_unreadable_past_or_far_is_none(text: str) -> None:
    assert parse_local_time(text, NOW, SH) is None
