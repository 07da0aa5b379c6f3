"""The per-fingerprint limiter's cost when a slot is free, in-process (no database).

Run: ``python -m benchmarks.limits [--quick]``. Cases, interleaved in one run: an empty
function call (the floor every case pays too), a ``threading.Lock`` and a
``threading.BoundedSemaphore`` acquired and released (what a hand-made limiter would
start from), and queryopt's ``ConcurrencyLimiter.acquire`` + ``release`` in static and
adaptive mode. The cost of a case is its median minus the floor's.
Target (issue 17): the limiter costs at most 0.3 µs per call when a slot is free.
"""

from __future__ import annotations

import argparse
import threading

from benchmarks._harness import Case, format_seconds, measure, pin, print_table
from queryopt.config import LimitMode, LimitPolicy
from queryopt.optimizer.limits import ConcurrencyLimiter

FINGERPRINT = "0123456789abcdef"
TARGET = 0.3e-6


def run(quick: bool = False, pinned: bool = True) -> list[dict[str, object]]:
    rounds, min_time = (3, 0.05) if quick else (9, 0.3)
    is_pinned = pin(0) if pinned else False

    def empty() -> None:
        return None

    lock = threading.Lock()

    def lock_pair() -> None:
        with lock:
            pass

    semaphore = threading.BoundedSemaphore(4)

    def semaphore_pair() -> None:
        semaphore.acquire()
        semaphore.release()

    static = ConcurrencyLimiter(LimitPolicy(LimitMode.STATIC, concurrency=4), pool_size=10)
    adaptive = ConcurrencyLimiter(LimitPolicy(LimitMode.ADAPTIVE), pool_size=10)

    def static_pair() -> None:
        static.release(static.acquire(FINGERPRINT), 0.0004)

    def adaptive_pair() -> None:
        adaptive.release(adaptive.acquire(FINGERPRINT), 0.0004)

    cases = [
        Case("empty call (floor)", empty),
        Case("threading.Lock acquire + release", lock_pair),
        Case("threading.BoundedSemaphore acquire + release", semaphore_pair),
        Case("queryopt limiter, static: acquire + release", static_pair),
        Case("queryopt limiter, adaptive: acquire + release", adaptive_pair),
    ]
    measure(cases, rounds=rounds, min_time=min_time)
    floor = cases[0].median
    rows: list[dict[str, object]] = []
    for case in cases:
        cost = max(0.0, case.median - floor)
        is_queryopt = case.name.startswith("queryopt")
        rows.append(
            {
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "cost over floor": format_seconds(cost) if case is not cases[0] else "",
                "vs lock": f"{cost / max(cases[1].median - floor, 1e-12):.2f}x" if case is not cases[0] else "",
                "target": "≤ 0.3 µs" if is_queryopt else ("floor" if case is cases[0] else "peer"),
                "met": cost <= TARGET if is_queryopt else None,
                "pinned": is_pinned,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--unpinned", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args()
    print_table("per-fingerprint limiter, slot free", run(quick=args.quick, pinned=not args.unpinned))


if __name__ == "__main__":
    main()
