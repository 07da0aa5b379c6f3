"""How long ``queryopt report`` takes over a million slow-query rows (target: under 3 s).

    python -m benchmarks.report            # 1,000,000 rows, then 1,000,000 more in the previous window
    python -m benchmarks.report --quick    # 20,000 rows: a smoke run
    python -m benchmarks.report --explain  # also print EXPLAIN ANALYZE of every report statement

Rows are generated server-side (``INSERT … SELECT generate_series``) into a
throwaway PostgreSQL (queryopt.embedded.postgres) or the database named by ``--dsn``:
200 fingerprints with a skewed call count, durations 100 ms – 2.4 s, 1 % timeouts,
~2 % errors, a third hinted, a few fingerprints 3.5x slower in the reported
window so the regression view has findings. Rows are inserted in time order
(with jitter), as the recorder writes them, so ``started_at`` follows the heap. Times are wall-clock for
``report()`` end to end (connect, every statement, building the data), best and
median of the runs, client and server unpinned (the aggregates use both cores).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from benchmarks._harness import scratch_database
from queryopt.report import Severity, render, report, statements
from queryopt.report.render import ReportFormat
from queryopt.report.window import bucket_starts, resolve_window
from queryopt.schema.migrator import migrate

TARGET_SECONDS = 3.0
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
DATABASE = "queryopt_bench_report"

_GENERATE = """
INSERT INTO queryopt.slow_queries (started_at, fingerprint, kind, normalized_sql, sql_text, duration_ms, row_count,
    timed_out, sqlstate, hints, cache_outcome, database_name, role_name, application_name)
SELECT %(start)s::timestamptz + %(span)s::interval * ((g - 1 + random()) / %(rows)s),
       lpad(to_hex(f * 7919), 16, '0'),
       'select',
       'SELECT o.id, o.total, c.name FROM orders_' || f || ' AS o JOIN customers AS c ON c.id = o.customer_id'
           || ' WHERE o.customer_id = $1 AND o.status = $2 ORDER BY o.created_at DESC LIMIT $3',
       'SELECT o.id, o.total, c.name FROM orders_' || f || ' AS o JOIN customers AS c ON c.id = o.customer_id'
           || ' WHERE o.customer_id = ' || (g %% 100000) || ' AND o.status = ''open'''
           || ' ORDER BY o.created_at DESC LIMIT 50',
       (100 + (f %% 17) * 20 + random() * 400 * (1 + f %% 5))
           * CASE WHEN %(regressed)s AND f %% 50 = 7 THEN 3.5 ELSE 1 END,
       g %% 50,
       g %% 100 = 0,
       CASE WHEN g %% 100 = 0 THEN '57014' WHEN g %% 97 = 0 THEN '40P01' END,
       CASE WHEN f %% 3 = 0 THEN '/*+ IndexScan(o orders_' || f || '_customer_idx) */' END,
       (ARRAY['miss', 'bypass', NULL])[1 + g %% 3],
       'app', 'app_user', 'web'
FROM generate_series(1, %(rows)s) AS g,
     LATERAL (SELECT floor(power(random(), 3) * 200)::int + 0 * g AS f) AS pick
"""


def _database(dsn: str | None) -> AbstractContextManager[str]:
    """A fresh database on ``dsn``'s server, or on a throwaway server when ``dsn`` is None."""
    # A larger max_wal_size only means fewer checkpoints while generating; the report reads with defaults.
    return scratch_database(dsn, DATABASE, server_settings={"max_wal_size": "4GB"})


def _generate(dsn: str, rows: int, start: datetime, *, regressed: bool) -> float:
    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_GENERATE, {"start": start, "span": WINDOW, "rows": rows, "regressed": regressed})
    return time.perf_counter() - began


def _vacuum(dsn: str) -> float:
    """What autovacuum does soon after inserts (migration 0002 asks for it every 10,000 rows).

    Returns the fraction of heap pages the visibility map marks all-visible afterwards.
    """
    fraction = 0.0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(30):
            # Measured on the embedded server (asynchronous commit): a VACUUM right after a bulk insert sets no
            # hint bits and leaves the new pages out of the visibility map; a moment later it marks them all.
            time.sleep(0.5)
            conn.execute("VACUUM queryopt.slow_queries")
            row = conn.execute(
                "SELECT relallvisible::float / greatest(relpages, 1) FROM pg_class"
                " WHERE oid = 'queryopt.slow_queries'::regclass"
            ).fetchone()
            fraction = float(row[0]) if row else 0.0
            if fraction > 0.99:
                break
        conn.execute("ANALYZE queryopt.slow_queries")
    return fraction


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM queryopt.slow_queries").fetchone()
    assert row is not None
    return int(row[0])


def _measure(dsn: str, runs: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = report(dsn, since=WINDOW, now=NOW)
        times.append(time.perf_counter() - began)
    return times, result


def _row(scenario: str, dsn: str, times: list[float], result: Any, all_visible: float) -> dict[str, Any]:
    best = min(times)
    return {
        "scenario": scenario,
        "all_visible": all_visible,
        "rows_in_table": _count(dsn),
        "rows_in_window": result.summary.calls,
        "fingerprints": result.summary.fingerprints,
        "regressions": len(result.findings_at_least(Severity.WARNING)),
        "runs": len(times),
        "best_s": best,
        "median_s": statistics.median(times),
        "target_s": TARGET_SECONDS,
        "met": best < TARGET_SECONDS and statistics.median(times) < TARGET_SECONDS,
    }


def explain(dsn: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement the report runs, on the current data."""
    window = resolve_window(now=NOW, since=WINDOW)
    table = sql.Identifier("queryopt", "slow_queries")
    out = []
    with psycopg.connect(dsn) as conn:
        conn.execute(statements.SESSION)
        per_fingerprint = statements.compose(statements.PER_FINGERPRINT, table, fingerprint=None, order="total_ms")
        first, last = bucket_starts(window)
        params: dict[str, Any] = {
            "start": window.start,
            "end": window.end,
            "previous_start": window.previous_start,
            "first_bucket": first,
            "last_bucket": last,
            "width": timedelta(seconds=window.bucket_seconds),
        }
        params["fingerprints"] = [row[0] for row in conn.execute(per_fingerprint, params).fetchmany(20)]
        for name, template in (
            ("per fingerprint", statements.PER_FINGERPRINT),
            ("slowest call of the top 20", statements.SAMPLES),
            ("summary (second connection)", statements.SUMMARY),
            ("timeline (second connection)", statements.TIMELINE),
            ("hint and cache counts (second connection)", statements.COUNTS),
        ):
            statement = statements.compose(template, table, fingerprint=None, order="total_ms")
            plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + statement, params).fetchall()
            out.append(f"-- {name}\n" + "\n".join(line for (line,) in plan))
    return "\n\n".join(out)


def run(quick: bool = False, *, dsn: str | None = None, show_plans: bool = False) -> list[dict[str, Any]]:
    """Generate the rows, time the report, and return one dict per scenario."""
    rows = 20_000 if quick else 1_000_000
    runs = 1 if quick else 3
    results = []
    with _database(dsn) as target:
        migrate(target)
        generated = _generate(target, rows, NOW - WINDOW, regressed=True)
        times, result = _measure(target, 1)
        results.append(_row("fresh inserts, no VACUUM yet", target, times, result, 0.0))
        visible = _vacuum(target)
        times, result = _measure(target, runs)
        results.append(_row("after VACUUM (as autovacuum leaves it)", target, times, result, visible))
        _generate(target, rows, NOW - 2 * WINDOW, regressed=False)
        visible = _vacuum(target)
        times, result = _measure(target, runs)
        results.append(_row("+ as many rows in the previous window", target, times, result, visible))
        began = time.perf_counter()
        for fmt in ReportFormat:
            render(result, fmt)
        results.append(
            {
                "scenario": "render it in all five formats",
                "all_visible": None,
                "rows_in_table": None,
                "rows_in_window": None,
                "fingerprints": None,
                "regressions": None,
                "runs": 1,
                "best_s": time.perf_counter() - began,
                "median_s": time.perf_counter() - began,
                "target_s": None,
                "met": None,
            }
        )
        results[0]["generate_s"] = generated
        results[0]["generated_rows"] = rows
        if show_plans:
            Console().print(explain(target), markup=False, highlight=False)
    return results


def print_table(results: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"queryopt report: time to aggregate slow-query rows (target < {TARGET_SECONDS:g} s)")
    columns = (
        "scenario",
        "rows in table",
        "rows in window",
        "all-visible",
        "queries",
        "findings",
        "best",
        "median",
        "< 3 s",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "scenario" else "right")
    for r in results:
        verdict = "" if r["met"] is None else ("[green]met[/green]" if r["met"] else "[red]not met[/red]")
        table.add_row(
            r["scenario"],
            "" if r["rows_in_table"] is None else f"{r['rows_in_table']:,}",
            "" if r["rows_in_window"] is None else f"{r['rows_in_window']:,}",
            "" if r["all_visible"] is None else f"{r['all_visible']:.0%}",
            "" if r["fingerprints"] is None else str(r["fingerprints"]),
            "" if r["regressions"] is None else str(r["regressions"]),
            f"{r['best_s']:.3f} s",
            f"{r['median_s']:.3f} s" if r["runs"] > 1 else "",
            verdict,
        )
    console.print(table)
    if "generate_s" in results[0]:
        rows, seconds = results[0]["generated_rows"], results[0]["generate_s"]
        console.print(f"(generating {rows:,} rows server-side took {seconds:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one run")
    parser.add_argument("--dsn", help="a server to use instead of a throwaway one (a scratch database is created)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each report statement")
    args = parser.parse_args(argv)
    console = Console()
    print_table(run(args.quick, dsn=args.dsn, show_plans=args.explain), Console(width=max(console.width, 130)))


if __name__ == "__main__":
    main()
