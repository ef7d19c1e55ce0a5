"""iCalendar (.ics, RFC 5545) files for meetings, built with the ``icalendar`` package.

Series file: one VEVENT with ``DTSTART;TZID=<zone>`` + ``DTEND`` + ``RRULE``, ``EXDATE`` for skipped
occurrences, one extra VEVENT per moved occurrence (same UID, ``RECURRENCE-ID`` = its original start)
and the VTIMEZONE the TZIDs refer to, so phone calendars keep the local time across DST.
Single-occurrence file: one VEVENT in UTC (``...Z``), for calendars that cannot handle rules.

UIDs are stable (``meeting-<id>@<domain>``), ``SEQUENCE`` is the meeting's revision so a re-import
updates the entry instead of adding a second one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from icalendar import Calendar, Event, vRecur

from bot.kit.recurrence import Occurrence, Schedule

PRODID = "-//xiaoge-bot//meetings//ZH"
UID_DOMAIN = "xiaoge-bot"


@dataclass(frozen=True)
class IcsMeeting:
    """What the calendar entry shows; ``schedule`` gives the times."""

    meeting_id: int
    title: str
    schedule: Schedule
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    description: str = ""
    sequence: int = 0
    cancelled: bool = False


def meeting_uid(meeting_id: int) -> str:
    return f"meeting-{meeting_id}@{UID_DOMAIN}"


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    return cal


def _event(meeting: IcsMeeting, uid: str, start: dt.datetime, end: dt.datetime, stamp: dt.datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", meeting.title)
    if meeting.place:
        event.add("location", meeting.place)
    if meeting.lat is not None and meeting.lon is not None:
        event.add("geo", (meeting.lat, meeting.lon))
    if meeting.description:
        event.add("description", meeting.description)
    event.add("sequence", meeting.sequence)
    event.add("status", "CANCELLED" if meeting.cancelled else "CONFIRMED")
    return event


def series_ics(meeting: IcsMeeting, now: dt.datetime) -> bytes:
    """The whole meeting: RRULE + EXDATE + RECURRENCE-ID overrides, local times with VTIMEZONE."""
    sched = meeting.schedule
    cal = _calendar(meeting.title)
    uid = meeting_uid(meeting.meeting_id)
    if not sched.is_recurring:
        # A single meeting: its one (possibly moved) occurrence; a skipped one shows as cancelled.
        occ = sched.occurrences_between(
            sched.dtstart - dt.timedelta(days=3660), sched.dtstart + dt.timedelta(days=3660)
        )
        start = occ[0].start if occ else sched.dtstart
        event = _event(meeting, uid, start, start + sched.duration, now)
        if not occ:
            event["status"] = "CANCELLED"
        cal.add_component(event)
    else:
        event = _event(meeting, uid, sched.dtstart, sched.dtstart + sched.duration, now)
        assert sched.rrule is not None
        event.add("rrule", vRecur.from_ical(sched.rrule))
        for skipped in sched.exdates:
            event.add("exdate", skipped.astimezone(sched.zone))
        cal.add_component(event)
        for original, new in sched.moves:
            new_local = new.astimezone(sched.zone)
            override = _event(meeting, uid, new_local, new_local + sched.duration, now)
            override.add("recurrence-id", original.astimezone(sched.zone))
            cal.add_component(override)
    cal.add_missing_timezones()
    return cal.to_ical()


def occurrence_ics(meeting: IcsMeeting, occurrence: Occurrence, now: dt.datetime) -> bytes:
    """One occurrence as a plain event in UTC (no rule, no timezone needed)."""
    cal = _calendar(meeting.title)
    stamp = occurrence.original_start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    uid = f"meeting-{meeting.meeting_id}-{stamp}@{UID_DOMAIN}"
    cal.add_component(_event(meeting, uid, occurrence.start_utc, occurrence.end_utc, now))
    return cal.to_ical()
