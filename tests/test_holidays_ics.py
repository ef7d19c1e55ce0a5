"""Chinese holidays (via the holidays package) and .ics files (parsed back with icalendar)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Calendar

from bot.kit import holidays_cn
from bot.kit.ics import IcsMeeting, meeting_uid, occurrence_ics, series_ics
from bot.kit.recurrence import Schedule, rrule_quarterly_first_monday, rrule_weekly

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_national_day_week_and_first_monday_of_october() -> None:
    assert holidays_cn.holiday_name(dt.date(2026, 10, 1), "en") == "National Day"
    assert holidays_cn.holiday_name(dt.date(2026, 10, 1), "zh") == "国庆节"
    # The first Monday of October 2026 (Oct 5) is inside the National Day week.
    assert holidays_cn.is_holiday(dt.date(2026, 10, 5))
    assert not holidays_cn.is_holiday(dt.date(2026, 10, 12))
    # Oct 6 and 7 are days off too, so the next working day after Oct 5 is Thursday Oct 8.
    assert holidays_cn.next_working_day(dt.date(2026, 10, 5)) == dt.date(2026, 10, 8)
    assert holidays_cn.next_working_day(dt.date(2026, 12, 4)) == dt.date(2026, 12, 7)  # Fri -> Mon


def test_flag_quarterly_occurrences() -> None:
    sched = Schedule.create(
        dt.datetime(2026, 1, 1, 14, 30), dt.timedelta(minutes=90), rrule_quarterly_first_monday()
    )
    occs = sched.occurrences_between(NOW, dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    flags = holidays_cn.flag_occurrences(occs, "en")
    # 2026-04-06 is the observed Tomb-Sweeping Day, 2026-10-05 inside the National Day week.
    assert [(f.occurrence.start.date().isoformat(), f.name) for f in flags] == [
        ("2026-04-06", "Tomb-Sweeping Day (observed)"),
        ("2026-10-05", "National Day (observed)"),
    ]


def _parse(data: bytes) -> tuple[Calendar, list]:
    cal = Calendar.from_ical(data)
    return cal, list(cal.walk("VEVENT"))


def test_series_ics_with_rrule_exdate_and_override() -> None:
    sched = Schedule.create(
        dt.datetime(2026, 3, 16, 9, 0), dt.timedelta(hours=1), rrule_weekly(0), "Europe/Berlin"
    )
    skipped = dt.datetime(2026, 3, 23, 9, 0, tzinfo=BERLIN)
    original = dt.datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN)
    new = dt.datetime(2026, 3, 31, 15, 0, tzinfo=BERLIN)
    sched = sched.skip(skipped).move(original, new)
    meeting = IcsMeeting(7, "小哥议事会", sched, "蒋村驿站", 30.27, 120.08, "每周一", sequence=3)
    cal, events = _parse(series_ics(meeting, NOW))

    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    main, override = events
    assert str(main["UID"]) == str(override["UID"]) == meeting_uid(7)
    assert main["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert main.decoded("DTSTART") == dt.datetime(2026, 3, 16, 9, 0, tzinfo=BERLIN)
    assert main.decoded("DTEND") - main.decoded("DTSTART") == dt.timedelta(hours=1)
    assert main.decoded("DTSTAMP") == NOW
    assert main["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO"
    assert [d.dt for d in main["EXDATE"].dts] == [skipped]
    assert override.decoded("RECURRENCE-ID") == original
    assert override.decoded("DTSTART") == new
    assert int(main["SEQUENCE"]) == 3
    assert str(main["LOCATION"]) == "蒋村驿站"
    assert str(main["SUMMARY"]) == "小哥议事会"

    # Expanding what the file says gives the schedule's occurrences (local 09:00 across DST).
    rule = rrulestr(main["RRULE"].to_ical().decode(), dtstart=main.decoded("DTSTART"))
    excluded = {d.dt for d in main["EXDATE"].dts} | {override.decoded("RECURRENCE-ID")}
    from_file = sorted(
        [d for d in rule.between(NOW, dt.datetime(2026, 4, 14, tzinfo=dt.UTC)) if d not in excluded]
        + [override.decoded("DTSTART")]
    )
    expected = [o.start for o in sched.occurrences_between(NOW, dt.datetime(2026, 4, 14, tzinfo=dt.UTC))]
    assert from_file == expected
    assert [d.astimezone(dt.UTC).hour for d in from_file] == [8, 13, 7, 7]  # CET, moved, CEST, CEST


def test_single_meeting_and_occurrence_in_utc() -> None:
    sched = Schedule.create(dt.datetime(2026, 12, 7, 14, 30), dt.timedelta(minutes=90))
    _, events = _parse(series_ics(IcsMeeting(3, "长桌会", sched), NOW))
    assert len(events) == 1 and "RRULE" not in events[0]
    assert events[0].decoded("DTSTART") == dt.datetime(2026, 12, 7, 14, 30, tzinfo=SH)

    quarterly = Schedule.create(
        dt.datetime(2026, 1, 1, 14, 30), dt.timedelta(minutes=90), rrule_quarterly_first_monday()
    )
    occ = quarterly.next_occurrences(NOW, 1)[0]
    data = occurrence_ics(IcsMeeting(4, "小哥'益'起说", quarterly), occ, NOW)
    assert b"VTIMEZONE" not in data and b"RRULE" not in data
    _, (event,) = _parse(data)
    assert event.decoded("DTSTART") == dt.datetime(2026, 1, 5, 6, 30, tzinfo=dt.UTC)
    assert event.decoded("DTEND") == dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    assert event["DTSTART"].to_ical() == b"20260105T063000Z"


def test_skipped_single_meeting_is_cancelled_in_calendar() -> None:
    sched = Schedule.create(dt.datetime(2026, 12, 7, 14, 30), dt.timedelta(minutes=90))
    _, (event,) = _parse(series_ics(IcsMeeting(3, "x", sched.skip(sched.dtstart)), NOW))
    assert str(event["STATUS"]) == "CANCELLED"


def test_next_working_day_counts_make_up_workdays() -> None:
    """The State Council's 2025 and 2026 schedules: a weekend day worked instead (调休上班) is the next
    working day, a holiday block is skipped whole."""
    cases = {
        # 2025 Spring Festival: Jan 28 - Feb 4 off, Sun Jan 26 and Sat Feb 8 worked.
        "2025-01-24": "2025-01-26",
        "2025-02-03": "2025-02-05",
        "2025-02-07": "2025-02-08",
        # 2025 Labour Day: May 1-5 off, Sun Apr 27 worked.
        "2025-04-25": "2025-04-27",
        # 2025 National Day and Mid-Autumn: Oct 1-8 off, Sun Sep 28 and Sat Oct 11 worked.
        "2025-09-26": "2025-09-28",
        "2025-10-01": "2025-10-09",
        "2025-10-10": "2025-10-11",
        # 2026 New Year: Jan 1-3 off, Sun Jan 4 worked.
        "2026-01-01": "2026-01-04",
        # 2026 Spring Festival: Feb 15-23 off, Sat Feb 14 and Sat Feb 28 worked.
        "2026-02-13": "2026-02-14",
        "2026-02-14": "2026-02-24",
        "2026-02-27": "2026-02-28",
        # 2026 Labour Day: May 1-5 off, Sat May 9 worked.
        "2026-05-08": "2026-05-09",
        # 2026 National Day: Oct 1-7 off, Sun Sep 20 and Sat Oct 10 worked.
        "2026-09-18": "2026-09-20",
        "2026-10-09": "2026-10-10",
    }
    got = {day: holidays_cn.next_working_day(dt.date.fromisoformat(day)).isoformat() for day in cases}
    assert got == cases
    assert holidays_cn.is_working_day(dt.date(2026, 1, 4))  # a Sunday, worked
    assert not holidays_cn.is_working_day(dt.date(2026, 1, 10))  # an ordinary Saturday
