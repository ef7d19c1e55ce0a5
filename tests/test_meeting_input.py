"""Reading start times, durations and reminder offsets typed in the scheduling conversation."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from bot.core.i18n import Catalog
from bot.kit.timeparse import parse_time
from bot.meetings.input import InputError, parse_duration, parse_offsets

NOW = dt.datetime(2026, 11, 25, 10, 0)  # a Wednesday, local wall time
MARCH = dt.datetime(2026, 3, 4, 10, 0)  # also a Wednesday
TZ = ZoneInfo("Asia/Shanghai")


def parse_when(text: str, now_local: dt.datetime) -> dt.datetime:
    """The time parser as the scheduling step uses it: wall time in the meeting's zone in and out."""
    return parse_time(text, now_local.replace(tzinfo=TZ), TZ).astimezone(TZ).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("12/7 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("12月7日 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("2026年12月7日下午2点半", dt.datetime(2026, 12, 7, 14, 30)),
        ("12月7号 下午2点", dt.datetime(2026, 12, 7, 14, 0)),
        ("１２月７日　１４：３０", dt.datetime(2026, 12, 7, 14, 30)),
        ("7 Dec 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("12-07 2:30pm", dt.datetime(2026, 12, 7, 14, 30)),
        ("1月5日 14:30", dt.datetime(2027, 1, 5, 14, 30)),  # no year: the next 5 January
        ("14:30", dt.datetime(2026, 11, 25, 14, 30)),
        ("9:00", dt.datetime(2026, 11, 26, 9, 0)),  # today's 09:00 has passed
        ("明天下午2点半", dt.datetime(2026, 11, 26, 14, 30)),
        ("后天 9:00", dt.datetime(2026, 11, 27, 9, 0)),
        ("周一 14:30", dt.datetime(2026, 11, 30, 14, 30)),
        ("下周三 14:30", dt.datetime(2026, 12, 2, 14, 30)),
        ("周三 15:00", dt.datetime(2026, 11, 25, 15, 0)),
        ("周三 9:00", dt.datetime(2026, 12, 2, 9, 0)),
        ("星期日下午3点", dt.datetime(2026, 11, 29, 15, 0)),
    ],
)
def test_parse_when(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow 14:30", dt.datetime(2026, 11, 26, 14, 30)),
        ("today 15:00", dt.datetime(2026, 11, 25, 15, 0)),
        ("tomorrow at 14:30", dt.datetime(2026, 11, 26, 14, 30)),
        ("Tomorrow 2:30 PM", dt.datetime(2026, 11, 26, 14, 30)),
        ("day after tomorrow 9:00", dt.datetime(2026, 11, 27, 9, 0)),
        ("tmr 9am", dt.datetime(2026, 11, 26, 9, 0)),
        ("next monday 14:30", dt.datetime(2026, 11, 30, 14, 30)),
        ("next friday at 9:30am", dt.datetime(2026, 12, 4, 9, 30)),  # Friday of next week, like 下周五
        ("friday 3pm", dt.datetime(2026, 11, 27, 15, 0)),  # the coming Friday, like 周五
        ("wed 9:00", dt.datetime(2026, 12, 2, 9, 0)),  # today's has passed
        ("3pm", dt.datetime(2026, 11, 25, 15, 0)),
        ("8am", dt.datetime(2026, 11, 26, 8, 0)),
        ("12am", dt.datetime(2026, 11, 26, 0, 0)),
        ("12pm", dt.datetime(2026, 11, 25, 12, 0)),
        ("7 dec 2pm", dt.datetime(2026, 12, 7, 14, 0)),
        ("on 7 Dec at 3 p.m.", dt.datetime(2026, 12, 7, 15, 0)),
    ],
)
def test_parse_when_english(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.7 14:30", dt.datetime(2026, 12, 7, 14, 30)),  # month.day: 7 December, not 12 March
        ("3.20 14:30", dt.datetime(2026, 3, 20, 14, 30)),
        ("7.12", None),
        ("7.12 9:00", dt.datetime(2026, 7, 12, 9, 0)),
        ("2026.12.7 14:30", dt.datetime(2026, 12, 7, 14, 30)),
        ("1.2 14:30", dt.datetime(2027, 1, 2, 14, 30)),  # passed two months ago: next year
    ],
)
def test_parse_when_dotted_month_day(text: str, expected: dt.datetime | None) -> None:
    if expected is None:
        with pytest.raises(InputError):
            parse_when(text, MARCH)  # still needs a time of day
    else:
        assert parse_when(text, MARCH) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中午1点", dt.datetime(2026, 11, 25, 13, 0)),
        ("中午12点半", dt.datetime(2026, 11, 25, 12, 30)),
        ("明天中午2点", dt.datetime(2026, 11, 26, 14, 0)),
        ("晚上12点", dt.datetime(2026, 11, 26, 0, 0)),  # midnight at the end of today
        ("明天晚上12点", dt.datetime(2026, 11, 27, 0, 0)),
        ("晚上8点", dt.datetime(2026, 11, 25, 20, 0)),
        ("凌晨12点", dt.datetime(2026, 11, 26, 0, 0)),
    ],
)
def test_parse_when_noon_and_midnight(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("9999-12-31 23:59", "too_far"),
        ("2028-12-01 10:00", "too_far"),
        ("14pm", "when"),
        ("20.3 14:00", "when"),  # no 20th month
        ("明天 12月7日 14:30", "when"),  # which one?
    ],
)
def test_parse_when_refuses_far_or_unclear(text: str, code: str) -> None:
    with pytest.raises(InputError) as err:
        parse_when(text, NOW)
    assert err.value.code == code
    assert parse_when("2027-11-25 10:00", NOW) == dt.datetime(2027, 11, 25, 10, 0)  # within two years


def test_input_hints_in_each_language() -> None:
    catalog = Catalog.load()
    english = catalog.t("en", "meetings.input.when")
    assert not re.search(r"[\u4e00-\u9fff]", english)  # no "明天 14:30" for English speakers
    assert "tomorrow" in english
    assert "两年" in catalog.t("zh", "meetings.input.too_far")
    assert "two years" in catalog.t("en", "meetings.input.too_far")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "when"),
        ("明天", "when"),
        ("12月7日", "when"),
        ("hello", "when"),
        ("2025-01-01 10:00", "past"),
        ("今天 9:00", "past"),
    ],
)
def test_parse_when_errors(text: str, code: str) -> None:
    with pytest.raises(InputError) as err:
        parse_when(text, NOW)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("90m", 90),
        ("1.5h", 90),
        ("1h30m", 90),
        ("1小时30分钟", 90),
        ("1个半小时", 90),
        ("半小时", 30),
        ("2小时", 120),
    ],
)
def test_parse_duration(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["0", "25h", "abc", "1.2m", "", "1x"])
def test_parse_duration_errors(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "offsets"),
    [
        ("1d 1h", (1440, 60)),
        ("1天,1小时", (1440, 60)),
        ("1440, 60", (1440, 60)),
        ("30m", (30,)),
        ("1d,1d", (1440,)),
        ("2h、30分钟", (120, 30)),
    ],
)
def test_parse_offsets(text: str, offsets: tuple[int, ...]) -> None:
    assert parse_offsets(text) == offsets


@pytest.mark.parametrize("text", ["", "x", "31d", "0"])
def test_parse_offsets_errors(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_offsets(text)
    assert err.value.code == "offsets"


@pytest.mark.parametrize(
    ("text", "now", "code"),
    [
        ("11-28 10:00", dt.datetime(2026, 11, 29, 9, 0), "past_date"),  # yesterday: not 2027-11-28
        ("11月28日 10:00", dt.datetime(2026, 11, 29, 9, 0), "past_date"),
        ("3.1 14:30", MARCH, "past_date"),
        ("11-25 9:00", NOW, "past_date"),  # today's date, an hour ago
        ("10-1 9:00", NOW, "past_date"),  # under two months ago
    ],
)
def test_recently_passed_date_without_year_is_refused(text: str, now: dt.datetime, code: str) -> None:
    with pytest.raises(InputError) as err:
        parse_when(text, now)
    assert err.value.code == code
    catalog = Catalog.load()
    assert "这个时间已经过去了" in catalog.t("zh", "meetings.input.past_date")


def test_date_without_year_further_back_means_next_year() -> None:
    late_november = dt.datetime(2026, 11, 29, 9, 0)
    assert parse_when("1-5 10:00", late_november) == dt.datetime(2027, 1, 5, 10, 0)
    assert parse_when("9-1 10:00", late_november) == dt.datetime(2027, 9, 1, 10, 0)
    # a time alone that passed today is tomorrow (deliberate rule, see test_parse_when_english)
    assert parse_when("8:00", late_november) == dt.datetime(2026, 11, 30, 8, 0)
