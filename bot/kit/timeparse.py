"""Times typed by users, the one parser for every feature (meetings, tasks, broadcasts).

Accepted (Chinese or Western forms, full-width digits and punctuation too): ``2026-12-07 14:30`` ·
``12/7 14:30`` · ``12.7 14:30`` (month.day) · ``12月7日 14:30`` · ``2026年12月7日下午2点半`` ·
``明天中午1点`` · ``下周一 14:30`` · ``7 Dec 2pm`` · ``tomorrow at 14:30`` · ``next monday 3pm``.
Chinese numerals as people say them (``下周三下午三点`` · ``明天下午两点`` · ``十点半`` · ``三点一刻`` ·
``两点零五`` · ``十二月七日``) are read by the maintained ``cn2an`` library; ``今晚8点`` · ``明晚7点`` ·
``明早8点`` name the day and the part of it; in English ``tomorrow evening 7`` · ``tonight at 8`` ·
``half past ten`` · ``quarter past three`` · ``quarter to four``.
A date without a year means the next such date, but one that passed less than two months ago is
refused as past; a time alone that passed today means tomorrow; a time of day is required; at most
two years ahead. Date parsing is dateutil's; we only normalise Chinese notation into a form it reads.

`parse_time(text, now, tz)` reads in the zone `tz` and returns aware UTC, or raises `InputError`
whose ``code`` says why (``when`` unreadable, ``past``, ``past_date``, ``too_far``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import warnings

import cn2an
from dateutil import parser as date_parser
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta


class InputError(ValueError):
    """Unreadable input; ``code`` selects ``meetings.input.<code>``."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


_WEEKDAYS = {"一": MO, "二": TU, "三": WE, "四": TH, "五": FR, "六": SA, "日": SU, "天": SU}
_CN_WEEKDAY = re.compile(r"(下)?(?:周|星期|礼拜)([一二三四五六日天])")
_EN_WEEKDAYS = {
    "mon": MO, "monday": MO, "tue": TU, "tues": TU, "tuesday": TU, "wed": WE, "wednesday": WE,
    "thu": TH, "thur": TH, "thurs": TH, "thursday": TH, "fri": FR, "friday": FR,
    "sat": SA, "saturday": SA, "sun": SU, "sunday": SU,
}  # fmt: skip
_EN_WEEKDAY = re.compile(r"\b(?:(next)\s+|(?:this|coming)\s+)?(" + "|".join(_EN_WEEKDAYS) + r")\b")
#: Relative days, longest first ("大后天" before "后天", "day after tomorrow" before "tomorrow").
_RELATIVE_DAYS = (
    (re.compile(r"大后天"), 3),
    (re.compile(r"后天|\b(?:the\s+)?day\s+after\s+tomorrow\b"), 2),
    (re.compile(r"明天|\b(?:tomorrow|tmrw?|tmw)\b"), 1),
    (re.compile(r"今天|\b(?:today|tonight)\b"), 0),
    (re.compile(r"前天|\bday\s+before\s+yesterday\b"), -2),  # read, then refused as past
    (re.compile(r"昨天|\byesterday\b"), -1),
)
#: "2pm", "2:30 pm", "12 a.m." (English 12-hour clock).
_EN_CLOCK = re.compile(r"(?<![\d:])(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?(?![a-z])")
#: "12.7" = 7 December and "2026.12.7" (month.day, as written in China); not part of a longer number.
_DOTTED_DATE = re.compile(r"(?<![\d.])(?:(\d{4})\.)?(\d{1,2})\.(\d{1,2})(?![\d.])")
_EN_FILLER = re.compile(r"\b(?:at|on)\b|@")
_EVENING = ("晚上", "夜里")  # 晚上12点 = midnight
_PM = ("下午", "傍晚", *_EVENING)
_NOON = ("中午",)  # 中午1点 = 13:00, 中午12点 = 12:00
_AM = ("上午", "早上", "早晨", "凌晨")
#: How far ahead a typed time may be (a typo like 9999-12-31 must not be scheduled).
MAX_AHEAD = relativedelta(years=2)
#: A date without a year that passed less than this long ago is refused (InputError ``past_date``),
#: not moved to next year; one further back means next year.
RECENT_PAST = relativedelta(months=2)


#: 今晚 / 明晚 / 今早 / 明早: the day and the part of the day in one word.
_CN_DAY_PARTS = (("今晚", "今天晚上"), ("明晚", "明天晚上"), ("今早", "今天早上"), ("明早", "明天早上"))
#: A quarter hour said in Chinese: 三点一刻 = 3:15, 三点三刻 = 3:45.
_CN_QUARTER = re.compile(r"([点时])\s*([一三])\s*刻")
#: A run of Chinese numerals (not the weekday of 周三 / 星期三 / 礼拜三, read as a weekday).
_CN_NUMERAL = re.compile(r"(?<!周)(?<!星期)(?<!礼拜)[零〇一二两三四五六七八九十百千]+")
#: English parts of the day ("tomorrow evening 7", "in the afternoon"); "tonight" is a day and evening.
_EN_PART = re.compile(r"\b(?:in\s+the\s+|this\s+)?(morning|afternoon|evening|night)\b")
_EN_HOURS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_EN_HOUR = r"(\d{1,2}|" + "|".join(_EN_HOURS) + r")"
#: "half past ten", "quarter past 3", "quarter to four", "ten o'clock".
_EN_PAST = re.compile(r"\b(half|(?:a\s+)?quarter)\s+(past|to)\s+" + _EN_HOUR + r"\b")
#: A lone hour next to an English part of the day ("tonight at 8").
_EN_BARE_HOUR = re.compile(r"(?<![\d:.\-/])(\d{1,2})(?![\d:.\-/])")
_EN_OCLOCK = re.compile(r"\b" + _EN_HOUR + r"\s*o'?\s*clock\b")


def _en_hour(word: str) -> int:
    return int(word) if word.isdigit() else _EN_HOURS[word]


def _en_past(match: re.Match[str]) -> str:
    hour = _en_hour(match.group(3))
    if not 1 <= hour <= 12 or (match.group(1) == "half" and match.group(2) == "to"):
        raise InputError("when")
    if match.group(2) == "to":
        return f" {12 if hour == 1 else hour - 1}:45 "
    return f" {hour}:{30 if match.group(1) == 'half' else 15:02d} "


def _cn_numerals(s: str) -> str:
    """Chinese numerals in ``s`` as digits (十点半 -> 10点半, 十二月七日 -> 12月7日), by cn2an."""
    for short, long in _CN_DAY_PARTS:
        s = s.replace(short, long)
    s = _CN_QUARTER.sub(lambda m: f"{m.group(1)}{15 if m.group(2) == '一' else 45}分", s)

    def number(match: re.Match[str]) -> str:
        run = match.group(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cn2an warns before it raises on malformed numerals
            try:
                value = cn2an.cn2an(run, "smart")
            except (ValueError, KeyError):
                raise InputError("when") from None
        if len(run) == 4 and re.fullmatch(r"[零〇一二三四五六七八九]{4}", run):
            return str(value).zfill(4)  # 二〇二六年
        return str(int(value))

    return _CN_NUMERAL.sub(number, s)


_CN_DATE = re.compile(r"(?:(\d{4})\s*年)?\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_CN_TIME = re.compile(r"(\d{1,2})\s*[点时:](?:\s*(半|\d{1,2})\s*分?)?")
_OTHER_DATE = re.compile(r"\d{1,4}[-/]\d{1,2}|[a-z]{3}")


def normalise(text: str) -> str:
    # Full-width digits, colons and commas (１４：３０，) become ASCII.
    return unicodedata.normalize("NFKC", text).strip().lower()


def _english_clock(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if not 1 <= hour <= 12 or minute > 59:
        raise InputError("when")
    hour = hour % 12 + (12 if match.group(3) == "p" else 0)
    return f" {hour}:{minute:02d} "


def _dotted_date(match: re.Match[str]) -> str:
    year, month, day = match.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        raise InputError("when")
    return f" {year + '-' if year else ''}{int(month)}-{int(day)} "


def _parse_local(text: str, now_local: dt.datetime) -> dt.datetime:
    """A naive local start time after ``now_local`` (naive wall time in the meeting's zone).

    Besides the forms in the module docstring: ``今天/明天/后天/大后天``, ``周一``/``下周一``, ``today``,
    ``tomorrow``, ``day after tomorrow``, ``monday`` (the coming one) / ``next monday`` (in next week,
    like 下周一), ``3pm``, ``2:30 pm``, ``at``; ``12.7`` is 7 December (month.day). At most
    ``MAX_AHEAD`` ahead (InputError ``too_far``).
    """
    s = normalise(text)
    if not s:
        raise InputError("when")
    s = _cn_numerals(s)
    en_part = _EN_PART.search(s)
    en_evening = bool(re.search(r"\btonight\b", s)) or bool(
        en_part and en_part.group(1) in ("evening", "night")
    )
    evening = any(word in s for word in _EVENING) or en_evening
    pm = any(word in s for word in _PM) or en_evening or bool(en_part and en_part.group(1) == "afternoon")
    noon = any(word in s for word in _NOON)
    am = any(word in s for word in _AM) or bool(en_part and en_part.group(1) == "morning")
    for word in (*_PM, *_NOON, *_AM):
        s = s.replace(word, " ")
    s = _EN_PART.sub(" ", s)
    s = _EN_PAST.sub(_en_past, s)
    s = _EN_OCLOCK.sub(lambda m: f" {_en_hour(m.group(1))}:00 ", s)
    s = _EN_CLOCK.sub(_english_clock, s)
    if (en_part or en_evening) and not re.search(r"\d{1,2}:\d{2}", s):
        hours = _EN_BARE_HOUR.findall(s)
        if len(hours) == 1 and 1 <= int(hours[0]) <= 12:
            s = _EN_BARE_HOUR.sub(lambda m: f" {m.group(1)}:00 ", s)  # tonight at 8, tomorrow evening 7
    year_given = bool(re.search(r"\d{4}", s))
    date_match = _CN_DATE.search(s)
    if date_match:
        year, month, day = date_match.groups()
        s = s[: date_match.start()] + f" {year + '-' if year else ''}{month}-{day} " + s[date_match.end() :]
    dotted = _DOTTED_DATE.search(s)
    if dotted:
        s = _DOTTED_DATE.sub(_dotted_date, s, count=1)
    relative_date: dt.date | None = None
    for pattern, days in _RELATIVE_DAYS:
        found = pattern.search(s)
        if found:
            relative_date = (now_local + dt.timedelta(days=days)).date()
            s = s[: found.start()] + " " + s[found.end() :]
            break
    # 周一 / monday = the coming Monday (today if it is Monday); 下周一 / next monday = Monday of next week.
    weekday: relativedelta | None = None
    next_week = False
    cn_weekday = _CN_WEEKDAY.search(s)
    en_weekday = _EN_WEEKDAY.search(s)
    if cn_weekday:
        weekday, next_week = _WEEKDAYS[cn_weekday.group(2)], bool(cn_weekday.group(1))
        s = s[: cn_weekday.start()] + " " + s[cn_weekday.end() :]
    elif en_weekday:
        weekday, next_week = _EN_WEEKDAYS[en_weekday.group(2)], bool(en_weekday.group(1))
        s = s[: en_weekday.start()] + " " + s[en_weekday.end() :]
    s = _EN_FILLER.sub(" ", s)
    explicit_date = bool(date_match or dotted or _OTHER_DATE.search(s))
    if weekday is not None and relative_date is None and not explicit_date:
        start = now_local + relativedelta(weekday=MO(-1)) + dt.timedelta(weeks=1) if next_week else now_local
        relative_date = (start + relativedelta(weekday=weekday(+1))).date()
    else:
        weekday = None  # a weekday next to a date or 明天 only repeats it
    if relative_date is not None:
        if explicit_date:
            raise InputError("when")  # 明天 12月7日: which one?
        s = f"{relative_date.isoformat()} {s}"
        year_given = True
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
        if evening and parsed.hour == 12:
            parsed += dt.timedelta(hours=12)  # 晚上12点 = midnight at the end of that day
        elif pm and parsed.hour < 12:
            parsed += dt.timedelta(hours=12)
        elif noon and 1 <= parsed.hour <= 5:
            parsed += dt.timedelta(hours=12)
        elif am and parsed.hour == 12:
            parsed -= dt.timedelta(hours=12)
        parsed = parsed.replace(tzinfo=None, second=0, microsecond=0)
        if weekday is not None and not next_week and parsed <= now_local:
            parsed += dt.timedelta(weeks=1)  # 周三 09:00 said on a Wednesday at 10:00 = next Wednesday
        recently_passed = False
        if parsed <= now_local and not year_given:
            if not explicit_date:
                parsed += relativedelta(days=1)  # 9:00 said at 10:00 = tomorrow 09:00 (a time alone)
            elif parsed > now_local - RECENT_PAST:
                recently_passed = True  # 11-28 said on 11-29: a typo or a late entry, not next year
            else:
                parsed += relativedelta(years=1)  # 1-5 said in November = next January
        too_far = parsed > now_local + MAX_AHEAD
    except (ValueError, OverflowError):
        raise InputError("when") from None
    if recently_passed:
        raise InputError("past_date")
    if parsed <= now_local:
        raise InputError("past")
    if too_far:
        raise InputError("too_far")
    return parsed


_EN_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b")


def names_a_day(text: str) -> bool:
    """Whether a typed time says which day (a date, 明天, 今晚, 周一, tomorrow, 7 Dec), not only a time
    of day (十点半, 下午四点, half past four pm): an end time without a day is read on the start's day."""
    try:
        s = _cn_numerals(normalise(text))
    except InputError:
        return False
    s = _EN_CLOCK.sub(" ", s)
    return bool(
        _CN_DATE.search(s)
        or _DOTTED_DATE.search(s)
        or any(pattern.search(s) for pattern, _days in _RELATIVE_DAYS)
        or _CN_WEEKDAY.search(s)
        or _EN_WEEKDAY.search(s)
        or re.search(r"\d{1,4}[-/]\d{1,2}", s)
        or _EN_MONTH.search(s)
    )


def parse_time(text: str, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A future time typed by a user, read as wall time in ``tz``, after ``now`` (aware): aware UTC.
    Raises `InputError` (``when``, ``past``, ``past_date``, ``too_far``)."""
    try:
        local = _parse_local(text, now.astimezone(tz).replace(tzinfo=None))
    except InputError:
        raise
    except (ValueError, OverflowError):
        raise InputError("when") from None
    return local.replace(tzinfo=tz).astimezone(dt.UTC)
