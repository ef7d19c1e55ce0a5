"""Unit tests for bot.recurrence: presets, validation, expansion, DST, skip and move."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from bot.core.i18n import Catalog
from bot.kit.recurrence import (
    RecurrenceError,
    Schedule,
    attach_zone,
    describe,
    normalize_rrule,
    parse_spoken_rule,
    rrule_monthly_day,
    rrule_monthly_nth_weekday,
    rrule_quarterly_first_monday,
    rrule_weekly,
    zone_name,
)

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
SLOT = timedelta(minutes=90)


def test_quarterly_first_monday_equals_dateutil_over_two_years() -> None:
    rule = rrule_quarterly_first_monday()
    sched = Schedule.create(datetime(2026, 1, 1, 14, 30), SLOT, rule, "Asia/Shanghai")
    assert sched.dtstart == datetime(2026, 1, 5, 14, 30, tzinfo=SH)  # snapped to the first Monday

    got = sched.occurrences_between(datetime(2026, 1, 1, tzinfo=SH), datetime(2028, 1, 1, tzinfo=SH))
    reference = rrulestr(f"DTSTART;TZID=Asia/Shanghai:20260105T143000\nRRULE:{rule}", tzinfos={})
    ref = [
        d.replace(tzinfo=SH)
        for d in rrulestr(f"RRULE:{rule}", dtstart=datetime(2026, 1, 5, 14, 30)).between(
            datetime(2026, 1, 1), datetime(2028, 1, 1), inc=True
        )
    ]
    assert [o.start for o in got] == ref
    assert [o.start for o in got] == list(
        reference.between(datetime(2026, 1, 1, tzinfo=SH), datetime(2028, 1, 1, tzinfo=SH), inc=True)
    )
    assert len(got) == 8
    assert [(o.start.month, o.start.day) for o in got[:4]] == [(1, 5), (4, 6), (7, 6), (10, 5)]
    assert all(o.start.weekday() == 0 and o.start.day <= 7 for o in got)
    assert all(o.end - o.start == SLOT for o in got)
    assert got[0].start_utc == datetime(2026, 1, 5, 6, 30, tzinfo=UTC)


def test_quarterly_snaps_when_started_mid_quarter() -> None:
    sched = Schedule.create(datetime(2026, 2, 10, 14, 30), SLOT, rrule_quarterly_first_monday())
    assert sched.dtstart == datetime(2026, 4, 6, 14, 30, tzinfo=SH)


def test_berlin_weekly_keeps_local_time_across_dst() -> None:
    sched = Schedule.create(datetime(2026, 3, 16, 9, 0), timedelta(hours=1), rrule_weekly(0), "Europe/Berlin")
    occ = sched.occurrences_between(datetime(2026, 3, 16, tzinfo=BERLIN), datetime(2026, 4, 7, tzinfo=BERLIN))
    assert [o.start.date().isoformat() for o in occ] == [
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
        "2026-04-06",
    ]
    assert all((o.start.hour, o.start.minute) == (9, 0) for o in occ)
    # DST starts 2026-03-29: offset +01:00 before, +02:00 after.
    assert occ[1].start_utc.hour == 8
    assert occ[2].start_utc.hour == 7
    # and back in autumn (DST ends 2026-10-25)
    autumn = sched.occurrences_between(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    assert [o.start_utc.hour for o in autumn] == [7, 8]
    assert all(o.start.hour == 9 for o in autumn)


def test_nonexistent_and_ambiguous_local_times() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin: shifted forward to 03:30 CEST.
    gap = attach_zone(datetime(2026, 3, 29, 2, 30), BERLIN)
    assert (gap.hour, gap.minute) == (3, 30) and gap.utcoffset() == timedelta(hours=2)
    # 02:30 happens twice on 2026-10-25: the first (CEST) instance is used.
    amb = attach_zone(datetime(2026, 10, 25, 2, 30), BERLIN)
    assert amb.utcoffset() == timedelta(hours=2)
    sched = Schedule.create(datetime(2026, 3, 22, 2, 30), SLOT, "FREQ=WEEKLY;BYDAY=SU", "Europe/Berlin")
    occ = sched.next_occurrences(datetime(2026, 3, 23, tzinfo=UTC), 2)
    assert occ[0].start.hour == 3 and occ[0].start_utc == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert occ[1].start.hour == 2
    # the shifted occurrence can still be skipped or moved by its real start
    assert sched.is_rule_instance(occ[0].start)
    after_skip = sched.skip(occ[0].start).next_occurrences(datetime(2026, 3, 23, tzinfo=UTC), 1)
    assert after_skip[0].start == occ[1].start
    moved = sched.move(occ[0].start, datetime(2026, 3, 29, 10, 0, tzinfo=BERLIN))
    first = moved.next_occurrences(datetime(2026, 3, 23, tzinfo=UTC), 1)[0]
    assert first.start.hour == 10 and first.original_start == occ[0].start


def test_skip_and_move_single_occurrence() -> None:
    sched = Schedule.create(datetime(2026, 1, 5, 14, 30), SLOT, rrule_quarterly_first_monday())
    oct5 = datetime(2026, 10, 5, 14, 30, tzinfo=SH)
    skipped = sched.skip(oct5)
    starts = [o.start for o in skipped.next_occurrences(datetime(2026, 7, 7, tzinfo=SH), 2)]
    assert starts == [datetime(2027, 1, 4, 14, 30, tzinfo=SH), datetime(2027, 4, 5, 14, 30, tzinfo=SH)]

    new = datetime(2026, 10, 12, 15, 0, tzinfo=SH)
    moved = sched.move(oct5, new)
    occ = moved.next_occurrences(datetime(2026, 7, 7, tzinfo=SH), 2)
    assert occ[0].start == new and occ[0].original_start == oct5 and occ[0].moved
    assert occ[0].end == new + SLOT
    assert not occ[1].moved
    assert moved.original_of(new) == oct5
    # skipping a moved occurrence removes the move
    both = moved.skip(oct5)
    assert both.moves == () and both.exdates == (oct5,)
    # moving back to its slot undoes the move
    assert moved.move(oct5, oct5).moves == ()
    # a time that is not an instance of the rule cannot be skipped
    with pytest.raises(RecurrenceError) as err:
        sched.skip(datetime(2026, 10, 6, 14, 30, tzinfo=SH))
    assert err.value.code == "not_an_occurrence"


def test_exdate_given_in_utc_matches() -> None:
    sched = Schedule.create(datetime(2026, 12, 1, 9, 0), SLOT, rrule_weekly(1))
    skip_utc = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    occ = sched.skip(skip_utc).next_occurrences(datetime(2026, 12, 2, tzinfo=UTC), 1)
    assert occ[0].start == datetime(2026, 12, 15, 9, 0, tzinfo=SH)


def test_once() -> None:
    sched = Schedule.create(datetime(2026, 12, 1, 14, 30), SLOT)
    assert not sched.is_recurring
    assert [o.start for o in sched.next_occurrences(datetime(2026, 1, 1, tzinfo=UTC), 5)] == [
        datetime(2026, 12, 1, 14, 30, tzinfo=SH)
    ]
    assert sched.next_occurrences(datetime(2026, 12, 2, tzinfo=UTC), 5) == []
    assert sched.skip(sched.dtstart).next_occurrences(datetime(2026, 1, 1, tzinfo=UTC), 1) == []


def test_occurrences_between_is_half_open() -> None:
    sched = Schedule.create(datetime(2026, 12, 7, 14, 30), SLOT, rrule_weekly(0))
    first = sched.dtstart
    assert [o.start for o in sched.occurrences_between(first, first + timedelta(days=7))] == [first]
    assert sched.next_occurrences(first, 1)[0].start == first + timedelta(days=7)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (rrule_weekly(2), "FREQ=WEEKLY;BYDAY=WE"),
        (rrule_weekly(4, 2), "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
        (rrule_monthly_day(15), "FREQ=MONTHLY;BYMONTHDAY=15"),
        (rrule_monthly_day(-1), "FREQ=MONTHLY;BYMONTHDAY=-1"),
        (rrule_monthly_nth_weekday(2, 1), "FREQ=MONTHLY;BYDAY=2TU"),
        (rrule_monthly_nth_weekday(-1, 4), "FREQ=MONTHLY;BYDAY=-1FR"),
    ],
)
def test_presets(rule: str, expected: str) -> None:
    assert rule == expected
    assert normalize_rrule(rule) == expected


def test_last_friday_and_every_two_weeks_expand() -> None:
    last_fri = Schedule.create(datetime(2026, 1, 1, 15, 0), SLOT, rrule_monthly_nth_weekday(-1, 4))
    days = [o.start.day for o in last_fri.next_occurrences(datetime(2026, 1, 1, tzinfo=UTC), 3)]
    assert days == [30, 27, 27]
    biweekly = Schedule.create(datetime(2026, 12, 2, 15, 0), SLOT, rrule_weekly(2, 2))
    got = [o.start.day for o in biweekly.next_occurrences(datetime(2026, 12, 1, tzinfo=UTC), 3)]
    assert got == [2, 16, 30]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("FREQ=HOURLY", "too_frequent"),
        ("FREQ=FOO", "syntax"),
        ("BYDAY=MO", "no_freq"),
        ("FREQ=WEEKLY;FOO=1", "unknown_part"),
        ("FREQ=WEEKLY;BYDAY=XX", "syntax"),
        ("FREQ=WEEKLY;COUNT=3;UNTIL=20270101T000000Z", "until_and_count"),
        ("FREQ=WEEKLY;BYDAY=MO;BYDAY=TU", "duplicate_part"),
        ("DTSTART:20260101T000000\nRRULE:FREQ=WEEKLY", "one_line"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "no_occurrences"),
        ("FREQ=WEEKLY;UNTIL=2026", "bad_until"),
        ("FREQ", "syntax"),
    ],
)
def test_custom_rrule_errors(text: str, code: str) -> None:
    with pytest.raises(RecurrenceError) as err:
        Schedule.create(datetime(2026, 1, 1, 14, 30), SLOT, text)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("FREQ=WEEKLY;INTERVAL=0", "bad_number"),  # dateutil loops forever on it
        ("FREQ=WEEKLY;INTERVAL=-1", "bad_number"),  # dateutil fails mid-expansion (plain ValueError)
        ("FREQ=WEEKLY;INTERVAL=1_0", "bad_number"),
        ("FREQ=WEEKLY;COUNT=0", "bad_number"),
        ("FREQ=DAILY;BYHOUR=8,9,10;BYMINUTE=0,10,20", "time_part"),  # hundreds of meetings a day
        ("FREQ=DAILY;BYMINUTE=0,30", "time_part"),
        ("FREQ=WEEKLY;BYSECOND=5", "time_part"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "bad_value"),  # dateutil: every day
        ("FREQ=MONTHLY;BYMONTHDAY=32", "bad_value"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "bad_value"),
        ("FREQ=YEARLY;BYMONTH=13", "bad_value"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=400", "bad_value"),
        ("FREQ=MONTHLY;BYDAY=6MO", "bad_value"),
        ("FREQ=WEEKLY;BYDAY=1MO", "bad_value"),  # an nth weekday needs MONTHLY or YEARLY
        ("FREQ=WEEKLY;WKST=XX", "bad_value"),
        ("FREQ=YEARLY;BYYEARDAY=100", "unsupported_part"),
        ("FREQ=YEARLY;BYWEEKNO=20", "unsupported_part"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "no_occurrences"),  # 3.4 s of dateutil before
        ("FREQ=MONTHLY;BYMONTH=4,6;BYMONTHDAY=31", "no_occurrences"),
    ],
)
def test_custom_rrule_rejected_before_expansion(text: str, code: str) -> None:
    with pytest.raises(RecurrenceError) as err:
        normalize_rrule(text)  # first, so that a missing check fails here instead of hanging below
    assert err.value.code == code
    with pytest.raises(RecurrenceError) as err:
        Schedule.create(datetime(2026, 3, 4, 14, 30), SLOT, text)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "no_occurrences"),  # no month has six Mondays
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TH", "no_occurrences"),  # every 7 days from a Wednesday
        ("FREQ=WEEKLY;BYMONTH=4;BYMONTHDAY=30;BYDAY=MO;INTERVAL=52", "no_occurrences"),
        ("FREQ=YEARLY;BYMONTH=2", "no_occurrences"),  # the 30th (from the start) in February
        ("FREQ=YEARLY;INTERVAL=20", "too_sparse"),
        ("FREQ=YEARLY;INTERVAL=20;COUNT=3", "too_sparse"),
        ("FREQ=DAILY;INTERVAL=97;BYMONTH=2;BYMONTHDAY=29", "no_occurrences"),
    ],
)
def test_impossible_or_sparse_rules_rejected_quickly(text: str, code: str) -> None:
    began = time.perf_counter()
    with pytest.raises(RecurrenceError) as err:
        Schedule.create(datetime(2026, 9, 30, 14, 30), SLOT, text)  # a Wednesday
    assert err.value.code == code
    assert time.perf_counter() - began < 0.5  # never dateutil's search up to the year 9999


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", datetime(2028, 2, 29, 14, 30), datetime(2032, 2, 29, 14, 30)),
        ("FREQ=MONTHLY;BYMONTHDAY=-31", datetime(2026, 10, 1, 14, 30), datetime(2026, 12, 1, 14, 30)),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1", datetime(2026, 10, 26, 14, 30), datetime(2026, 11, 30, 14, 30)),
        ("FREQ=YEARLY;BYDAY=20MO", datetime(2027, 5, 17, 14, 30), datetime(2028, 5, 15, 14, 30)),
        ("FREQ=YEARLY;INTERVAL=20;COUNT=1", datetime(2026, 9, 30, 14, 30), None),
        ("FREQ=WEEKLY;INTERVAL=2;COUNT=2", datetime(2026, 9, 30, 14, 30), datetime(2026, 10, 14, 14, 30)),
    ],
)
def test_unusual_but_valid_custom_rules(text: str, first: datetime, second: datetime | None) -> None:
    sched = Schedule.create(datetime(2026, 9, 30, 14, 30), SLOT, text)
    found = sched.next_occurrences(datetime(2026, 9, 30, tzinfo=SH), 2)
    assert [o.start.replace(tzinfo=None) for o in found] == [first, *([second] if second else [])]


def test_stored_rule_without_the_checks_fails_instead_of_hanging() -> None:
    """A rule saved before validation existed raises RecurrenceError (not a frozen event loop)."""
    with pytest.raises(RecurrenceError):
        normalize_rrule("FREQ=WEEKLY;INTERVAL=0")
    sched = Schedule(datetime(2026, 3, 4, 14, 30, tzinfo=SH), SLOT, "FREQ=WEEKLY;INTERVAL=0")
    with pytest.raises(RecurrenceError) as err:
        sched.next_occurrences(datetime(2026, 3, 1, tzinfo=SH), 2)
    assert err.value.code == "bad_number"


def test_custom_rrule_normalised_and_until_utc() -> None:
    sched = Schedule.create(
        datetime(2026, 1, 1, 14, 30), SLOT, "rrule:freq=monthly; byday=1mo; until=20260401", "Asia/Shanghai"
    )
    assert sched.rrule == "FREQ=MONTHLY;BYDAY=1MO;UNTIL=20260401T155959Z"
    starts = sched.occurrences_between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert [o.start.month for o in starts] == [1, 2, 3]
    with pytest.raises(RecurrenceError) as err:
        Schedule.create(datetime(2026, 1, 1), SLOT, "FREQ=WEEKLY", "Mars/Olympus")
    assert err.value.code == "bad_timezone"


def test_schedule_requires_aware_and_positive_duration() -> None:
    with pytest.raises(ValueError):
        Schedule(datetime(2026, 1, 1), SLOT)
    with pytest.raises(ValueError):
        Schedule(datetime(2026, 1, 1, tzinfo=SH), timedelta(0))


@pytest.mark.parametrize(
    ("rule", "zh", "en"),
    [
        (None, "单次：2026年1月5日（周一） 14:30", "once: Mon 2026/1/5 14:30"),
        (rrule_weekly(0), "每周一 14:30", "every Monday at 14:30"),
        (rrule_weekly(4, 2), "每2周的周五 14:30", "every 2 weeks on Friday at 14:30"),
        ("FREQ=WEEKLY;BYDAY=FR,MO", "每周一和周五 14:30", "every Monday and Friday at 14:30"),
        (rrule_monthly_day(15), "每月15日 14:30", "monthly on day 15 at 14:30"),
        (rrule_monthly_day(-1), "每月最后一天 14:30", "monthly on the last day at 14:30"),
        (rrule_monthly_nth_weekday(2, 1), "每月第二个周二 14:30", "monthly on the second Tuesday at 14:30"),
        (rrule_quarterly_first_monday(), "每季度第一个周一 14:30", "first Monday of each quarter at 14:30"),
        ("FREQ=DAILY;INTERVAL=3;COUNT=5", "每3天 14:30，共5次", "every 3 days at 14:30, 5 times"),
        (
            "FREQ=MONTHLY;BYDAY=1MO;UNTIL=20270101",
            "每月第一个周一 14:30，至2027年1月1日（周五）",
            "monthly on the first Monday at 14:30, until Fri 2027/1/1",
        ),
        (
            "FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO",
            "自定义规则 FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO，14:30",
            "custom rule FREQ=MONTHLY;INTERVAL=2;BYDAY=1MO, at 14:30",
        ),
    ],
)
def test_describe_in_both_languages(rule: str | None, zh: str, en: str) -> None:
    catalog = Catalog.load()
    start = datetime(2026, 1, 5, 14, 30) if rule is None else datetime(2026, 1, 1, 14, 30)
    sched = Schedule.create(start, SLOT, rule)
    assert describe(sched, functools.partial(catalog.t, "zh")) == zh
    assert describe(sched, functools.partial(catalog.t, "en")) == en


def test_zone_names_typed_by_users() -> None:
    assert zone_name(" europe/berlin ") == "Europe/Berlin"
    assert zone_name("America/New York") == "America/New_York"
    assert zone_name("UTC") == "UTC"
    for bad in ("Mars/Olympus_Mons", "", "localtime", "../../etc/passwd", "Asia/" + "x" * 80):
        with pytest.raises(RecurrenceError) as err:
            zone_name(bad)
        assert err.value.code == "bad_timezone"


@pytest.mark.parametrize(
    ("text", "rule", "rest"),
    [
        ("每季度第一个周一 14:30", "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1MO", "14:30"),
        ("first Monday of each quarter at 14:30", "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1MO", "at 14:30"),
        ("every quarter on the first monday 14:30", "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1MO", "14:30"),
        ("每周三晚上八点", "FREQ=WEEKLY;BYDAY=WE", "晚上八点"),
        ("every Wednesday 8pm", "FREQ=WEEKLY;BYDAY=WE", "8pm"),
        ("每周一和周四 19:00", "FREQ=WEEKLY;BYDAY=MO,TH", "19:00"),
        ("every monday and thursday 7pm", "FREQ=WEEKLY;BYDAY=MO,TH", "7pm"),
        ("每两周的周五 19:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", "19:00"),
        ("隔周周三 晚上8点", "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE", "晚上8点"),
        ("every other friday 7pm", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", "7pm"),
        ("every 2 weeks on monday 10am", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "10am"),
        ("每月十五号晚上七点", "FREQ=MONTHLY;BYMONTHDAY=15", "晚上七点"),
        ("the 15th of every month at 7pm", "FREQ=MONTHLY;BYMONTHDAY=15", "at 7pm"),
        ("每月最后一天 18:00", "FREQ=MONTHLY;BYMONTHDAY=-1", "18:00"),
        ("每月第二个周二下午三点", "FREQ=MONTHLY;BYDAY=2TU", "下午三点"),
        ("the second tuesday of each month 3pm", "FREQ=MONTHLY;BYDAY=2TU", "3pm"),
        ("每月最后一个周五 15:00", "FREQ=MONTHLY;BYDAY=-1FR", "15:00"),
        ("每天早上9点", "FREQ=DAILY", "早上9点"),
        ("every day 9am", "FREQ=DAILY", "9am"),
        ("每个工作日 9:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "9:00"),
        ("every weekday 9am", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "9am"),
    ],
)
def test_rules_said_in_words(text: str, rule: str, rest: str) -> None:
    assert parse_spoken_rule(text) == (rule, rest)


@pytest.mark.parametrize("text", ["12月7日 14:30", "下周三下午三点", "next wednesday 3pm", "周一 9点"])
def test_a_date_is_not_a_rule(text: str) -> None:
    assert parse_spoken_rule(text) is None


def test_a_day_that_does_not_exist_is_refused() -> None:
    with pytest.raises(RecurrenceError):
        parse_spoken_rule("每月32号 9:00")
