"""What only the Redis backend promises: key layout, compression, TTL in Redis, locks across
processes' clients, an unreachable or restarted Redis, lost data, a missing package."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from queryopt.cache import ResultCache
from queryopt.cache.backends.redis import RedisBackend
from queryopt.cache.shared import SharedStore
from queryopt.config import CachePolicy
from queryopt.embedded.redis import EmbeddedRedis
from queryopt.errors import CacheError, ConfigurationError
from queryopt.result import QueryResult

SCOPE = ("server", "started", "db")
ORDERS = ResultCache.version_keys(SCOPE, ["orders"])
KEY = ((SCOPE, "SELECT * FROM orders WHERE id = %s"), ((int, 1),))


def one(value: Any) -> QueryResult:
    return QueryResult(("v",), ((value,),), 1)


@pytest.fixture
def client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.close()


@pytest.fixture
def caches(redis_server: EmbeddedRedis, namespace: str) -> Iterator[list[ResultCache]]:
    """Caches on separate clients (as separate processes would have), closed after the test."""
    made: list[ResultCache] = []
    yield made
    for cache in made:
        cache.close()


def shared(url: str, namespace: str, made: list[ResultCache], **options: Any) -> ResultCache:
    cache = ResultCache(CachePolicy(ttl=30.0), backend=RedisBackend(url, namespace=namespace, **options))
    made.append(cache)
    return cache


def test_a_redis_backend_makes_a_shared_result_cache(redis_server: EmbeddedRedis, caches: list[ResultCache]) -> None:
    cache = shared(redis_server.url, "app", caches)
    assert isinstance(cache._store, SharedStore)
    assert cache.shared


def test_keys_are_namespaced_and_versioned(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache], client: redis.Redis
) -> None:
    first = shared(redis_server.url, namespace, caches)
    second = shared(redis_server.url, namespace + "-v2", caches)
    first.get_or_execute(KEY, ORDERS, lambda: one("first"))
    assert second.get(KEY, ORDERS) is None  # another application or schema version never reads it
    names = {name.decode() for name in client.scan_iter(match=f"queryopt:v1:{{{namespace}}}:*")}
    kinds = sorted({name.split(":")[3] for name in names})
    assert kinds == ["e", "epoch"]  # one entry and the epoch; no version bumped yet, no lock left


def test_ttl_is_enforced_by_redis(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache], client: redis.Redis
) -> None:
    cache = shared(redis_server.url, namespace, caches)
    cache.get_or_execute(KEY, ORDERS, lambda: one(1), ttl=12.5)
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    remaining = client.pttl(backend.entry_name(KEY))
    assert 12_000 < remaining <= 12_500


def test_large_results_are_compressed(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache], client: redis.Redis
) -> None:
    cache = shared(redis_server.url, namespace, caches, compress_above=256)
    rows = tuple((i, "the same text again and again") for i in range(500))
    cache.get_or_execute(KEY, ORDERS, lambda: QueryResult(("id", "text"), rows, 500))
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    payload = client.get(backend.entry_name(KEY))
    assert payload is not None
    _, _, body = payload.partition(b"\n")
    assert body[:1] == b"z"
    assert len(payload) < len(repr(rows)) / 5
    found = cache.get(KEY, ORDERS)
    assert found is not None
    assert found.rows == rows


def test_a_value_the_format_cannot_carry_is_served_but_not_stored(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache]
) -> None:
    cache = shared(redis_server.url, namespace, caches)

    class Money(str):
        pass

    assert cache.get_or_execute(KEY, ORDERS, lambda: one(Money("1.00"))).rows == (("1.00",),)
    assert cache.get(KEY, ORDERS) is None
    assert cache.stats()["unencodable"] == 1


def test_a_lock_held_by_another_process_makes_this_one_wait_for_its_result(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache]
) -> None:
    first = shared(redis_server.url, namespace, caches)
    second = shared(redis_server.url, namespace, caches)
    runs: list[str] = []

    def slow(name: str) -> QueryResult:
        runs.append(name)
        time.sleep(0.3)
        return one(name)

    leader = threading.Thread(target=lambda: first.get_or_execute(KEY, ORDERS, lambda: slow("first")))
    leader.start()
    time.sleep(0.1)
    found = second.get_or_execute(KEY, ORDERS, lambda: slow("second"))
    leader.join(5)
    assert runs == ["first"]
    assert found.rows == (("first",),)
    assert second.stats()["remote_hits"] == 1


def test_when_the_lock_owner_fails_a_waiter_runs_the_query_itself(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache]
) -> None:
    first = shared(redis_server.url, namespace, caches)
    second = shared(redis_server.url, namespace, caches, lock_wait=5.0)

    def failing() -> QueryResult:
        time.sleep(0.2)
        raise RuntimeError("the owner's query failed")

    def lead() -> None:
        with pytest.raises(RuntimeError):
            first.get_or_execute(KEY, ORDERS, failing)

    leader = threading.Thread(target=lead)
    leader.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert second.get_or_execute(KEY, ORDERS, lambda: one("second")).rows == (("second",),)
    assert time.monotonic() - started < 2.0  # not the whole lock_wait
    leader.join(5)


def test_a_waiter_gives_up_on_a_slow_lock_owner_after_lock_wait(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache]
) -> None:
    first = shared(redis_server.url, namespace, caches)
    second = shared(redis_server.url, namespace, caches, lock_wait=0.2)
    leader = threading.Thread(target=lambda: first.get_or_execute(KEY, ORDERS, lambda: (time.sleep(1.0), one(1))[1]))
    leader.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert second.get_or_execute(KEY, ORDERS, lambda: one(2)).rows == ((2,),)
    assert 0.15 < time.monotonic() - started < 0.9
    assert second.stats()["lock_timeouts"] == 1
    leader.join(5)


def test_a_store_under_versions_redis_no_longer_has_is_refused(
    redis_server: EmbeddedRedis, namespace: str, caches: list[ResultCache], client: redis.Redis
) -> None:
    """Redis lost its data while the query ran (restart, flush): versions restart at 0, the epoch changes."""
    cache = shared(redis_server.url, namespace, caches)

    def read_while_redis_forgets() -> QueryResult:
        for name in client.scan_iter(match=f"queryopt:v1:{{{namespace}}}:*"):
            client.delete(name)
        return one("read before the loss")

    cache.get_or_execute(KEY, ORDERS, read_while_redis_forgets)
    assert cache.get(KEY, ORDERS) is None


def test_redis_stopped_queries_run_without_it_and_caching_resumes_after_a_restart(
    own_redis: EmbeddedRedis, namespace: str, caches: list[ResultCache], caplog: pytest.LogCaptureFixture
) -> None:
    cache = shared(own_redis.url, namespace, caches, retry_interval=0.2, log_interval=60.0)
    cache.get_or_execute(KEY, ORDERS, lambda: one("cached"))
    own_redis.stop(keep_directory=True)
    caplog.set_level(logging.WARNING, logger="queryopt")
    runs = 0

    def query() -> QueryResult:
        nonlocal runs
        runs += 1
        return one("fresh")

    started = time.monotonic()
    for _ in range(20):
        assert cache.get_or_execute(KEY, ORDERS, query).rows == (("fresh",),)
    cache.bump(SCOPE, ["orders"])  # kept for replay
    assert time.monotonic() - started < 1.0  # an unreachable Redis costs no timeouts
    assert runs == 20
    stats = cache.stats()
    assert stats["redis_errors"] == 1  # then left alone for retry_interval
    assert stats["redis_skipped"] > 0
    assert stats["redis_pending"] == 1
    assert len([r for r in caplog.records if "Redis cache" in r.getMessage()]) == 1  # logged once

    own_redis.start()
    time.sleep(0.25)
    cache.get_or_execute(KEY, ORDERS, query)
    assert cache.get(KEY, ORDERS) is not None  # caching resumed
    assert cache.stats()["redis_pending"] == 0  # the bump was replayed first
    check = redis.Redis.from_url(own_redis.url)
    try:
        backend = cache.backend
        assert isinstance(backend, RedisBackend)
        assert check.get(backend._version_name((SCOPE, "orders"))) == b"1"
    finally:
        check.close()


def test_bad_settings_are_refused(redis_server: EmbeddedRedis) -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        RedisBackend(redis_server.url, namespace="a{b}")
    with pytest.raises(ConfigurationError, match="lock_wait"):
        RedisBackend(redis_server.url, namespace="a", lock_wait=-1)
    with pytest.raises(ConfigurationError, match="url"):
        RedisBackend("http://example.invalid", namespace="a")


def test_without_the_redis_package_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(CacheError, match=r"pip install 'queryopt\[redis\]'"):
        RedisBackend(namespace="app")
