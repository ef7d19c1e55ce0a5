"""The one outbox sender: reminders, escalations, notifications and broadcasts all go out here.

Rows are written first (storage/outbox.py); this worker sends the due ones:

* one row per chat in flight at a time (order within a chat is kept), many chats in parallel, picked
  fairly: a chat with hundreds of due rows never holds back another chat's (`repo.fetch_due`);
* each row moves pending -> sending right before its HTTP call (everything else prepared first) and
  -> sent right after, so a crash (even kill -9) leaves at most the in-flight rows in doubt. At the
  next start those are sent again when their producer asked for it (reminders, urgent notices: a rare
  duplicate beats a missed warning) and otherwise end 'unknown' ("delivery unknown" in a broadcast's
  report, never "failed": a moderator must not resend what arrived);
* pacing through `FloodLimiter` (bulk rows, priority >= 5, stay under the bulk ceiling; replies first);
* 429 -> the row goes back to pending at retry_after (nobody else waits); 403 -> the chat is marked
  unreachable (group inactive / user blocked) and its pending rows skipped; a migrated group gets its
  rows re-addressed; network errors retry with backoff up to `max_attempts`; a time-out is a delivery
  in doubt, settled like a crash: sent again or 'unknown';
* hooks per `kind` run after every final outcome (store a card's message id, broadcast progress);
* a daily job prunes finished rows older than `outbox.keep_days` in small batches (`prune`).

PTB's JobQueue is armed at the next due time to wake the worker; the database stays the truth.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import socket
import warnings
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from telegram import InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.core.container import Core
from bot.core.ptb import retry_after_seconds
from bot.core.ratelimit import FloodLimiter, Ticket, answered_by_telegram
from storage import groups as groups_repo
from storage import outbox as repo
from storage import users as users_repo
from storage.db import Executor
from storage.outbox import NewMessage, OutboxRow

log = logging.getLogger(__name__)
# The outbox sends stored Bot API calls generically, by method name, on purpose.
warnings.filterwarnings("ignore", message="Please use 'Bot.", category=UserWarning)

Hook = Callable[[OutboxRow, str, dict[str, Any] | None], Awaitable[None]]
BULK_PRIORITY = 5
DEFERRED_KIND = "deferred_reply"
DEFERRED_MAX_DELAY = dt.timedelta(minutes=30)  # a reply later than this is no longer an answer


def _plain(value: Any) -> Any:
    """JSON for what PTB hands a request: Telegram objects as their dicts; files can't be stored."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot store {type(value).__name__}")


def upload(data: bytes, filename: str) -> dict[str, str]:
    """A file carried inside a payload (a small PNG, e.g. the weekly digest): sent as a multipart upload."""
    return {"upload_base64": base64.b64encode(data).decode("ascii"), "filename": filename}


def with_uploads(params: dict[str, Any]) -> dict[str, Any]:
    """Turn the `upload(...)` values of a payload's params into files PTB uploads."""
    for key, value in params.items():
        if isinstance(value, dict) and "upload_base64" in value:
            params[key] = InputFile(base64.b64decode(value["upload_base64"]), filename=value.get("filename"))
    return params


PRUNE_BATCH = 200  # rows per prune transaction: a few milliseconds of writer time
PRUNE_FIRST = dt.timedelta(minutes=10)  # the first prune after a start (not during start-up)


class Outbox:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._hooks: dict[str, list[Hook]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._bot: Any = None
        self._limiter: FloodLimiter | None = None
        self._job_queue: Any = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        # Chats whose in-flight row already went to 'sending' (its HTTP call must be allowed to finish).
        self._committed: set[int] = set()
        self._stopping = False
        self.max_inflight = max(4, int(core.config.broadcast.max_per_second * 2))
        # This sender's name on the rows it leases (storage/outbox.py start_sending): one per start.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._next_recovery = 0.0  # loop time of the next look for rows whose sender died
        core.clock.subscribe(self.wake)

    # -- producers ---------------------------------------------------------------------------

    async def enqueue(
        self,
        messages: Iterable[NewMessage],
        executor: Executor | None = None,
        *,
        mode: Literal["new", "revive", "replan"] = "new",
    ) -> int:
        """The one way rows enter the outbox; returns how many rows were written.

        * ``new``: a row whose dedup_key is already present is left alone (planning twice never
          sends twice);
        * ``revive``: the same, but a row of that key that was cancelled is queued again with the new
          payload and due time (a courier who withdrew and claimed again gets their reminders back);
        * ``replan``: planned rows (meeting reminders): a pending row of that key takes the new payload,
          due and expiry, a cancelled one is revived; rows already sending or done are never touched.

        Inside a transaction pass it as `executor`: the rows commit (or roll back) with the caller's
        other writes, and the sender is woken once they are committed.
        """
        rows = list(messages)
        if not rows:
            return 0
        db = executor or self.core.db
        now = self.core.clock.now()
        if mode == "new":
            count = await repo.enqueue(db, rows, now)
        elif mode == "revive":
            count = await repo.enqueue_or_revive(db, rows, now)
        else:
            count = await repo.upsert_planned(db, rows, now)
        after_commit = getattr(executor, "after_commit", None)
        if after_commit is not None:
            after_commit(self.wake)
        else:
            self.wake()
        return count

    async def defer_call(self, method: str, params: dict[str, Any]) -> bool:
        """A handler's Bot API call that must not wait (a reply to a group whose minute window is full,
        or one Telegram answered 429): queue it to go out as soon as the chat allows. The same call
        to the same chat within a minute is queued once (26 "/help@bot" get one answer). False when
        it can't be stored (a file upload): the caller then waits as before."""
        try:
            chat_id = int(params["chat_id"])
            stored = json.loads(
                json.dumps({k: v for k, v in params.items() if k != "chat_id"}, default=_plain)
            )
        except (KeyError, TypeError, ValueError):
            return False
        now = self.core.clock.now()
        digest = hashlib.sha1(json.dumps([method, stored], sort_keys=True).encode()).hexdigest()[:16]
        minute = now.strftime("%Y%m%d%H%M")
        await self.enqueue(
            [
                NewMessage(
                    kind=DEFERRED_KIND,
                    dedup_key=f"later:{chat_id}:{digest}:{minute}",
                    chat_id=chat_id,
                    payload={"method": method, "params": stored},
                    due_at=now,
                    priority=0,
                    expires_at=now + DEFERRED_MAX_DELAY,
                )
            ]
        )
        return True

    def on_done(self, kind: str, hook: Hook) -> None:
        """Call `hook(row, outcome, result)` after a row of `kind` is sent/failed/skipped/unknown."""
        self._hooks.setdefault(kind, []).append(hook)

    def wake(self) -> None:
        self._wake.set()

    @property
    def bot(self) -> Any:
        """The Bot the worker sends with (set at start)."""
        return self._bot

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, bot: Any, limiter: FloodLimiter | None, job_queue: Any = None) -> None:
        self._bot = bot
        self._limiter = limiter
        self._job_queue = job_queue
        self._stopping = False
        await self._recover(at_start=True)
        self._next_recovery = asyncio.get_running_loop().time() + self.RECOVERY_EVERY
        self._task = asyncio.create_task(self._run(), name="outbox")
        if job_queue is not None:
            for job in job_queue.get_jobs_by_name("outbox-prune"):
                job.schedule_removal()
            job_queue.run_repeating(
                self._prune_job, interval=dt.timedelta(days=1), first=PRUNE_FIRST, name="outbox-prune"
            )

    async def _prune_job(self, _context: Any) -> None:
        try:
            await self.prune()
        except Exception:
            log.exception("outbox: pruning failed; next try tomorrow")

    async def prune(self, *, batch: int = PRUNE_BATCH) -> int:
        """Delete finished rows older than `outbox.keep_days`, `batch` rows per short transaction,
        yielding between batches so replies and sends go on meanwhile. Returns how many went."""
        db = self.core.db
        cutoff = self.core.clock.now() - dt.timedelta(days=self.core.config.outbox.keep_days)
        total = 0
        while True:
            async with db.transaction() as tx:
                pruned = await repo.prune(tx, cutoff, batch)
            total += pruned
            if pruned < batch:
                break
            db.checkpoint_soon()  # off the writer lock: no later commit pays for this run's log
            await asyncio.sleep(0)
        if total:
            log.info("outbox: pruned %d finished row(s) older than %s", total, cutoff.date())
        return total

    def halt(self) -> None:
        """Take no more rows, at once (the instance lost its lease: another one sends now)."""
        self._stopping = True
        self.wake()

    async def stop(self) -> None:
        """Stop taking rows; let in-flight sends finish (so their outcome is recorded)."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for chat_id, task in list(self._inflight.items()):
            if chat_id not in self._committed:
                task.cancel()  # still waiting for a send slot: the row stays pending for next time
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        try:  # rows picked but never started: the next sender takes them at once
            await repo.release_picks(self.core.db, self.holder)
        except Exception as exc:  # the database away (a lost lease): they lapse on their own
            log.warning("outbox: could not hand back picked rows: %s", exc)

    async def idle(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is due or in flight (tests). A row this process picked counts as due
        until its send starts (on PostgreSQL a pick is a lease, which a plain look would not see)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            due = await repo.any_due(self.core.db, self.core.clock.now(), self.holder)
            if not due and not self._inflight:
                return True
            await asyncio.sleep(0.01)
        return False

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                started = await self._dispatch()
            except Exception:
                log.exception("outbox: dispatch failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if started:
                continue
            await self._sleep_until_due()

    #: Seconds between two looks for rows left 'sending' by a process that died (their lease lapsed).
    RECOVERY_EVERY = 10.0

    async def _recover(self, *, at_start: bool = False) -> None:
        # At the start on SQLite this is the only process that sends: whatever was 'sending' was cut
        # off in the last one, lease or not. On PostgreSQL another instance may be sending it.
        resent, unknown = await repo.recover_interrupted(
            self.core.db,
            self.core.clock.now(),
            max_attempts=self.core.config.broadcast.max_attempts,
            every_lease=at_start and self.core.db.dialect == "sqlite",
        )
        if resent or unknown:
            log.warning(
                "outbox: %d message(s) were in flight when their sender stopped: %d to send again"
                " (reminders, urgent notices), %d marked 'delivery unknown' (not resent)",
                resent + unknown,
                resent,
                unknown,
            )

    async def _dispatch(self) -> int:
        loop_now = asyncio.get_running_loop().time()
        if loop_now >= self._next_recovery:
            self._next_recovery = loop_now + self.RECOVERY_EVERY
            await self._recover()
        free = self.max_inflight - len(self._inflight)
        if free <= 0:
            return 0
        now = self.core.clock.now()
        rows = await repo.fetch_due(
            self.core.db, now, free, exclude_chats=set(self._inflight), holder=self.holder
        )
        started = 0
        for row in rows:
            wait = self._limiter.group_wait(row.chat_id) if self._limiter else 0.0
            if wait > 0:
                await repo.postpone(self.core.db, row.id, now + dt.timedelta(seconds=wait), now)
                continue
            task = asyncio.create_task(self._send(row), name=f"outbox-{row.id}")
            self._inflight[row.chat_id] = task
            task.add_done_callback(lambda _t, chat=row.chat_id: self._finished(chat))
            started += 1
        return started

    def _finished(self, chat_id: int) -> None:
        self._inflight.pop(chat_id, None)
        self._committed.discard(chat_id)
        self._wake.set()

    async def _sleep_until_due(self) -> None:
        self._wake.clear()
        if self._stopping:
            return
        next_due = await repo.next_due(self.core.db)
        timeout = 30.0
        if next_due is not None:
            timeout = max(0.0, min(timeout, (next_due - self.core.clock.now()).total_seconds()))
            self._arm_job(timeout)
        if self._inflight and timeout <= 0:
            timeout = 0.05  # due rows are waiting only for their chat's in-flight send
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _arm_job(self, seconds: float) -> None:
        if self._job_queue is None or seconds <= 0:
            return
        for job in self._job_queue.get_jobs_by_name("outbox-wake"):
            job.schedule_removal()

        async def _wake(_context: Any) -> None:
            self.wake()

        self._job_queue.run_once(_wake, when=seconds, name="outbox-wake")

    # -- one row -----------------------------------------------------------------------------

    async def _send(self, row: OutboxRow) -> None:
        db, clock = self.core.db, self.core.clock
        bulk = row.priority >= BULK_PRIORITY
        ticket: Ticket | None = None
        try:
            if self._limiter is not None:
                ticket = await self._limiter.acquire(row.chat_id, bulk=bulk)
            if self._stopping:
                return  # the row stays pending for the next start
            # Everything the request needs is ready before the row is marked: the window in which a crash
            # leaves its delivery in doubt is the request itself.
            method = row.payload["method"]
            params = with_uploads(dict(row.payload.get("params", {})))
            params["chat_id"] = row.chat_id
            # From here on `stop` waits for this send instead of cancelling it: a cancellation while the
            # row is being marked 'sending' would leave it in doubt.
            self._committed.add(row.chat_id)
            if not await repo.start_sending(db, row.id, clock.now(), holder=self.holder):
                return  # cancelled or taken meanwhile
            try:
                try:
                    result = await self._bot.do_api_request(
                        method, api_kwargs=params, rate_limit_args={"reserved": True}
                    )
                except BaseException as exc:
                    if ticket is not None and self._limiter is not None:
                        self._limiter.release(ticket, answered=answered_by_telegram(exc))
                        ticket = None
                    raise
                if ticket is not None and self._limiter is not None:
                    self._limiter.release(ticket, answered=True)
                    ticket = None
            except RetryAfter as exc:
                delay = retry_after_seconds(exc)
                log.warning("outbox: 429 for row %s (chat %s); retry in %.0fs", row.id, row.chat_id, delay)
                if self._limiter is not None:  # every send counts longer for a while; bulk ones pause
                    if bulk:
                        self._limiter.pause_bulk(delay)
                    else:
                        self._limiter.saw_flood_limit()
                await repo.release(db, row.id, clock.now() + dt.timedelta(seconds=delay), clock.now())
                return
            except Forbidden as exc:
                await self._unreachable(row, f"forbidden: {exc.message}")
                return
            except ChatMigrated as exc:
                await groups_repo.migrate(db, old_id=row.chat_id, new_id=exc.new_chat_id, now=clock.now())
                await repo.retarget_chat(db, row.chat_id, exc.new_chat_id, clock.now())
                await repo.release(db, row.id, clock.now(), clock.now())
                return
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    await repo.mark_sent(db, row.id, None, clock.now())
                    await self._run_hooks(row, "sent", None)
                    return
                await repo.mark_failed(db, row.id, f"bad request: {exc.message}", clock.now())
                await self._run_hooks(row, "failed", None)
                return
            except TimedOut:
                # The request may have reached Telegram: settled like a row in flight at a crash.
                if row.resend_if_unknown and row.attempts + 1 < self.core.config.broadcast.max_attempts:
                    backoff = min(300, 2 ** (row.attempts + 1))
                    await repo.retry_later(
                        db,
                        row.id,
                        "timed out (sent again)",
                        clock.now() + dt.timedelta(seconds=backoff),
                        clock.now(),
                    )
                    return
                await repo.mark_unknown(db, row.id, "timed out (delivery unknown)", clock.now())
                await self._run_hooks(row, "unknown", None)
                return
            except NetworkError as exc:
                if row.attempts + 1 >= self.core.config.broadcast.max_attempts:
                    await repo.mark_failed(db, row.id, f"network: {exc.message}", clock.now())
                    await self._run_hooks(row, "failed", None)
                else:
                    backoff = min(300, 2 ** (row.attempts + 1))
                    await repo.retry_later(
                        db,
                        row.id,
                        f"network: {exc.message}",
                        clock.now() + dt.timedelta(seconds=backoff),
                        clock.now(),
                    )
                return
            message_id = result.get("message_id") if isinstance(result, dict) else None
            await repo.mark_sent(db, row.id, message_id, clock.now())
            await self._run_hooks(row, "sent", result if isinstance(result, dict) else None)
        except Exception:
            log.exception("outbox: row %s failed unexpectedly", row.id)
            with contextlib.suppress(Exception):
                await repo.mark_failed(db, row.id, "internal error", clock.now())
        finally:
            if ticket is not None and self._limiter is not None:
                self._limiter.release(ticket, answered=False)  # admitted, but no request was made

    async def _unreachable(self, row: OutboxRow, reason: str) -> None:
        db, now = self.core.db, self.core.clock.now()
        await repo.mark_skipped(db, row.id, reason, now)
        if row.chat_id < 0:
            await groups_repo.set_active(db, row.chat_id, False, now)
        else:
            await users_repo.set_blocked(db, row.chat_id, True)
        skipped = await repo.cancel_for_chat(db, row.chat_id, reason, now)
        log.info("outbox: chat %s unreachable (%s); %d pending row(s) skipped", row.chat_id, reason, skipped)
        await self._run_hooks(row, "skipped", None)

    async def _run_hooks(self, row: OutboxRow, outcome: str, result: dict[str, Any] | None) -> None:
        for hook in self._hooks.get(row.kind, ()):
            try:
                await hook(row, outcome, result)
            except Exception:
                log.exception("outbox: hook for %s failed (row %s)", row.kind, row.id)
