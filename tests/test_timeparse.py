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


@pytest.mark.parametrize(
    ("text", "local"),
    [
        # Chinese numerals as people say them (NOW is Wednesday 2026-03-04 10:00 in Shanghai).
        ("下周三下午三点", dt.datetime(2026, 3, 11, 15, 0)),
        ("明天下午两点", dt.datetime(2026, 3, 5, 14, 0)),
        ("后天上午十点", dt.datetime(2026, 3, 6, 10, 0)),
        ("今晚8点", dt.datetime(2026, 3, 4, 20, 0)),
        ("明晚7点", dt.datetime(2026, 3, 5, 19, 0)),
        ("明早八点", dt.datetime(2026, 3, 5, 8, 0)),
        ("十点半", dt.datetime(2026, 3, 4, 10, 30)),
        ("下午三点一刻", dt.datetime(2026, 3, 4, 15, 15)),
        ("三点三刻", dt.datetime(2026, 3, 5, 3, 45)),
        ("下午两点零五", dt.datetime(2026, 3, 4, 14, 5)),
        ("十二月七日下午两点", dt.datetime(2026, 12, 7, 14, 0)),
        ("二〇二六年十二月七日 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("周日下午三点", dt.datetime(2026, 3, 8, 15, 0)),
        ("晚上十二点", dt.datetime(2026, 3, 5, 0, 0)),
        # The same times said in English.
        ("next wednesday 3pm", dt.datetime(2026, 3, 11, 15, 0)),
        ("tomorrow 2pm", dt.datetime(2026, 3, 5, 14, 0)),
        ("day after tomorrow 10am", dt.datetime(2026, 3, 6, 10, 0)),
        ("tonight at 8", dt.datetime(2026, 3, 4, 20, 0)),
        ("tomorrow evening 7", dt.datetime(2026, 3, 5, 19, 0)),
        ("tomorrow night 7pm", dt.datetime(2026, 3, 5, 19, 0)),
        ("tomorrow morning 8", dt.datetime(2026, 3, 5, 8, 0)),
        ("half past ten", dt.datetime(2026, 3, 4, 10, 30)),
        ("quarter past three pm", dt.datetime(2026, 3, 4, 15, 15)),
        ("quarter to four pm", dt.datetime(2026, 3, 4, 15, 45)),
        ("tomorrow at ten o'clock", dt.datetime(2026, 3, 5, 10, 0)),
    ],
)
def test_spoken_times_with_words_and_chinese_numerals(text: str, local: dt.datetime) -> None:
    got = parse_local_time(text, NOW, SH)
    assert got == local.replace(tzinfo=SH).astimezone(dt.UTC), text


@pytest.mark.parametrize("text", ["明天下午", "tomorrow evening", "十十点", "周三"])
def test_spoken_times_without_an_hour_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_time(text, NOW, SH)
