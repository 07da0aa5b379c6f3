"""The hot path: raw psycopg vs optimize_query with the cache off vs a cache hit.

Run: ``python -m benchmarks.hot_path [--unpinned] [--quick]``. It starts its own
throwaway PostgreSQL, pins client and server to one CPU (DESIGN: unpinned runs
jump between two round-trip times), and measures every case in interleaved
rounds of the same run, on a primary-key lookup and on an aggregate of about
80 ms. Targets: cache off ≤ 1.10x raw psycopg; a hit ≤ 1 µs, ≥ 40x faster than
the raw lookup and ≥ 50,000x faster than the aggregate.
"""

from __future__ import annotations

import argparse
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from benchmarks._harness import Case, format_seconds, measure, pin, print_table
from queryopt.config import Settings
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.optimizer.blocking import Optimizer
from queryopt.result import QueryResult
from queryopt.schema.migrator import migrate

PK_QUERY = "SELECT id, name, balance FROM accounts WHERE id = %s"
AGGREGATE_QUERY = (
    "SELECT region, count(*), sum(amount), avg(amount) FROM sales WHERE amount > %s GROUP BY region ORDER BY region"
)


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


def run(quick: bool = False, pinned: bool = True) -> list[dict[str, object]]:
    rounds, min_time = (3, 0.05) if quick else (9, 0.3)
    with EmbeddedPostgres(settings={"max_parallel_workers_per_gather": "0"}) as server:
        conninfo = server.conninfo()
        _load(conninfo, 200_000 if quick else 1_500_000)
        is_pinned = pinned and pin(0, server.pid)
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True
        )
        pool.wait()
        optimizer = Optimizer(pool=pool, settings=Settings(dsn=conninfo))
        try:
            rows = _compare("primary-key lookup", PK_QUERY, [4242], pool, optimizer, rounds=rounds, min_time=min_time)
            rows += _compare(
                "aggregate", AGGREGATE_QUERY, [50], pool, optimizer, rounds=max(3, rounds // 2), min_time=min_time * 2
            )
        finally:
            optimizer.close()
            pool.close()
    for row in rows:
        row["pinned"] = "yes" if is_pinned else "no"
    return rows


def _compare(
    label: str,
    query: str,
    params: list[Any],
    pool: ConnectionPool[psycopg.Connection[Any]],
    optimizer: Optimizer,
    *,
    rounds: int,
    min_time: float,
) -> list[dict[str, object]]:
    def raw() -> list[tuple[Any, ...]]:
        with pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    def cache_off() -> list[Any]:
        return optimizer.query(query, params)

    def cache_hit() -> QueryResult:
        return optimizer.execute(query, params, use_cache=True)

    assert raw() == cache_off() == list(cache_hit().rows)
    slow = label == "aggregate"
    cases = [
        Case("raw psycopg (pool)", raw),
        Case("optimize_query, cache off", cache_off),
        Case("cache hit", cache_hit),
    ]
    measure(cases, rounds=rounds, min_time=min_time)
    base = cases[0].median
    targets: dict[str, tuple[str, bool]] = {
        "optimize_query, cache off": ("≤ 1.10x raw", cases[1].median / base <= 1.10),
    }
    hit = cases[2].median
    if slow:
        targets["cache hit"] = ("≥ 50,000x faster than the aggregate", base / hit >= 50_000)
    else:
        targets["cache hit"] = ("≤ 1 µs and ≥ 40x faster than raw", hit <= 1e-6 and base / hit >= 40)
    rows = []
    for case in cases:
        target, met = targets.get(case.name, ("baseline", None))  # type: ignore[arg-type]
        rows.append(
            {
                "query": label,
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs raw": f"{case.median / base:.3f}x" if case.median >= base / 10 else f"1/{base / case.median:,.0f}",
                "target": target,
                "met": met,
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
