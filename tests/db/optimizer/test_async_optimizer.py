"""AsyncOptimizer against a real server: caching, single-flight, timeouts that cancel on the server,
the client-side deadline, retries, transactions, recording and the module-level API.

Each test drives its own event loop with ``asyncio.run`` (no plugin needed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

import queryopt
from queryopt import (
    AsyncOptimizer,
    CachePolicy,
    QueryError,
    QueryTimeout,
    RecorderPolicy,
    RetryPolicy,
    Settings,
    TimeoutPolicy,
)
from queryopt.cache import ResultCache
from queryopt.cache.backends.redis import RedisBackend
from queryopt.embedded.redis import EmbeddedRedis
from queryopt.schema.migrator import migrate


def settings_for(dsn: str, **options: Any) -> Settings:
    options.setdefault("recorder", RecorderPolicy(enabled=False))
    return Settings(dsn=dsn, **options)


def run(dsn: str, body: Callable[[AsyncOptimizer], Awaitable[Any]], **options: Any) -> Any:
    """Run ``body`` with an open optimizer on a fresh event loop; close everything after."""
    cache = options.pop("cache", None)
    pool_size = options.pop("max_size", 4)

    async def main() -> Any:
        async with AsyncOptimizer(settings=settings_for(dsn, **options), cache=cache, max_size=pool_size) as db:
            try:
                return await body(db)
            finally:
                await db.cache.aclose()

    return asyncio.run(main())


@pytest.fixture
def shop(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
    conn.execute("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g")
    return conn


def active_queries(conn: psycopg.Connection[Any], marker: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active' AND pid <> pg_backend_pid()",
        [f"%{marker}%"],
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_queries_cache_and_invalidate(dsn: str, shop: psycopg.Connection[Any]) -> None:
    async def body(db: AsyncOptimizer) -> None:
        query = "SELECT name FROM customers WHERE id = %s"
        assert await db.query(query, [1], use_cache=True) == [("customer 1",)]
        assert await db.query(query, [1], use_cache=True, rows="dict") == [{"name": "customer 1"}]
        assert db.stats()["hits"] == 1
        await db.execute("UPDATE customers SET name = 'renamed' WHERE id = 1")
        assert await db.query(query, [1], use_cache=True) == [("renamed",)]
        async with db.transaction() as tx:
            await tx.execute("UPDATE customers SET name = 'in a transaction' WHERE id = 1")
            assert await db.query(query, [1], use_cache=True) == [("renamed",)]  # not committed yet
        assert await db.query(query, [1], use_cache=True) == [("in a transaction",)]
        decision = await db.cache_decision("SELECT now()")
        assert not decision.cacheable
        with pytest.raises(QueryError, match="connection string"):
            await db.execute("SET work_mem = '1GB'")

    run(dsn, body)


def test_session_settings_in_a_transaction_do_not_outlive_it(dsn: str, shop: psycopg.Connection[Any]) -> None:
    async def body(db: AsyncOptimizer) -> None:
        with pytest.raises(QueryError, match="SET LOCAL"):
            async with db.transaction() as tx:
                await tx.execute("SET work_mem = '1GB'")
        async with db.transaction() as tx:
            await tx.execute("SET LOCAL work_mem = '1GB'")
        assert await db.query("SELECT current_setting('work_mem')") != [("1GB",)]

    run(dsn, body)


@pytest.mark.pg_stat_statements
@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_hundred_concurrent_identical_misses_run_once(
    dsn: str, conn: psycopg.Connection[Any], backend: str, request: pytest.FixtureRequest
) -> None:
    conn.execute("CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 300000) g")
    conn.execute("SELECT pg_stat_statements_reset()")
    query = "SELECT count(*) AS async_single_flight_probe FROM big WHERE id %% 7 = %s"
    cache = None
    if backend == "redis":
        server: EmbeddedRedis = request.getfixturevalue("redis_server")
        cache = ResultCache(backend=RedisBackend(server.url, namespace=f"async-{uuid.uuid4().hex[:8]}"))

    async def body(db: AsyncOptimizer) -> list[Any]:
        await db.prepare(query)
        return await asyncio.gather(*(db.query(query, [3], use_cache=True) for _ in range(100)))

    results = run(dsn, body, cache=cache)
    if cache is not None:
        cache.close()
    assert results == [[(42857,)]] * 100
    calls = conn.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%async_single_flight_probe%'"
    ).fetchone()
    assert calls == (1,)  # counted by the server


def test_a_timeout_cancels_on_the_server_and_the_pool_stays_usable(dsn: str, conn: psycopg.Connection[Any]) -> None:
    async def body(db: AsyncOptimizer) -> None:
        started = time.monotonic()
        with pytest.raises(QueryTimeout) as info:
            await db.execute("SELECT pg_sleep(10), 'async-runaway'", timeout=0.2)
        assert time.monotonic() - started < 2.0
        assert info.value.limit == pytest.approx(0.2)
        assert "statement_timeout" in str(info.value)
        assert active_queries(conn, "async-runaway") == 0
        assert await db.query("SELECT 1") == [(1,)]
        assert db.stats()["timeout_changes"] >= 1

    run(dsn, body, max_size=1)


def test_cancelling_the_caller_cancels_the_statement_on_the_server(dsn: str, conn: psycopg.Connection[Any]) -> None:
    async def body(db: AsyncOptimizer) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(db.execute("SELECT pg_sleep(10), 'async-abandoned'"), 0.3)
        assert active_queries(conn, "async-abandoned") == 0
        assert await db.query("SELECT 2") == [(2,)]

    run(dsn, body, max_size=1)


def test_the_client_deadline_cancels_a_server_that_stopped_answering(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """The server process is frozen (SIGSTOP): its own statement_timeout cannot fire; the client's deadline does."""
    timeouts = TimeoutPolicy(statement=0.2, network_grace=0.3)

    async def body(db: AsyncOptimizer) -> None:
        pid = (await db.query("SELECT pg_backend_pid()"))[0][0]
        loop = asyncio.get_running_loop()
        os.kill(pid, signal.SIGSTOP)
        thaw = loop.call_later(1.0, os.kill, pid, signal.SIGCONT)
        try:
            started = time.monotonic()
            with pytest.raises(QueryTimeout, match="stopped answering"):
                await db.execute("SELECT 'frozen-server'")
            assert time.monotonic() - started < 5.0
        finally:
            thaw.cancel()
            os.kill(pid, signal.SIGCONT)
        assert db.stats()["stalls"] == 1
        assert await db.query("SELECT 3") == [(3,)]

    run(dsn, body, max_size=1, timeout=timeouts)


def test_serialization_failures_are_retried(dsn: str, shop: psycopg.Connection[Any]) -> None:
    retry = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.01)
    update = "UPDATE customers SET name = name || ' (retried)' WHERE id = 1"
    blocker = psycopg.connect(dsn)
    committer = threading.Timer(0.3, blocker.commit)

    async def body(db: AsyncOptimizer) -> None:
        await db.prepare(update, has_params=False)  # analysed before the race starts
        blocker.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        blocker.execute("UPDATE customers SET name = 'blocker' WHERE id = 1")
        committer.start()
        await db.execute(update)
        assert db.stats()["retries"] >= 1

    try:
        run(dsn + " options='-c default_transaction_isolation=serializable'", body, retry=retry)
    finally:
        committer.join(5)
        blocker.close()
    assert shop.execute("SELECT name FROM customers WHERE id = 1").fetchone() == ("blocker (retried)",)


def test_slow_calls_are_recorded(dsn: str, shop: psycopg.Connection[Any]) -> None:
    migrate(dsn)
    recorder = RecorderPolicy(threshold=0.2, flush_interval=0.05)

    async def body(db: AsyncOptimizer) -> None:
        await db.query("SELECT name FROM customers WHERE id = %s", [1])
        await db.query("SELECT pg_sleep(0.3), %s::int AS async_marker", [7])
        assert db.recorder is not None
        assert await asyncio.to_thread(db.recorder.flush, 10)

    run(dsn, body, recorder=recorder)
    rows = shop.execute("SELECT sql_text, source, cache_outcome FROM queryopt.slow_queries").fetchall()
    assert rows == [("SELECT pg_sleep(0.3), %s::int AS async_marker", "optimize_query_async", "off")]


def test_optimize_query_async_uses_a_default_per_event_loop(
    dsn: str, shop: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUERYOPT_DSN", dsn)
    monkeypatch.setenv("QUERYOPT_RECORD_SLOW", "off")

    async def main() -> list[Any]:
        first = await queryopt.optimize_query_async("SELECT name FROM customers WHERE id = %s", [2], use_cache=True)
        second = await queryopt.optimize_query_async("SELECT name FROM customers WHERE id = %s", [2], use_cache=True)
        optimizer = await queryopt.configure_async(settings=Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False)))
        third = await queryopt.optimize_query_async("SELECT %s::int", [5], rows="dict")
        await optimizer.close()
        return [first, second, third]

    assert asyncio.run(main()) == [[("customer 2",)], [("customer 2",)], [{"int4": 5}]]


def test_analysis_and_catalog_look_ups_run_off_the_event_loop(dsn: str, shop: psycopg.Connection[Any]) -> None:
    threads: list[str] = []
    text = f"SELECT id FROM customers c WHERE c.id = %s AND {uuid.uuid4().int % 10**9} > 0"  # never analysed yet

    async def body(db: AsyncOptimizer) -> None:
        original = db.preparer.prepare

        def spy(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return original(*args, **kwargs)

        db.preparer.prepare = spy  # type: ignore[method-assign]
        misses = queryopt.analysis_cache_info()["misses"]
        assert await db.query(text, [1]) == [(1,)]
        assert queryopt.analysis_cache_info()["misses"] == misses  # analysed in the worker process, not here
        assert await db.query(text, [1], index_hints=["customers_pkey"]) == [(1,)]  # catalog: in a thread
        assert await db.query(text, [2]) == [(2,)]  # prepared already: straight from the dictionary

    run(dsn, body, cache=ResultCache(CachePolicy()))
    assert len(threads) == 2
    assert threads[0] == threading.main_thread().name  # given the analysis, preparing costs microseconds
    assert threads[1] != threading.main_thread().name
