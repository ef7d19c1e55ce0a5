"""The one clock. Services take "now" from here so tests can move time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware, in UTC."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever time jumps (only fake clocks jump)."""
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def subscribe(self, callback: Callable[[], None]) -> None:
        # Real time never jumps; the outbox re-arms itself on its own timer.
        return None


class FakeClock:
    """A controllable clock for tests and the sandbox.

    Time only moves when told to (`advance`, `set`); listeners (the outbox worker) are woken
    on every move so that due work runs at once.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = (start or dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)).astimezone(UTC)
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> dt.datetime:
        return self._now

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def set(self, when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs an aware datetime")
        self._now = when.astimezone(UTC)
        for callback in list(self._listeners):
            callback()

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        self.set(self._now + (delta if delta is not None else dt.timedelta(**kwargs)))
        return self._now


def to_utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError("naive datetime: every time in xiaoge-bot is timezone-aware")
    return when.astimezone(UTC)
