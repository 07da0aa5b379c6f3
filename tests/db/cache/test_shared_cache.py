"""Several processes, one Redis cache, one PostgreSQL: shared entries, global invalidation, a stampede,
and a Redis that stops and comes back in the middle of a run.

Worker processes are started with ``spawn`` (a fresh interpreter, as another
application server would be) and talk to the test through a queue.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from queryopt import Optimizer, RecorderPolicy, Settings
from queryopt.cache import ResultCache
from queryopt.cache.backends.redis import RedisBackend
from queryopt.config import CachePolicy
from queryopt.embedded.redis import EmbeddedRedis

PRICE = "SELECT price FROM prices WHERE id = %s"
spawn = multiprocessing.get_context("spawn")


def make_optimizer(dsn: str, redis_url: str, namespace: str, **backend: Any) -> Optimizer:
    settings = Settings(dsn=dsn, cache=CachePolicy(ttl=60.0), recorder=RecorderPolicy(enabled=False))
    cache = ResultCache(settings.cache, backend=RedisBackend(redis_url, namespace=namespace, **backend))
    return Optimizer(settings=settings, cache=cache, max_size=2)


def read_price(dsn: str, redis_url: str, namespace: str, results: Any) -> None:
    """Worker: one cached read of the price, reporting the value and whether it was a hit."""
    with make_optimizer(dsn, redis_url, namespace) as optimizer:
        rows = optimizer.query(PRICE, [1], use_cache=True)
        results.put((rows[0][0], optimizer.stats()["hits"]))
        optimizer.cache.close()


def write_counter(dsn: str, redis_url: str, namespace: str, count: int, acknowledged: Any) -> None:
    """Worker: ``count`` writes through queryopt, each acknowledged only after execute() returned."""
    with make_optimizer(dsn, redis_url, namespace) as optimizer:
        for value in range(1, count + 1):
            optimizer.execute("UPDATE counter SET v = %s WHERE id = 1", [value])
            acknowledged.put(value)
        optimizer.cache.close()


def stampede(dsn: str, redis_url: str, namespace: str, query: str, barrier: Any, results: Any) -> None:
    """Worker: wait for the others, then ask the same slow query."""
    with make_optimizer(dsn, redis_url, namespace) as optimizer:
        optimizer.prepare(query, has_params=False)
        barrier.wait(30)
        results.put(optimizer.query(query, use_cache=True)[0][0])
        optimizer.cache.close()


def run_worker(target: Any, *args: Any) -> Any:
    process = spawn.Process(target=target, args=args)
    process.start()
    return process


@pytest.fixture
def prices(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("CREATE TABLE prices (id int PRIMARY KEY, price int NOT NULL)")
    conn.execute("INSERT INTO prices VALUES (1, 100)")
    return conn


@pytest.fixture
def local(dsn: str, redis_server: EmbeddedRedis, namespace: str) -> Iterator[Optimizer]:
    """This process's optimizer on the shared cache."""
    optimizer = make_optimizer(dsn, redis_server.url, namespace)
    yield optimizer
    optimizer.close()
    optimizer.cache.close()


def test_two_processes_share_entries_and_invalidations(
    dsn: str, redis_server: EmbeddedRedis, namespace: str, prices: psycopg.Connection[Any], local: Optimizer
) -> None:
    results = spawn.Queue()
    worker = run_worker(read_price, dsn, redis_server.url, namespace, results)
    assert results.get(timeout=60) == (100, 0)  # the other process read it from the database and cached it
    worker.join(30)
    prices.execute("UPDATE prices SET price = 200 WHERE id = 1")  # behind queryopt's back: nothing invalidated
    assert local.query(PRICE, [1], use_cache=True) == [(100,)]  # so this is the other process's entry
    assert local.stats()["hits"] == 1

    local.execute("UPDATE prices SET price = 300 WHERE id = 1")  # through queryopt: every process must see it
    worker = run_worker(read_price, dsn, redis_server.url, namespace, results)
    assert results.get(timeout=60) == (300, 0)
    worker.join(30)


def test_a_write_committed_in_one_process_is_never_followed_by_a_stale_read_in_another(
    dsn: str, redis_server: EmbeddedRedis, namespace: str, conn: psycopg.Connection[Any], local: Optimizer
) -> None:
    conn.execute("CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL)")
    conn.execute("INSERT INTO counter VALUES (1, 0)")
    writes = 150
    acknowledged = spawn.Queue()
    writer = run_worker(write_counter, dsn, redis_server.url, namespace, writes, acknowledged)
    seen = 0
    reads = 0
    deadline = time.monotonic() + 120
    while seen < writes and time.monotonic() < deadline:
        try:
            while True:  # every write acknowledged so far has committed and bumped its table's version
                seen = max(seen, acknowledged.get(timeout=0.001))
        except queue.Empty:
            pass
        value = local.query("SELECT v FROM counter WHERE id = %s", [1], use_cache=True)[0][0]
        reads += 1
        assert value >= seen, f"read {value} after write {seen} was acknowledged"
    writer.join(30)
    assert seen == writes
    stats = local.stats()
    assert stats["hits"] > 0  # the reads were served from the cache, not only from the database
    assert stats["stale"] > 0  # and the writer's bumps did invalidate entries this process had cached


@pytest.mark.pg_stat_statements
def test_a_stampede_of_processes_runs_the_query_once(
    dsn: str, redis_server: EmbeddedRedis, namespace: str, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 1500000) g")
    conn.execute("SELECT pg_stat_statements_reset()")
    query = "SELECT count(*) AS cross_process_probe FROM big WHERE id % 7 = 3"
    processes = 4
    barrier = spawn.Barrier(processes)
    results = spawn.Queue()
    workers = [
        run_worker(stampede, dsn, redis_server.url, namespace, query, barrier, results) for _ in range(processes)
    ]
    counts = [results.get(timeout=120) for _ in range(processes)]
    for worker in workers:
        worker.join(30)
    assert counts == [214286] * processes
    calls = conn.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%cross_process_probe%'"
    ).fetchone()
    assert calls == (1,)  # counted by the server


def test_redis_stopping_mid_run_never_fails_a_query_and_caching_resumes(
    dsn: str, own_redis: EmbeddedRedis, namespace: str, prices: psycopg.Connection[Any]
) -> None:
    with make_optimizer(dsn, own_redis.url, namespace, retry_interval=0.2) as optimizer:
        assert optimizer.query(PRICE, [1], use_cache=True) == [(100,)]
        assert optimizer.query(PRICE, [1], use_cache=True) == [(100,)]
        assert optimizer.stats()["hits"] == 1
        own_redis.stop(keep_directory=True)
        for price in (110, 120, 130):
            optimizer.execute("UPDATE prices SET price = %s WHERE id = 1", [price])
            assert optimizer.query(PRICE, [1], use_cache=True) == [(price,)]
        assert optimizer.stats()["redis_errors"] >= 1
        own_redis.start()
        time.sleep(0.3)
        assert optimizer.query(PRICE, [1], use_cache=True) == [(130,)]
        hits = optimizer.stats()["hits"]
        assert optimizer.query(PRICE, [1], use_cache=True) == [(130,)]
        assert optimizer.stats()["hits"] == hits + 1  # caching resumed
        optimizer.cache.close()
