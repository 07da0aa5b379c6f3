"""Run every benchmark and write the numbers to a JSON file: ``python -m benchmarks`` (or ``make bench``).

Each topic prints one table, measured side by side in the same run, with ratios
to its baseline and the target from its issue marked met / not met. Client and
server are pinned to one CPU by default (``--unpinned`` lets them float).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks._harness import print_table

TOPICS = (
    "hot_path",
    "sqlalchemy",
    "cache",
    "redis_cache",
    "async_prepare",
    "analysis",
    "long_lists",
    "recorder",
    "report",
    "advisor",
    "limits",
    "telemetry",
)
TITLES = {
    "hot_path": "hot path: raw psycopg vs optimize_query vs a cache hit",
    "sqlalchemy": "SQLAlchemy: plain vs instrumented engine",
    "cache": "cache hit path: queryopt vs dogpile.cache vs a dict",
    "redis_cache": "Redis cache hit vs the primary-key lookup it replaces vs the in-memory cache",
    "async_prepare": "event-loop stall while preparing a new SQL text: loop, thread, process",
    "analysis": "SQL analysis: LRU hit, miss, bare sqlglot parse",
    "long_lists": "analysis of 10k-50k item IN lists and arrays vs a bare sqlglot parse (ms)",
    "recorder": "slow-query recorder: enqueue cost and sustained rows/s",
    "report": "report over 1,000,000 slow-query rows",
    "limits": "per-fingerprint limiter: cost per call with a free slot",
    "advisor": "index advice for 100 recorded fingerprints over 50 tables",
    "telemetry": "telemetry: optimize_query with QUERYOPT_TELEMETRY off and on vs raw psycopg",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and less data: a smoke run")
    parser.add_argument("--unpinned", action="store_true", help="do not pin client and server to one CPU")
    parser.add_argument("--only", action="append", choices=TOPICS, help="run only this topic (repeatable)")
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/latest.json"), help="where to write the numbers"
    )
    args = parser.parse_args(argv)
    console = Console()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "pinned": not args.unpinned,
        "topics": {},
    }
    for topic in args.only or TOPICS:
        try:
            module = importlib.import_module(f"benchmarks.{topic}")
        except ModuleNotFoundError as exc:
            console.print(f"[yellow]{topic}: skipped ({exc})[/yellow]")
            continue
        options: dict[str, Any] = {"quick": args.quick}
        if "pinned" in inspect.signature(module.run).parameters:
            options["pinned"] = not args.unpinned
        started = time.perf_counter()
        rows = module.run(**options)
        elapsed = time.perf_counter() - started
        print_table(f"{TITLES[topic]}  ({elapsed:.0f} s)", rows, console)
        results["topics"][topic] = {"seconds": round(elapsed, 1), "rows": rows}
        # Written after every topic, so a failure later in the run loses nothing measured.
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
