"""Meetings: schedule rows, targets, occurrence overrides, RSVPs, agenda topics, reminder links.

An occurrence is identified by its original start in UTC (``occurrence`` columns), which does not
change when that single occurrence is moved.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.db import Executor, Row, from_db_required, to_db

LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"
ANSWERS = ("yes", "no", "maybe")


@dataclass(frozen=True)
class Override:
    original_start: dt.datetime  # UTC
    action: str  # skip | move
    new_start: dt.datetime | None  # UTC, for move
    set_at: dt.datetime | None = None  # when it was decided


@dataclass(frozen=True)
class MeetingRecord:
    id: int
    title: str
    place: str
    lat: float | None
    lon: float | None
    tz: str
    dtstart_local: dt.datetime  # naive wall time in tz
    duration_minutes: int
    rrule: str | None
    reminder_offsets: tuple[int, ...]
    topic_deadline_minutes: int
    organizer_id: int
    state: str
    revision: int
    created_at: dt.datetime
    updated_at: dt.datetime
    chat_ids: tuple[int, ...] = ()
    areas: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True)
class NewMeeting:
    title: str
    tz: str
    dtstart_local: dt.datetime  # naive wall time in tz
    duration_minutes: int
    organizer_id: int
    rrule: str | None = None
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    reminder_offsets: tuple[int, ...] = (1440, 60)
    topic_deadline_minutes: int = 1200
    chat_ids: tuple[int, ...] = ()
    areas: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rsvp:
    user_id: int
    answer: str
    updated_at: dt.datetime


@dataclass(frozen=True)
class Topic:
    id: int
    meeting_id: int
    occurrence: dt.datetime
    user_id: int
    text: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ReminderLink:
    dedup_key: str
    meeting_id: int
    occurrence: dt.datetime
    chat_id: int
    offset_minutes: int


@dataclass(frozen=True)
class SentReminder:
    dedup_key: str
    chat_id: int
    offset_minutes: int
    state: str  # the outbox row's state
    message_id: int | None


def _local_text(naive: dt.datetime) -> str:
    if naive.tzinfo is not None:
        raise ValueError("dtstart_local is a naive wall time")
    return naive.strftime(LOCAL_FORMAT)


def _meeting(row: Row, targets: Sequence[Row] = (), overrides: Sequence[Row] = ()) -> MeetingRecord:
    return MeetingRecord(
        id=row["id"],
        title=row["title"],
        place=row["place"],
        lat=row["lat"],
        lon=row["lon"],
        tz=row["tz"],
        dtstart_local=dt.datetime.strptime(row["dtstart_local"], LOCAL_FORMAT),
        duration_minutes=row["duration_minutes"],
        rrule=row["rrule"],
        reminder_offsets=tuple(int(x) for x in json.loads(row["reminder_offsets"])),
        topic_deadline_minutes=row["topic_deadline_minutes"],
        organizer_id=row["organizer_id"],
        state=row["state"],
        revision=row["revision"],
        created_at=from_db_required(row["created_at"]),
        updated_at=from_db_required(row["updated_at"]),
        chat_ids=tuple(t["chat_id"] for t in targets if t["chat_id"] is not None),
        areas=tuple(t["area"] for t in targets if t["area"] is not None),
        overrides=tuple(
            Override(
                from_db_required(o["original_start"]),
                o["action"],
                from_db_required(o["new_start"]) if o["new_start"] else None,
                from_db_required(o["created_at"]),
            )
            for o in overrides
        ),
    )


async def _insert_targets(
    db: Executor, meeting_id: int, chat_ids: Iterable[int], areas: Iterable[str]
) -> None:
    for chat_id in dict.fromkeys(chat_ids):
        await db.execute(
            "INSERT INTO meeting_targets(meeting_id, chat_id) VALUES (?, ?)", (meeting_id, chat_id)
        )
    for area in dict.fromkeys(areas):
        await db.execute("INSERT INTO meeting_targets(meeting_id, area) VALUES (?, ?)", (meeting_id, area))


async def create(db: Executor, new: NewMeeting, now: dt.datetime) -> int:
    """Insert a meeting and its targets. Call inside a transaction to make it all-or-nothing."""
    meeting_id = await db.fetchval(
        """
        INSERT INTO meetings(title, place, lat, lon, tz, dtstart_local, duration_minutes, rrule,
            reminder_offsets, topic_deadline_minutes, organizer_id, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING id
        """,
        (
            new.title,
            new.place,
            new.lat,
            new.lon,
            new.tz,
            _local_text(new.dtstart_local),
            new.duration_minutes,
            new.rrule,
            json.dumps(list(new.reminder_offsets)),
            new.topic_deadline_minutes,
            new.organizer_id,
            to_db(now),
            to_db(now),
        ),
    )
    await _insert_targets(db, meeting_id, new.chat_ids, new.areas)
    return meeting_id


async def get(db: Executor, meeting_id: int) -> MeetingRecord | None:
    row = await db.fetchone("SELECT * FROM meetings WHERE id = ?", (meeting_id,))
    if row is None:
        return None
    targets = await db.fetchall(
        "SELECT chat_id, area FROM meeting_targets WHERE meeting_id = ? ORDER BY chat_id, area", (meeting_id,)
    )
    overrides = await db.fetchall(
        "SELECT * FROM meeting_overrides WHERE meeting_id = ? ORDER BY original_start", (meeting_id,)
    )
    return _meeting(row, targets, overrides)


async def _many(db: Executor, rows: list[Row]) -> list[MeetingRecord]:
    """The meetings of `rows` (ids) with their targets and overrides: three queries, not three each."""
    ids = [row["id"] for row in rows]
    if not ids:
        return []
    found: dict[int, Row] = {}
    targets: dict[int, list[Row]] = {}
    overrides: dict[int, list[Row]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in await db.fetchall(f"SELECT * FROM meetings WHERE id IN ({marks})", chunk):
            found[row["id"]] = row
        for row in await db.fetchall(
            f"SELECT meeting_id, chat_id, area FROM meeting_targets WHERE meeting_id IN ({marks})"
            " ORDER BY meeting_id, chat_id, area",
            chunk,
        ):
            targets.setdefault(row["meeting_id"], []).append(row)
        for row in await db.fetchall(
            f"SELECT * FROM meeting_overrides WHERE meeting_id IN ({marks}) ORDER BY meeting_id, original_start",
            chunk,
        ):
            overrides.setdefault(row["meeting_id"], []).append(row)
    return [_meeting(found[i], targets.get(i, ()), overrides.get(i, ())) for i in ids if i in found]


async def list_active(db: Executor) -> list[MeetingRecord]:
    return await _many(db, await db.fetchall("SELECT id FROM meetings WHERE state = 'active' ORDER BY id"))


async def for_targets(db: Executor, chat_ids: Sequence[int], areas: Sequence[str]) -> list[MeetingRecord]:
    """Active meetings announced in any of ``chat_ids`` or to any of ``areas``."""
    if not chat_ids and not areas:
        return []
    conditions, params = [], []
    if chat_ids:
        conditions.append(f"t.chat_id IN ({','.join('?' * len(chat_ids))})")
        params.extend(chat_ids)
    if areas:
        conditions.append(f"t.area IN ({','.join('?' * len(areas))})")
        params.extend(areas)
    rows = await db.fetchall(
        "SELECT DISTINCT m.id FROM meetings m JOIN meeting_targets t ON t.meeting_id = m.id"
        f" WHERE m.state = 'active' AND ({' OR '.join(conditions)}) ORDER BY m.id",
        params,
    )
    return await _many(db, rows)


_UPDATABLE = {
    "title",
    "place",
    "lat",
    "lon",
    "tz",
    "dtstart_local",
    "duration_minutes",
    "rrule",
    "reminder_offsets",
    "topic_deadline_minutes",
}


async def update(db: Executor, meeting_id: int, now: dt.datetime, **fields: object) -> bool:
    """Change fields of an active meeting and bump its revision. False when it is not active."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    values = dict(fields)
    if "dtstart_local" in values:
        values["dtstart_local"] = _local_text(values["dtstart_local"])  # type: ignore[arg-type]
    if "reminder_offsets" in values:
        values["reminder_offsets"] = json.dumps(list(values["reminder_offsets"]))  # type: ignore[call-overload]
    sets = "".join(f"{name} = ?, " for name in values)
    changed = await db.execute(
        f"UPDATE meetings SET {sets}revision = revision + 1, updated_at = ? WHERE id = ? AND state = 'active'",
        (*values.values(), to_db(now), meeting_id),
    )
    return changed > 0


async def bump_revision(db: Executor, meeting_id: int, now: dt.datetime) -> int | None:
    """Bump the revision of an active meeting; returns the new revision (None if not active)."""
    return await db.fetchval(
        "UPDATE meetings SET revision = revision + 1, updated_at = ? WHERE id = ? AND state = 'active'"
        " RETURNING revision",
        (to_db(now), meeting_id),
    )


async def set_targets(db: Executor, meeting_id: int, chat_ids: Iterable[int], areas: Iterable[str]) -> None:
    await db.execute("DELETE FROM meeting_targets WHERE meeting_id = ?", (meeting_id,))
    await _insert_targets(db, meeting_id, chat_ids, areas)


async def cancel(db: Executor, meeting_id: int, now: dt.datetime) -> bool:
    """active -> cancelled, once. False when it was not active."""
    changed = await db.execute(
        "UPDATE meetings SET state = 'cancelled', revision = revision + 1, updated_at = ?"
        " WHERE id = ? AND state = 'active'",
        (to_db(now), meeting_id),
    )
    return changed > 0


async def set_override(
    db: Executor,
    meeting_id: int,
    original_start: dt.datetime,
    action: str,
    new_start: dt.datetime | None,
    now: dt.datetime,
) -> None:
    await db.execute(
        """
        INSERT INTO meeting_overrides(meeting_id, original_start, action, new_start, created_at)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(meeting_id, original_start) DO UPDATE SET
            action = excluded.action, new_start = excluded.new_start, created_at = excluded.created_at
        """,
        (meeting_id, to_db(original_start), action, to_db(new_start), to_db(now)),
    )


async def delete_override(db: Executor, meeting_id: int, original_start: dt.datetime) -> int:
    return await db.execute(
        "DELETE FROM meeting_overrides WHERE meeting_id = ? AND original_start = ?",
        (meeting_id, to_db(original_start)),
    )


async def clear_overrides(db: Executor, meeting_id: int) -> int:
    return await db.execute("DELETE FROM meeting_overrides WHERE meeting_id = ?", (meeting_id,))


# -- RSVPs ------------------------------------------------------------------------------------------


async def set_rsvp(
    db: Executor, meeting_id: int, occurrence: dt.datetime, user_id: int, answer: str, now: dt.datetime
) -> bool:
    """Record an answer; True when it changed anything (the same answer twice is a no-op)."""
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}")
    changed = await db.execute(
        """
        INSERT INTO meeting_rsvps(meeting_id, occurrence, user_id, answer, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(meeting_id, occurrence, user_id) DO UPDATE SET
            answer = excluded.answer, updated_at = excluded.updated_at
        WHERE meeting_rsvps.answer <> excluded.answer
        """,
        (meeting_id, to_db(occurrence), user_id, answer, to_db(now)),
    )
    return changed > 0


async def rsvp_counts(db: Executor, meeting_id: int, occurrence: dt.datetime) -> dict[str, int]:
    rows = await db.fetchall(
        "SELECT answer, COUNT(*) FROM meeting_rsvps WHERE meeting_id = ? AND occurrence = ? GROUP BY answer",
        (meeting_id, to_db(occurrence)),
    )
    counts = dict.fromkeys(ANSWERS, 0)
    counts.update({r[0]: r[1] for r in rows})
    return counts


async def rsvp_counts_of(
    db: Executor, meeting_id: int, occurrences: Sequence[dt.datetime]
) -> dict[dt.datetime, dict[str, int]]:
    """`rsvp_counts` of several occurrences in one query (keyed by the occurrences given)."""
    counts = {occ: dict.fromkeys(ANSWERS, 0) for occ in occurrences}
    if not occurrences:
        return counts
    by_text = {to_db(occ): occ for occ in occurrences}
    rows = await db.fetchall(
        "SELECT occurrence, answer, COUNT(*) FROM meeting_rsvps"
        f" WHERE meeting_id = ? AND occurrence IN ({','.join('?' * len(by_text))}) GROUP BY occurrence, answer",
        (meeting_id, *by_text),
    )
    for occurrence, answer, count in rows:
        counts[by_text[occurrence]][answer] = count
    return counts


async def rsvp_counts_many(
    db: Executor, wanted: Sequence[tuple[int, dt.datetime]]
) -> dict[tuple[int, dt.datetime], dict[str, int]]:
    """`rsvp_counts` of many (meeting id, occurrence) pairs in one query (a key seek per pair)."""
    counts = {pair: dict.fromkeys(ANSWERS, 0) for pair in wanted}
    by_text = {(meeting_id, to_db(occ)): (meeting_id, occ) for meeting_id, occ in wanted}
    pairs = list(by_text)
    for start in range(0, len(pairs), 400):
        chunk = pairs[start : start + 400]
        rows = await db.fetchall(
            f"WITH want(m, o) AS (VALUES {','.join(['(CAST(? AS BIGINT), CAST(? AS TEXT))'] * len(chunk))})"
            " SELECT r.meeting_id, r.occurrence, r.answer, COUNT(*) FROM want"
            " JOIN meeting_rsvps r ON r.meeting_id = want.m AND r.occurrence = want.o GROUP BY 1, 2, 3",
            [value for pair in chunk for value in pair],
        )
        for meeting_id, occurrence, answer, count in rows:
            counts[by_text[(meeting_id, occurrence)]][answer] = count
    return counts


async def rsvps(db: Executor, meeting_id: int, occurrence: dt.datetime) -> list[Rsvp]:
    rows = await db.fetchall(
        "SELECT user_id, answer, updated_at FROM meeting_rsvps WHERE meeting_id = ? AND occurrence = ?"
        " ORDER BY updated_at, user_id",
        (meeting_id, to_db(occurrence)),
    )
    return [Rsvp(r["user_id"], r["answer"], from_db_required(r["updated_at"])) for r in rows]


async def get_rsvp(db: Executor, meeting_id: int, occurrence: dt.datetime, user_id: int) -> str | None:
    return await db.fetchval(
        "SELECT answer FROM meeting_rsvps WHERE meeting_id = ? AND occurrence = ? AND user_id = ?",
        (meeting_id, to_db(occurrence), user_id),
    )


# -- Topics -----------------------------------------------------------------------------------------


async def add_topic(
    db: Executor, meeting_id: int, occurrence: dt.datetime, user_id: int, text: str, now: dt.datetime
) -> int:
    return await db.fetchval(
        "INSERT INTO meeting_topics(meeting_id, occurrence, user_id, text, created_at) VALUES (?, ?, ?, ?, ?)"
        " RETURNING id",
        (meeting_id, to_db(occurrence), user_id, text, to_db(now)),
    )


async def topics(db: Executor, meeting_id: int, occurrence: dt.datetime) -> list[Topic]:
    rows = await db.fetchall(
        "SELECT * FROM meeting_topics WHERE meeting_id = ? AND occurrence = ? ORDER BY id",
        (meeting_id, to_db(occurrence)),
    )
    return [
        Topic(
            r["id"],
            r["meeting_id"],
            from_db_required(r["occurrence"]),
            r["user_id"],
            r["text"],
            from_db_required(r["created_at"]),
        )
        for r in rows
    ]


async def topics_of(
    db: Executor, meeting_id: int, occurrences: Sequence[dt.datetime]
) -> dict[dt.datetime, list[Topic]]:
    """`topics` of several occurrences in one query (keyed by the occurrences given)."""
    found: dict[dt.datetime, list[Topic]] = {occ: [] for occ in occurrences}
    if not occurrences:
        return found
    by_text = {to_db(occ): occ for occ in occurrences}
    rows = await db.fetchall(
        f"SELECT * FROM meeting_topics WHERE meeting_id = ? AND occurrence IN ({','.join('?' * len(by_text))})"
        " ORDER BY id",
        (meeting_id, *by_text),
    )
    for r in rows:
        found[by_text[r["occurrence"]]].append(
            Topic(r["id"], r["meeting_id"], by_text[r["occurrence"]], r["user_id"], r["text"],
                  from_db_required(r["created_at"]))
        )  # fmt: skip
    return found


async def topics_many(
    db: Executor, wanted: Sequence[tuple[int, dt.datetime]]
) -> dict[tuple[int, dt.datetime], list[Topic]]:
    """`topics` of many (meeting id, occurrence) pairs in one query (a key seek per pair)."""
    found: dict[tuple[int, dt.datetime], list[Topic]] = {pair: [] for pair in wanted}
    by_text = {(meeting_id, to_db(occ)): (meeting_id, occ) for meeting_id, occ in wanted}
    pairs = list(by_text)
    for start in range(0, len(pairs), 400):
        chunk = pairs[start : start + 400]
        rows = await db.fetchall(
            f"WITH want(m, o) AS (VALUES {','.join(['(CAST(? AS BIGINT), CAST(? AS TEXT))'] * len(chunk))})"
            " SELECT t.* FROM want JOIN meeting_topics t ON t.meeting_id = want.m AND t.occurrence = want.o"
            " ORDER BY t.id",
            [value for pair in chunk for value in pair],
        )
        for r in rows:
            meeting_id, occ = by_text[(r["meeting_id"], r["occurrence"])]
            found[(meeting_id, occ)].append(
                Topic(r["id"], meeting_id, occ, r["user_id"], r["text"], from_db_required(r["created_at"]))
            )
    return found


async def count_user_topics(db: Executor, meeting_id: int, occurrence: dt.datetime, user_id: int) -> int:
    return int(
        await db.fetchval(
            "SELECT COUNT(*) FROM meeting_topics WHERE meeting_id = ? AND occurrence = ? AND user_id = ?",
            (meeting_id, to_db(occurrence), user_id),
        )
    )


# -- What plans were made from ----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSignature:
    """The digest of a meeting's last plan's inputs and the occurrences (original starts) it covered."""

    signature: str
    occurrences: frozenset[int]  # epoch minutes (see bot.meetings.service.occ_code)


async def plan_signatures(db: Executor, meeting_ids: Sequence[int]) -> dict[int, PlanSignature]:
    """The stored plan signatures of these meetings (one query per 500)."""
    found: dict[int, PlanSignature] = {}
    ids = sorted(set(meeting_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await db.fetchall(
            "SELECT meeting_id, signature, occurrences FROM meeting_plans WHERE meeting_id IN ("
            + ", ".join("?" * len(chunk))
            + ")",
            chunk,
        )
        for meeting_id, signature, occurrences in rows:
            codes = frozenset(int(code) for code in occurrences.split(",") if code)
            found[meeting_id] = PlanSignature(signature, codes)
    return found


async def set_plan_signature(
    db: Executor, meeting_id: int, plan: PlanSignature | None, now: dt.datetime
) -> None:
    """Record what the plan just written was made from (None: forget it, the next plan starts afresh)."""
    if plan is None:
        await db.execute("DELETE FROM meeting_plans WHERE meeting_id = ?", (meeting_id,))
        return
    await db.execute(
        "INSERT INTO meeting_plans(meeting_id, signature, occurrences, planned_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(meeting_id) DO UPDATE SET signature = excluded.signature,"
        " occurrences = excluded.occurrences, planned_at = excluded.planned_at",
        (meeting_id, plan.signature, ",".join(map(str, sorted(plan.occurrences))), to_db(now)),
    )


# -- Reminder links ---------------------------------------------------------------------------------


async def link_reminders(db: Executor, links: Iterable[ReminderLink]) -> None:
    await db.executemany(
        "INSERT INTO meeting_reminders(dedup_key, meeting_id, occurrence, chat_id, offset_minutes)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
        [
            (link.dedup_key, link.meeting_id, to_db(link.occurrence), link.chat_id, link.offset_minutes)
            for link in links
        ],
    )


async def reminder_sent(db: Executor, dedup_key: str, chat_id: int, message_id: int) -> bool:
    """Record the sent message of a reminder; False when ``dedup_key`` is no reminder."""
    changed = await db.execute(
        "UPDATE meeting_reminders SET chat_id = ?, message_id = ? WHERE dedup_key = ?",
        (chat_id, message_id, dedup_key),
    )
    return changed > 0


async def reminders_of(db: Executor, meeting_id: int, occurrence: dt.datetime) -> list[SentReminder]:
    """The planned reminders of one occurrence with their outbox state, sent message id and chat
    (the outbox row's chat: a group that became a supergroup has its rows re-addressed).

    A sent reminder whose outbox row was pruned still counts as 'sent' with the message recorded here
    when it was sent; a pruned row that was never sent is left out.
    """
    rows = await db.fetchall(
        """
        SELECT r.dedup_key,
            CASE WHEN r.message_id IS NOT NULL THEN r.chat_id ELSE COALESCE(o.chat_id, r.chat_id) END,
            r.offset_minutes,
            COALESCE(o.state, CASE WHEN r.message_id IS NOT NULL THEN 'sent' END),
            COALESCE(o.message_id, r.message_id)
        FROM meeting_reminders r LEFT JOIN outbox o ON o.dedup_key = r.dedup_key
        WHERE r.meeting_id = ? AND r.occurrence = ? AND (o.id IS NOT NULL OR r.message_id IS NOT NULL)
        ORDER BY 2, r.offset_minutes DESC
        """,
        (meeting_id, to_db(occurrence)),
    )
    return [SentReminder(r[0], r[1], r[2], r[3], r[4]) for r in rows]


# -- Announcement links -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    dedup_key: str
    chat_id: int
    state: str  # the outbox row's state
    message_id: int | None


async def link_announcements(
    db: Executor, meeting_id: int, occurrence: dt.datetime, keys: Iterable[tuple[str, int]]
) -> None:
    """Remember which outbox rows (dedup_key, chat_id) announce ``occurrence`` of the meeting."""
    for dedup_key, chat_id in keys:
        await db.execute(
            "INSERT INTO meeting_announcements(dedup_key, meeting_id, occurrence, chat_id)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(dedup_key) DO NOTHING",
            (dedup_key, meeting_id, to_db(occurrence), chat_id),
        )


async def announcement_sent(db: Executor, dedup_key: str, chat_id: int, message_id: int) -> bool:
    """Record the sent message of an announcement; False when ``dedup_key`` is no announcement."""
    changed = await db.execute(
        "UPDATE meeting_announcements SET chat_id = ?, message_id = ? WHERE dedup_key = ?",
        (chat_id, message_id, dedup_key),
    )
    return changed > 0


async def announcements_of(db: Executor, meeting_id: int, occurrence: dt.datetime) -> list[Announcement]:
    """The announcements of one occurrence with their outbox state and sent message id (a sent one
    whose outbox row was pruned still counts as 'sent'; a pruned one never sent is left out)."""
    rows = await db.fetchall(
        """
        SELECT a.dedup_key, COALESCE(CASE WHEN a.message_id IS NULL THEN o.chat_id END, a.chat_id),
            COALESCE(o.state, CASE WHEN a.message_id IS NOT NULL THEN 'sent' END), a.message_id
        FROM meeting_announcements a LEFT JOIN outbox o ON o.dedup_key = a.dedup_key
        WHERE a.meeting_id = ? AND a.occurrence = ? AND (o.id IS NOT NULL OR a.message_id IS NOT NULL)
        ORDER BY a.chat_id
        """,
        (meeting_id, to_db(occurrence)),
    )
    return [Announcement(r[0], r[1], r[2], r[3]) for r in rows]
