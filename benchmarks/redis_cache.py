"""A Redis cache hit vs the primary-key lookup it replaces vs the in-memory cache, side by side.

Run: ``python -m benchmarks.redis_cache [--unpinned] [--quick]``. It starts its own
throwaway PostgreSQL and redis-server (both on unix sockets), pins the client,
the postmaster and Redis to one CPU (DESIGN §7), and measures in interleaved
rounds of one run:

- raw psycopg primary-key lookup (a pooled connection, auto-prepared): the baseline;
- ``Optimizer.execute`` with the cache off;
- a hit in the in-memory cache (``Optimizer.execute(use_cache=True)``);
- a hit in the Redis cache, same call: one ``MGET`` of the entry, the epoch and
  the table versions, a tag comparison and a decode;
- a 100-row result hit in each cache (decode cost grows with the rows);
- the floors under a Redis hit: redis-py ``GET`` of the entry alone, and
  ``MGET`` of the entry with its version keys — the difference is what checking
  versions on every hit costs (the trade-off the shared cache makes instead of
  a per-process generation counter that would allow stale reads).
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import psycopg
import redis
from psycopg_pool import ConnectionPool

from benchmarks._harness import Case, format_seconds, measure, pin, print_table
from queryopt.cache import ResultCache, canonical_params
from queryopt.cache.backends.redis import RedisBackend
from queryopt.config import CachePolicy, RecorderPolicy, Settings
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.embedded.redis import EmbeddedRedis
from queryopt.optimizer.blocking import Optimizer

PK_QUERY = "SELECT id, name, balance FROM accounts WHERE id = %s"
PAGE_QUERY = "SELECT id, name, balance FROM accounts WHERE id > %s ORDER BY id LIMIT 100"


def _load(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL)")
        conn.execute("INSERT INTO accounts SELECT g, 'account ' || g, g * 10 FROM generate_series(1, 100000) g")
        conn.execute("VACUUM ANALYZE")


def run(quick: bool = False, pinned: bool = True) -> list[dict[str, object]]:
    rounds, min_time = (3, 0.05) if quick else (9, 0.3)
    with EmbeddedPostgres() as server, EmbeddedRedis() as redis_server:
        conninfo = server.conninfo()
        _load(conninfo)
        is_pinned = pinned and pin(0, server.pid, redis_server.pid)
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True
        )
        pool.wait()
        settings = Settings(dsn=conninfo, cache=CachePolicy(ttl=3600), recorder=RecorderPolicy(enabled=False))
        backend = RedisBackend(redis_server.url, namespace=f"bench-{uuid.uuid4().hex[:8]}")
        memory = Optimizer(pool=pool, settings=settings)
        shared = Optimizer(pool=pool, settings=settings, cache=ResultCache(settings.cache, backend=backend))
        client = redis.Redis.from_url(redis_server.url)
        try:
            rows = _compare(pool, memory, shared, backend, client, rounds=rounds, min_time=min_time)
        finally:
            client.close()
            shared.cache.close()
            memory.close()
            shared.close()
            pool.close()
    for row in rows:
        row["pinned"] = "yes" if is_pinned else "no"
    return rows


def _compare(
    pool: ConnectionPool[psycopg.Connection[Any]],
    memory: Optimizer,
    shared: Optimizer,
    backend: RedisBackend,
    client: redis.Redis,
    *,
    rounds: int,
    min_time: float,
) -> list[dict[str, object]]:
    def raw() -> object:
        with pool.connection() as conn:
            return conn.execute(PK_QUERY, [4242]).fetchall()

    for optimizer in (memory, shared):
        optimizer.execute(PK_QUERY, [4242], use_cache=True)
        optimizer.execute(PAGE_QUERY, [4242], use_cache=True)
    assert shared.execute(PK_QUERY, [4242], use_cache=True).rows == memory.execute(PK_QUERY, [4242]).rows
    call = shared.prepare(PK_QUERY)
    entry = backend.entry_name((call.cache_prefix, canonical_params([4242])))
    names = backend._names(call.version_keys)
    assert client.get(entry) is not None
    hits_before = shared.stats()["hits"]

    cases = [
        Case("raw psycopg PK lookup", raw),
        Case("optimize_query, cache off", lambda: memory.execute(PK_QUERY, [4242])),
        Case("memory cache hit", lambda: memory.execute(PK_QUERY, [4242], use_cache=True)),
        Case("Redis cache hit", lambda: shared.execute(PK_QUERY, [4242], use_cache=True)),
        Case("memory cache hit, 100 rows", lambda: memory.execute(PAGE_QUERY, [4242], use_cache=True)),
        Case("Redis cache hit, 100 rows", lambda: shared.execute(PAGE_QUERY, [4242], use_cache=True)),
        Case("redis-py GET of the entry (floor)", lambda: client.get(entry)),
        Case("redis-py MGET entry + versions", lambda: client.execute_command("MGET", entry, *names)),
    ]
    measure(cases, rounds=rounds, min_time=min_time)
    assert shared.stats()["hits"] > hits_before  # the Redis cases were hits, not silent misses
    baseline = cases[0].median
    targets = {
        "memory cache hit": ("≥ 40x faster than raw", lambda t: baseline / t >= 40),
        "Redis cache hit": ("faster than raw", lambda t: t < baseline),
    }
    rows: list[dict[str, object]] = []
    for case in cases:
        target, check = targets.get(case.name, ("", None))
        ratio = case.median / baseline
        rows.append(
            {
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs raw lookup": f"{ratio:.3f}x" if ratio >= 0.1 else f"1/{1 / ratio:,.0f}",
                "target": target or ("baseline" if case is cases[0] else ""),
                "met": None if check is None else check(case.median),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--unpinned", action="store_true", help="let client and servers float between CPUs")
    args = parser.parse_args()
    print_table("Redis cache hit vs primary-key lookup vs memory", run(quick=args.quick, pinned=not args.unpinned))


if __name__ == "__main__":
    main()
