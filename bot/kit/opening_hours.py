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
  (``–``, ``~``, ``至``) are tolerated, and so is Chinese as station keepers write it: ``周一至周五
  9:00-21:00，周末 10:00-18:00``, ``工作日``, ``每天``, ``星期六``, ``节假日休息``.

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

__all__ = ["DAYS", "OpeningHours", "OpeningHoursError", "Status", "parse_opening_hours"]

DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_INDEX = {d.lower(): i for i, d in enumerate(DAYS)}
_ALWAYS = {"24/7", "24小时", "24 小时", "全天", "24h", "24 h", "24hours", "24 hours"}
_DASHES = str.maketrans({"–": "-", "—": "-", "~": "-", "〜": "-", "～": "-", "−": "-", "至": "-"})
_TIME_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DAY_TOKEN = re.compile(r"^([a-z]{2})(?:\s*-\s*([a-z]{2}))?$", re.IGNORECASE)
_HORIZON_DAYS = 16  # long enough to look past the longest Chinese holiday run (Golden Week: 8 days)


class OpeningHoursError(ValueError):
    """An opening_hours value outside the supported subset; ``reason`` says why, for a person."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{reason} in opening hours {text!r}")
        self.text = text
        self.reason = reason


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
        chosen: tuple[tuple[int, int], ...] = ()
        weekday = day.weekday()
        holiday = self._holiday(day)
        for rule in self._rules:
            if rule.matches(weekday, holiday):
                chosen = rule.intervals
        return chosen

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
    ("周末", "Sa,Su"),
    ("每天", "Mo-Su"),
    ("每日", "Mo-Su"),
    ("天天", "Mo-Su"),
    ("不营业", "off"),
    ("休息", "off"),
    ("关门", "off"),
]
_CHINESE_DAY = re.compile(r"(?:星期|礼拜|周)([一二三四五六日天])")
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
# After a time, a comma that starts a new day selector separates rules (", 周末 ..." -> "; Sa,Su ...").
_RULE_COMMA = re.compile(r"(?<=\d)\s*,\s*(?=(?:Mo|Tu|We|Th|Fr|Sa|Su|PH)\b)")


def _normalise(text: str) -> str:
    norm = unicodedata.normalize("NFKC", text).translate(_DASHES).replace("、", ",")
    for word, code in _CHINESE_WORDS:
        norm = norm.replace(word, f" {code} ")
    norm = _CHINESE_DAY.sub(lambda m: f" {_CHINESE_DAY_CODE[m.group(1)]} ", norm)
    norm = re.sub(r"\s*([-,])\s*", r"\1", norm)  # "Mo - Fr" -> "Mo-Fr" after the word swaps
    norm = _RULE_COMMA.sub("; ", norm)
    return re.sub(r"\s+", " ", norm).strip()


def _parse_rules(text: str) -> tuple[_Rule, ...]:
    norm = _normalise(text)
    if not norm:
        raise OpeningHoursError(text, "empty value")
    if "||" in norm:
        raise OpeningHoursError(text, "fallback rules (||) are not supported")
    rules = []
    for part in norm.split(";"):
        part = part.strip()
        if part:
            rules.append(_parse_rule(text, part))
    if not rules:
        raise OpeningHoursError(text, "no rules")
    return tuple(rules)


def _parse_rule(text: str, rule: str) -> _Rule:
    if rule.lower() in _ALWAYS:
        return _Rule(frozenset(), False, True, ((0, 1440),))
    match = re.match(r"^(?P<sel>[^\d]*?)\s*(?P<body>\d.*|off|closed)?$", rule, re.IGNORECASE)
    if match is None:  # pragma: no cover - the pattern matches any string
        raise OpeningHoursError(text, f"cannot read {rule!r}")
    selector = (match["sel"] or "").strip()
    body = (match["body"] or "").strip()
    if not body:
        raise OpeningHoursError(text, f"no times or 'off' in {rule!r}")
    days, ph, every_day = _parse_selector(text, selector)
    intervals: tuple[tuple[int, int], ...]
    if body.lower() in ("off", "closed"):
        intervals = ()
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
            raise OpeningHoursError(text, f"unknown day selector {token!r} (use Mo Tu We Th Fr Sa Su or PH)")
        first = _DAY_INDEX.get(m[1].lower())
        last = _DAY_INDEX.get(m[2].lower()) if m[2] else first
        if first is None or last is None:
            raise OpeningHoursError(text, f"unknown day {token!r} (use Mo Tu We Th Fr Sa Su or PH)")
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
            raise OpeningHoursError(text, f"open end {piece!r} is not supported")
        raise OpeningHoursError(text, f"bad time range {piece!r} (expected HH:MM-HH:MM)")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if m1 > 59 or m2 > 59:
        raise OpeningHoursError(text, f"minutes over 59 in {piece!r}")
    if h1 > 23:
        raise OpeningHoursError(text, f"start hour over 23 in {piece!r}")
    if h2 > 48 or (h2 == 48 and m2):
        raise OpeningHoursError(text, f"end hour over 48 in {piece!r}")
    start = h1 * 60 + m1
    end = h2 * 60 + m2
    if end == start:
        raise OpeningHoursError(text, f"empty time range {piece!r}")
    if end < start:
        end += 1440  # runs past midnight
    if end - start > 1440:
        raise OpeningHoursError(text, f"time range longer than a day {piece!r}")
    return start, end
