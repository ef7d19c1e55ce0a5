"""Reading what a moderator types in the scheduling conversation: start time, duration, offsets.

Accepted (Chinese or Western forms, full-width digits and punctuation too):

* start:    ``2026-12-07 14:30`` · ``12/7 14:30`` · ``12月7日 14:30`` · ``2026年12月7日下午2点半`` · ``7 Dec 14:30``
            (a date without a year means the next such date; a time is required)
* duration: ``90`` (minutes) · ``90m`` · ``1.5h`` · ``1h30m`` · ``1小时30分钟`` · ``半小时``
* offsets:  ``1d 1h`` · ``1天,1小时`` · ``30m`` · ``1440`` (minutes), separated by spaces or commas

Date parsing is dateutil's; we only normalise Chinese notation into a form it reads.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from dateutil import parser as date_parser
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta


class InputError(ValueError):
    """Unreadable input; ``code`` selects ``meetings.input.<code>``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


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
_RELATIVE_DAYS = {"今天": 0, "明天": 1, "后天": 2}
_WEEKDAYS = {"一": MO, "二": TU, "三": WE, "四": TH, "五": FR, "六": SA, "日": SU, "天": SU}
_CN_WEEKDAY = re.compile(r"(下)?(?:周|星期|礼拜)([一二三四五六日天])")
_PM = ("下午", "晚上", "傍晚", "pm")
_AM = ("上午", "早上", "凌晨", "中午", "am")


def _normalise(text: str) -> str:
    # Full-width digits, colons and commas (１４：３０，) become ASCII.
    return unicodedata.normalize("NFKC", text).strip().lower()


def _minutes(text: str, *, allow_half: bool = True) -> int:
    """Sum of amounts with units in ``text`` ("1h30m", "1小时30分", "90")."""
    s = _normalise(text).replace(" ", "")
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


def parse_duration(text: str) -> int:
    """Minutes of a meeting (1 minute to 24 hours)."""
    minutes = _minutes(text)
    if not 0 < minutes <= 24 * 60:
        raise InputError("duration")
    return minutes


def parse_offsets(text: str) -> tuple[int, ...]:
    """Reminder offsets in minutes, largest first, without duplicates."""
    parts = [p for p in re.split(r"[\s,;、，；]+", _normalise(text)) if p]
    if not parts:
        raise InputError("offsets")
    try:
        values = {_minutes(p, allow_half=False) for p in parts}
    except InputError:
        raise InputError("offsets") from None
    if any(not 0 < v <= 30 * 1440 for v in values):
        raise InputError("offsets")
    return tuple(sorted(values, reverse=True))


_CN_DATE = re.compile(r"(?:(\d{4})\s*年)?\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_CN_TIME = re.compile(r"(\d{1,2})\s*[点时:](?:\s*(半|\d{1,2})\s*分?)?")


def parse_when(text: str, now_local: dt.datetime) -> dt.datetime:
    """A naive local start time after ``now_local`` (naive wall time in the meeting's zone)."""
    s = _normalise(text)
    if not s:
        raise InputError("when")
    pm = any(word in s for word in _PM)
    am = any(word in s for word in _AM)
    for word in (*_PM, *_AM):
        s = s.replace(word, " ")
    year_given = bool(re.search(r"\d{4}", s))
    relative_date: dt.date | None = None
    for word, days in _RELATIVE_DAYS.items():
        if word in s:
            relative_date = (now_local + dt.timedelta(days=days)).date()
            s = s.replace(word, " ")
    weekday_match = _CN_WEEKDAY.search(s)
    if weekday_match:
        # 周一 = the coming Monday (today if it is Monday); 下周一 = Monday of next week.
        weekday = _WEEKDAYS[weekday_match.group(2)]
        if weekday_match.group(1):
            start = now_local + relativedelta(weekday=MO(-1)) + dt.timedelta(weeks=1)
        else:
            start = now_local
        relative_date = (start + relativedelta(weekday=weekday(+1))).date()
        s = s[: weekday_match.start()] + " " + s[weekday_match.end() :]
    if relative_date is not None:
        s = f"{relative_date.isoformat()} {s}"
        year_given = True
    date_match = _CN_DATE.search(s)
    if date_match:
        year, month, day = date_match.groups()
        s = s[: date_match.start()] + f" {year + '-' if year else ''}{month}-{day} " + s[date_match.end() :]
    time_match = _CN_TIME.search(s)
    if time_match and ("点" in time_match.group(0) or "时" in time_match.group(0) or time_match.group(2)):
        hour, minute = time_match.groups()
        minute = "30" if minute == "半" else (minute or "00")
        s = s[: time_match.start()] + f" {hour}:{int(minute):02d} " + s[time_match.end() :]
    if not re.search(r"\d{1,2}:\d{2}", s):
        raise InputError("when")  # a meeting needs a time of day
    default = now_local.replace(second=0, microsecond=0)
    try:
        parsed = date_parser.parse(s, default=default)
    except (ValueError, OverflowError):
        raise InputError("when") from None
    if pm and parsed.hour < 12:
        parsed += dt.timedelta(hours=12)
    elif am and parsed.hour == 12 and "中午" not in text:
        parsed -= dt.timedelta(hours=12)
    parsed = parsed.replace(tzinfo=None, second=0, microsecond=0)
    if weekday_match and not weekday_match.group(1) and parsed <= now_local:
        parsed += dt.timedelta(weeks=1)  # 周三 09:00 said on a Wednesday at 10:00 = next Wednesday
    if parsed <= now_local and not year_given:
        has_date = bool(date_match) or bool(re.search(r"\d{1,2}[-/.]\d{1,2}|[a-z]{3}", s))
        parsed += relativedelta(years=1) if has_date else relativedelta(days=1)
    if parsed <= now_local:
        raise InputError("past")
    return parsed
