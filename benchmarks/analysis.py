"""What SQL analysis costs: an LRU hit, a miss (full analysis) and a bare ``sqlglot.parse_one``, side by side.

Run it with ``python -m benchmarks.analysis``. Two cases: a primary-key
lookup and the 22 TPC-H queries (their average); ``bare parse_one`` is
``sqlglot.parse_one(sql, read="postgres")`` of the same text. Each figure is the median
over repetitions, with the 10th–90th percentile spread; a TPC-H repetition
times every query once and averages them. Garbage collection stays on (it is
part of the real cost). The process is not pinned to a CPU: there is no
client/server pair to keep together, and on a shared machine a pinned CPU can
be the busy one. Targets come from the analysis issue.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import sqlglot
import sqlglot.tokens
from rich.console import Console
from rich.table import Table

from queryopt.analysis import analyze, analyze_uncached
from tests.corpus.tpch import TPCH_QUERIES

PK_LOOKUP = "SELECT id, name, email FROM users WHERE id = %s"
HIT_BATCH = 1000  # hits are timed in batches: one hit is near perf_counter_ns's own cost

# (case, measure) -> (target text, limit in µs)
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("PK lookup", "LRU hit"): ("< 1 µs", 1.0),
    ("PK lookup", "miss (full analysis)"): ("≈ 150 µs (≤ 180)", 180.0),
    ("TPC-H average", "LRU hit"): ("< 1 µs", 1.0),
    ("TPC-H average", "miss (full analysis)"): ("< 1 ms", 1000.0),
}


def _per_call_us(call: Callable[[], object], repeat: int = 1) -> float:
    start = time.perf_counter_ns()
    for _ in range(repeat):
        call()
    return (time.perf_counter_ns() - start) / repeat / 1000


def _spread(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    last = len(ordered) - 1
    return statistics.median(ordered), ordered[last // 10], ordered[last - last // 10]


def _measure(texts: list[str], repetitions: int) -> dict[str, tuple[float, float, float]]:
    """Median and spread (µs) of hit, miss and bare parse, averaged over ``texts`` within each repetition."""
    for text in texts:
        analyze(text)  # warm the LRU and sqlglot's lazy tables
        sqlglot.parse_one(text, read="postgres")
    measures: dict[str, Callable[[str], float]] = {
        "LRU hit": lambda text: _per_call_us(lambda: analyze(text), HIT_BATCH),
        "miss (full analysis)": lambda text: _per_call_us(lambda: analyze_uncached(text)),
        "bare parse_one": lambda text: _per_call_us(lambda: sqlglot.parse_one(text, read="postgres")),
    }
    results = {}
    for measure, time_one in measures.items():
        gc.collect()
        samples = [statistics.fmean(time_one(text) for text in texts) for _ in range(repetitions)]
        results[measure] = _spread(samples)
    return results


def run(quick: bool = False) -> list[dict[str, object]]:
    """Measure and return one row per (case, measure): median/p10/p90 in µs, ratio to bare parse, target, met."""
    cases = {"PK lookup": [PK_LOOKUP], "TPC-H average": list(TPCH_QUERIES.values())}
    repetitions = {"PK lookup": 30 if quick else 2000, "TPC-H average": 3 if quick else 100}
    rows: list[dict[str, object]] = []
    for case, texts in cases.items():
        results = _measure(texts, repetitions[case])
        parse_median = results["bare parse_one"][0]
        for measure, (median, low, high) in results.items():
            target, limit = TARGETS.get((case, measure), ("", float("nan")))
            rows.append(
                {
                    "case": case,
                    "measure": measure,
                    "median_us": round(median, 3),
                    "p10_us": round(low, 3),
                    "p90_us": round(high, 3),
                    "ratio_to_parse": round(median / parse_median, 3),
                    "target": target,
                    "met": (median <= limit) if target else None,
                    "repetitions": repetitions[case],
                }
            )
    return rows


def render(rows: list[dict[str, object]], console: Console | None = None) -> None:
    """Print ``rows`` as a table."""
    table = Table(
        title=f"SQL analysis cost (sqlglotc {'on' if sqlglot.tokens.SQLGLOTC_INSTALLED else 'OFF'}, sqlglot "
        f"{sqlglot.__version__})"
    )
    for column in ("case", "measure", "median µs", "p10–p90 µs", "× bare parse", "target", "met"):
        table.add_column(column, justify="left" if column in ("case", "measure", "target") else "right")
    for row in rows:
        met = row["met"]
        table.add_row(
            str(row["case"]),
            str(row["measure"]),
            f"{row['median_us']:.3f}",
            f"{row['p10_us']:.3f}–{row['p90_us']:.3f}",
            f"{row['ratio_to_parse']:.2f}",
            str(row["target"]),
            "" if met is None else ("[green]met[/green]" if met else "[red]not met[/red]"),
        )
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 110))  # a pipe or CI log: do not wrap cells
    console.print(table)


def main() -> None:
    render(run())


if __name__ == "__main__":
    main()
