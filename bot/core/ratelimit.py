"""Telegram flood limits, shared by replies and bulk sends, with replies first.

Telegram lets a bot send about 30 messages a second overall and 20 a minute into one group, and
answers 429 (retry_after) beyond that. PTB's AIORateLimiter uses leaky buckets and pauses *every*
request after one 429. Here instead:

* sliding windows (at most N sends in any window), which is what a strict server enforces;
* bulk sends (the outbox tags them with ``rate_limit_args={"bulk": True}``) have their own lower
  ceiling (``bulk_per_second``, default 25/s) so interactive replies always find room, and a bulk send
  waits while any interactive send is waiting;
* a 429 on a bulk send is raised to the outbox, which reschedules that one row; a 429 on a reply is
  waited out and retried a few times, pausing nobody else.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter

from bot.core.ptb import retry_after_seconds

log = logging.getLogger(__name__)

# Endpoints that put a message into a chat (and count against the flood limits).
_COUNTED_PREFIXES = ("send", "copy", "forward", "edit", "pin")


BULK_PAUSE_MAX = 5.0  # seconds every bulk send waits after a 429 to one of them
MAX_REPLY_WAIT = 1.0  # a handler's message to a group that would wait longer goes to the outbox
RETRY_BACKOFF = (0.3, 1.0)  # pauses before the 2nd and 3rd try of a call that is safe to repeat
IDEMPOTENT = frozenset(
    {
        "answerCallbackQuery",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "editMessageLiveLocation",
        "deleteMessage",
        "deleteMessages",
        "pinChatMessage",
        "unpinChatMessage",
        "getMe",
        "getChat",
        "getChatMember",
        "getChatAdministrators",
        "getChatMemberCount",
        "getFile",
        "setMyCommands",
        "setChatMenuButton",
        "setMessageReaction",
    }
)
# How late a send may arrive at Telegram is learnt from round trips: the last RTT_SAMPLES of them give
# the quickest one (see `lateness`); until RTT_MIN_SAMPLES were seen every send counts JITTER_UNKNOWN
# longer. A send's own lateness is at least JITTER_MIN (the quickest round trip need not have been the
# quickest both ways) and at most JITTER_MAX.
RTT_SAMPLES = 1000
RTT_MIN_SAMPLES = 10
JITTER_MIN = 0.003
JITTER_MAX = 2.0
JITTER_UNKNOWN = 0.5
# After a 429 every send counts CAUTION_FIRST longer, twice as long after each further 429 (at most
# the spread of round trips), until CAUTIOUS_FOR seconds passed without one.
CAUTION_FIRST = 0.005
CAUTIOUS_FOR = 60.0


def lateness(rtt: float, quickest: float, low: float) -> float:
    """How much later than the quickest send one with this round trip may have reached Telegram, given
    the quickest recent round trip and a low one (their 2nd percentile, at least the 2nd quickest):
    no later than what its round trip took beyond the quickest one (both ways: which way was slow is
    not known), plus the distance from the quickest to the low one, as the quickest seen may have
    been slow on its way there itself (after few round trips, or when both ways are jittery).
    Within [JITTER_MIN, JITTER_MAX]."""
    if quickest == math.inf:
        return JITTER_UNKNOWN
    uncertain = low - quickest if low < math.inf else JITTER_UNKNOWN
    return min(JITTER_MAX, max(JITTER_MIN, rtt - quickest + uncertain))


class _RoundTrips:
    """The last RTT_SAMPLES round trips (seconds), in arrival order and sorted (a sorted list kept by
    bisection: the quickest and the percentiles are read at every answer)."""

    __slots__ = ("ordered", "recent")

    def __init__(self) -> None:
        self.recent: deque[float] = deque()
        self.ordered: list[float] = []

    def add(self, rtt: float) -> None:
        if len(self.recent) >= RTT_SAMPLES:
            del self.ordered[bisect.bisect_left(self.ordered, self.recent.popleft())]
        self.recent.append(rtt)
        bisect.insort(self.ordered, rtt)

    def __len__(self) -> int:
        return len(self.recent)

    @property
    def quickest(self) -> tuple[float, float]:
        """The quickest one and their 2nd percentile, at least the 2nd quickest (inf where too few)."""
        ordered = self.ordered
        if not ordered:
            return math.inf, math.inf
        if len(ordered) < 2:
            return ordered[0], math.inf
        return ordered[0], ordered[max(1, len(ordered) // 50)]

    @property
    def spread(self) -> float:
        """From their 1st to their 99th percentile."""
        if not self.ordered:
            return 0.0
        cut = len(self.ordered) // 100
        return self.ordered[-1 - cut] - self.ordered[cut]


class _Send:
    """One admitted send: when it was admitted, whether it is over, and its round trip; or, when no
    answer came (a time-out, no request made), how long it took to be over (`unanswered`)."""

    __slots__ = ("admitted", "answered", "rtt", "unanswered")

    def __init__(self, admitted: float) -> None:
        self.admitted = admitted
        self.answered = False
        self.rtt = 0.0
        self.unanswered: float | None = None

    def lateness(self, quickest: tuple[float, float]) -> float:
        if self.unanswered is not None:
            return min(JITTER_MAX, self.unanswered)  # it may have arrived just before, or not at all
        return lateness(self.rtt, *quickest)


class _Window:
    """The sends that may still fall into one of Telegram's windows (all, a group's, the bulk lane).

    Telegram counts a message when it arrives, somewhere between our admission and the answer. Say the
    quickest send arrives `d` after its admission and send A `d + x_A` after: then a send admitted
    `period + x_A` after A arrives at least `period` after A. So A counts from its admission for
    `period + x_A` (plus `margin`, see `FloodLimiter.margin`), and for as long as it is in flight.
    `x_A` is bounded by how much A's round trip exceeded the quickest one (`lateness`), reckoned with
    the quickest round trip known at the time of asking (a quicker one seen later, say when our event
    loop calms down after a busy spell, makes every send count longer at once): a send that
    met a stall (in our event loop or the network, either way) counts longer, the others barely longer
    than `period`, so a bot 150 ms from Telegram still gets its 30 messages a second, where counting
    from the answer on would cost it RTT/period of them and one margin for all sends the worst one's.
    """

    __slots__ = ("period", "sends")

    def __init__(self, period: float) -> None:
        self.period = period
        self.sends: deque[_Send] = deque()

    def prune(self, now: float, margin: float, quickest: tuple[float, float]) -> None:
        edge = now - self.period - margin
        sends = self.sends
        while sends and sends[0].answered and sends[0].admitted + sends[0].lateness(quickest) <= edge:
            sends.popleft()

    def wait_for(self, limit: int, now: float, margin: float, quickest: tuple[float, float]) -> float:
        """Seconds until one more send fits (0: now), given the extra `margin` and the quickest recent
        round trip and a low one (`FloodLimiter.quickest`)."""
        self.prune(now, margin, quickest)
        if len(self.sends) < limit:
            return 0.0
        in_flight = 0
        ends: list[float] = []
        for send in self.sends:
            if not send.answered:
                in_flight += 1
            else:
                end = send.admitted + self.period + send.lateness(quickest) + margin
                if end > now:
                    ends.append(end)
        must_end = in_flight + len(ends) - limit + 1  # this many must stop counting first
        if must_end <= 0:
            return 0.0
        if must_end > len(ends):
            return 0.05  # waiting for answers still in flight (a release wakes us earlier)
        ends.sort()
        return ends[must_end - 1] - now

    def add(self, send: _Send) -> None:
        self.sends.append(send)

    @property
    def idle(self) -> bool:
        return not self.sends


class _Waiter:
    __slots__ = ("bulk", "chat_id", "future")

    def __init__(self, chat_id: int | None, bulk: bool, future: asyncio.Future[Ticket]) -> None:
        self.chat_id = chat_id
        self.bulk = bulk
        self.future = future


class Ticket:
    """What `acquire` hands out; give it back to `release` when the answer came (or never will)."""

    __slots__ = ("bulk", "chat_id", "send")

    def __init__(self, chat_id: int | None, bulk: bool, send: _Send) -> None:
        self.chat_id = chat_id
        self.bulk = bulk
        self.send = send


class FloodLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(
        self,
        *,
        overall_per_second: int = 30,
        bulk_per_second: float = 25.0,
        group_per_minute: int = 20,
        reply_retries: int = 3,
        safety: float = 0.0,
    ) -> None:
        self.overall_per_second = overall_per_second
        self.bulk_per_second = bulk_per_second
        self.group_per_minute = group_per_minute
        self.reply_retries = reply_retries
        self.safety = safety
        self._overall = _Window(1.0)
        self._bulk = _Window(1.0)
        self._groups: dict[int, _Window] = {}
        self._group_period = 60.0
        self.round_trips = _RoundTrips()
        self._cautious_until = 0.0  # time.monotonic(); set by a 429 (see `margin`)
        self._caution = 0.0  # the margin while cautious
        self._caution_raised = 0.0  # time.monotonic() when it was last raised
        self._bulk_paused_until = 0.0  # time.monotonic(); set by a 429 to a bulk send
        # Sends waiting for room, in arrival order (replies and bulk apart: replies go first).
        self._waiting: dict[bool, deque[_Waiter]] = {False: deque(), True: deque()}
        self._timer: asyncio.TimerHandle | None = None
        # Set by the runtime: hand a handler's call to the outbox (True when it took it).
        self.defer: Callable[[str, dict[str, Any]], Awaitable[bool]] | None = None
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._messages = _Shown()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    # -- bookkeeping ------------------------------------------------------------------------

    @property
    def margin(self) -> float:
        """Seconds every send counts beyond its window's period and its own lateness (`lateness`):
        JITTER_UNKNOWN until enough round trips were seen; after a 429, which says the lateness learnt
        was too little, CAUTION_FIRST, doubled at each further 429 up to the spread of recent round
        trips (1st to 99th percentile), until CAUTIOUS_FOR seconds pass without one; plus the
        configured safety margin. At Telegram's 30 a second each millisecond of margin costs 0.03
        sends a second, which a queue at the limit pays for in growing waits: one 429 (its reply goes
        out through the outbox a second later) must not cost every courier a minute of slower sends."""
        if len(self.round_trips) < RTT_MIN_SAMPLES:
            return JITTER_UNKNOWN + self.safety
        if time.monotonic() >= self._cautious_until:
            return self.safety
        return self._caution + self.safety

    @property
    def quickest(self) -> tuple[float, float]:
        """The quickest recent round trip and their 2nd percentile, at least the 2nd quickest (seconds;
        inf where there are too few)."""
        return self.round_trips.quickest

    def saw_flood_limit(self) -> None:
        """Telegram answered 429: every send counts a little longer for a while, longer at each 429."""
        now = time.monotonic()
        ceiling = min(JITTER_MAX, max(CAUTION_FIRST, self.round_trips.spread))
        if now >= self._cautious_until:
            self._caution, self._caution_raised = CAUTION_FIRST, now
        elif now - self._caution_raised >= 1.0:  # the 429s of one burst of sends count once
            self._caution, self._caution_raised = min(ceiling, 2 * self._caution), now
        self._cautious_until = now + CAUTIOUS_FOR

    def _group_window(self, chat_id: int) -> _Window:
        window = self._groups.get(chat_id)
        if window is None:
            if len(self._groups) > 4096:
                now, margin, quickest = time.monotonic(), self.margin, self.quickest
                for key in [
                    k for k, w in self._groups.items() if (w.prune(now, margin, quickest) or True) and w.idle
                ]:
                    del self._groups[key]
            window = self._groups[chat_id] = _Window(self._group_period)
        return window

    def group_wait(self, chat_id: int) -> float:
        """Seconds until one more message fits into this group (0 for private chats)."""
        if chat_id >= 0:
            return 0.0
        return self._group_window(chat_id).wait_for(
            self.group_per_minute, time.monotonic(), self.margin, self.quickest
        )

    def pause_bulk(self, seconds: float) -> None:
        """A 429 came back for a bulk send: hold every bulk send for a moment (replies go on).

        Telegram does not say whether the limit hit was the group's or the bot's: the row itself
        waits the whole retry_after, the other rows at most BULK_PAUSE_MAX seconds of it.
        """
        until = time.monotonic() + min(max(seconds, 0.0), BULK_PAUSE_MAX)
        self._bulk_paused_until = max(self._bulk_paused_until, until)
        self.saw_flood_limit()

    def _own_delay(
        self, chat_id: int | None, bulk: bool, now: float, margin: float, quickest: tuple[float, float]
    ) -> float:
        """Seconds this send waits for windows other than the overall one."""
        delay = 0.0
        if bulk and self._bulk_paused_until > now:
            delay = self._bulk_paused_until - now
        if chat_id is not None and chat_id < 0:
            group = self._group_window(chat_id)
            delay = max(delay, group.wait_for(self.group_per_minute, now, margin, quickest))
        if bulk:
            delay = max(delay, self._bulk.wait_for(max(1, int(self.bulk_per_second)), now, margin, quickest))
        return delay

    def _delay(self, chat_id: int | None, bulk: bool, now: float) -> float:
        """Seconds until a send to `chat_id` would fit every window (0: now)."""
        margin, quickest = self.margin, self.quickest
        overall = self._overall.wait_for(self.overall_per_second, now, margin, quickest)
        return max(overall, self._own_delay(chat_id, bulk, now, margin, quickest))

    def _windows(self, chat_id: int | None, bulk: bool) -> list[_Window]:
        windows = [self._overall]
        if chat_id is not None and chat_id < 0:
            windows.append(self._group_window(chat_id))
        if bulk:
            windows.append(self._bulk)
        return windows

    def release(self, ticket: Ticket, *, answered: bool) -> None:
        """The send admitted by `acquire` is over: Telegram `answered` it (a result or an error), or
        it never got an answer (not made, timed out, the connection failed)."""
        send = ticket.send
        if not send.answered:
            send.answered = True
            rtt = time.monotonic() - send.admitted
            if answered:
                self.round_trips.add(rtt)
                send.rtt = rtt
            else:
                send.unanswered = rtt
        self._pump()

    async def acquire(self, chat_id: int | None, *, bulk: bool) -> Ticket:
        """Wait until a send fits into every window, then admit it; `release` the ticket after the
        answer. Waiting sends are admitted first come, first served (replies before bulk sends), a
        send held only by its own group's window letting the ones behind it pass."""
        waiter = _Waiter(chat_id, bulk, asyncio.get_running_loop().create_future())
        self._waiting[bulk].append(waiter)
        self._pump()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(waiter.future.result(), answered=False)  # admitted as it was cancelled
            with contextlib.suppress(ValueError):
                self._waiting[bulk].remove(waiter)
            self._pump()
            raise

    def _pump(self) -> None:
        """Admit every waiting send that fits now, oldest first; arm a timer for the next one."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = time.monotonic()
        margin, quickest = self.margin, self.quickest
        next_check = math.inf
        for bulk in (False, True):
            queue = self._waiting[bulk]  # replies first: bulk sends get what is left
            for waiter in list(queue):
                if waiter.future.done():
                    queue.remove(waiter)
                    continue
                overall = self._overall.wait_for(self.overall_per_second, now, margin, quickest)
                if overall > 0:
                    next_check = min(next_check, overall)
                    break  # nobody behind may overtake on the shared window
                own = self._own_delay(waiter.chat_id, bulk, now, margin, quickest)
                if own > 0:
                    next_check = min(next_check, own)
                    continue  # held by its group (or the bulk lane): the next may go
                send = _Send(now)
                for window in self._windows(waiter.chat_id, bulk):
                    window.add(send)
                queue.remove(waiter)
                waiter.future.set_result(Ticket(waiter.chat_id, bulk, send))
        if next_check < math.inf and (self._waiting[False] or self._waiting[True]):
            self._timer = asyncio.get_running_loop().call_later(next_check, self._pump)

    # -- PTB hook ---------------------------------------------------------------------------

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Every Bot API call of the process passes here (PTB's rate-limiter hook): flood limits,
        replies to a busy group handed to the outbox instead of waited for, retries of calls that are
        safe to repeat, and the last check of Telegram's length limits."""
        fit_lengths(endpoint, data)
        if endpoint == "answerCallbackQuery":
            query_id = str(data.get("callback_query_id"))
            if query_id in self._answered:
                return True  # answered already (a second answer is refused): it is what was wanted
            result = await self._with_retries(callback, args, kwargs, endpoint)
            self._answered[query_id] = None
            while len(self._answered) > 4096:
                self._answered.popitem(last=False)
            return result
        unchanged = self._messages.unchanged(endpoint, data)
        if unchanged is not None:
            return unchanged  # an edit to what the message shows already: Telegram would refuse it
        result = await self._call(callback, args, kwargs, endpoint, data, rate_limit_args)
        self._messages.remember(endpoint, data, result)
        return result

    async def _call(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Any:
        if not endpoint.lower().startswith(_COUNTED_PREFIXES):
            return await self._with_retries(callback, args, kwargs, endpoint)
        if rate_limit_args and rate_limit_args.get("reserved"):
            return await callback(*args, **kwargs)  # the outbox: it waited in `acquire`, it retries
        bulk = bool(rate_limit_args and rate_limit_args.get("bulk"))
        chat_id: int | None = None
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(data.get("chat_id"))  # type: ignore[arg-type]
        if not bulk and chat_id is not None and chat_id < 0 and self.defer is not None:
            # A handler never waits for a group's minute window: the reply goes out later.
            if self.group_wait(chat_id) > MAX_REPLY_WAIT and await self.defer(endpoint, data):
                raise Deferred(endpoint, chat_id)
        ticket = await self.acquire(chat_id, bulk=bulk)
        try:
            result = await self._with_retries(callback, args, kwargs, endpoint)
        except BaseException as exc:
            self.release(ticket, answered=answered_by_telegram(exc))
            if not isinstance(exc, RetryAfter):
                raise
            self.saw_flood_limit()
            if bulk or self.defer is None or not await self.defer(endpoint, data):
                raise
            log.warning(
                "429 on %s to %s (retry after %.0fs): handed to the outbox",
                endpoint,
                chat_id,
                retry_after_seconds(exc),
            )
            raise Deferred(endpoint, chat_id) from None
        self.release(ticket, answered=True)
        return result

    async def _with_retries(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
    ) -> Any:
        """Calls that are safe to repeat (answers to a button, edits, reads) are tried again after a
        502 or a time-out, twice, briefly; others (a new message could arrive twice) are not."""
        retries = RETRY_BACKOFF if endpoint in IDEMPOTENT else ()
        for attempt, pause in enumerate((*retries, None)):
            try:
                return await callback(*args, **kwargs)
            except (TimedOut, NetworkError) as exc:
                if pause is None or isinstance(exc, RetryAfter | BadRequest | Forbidden | ChatMigrated):
                    raise
                log.warning("%s failed (%s); trying again (%d)", endpoint, exc.message, attempt + 1)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def was_answered(self, callback_query_id: str) -> bool:
        """Whether this process already answered the button press (answering twice is refused)."""
        return str(callback_query_id) in self._answered


def _markup_json(markup: Any) -> str:
    if markup is None:
        return "null"
    plain = markup.to_dict() if hasattr(markup, "to_dict") else markup
    return json.dumps(plain, sort_keys=True, ensure_ascii=False)


class _Shown:
    """What recent messages of this process show (text or caption, and inline keyboard), as Telegram
    last returned them: an edit that would change nothing is answered from here, since Telegram
    refuses it ("message is not modified"), as when a button is pressed twice."""

    SIZE = 4096

    def __init__(self) -> None:
        self._shown: OrderedDict[tuple[int, int], tuple[str | None, str, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def _key(data: dict[str, Any]) -> tuple[int, int] | None:
        try:
            return int(data["chat_id"]), int(data["message_id"])
        except (KeyError, TypeError, ValueError):
            return None

    def unchanged(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if endpoint not in ("editMessageText", "editMessageReplyMarkup") or data.get("parse_mode"):
            return None
        key = self._key(data)
        shown = self._shown.get(key) if key else None
        if shown is None or data.get("entities"):
            return None
        text, markup, result = shown
        if endpoint == "editMessageText" and data.get("text") != text:
            return None
        if _markup_json(data.get("reply_markup")) != markup:
            return None
        return result

    def remember(self, endpoint: str, data: dict[str, Any], result: Any) -> None:
        if not isinstance(result, dict) or "message_id" not in result or "chat" not in result:
            return
        key = (int(result["chat"]["id"]), int(result["message_id"]))
        if data.get("parse_mode") or data.get("entities") or data.get("caption_entities"):
            self._shown.pop(key, None)  # formatted by us: not compared
            return
        text = result.get("text", result.get("caption"))
        self._shown[key] = (text, _markup_json(result.get("reply_markup")), result)
        self._shown.move_to_end(key)
        while len(self._shown) > self.SIZE:
            self._shown.popitem(last=False)


def answered_by_telegram(exc: BaseException) -> bool:
    """Whether a failed call got Telegram's answer (an error it returned) rather than none (a time-out,
    a broken connection), for the round trips the limiter learns from."""
    return isinstance(exc, TelegramError) and (
        isinstance(exc, BadRequest) or not isinstance(exc, NetworkError)
    )


class Deferred(TelegramError):
    """A handler's message to a busy group (or one Telegram asked to wait for) was handed to the
    outbox, which sends it when the group's window allows. Not an error: the handler just stops."""

    def __init__(self, endpoint: str, chat_id: int | None) -> None:
        super().__init__(f"{endpoint} to {chat_id} deferred to the outbox")
        self.endpoint = endpoint
        self.chat_id = chat_id


def fit_lengths(endpoint: str, data: dict[str, Any]) -> None:
    """Telegram refuses a text over 4,096 characters, a caption over 1,024 and a button answer over
    200: whatever a stored text has become, the message goes out shortened (with "…") rather than
    not at all. Only plain text (no parse_mode: a cut could break the markup)."""
    if data.get("parse_mode"):
        return
    for key, limit in (("text", 4096), ("caption", 1024)):
        value = data.get(key)
        if isinstance(value, str) and len(value) > limit:
            log.warning("%s: %s of %d characters shortened to %d", endpoint, key, len(value), limit)
            data[key] = value[: limit - 1] + "…"
    if endpoint == "answerCallbackQuery":
        value = data.get("text")
        if isinstance(value, str) and len(value) > 200:
            data["text"] = value[:199] + "…"
