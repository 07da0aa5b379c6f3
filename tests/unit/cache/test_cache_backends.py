"""One suite, every cache backend: the in-memory store and Redis must keep the same promises.

Like dogpile.cache's generic backend tests, each test runs once per backend
through the ``make_cache`` fixture (the policy object, :class:`ResultCache`,
over that backend, on the real clock), and once per backend for the dumb-store
surface (get/set/delete/clear/len).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from queryopt.cache import CacheBackend, CacheEntry, MemoryBackend, ResultCache
from queryopt.cache.backends.redis import RedisBackend
from queryopt.config import CachePolicy
from queryopt.embedded.redis import EmbeddedRedis
from queryopt.errors import CacheError
from queryopt.result import QueryResult

SCOPE = ("server", "started", "db")
OTHER_SCOPE = ("server", "started", "other-db")
ORDERS = ResultCache.version_keys(SCOPE, ["orders"])
CUSTOMERS = ResultCache.version_keys(SCOPE, ["customers"])
BOTH = ResultCache.version_keys(SCOPE, ["orders", "customers"])

MakeCache = Callable[..., ResultCache]


def result(*rows: tuple[Any, ...]) -> QueryResult:
    return QueryResult(tuple(f"c{i}" for i in range(len(rows[0]) if rows else 0)), rows, len(rows))


def key(text: str, *params: Any) -> tuple[Any, Any]:
    return ((SCOPE, text), tuple((type(p), p) for p in params))


class Counting:
    """A query stand-in that counts its runs."""

    def __init__(self, *rows: tuple[Any, ...], delay: float = 0.0) -> None:
        self.rows = rows
        self.delay = delay
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> QueryResult:
        with self.lock:
            self.calls += 1
        time.sleep(self.delay)
        return result(*self.rows)

    async def run_async(self) -> QueryResult:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return result(*self.rows)


@pytest.fixture(params=["memory", "redis"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_cache(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[MakeCache]:
    made: list[ResultCache] = []

    def make(**policy: Any) -> ResultCache:
        settings = CachePolicy(**policy)
        if backend_kind == "memory":
            cache = ResultCache(settings)
        else:
            server: EmbeddedRedis = request.getfixturevalue("redis_server")
            backend = RedisBackend(server.url, namespace=f"suite-{uuid.uuid4().hex[:10]}", lock_wait=2.0)
            cache = ResultCache(settings, backend=backend)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


@pytest.fixture
def store(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[CacheBackend]:
    if backend_kind == "memory":
        yield MemoryBackend(max_entries=100, max_bytes=1 << 20)
        return
    server: EmbeddedRedis = request.getfixturevalue("redis_server")
    backend = RedisBackend(server.url, namespace=f"store-{uuid.uuid4().hex[:10]}")
    yield backend
    backend.close()


# -- the policy over each backend ------------------------------------------------------------------------


def test_a_miss_runs_the_query_once_then_hits(make_cache: MakeCache) -> None:
    cache = make_cache()
    query = Counting((1, "a"))
    assert cache.get_or_execute(key("q"), ORDERS, query).rows == ((1, "a"),)
    assert cache.get_or_execute(key("q"), ORDERS, query).rows == ((1, "a"),)
    assert query.calls == 1
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["stores"]) == (1, 1, 1)


def test_values_psycopg_returns_come_back_equal_and_of_the_same_type(make_cache: MakeCache) -> None:
    cache = make_cache()
    row = (
        42,
        2**70,
        -0.5,
        "naïve ☃",
        None,
        True,
        decimal.Decimal("12.3400"),
        b"\x00\xffbytes",
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 3, 31, 2, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        datetime.datetime(2024, 1, 1, 12, 0, 0, 123456),
        datetime.time(23, 59, 59, 999999),
        datetime.timedelta(days=3, seconds=7, microseconds=1),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        [1, 2, None],
        {"a": [1, {"b": None}], "n": 1.5},
    )
    cache.get_or_execute(key("types"), ORDERS, lambda: result(row))
    found = cache.get(key("types"), ORDERS)
    assert found is not None
    assert found.rows == (row,)
    assert [type(value) for value in found.rows[0]] == [type(value) for value in row]
    assert found.columns == tuple(f"c{i}" for i in range(len(row)))


def test_entries_expire_after_their_ttl(make_cache: MakeCache) -> None:
    cache = make_cache(ttl=0.25)
    cache.get_or_execute(key("q"), ORDERS, Counting((1,)))
    assert cache.get(key("q"), ORDERS) is not None
    time.sleep(0.4)
    assert cache.get(key("q"), ORDERS) is None


def test_a_per_call_ttl_overrides_the_policy(make_cache: MakeCache) -> None:
    cache = make_cache(ttl=60.0)
    cache.get_or_execute(key("q"), ORDERS, Counting((1,)), ttl=0.2)
    time.sleep(0.35)
    assert cache.get(key("q"), ORDERS) is None


def test_a_bad_ttl_is_a_cache_error(make_cache: MakeCache) -> None:
    cache = make_cache()
    with pytest.raises(CacheError, match="TTL"):
        cache.get_or_execute(key("q"), ORDERS, Counting((1,)), ttl=0)


def test_a_write_invalidates_the_results_that_read_its_table_only(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_execute(key("orders"), ORDERS, Counting((1,)))
    cache.get_or_execute(key("customers"), CUSTOMERS, Counting((2,)))
    cache.get_or_execute(key("join"), BOTH, Counting((3,)))
    cache.bump(SCOPE, ["orders"])
    assert cache.get(key("orders"), ORDERS) is None
    assert cache.get(key("join"), BOTH) is None
    found = cache.get(key("customers"), CUSTOMERS)
    assert found is not None
    assert found.rows == ((2,),)


def test_a_write_in_another_scope_does_not_invalidate(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_execute(key("orders"), ORDERS, Counting((1,)))
    cache.bump(OTHER_SCOPE, ["orders"])
    assert cache.get(key("orders"), ORDERS) is not None


def test_whole_scope_and_every_scope_invalidation(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_execute(key("orders"), ORDERS, Counting((1,)))
    cache.bump(SCOPE, None)
    assert cache.get(key("orders"), ORDERS) is None
    cache.get_or_execute(key("orders"), ORDERS, Counting((1,)))
    cache.invalidate("orders")  # every scope
    assert cache.get(key("orders"), ORDERS) is None


def test_clear_forgets_everything(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_execute(key("orders"), ORDERS, Counting((1,)))
    cache.get_or_execute(key("customers"), CUSTOMERS, Counting((2,)))
    cache.clear()
    assert cache.get(key("orders"), ORDERS) is None
    assert cache.get(key("customers"), CUSTOMERS) is None
    assert cache.stats()["entries"] == 0


def test_a_result_read_before_a_write_is_never_served_after_it(make_cache: MakeCache) -> None:
    """The query starts, a write commits and bumps, then the query stores: it must not be served."""
    cache = make_cache()

    def slow_read() -> QueryResult:
        cache.bump(SCOPE, ["orders"])  # the concurrent write commits while the read runs
        return result(("old",))

    assert cache.get_or_execute(key("q"), ORDERS, slow_read).rows == (("old",),)
    assert cache.get(key("q"), ORDERS) is None


def test_parameters_of_different_types_are_different_entries(make_cache: MakeCache) -> None:
    cache = make_cache()
    cache.get_or_execute(key("q", 1), ORDERS, Counting(("int",)))
    cache.get_or_execute(key("q", "1"), ORDERS, Counting(("str",)))
    one, text = cache.get(key("q", 1), ORDERS), cache.get(key("q", "1"), ORDERS)
    assert one is not None
    assert text is not None
    assert (one.rows, text.rows) == ((("int",),), (("str",),))


def test_mutating_a_served_result_does_not_change_the_cache(make_cache: MakeCache) -> None:
    cache = make_cache()
    served = cache.get_or_execute(key("q"), ORDERS, lambda: result(([1, 2], {"a": 1})))
    served.rows[0][0].append(3)
    served.rows[0][1]["b"] = 2
    again = cache.get(key("q"), ORDERS)
    assert again is not None
    assert again.rows == (([1, 2], {"a": 1}),)


def test_results_over_the_row_bound_are_not_stored(make_cache: MakeCache) -> None:
    cache = make_cache(max_result_rows=3)
    rows = tuple((i,) for i in range(4))
    assert cache.get_or_execute(key("big"), ORDERS, lambda: result(*rows)).rows == rows
    assert cache.get(key("big"), ORDERS) is None
    assert cache.stats()["too_large"] == 1


def test_twenty_threads_missing_together_run_the_query_once(make_cache: MakeCache) -> None:
    cache = make_cache()
    query = Counting((7,), delay=0.2)
    barrier = threading.Barrier(20)
    found: list[QueryResult] = []

    def ask() -> None:
        barrier.wait()
        found.append(cache.get_or_execute(key("q"), ORDERS, query))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert query.calls == 1
    assert [r.rows for r in found] == [((7,),)] * 20


def test_an_error_reaches_every_waiter_and_is_not_cached(make_cache: MakeCache) -> None:
    cache = make_cache()
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def failing() -> QueryResult:
        time.sleep(0.2)
        raise RuntimeError("boom")

    def ask() -> None:
        barrier.wait()
        try:
            cache.get_or_execute(key("q"), ORDERS, failing)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 5
    query = Counting((1,))
    cache.get_or_execute(key("q"), ORDERS, query)
    assert query.calls == 1  # the error was not cached (and no lock was left behind)


def test_a_hundred_coroutines_missing_together_run_the_query_once(make_cache: MakeCache) -> None:
    cache = make_cache()
    query = Counting((9,), delay=0.1)

    async def main() -> list[QueryResult]:
        found = await asyncio.gather(*(cache.aget_or_execute(key("q"), ORDERS, query.run_async) for _ in range(100)))
        again = await cache.aget(key("q"), ORDERS)
        assert again is not None
        await cache.aclose()
        return found

    found = asyncio.run(main())
    assert query.calls == 1
    assert {r.rows for r in found} == {((9,),)}


def test_a_cancelled_leader_hands_the_run_to_a_waiter(make_cache: MakeCache) -> None:
    cache = make_cache()
    query = Counting((5,), delay=0.2)

    async def main() -> QueryResult:
        leader = asyncio.create_task(cache.aget_or_execute(key("q"), ORDERS, query.run_async))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(cache.aget_or_execute(key("q"), ORDERS, query.run_async))
        await asyncio.sleep(0.05)
        leader.cancel()
        found = await waiter
        with pytest.raises(asyncio.CancelledError):
            await leader
        await cache.aclose()
        return found

    assert asyncio.run(main()).rows == ((5,),)
    assert query.calls == 2


def test_async_invalidation(make_cache: MakeCache) -> None:
    cache = make_cache()

    async def main() -> QueryResult | None:
        await cache.aget_or_execute(key("q"), ORDERS, Counting((1,)).run_async)
        await cache.abump(SCOPE, ["orders"])
        found = await cache.aget(key("q"), ORDERS)
        await cache.aclose()
        return found

    assert asyncio.run(main()) is None


# -- the dumb store surface of each backend ---------------------------------------------------------------


def entry(value: Any, versions: tuple[object, ...] = (1, 2)) -> CacheEntry:
    found = result((value,))
    return CacheEntry(found, time.monotonic() + 60, versions, 0, 100, False)


def test_store_set_get_delete(store: CacheBackend) -> None:
    assert store.get("k") is None
    store.set("k", entry("v"), 60)
    found = store.get("k")
    assert found is not None
    assert found.result.rows == (("v",),)
    assert len(store) == 1
    store.delete("k")
    assert store.get("k") is None
    assert len(store) == 0


def test_store_set_replaces_and_clear_empties(store: CacheBackend) -> None:
    store.set("k", entry("old"), 60)
    store.set("k", entry("new"), 60)
    store.set("other", entry("x"), 60)
    found = store.get("k")
    assert found is not None
    assert found.result.rows == (("new",),)
    assert len(store) == 2
    store.clear()
    assert len(store) == 0
    assert store.get("other") is None
