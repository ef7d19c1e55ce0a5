"""Chinese public holidays (mainland), from the maintained ``holidays`` package.

``holidays.China`` knows the statutory holidays including the extra days off of the Spring Festival
and National Day weeks (``Day off (substituted from ...)``) for the years the State Council has
published; further years fall back to the fixed rules. We only ask it and never hand-code dates.

A meeting occurrence is "on a holiday" when its local start date (in the meeting's own zone) is one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays

from bot.kit.recurrence import Occurrence

#: Our language codes -> the package's localisation codes.
_PACKAGE_LANGUAGE = {"zh": "zh_CN", "en": "en_US"}


@lru_cache(maxsize=64)
def _calendar(year: int, lang: str) -> holidays.HolidayBase:
    return holidays.China(years=year, language=_PACKAGE_LANGUAGE.get(lang, "zh_CN"))


def holiday_name(day: dt.date, lang: str = "zh") -> str | None:
    """The holiday's name on ``day`` in ``lang`` (zh or en), or None for an ordinary day."""
    return _calendar(day.year, lang).get(day)


def is_holiday(day: dt.date) -> bool:
    return day in _calendar(day.year, "zh")


def next_working_day(day: dt.date) -> dt.date:
    """The first day after ``day`` that is neither a weekend nor a public holiday."""
    candidate = day + dt.timedelta(days=1)
    for _ in range(60):  # the longest Chinese holiday block is about 9 days
        if candidate.weekday() < 5 and not is_holiday(candidate):
            return candidate
        candidate += dt.timedelta(days=1)
    raise RuntimeError(f"no working day within 60 days after {day}")  # pragma: no cover


@dataclass(frozen=True)
class HolidayFlag:
    occurrence: Occurrence
    name: str


def flag_occurrences(occurrences: Iterable[Occurrence], lang: str = "zh") -> list[HolidayFlag]:
    """The occurrences whose local start date is a Chinese public holiday, with the holiday's name."""
    flags = []
    for occ in occurrences:
        name = holiday_name(occ.start.date(), lang)
        if name:
            flags.append(HolidayFlag(occ, name))
    return flags
