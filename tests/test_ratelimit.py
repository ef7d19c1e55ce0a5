"""The flood limiter on its own: a 429 to a bulk send holds the other bulk sends, never the replies."""

import asyncio
import time

import pytest

from bot.core.ratelimit import (
    BULK_PAUSE_MAX,
    CAUTION_FIRST,
    JITTER_MIN,
    JITTER_UNKNOWN,
    FloodLimiter,
    Ticket,
    _Send,
    _Window,
)


async def _admitted_after(limiter: FloodLimiter, chat_id: int, *, bulk: bool) -> float:
    start = time.monotonic()
    limiter.release(await limiter.acquire(chat_id, bulk=bulk), answered=True)
    return time.monotonic() - start


async def test_429_on_a_bulk_send_pauses_bulk_but_not_replies():
    limiter = FloodLimiter()
    limiter.pause_bulk(0.4)
    reply_wait, bulk_wait = await asyncio.gather(
        _admitted_after(limiter, 42, bulk=False), _admitted_after(limiter, -1001, bulk=True)
    )
    assert reply_wait < 0.1
    assert 0.35 < bulk_wait < 1.0


async def test_bulk_pause_is_capped():
    limiter = FloodLimiter()
    limiter.pause_bulk(3600)  # a group's long retry_after must not stall the whole broadcast
    assert limiter._delay(-1001, True, time.monotonic()) <= BULK_PAUSE_MAX


Q = (0.15, 0.15)  # the quickest recent round trip and a low one: 150 ms, a steady network


def _window_with(admitted: list[float], answered: bool = True, late: float = 0.0) -> _Window:
    """Sends admitted at these times, each with a round trip `late` beyond the quickest (Q)."""
    window = _Window(1.0)
    for t in admitted:
        send = _Send(t)
        send.answered = answered
        send.rtt = Q[0] + late
        window.add(send)
    return window


def test_a_send_counts_from_its_admission_not_its_answer():
    # 30 sends admitted in the first 0.3 s, each answered 150 ms later (Telegram far away) and 4 ms
    # later than the quickest: the 31st may go once the first is period + 4 ms old, not period after
    # its answer.
    window = _window_with([i * 0.01 for i in range(30)], late=0.004)
    assert window.wait_for(30, 0.5, 0.0, Q) == pytest.approx(1.004 - 0.5)
    assert window.wait_for(30, 1.005, 0.02, Q) == pytest.approx(0.019)  # a margin counts on top
    assert window.wait_for(30, 1.005, 0.0, Q) == 0.0
    # A send still in flight keeps counting, however old it is.
    stuck = _window_with([0.0] + [4.5 + i * 0.01 for i in range(29)])
    stuck.sends[0].answered = False
    assert stuck.wait_for(30, 5.0, 0.0, Q) > 0
    stuck.sends[0].answered = True
    assert stuck.wait_for(30, 5.0, 0.0, Q) == 0.0


def test_a_send_that_met_a_stall_counts_longer_than_the_others():
    # The first send's round trip took 100 ms longer than the quickest (a stall on the way there, maybe):
    # it may have reached Telegram 100 ms late and counts until then; the others end on time.
    window = _window_with([0.0] + [0.5 + i * 0.01 for i in range(29)], late=0.004)
    window.sends[0].rtt = Q[0] + 0.1
    assert window.wait_for(30, 1.0, 0.0, Q) == pytest.approx(0.1)
    window.sends[0].rtt = Q[0] + 0.004
    assert window.wait_for(30, 1.0, 0.0, Q) == pytest.approx(0.004)


def test_a_quicker_round_trip_seen_later_makes_every_send_count_longer():
    # After a busy spell (our event loop slow both ways) every round trip was 170 ms; then one comes back
    # in 150 ms: sends now may arrive 20 ms sooner than those of the busy spell did, so those count
    # 20 ms longer, from then on (reckoned when asked, not when each answer came).
    window = _window_with([i * 0.01 for i in range(30)], late=0.02)  # 170 ms each
    busy = (0.17, 0.17)
    assert window.wait_for(30, 1.0, 0.0, busy) == pytest.approx(0.003)  # JITTER_MIN beyond the period
    assert window.wait_for(30, 1.0, 0.0, Q) == pytest.approx(0.02)


async def test_lateness_is_learnt_from_each_round_trip():
    limiter = FloodLimiter()
    assert limiter.margin == JITTER_UNKNOWN  # cautious until enough round trips were seen

    def answered_after(rtt: float, answered: bool = True) -> _Send:
        send = _Send(time.monotonic() - rtt)
        limiter.release(Ticket(None, False, send), answered=answered)
        return send

    steady = [answered_after(0.15 + i * 0.0001) for i in range(12)]
    assert limiter.margin == 0.0  # a steady network: no margin on top of each send's own lateness
    assert steady[-1].lateness(limiter.quickest) == pytest.approx(JITTER_MIN, abs=0.001)
    slow = answered_after(0.25)
    assert slow.lateness(limiter.quickest) == pytest.approx(0.1, abs=0.002)  # beyond the quickest
    # A call that got no answer (timed out) counts as late as it could have arrived, and teaches
    # nothing about the network.
    lost = answered_after(0.4, answered=False)
    assert lost.lateness(limiter.quickest) == pytest.approx(0.4, abs=0.002)
    assert len(limiter.round_trips) == 13
    # A quicker round trip: every send counts longer by the difference (and the gap to the 2nd
    # quickest, as the quickest is now less certain).
    answered_after(0.1)
    assert slow.lateness(limiter.quickest) == pytest.approx(0.15 + 0.05, abs=0.002)
    assert answered_after(0.15).lateness(limiter.quickest) == pytest.approx(0.1, abs=0.002)
    # Telegram answered 429: the lateness learnt was too little. Every send counts a little longer
    # for a while: 5 ms, doubled at each further 429 (those of one burst count once), at most the
    # spread of round trips (here 150 ms), so that one 429 does not slow every send for a minute.
    limiter.saw_flood_limit()
    assert limiter.margin == pytest.approx(CAUTION_FIRST)
    limiter.saw_flood_limit()  # the same burst
    assert limiter.margin == pytest.approx(CAUTION_FIRST)
    for times in range(1, 8):
        limiter._caution_raised -= 1.0
        limiter.saw_flood_limit()
        assert limiter.margin == pytest.approx(min(0.15, CAUTION_FIRST * 2**times), abs=0.002)
    assert limiter.margin == pytest.approx(0.25 - 0.1, abs=0.002)
    limiter._cautious_until = 0.0
    assert limiter.margin == 0.0


def _bench_limiter():
    """bench/bench_limiter.py, whose simulation the tests below run (the bench is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_limiter.py"
    spec = importlib.util.spec_from_file_location("bench_limiter", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "spread,stalls,rate_at_least,over_at_most",
    [
        (0.0, 0.0, 29.7, 0),  # a steady network: within 1% of the limit
        (0.0, 0.02, 29.0, 0),  # ... with a stall of 100 ms on the way there in one send of 50
        (0.02, 0.02, 29.0, 0),
        (0.1, 0.0, 26.5, 2),  # both ways jittery: the quickest seen is only an estimate
        (0.25, 0.02, 23.0, 2),
    ],
)
def test_arrivals_stay_within_the_limit_whatever_the_jitter(
    spread: float, stalls: float, rate_at_least: float, over_at_most: int
):
    """Admit 1,500 sends as fast as the window allows while each reaches a strict server after a
    random one-way delay (within `spread`, and 100 ms more in a share `stalls` of them) and is
    answered after a random way back (within `spread` too): with each send's lateness learnt from its
    round trip as the limiter does (bench/bench_limiter.py's simulation, on `_Window` and the
    limiter's round trips), the server sees more than 30 in one second never when the network is
    steady (a stall is seen in the round trip that met it), and at most `over_at_most` times (each a
    429, which makes the limiter cautious) when both ways are jittery; and the sends go near the limit."""
    over, rate = _bench_limiter().simulate("ours", spread, stalls, False, seed=7, sends=1500)
    assert over <= over_at_most
    assert rate > rate_at_least


def test_the_limiter_bench_compares_with_the_single_margin_it_replaced():
    """With stalls the single margin lets sends over the limit where ours lets none (what made it
    replace the single margin)."""
    module = _bench_limiter()
    ours = module.simulate("ours", 0.0, 0.02, False, seed=0, sends=1500)
    one = module.simulate("one margin", 0.0, 0.02, False, seed=0, sends=1500)
    assert ours[0] == 0 and ours[1] > 29
    assert one[0] > 0
