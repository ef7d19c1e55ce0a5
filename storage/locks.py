"""Named locks held until the end of a transaction: writers of the same thing go one at a time.

SQLite needs none: a transaction (BEGIN IMMEDIATE) is already the only writer, so a count checked in
it still holds at its INSERT. PostgreSQL's READ COMMITTED runs transactions side by side, so a check
then write ("fewer than `slots` claims", "MAX(seq) + 1", "the balance covers it") can be passed by two
at once; `hold` takes a transaction-scoped advisory lock per name first (in sorted order, so two
holders of overlapping names never deadlock), and the statements after it see every write committed
before.
"""

from __future__ import annotations

from storage.db import Executor


async def hold(tx: Executor, *names: str) -> None:
    """Hold these names' locks for the rest of `tx` (PostgreSQL; nothing to do on SQLite)."""
    if tx.dialect != "postgresql":
        return
    for name in sorted(set(names)):
        await tx.fetchval("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))


def task(task_id: int) -> str:
    """A task's claims, waitlist positions and slots."""
    return f"task:{int(task_id)}"


def points(user_id: int) -> str:
    """A user's balance, codes and redemptions."""
    return f"points:{int(user_id)}"


def report_seq(kind: str) -> str:
    """The next reference number of a kind of report (MAX(seq) + 1)."""
    return f"report-seq:{kind}"
