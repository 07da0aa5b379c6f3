"""How long preparing a new SQL text stalls an event loop: in the loop, in a thread, in a process.

Run: ``python -m benchmarks.async_prepare [--quick]``. A heartbeat task sleeps
1 ms at a time and records how late it wakes up (the loop's stall) while a
coroutine prepares distinct texts (a unique trailing comment defeats the
analysis LRU) of a primary-key lookup, the longest TPC-H query, and a long
TPC-H-like query (the 22 TPC-H queries as derived tables of one statement),
three ways: ``CallPreparer.prepare`` in the loop; in a worker thread
(``asyncio.to_thread``); analysis in a worker process, as ``AsyncOptimizer``
does, then ``prepare(analysis=…)`` in the loop. A thread does not bound the
stall: sqlglotc's compiled parser holds the GIL for a whole analysis (and the
garbage collector pauses every thread). No database is needed: without hints,
preparation is pure CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager

from benchmarks._harness import format_seconds, print_table
from queryopt.analysis import analyze_uncached
from queryopt.config import Settings
from queryopt.optimizer.execution import Connection
from queryopt.optimizer.preparation import CallPreparer
from tests.corpus.tpch import TPCH_QUERIES

PK_LOOKUP = "SELECT id, name, balance FROM accounts WHERE id = %s"


def _no_connection() -> AbstractContextManager[Connection]:
    raise AssertionError("preparation without hints needs no connection")


def _queries() -> dict[str, str]:
    texts = [text.strip().rstrip(";") for text in TPCH_QUERIES.values()]
    longest = max(texts, key=len)
    combined = "SELECT 1 FROM " + ", ".join(f"({text}) AS q{i}" for i, text in enumerate(texts))
    return {
        "primary-key lookup": PK_LOOKUP,
        f"longest TPC-H query ({len(longest)} chars)": longest,
        f"22 TPC-H queries in one ({len(combined)} chars)": combined,
    }


MODES = ("in the loop", "asyncio.to_thread", "worker process")


async def _stalls(mode: str, sql: str, count: int, analysts: ProcessPoolExecutor) -> tuple[list[float], list[float]]:
    """Heartbeat lateness (seconds) while preparing ``count`` distinct texts, and each preparation's time."""
    preparer = CallPreparer(Settings(), connect=_no_connection)
    lateness: list[float] = []
    durations: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            lateness.append(time.perf_counter() - started - 0.001)

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.01)
    for i in range(count):
        text = f"{sql} /* {i} {time.perf_counter_ns()} */"
        started = time.perf_counter()
        if mode == "asyncio.to_thread":
            await asyncio.to_thread(preparer.prepare, text)
        elif mode == "worker process":
            analysis = await asyncio.get_running_loop().run_in_executor(analysts, analyze_uncached, text)
            preparer.prepare(text, analysis=analysis)
        else:
            preparer.prepare(text)
        durations.append(time.perf_counter() - started)
        await asyncio.sleep(0.002)
    done.set()
    await beat
    return lateness, durations


def run(quick: bool = False) -> list[dict[str, object]]:
    count = 5 if quick else 25
    rows: list[dict[str, object]] = []
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as analysts:
        analysts.submit(analyze_uncached, "SELECT 1").result()  # started, as AsyncOptimizer.open() does
        for label, sql in _queries().items():
            in_loop = 0.0
            for mode in MODES:
                lateness, durations = asyncio.run(_stalls(mode, sql, count, analysts))
                worst = max(lateness)
                offloaded = mode != "in the loop"
                if not offloaded:
                    in_loop = worst
                bound = max(in_loop / 5, 0.002)  # a fifth of the in-loop stall; 2 ms is this machine's jitter
                rows.append(
                    {
                        "query": label,
                        "preparation": mode,
                        "time to prepare": format_seconds(statistics.median(durations)),
                        "loop stall p50": format_seconds(statistics.median(lateness)),
                        "loop stall max": format_seconds(worst),
                        "vs in the loop": f"{worst / in_loop:.2f}x",
                        "target": f"max ≤ {format_seconds(bound)}" if offloaded else "baseline",
                        "met": (worst <= bound) if offloaded else None,
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer texts (a smoke run)")
    args = parser.parse_args()
    print_table("event-loop stall while preparing a new SQL text", run(quick=args.quick))


if __name__ == "__main__":
    main()
