"""The one adapter to python-telegram-bot beyond its public API (checked against PTB 22.8).

Everything else in the project uses PTB's public API only. What is here, and why:

* `end_conversation`: PTB offers no public call to leave a ConversationHandler's state for a key from
  outside that handler; /cancel must leave every open flow at once (handlers/core.py). It uses the
  handler's own helpers `_get_key` and `_update_state` (and the public `timeout_jobs`).
  tests/test_e2e_core.py (/cancel with two flows open) fails if a release changes them.
* `retry_after_seconds`: `RetryAfter.retry_after` is an int, deprecated since 22.2 in favour of a
  timedelta (chosen by an environment variable); this reads either, without the warning.
* `ConversationKey` / `ConversationDict`: the persistence's types, spelled here instead of importing
  them from PTB's private `telegram.ext._utils.types`.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import ConversationHandler

ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]


def end_conversation(handler: ConversationHandler[Any], update: object) -> bool:
    """Leave `handler`'s conversation for the key of `update` (its timeout job too). False when the
    handler does not track this kind of update."""
    try:
        key = handler._get_key(update)  # type: ignore[arg-type]
    except RuntimeError:  # the handler does not track this kind of update
        return False
    job = handler.timeout_jobs.pop(key, None)
    if job is not None:
        job.schedule_removal()
    handler._update_state(ConversationHandler.END, key)
    return True


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)
