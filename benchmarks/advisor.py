"""How long ``advise()`` takes for a workload of 100 fingerprints over 50 tables.

    python -m benchmarks.advisor            # 50 tables of 20,000 rows, 100 recorded fingerprints
    python -m benchmarks.advisor --quick    # 10 tables of 5,000 rows, 20 fingerprints: a smoke run

Each table has a primary key only; each gets two recorded statements (a lookup
by a non-key column, and a filtered top-N), so every table has a few candidate
indexes. The baseline is the floor of any advisor: planning each fingerprint
once (``PREPARE`` + generic ``EXPLAIN EXECUTE`` + ``DEALLOCATE`` through
psycopg). Times are wall-clock, client and server unpinned, best and median of
the runs; the ratio compares medians measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console

from benchmarks._harness import print_table, scratch_database
from queryopt.advisor import advise
from queryopt.schema import migrate

DATABASE = "queryopt_bench_advisor"
STATEMENTS = (
    "SELECT id, d FROM {table} WHERE a = %s",
    "SELECT id, c FROM {table} WHERE b = %s AND c >= %s ORDER BY c LIMIT 20",
)
_RECORD = """
INSERT INTO queryopt.slow_queries (started_at, fingerprint, kind, normalized_sql, sql_text, duration_ms,
    database_name, role_name)
SELECT now() - interval '1 hour' + g * interval '1 minute', %(fingerprint)s, 'select', %(sql)s, %(sql)s,
       20 + g, current_database(), current_user
FROM generate_series(1, 5) AS g
"""


def _database(dsn: str | None) -> AbstractContextManager[str]:
    """A fresh database on ``dsn``'s server, or on a throwaway server when ``dsn`` is None."""
    return scratch_database(dsn, DATABASE)


def _load(dsn: str, tables: int, rows: int) -> list[str]:
    """Create the tables and record two statements per table; returns the statements."""
    from queryopt.analysis import analyze

    migrate(dsn)
    texts = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        for number in range(tables):
            table = sql.Identifier(f"t_{number}")
            conn.execute(
                sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, a int, b int, c timestamptz, d text)").format(table)
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, (g * 7919) % 1000, g % 100, now() - g * interval '1 minute', 'x'"
                    " FROM generate_series(1, {}) AS g"
                ).format(table, sql.Literal(rows))
            )
            conn.execute(sql.SQL("ANALYZE {}").format(table))
            for template in STATEMENTS:
                text = template.format(table=f"t_{number}")
                texts.append(text)
                conn.execute(_RECORD, {"fingerprint": analyze(text).fingerprint, "sql": text})
        # The load is not a write rate the advisor should weigh: reset the statistics once it is in them
        # (a backend reports its counters when idle, at most once a second, or when asked).
        conn.execute("SELECT pg_stat_force_next_flush()")
        last = f"t_{tables - 1}"
        for _ in range(200):
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = %s", [last]).fetchone()
            if row is not None and row[0] >= rows:
                break
            time.sleep(0.05)
        conn.execute("SELECT pg_stat_reset()")
    return texts


def _plan_each_once(dsn: str, texts: list[str]) -> float:
    from queryopt.advisor.statements import planning_text

    began = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for number, text in enumerate(texts):
            body, parameters = planning_text(text)
            name = sql.Identifier(f"p{number}")
            conn.execute(sql.SQL("PREPARE {} AS ").format(name) + sql.SQL(body))
            nulls = sql.SQL(", ").join([sql.NULL] * parameters)
            conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {} ({})").format(name, nulls)).fetchone()
            conn.execute(sql.SQL("DEALLOCATE {}").format(name))
    return time.perf_counter() - began


def _has_hypopg(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() is not None


def run(quick: bool = False, *, dsn: str | None = None) -> list[dict[str, Any]]:
    tables, rows, runs = (10, 5_000, 1) if quick else (50, 20_000, 3)
    with _database(dsn) as target:
        if not _has_hypopg(target):
            return [{"case": "skipped: the server has no HypoPG (apt-get install postgresql-15-hypopg)"}]
        texts = _load(target, tables, rows)
        cases: dict[str, dict[str, Any]] = {
            "advise(), default options (at most 10 indexes)": {},
            "advise(), no limit on the number of indexes": {"max_indexes": len(texts)},
        }
        floor_times: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in cases}
        advice: dict[str, Any] = {}
        for _ in range(runs):  # interleaved, so drift hits every case alike
            floor_times.append(_plan_each_once(target, texts))
            for name, options in cases.items():
                began = time.perf_counter()
                advice[name] = advise(target, use_pg_stat_statements=False, **options)
                times[name].append(time.perf_counter() - began)
        floor = statistics.median(floor_times)
        results: list[dict[str, Any]] = [
            {
                "case": "plan each fingerprint once (psycopg)",
                "fingerprints": len(texts),
                "plans": len(texts),
                "indexes": "",
                "best_s": round(min(floor_times), 3),
                "median_s": round(floor, 3),
                "ratio": 1.0,
            }
        ]
        for name in cases:
            results.append(
                {
                    "case": name,
                    "fingerprints": advice[name].fingerprints,
                    "plans": advice[name].plans,
                    "indexes": len(advice[name].indexes),
                    "best_s": round(min(times[name]), 3),
                    "median_s": round(statistics.median(times[name]), 3),
                    "ratio": round(statistics.median(times[name]) / floor, 1),
                }
            )
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dsn", help="a server to use (a database of its own is created and dropped)")
    args = parser.parse_args()
    print_table("advise() for a recorded workload (unpinned)", run(args.quick, dsn=args.dsn), Console())


if __name__ == "__main__":
    main()
