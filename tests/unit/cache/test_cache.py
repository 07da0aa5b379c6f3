"""The cache's policy, with an injected clock (no database needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from queryopt.cache import MemoryBackend, ResultCache, UnkeyableParams, canonical_params
from queryopt.config import CachePolicy
from queryopt.errors import CacheError
from queryopt.result import QueryResult


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(*rows: tuple[object, ...]) -> QueryResult:
    return QueryResult(tuple(f"c{i}" for i in range(len(rows[0]) if rows else 0)), rows, len(rows))


def returns(*rows: tuple[object, ...]) -> Callable[[], QueryResult]:
    return lambda: result(*rows)


SCOPE = ("db", "role")
ORDERS = ResultCache.version_keys(SCOPE, ["orders"])
CUSTOMERS = ResultCache.version_keys(SCOPE, ["customers"])


def make_cache(**policy: object) -> tuple[ResultCache, FakeClock]:
    clock = FakeClock()
    return ResultCache(CachePolicy(**policy), clock=clock), clock  # type: ignore[arg-type]


def rows_of(found: QueryResult | None) -> object:
    return None if found is None else found.rows


def test_miss_then_hit() -> None:
    cache, _ = make_cache()
    calls: list[int] = []

    def execute() -> QueryResult:
        calls.append(1)
        return result((1, "a"))

    assert cache.get_or_execute("k", ORDERS, execute).rows == ((1, "a"),)
    assert cache.get_or_execute("k", ORDERS, execute).rows == ((1, "a"),)
    assert len(calls) == 1
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["stores"]) == (1, 1, 1)


def test_entries_expire_after_their_ttl() -> None:
    cache, clock = make_cache(ttl=10.0)
    cache.get_or_execute("k", ORDERS, returns((1,)))
    clock.now += 9.9
    assert rows_of(cache.get("k", ORDERS)) == ((1,),)
    clock.now += 0.2
    assert cache.get("k", ORDERS) is None
    assert cache.stats()["expirations"] == 1


def test_per_call_ttl_overrides_the_policy() -> None:
    cache, clock = make_cache(ttl=10.0)
    cache.get_or_execute("k", ORDERS, returns((1,)), ttl=1.0)
    clock.now += 1.5
    assert cache.get("k", ORDERS) is None


def test_bad_ttl_is_a_cache_error() -> None:
    cache, _ = make_cache()
    with pytest.raises(CacheError, match="TTL"):
        cache.get_or_execute("k", ORDERS, returns((1,)), ttl=0)


def test_a_write_invalidates_results_that_read_its_table_only() -> None:
    cache, _ = make_cache()
    cache.get_or_execute("orders", ORDERS, returns((1,)))
    cache.get_or_execute("customers", CUSTOMERS, returns((2,)))
    cache.bump(SCOPE, ["orders"])
    assert cache.get("orders", ORDERS) is None
    assert rows_of(cache.get("customers", CUSTOMERS)) == ((2,),)


def test_a_write_in_another_scope_does_not_invalidate() -> None:
    cache, _ = make_cache()
    cache.get_or_execute("orders", ORDERS, returns((1,)))
    cache.bump(("other-db", "role"), ["orders"])
    assert rows_of(cache.get("orders", ORDERS)) == ((1,),)


def test_catch_all_bump_invalidates_the_whole_scope() -> None:
    cache, _ = make_cache()
    cache.get_or_execute("orders", ORDERS, returns((1,)))
    cache.bump(SCOPE, None)
    assert cache.get("orders", ORDERS) is None


def test_a_result_read_before_a_write_is_not_served_after_it() -> None:
    """The query starts, a write commits and bumps, then the query's result is stored: it must not be served."""
    cache, _ = make_cache()

    def slow_read() -> QueryResult:
        cache.bump(SCOPE, ["orders"])  # the concurrent write commits while the read runs
        return result(("old",))

    assert cache.get_or_execute("k", ORDERS, slow_read).rows == (("old",),)
    assert cache.get("k", ORDERS) is None


def test_explicit_invalidate_by_table_and_clear() -> None:
    cache, _ = make_cache()
    cache.get_or_execute("orders", ORDERS, returns((1,)))
    cache.get_or_execute("customers", CUSTOMERS, returns((2,)))
    cache.invalidate(table="orders")
    assert cache.get("orders", ORDERS) is None
    assert rows_of(cache.get("customers", CUSTOMERS)) == ((2,),)
    cache.clear()
    assert cache.get("customers", CUSTOMERS) is None


def test_eviction_by_entry_count_is_least_recently_used() -> None:
    cache, _ = make_cache(max_entries=2)
    cache.get_or_execute("a", ORDERS, returns((1,)))
    cache.get_or_execute("b", ORDERS, returns((2,)))
    assert cache.get("a", ORDERS) is not None  # a is now more recent than b
    cache.get_or_execute("c", ORDERS, returns((3,)))
    assert cache.get("b", ORDERS) is None
    assert cache.get("a", ORDERS) is not None
    assert cache.stats()["evictions"] == 1


def test_eviction_by_bytes_keeps_memory_bounded() -> None:
    cache, _ = make_cache(max_bytes=64 * 1024)
    payload = "x" * 4096
    for i in range(100):
        cache.get_or_execute(i, ORDERS, returns((payload,)))
    backend = cache.backend
    assert isinstance(backend, MemoryBackend)
    assert backend.bytes <= 64 * 1024
    assert 0 < len(backend) < 100
    assert cache.stats()["evictions"] == 100 - len(backend)


def test_results_over_the_row_limit_are_not_stored() -> None:
    cache, _ = make_cache(max_result_rows=10)
    many = tuple((i,) for i in range(11))
    assert cache.get_or_execute("k", ORDERS, returns(*many)).rows == many
    assert cache.get("k", ORDERS) is None
    assert cache.stats()["too_large"] == 1


def test_mutable_values_handed_out_cannot_change_the_cache() -> None:
    cache, _ = make_cache()
    first = cache.get_or_execute("k", ORDERS, returns(({"tags": ["a"]},)))
    first.rows[0][0]["tags"].append("mutated")
    assert rows_of(cache.get("k", ORDERS)) == (({"tags": ["a"]},),)


def _wait_for_joins(cache: ResultCache, count: int) -> None:
    deadline = time.monotonic() + 5
    while cache.stats()["singleflight_joins"] < count and time.monotonic() < deadline:
        time.sleep(0.001)


def test_single_flight_runs_once_for_concurrent_identical_misses() -> None:
    cache, _ = make_cache()
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow() -> QueryResult:
        calls.append(1)
        started.set()
        release.wait(5)
        return result((42,))

    results: list[QueryResult] = []

    def call() -> None:
        results.append(cache.get_or_execute("k", ORDERS, slow))

    leader = threading.Thread(target=call)
    leader.start()
    started.wait(5)
    waiters = [threading.Thread(target=call) for _ in range(9)]
    for thread in waiters:
        thread.start()
    _wait_for_joins(cache, 9)
    release.set()
    for thread in [leader, *waiters]:
        thread.join(5)
    assert len(calls) == 1
    assert [r.rows for r in results] == [((42,),)] * 10
    assert cache.stats()["singleflight_joins"] == 9


def test_single_flight_error_reaches_every_waiter_and_is_not_cached() -> None:
    cache, _ = make_cache()
    started, release = threading.Event(), threading.Event()

    def failing() -> QueryResult:
        started.set()
        release.wait(5)
        raise RuntimeError("boom")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            cache.get_or_execute("k", ORDERS, failing)
        except RuntimeError as exc:
            errors.append(exc)

    leader = threading.Thread(target=call)
    leader.start()
    started.wait(5)
    waiters = [threading.Thread(target=call) for _ in range(3)]
    for thread in waiters:
        thread.start()
    _wait_for_joins(cache, 3)
    release.set()
    for thread in [leader, *waiters]:
        thread.join(5)
    assert [str(e) for e in errors] == ["boom"] * 4
    assert cache.get("k", ORDERS) is None
    assert cache.get_or_execute("k", ORDERS, returns((1,))).rows == ((1,),)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1], [1.0]), ([1], [True]), ([1], ["1"]), ([Decimal("1")], [1]), ([None], ["None"]), ([[1, 2]], [(1, 2)])],
)
def test_canonical_params_keep_types_apart(a: list[object], b: list[object]) -> None:
    assert canonical_params(a) != canonical_params(b)


def test_canonical_params_are_stable_for_equal_values() -> None:
    assert canonical_params([1, "x", [1, 2], {"a": 1}]) == canonical_params([1, "x", [1, 2], {"a": 1}])
    assert hash(canonical_params({"b": [1], "a": 2})) == hash(canonical_params({"a": 2, "b": [1]}))


def test_unkeyable_params_raise_unkeyable() -> None:
    with pytest.raises(UnkeyableParams, match="object"):
        canonical_params([object()])
