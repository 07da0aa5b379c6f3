"""optimize_query and the Optimizer against a real server: timeouts, retries, caching, invalidation, roles."""

from __future__ import annotations

import datetime
import decimal
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import queryopt
from queryopt import (
    CachePolicy,
    ConfigurationError,
    HintError,
    HintMode,
    QueryTimeout,
    RecorderPolicy,
    RetryPolicy,
    Settings,
)
from queryopt.cache import ResultCache
from queryopt.optimizer.blocking import Optimizer
from queryopt.schema.migrator import migrate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shop(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
    conn.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric)"
    )
    conn.execute("INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g")
    conn.execute("INSERT INTO orders SELECT g, 1 + g % 50, g FROM generate_series(1, 5000) g")
    conn.execute("CREATE INDEX orders_customer_idx ON orders (customer_id)")
    conn.execute("ANALYZE")
    return conn


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def optimizer(dsn: str, shop: psycopg.Connection[Any], clock: FakeClock) -> Iterator[Optimizer]:
    settings = Settings(dsn=dsn, cache=CachePolicy(ttl=30.0))
    with Optimizer(settings=settings, cache=ResultCache(settings.cache, clock=clock)) as optimizer:
        yield optimizer


def test_optimize_query_with_configure(dsn: str, shop: psycopg.Connection[Any]) -> None:
    queryopt.configure(dsn)
    try:
        rows = queryopt.optimize_query("SELECT name FROM customers WHERE id = %s", [7], use_cache=True)
        assert rows == [("customer 7",)]
        as_dicts = queryopt.optimize_query("SELECT id, name FROM customers WHERE id = %s", [8], rows="dict")
        assert as_dicts == [{"id": 8, "name": "customer 8"}]
    finally:
        queryopt.configure(dsn).close()


def test_no_database_configured_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYOPT_DSN", raising=False)
    with pytest.raises(ConfigurationError, match="QUERYOPT_DSN"):
        Optimizer()


def test_timeout_cancels_on_the_server_and_the_pool_stays_usable(
    optimizer: Optimizer, conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(QueryTimeout) as info:
        optimizer.execute("SELECT pg_sleep(10), 'runaway-marker'", timeout=0.2)
    assert info.value.limit == pytest.approx(0.2)
    assert info.value.fingerprint
    active = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%runaway-marker%' AND state = 'active'"
        " AND pid <> pg_backend_pid()"
    ).fetchone()
    assert active == (0,)
    assert optimizer.query("SELECT 1") == [(1,)]


def test_cache_hit_serves_without_a_round_trip(optimizer: Optimizer, shop: psycopg.Connection[Any]) -> None:
    query = "SELECT name FROM customers WHERE id = %s"
    assert optimizer.query(query, [3], use_cache=True) == [("customer 3",)]
    shop.execute("UPDATE customers SET name = 'changed behind our back' WHERE id = 3")  # not through queryopt
    assert optimizer.query(query, [3], use_cache=True) == [("customer 3",)]
    stats = optimizer.stats()
    assert (stats["hits"], stats["misses"]) == (1, 1)


def test_parameters_of_different_types_are_different_keys(optimizer: Optimizer) -> None:
    query = "SELECT %s::text"
    assert optimizer.query(query, [1], use_cache=True) == [("1",)]
    assert optimizer.query(query, ["1"], use_cache=True) == [("1",)]
    assert optimizer.query(query, [True], use_cache=True) == [("true",)]
    assert optimizer.stats()["misses"] == 3


@pytest.mark.parametrize(
    ("first", "second", "second_text"),
    [
        (decimal.Decimal("1.0"), decimal.Decimal("1.00"), "1.00"),
        (0.0, -0.0, "-0"),
        (
            datetime.time(12, tzinfo=datetime.UTC),
            datetime.time(13, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
            "13:00:00+01",
        ),
    ],
)
def test_parameters_that_compare_equal_but_differ_on_the_server_are_different_keys(
    optimizer: Optimizer, first: Any, second: Any, second_text: str
) -> None:
    # Python calls these equal (with equal hashes); PostgreSQL keeps the scale, the sign, the offset.
    query = "SELECT %s::text"
    optimizer.query(query, [first], use_cache=True)
    assert optimizer.query(query, [second], use_cache=True) == [(second_text,)]
    assert optimizer.query(query, [[second]], use_cache=True) != optimizer.query(query, [[first]], use_cache=True)


def test_cached_results_expire(optimizer: Optimizer, shop: psycopg.Connection[Any], clock: FakeClock) -> None:
    query = "SELECT name FROM customers WHERE id = %s"
    optimizer.query(query, [4], use_cache=True, ttl=5)
    shop.execute("UPDATE customers SET name = 'renamed' WHERE id = 4")
    clock.now += 4.9
    assert optimizer.query(query, [4], use_cache=True) == [("customer 4",)]
    clock.now += 0.2
    assert optimizer.query(query, [4], use_cache=True) == [("renamed",)]


def test_eviction_by_size(dsn: str, shop: psycopg.Connection[Any]) -> None:
    settings = Settings(dsn=dsn, cache=CachePolicy(max_bytes=32 * 1024))
    with Optimizer(settings=settings) as optimizer:
        for customer in range(1, 51):
            optimizer.query("SELECT * FROM orders WHERE customer_id = %s", [customer], use_cache=True)
        stats = optimizer.stats()
        assert stats["evictions"] > 0
        assert stats["entries"] < 50


def test_a_write_through_queryopt_invalidates_reads_of_that_table(optimizer: Optimizer) -> None:
    customers = "SELECT name FROM customers WHERE id = %s"
    orders = "SELECT count(*) FROM orders WHERE customer_id = %s"
    optimizer.query(customers, [5], use_cache=True)
    optimizer.query(orders, [5], use_cache=True)
    optimizer.execute("UPDATE customers SET name = %s WHERE id = %s", ["new name", 5])
    assert optimizer.query(customers, [5], use_cache=True) == [("new name",)]
    assert optimizer.stats()["hits"] == 0
    optimizer.query(orders, [5], use_cache=True)
    assert optimizer.stats()["hits"] == 1  # orders was not touched by the write


def test_writes_in_a_transaction_invalidate_after_commit_not_after_rollback(optimizer: Optimizer) -> None:
    query = "SELECT name FROM customers WHERE id = %s"
    optimizer.query(query, [6], use_cache=True)

    def write_then_fail() -> None:
        with optimizer.transaction() as tx:
            tx.execute("UPDATE customers SET name = 'rolled back' WHERE id = 6")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert optimizer.query(query, [6], use_cache=True) == [("customer 6",)]
    assert optimizer.stats()["hits"] == 1
    with optimizer.transaction() as tx:
        tx.execute("UPDATE customers SET name = 'committed' WHERE id = 6")
    assert optimizer.query(query, [6], use_cache=True) == [("committed",)]


def test_explicit_invalidate(optimizer: Optimizer, shop: psycopg.Connection[Any]) -> None:
    query = "SELECT name FROM customers WHERE id = %s"
    optimizer.query(query, [9], use_cache=True)
    shop.execute("UPDATE customers SET name = 'outside' WHERE id = 9")
    optimizer.invalidate("customers")
    assert optimizer.query(query, [9], use_cache=True) == [("outside",)]


def test_uncacheable_statements_bypass_and_say_why(optimizer: Optimizer) -> None:
    decision = optimizer.cache_decision("SELECT now()")
    assert not decision.cacheable
    assert any("now" in reason for reason in decision.reasons)
    first = optimizer.query("SELECT random()", use_cache=True)
    second = optimizer.query("SELECT random()", use_cache=True)
    assert first != second
    assert optimizer.stats()["bypasses"] == 2
    assert not optimizer.cache_decision("SELECT %s::text", [object()]).cacheable


@pytest.mark.pg_stat_statements
def test_twenty_threads_asking_the_same_uncached_query_run_it_once(
    optimizer: Optimizer, shop: psycopg.Connection[Any]
) -> None:
    shop.execute("SELECT pg_stat_statements_reset()")
    shop.execute("CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 300000) g")
    query = "SELECT count(*) AS single_flight_probe FROM big WHERE id %% 7 = %s"
    barrier = threading.Barrier(20)
    results: list[Any] = []

    def ask() -> None:
        barrier.wait()
        results.append(optimizer.query(query, [3], use_cache=True))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    calls = shop.execute(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE '%single_flight_probe%'"
    ).fetchone()
    assert calls == (1,)  # counted by the server
    assert len(results) == 20
    assert all(result == results[0] for result in results)
    stats = optimizer.stats()
    assert stats["misses"] == 1
    assert stats["hits"] + stats["singleflight_joins"] == 19


@pytest.fixture
def two_roles(pg_server: Any, dsn: str, shop: psycopg.Connection[Any]) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    names = (f"alice_{suffix}", f"bob_{suffix}")
    for name in names:
        shop.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    shop.execute("CREATE TABLE notes (owner name NOT NULL, body text NOT NULL)")
    shop.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
    shop.execute("CREATE POLICY own_notes ON notes USING (owner = current_user)")
    shop.execute("INSERT INTO notes VALUES (%s, 'alice secret'), (%s, 'bob secret')", list(names))
    for name in names:
        shop.execute(sql.SQL("GRANT SELECT ON notes TO {}").format(sql.Identifier(name)))
    yield tuple(make_conninfo(dsn, user=name) for name in names)  # type: ignore[misc]
    shop.execute("DROP TABLE notes")
    for name in names:
        shop.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_roles_never_see_each_others_cached_rows(two_roles: tuple[str, str]) -> None:
    shared = ResultCache()
    alice_dsn, bob_dsn = two_roles
    with Optimizer(alice_dsn, cache=shared) as alice, Optimizer(bob_dsn, cache=shared) as bob:
        query = "SELECT body FROM notes ORDER BY body"
        assert alice.query(query, use_cache=True) == [("alice secret",)]
        assert bob.query(query, use_cache=True) == [("bob secret",)]
        assert alice.query(query, use_cache=True) == [("alice secret",)]
        assert shared.stats()["hits"] == 1


def test_retry_policy_is_used_for_serialization_failures(dsn: str, shop: psycopg.Connection[Any]) -> None:
    settings = Settings(
        dsn=dsn + " options='-c default_transaction_isolation=serializable'",
        retry=RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0.01),
    )
    with Optimizer(settings=settings) as optimizer:
        blocker = psycopg.connect(dsn)
        try:
            blocker.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            blocker.execute("UPDATE customers SET name = 'blocker' WHERE id = 1")
            outcome: list[Any] = []
            worker = threading.Thread(
                target=lambda: outcome.append(
                    optimizer.execute("UPDATE customers SET name = name || ' (retried)' WHERE id = 1")
                )
            )
            worker.start()
            threading.Event().wait(0.3)
            blocker.commit()
            worker.join(10)
        finally:
            blocker.close()
        assert outcome
        assert optimizer.stats()["retries"] >= 1
        assert shop.execute("SELECT name FROM customers WHERE id = 1").fetchone() == ("blocker (retried)",)


def test_session_settings_outside_a_transaction_are_refused(optimizer: Optimizer) -> None:
    with pytest.raises(queryopt.QueryError, match="connection string"):
        optimizer.execute("SET work_mem = '1GB'")


@pytest.mark.parametrize("mode", [HintMode.PLANNER_SETTINGS, HintMode.PG_HINT_PLAN])
def test_index_hints_are_validated_and_applied(dsn: str, shop: psycopg.Connection[Any], mode: HintMode) -> None:
    with Optimizer(settings=Settings(dsn=dsn, hint_mode=mode)) as optimizer:
        query = "SELECT o.id FROM orders o WHERE o.customer_id > %s ORDER BY o.id LIMIT 3"
        call = optimizer.prepare(query, ["orders_customer_idx"])
        if mode is HintMode.PG_HINT_PLAN:
            assert call.statement.text.startswith("/*+ IndexScan(o orders_customer_idx) */")
            assert call.statement.text.endswith(query)
        else:
            assert call.statement.text == query
            assert ("enable_seqscan", "off") in call.statement.planner_settings
        rows = optimizer.query(query, [1], index_hints=["orders_customer_idx"])
        assert rows == [(1,), (2,), (3,)]
        with pytest.raises(HintError, match="orders_pkey"):
            optimizer.query(query, [1], index_hints=["orders_custmer_idx"])
        with pytest.raises(HintError, match="customers"):
            optimizer.query(query, [1], index_hints={"customers": "customers_pkey"})


def test_slow_calls_are_recorded_and_fast_ones_are_not(dsn: str, shop: psycopg.Connection[Any]) -> None:
    migrate(dsn)
    settings = Settings(dsn=dsn, recorder=RecorderPolicy(threshold=0.2, flush_interval=0.05))
    with Optimizer(settings=settings) as optimizer:
        optimizer.query("SELECT name FROM customers WHERE id = %s", [1])
        optimizer.query("SELECT pg_sleep(0.3), %s::int AS marker", [7])
        with pytest.raises(QueryTimeout):
            optimizer.query("SELECT pg_sleep(2), 'too slow'", timeout=0.25)
        assert optimizer.recorder is not None
        assert optimizer.recorder.flush(10)
    rows = shop.execute(
        "SELECT fingerprint, kind, sql_text, duration_ms, row_count, timed_out, sqlstate, cache_outcome,"
        " database_name, role_name, source, params FROM queryopt.slow_queries ORDER BY started_at"
    ).fetchall()
    assert len(rows) == 2
    slow, cancelled = rows
    assert slow[2] == "SELECT pg_sleep(0.3), %s::int AS marker"
    assert slow[1] == "select"
    assert slow[3] >= 300
    assert (slow[4], slow[5], slow[6], slow[7]) == (1, False, None, "off")
    assert slow[8] == shop.info.dbname
    assert slow[9] == "postgres"
    assert slow[10] == "optimize_query"
    assert slow[11] is None  # parameter values are not stored unless asked for
    assert (cancelled[5], cancelled[6]) == (True, "57014")
    assert cancelled[0] == queryopt.analyze("SELECT pg_sleep(2), 'too slow'").fingerprint


def test_live_statistics_per_fingerprint(optimizer: Optimizer) -> None:
    for customer in range(1, 6):
        optimizer.query("SELECT name FROM customers WHERE id = %s", [customer])
    fingerprint = queryopt.analyze("SELECT name FROM customers WHERE id = %s").fingerprint
    summary = optimizer.metrics_summary()[fingerprint]
    assert summary["count"] == 5
    assert 0 < summary["min"] <= summary["mean"] <= summary["max"]


def test_session_settings_in_a_transaction_do_not_outlive_it(
    optimizer: Optimizer, conn: psycopg.Connection[Any]
) -> None:
    # A plain SET committed in a transaction would stay on the pooled connection: a later cached read of
    # `customers` would then read another schema's table and cache it under this search_path's key.
    conn.execute("CREATE SCHEMA other")
    conn.execute("CREATE TABLE other.customers (id int PRIMARY KEY, name text NOT NULL)")
    conn.execute("INSERT INTO other.customers VALUES (1, 'foreign')")
    with pytest.raises(queryopt.QueryError, match="SET LOCAL"), optimizer.transaction() as tx:
        tx.execute("SET search_path TO other")
    with optimizer.transaction() as tx:
        tx.execute("SET LOCAL search_path TO other")
        assert tx.query("SELECT name FROM customers WHERE id = 1") == [("foreign",)]
    assert optimizer.query("SELECT name FROM customers WHERE id = 1", use_cache=True) == [("customer 1",)]
    assert optimizer.query("SELECT current_setting('search_path')") != [("other",)]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", "2"),
        ("timeout", float("nan")),
        ("timeout", float("inf")),
        ("timeout", 1e12),
        ("timeout", True),
        ("ttl", "5"),
        ("ttl", float("nan")),
        ("ttl", float("inf")),
        ("retries", 0),
        ("retries", -1),
        ("retries", 1.5),
    ],
)
def test_a_bad_timeout_ttl_or_retries_is_a_configuration_error_naming_it(
    optimizer: Optimizer, option: str, value: Any
) -> None:
    # A NaN ttl used to be stored as an entry that never expires; the others raised TypeError & co.
    with pytest.raises(ConfigurationError, match=f"^{option} must be"):
        optimizer.query("SELECT name FROM customers WHERE id = %s", [1], use_cache=True, **{option: value})
    if option == "timeout":
        with pytest.raises(ConfigurationError, match=r"^timeout must be"), optimizer.transaction() as tx:
            tx.query("SELECT 1", timeout=value)
    assert optimizer.query("SELECT name FROM customers WHERE id = %s", [1], use_cache=True) == [("customer 1",)]


def test_a_cached_read_of_a_view_is_invalidated_by_a_write_to_its_tables(
    dsn: str, shop: psycopg.Connection[Any]
) -> None:
    shop.execute("CREATE VIEW big_spenders AS SELECT customer_id, sum(total) AS spent FROM orders GROUP BY customer_id")
    shop.execute("CREATE VIEW top_spender AS SELECT customer_id FROM big_spenders ORDER BY spent DESC LIMIT 1")
    with Optimizer(settings=Settings(dsn=dsn)) as optimizer:
        query = "SELECT customer_id FROM top_spender"
        before = optimizer.query(query, use_cache=True)
        optimizer.execute("UPDATE orders SET total = total + 1000000 WHERE id = %s", [17])
        after = optimizer.query(query, use_cache=True)
        expected = shop.execute("SELECT customer_id FROM orders WHERE id = 17").fetchone()
        assert after == [expected]
        assert after != before
        assert optimizer.stats()["hits"] == 0
