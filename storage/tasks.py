"""Wish-wall tasks, their claims and their group cards.

A claim takes a slot with one conditional statement (`take_slot`): the row is written only while the
count of slot holders is below the task's slots, so capacity holds however many presses race.
Slot holders are claims in `HOLDING` states; waitlisted and assigned_pending claims hold none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.db import Executor, Row, from_db, from_db_required, to_db

# Claim states that hold one of the task's slots.
HOLDING = ("claimed", "done", "no_show")
# Claim states from which a user may start over (claim or join the waitlist again).
ENDED = ("withdrawn", "declined")
# Task states in which claims are taken.
TAKING = ("open", "full")
_HOLDING_SQL = "('claimed', 'done', 'no_show')"


@dataclass(frozen=True)
class Task:
    id: int
    title: str
    description: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    place_text: str
    lat: float | None
    lon: float | None
    area: str | None
    slots: int
    points: int
    claim_deadline: dt.datetime | None
    private_details: str | None
    created_by: int
    state: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class Claim:
    id: int
    task_id: int
    user_id: int
    state: str
    position: int | None
    confirmed: bool
    assigned_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class TaskCount:
    """A task with how many slots are taken and how many wait."""

    task: Task
    taken: int
    waiting: int

    @property
    def left(self) -> int:
        return max(self.task.slots - self.taken, 0)


@dataclass(frozen=True)
class Card:
    task_id: int
    chat_id: int
    message_id: int


def _task(row: Row) -> Task:
    return Task(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        starts_at=from_db_required(row["starts_at"]),
        ends_at=from_db(row["ends_at"]),
        place_text=row["place_text"],
        lat=row["lat"],
        lon=row["lon"],
        area=row["area"],
        slots=row["slots"],
        points=row["points"],
        claim_deadline=from_db(row["claim_deadline"]),
        private_details=row["private_details"],
        created_by=row["created_by"],
        state=row["state"],
        version=row["version"],
        created_at=from_db_required(row["created_at"]),
        updated_at=from_db_required(row["updated_at"]),
    )


def _claim(row: Row) -> Claim:
    return Claim(
        id=row["id"],
        task_id=row["task_id"],
        user_id=row["user_id"],
        state=row["state"],
        position=row["position"],
        confirmed=bool(row["confirmed"]),
        assigned_by=row["assigned_by"],
        created_at=from_db_required(row["created_at"]),
        updated_at=from_db_required(row["updated_at"]),
    )


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


# -- tasks ------------------------------------------------------------------------------------------


async def insert(
    db: Executor,
    *,
    title: str,
    description: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None,
    place_text: str,
    lat: float | None,
    lon: float | None,
    area: str | None,
    slots: int,
    points: int,
    claim_deadline: dt.datetime | None,
    private_details: str | None,
    created_by: int,
    now: dt.datetime,
) -> int:
    return await db.fetchval(
        "INSERT INTO tasks(title, description, starts_at, ends_at, place_text, lat, lon, area, slots, points,"
        " claim_deadline, private_details, created_by, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            title,
            description,
            to_db(starts_at),
            to_db(ends_at),
            place_text,
            lat,
            lon,
            area,
            slots,
            points,
            to_db(claim_deadline),
            private_details,
            created_by,
            to_db(now),
            to_db(now),
        ),
    )


async def get(db: Executor, task_id: int) -> Task | None:
    row = await db.fetchone("SELECT * FROM tasks WHERE id = ?", (task_id,))
    return _task(row) if row else None


async def touch(db: Executor, task_id: int, now: dt.datetime) -> Task | None:
    """Record a change: bump the version and set open/full from the slots taken (other states stay)."""
    row = await db.fetchone(
        f"""
        UPDATE tasks SET version = version + 1, updated_at = ?,
            state = CASE WHEN state NOT IN ('open', 'full') THEN state
                         WHEN (SELECT COUNT(*) FROM task_claims
                               WHERE task_id = tasks.id AND state IN {_HOLDING_SQL}) >= slots THEN 'full'
                         ELSE 'open' END
        WHERE id = ? RETURNING *
        """,
        (to_db(now), task_id),
    )
    return _task(row) if row else None


async def set_state(
    db: Executor, task_id: int, state: str, from_states: Iterable[str], now: dt.datetime
) -> Task | None:
    """Move a task to `state` if it is in one of `from_states` (bumping the version); None if not."""
    allowed = tuple(from_states)
    row = await db.fetchone(
        f"UPDATE tasks SET state = ?, version = version + 1, updated_at = ?"
        f" WHERE id = ? AND state IN ({_marks(allowed)}) RETURNING *",
        (state, to_db(now), task_id, *allowed),
    )
    return _task(row) if row else None


async def with_counts(db: Executor, task_ids: Sequence[int]) -> list[TaskCount]:
    if not task_ids:
        return []
    rows = await db.fetchall(
        f"""
        SELECT t.*,
            (SELECT COUNT(*) FROM task_claims c WHERE c.task_id = t.id AND c.state IN {_HOLDING_SQL}) AS taken,
            (SELECT COUNT(*) FROM task_claims c WHERE c.task_id = t.id AND c.state = 'waitlisted') AS waiting
        FROM tasks t WHERE t.id IN ({_marks(task_ids)}) ORDER BY t.starts_at, t.id
        """,
        list(task_ids),
    )
    return [TaskCount(_task(r), r["taken"], r["waiting"]) for r in rows]


async def count(db: Executor, task_id: int) -> TaskCount | None:
    found = await with_counts(db, [task_id])
    return found[0] if found else None


# -- the wall: tasks still taking claims (open or full, not started, claim deadline not passed) ------
# Every query reads the partial indexes of 0032_wall_and_rank.sql (open/full tasks only).

_TAKING_WHERE = (
    "state IN ('open', 'full') AND starts_at > ?1 AND (claim_deadline IS NULL OR claim_deadline > ?1)"
)


def _wall_where(now: dt.datetime, area: str | None) -> tuple[str, str, list[object]]:
    """(the wall's index for a list or count, the WHERE, its parameters). INDEXED BY (SQLite's) holds
    the planner to the covering index in the page's order, whatever statistics it has or lacks."""
    if area is None:
        return "tasks_wall", _TAKING_WHERE, [to_db(now)]
    return "tasks_wall_area", _TAKING_WHERE + " AND area = ?2", [to_db(now), area]


async def wall_counts(db: Executor, now: dt.datetime, area: str | None = None) -> tuple[int, int]:
    """(tasks taking claims, those of them with a pin): one pass over the open tasks' index entries."""
    index, where, params = _wall_where(now, area)
    row = await db.fetchone(
        f"SELECT COUNT(*), COUNT(lat) FROM tasks INDEXED BY {index} WHERE {where}", params
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def wall_soonest(
    db: Executor,
    now: dt.datetime,
    *,
    limit: int,
    offset: int = 0,
    area: str | None = None,
    unpinned: bool = False,
) -> list[int]:
    """Ids of tasks taking claims, soonest first (then by id), one page; ``unpinned``: only those
    without a pin."""
    index, where, params = _wall_where(now, area)
    if unpinned:
        where += " AND lat IS NULL"
    n = len(params)
    rows = await db.fetchall(
        f"SELECT id FROM tasks INDEXED BY {index} WHERE {where} ORDER BY starts_at, id LIMIT ?{n + 1} OFFSET ?{n + 2}",
        [*params, limit, offset],
    )
    return [r[0] for r in rows]


async def wall_pinned_in(
    db: Executor,
    now: dt.datetime,
    box: tuple[float, float, float, float],
    area: str | None = None,
) -> list[tuple[int, float, float, dt.datetime]]:
    """(id, lat, lon, starts_at) of the pinned tasks taking claims inside ``box`` = (min_lat,
    max_lat, min_lon, max_lon): one range of the index tasks_wall_near (or _near_area)."""
    _, where, params = _wall_where(now, area)
    index = "tasks_wall_near" if area is None else "tasks_wall_near_area"
    n = len(params)
    rows = await db.fetchall(
        f"SELECT id, lat, lon, starts_at FROM tasks INDEXED BY {index} WHERE {where} AND lat IS NOT NULL"
        f" AND lat BETWEEN ?{n + 1} AND ?{n + 2} AND lon BETWEEN ?{n + 3} AND ?{n + 4}",
        [*params, *box],
    )
    return [(r[0], r[1], r[2], from_db_required(r[3])) for r in rows]


async def created_by(db: Executor, user_id: int, states: Sequence[str]) -> list[TaskCount]:
    rows = await db.fetchall(
        f"SELECT id FROM tasks WHERE created_by = ? AND state IN ({_marks(states)})", (user_id, *states)
    )
    return await with_counts(db, [r[0] for r in rows])


# -- claims -----------------------------------------------------------------------------------------


async def get_claim(db: Executor, task_id: int, user_id: int) -> Claim | None:
    row = await db.fetchone("SELECT * FROM task_claims WHERE task_id = ? AND user_id = ?", (task_id, user_id))
    return _claim(row) if row else None


async def take_slot(
    db: Executor, task_id: int, user_id: int, from_states: Iterable[str], now: dt.datetime
) -> Claim | None:
    """Claim a slot in one statement, only while fewer than `slots` are held.

    A user without a row gets a new 'claimed' row; a user whose row is in `from_states` has it moved
    to 'claimed'. Returns the claim, or None when the task is full or the user's row is elsewhere.
    """
    allowed = tuple(from_states)
    stamp = to_db(now)
    rows = await db.fetchall(
        f"""
        INSERT INTO task_claims(task_id, user_id, state, created_at, updated_at)
        SELECT ?, ?, 'claimed', ?, ? WHERE
            (SELECT COUNT(*) FROM task_claims WHERE task_id = ? AND state IN {_HOLDING_SQL})
            < (SELECT slots FROM tasks WHERE id = ?)
        ON CONFLICT(task_id, user_id) DO UPDATE SET
            state = 'claimed', position = NULL, confirmed = 0, updated_at = excluded.updated_at
        WHERE task_claims.state IN ({_marks(allowed)})
        RETURNING *
        """,
        (task_id, user_id, stamp, stamp, task_id, task_id, *allowed),
    )
    return _claim(rows[0]) if rows else None


async def join_waitlist(
    db: Executor, task_id: int, user_id: int, from_states: Iterable[str], now: dt.datetime
) -> Claim | None:
    """Put the user at the end of the waitlist (new row, or a row in `from_states`)."""
    allowed = tuple(from_states)
    stamp = to_db(now)
    rows = await db.fetchall(
        f"""
        INSERT INTO task_claims(task_id, user_id, state, position, created_at, updated_at)
        SELECT ?, ?, 'waitlisted',
            (SELECT COALESCE(MAX(position), 0) + 1 FROM task_claims WHERE task_id = ?), ?, ?
        WHERE TRUE
        ON CONFLICT(task_id, user_id) DO UPDATE SET
            state = 'waitlisted', position = excluded.position, confirmed = 0, updated_at = excluded.updated_at
        WHERE task_claims.state IN ({_marks(allowed)})
        RETURNING *
        """,
        (task_id, user_id, task_id, stamp, stamp, *allowed),
    )
    return _claim(rows[0]) if rows else None


async def assign(
    db: Executor, task_id: int, user_id: int, assigned_by: int, from_states: Iterable[str], now: dt.datetime
) -> Claim | None:
    """A captain's assignment: the user's row becomes 'assigned_pending' (new, or from `from_states`)."""
    allowed = tuple(from_states)
    stamp = to_db(now)
    rows = await db.fetchall(
        f"""
        INSERT INTO task_claims(task_id, user_id, state, assigned_by, created_at, updated_at)
        VALUES (?, ?, 'assigned_pending', ?, ?, ?)
        ON CONFLICT(task_id, user_id) DO UPDATE SET
            state = 'assigned_pending', position = NULL, confirmed = 0,
            assigned_by = excluded.assigned_by, updated_at = excluded.updated_at
        WHERE task_claims.state IN ({_marks(allowed)})
        RETURNING *
        """,
        (task_id, user_id, assigned_by, stamp, stamp, *allowed),
    )
    return _claim(rows[0]) if rows else None


async def set_claim_state(
    db: Executor, task_id: int, user_id: int, state: str, from_states: Iterable[str], now: dt.datetime
) -> Claim | None:
    """Move a claim to `state` if it is in one of `from_states`; None if it was not."""
    allowed = tuple(from_states)
    row = await db.fetchone(
        f"UPDATE task_claims SET state = ?, position = NULL, updated_at = ?"
        f" WHERE task_id = ? AND user_id = ? AND state IN ({_marks(allowed)}) RETURNING *",
        (state, to_db(now), task_id, user_id, *allowed),
    )
    return _claim(row) if row else None


async def set_confirmed(db: Executor, task_id: int, user_id: int, now: dt.datetime) -> Claim | None:
    row = await db.fetchone(
        "UPDATE task_claims SET confirmed = 1, updated_at = ?"
        " WHERE task_id = ? AND user_id = ? AND state = 'claimed' RETURNING *",
        (to_db(now), task_id, user_id),
    )
    return _claim(row) if row else None


async def first_waitlisted(db: Executor, task_id: int) -> Claim | None:
    row = await db.fetchone(
        "SELECT * FROM task_claims WHERE task_id = ? AND state = 'waitlisted' ORDER BY position, id LIMIT 1",
        (task_id,),
    )
    return _claim(row) if row else None


async def claims(db: Executor, task_id: int, states: Sequence[str] | None = None) -> list[Claim]:
    """A task's claims: slot holders in claim order, then the waitlist in its order."""
    sql = "SELECT * FROM task_claims WHERE task_id = ?"
    params: list[object] = [task_id]
    if states is not None:
        sql += f" AND state IN ({_marks(states)})"
        params.extend(states)
    sql += " ORDER BY position IS NOT NULL, position, created_at, id"
    return [_claim(r) for r in await db.fetchall(sql, params)]


async def user_claims(db: Executor, user_id: int, states: Sequence[str]) -> list[Claim]:
    rows = await db.fetchall(
        f"SELECT c.* FROM task_claims c JOIN tasks t ON t.id = c.task_id"
        f" WHERE c.user_id = ? AND c.state IN ({_marks(states)}) ORDER BY t.starts_at, t.id",
        (user_id, *states),
    )
    return [_claim(r) for r in rows]


# -- group cards ------------------------------------------------------------------------------------


async def add_card(db: Executor, task_id: int, chat_id: int, message_id: int, now: dt.datetime) -> bool:
    changed = await db.execute(
        "INSERT INTO task_cards(task_id, chat_id, message_id, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(task_id, chat_id, message_id) DO NOTHING",
        (task_id, chat_id, message_id, to_db(now)),
    )
    return changed > 0


async def cards(db: Executor, task_id: int) -> list[Card]:
    rows = await db.fetchall(
        "SELECT task_id, chat_id, message_id FROM task_cards WHERE task_id = ? ORDER BY chat_id, message_id",
        (task_id,),
    )
    return [Card(r[0], r[1], r[2]) for r in rows]
