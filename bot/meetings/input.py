"""Reading what a moderator types in the scheduling conversation besides times (bot/kit/timeparse.py
reads those): duration, reminder offsets, place.

* duration: ``90`` (minutes) · ``90m`` · ``1.5h`` · ``1h30m`` · ``1小时30分钟`` · ``半小时``
* offsets:  ``1d 1h`` · ``1天,1小时`` · ``30m`` · ``1440`` (minutes), separated by spaces or commas
"""

from __future__ import annotations

import re

from bot.kit.timeparse import InputError, normalise

__all__ = ["InputError", "parse_duration", "parse_offsets", "parse_place"]

_UNIT_MINUTES = {
    "d": 1440,
    "day": 1440,
    "days": 1440,
    "天": 1440,
    "日": 1440,
    "h": 60,
    "hr": 60,
    "hour": 60,
    "hours": 60,
    "小时": 60,
    "个小时": 60,
    "钟头": 60,
    "时": 60,
    "m": 1,
    "min": 1,
    "mins": 1,
    "minute": 1,
    "minutes": 1,
    "分钟": 1,
    "分": 1,
    "": 1,
}
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+|个小时|小时|钟头|分钟|天|日|时|分)?")


def _minutes(text: str, *, allow_half: bool = True) -> int:
    """Sum of amounts with units in ``text`` ("1h30m", "1小时30分", "90")."""
    s = normalise(text).replace(" ", "")
    if allow_half:
        s = s.replace("个半小时", "小时30分").replace("小时半", "小时30分").replace("半小时", "30分")
    if not s:
        raise InputError("duration")
    total = 0.0
    pos = 0
    for match in _AMOUNT.finditer(s):
        if match.start() != pos:
            raise InputError("duration")
        unit = match.group(2) or ""
        if unit not in _UNIT_MINUTES:
            raise InputError("duration")
        total += float(match.group(1)) * _UNIT_MINUTES[unit]
        pos = match.end()
    if pos != len(s) or total <= 0 or total != int(total):
        raise InputError("duration")
    return int(total)


#: Typed for "no place" (like other steps' "-"): the meeting is published without a 📍 line.
_NO_PLACE = {"-", "--", "—", "——", "无", "没有", "none", "n/a"}


def parse_place(text: str) -> str:
    """A typed place, whitespace collapsed (at most 200 characters); "" for "-" (no place)."""
    place = " ".join((text or "").split())[:200]
    return "" if normalise(place) in _NO_PLACE else place


def parse_duration(text: str) -> int:
    """Minutes of a meeting (1 minute to 24 hours)."""
    minutes = _minutes(text)
    if not 0 < minutes <= 24 * 60:
        raise InputError("duration")
    return minutes


def parse_offsets(text: str) -> tuple[int, ...]:
    """Reminder offsets in minutes, largest first, without duplicates."""
    parts = [p for p in re.split(r"[\s,;、，；]+", normalise(text)) if p]
    if not parts:
        raise InputError("offsets")
    try:
        values = {_minutes(p, allow_half=False) for p in parts}
    except InputError:
        raise InputError("offsets") from None
    if any(not 0 < v <= 30 * 1440 for v in values):
        raise InputError("offsets")
    return tuple(sorted(values, reverse=True))
