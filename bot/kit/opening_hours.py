"""Opening hours in a documented subset of OpenStreetMap's ``opening_hours`` syntax.

The subset (https://wiki.openstreetmap.org/wiki/Key:opening_hours covers the full language):

* ``24/7``: always open. ``24小时``, ``全天`` and ``24h`` are accepted as the same.
* Rules separated by ``;``. A rule is an optional day selector followed by times or ``off``:
  ``Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00``. A rule without a selector applies to every day
  (``08:00-20:00``).
* Day selectors: ``Mo Tu We Th Fr Sa Su``, ranges (``Mo-Fr``, wrapping ``Fr-Mo``), lists
  (``Mo,We,Fr``, ``Mo-Fr,Su``) and ``PH`` (public holidays in mainland China, from the ``holidays``
  package), e.g. ``Mo-Fr 09:00-18:00; PH off``.
* Times: one or more ranges separated by ``,`` (``08:00-12:00,13:00-20:00``). An end before the start
  (or past 24:00, up to 48:00) runs past midnight: ``Mo-Su 22:00-06:00`` is open from 22:00 to 06:00
  the next morning; the early-morning part belongs to the day the range started on, whatever the next
  day's rule says. ``24:00`` is allowed as an end.
* ``off`` (or ``closed``) closes the selected days.
* A later rule replaces the earlier ones for the days it selects (``Mo-Su 08:00-20:00; Su off`` is
  closed on Sundays). Upper/lower case, full-width characters (``；``, ``：``, ``，``) and dashes
  (``–``, ``~``, ``至``, ``到``) are tolerated, and so is Chinese as station keepers write it: ``周一至周五
  9:00-21:00，周末 10:00-18:00``, ``工作日``, ``每天``, ``星期六``, ``周一至五``, ``周六日``,
  ``节假日休息``, and spoken times: ``周一到周五早上7点到晚上10点``, ``每天上午九点到晚上九点半``,
  ``早8晚10``, ``早上七点开门，晚上十点关门``, ``晚上6点到凌晨2点``, ``9点到6点`` (an end without 上午/
  下午 that would come before the start is read in the afternoon: 09:00-18:00), ``12点一刻``,
  ``8点三刻``; ``营业时间：``, ``中午休息`` and ``全年无休`` are skipped. English: ``Mon-Fri 9am to 9pm``,
  ``daily``, ``weekdays``, ``weekends closed``. ``24:00`` may start a range (晚上12点到凌晨3点).

Not supported (a clear ``OpeningHoursError``): months, dates, week numbers, ``SH``, ``sunrise``,
open ends (``18:00+``), comments, and ``||`` fallback rules.

All times are wall-clock times in the configured time zone: callers pass a datetime already in it.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

__all__ = ["DAYS", "OpeningHours", "OpeningHoursError", "Status", "Week", "parse_opening_hours"]

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_INDEX = {d.lower(): i for i, d in enumerate(DAYS)}
_ALWAYS_RE = re.compile(
    r"^(?:(?:24\s*/\s*7|24\s*(?:小时|h|hours?)|全天候?|open\s*24\s*hours|always(?:\s*open)?)\s*)+$",
    re.IGNORECASE,
)
_DASHES = str.maketrans({"–": "-", "—": "-", "~": "-", "〜": "-", "～": "-", "−": "-", "至": "-", "到": "-"})
_TIME_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DAY_TOKEN = re.compile(r"^([a-z]{2})(?:\s*-\s*([a-z]{2}))?$", re.IGNORECASE)
_HORIZON_DAYS = 16  # long enough to look past the longest Chinese holiday run (Golden Week: 8 days)


class OpeningHoursError(ValueError):
    """An opening_hours value outside the supported subset; ``reason`` says why, for a person (in
    English); ``code`` names the kind of problem for a translated text (see ``ERROR_CODES``) and
    ``part`` is the piece that could not be read (as normalised, e.g. ``9-21``), when there is one."""

    def __init__(self, text: str, reason: str, code: str = "unreadable", part: str = "") -> None:
        super().__init__(f"{reason} in opening hours {text!r}")
        self.text = text
        self.reason = reason
        self.code = code
        self.part = part


@dataclass(frozen=True, slots=True)
class _Rule:
    days: frozenset[int]  # weekdays 0 = Monday; empty with ph=False means "every day"
    ph: bool  # the rule selects public holidays
    every_day: bool
    intervals: tuple[tuple[int, int], ...]  # minutes from the day's midnight; end may exceed 1440

    def matches(self, weekday: int, is_holiday: bool) -> bool:
        return self.every_day or weekday in self.days or (self.ph and is_holiday)


@dataclass(frozen=True, slots=True)
class Status:
    """Whether a place is open at a moment and when that changes.

    ``changes_at`` is the next moment the state flips (same tzinfo as the moment asked about), or
    ``None`` when it does not flip within the next two weeks (open 24/7, or closed for good).
    """

    is_open: bool
    changes_at: dt.datetime | None

    @property
    def always_open(self) -> bool:
        return self.is_open and self.changes_at is None


Intervals = tuple[tuple[int, int], ...]  # minutes from a day's midnight; an end may pass 1440


@dataclass(frozen=True, slots=True)
class Week:
    """The hours of an ordinary week, for showing: ``days[0]`` is Monday's ranges (empty: closed);
    ``holidays`` the ranges of a public holiday when a rule makes them differ, else ``None``."""

    days: tuple[Intervals, ...]
    holidays: Intervals | None

    @property
    def always_open(self) -> bool:
        return self.holidays is None and all(d == ((0, 1440),) for d in self.days)


@cache
def _china_holidays() -> Callable[[dt.date], bool]:
    import holidays

    calendar = holidays.China()
    return lambda day: day in calendar


class OpeningHours:
    """A parsed opening_hours value. Build with ``OpeningHours.parse`` (or ``parse_opening_hours``)."""

    __slots__ = ("_is_holiday", "_rules", "_timelines", "text")

    def __init__(
        self, text: str, rules: tuple[_Rule, ...], is_holiday: Callable[[dt.date], bool] | None = None
    ) -> None:
        self.text = text
        self._rules = rules
        self._is_holiday = is_holiday
        # Timelines by day: one parsed value (cached by text) serves every card shown that day.
        self._timelines: dict[dt.date, list[tuple[int, int]]] = {}

    @classmethod
    def parse(cls, text: str, *, is_holiday: Callable[[dt.date], bool] | None = None) -> OpeningHours:
        """Parse ``text``; raise ``OpeningHoursError`` (a ``ValueError``) with a reason."""
        return cls(text.strip(), _parse_rules(text), is_holiday)

    def __repr__(self) -> str:
        return f"OpeningHours({self.text!r})"

    @property
    def uses_holidays(self) -> bool:
        return any(rule.ph for rule in self._rules)

    def _holiday(self, day: dt.date) -> bool:
        if not self.uses_holidays:
            return False
        checker = self._is_holiday or _china_holidays()
        return checker(day)

    def intervals_of_day(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        """The ranges (minutes from ``day``'s midnight) started on ``day`` by the rule in force."""
        return self._intervals(day.weekday(), self._holiday(day))

    def _intervals(self, weekday: int, holiday: bool) -> Intervals:
        chosen: Intervals = ()
        for rule in self._rules:
            if rule.matches(weekday, holiday):
                chosen = rule.intervals
        return chosen

    def week(self) -> Week:
        """Each weekday's ranges, and a public holiday's when they differ (``Mo-Fr 09:00-18:00; PH
        off`` -> holidays ``()``). When holidays fall differently on different weekdays, the ranges of
        the most common case are given."""
        days = tuple(self._intervals(w, False) for w in range(7))
        differing = [self._intervals(w, True) for w in range(7) if self._intervals(w, True) != days[w]]
        holidays = max(differing, key=differing.count) if differing else None
        return Week(days, holidays)

    def _timeline(self, day: dt.date) -> list[tuple[int, int]]:
        """Merged open ranges from the day before ``day`` to the horizon, minutes from ``day``'s midnight."""
        merged = self._timelines.get(day)
        if merged is None:
            if len(self._timelines) >= 4:
                self._timelines.clear()
            merged = self._timelines[day] = self._build_timeline(day)
        return merged

    def _build_timeline(self, day: dt.date) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for offset in range(-1, _HORIZON_DAYS):
            base = offset * 1440
            for start, end in self.intervals_of_day(day + dt.timedelta(days=offset)):
                spans.append((base + start, base + end))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

    def is_open(self, at: dt.datetime) -> bool:
        """Open at the wall-clock time of ``at`` (pass it in the configured time zone)."""
        return self.status(at).is_open

    def next_change(self, at: dt.datetime) -> dt.datetime | None:
        """When the open/closed state next flips after ``at``; ``None`` if not within two weeks."""
        return self.status(at).changes_at

    def status(self, at: dt.datetime) -> Status:
        day = at.date()
        minute = at.hour * 60 + at.minute + (at.second + at.microsecond / 1e6) / 60.0
        horizon_end = _HORIZON_DAYS * 1440
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=at.tzinfo)
        for start, end in self._timeline(day):
            if start <= minute < end:
                if end >= horizon_end:
                    return Status(True, None)
                return Status(True, midnight + dt.timedelta(minutes=end))
            if start > minute:
                if start >= horizon_end:
                    break
                return Status(False, midnight + dt.timedelta(minutes=start))
        return Status(False, None)


def parse_opening_hours(text: str, *, is_holiday: Callable[[dt.date], bool] | None = None) -> OpeningHours:
    """Parse an opening_hours value (cached by text when no holiday checker is given)."""
    if is_holiday is not None:
        return OpeningHours.parse(text, is_holiday=is_holiday)
    return _parse_cached(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> OpeningHours:
    return OpeningHours.parse(text)


# Chinese as station keepers write it ("周一至周五 9:00-21:00，周末 10:00-18:00"), longest words first.
_CHINESE_WORDS = [
    ("法定节假日", "PH"),
    ("节假日", "PH"),
    ("工作日", "Mo-Fr"),
    ("周六日", "Sa,Su"),
    ("周六周日", "Sa,Su"),
    ("双休日", "Sa,Su"),
    ("周末", "Sa,Su"),
    ("每天", "Mo-Su"),
    ("每日", "Mo-Su"),
    ("天天", "Mo-Su"),
    ("不营业", "off"),
    ("不开放", "off"),
    ("休息", "off"),
    ("关门", "off"),
    ("不开", "off"),
]
# Words around the hours that say nothing about them ("营业时间：", "从早上8点", "对外开放").
_FILLER = re.compile(r"营业时间\s*:?|对外开放|全年无休|营业|开放|从|起")
_NOON_BREAK = re.compile(r"(?:中午|午间)休息|午休")
_CHINESE_DAY = re.compile(r"(?:星期|礼拜|周)([一二三四五六日天])")
# "周一至五", "星期一到六": the end of a day range written without its own 周.
_CHINESE_DAY_TAIL = re.compile(r"(?<=\b(?:Mo|Tu|We|Th|Fr|Sa|Su))-([一二三四五六日天])(?![点时])")
_CHINESE_DAY_CODE = {
    "一": "Mo",
    "二": "Tu",
    "三": "We",
    "四": "Th",
    "五": "Fr",
    "六": "Sa",
    "日": "Su",
    "天": "Su",
}
# English as people type it: "Mon-Fri 9am to 9pm", "daily 8:00-22:00", "weekends closed".
_ENGLISH_WORDS = [
    (re.compile(r"\b(?:every\s*day|daily)\b", re.IGNORECASE), "Mo-Su"),
    (re.compile(r"\bweekdays?\b", re.IGNORECASE), "Mo-Fr"),
    (re.compile(r"\bweekends?\b", re.IGNORECASE), "Sa,Su"),
    (re.compile(r"\b(?:public\s+)?holidays?\b", re.IGNORECASE), "PH"),
]
_ENGLISH_DAY = re.compile(
    r"\b(mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?"
    r"|sun(?:day)?)\b",
    re.IGNORECASE,
)
_AM_PM = re.compile(r"(?<![\d:])(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?(?![a-z])", re.IGNORECASE)
# A comma before a day selector separates rules (", 周末 ..." -> "; Sa,Su ..."), unless it follows a
# day itself (a list of days: "Sa,Su").
_DAY_COMMA = re.compile(r"\s*,\s*(?=(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)\b)")
_DAY_AT_END = re.compile(r"(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)$")
# A rule's next rule may follow after a space only ("9:00-18:00 周六 9:00-12:00").
_RULE_SPACE = re.compile(r"(?<=\d)\s+(?=(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)\b)")
# Two time ranges side by side ("8:00-12:00 14:00-18:00") are a list of ranges.
_RANGE_SPACE = re.compile(r"(?<=\d\d:\d\d)\s+(?=\d{1,2}:\d\d\s*-)")

# -- spoken times: 早上7点, 下午两点半, 晚上9:30, 凌晨2点, 12点一刻 ----------------------------------
_PERIODS = "凌晨|清晨|早上|早晨|上午|中午|午间|下午|傍晚|晚上|夜里|夜间|晚间|半夜|早|晚|夜|午"
_MORNING = {"凌晨", "清晨", "早上", "早晨", "上午", "半夜", "早"}
_NOON = {"中午", "午间", "午"}
# Hours 0-24 and minutes 0-59 in Chinese numerals; "五十" is never an hour (周五十点 is Friday 10:00).
_CN_HOUR = "(?:[一二]?十[一二三四五六七八九]?|[零〇一二两三四五六七八九])"
_CN_MINUTE = "(?:[一二三四五]?十[一二三四五六七八九]?|[零〇]?[一二三四五六七八九])"
_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}


def _time_pattern(n: int) -> str:
    """One spoken or written time, its groups suffixed ``n``: a period word (optional), an hour, then
    ``:MM``, or 点/时 with optional minutes (半, 一刻, 三刻, 30, 三十, 30分). Without a period the
    hour needs its ``:MM`` or 点 (a bare number such as the 24 of 24/7 is no time)."""
    tail = (
        rf"(?:\s*:\s*(?P<c{n}>\d\d)"
        rf"|\s*(?P<d{n}>[点點时])(?:\s*(?P<m{n}>半|一刻|三刻|\d{{1,2}}|{_CN_MINUTE})\s*分?)?\s*钟?)"
    )
    return (
        rf"(?:(?P<p{n}>{_PERIODS})\s*)?"
        rf"(?<![\d:])(?P<h{n}>\d{{1,2}}|{_CN_HOUR})"
        rf"(?:{tail})?(?(p{n})|(?(d{n})|(?(c{n})|(?!))))"
        rf"(?![\d:])"
    )


_SPOKEN_RANGE = re.compile(_time_pattern(1) + rf"(?:\s*-\s*|\s*(?=(?:{_PERIODS})))" + _time_pattern(2))
_SPOKEN_TIME = re.compile(_time_pattern(1))
# "早上7点开门，晚上10点关门": an opening and a closing time are a range.
_OPEN_CLOSE = re.compile(r"开门\s*[,;]?\s*(?=[^;]*?关门)")
_CLOSE_AFTER_TIME = re.compile(r"(?<=[\d点時时半刻分钟])\s*关门")


def _cn_number(text: str) -> int | None:
    """0-99 written in digits or Chinese numerals (十, 十二, 二十三, 两, 〇五)."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        t = _CN_DIGITS.get(tens, -1) if tens else 1
        o = _CN_DIGITS.get(ones, -1) if ones else 0
        return None if t < 0 or o < 0 or "十" in ones else t * 10 + o
    value = 0
    for ch in text:
        if ch not in _CN_DIGITS:
            return None
        value = value * 10 + _CN_DIGITS[ch]
    return value


def _spoken(m: re.Match[str], n: int) -> tuple[int, int, str | None, bool] | None:
    """(hour, minute, period, written with 点) of time ``n`` in ``m``; None when it is no time (a bare
    number without 点 or a period, e.g. the 24 of 24/7)."""
    period, hour_text = m[f"p{n}"], m[f"h{n}"]
    dian = m[f"d{n}"] is not None
    if m[f"c{n}"] is None and not dian and period is None:
        return None
    hour = _cn_number(hour_text)
    if hour is None:
        return None
    minute = 0
    if m[f"c{n}"] is not None:
        minute = int(m[f"c{n}"])
    elif m[f"m{n}"]:
        spoken = {"半": 30, "一刻": 15, "三刻": 45}.get(m[f"m{n}"])
        minute = spoken if spoken is not None else (_cn_number(m[f"m{n}"]) or 0)
    if period is not None and period not in _MORNING and period not in _NOON and hour < 12:
        hour += 12  # 下午3点, 晚上9点 (晚上12点 is the end of the day: 24:00)
    elif period in _NOON and hour < 11:
        hour += 12  # 中午1点
    elif period is not None and period not in _NOON and period not in _MORNING and hour == 12:
        hour = 24
    elif period in ("凌晨", "半夜") and hour == 12:
        hour = 0
    return hour, minute, period, dian


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _spoken_range(m: re.Match[str]) -> str:
    first, second = _spoken(m, 1), _spoken(m, 2)
    if first is None or second is None:
        return m[0]
    (h1, m1, _, _), (h2, m2, p2, dian2) = first, second
    # "9点到6点", "下午2点到5点": an end without its own period that would come before the start is
    # read in the afternoon when that makes a day's range (never past midnight by accident).
    if p2 is None and dian2 and h2 < 12 and h2 < h1 < h2 + 12:
        h2 += 12
    return f"{_hhmm(h1, m1)}-{_hhmm(h2, m2)}"


def _spoken_single(m: re.Match[str]) -> str:
    one = _spoken(m, 1)
    return m[0] if one is None else _hhmm(one[0], one[1])


def _am_pm(m: re.Match[str]) -> str:
    hour, minute = int(m[1]), int(m[2] or 0)
    if hour > 12:
        return m[0]
    hour = hour % 12 + (12 if m[3].lower() == "p" else 0)
    return _hhmm(hour, minute)


def _normalise(text: str) -> str:
    """``text`` in the OSM subset: English and Chinese day words to codes, spoken times to HH:MM."""
    norm = unicodedata.normalize("NFKC", text).translate(_DASHES).replace("、", ",")
    # English
    norm = _AM_PM.sub(_am_pm, norm)
    norm = re.sub(r"\s+(?:to|until|till)\s+", "-", norm, flags=re.IGNORECASE)
    for pattern, code in _ENGLISH_WORDS:
        norm = pattern.sub(f" {code} ", norm)
    norm = _ENGLISH_DAY.sub(lambda m: f" {m[1][:2].capitalize()} ", norm)
    # Chinese: an opening and a closing time, the words, the days, then spoken times (after the days,
    # so that the 二 of 周二十点 is Tuesday's and 十点 the time).
    norm = _OPEN_CLOSE.sub("-", norm)
    norm = _CLOSE_AFTER_TIME.sub("", norm)
    norm = _NOON_BREAK.sub(" ", norm)
    for word, code in _CHINESE_WORDS:
        norm = norm.replace(word, f" {code} ")
    norm = _FILLER.sub(" ", norm)
    norm = _CHINESE_DAY.sub(lambda m: f" {_CHINESE_DAY_CODE[m.group(1)]} ", norm)
    norm = _SPOKEN_RANGE.sub(_spoken_range, norm)
    norm = _SPOKEN_TIME.sub(_spoken_single, norm)
    norm = re.sub(r"\s*([-,])\s*", r"\1", norm)  # "Mo - Fr" -> "Mo-Fr" after the word swaps
    norm = re.sub(r",{2,}", ",", norm).strip(",")
    norm = _CHINESE_DAY_TAIL.sub(lambda m: "-" + _CHINESE_DAY_CODE[m.group(1)], norm)
    norm = _DAY_COMMA.sub(lambda m: "," if _DAY_AT_END.search(m.string[: m.start()]) else "; ", norm)
    norm = _RULE_SPACE.sub("; ", norm)
    norm = _RANGE_SPACE.sub(",", norm)
    return re.sub(r"\s+", " ", norm).strip()


def _parse_rules(text: str) -> tuple[_Rule, ...]:
    norm = _normalise(text)
    if not norm:
        raise OpeningHoursError(text, "empty value", "empty")
    if "||" in norm:
        raise OpeningHoursError(text, "fallback rules (||) are not supported", "fallback")
    rules = []
    for part in norm.split(";"):
        part = part.strip()
        if part:
            rules.append(_parse_rule(text, part))
    if not rules:
        raise OpeningHoursError(text, "no rules", "empty")
    return tuple(rules)


def _parse_rule(text: str, rule: str) -> _Rule:
    if _ALWAYS_RE.match(rule):
        return _Rule(frozenset(), False, True, ((0, 1440),))
    match = re.match(r"^(?P<sel>[^\d]*?)\s*(?P<body>\d.*|off|closed)?$", rule, re.IGNORECASE)
    if match is None:  # pragma: no cover - the pattern matches any string
        raise OpeningHoursError(text, f"cannot read {rule!r}", "unreadable", rule)
    selector = (match["sel"] or "").strip()
    body = (match["body"] or "").strip()
    if not body:
        raise OpeningHoursError(text, f"no times or 'off' in {rule!r}", "no_times", rule)
    days, ph, every_day = _parse_selector(text, selector)
    intervals: tuple[tuple[int, int], ...]
    if body.lower() in ("off", "closed"):
        intervals = ()
    elif _ALWAYS_RE.match(body):  # "周一至周五 24小时"
        intervals = ((0, 1440),)
    else:
        intervals = tuple(_parse_time_range(text, piece.strip()) for piece in body.split(","))
    return _Rule(days, ph, every_day, intervals)


def _parse_selector(text: str, selector: str) -> tuple[frozenset[int], bool, bool]:
    if not selector:
        return frozenset(), False, True
    days: set[int] = set()
    ph = False
    for token in selector.split(","):
        token = token.strip()
        if token.upper() == "PH":
            ph = True
            continue
        m = _DAY_TOKEN.match(token)
        if m is None:
            raise OpeningHoursError(
                text, f"unknown day selector {token!r} (use Mo Tu We Th Fr Sa Su or PH)", "unknown_day", token
            )
        first = _DAY_INDEX.get(m[1].lower())
        last = _DAY_INDEX.get(m[2].lower()) if m[2] else first
        if first is None or last is None:
            raise OpeningHoursError(
                text, f"unknown day {token!r} (use Mo Tu We Th Fr Sa Su or PH)", "unknown_day", token
            )
        i = first
        days.add(i)
        while i != last:
            i = (i + 1) % 7
            days.add(i)
    return frozenset(days), ph, False


def _parse_time_range(text: str, piece: str) -> tuple[int, int]:
    m = _TIME_RANGE.match(piece)
    if m is None:
        if piece.endswith("+"):
            raise OpeningHoursError(text, f"open end {piece!r} is not supported", "open_end", piece)
        raise OpeningHoursError(text, f"bad time range {piece!r} (expected HH:MM-HH:MM)", "bad_range", piece)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if m1 > 59 or m2 > 59:
        raise OpeningHoursError(text, f"minutes over 59 in {piece!r}", "minutes", piece)
    if h1 > 24 or (h1 == 24 and m1):
        raise OpeningHoursError(text, f"start hour over 23 in {piece!r}", "start_hour", piece)
    if h2 > 48 or (h2 == 48 and m2):
        raise OpeningHoursError(text, f"end hour over 48 in {piece!r}", "end_hour", piece)
    start = h1 * 60 + m1
    end = h2 * 60 + m2
    if end == start:
        raise OpeningHoursError(text, f"empty time range {piece!r}", "empty_range", piece)
    if end < start:
        end += 1440  # runs past midnight
    if end - start > 1440:
        raise OpeningHoursError(text, f"time range longer than a day {piece!r}", "too_long", piece)
    return start, end
