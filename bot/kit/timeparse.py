"""Times typed by users ("明天下午3点", "周一 14:30", "2026-12-01 15:00", "15:00", "12.7 14:30",
"tomorrow 3pm"), read in the configured zone and returned as aware UTC. One parser for every feature
(bot/meeting_input.py); a time more than two years ahead is refused like an unreadable one."""

from __future__ import annotations

import datetime as dt

from bot.meetings.input import InputError
from bot.meetings.input import parse_when as _parse_local


def parse_local_time(text: str, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """A future-or-now local time typed by a user -> aware UTC; None when it can't be read."""
    try:
        naive = _parse_local(text, now.astimezone(tz).replace(tzinfo=None))
    except (InputError, ValueError, OverflowError):
        return None
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)
