"""Benchmark: the flood limiter's reckoning, simulated. How many sends reach a strict server over its
limit (each would be a 429) and how many a second get through, for sends admitted as fast as the
limiter allows while each reaches the server after a random delay and is answered after another.

Two ways of reckoning, in the same run on the same random delays:

* ours: `bot.core.ratelimit` as the bot runs it (`_Window`, `FloodLimiter.round_trips`): each send
  counts for its own lateness, its round trip beyond the quickest, reckoned when asked;
* one margin: every send counts the same margin, half the spread (1st to 99th percentile) of the
  recent round trips, at least 10 ms: the limiter until 2026-12-05.

Networks: steady (150 ms), with a 100 ms stall on the way there in one send of 50, with busy spells
(+20 ms each way for 20 s out of 40, as our event loop under load), and with uniform jitter both ways.
Virtual time: the whole run takes seconds.

    python bench/bench_limiter.py [--sends 3000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.ratelimit import FloodLimiter, _Send, _Window

LIMIT = 30
NETWORKS = {
    # name: (jitter each way, stall probability, busy spells)
    "steady": (0.0, 0.0, False),
    "stalls (100 ms, 1 in 50)": (0.0, 0.02, False),
    "busy spells (+20 ms each way)": (0.002, 0.0, True),
    "busy spells and stalls": (0.002, 0.02, True),
    "jitter 0-20 ms each way": (0.02, 0.0, False),
    "jitter 0-100 ms each way": (0.1, 0.0, False),
}


def _one_margin(limiter: FloodLimiter) -> float:
    ordered = limiter.round_trips.ordered
    if len(ordered) < 10:
        return 0.5
    cut = len(ordered) // 100
    return max(0.01, (ordered[-1 - cut] - ordered[cut]) / 2)


def simulate(
    way: str, jitter: float, stalls: float, spells: bool, seed: int, sends: int
) -> tuple[int, float]:
    """Returns (sends over the limit at the server, sends a second)."""
    rng = random.Random(seed)
    limiter = FloodLimiter()
    window = _Window(1.0)
    now, arrivals = 0.0, []
    in_flight: list[tuple[float, _Send, float]] = []
    for _ in range(sends):
        while True:
            for answer in sorted(a for a in in_flight if a[0] <= now):
                in_flight.remove(answer)
                _, send, rtt = answer
                limiter.round_trips.add(rtt)
                send.answered = True
                send.rtt = rtt if way == "ours" else 0.0  # one margin: no lateness of its own
            if way == "ours":
                wait = window.wait_for(LIMIT, now, 0.0, limiter.quickest)
            else:  # every send counts the same margin: lateness 0 against itself, the margin on top
                wait = window.wait_for(LIMIT, now, _one_margin(limiter) - 0.003, (0.0, 0.0))
            if wait == 0:
                break
            soonest = min((a[0] for a in in_flight), default=now + wait)
            now += min(wait, soonest - now) + 1e-6
        send = _Send(now)
        window.add(send)
        busy = 0.02 if spells and (now // 20) % 2 == 0 else 0.0
        there = 0.1 + busy + rng.uniform(0, jitter) + (0.1 if rng.random() < stalls else 0.0)
        back = 0.05 + busy + rng.uniform(0, jitter)
        arrivals.append(now + there)
        in_flight.append((now + there + back, send, there + back))
        now += 1e-4
    arrivals.sort()
    first, over = 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[first] <= t - 1.0:
            first += 1
        over += i - first + 1 > LIMIT
    return over, len(arrivals) / (arrivals[-1] - arrivals[0])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    total = args.sends * args.seeds
    print(
        f"bench_limiter: {args.seeds} x {args.sends} sends per network, limit {LIMIT}/s; over = would be a 429"
    )
    print(f"  {'network':<32} {'ours: over, sends/s':>24} {'one margin: over, sends/s':>28}")
    for name, (jitter, stalls, spells) in NETWORKS.items():
        row = {}
        for way in ("ours", "one margin"):
            runs = [simulate(way, jitter, stalls, spells, seed, args.sends) for seed in range(args.seeds)]
            row[way] = (sum(r[0] for r in runs), min(r[1] for r in runs))
        (o_over, o_rate), (m_over, m_rate) = row["ours"], row["one margin"]
        print(f"  {name:<32} {o_over:>7} of {total} {o_rate:6.2f}/s   {m_over:>9} of {total} {m_rate:6.2f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
