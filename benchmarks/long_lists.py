"""What analysing a statement with a long literal list costs, against sqlglot parsing the same text.

Run it with ``python -m benchmarks.long_lists``. Three shapes — an ``IN`` list of
numbers, an ``ARRAY[…]`` of strings, and SQLAlchemy's expanding ``IN`` (one
placeholder per item, which cannot be shortened) — at 10,000, 40,000 and 50,000
items. Each figure is the best of a few uncached analyses (``analyze_uncached``),
in milliseconds; ``bare parse`` is ``sqlglot.parse_one(sql, read="postgres")`` of
the same text, timed once (it is the slow part being avoided). ``growth`` is the
40k time over the 10k time: ~4 when linear, ~16 when quadratic (issue 14 measured
16.0 before: 10k literals 2.8 s, 40k 44 s). Not pinned: there is no server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlglot

from queryopt.analysis import analyze_uncached

SIZES = (10_000, 40_000, 50_000)
# (shape, items) -> (target text, limit in ms), from issue 14.
TARGETS: dict[tuple[str, int], tuple[str, float]] = {
    ("IN list of numbers", 10_000): ("< 30 ms", 30.0),
    ("IN list of numbers", 50_000): ("< 100 ms", 100.0),
    ("ARRAY of strings", 10_000): ("< 30 ms", 30.0),
    ("ARRAY of strings", 50_000): ("< 100 ms", 100.0),
}


def _numbers(count: int) -> str:
    return "SELECT o.id FROM orders o WHERE o.customer_id IN (" + ", ".join(map(str, range(count))) + ")"


def _strings(count: int) -> str:
    items = ", ".join(f"'sku-{i}'" for i in range(count))
    return f"SELECT * FROM items WHERE sku = ANY(ARRAY[{items}]) AND shop = %s"


def _placeholders(count: int) -> str:
    return "SELECT * FROM users WHERE id IN (" + ", ".join(f"%(id_{i})s" for i in range(count)) + ")"


SHAPES: dict[str, Callable[[int], str]] = {
    "IN list of numbers": _numbers,
    "ARRAY of strings": _strings,
    "expanding IN (placeholders)": _placeholders,
}


def _best_ms(call: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def run(quick: bool = False) -> list[dict[str, object]]:
    """One row per (shape, items): best ms of the analysis and of a bare parse, growth, target, met."""
    sizes = SIZES[:2] if quick else SIZES
    runs = 2 if quick else 5
    rows: list[dict[str, object]] = []
    for shape, build in SHAPES.items():
        analyze_uncached(build(100))  # sqlglot builds some tables lazily
        timings: dict[int, float] = {}
        for size in sizes:
            sql = build(size)
            timings[size] = _best_ms(lambda sql=sql: analyze_uncached(sql), runs)
            parse_ms = _best_ms(lambda sql=sql: sqlglot.parse_one(sql, read="postgres"), 1)
            target, limit = TARGETS.get((shape, size), ("", float("nan")))
            rows.append(
                {
                    "shape": shape,
                    "items": size,
                    "analysis_ms": round(timings[size], 2),
                    "bare_parse_ms": round(parse_ms, 1),
                    "x_bare_parse": round(timings[size] / parse_ms, 3),
                    "growth_40k_over_10k": round(timings[40_000] / timings[10_000], 2) if size == 40_000 else "",
                    "target": target,
                    "met": (timings[size] < limit) if target else None,
                }
            )
    return rows


def main() -> None:
    from rich.console import Console

    from benchmarks._harness import print_table

    print_table("analysis of long literal lists (ms, best of 5)", run(), Console(width=140))


if __name__ == "__main__":
    main()
