import datetime as dt
import zoneinfo

import pytest

from bot.kit.opening_hours import OpeningHours, OpeningHoursError, parse_opening_hours

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0, month: int = 11) -> dt.datetime:
    # 2026-11-23 is a Monday.
    return dt.datetime(2026, month, day, hh, mm, tzinfo=TZ)


MON, TUE, WED, THU, FRI, SAT, SUN = range(23, 30)


def test_always_open():
    for text in ("24/7", " 24/7 ", "24小时", "全天"):
        hours = parse_opening_hours(text)
        status = hours.status(at(MON, 3))
        assert status.is_open and status.changes_at is None and status.always_open


def test_weekdays_and_weekend():
    hours = parse_opening_hours("Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00")
    assert not hours.is_open(at(MON, 8, 59))
    assert hours.next_change(at(MON, 8, 59)) == at(MON, 9)
    assert hours.is_open(at(MON, 9))
    assert hours.next_change(at(MON, 12)) == at(MON, 21)
    assert not hours.is_open(at(MON, 21))
    assert hours.is_open(at(SAT, 17, 59))
    assert not hours.is_open(at(SAT, 9, 30))
    assert hours.next_change(at(FRI, 22)) == at(SAT, 10)


def test_several_ranges_a_day():
    hours = parse_opening_hours("08:00-12:00,13:00-20:00")
    assert hours.is_open(at(WED, 11, 59))
    assert not hours.is_open(at(WED, 12, 30))
    assert hours.next_change(at(WED, 12, 30)) == at(WED, 13)
    assert hours.next_change(at(WED, 21)) == at(THU, 8)


def test_span_past_midnight():
    hours = parse_opening_hours("Mo-Fr 22:00-06:00")
    assert hours.is_open(at(MON, 23))
    assert hours.is_open(at(TUE, 5, 59))
    assert hours.next_change(at(TUE, 1)) == at(TUE, 6)
    assert not hours.is_open(at(MON, 5))  # Sunday night is not in Mo-Fr
    assert hours.is_open(at(SAT, 3))  # Friday night runs into Saturday morning
    assert not hours.is_open(at(SAT, 23))
    assert hours.next_change(at(SAT, 23)) == dt.datetime(2026, 11, 30, 22, tzinfo=TZ)


def test_joined_midnight_spans_merge():
    hours = parse_opening_hours("Mo-Su 18:00-24:00; Mo-Su 00:00-02:00")
    # the second rule replaces the first for all days: only 00:00-02:00 remains
    assert not hours.is_open(at(MON, 19))
    hours = parse_opening_hours("18:00-26:00")
    assert hours.is_open(at(TUE, 1))
    assert hours.next_change(at(MON, 23)) == at(TUE, 2)
    full = parse_opening_hours("Mo-Su 00:00-24:00")
    assert full.status(at(MON, 12)).always_open


def test_later_rule_overrides_and_off():
    hours = parse_opening_hours("Mo-Su 08:00-20:00; Su off")
    assert hours.is_open(at(SAT, 12))
    assert not hours.is_open(at(SUN, 12))
    assert hours.next_change(at(SAT, 21)) == dt.datetime(2026, 11, 30, 8, tzinfo=TZ)
    closed = parse_opening_hours("off")
    assert closed.status(at(MON, 12)).is_open is False
    assert closed.next_change(at(MON, 12)) is None


def test_wrapping_day_range_and_lists():
    hours = parse_opening_hours("Fr-Mo 10:00-12:00")
    assert [hours.is_open(at(d, 11)) for d in range(MON, SUN + 1)] == [
        True,
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    hours = parse_opening_hours("Mo,We,Fr 10:00-12:00")
    assert [hours.is_open(at(d, 11)) for d in range(MON, SUN + 1)] == [
        True,
        False,
        True,
        False,
        True,
        False,
        False,
    ]


def test_public_holidays():
    hours = OpeningHours.parse("Mo-Su 09:00-18:00; PH off", is_holiday=lambda d: d == dt.date(2026, 11, 25))
    assert hours.is_open(at(TUE, 10))
    assert not hours.is_open(at(WED, 10))
    assert hours.next_change(at(TUE, 19)) == at(THU, 9)
    real = parse_opening_hours("Mo-Su 09:00-18:00; PH off")
    assert not real.is_open(dt.datetime(2026, 10, 1, 10, tzinfo=TZ))  # National Day
    assert real.is_open(dt.datetime(2026, 10, 12, 10, tzinfo=TZ))
    # a later rule wins over PH off
    assert parse_opening_hours("PH off; Mo-Su 09:00-18:00").is_open(dt.datetime(2026, 10, 1, 10, tzinfo=TZ))


def test_tolerant_spelling():
    hours = parse_opening_hours("mo-fr 9:00–21:00；sa，su 10：00-18:00")
    assert hours.is_open(at(MON, 9))
    assert hours.is_open(at(SUN, 10))


def test_naive_datetimes_work_as_wall_clock():
    hours = parse_opening_hours("Mo-Fr 09:00-21:00")
    assert hours.next_change(dt.datetime(2026, 11, 23, 8)) == dt.datetime(2026, 11, 23, 9)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ;  ", "no rules"),
        ("Mo-Fr", "no times"),
        ("Xx 09:00-10:00", "unknown day"),
        ("Mo-Fr 9-21", "bad time range"),
        ("Mo-Fr 09:00-25:61", "minutes over 59"),
        ("Mo-Fr 25:00-26:00", "start hour"),
        ("Mo 09:00-09:00", "empty time range"),
        ("Mo 18:00+", "open end"),
        ("Mo-Fr 09:00-18:00 || PH off", "fallback"),
        ("Jan 09:00-10:00", "unknown day"),
        ("sunrise-sunset", "no times"),
        ("Mo 08:00-49:00", "end hour"),
    ],
)
def test_errors_have_reasons(text, reason):
    with pytest.raises(OpeningHoursError) as err:
        parse_opening_hours(text)
    assert reason in err.value.reason
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("周一至周五 9:00-21:00，周末 10:00-18:00", "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00"),
        ("工作日 9:00-18:00", "Mo-Fr 09:00-18:00"),
        ("每天 8:00-22:00", "Mo-Su 08:00-22:00"),
        ("星期六、星期日 10:00-16:00", "Sa,Su 10:00-16:00"),
        ("周一-周五 08:00-12:00,13:00-18:00；节假日休息", "Mo-Fr 08:00-12:00,13:00-18:00; PH off"),
        ("礼拜天 9:00-12:00", "Su 09:00-12:00"),
    ],
)
def test_chinese_as_station_keepers_write_it(text: str, same_as: str) -> None:
    ours, osm = parse_opening_hours(text), parse_opening_hours(same_as)
    start = dt.datetime(2026, 11, 23, 0, 0)  # a Monday
    for hour in range(0, 24 * 7, 1):
        at = start + dt.timedelta(hours=hour, minutes=30)
        assert ours.is_open(at) == osm.is_open(at), (text, at)


# -- natural hours as moderators type them (issue 14, item 10) ------------------------------------


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("周一到周五早上7点到晚上10点", "Mo-Fr 07:00-22:00"),
        ("每天早上8点到晚上8点", "Mo-Su 08:00-20:00"),
        ("工作日上午9点至下午6点，周末休息", "Mo-Fr 09:00-18:00; Sa,Su off"),
        ("周一至周六 8点半-17点半", "Mo-Sa 08:30-17:30"),
        ("每天上午九点到晚上九点半", "Mo-Su 09:00-21:30"),
        ("晚上6点到凌晨2点", "18:00-02:00"),
        ("早8点到晚10点", "08:00-22:00"),
        ("早8晚10", "08:00-22:00"),
        ("中午11点到下午2点，下午5点到晚上9点", "11:00-14:00,17:00-21:00"),
        ("周一到周五 9:00-18:00，周六 9点到12点，周日休息", "Mo-Fr 09:00-18:00; Sa 09:00-12:00; Su off"),
        ("全天开放", "24/7"),
        ("24小时营业", "24/7"),
        ("全年无休 24小时", "24/7"),
        ("早上七点开门，晚上十点关门", "07:00-22:00"),
        ("周一至周五早7:30-晚9:00", "Mo-Fr 07:30-21:00"),
        ("每天 10点-22点", "Mo-Su 10:00-22:00"),
        ("上午8:00-12:00 下午14:00-18:00", "08:00-12:00,14:00-18:00"),
        ("9:00-12:00，中午休息，14:00-18:00", "09:00-12:00,14:00-18:00"),
        ("周一至五 8:30-11:30 13:30-17:00", "Mo-Fr 08:30-11:30,13:30-17:00"),
        ("周二十点到十二点", "Tu 10:00-12:00"),  # Tuesday 10-12, not 20:00
        ("周五十点到晚上八点", "Fr 10:00-20:00"),  # Friday from ten, not "fifty"
        ("9点到6点", "09:00-18:00"),  # 6 after 9 without 下午: the afternoon
        ("下午两点到五点", "14:00-17:00"),
        ("中午12点到1点半", "12:00-13:30"),
        ("早上7点15到晚上8点三刻", "07:15-20:45"),
        ("七点一刻到十二点", "07:15-12:00"),
        ("营业时间：每天8点至22点", "Mo-Su 08:00-22:00"),
        ("周一至周五 24小时，周末 9点到18点", "Mo-Fr 00:00-24:00; Sa,Su 09:00-18:00"),
        ("周六日 9点到5点", "Sa,Su 09:00-17:00"),
        ("7点到晚上10点，节假日不营业", "07:00-22:00; PH off"),
        ("晚上10点到早上6点", "22:00-06:00"),
        ("晚上12点到凌晨3点", "00:00-03:00"),
        ("Mon-Fri 9am-9pm; Sat, Sun 10am to 6pm", "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00"),
        ("daily 8am-10pm", "Mo-Su 08:00-22:00"),
        ("weekdays 9:00-18:00, weekends closed", "Mo-Fr 09:00-18:00; Sa,Su off"),
        ("Monday-Saturday 9:30am to 8pm, public holidays closed", "Mo-Sa 09:30-20:00; PH off"),
    ],
)
def test_natural_hours(text: str, same_as: str) -> None:
    ours, osm = parse_opening_hours(text), parse_opening_hours(same_as)
    start = dt.datetime(2026, 11, 23, 0, 0)  # a Monday
    for quarter in range(0, 4 * 24 * 8):
        when = start + dt.timedelta(minutes=15 * quarter + 1)
        assert ours.is_open(when) == osm.is_open(when), (text, when)


@pytest.mark.parametrize(
    ("text", "code", "part"),
    [
        ("随便", "no_times", "随便"),
        ("看心情", "no_times", "看心情"),
        ("早上", "no_times", "早上"),
        ("每天九点", "bad_range", "09:00"),
        ("8点到", "bad_range", "08:00-"),
        ("周八 9点到5点", "unknown_day", "周八"),
        ("Mo-Fr 9-21", "bad_range", "9-21"),
        ("下午25点到26点", "start_hour", "25:00-26:00"),
        ("9点70分到10点", "minutes", "09:70-10:00"),
        ("9点到9点", "empty_range", "09:00-09:00"),
        ("Mo 18:00+", "open_end", "18:00+"),
        ("", "empty", ""),
    ],
)
def test_garbage_is_refused_with_a_reason(text: str, code: str, part: str) -> None:
    with pytest.raises(OpeningHoursError) as err:
        parse_opening_hours(text)
    assert err.value.code == code and err.value.part == part


def test_week_for_showing() -> None:
    week = parse_opening_hours("Mo-Fr 09:00-18:00; PH off").week()
    assert week.days[0] == ((540, 1080),) and week.days[5] == () and week.holidays == ()
    assert parse_opening_hours("24/7").week().always_open
    assert parse_opening_hours("Mo-Su 09:00-18:00").week().holidays is None
    # a later weekday rule overrides PH for those days, and weekends are closed anyway
    week = parse_opening_hours("PH off; Mo-Fr 09:00-18:00").week()
    assert week.holidays is None and week.days[0] == ((540, 1080),)
    week = parse_opening_hours("PH 10:00-12:00; Mo-Fr 09:00-18:00").week()
    assert week.holidays == ((600, 720),)  # a holiday on a weekend
