"""The hot path: raw psycopg on one connection vs the optimizer with the cache off vs a cache hit; the import.

Run: ``python -m benchmarks.hot_path [--unpinned] [--quick]``. It starts its own
throwaway PostgreSQL, pins client and server to one CPU (DESIGN: unpinned runs
jump between two round-trip times), and measures every case in interleaved
rounds of the same run.

- The baseline is raw psycopg on ONE connection, ``conn.execute(sql,
  params).fetchall()``: no pool. The optimizer runs with recording, live
  statistics and the server-side timeout on, as by default. Targets (issue 20):
  ``Optimizer.query``, ``Optimizer.execute`` and ``optimize_query`` with the
  cache off ≤ 1.00x raw; ``AsyncOptimizer.query`` ≤ 1.00x a raw
  ``AsyncConnection``; a cache hit ≤ 0.5 µs through ``execute`` and ≤ 0.7 µs
  through ``query`` and ``optimize_query`` (tuple rows). A reused cursor on the
  raw connection is shown as the floor. Each case times its statement as an
  application writes it, compiled into the loop (``Case.of``).
- SQLAlchemy: an engine instrumented with the default settings ≤ 1.05x the same
  plain engine (``text()`` lookup on a held connection, ratios paired per round).
- On an aggregate (0.1–0.2 s here): a hit ≥ 50,000x faster than running it.
- In fresh interpreters (subprocesses, medians of several): the resident memory
  ``import queryopt`` adds (≤ 25 MiB) and the wall time of ``queryopt --help``
  (≤ 0.30 s); what importing the optimizer itself adds is shown beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from benchmarks._harness import Case, format_seconds, measure, pin, print_table
from queryopt.config import Settings
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.optimizer import blocking
from queryopt.optimizer.awaiting import AsyncOptimizer
from queryopt.optimizer.blocking import Optimizer
from queryopt.schema.migrator import migrate

PK_QUERY = "SELECT id, name, balance FROM accounts WHERE id = %s"
AGGREGATE_QUERY = (
    "SELECT region, count(*), sum(amount), avg(amount) FROM sales WHERE amount > %s GROUP BY region ORDER BY region"
)
BASELINE = "raw psycopg, one connection"
Row = dict[str, object]


def _load(conninfo: str, sales_rows: int) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL)")
        conn.execute("INSERT INTO accounts SELECT g, 'account ' || g, g * 10 FROM generate_series(1, 100000) g")
        conn.execute("CREATE TABLE sales (id bigint PRIMARY KEY, region int NOT NULL, amount numeric NOT NULL)")
        conn.execute(
            "INSERT INTO sales SELECT g, g %% 20, (g::bigint * 7919 %% 10000) / 100.0 FROM generate_series(1, %s) g",
            [sales_rows],
        )
        conn.execute("VACUUM ANALYZE")
    migrate(conninfo)  # slow calls are recorded during the run, as in production


def run(quick: bool = False, pinned: bool = True) -> list[Row]:
    rounds, min_time = (3, 0.05) if quick else (9, 0.3)
    with EmbeddedPostgres(settings={"max_parallel_workers_per_gather": "0"}) as server:
        conninfo = server.conninfo()
        _load(conninfo, 200_000 if quick else 1_500_000)
        is_pinned = pinned and pin(0, server.pid)
        # The module-level optimizer of optimize_query, as an application configures it: own pool, defaults.
        previous = blocking._default
        optimizer = blocking.configure(conninfo, settings=Settings(dsn=conninfo))
        conn = psycopg.connect(conninfo, autocommit=True)
        try:
            rows = _primary_key(conn, optimizer, rounds=rounds, min_time=min_time)
            rows += _aggregate(conn, optimizer, rounds=max(3, rounds // 2), min_time=min_time * 2)
            rows += asyncio.run(_asyncio(conninfo, rounds=rounds, min_time=min_time))
            rows += _sqlalchemy(server.url(driver="psycopg"), rounds=3 * rounds, min_time=min_time / 3)
        finally:
            conn.close()
            optimizer.close()
            blocking._default = previous  # whoever ran the benchmark (a test) keeps its own default
    rows += _startup(runs=3 if quick else 7)
    for row in rows:
        row["pinned"] = "yes" if is_pinned else "no"
    return rows


def _primary_key(conn: psycopg.Connection[Any], optimizer: Optimizer, *, rounds: int, min_time: float) -> list[Row]:
    params = [4242]
    cursor = conn.cursor()

    expected = conn.execute(PK_QUERY, params).fetchall()
    entries = {("prefix", int, 4242): (time.monotonic() + 3600, expected)}
    # Each statement is timed as an application writes it, compiled into the loop (no partial or lambda).
    names = {
        "conn": conn,
        "cursor": cursor,
        "optimizer": optimizer,
        "optimize_query": blocking.optimize_query,
        "sql": PK_QUERY,
        "params": params,
        "get": entries.get,
        "key": ("prefix", int, 4242),
        "clock": time.monotonic,
    }
    cases = [
        Case.of(BASELINE, "conn.execute(sql, params).fetchall()", names),
        Case.of("floor: raw psycopg, reused cursor", "cursor.execute(sql, params).fetchall()", names),
        Case.of("Optimizer.query, cache off", "optimizer.query(sql, params)", names),
        Case.of("Optimizer.execute, cache off", "optimizer.execute(sql, params)", names),
        Case.of("optimize_query, cache off", "optimize_query(sql, params)", names),
        Case.of("cache hit: Optimizer.execute", "optimizer.execute(sql, params, use_cache=True)", names),
        Case.of("cache hit: Optimizer.query", "optimizer.query(sql, params, use_cache=True)", names),
        Case.of("cache hit: optimize_query", "optimize_query(sql, params, use_cache=True)", names),
        Case.of(
            "floor: a dict lookup and an expiry check",
            "entry[1] if (entry := get(key)) is not None and entry[0] > clock() else None",
            names,
        ),
    ]
    assert all(list(getattr(case.call(), "rows", case.call())) == expected for case in cases)
    measure(cases, rounds=rounds, min_time=min_time)
    targets = {
        "Optimizer.query, cache off": ("≤ 1.00x raw", lambda case, base: case.median / base <= 1.00),
        "Optimizer.execute, cache off": ("≤ 1.00x raw", lambda case, base: case.median / base <= 1.00),
        "optimize_query, cache off": ("≤ 1.00x raw", lambda case, base: case.median / base <= 1.00),
        "cache hit: Optimizer.execute": ("≤ 0.5 µs", lambda case, base: case.median <= 0.5e-6),
        "cache hit: Optimizer.query": ("≤ 0.7 µs", lambda case, base: case.median <= 0.7e-6),
        "cache hit: optimize_query": ("≤ 0.7 µs", lambda case, base: case.median <= 0.7e-6),
    }
    return _rows("primary-key lookup", cases, targets)


def _aggregate(conn: psycopg.Connection[Any], optimizer: Optimizer, *, rounds: int, min_time: float) -> list[Row]:
    names = {"conn": conn, "optimize_query": blocking.optimize_query, "sql": AGGREGATE_QUERY, "params": [50]}
    cases = [
        Case.of(BASELINE, "conn.execute(sql, params).fetchall()", names),
        Case.of("optimize_query, cache off", "optimize_query(sql, params)", names),
        Case.of("cache hit: optimize_query", "optimize_query(sql, params, use_cache=True)", names),
    ]
    expected = cases[0].call()
    assert all(case.call() == expected for case in cases)
    measure(cases, rounds=rounds, min_time=min_time)
    targets = {
        "cache hit: optimize_query": (
            "≥ 50,000x faster than the aggregate",
            lambda case, base: base / case.median >= 50_000,
        ),
    }
    return _rows("aggregate", cases, targets)


async def _asyncio(conninfo: str, *, rounds: int, min_time: float) -> list[Row]:
    params = [4242]
    settings = Settings(dsn=conninfo)
    async with (
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn,
        AsyncOptimizer(conninfo, settings=settings, analysis_processes=0) as optimizer,
    ):
        names = {"conn": conn, "optimizer": optimizer, "sql": PK_QUERY, "params": params}
        cases = [
            Case.of(
                "raw psycopg AsyncConnection", "await (await conn.execute(sql, params)).fetchall()", names, awaited=True
            ),
            Case.of("AsyncOptimizer.query, cache off", "await optimizer.query(sql, params)", names, awaited=True),
            Case.of("AsyncOptimizer.execute, cache off", "await optimizer.execute(sql, params)", names, awaited=True),
        ]
        expected = await cases[0].call()  # type: ignore[misc]
        for case in cases:
            result = await case.call()  # type: ignore[misc]
            assert list(getattr(result, "rows", result)) == expected
        await _measure_async(cases, rounds=rounds, min_time=min_time)
    target = ("≤ 1.00x raw async", lambda case, base: case.median / base <= 1.00)
    return _rows(
        "primary-key lookup, asyncio",
        cases,
        {"AsyncOptimizer.query, cache off": target, "AsyncOptimizer.execute, cache off": target},
    )


async def _measure_async(cases: list[Case], *, rounds: int, min_time: float, warmup: int = 50) -> None:
    """:func:`benchmarks._harness.measure` for awaited cases (:meth:`Case.of` with ``awaited``): interleaved
    rounds, each timed inside the event loop."""
    numbers = {}
    for case in cases:
        loop = case.loop
        assert loop is not None
        await loop(warmup)
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < min_time / 4:
            await loop(10)
            count += 10
        numbers[case.name] = max(1, int(count * min_time / max(time.perf_counter() - started, 1e-9)))
    for _ in range(rounds):
        for case in cases:
            loop = case.loop
            assert loop is not None
            number = numbers[case.name]
            started = time.perf_counter()
            await loop(number)
            case.samples.append((time.perf_counter() - started) / number)


def _sqlalchemy(url: str, *, rounds: int, min_time: float) -> list[Row]:
    """A ``text()`` primary-key lookup on a held connection: a plain engine, the same engine instrumented with
    the default settings, and another plain engine (the measurement's own noise). Ratios are paired per round
    and the order rotates, as in :mod:`benchmarks.sqlalchemy`."""
    from sqlalchemy import create_engine

    from benchmarks.sqlalchemy import PK_TEXT, TARGET, _measure_rotated, _paired_ratio
    from queryopt.integrations.sqlalchemy import instrument, uninstrument

    engines = {name: create_engine(url, pool_size=1, max_overflow=0) for name in ("plain", "queryopt", "control")}
    instrument(engines["queryopt"], settings=Settings())
    held = {name: engine.connect() for name, engine in engines.items()}
    try:
        statement = "conn.execute(sql, params).all()"
        cases = [
            Case.of(label, statement, {"conn": held[name], "sql": PK_TEXT, "params": {"id": 4242}})
            for label, name in [
                ("plain engine", "plain"),
                ("instrumented engine, cache off", "queryopt"),
                ("control: another plain engine", "control"),
            ]
        ]
        assert len({repr(case.call()) for case in cases}) == 1
        _measure_rotated(cases, rounds=rounds, min_time=min_time)
    finally:
        for conn in held.values():
            conn.close()
        uninstrument(engines["queryopt"])
        for engine in engines.values():
            engine.dispose()
    rows: list[Row] = []
    for case in cases:
        ratio = _paired_ratio(case, cases[0])
        instrumented = case is cases[1]
        rows.append(
            {
                "query": "primary-key lookup, SQLAlchemy text()",
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs raw": f"{ratio:.3f}x",
                "target": "baseline (plain engine)"
                if case is cases[0]
                else f"≤ {TARGET:.2f}x plain"
                if instrumented
                else "",
                "met": ratio <= TARGET if instrumented else None,
            }
        )
    return rows


def _rows(label: str, cases: list[Case], targets: dict[str, tuple[str, Callable[[Case, float], bool]]]) -> list[Row]:
    base = cases[0].median
    rows: list[Row] = []
    for case in cases:
        target = targets.get(case.name)
        ratio = case.median / base
        rows.append(
            {
                "query": label,
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs raw": f"{ratio:.3f}x" if ratio >= 0.1 else f"1/{base / case.median:,.0f}",
                "target": "baseline (no pool)" if case is cases[0] else target[0] if target else "",
                "met": target[1](case, base) if target else None,
            }
        )
    return rows


# -- fresh interpreters: what importing costs ------------------------------------------------------------

# The peak resident memory of this address space: ru_maxrss would also count the forking parent's,
# which an exec'd child inherits. VmHWM is Linux's; elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
_PEAK = """import sys
{code}
try:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
except OSError:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak, file=sys.stderr)
"""


def _peak_kib(code: str, runs: int) -> float:
    """Median peak resident memory (KiB) of a fresh interpreter running ``code``."""
    peaks = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _PEAK.format(code=code)], capture_output=True, text=True, check=True
        )
        peaks.append(float(done.stderr.strip().splitlines()[-1]))
    return statistics.median(peaks)


def _help_seconds(runs: int) -> tuple[float, float]:
    """Median wall time and CPU time (user + system) of ``queryopt --help``, each run a new process."""
    script = Path(sys.executable).with_name("queryopt")
    command = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "queryopt", "--help"]
    walls, cpus = [], []
    for _ in range(runs):
        started = time.perf_counter()
        before = _children_cpu()
        subprocess.run(command, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        cpus.append(_children_cpu() - before)
    return statistics.median(walls), statistics.median(cpus)


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _startup(*, runs: int) -> list[Row]:
    bare = _peak_kib("pass", runs)
    added = {
        "import queryopt": _peak_kib("import queryopt", runs) - bare,
        "from queryopt import Optimizer (psycopg, sqlglot…)": _peak_kib("from queryopt import Optimizer", runs) - bare,
    }
    wall, cpu = _help_seconds(runs)
    rows: list[Row] = []
    for name, kib in added.items():
        target = name == "import queryopt"
        rows.append(
            {
                "query": "fresh interpreter",
                "case": f"{name}: resident memory added",
                "median": f"{kib / 1024:.1f} MiB",
                "target": "≤ 25 MiB" if target else "",
                "met": kib / 1024 <= 25 if target else None,
            }
        )
    rows.append(
        {
            "query": "fresh interpreter",
            "case": "queryopt --help: wall time",
            "median": f"{wall:.3f} s",
            "spread": f"cpu {cpu:.3f} s",
            "target": "≤ 0.30 s",
            "met": wall <= 0.30,
        }
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and less data (a smoke run)")
    parser.add_argument("--unpinned", action="store_true", help="let client and server run on any CPU")
    args = parser.parse_args()
    print_table("hot path", run(quick=args.quick, pinned=not args.unpinned))


if __name__ == "__main__":
    main()
