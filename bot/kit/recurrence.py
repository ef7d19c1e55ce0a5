"""Meeting schedules: DTSTART + duration + RFC 5545 RRULE, expanded with python-dateutil.

A schedule is stored the way iCalendar stores it: a first start (``dtstart``, aware, in the meeting's
IANA timezone), a duration, an optional ``RRULE`` value (``None`` means a single meeting), skipped
occurrences (``EXDATE``) and moved single occurrences (original start -> new start, which become
``EXDATE`` + ``RDATE`` for expansion and ``RECURRENCE-ID`` overrides in the .ics file).

Expansion rules (no hand-written date arithmetic, dateutil does all of it):

* The rule is expanded in *local wall time* (naive datetimes in the meeting's zone), then the zone is
  attached. A weekly 09:00 meeting in Europe/Berlin therefore stays 09:00 local when DST starts or
  ends; its UTC offset changes.
* A wall time that does not exist (spring-forward gap) is shifted forward by the length of the gap,
  and an ambiguous wall time (fall-back) means its first instance (``fold=0``), as RFC 5545 §3.3.5
  prescribes.
* An ``UNTIL`` given in UTC (the RFC form when DTSTART has a TZID) is converted to local wall time
  before expansion, because dateutil refuses to mix a naive DTSTART with an aware UNTIL.

Quarterly preset: we use ``FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1MO`` rather than
``FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO``. The BYMONTH form is anchored to calendar quarters (Jan, Apr,
Jul, Oct) whatever month the organizer starts in; the INTERVAL form would silently become
"Feb/May/Aug/Nov" if the first meeting were in February. DTSTART is always snapped to the first
instance of the rule, because RFC 5545 leaves a DTSTART outside the rule undefined (and phones differ).

Custom rules are checked before dateutil sees them (``_check_parts``): dateutil loops forever on
INTERVAL=0, fails mid-expansion on a negative one, reads BYMONTHDAY=0 as "every day", lets BYHOUR/BYMINUTE
turn a daily rule into many meetings a day, and searches up to the year 9999 (seconds of CPU) when no day
can match. The first two instances are then looked for in bounded time (``_first_instances``).
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import cn2an
from dateutil.rrule import rrule, rruleset, rrulestr

DEFAULT_TIMEZONE = "Asia/Shanghai"

#: Python weekday number (Monday = 0) -> RFC 5545 two-letter day.
WEEKDAY_CODES: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

#: Frequencies a community meeting may use; SECONDLY/MINUTELY/HOURLY would flood the groups.
ALLOWED_FREQS = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})

#: A custom rule must produce its first meeting within this span after the requested start.
FIRST_OCCURRENCE_WITHIN = timedelta(days=366 * 5)

#: ... and, unless it ends, its second meeting within this span after the first.
NEXT_OCCURRENCE_WITHIN = timedelta(days=366 * 10)

#: The time of day comes from DTSTART; these parts would multiply the meetings per day.
TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")

#: Valid RFC 5545 parts that community meetings do not need (and that make impossible rules easy).
UNSUPPORTED_PARTS = ("BYYEARDAY", "BYWEEKNO")

#: The longest each month can be (2000 is a leap year), for rejecting "30 February" up front.
_MAX_MONTH_DAYS = {month: calendar.monthrange(2000, month)[1] for month in range(1, 13)}

#: The Gregorian calendar repeats exactly every 400 years (146097 days = 20871 weeks).
_CALENDAR_CYCLE_YEARS = 400

_NUMBER = re.compile(r"[+-]?[0-9]{1,4}")
_BYDAY_ITEM = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")

_KNOWN_PARTS = frozenset(
    {
        "FREQ",
        "UNTIL",
        "COUNT",
        "INTERVAL",
        "BYSECOND",
        "BYMINUTE",
        "BYHOUR",
        "BYDAY",
        "BYMONTHDAY",
        "BYYEARDAY",
        "BYWEEKNO",
        "BYMONTH",
        "BYSETPOS",
        "WKST",
    }
)


class Preset(StrEnum):
    """Recurrence choices offered in the scheduling conversation."""

    ONCE = "once"
    WEEKLY = "weekly"
    EVERY_N_WEEKS = "nweeks"
    MONTHLY_DAY = "mday"
    MONTHLY_NTH_WEEKDAY = "mnth"
    QUARTERLY_FIRST_MONDAY = "quarter"
    CUSTOM = "custom"


class RecurrenceError(ValueError):
    """A recurrence that cannot be used; ``code`` selects the catalog text, ``detail`` is technical."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------


def _day_code(weekday: int) -> str:
    if not 0 <= weekday <= 6:
        raise RecurrenceError("bad_weekday", f"weekday must be 0..6, got {weekday}")
    return WEEKDAY_CODES[weekday]


def rrule_weekly(weekday: int, interval: int = 1) -> str:
    """Every ``interval`` weeks on ``weekday`` (0 = Monday)."""
    if not 1 <= interval <= 52:
        raise RecurrenceError("bad_interval", f"interval must be 1..52, got {interval}")
    day = _day_code(weekday)
    if interval == 1:
        return f"FREQ=WEEKLY;BYDAY={day}"
    return f"FREQ=WEEKLY;INTERVAL={interval};BYDAY={day}"


def rrule_monthly_day(day: int) -> str:
    """Monthly on day ``day`` (1..31, or -1 for the last day).

    Per RFC 5545, months without that day (e.g. the 31st in April) are skipped; use -1 for
    "last day of the month".
    """
    if not (1 <= day <= 31 or day == -1):
        raise RecurrenceError("bad_monthday", f"day must be 1..31 or -1, got {day}")
    return f"FREQ=MONTHLY;BYMONTHDAY={day}"


def rrule_monthly_nth_weekday(nth: int, weekday: int) -> str:
    """Monthly on the ``nth`` (1..4, or -1 for last) ``weekday`` (0 = Monday)."""
    if nth not in (1, 2, 3, 4, -1):
        raise RecurrenceError("bad_nth", f"nth must be 1..4 or -1, got {nth}")
    return f"FREQ=MONTHLY;BYDAY={nth}{_day_code(weekday)}"


def rrule_quarterly_first_monday() -> str:
    """First Monday of January, April, July and October (see the module docstring)."""
    return "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYDAY=1MO"


# --------------------------------------------------------------------------------------------------
# Validation and normalisation
# --------------------------------------------------------------------------------------------------


def get_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` or :class:`RecurrenceError` ``bad_timezone``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RecurrenceError("bad_timezone", name) from exc


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone name zoneinfo knows, by its case-folded form."""
    unusable = {"localtime", "factory"}  # the host's own setting, tzdata's placeholder
    return {name.casefold(): name for name in available_timezones() if name.casefold() not in unusable}


def zone_name(text: str) -> str:
    """The canonical IANA zone name a user typed ("europe/berlin" -> "Europe/Berlin"), checked with
    zoneinfo; :class:`RecurrenceError` ``bad_timezone`` for anything else ("localtime" or paths are
    refused even where zoneinfo could open them)."""
    cleaned = "_".join(text.split())
    if not cleaned or len(cleaned) > 64:
        raise RecurrenceError("bad_timezone", cleaned[:64] or "—")
    known = _zone_names()
    name = known.get(cleaned.casefold())
    if name is None:
        if known:  # zoneinfo lists its zones: only those are accepted
            raise RecurrenceError("bad_timezone", cleaned)
        name = cleaned  # no list on this system: fall back to opening it
    get_zone(name)
    return name


def _split_rule(text: str) -> list[tuple[str, str]]:
    cleaned = text.strip()
    if not cleaned:
        raise RecurrenceError("empty")
    if "\n" in cleaned or "\r" in cleaned:
        raise RecurrenceError("one_line", "give only the RRULE line, without DTSTART")
    if cleaned.upper().startswith("RRULE:"):
        cleaned = cleaned[len("RRULE:") :]
    if ":" in cleaned:
        raise RecurrenceError("syntax", "only RRULE is accepted (no DTSTART, EXDATE, ...)")
    parts: list[tuple[str, str]] = []
    seen: set[str] = set()
    for chunk in cleaned.replace(" ", "").strip(";").split(";"):
        if "=" not in chunk:
            raise RecurrenceError("syntax", f"expected NAME=VALUE, got {chunk!r}")
        name, _, value = chunk.partition("=")
        name = name.upper()
        value = value.upper()
        if name not in _KNOWN_PARTS:
            raise RecurrenceError("unknown_part", name)
        if name in seen:
            raise RecurrenceError("duplicate_part", name)
        if not value:
            raise RecurrenceError("syntax", f"{name} has no value")
        seen.add(name)
        parts.append((name, value))
    if "FREQ" not in seen:
        raise RecurrenceError("no_freq")
    if "UNTIL" in seen and "COUNT" in seen:
        raise RecurrenceError("until_and_count")
    return parts


def _numbers(name: str, value: str, low: int, high: int, *, signed: bool = False) -> list[int]:
    """The comma-separated integers of a part, each ``low <= |n| <= high`` (negative only if ``signed``)."""
    out: list[int] = []
    for item in value.split(","):
        if not _NUMBER.fullmatch(item):
            raise RecurrenceError("bad_value", f"{name}={value}")
        number = int(item)
        if not low <= abs(number) <= high or (number < 0 and not signed):
            raise RecurrenceError("bad_value", f"{name}={value}")
        out.append(number)
    return out


def _check_parts(parts: list[tuple[str, str]]) -> None:
    """Reject what dateutil accepts but would loop on, flood with, or silently misread.

    INTERVAL=0 makes dateutil loop forever, a negative one fails mid-expansion, BYHOUR/BYMINUTE turn a
    daily rule into many meetings a day, BYMONTHDAY=0 is read as "no filter" (daily), and a day that
    no chosen month has ("30 February") makes dateutil search until the year 9999.
    """
    values = dict(parts)
    freq = values["FREQ"]
    if freq not in ALLOWED_FREQS:
        if freq in ("SECONDLY", "MINUTELY", "HOURLY"):
            raise RecurrenceError("too_frequent", freq)
        raise RecurrenceError("syntax", f"invalid FREQ {freq}")
    for name in TIME_PARTS:
        if name in values:
            raise RecurrenceError("time_part", name)
    for name in UNSUPPORTED_PARTS:
        if name in values:
            raise RecurrenceError("unsupported_part", name)
    for name in ("INTERVAL", "COUNT"):
        if name in values:
            value = values[name]
            if not _NUMBER.fullmatch(value) or not 1 <= int(value) <= 9999:
                raise RecurrenceError("bad_number", f"{name}={value}")
    months = _numbers("BYMONTH", values["BYMONTH"], 1, 12) if "BYMONTH" in values else list(range(1, 13))
    if "BYMONTHDAY" in values:
        days = _numbers("BYMONTHDAY", values["BYMONTHDAY"], 1, 31, signed=True)
        if not any(abs(day) <= _MAX_MONTH_DAYS[month] for day in days for month in months):
            detail = f"BYMONTH={values.get('BYMONTH', '*')};BYMONTHDAY={values['BYMONTHDAY']}"
            raise RecurrenceError("no_occurrences", detail)
    if "BYSETPOS" in values:
        _numbers("BYSETPOS", values["BYSETPOS"], 1, 366, signed=True)
    if "WKST" in values and values["WKST"] not in WEEKDAY_CODES:
        raise RecurrenceError("bad_value", f"WKST={values['WKST']}")
    if "BYDAY" in values:
        # The nth weekday counts within the month (MONTHLY, or YEARLY with BYMONTH), else the year;
        # DAILY and WEEKLY rules take plain weekdays only (RFC 5545 3.3.10).
        if freq in ("DAILY", "WEEKLY"):
            max_nth = 0
        elif freq == "MONTHLY" or "BYMONTH" in values:
            max_nth = 5
        else:
            max_nth = 53
        for item in values["BYDAY"].split(","):
            match = _BYDAY_ITEM.fullmatch(item)
            if match is None:
                raise RecurrenceError("syntax", f"BYDAY={values['BYDAY']}")
            if match.group(1) is not None and not 1 <= abs(int(match.group(1))) <= max_nth:
                raise RecurrenceError("bad_value", f"BYDAY={values['BYDAY']}")


def _join_rule(parts: Iterable[tuple[str, str]]) -> str:
    items = list(parts)
    # FREQ first is what RFC 5545 examples (and some older parsers) expect.
    items.sort(key=lambda kv: kv[0] != "FREQ")
    return ";".join(f"{k}={v}" for k, v in items)


def _parse_until(value: str, zone: ZoneInfo) -> datetime:
    """UNTIL as an aware datetime (a date-only UNTIL means the end of that local day)."""
    try:
        if value.endswith("Z"):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if "T" in value:
            return attach_zone(datetime.strptime(value, "%Y%m%dT%H%M%S"), zone)
        day = datetime.strptime(value, "%Y%m%d")
        return attach_zone(datetime.combine(day.date(), time(23, 59, 59)), zone)
    except ValueError as exc:
        raise RecurrenceError("bad_until", value) from exc


def _local_rule(rule: str, zone: ZoneInfo) -> str:
    """The rule with UNTIL rewritten as local wall time, for expansion against a naive DTSTART."""
    parts = []
    split = _split_rule(rule)
    _check_parts(split)  # rules stored before a check existed must not hang the expansion either
    for name, value in split:
        if name == "UNTIL":
            value = to_local_naive(_parse_until(value, zone), zone).strftime("%Y%m%dT%H%M%S")
        parts.append((name, value))
    return _join_rule(parts)


def normalize_rrule(text: str, zone: ZoneInfo | str = DEFAULT_TIMEZONE) -> str:
    """Canonical RRULE value (upper case, FREQ first, UNTIL in UTC ``...Z``) or RecurrenceError."""
    tz = get_zone(zone) if isinstance(zone, str) else zone
    parts = []
    split = _split_rule(text)
    _check_parts(split)
    for name, value in split:
        if name == "UNTIL":
            value = _parse_until(value, tz).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        parts.append((name, value))
    return _join_rule(parts)


def _parse_local_rule(local_rule: str, dtstart_local: datetime) -> rrule:
    try:
        parsed = rrulestr(f"RRULE:{local_rule}", dtstart=dtstart_local)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise RecurrenceError("syntax", str(exc)) from exc
    assert isinstance(parsed, rrule)
    return parsed


def _build_rule(rule: str, dtstart_local: datetime, zone: ZoneInfo) -> rrule:
    return _parse_local_rule(_local_rule(rule, zone), dtstart_local)


def _first_instances(rule: str, start_local: datetime, zone: ZoneInfo, n: int) -> list[datetime]:
    """The first ``n`` instances at or after ``start_local`` (naive local), in bounded time.

    When no day matches (an impossible BYxxx combination), dateutil only stops at the year 9999:
    seconds of CPU for a daily rule, with the event loop blocked. Because the calendar repeats
    exactly every 400 years, the same rule expanded from a start shifted by whole cycles to just
    before 9999 gives the same instances shifted by the same amount, and that search ends within
    about 400 years. The window left before 9999 still covers the first instance plus the next gap.
    """
    years_needed = (FIRST_OCCURRENCE_WITHIN + NEXT_OCCURRENCE_WITHIN).days // 365 + 2
    cycles = max(0, (MAXYEAR - years_needed - start_local.year) // _CALENDAR_CYCLE_YEARS)
    shift = cycles * _CALENDAR_CYCLE_YEARS
    parts = []
    for name, value in _split_rule(_local_rule(rule, zone)):
        if name == "UNTIL":
            until = datetime.strptime(value, "%Y%m%dT%H%M%S")
            if until.year + shift > MAXYEAR:
                continue  # beyond the end of the shifted search anyway
            value = until.replace(year=until.year + shift).strftime("%Y%m%dT%H%M%S")
        parts.append((name, value))
    try:
        shifted = _parse_local_rule(_join_rule(parts), start_local.replace(year=start_local.year + shift))
        found = list(itertools.islice(shifted, n))
    except RecurrenceError:
        raise
    except (ValueError, OverflowError) as exc:
        raise RecurrenceError("no_occurrences", f"{rule} ({exc})") from exc
    return [moment.replace(year=moment.year - shift) for moment in found]


def _ends_soon(rule: str, first_local: datetime, zone: ZoneInfo) -> bool:
    """Whether a rule with a single instance in the search window simply ends (COUNT=1, or UNTIL
    before the next instance could come) rather than being too sparse."""
    values = dict(_split_rule(rule))
    if _NUMBER.fullmatch(values.get("COUNT", "")) and int(values["COUNT"]) == 1:
        return True
    if "UNTIL" in values:
        until = to_local_naive(_parse_until(values["UNTIL"], zone), zone)
        return until - first_local <= NEXT_OCCURRENCE_WITHIN
    return False


# --------------------------------------------------------------------------------------------------
# Local wall time <-> aware
# --------------------------------------------------------------------------------------------------


def attach_zone(naive: datetime, zone: tzinfo) -> datetime:
    """Attach ``zone`` to a local wall time.

    Ambiguous times take their first instance (fold=0); nonexistent times (DST gap) are shifted
    forward by the length of the gap (02:30 on a spring-forward night in Berlin becomes 03:30 CEST).
    """
    aware = naive.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone)


def to_local_naive(moment: datetime, zone: tzinfo) -> datetime:
    """An aware moment as naive wall time in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("aware datetime required")
    return moment.astimezone(zone).replace(tzinfo=None)


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


# --------------------------------------------------------------------------------------------------
# Schedule and occurrences
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """One meeting instance. ``original_start`` differs from ``start`` when it was moved."""

    start: datetime
    end: datetime
    original_start: datetime

    @property
    def moved(self) -> bool:
        return self.start != self.original_start

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """A meeting's schedule. All datetimes are aware; they are kept in the meeting's zone."""

    dtstart: datetime
    duration: timedelta
    rrule: str | None = None
    exdates: tuple[datetime, ...] = ()
    #: (original start, new start) pairs of moved single occurrences.
    moves: tuple[tuple[datetime, datetime], ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.dtstart, "dtstart")
        if not isinstance(self.dtstart.tzinfo, ZoneInfo):
            raise ValueError("dtstart must carry a zoneinfo.ZoneInfo (IANA) timezone")
        if self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        for moment in self.exdates:
            _require_aware(moment, "exdate")
        for original, new in self.moves:
            _require_aware(original, "moved original")
            _require_aware(new, "moved start")

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        first_start: datetime,
        duration: timedelta,
        rrule: str | None = None,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> Schedule:
        """Validate ``rrule`` and snap the start to the rule's first instance at or after ``first_start``.

        ``first_start`` may be naive (local wall time in ``timezone``) or aware (converted).
        """
        zone = get_zone(timezone)
        local = first_start if first_start.tzinfo is None else to_local_naive(first_start, zone)
        if rrule is None:
            return cls(attach_zone(local, zone), duration)
        normalized = normalize_rrule(rrule, zone)
        found = _first_instances(normalized, local, zone, 2)
        if not found or found[0] - local > FIRST_OCCURRENCE_WITHIN:
            raise RecurrenceError("no_occurrences", normalized)
        first = found[0]
        if len(found) > 1:
            if found[1] - first > NEXT_OCCURRENCE_WITHIN:
                raise RecurrenceError("too_sparse", normalized)
        elif not _ends_soon(normalized, first, zone):
            raise RecurrenceError("too_sparse", normalized)  # no second meeting within the window
        try:
            return cls(attach_zone(first, zone), duration, normalized)
        except OverflowError as exc:
            raise RecurrenceError("no_occurrences", normalized) from exc

    @property
    def zone(self) -> ZoneInfo:
        assert isinstance(self.dtstart.tzinfo, ZoneInfo)
        return self.dtstart.tzinfo

    @property
    def timezone(self) -> str:
        return self.zone.key

    @property
    def is_recurring(self) -> bool:
        return self.rrule is not None

    # -- expansion ---------------------------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        return to_local_naive(moment, self.zone)

    def _base(self) -> rruleset:
        """The rule (or the single DTSTART) without exceptions."""
        rs = rruleset()
        start = self._local(self.dtstart)
        if self.rrule is None:
            rs.rdate(start)
        else:
            rs.rrule(_build_rule(self.rrule, start, self.zone))
        return rs

    def _rule_naive(self, moment: datetime, base: rruleset | None = None) -> datetime | None:
        """The naive wall time the rule produced for the instance that starts at ``moment``.

        Usually that is ``moment``'s local wall time; for an instance in a DST gap the rule's wall
        time (02:30) differs from the real start (03:30), so we look for it near ``moment``.
        """
        _require_aware(moment, "moment")
        local = self._local(moment)
        rs = base if base is not None else self._base()
        for naive in rs.between(local - timedelta(hours=3), local + timedelta(hours=3), inc=True):
            if attach_zone(naive, self.zone) == moment:
                return naive
        return None

    def _set(self) -> tuple[rruleset, dict[datetime, datetime]]:
        base = self._base()
        rs = self._base()
        moved_to: dict[datetime, datetime] = {}
        for moment in self.exdates:
            rs.exdate(self._rule_naive(moment, base) or self._local(moment))
        for original, new in self.moves:
            naive_original = self._rule_naive(original, base) or self._local(original)
            rs.exdate(naive_original)
            rs.rdate(self._local(new))
            moved_to[self._local(new)] = naive_original
        return rs, moved_to

    def _occurrence(self, naive: datetime, moved_to: dict[datetime, datetime]) -> Occurrence:
        start = attach_zone(naive, self.zone)
        original = attach_zone(moved_to[naive], self.zone) if naive in moved_to else start
        return Occurrence(start=start, end=start + self.duration, original_start=original)

    def occurrences_between(self, start: datetime, end: datetime) -> list[Occurrence]:
        """Occurrences whose start lies in ``[start, end)`` (aware bounds, any zone)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        rs, moved_to = self._set()
        pad = timedelta(days=1)  # local bounds may differ from the exact ones by an offset
        naive = rs.between(self._local(start) - pad, self._local(end) + pad, inc=True)
        found = (self._occurrence(n, moved_to) for n in naive)
        return [o for o in found if start <= o.start < end]

    def iter_after(self, after: datetime) -> Iterator[Occurrence]:
        """Occurrences starting strictly after ``after``, in order (lazy, may be infinite)."""
        _require_aware(after, "after")
        rs, moved_to = self._set()
        for naive in rs.xafter(self._local(after) - timedelta(days=1), inc=True):
            occ = self._occurrence(naive, moved_to)
            if occ.start > after:
                yield occ

    def next_occurrences(self, after: datetime, n: int) -> list[Occurrence]:
        """The next ``n`` occurrences starting strictly after ``after``."""
        out: list[Occurrence] = []
        if n <= 0:
            return out
        for occ in self.iter_after(after):
            out.append(occ)
            if len(out) >= n:
                break
        return out

    def is_rule_instance(self, moment: datetime) -> bool:
        """Whether ``moment`` is an instance of the rule itself (ignoring skips and moves)."""
        return self._rule_naive(moment) is not None

    # -- exceptions --------------------------------------------------------------------------------

    def _check_original(self, original: datetime) -> datetime:
        naive = self._rule_naive(original)
        if naive is None:
            raise RecurrenceError("not_an_occurrence", original.isoformat())
        return attach_zone(naive, self.zone)

    def skip(self, original: datetime) -> Schedule:
        """Skip the occurrence originally at ``original`` (drops a move of it, adds EXDATE)."""
        original = self._check_original(original)
        moves = tuple((o, n) for o, n in self.moves if o != original)
        exdates = self.exdates if original in self.exdates else (*self.exdates, original)
        return dataclasses.replace(self, exdates=tuple(sorted(exdates)), moves=moves)

    def move(self, original: datetime, new_start: datetime) -> Schedule:
        """Move the single occurrence originally at ``original`` to ``new_start``."""
        original = self._check_original(original)
        _require_aware(new_start, "new_start")
        new_start = attach_zone(self._local(new_start), self.zone)
        moves = tuple((o, n) for o, n in self.moves if o != original)
        exdates = tuple(e for e in self.exdates if e != original)
        if new_start == original:  # moving back to its own slot undoes the move
            return dataclasses.replace(self, exdates=exdates, moves=moves)
        return dataclasses.replace(
            self, exdates=exdates, moves=tuple(sorted((*moves, (original, new_start))))
        )

    def original_of(self, start: datetime) -> datetime | None:
        """The original start of the occurrence that now starts at ``start`` (None if none does)."""
        _require_aware(start, "start")
        for occ in self.occurrences_between(start - timedelta(seconds=1), start + timedelta(seconds=1)):
            if occ.start == start:
                return occ.original_start
        return None


# --------------------------------------------------------------------------------------------------
# Human description (texts from the catalog: meetings.rule.*, meetings.wd.*, meetings.nth.*)
# --------------------------------------------------------------------------------------------------

Translate = Callable[..., str]
"""``t(key, **values)`` bound to one language, e.g. ``functools.partial(catalog.t, "zh")``."""

_NTH_KEYS = {1: "1", 2: "2", 3: "3", 4: "4", -1: "last"}


def _weekday_list(codes: list[str], t: Translate) -> str:
    names = [t(f"meetings.wd_long.{code.lower()}") for code in codes]
    if len(names) == 1:
        return names[0]
    return t("meetings.rule.join_last", head=t("meetings.rule.join").join(names[:-1]), last=names[-1])


def _describe_core(parts: dict[str, str], dtstart: datetime, t: Translate) -> str | None:
    """The frequency phrase for the shapes the presets produce (and a few more); None = custom."""
    freq = parts["FREQ"]
    try:
        interval = int(parts.get("INTERVAL", "1"))
    except ValueError:
        return None
    core = set(parts) - {"FREQ", "INTERVAL", "UNTIL", "COUNT", "WKST"}
    if freq == "DAILY" and not core:
        return t("meetings.rule.daily") if interval == 1 else t("meetings.rule.every_n_days", n=interval)
    if freq == "WEEKLY" and core <= {"BYDAY"}:
        codes = parts["BYDAY"].split(",") if "BYDAY" in parts else [WEEKDAY_CODES[dtstart.weekday()]]
        if not all(code in WEEKDAY_CODES for code in codes):
            return None
        codes.sort(key=WEEKDAY_CODES.index)
        days = _weekday_list(codes, t)
        if interval == 1:
            return t("meetings.rule.weekly", days=days)
        return t("meetings.rule.every_n_weeks", n=interval, days=days)
    if freq == "MONTHLY" and interval == 1:
        if core == {"BYMONTH", "BYDAY"} and parts["BYDAY"] == "1MO":
            if sorted(parts["BYMONTH"].split(","), key=int) == ["1", "4", "7", "10"]:
                return t("meetings.rule.quarterly_first_monday")
            return None
        if not core or core == {"BYMONTHDAY"}:
            day = int(parts.get("BYMONTHDAY", dtstart.day)) if "," not in parts.get("BYMONTHDAY", "") else 0
            if day == -1:
                return t("meetings.rule.monthly_last_day")
            if 1 <= day <= 31:
                return t("meetings.rule.monthly_day", day=day)
            return None
        if core == {"BYDAY"}:
            value = parts["BYDAY"]
            code, nth_text = value[-2:], value[:-2]
            try:
                nth = int(nth_text)
            except ValueError:
                return None
            if code not in WEEKDAY_CODES or nth not in _NTH_KEYS:
                return None
            return t(
                "meetings.rule.monthly_nth",
                nth=t(f"meetings.nth.{_NTH_KEYS[nth]}"),
                day=t(f"meetings.wd_long.{code.lower()}"),
            )
    if freq == "YEARLY" and not core and interval == 1:
        return t("meetings.rule.yearly", month=dtstart.month, day=dtstart.day)
    return None


def format_date(day: datetime, t: Translate) -> str:
    """A local date as the catalog writes it (meetings.fmt.date)."""
    return t(
        "meetings.fmt.date",
        year=day.year,
        month=day.month,
        day=day.day,
        weekday=t(f"meetings.wd.{WEEKDAY_CODES[day.weekday()].lower()}"),
    )


def describe(schedule: Schedule, t: Translate) -> str:
    """A one-line human description of the schedule, e.g. "每季度第一个周一 14:30"."""
    start = schedule.dtstart
    clock = start.strftime("%H:%M")
    if schedule.rrule is None:
        return t("meetings.rule.once", date=format_date(start, t), time=clock)
    parts = dict(_split_rule(schedule.rrule))
    core = _describe_core(parts, start, t)
    text = (
        t("meetings.rule.at_time", rule=core, time=clock)
        if core is not None
        else t("meetings.rule.custom", rule=schedule.rrule, time=clock)
    )
    if "UNTIL" in parts:
        until = _parse_until(parts["UNTIL"], schedule.zone).astimezone(schedule.zone)
        text += t("meetings.rule.until", date=format_date(until, t))
    elif "COUNT" in parts:
        text += t("meetings.rule.count", n=parts["COUNT"])
    return text


# --------------------------------------------------------------------------------------------------
# Rules said in words at the date step ("每周三晚上八点", "first Monday of each quarter at 14:30")
# --------------------------------------------------------------------------------------------------

_ZH_DAY = "[一二三四五六日天]"
_ZH_WEEK = "(?:周|星期|礼拜)"
_ZH_DAYS = rf"{_ZH_WEEK}?({_ZH_DAY}(?:\s*[、,和及与]?\s*{_ZH_WEEK}?{_ZH_DAY})*)"
_ZH_DAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_ZH_NTH = r"(?:第\s*([一二三四1-4])\s*个?|(最后)\s*一?\s*个?)"
_EN_DAY_INDEX = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
_EN_DAY = r"(?:" + "|".join(sorted(_EN_DAY_INDEX, key=len, reverse=True)) + r")s?"
_EN_DAYS = rf"({_EN_DAY}(?:\s*(?:,|and|&)\s*{_EN_DAY})*)"
_EN_NTH_INDEX = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "last": -1,
}
_EN_NTH = r"(first|1st|second|2nd|third|3rd|fourth|4th|last)"
_EN_COUNT = {"other": 2, "two": 2, "three": 3, "four": 4, "2": 2, "3": 3, "4": 4}
_QUARTER_MONTHS = "1,4,7,10"


def _zh_number(word: str) -> int:
    if word.isdigit():
        return int(word)
    return int(cn2an.cn2an(word.replace("两", "二"), "smart"))


def _zh_days(text: str) -> str:
    days = [_ZH_DAY_INDEX[c] for c in re.findall(_ZH_DAY, text)]
    return ",".join(WEEKDAY_CODES[d] for d in sorted(set(days)))


def _en_days(text: str) -> str:
    words = re.findall(_EN_DAY, text)
    days = {_EN_DAY_INDEX[w.rstrip("s") if w.rstrip("s") in _EN_DAY_INDEX else w] for w in words}
    return ",".join(WEEKDAY_CODES[d] for d in sorted(days))


def _spoken_patterns() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    zh_nth = lambda m: -1 if m.group(2) else _zh_number(m.group(1))  # noqa: E731
    en_nth = lambda m, i=1: _EN_NTH_INDEX[m.group(i)]  # noqa: E731
    return [
        # 每季度第一个周一 · 每个季度的最后一个周五
        (
            re.compile(rf"每个?季度?的?\s*{_ZH_NTH}\s*{_ZH_WEEK}({_ZH_DAY})"),
            lambda m: f"FREQ=MONTHLY;BYMONTH={_QUARTER_MONTHS};BYDAY={zh_nth(m)}{_zh_days(m.group(3))}",
        ),
        # 每月第二个周二 · 每个月最后一个周五
        (
            re.compile(rf"每个?月的?\s*{_ZH_NTH}\s*{_ZH_WEEK}({_ZH_DAY})"),
            lambda m: f"FREQ=MONTHLY;BYDAY={zh_nth(m)}{_zh_days(m.group(3))}",
        ),
        # 每月最后一天 · 每月15号
        (re.compile(r"每个?月的?\s*最后\s*一\s*天"), lambda m: "FREQ=MONTHLY;BYMONTHDAY=-1"),
        (
            re.compile(r"每个?月的?\s*([一二三四五六七八九十\d]{1,3})\s*[号日]"),
            lambda m: rrule_monthly_day(_zh_number(m.group(1))),
        ),
        # 每隔一周的周三 · 隔周周三 · 双周周三 (every other week)
        (
            re.compile(rf"(?:每隔\s*[一1]\s*{_ZH_WEEK}|隔周|双周)的?\s*{_ZH_DAYS}"),
            lambda m: f"FREQ=WEEKLY;INTERVAL=2;BYDAY={_zh_days(m.group(1))}",
        ),
        # 每两周的周三 · 每3周周五
        (
            re.compile(rf"每\s*([二两三四五六七八九十\d]{{1,3}})\s*个?{_ZH_WEEK}的?\s*{_ZH_DAYS}"),
            lambda m: f"FREQ=WEEKLY;INTERVAL={_zh_number(m.group(1))};BYDAY={_zh_days(m.group(2))}",
        ),
        # 每个工作日 · 工作日每天
        (re.compile(r"每个?工作日|工作日每天"), lambda m: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        # 每周三 · 每周一和周四 · 每个星期六
        (
            re.compile(rf"每个?{_ZH_WEEK}的?\s*{_ZH_DAYS}"),
            lambda m: f"FREQ=WEEKLY;BYDAY={_zh_days(m.group(1))}",
        ),
        (re.compile(r"每天|每日"), lambda m: "FREQ=DAILY"),
        # first monday of each quarter · every quarter on the first monday · quarterly on the last friday
        (
            re.compile(
                rf"(?:on\s+)?(?:the\s+)?{_EN_NTH}\s+({_EN_DAY})\s+(?:of|in)\s+(?:each|every|the)\s+quarter"
            ),
            lambda m: f"FREQ=MONTHLY;BYMONTH={_QUARTER_MONTHS};BYDAY={en_nth(m)}{_en_days(m.group(2))}",
        ),
        (
            re.compile(rf"(?:every\s+quarter|quarterly)\s+on\s+(?:the\s+)?{_EN_NTH}\s+({_EN_DAY})"),
            lambda m: f"FREQ=MONTHLY;BYMONTH={_QUARTER_MONTHS};BYDAY={en_nth(m)}{_en_days(m.group(2))}",
        ),
        # second tuesday of each month · every month on the last friday · monthly on the 1st monday
        (
            re.compile(
                rf"(?:on\s+)?(?:the\s+)?{_EN_NTH}\s+({_EN_DAY})\s+(?:of|in)\s+(?:each|every|the)\s+month"
            ),
            lambda m: f"FREQ=MONTHLY;BYDAY={en_nth(m)}{_en_days(m.group(2))}",
        ),
        (
            re.compile(rf"(?:every\s+month|monthly)\s+on\s+(?:the\s+)?{_EN_NTH}\s+({_EN_DAY})"),
            lambda m: f"FREQ=MONTHLY;BYDAY={en_nth(m)}{_en_days(m.group(2))}",
        ),
        # the last day of each month · the 15th of every month · every month on the 15th
        (
            re.compile(r"(?:on\s+)?(?:the\s+)?last\s+day\s+of\s+(?:each|every|the)\s+month"),
            lambda m: "FREQ=MONTHLY;BYMONTHDAY=-1",
        ),
        (
            re.compile(
                r"(?:on\s+)?(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+(?:day\s+)?of\s+(?:each|every)\s+month"
            ),
            lambda m: rrule_monthly_day(int(m.group(1))),
        ),
        (
            re.compile(r"(?:every\s+month|monthly)\s+on\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\b"),
            lambda m: rrule_monthly_day(int(m.group(1))),
        ),
        # every other wednesday · every 2 weeks on friday · every two weeks on monday and thursday
        (
            re.compile(rf"every\s+other\s+{_EN_DAYS}"),
            lambda m: f"FREQ=WEEKLY;INTERVAL=2;BYDAY={_en_days(m.group(1))}",
        ),
        (
            re.compile(rf"every\s+(two|three|four|other|\d{{1,2}})\s+weeks?\s+on\s+{_EN_DAYS}"),
            lambda m: (
                f"FREQ=WEEKLY;INTERVAL={_EN_COUNT.get(m.group(1)) or int(m.group(1))};"
                f"BYDAY={_en_days(m.group(2))}"
            ),
        ),
        (re.compile(r"every\s+week\s?day\b"), lambda m: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        # every wednesday · every monday and thursday · weekly on friday · every week on tuesday
        (
            re.compile(rf"(?:every|each|(?:every\s+week|weekly)\s+on)\s+{_EN_DAYS}\b"),
            lambda m: f"FREQ=WEEKLY;BYDAY={_en_days(m.group(1))}",
        ),
        (re.compile(r"\b(?:every\s+day|daily)\b"), lambda m: "FREQ=DAILY"),
    ]


_SPOKEN = _spoken_patterns()


def parse_spoken_rule(text: str) -> tuple[str, str] | None:
    """A recurrence said in words in ``text`` (Chinese or English), as an RRULE value, with the rest of
    the text (the time of day, perhaps a start date) -> ``(rrule, rest)``; None when none is said.

    Understood: 每周三 · 每周一和周四 · 每两周的周五 · 隔周周三 · 每月15号 · 每月最后一天 ·
    每月第二个周二 · 每月最后一个周五 · 每季度第一个周一 · 每天 · 每个工作日; every wednesday ·
    every monday and thursday · every other friday · every 2 weeks on monday · the 15th of every month ·
    the second tuesday of each month · first monday of each quarter · every day · every weekday.
    Raises `RecurrenceError` for a day that does not exist (每月32号).
    """
    s = unicodedata.normalize("NFKC", text or "").strip().lower()
    for pattern, build in _SPOKEN:
        found = pattern.search(s)
        if found:
            try:
                rule = build(found)
            except (ValueError, KeyError):
                raise RecurrenceError("bad_monthday", found.group(0)) from None
            rest = (s[: found.start()] + " " + s[found.end() :]).strip(" ,，、的")
            return rule, " ".join(rest.split())
    return None
