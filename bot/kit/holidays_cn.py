"""Chinese public holidays (mainland), from the maintained ``holidays`` package.

``holidays.China`` knows the statutory holidays including the extra days off of the Spring Festival
and National Day weeks (``Day off (substituted from ...)``) for the years the State Council has
published, and the make-up workdays (调休: a Saturday or Sunday that is worked instead, e.g. Sun
2026-01-04), its ``weekend_workdays``; further years fall back to the fixed rules. We only ask it
and never hand-code dates.

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


def is_working_day(day: dt.date) -> bool:
    """A weekday that is not a public holiday, or a weekend day the State Council made a make-up
    workday (调休上班)."""
    return _calendar(day.year, "zh").is_working_day(day)


def next_working_day(day: dt.date) -> dt.date:
    """The first working day after ``day``: a make-up workday (调休) on a weekend counts, as in the
    State Council's schedule (after 2026-01-01 comes Sun 2026-01-04)."""
    candidate = day + dt.timedelta(days=1)
    for _ in range(60):  # the longest Chinese holiday block is about 9 days
        if is_working_day(candidate):
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
