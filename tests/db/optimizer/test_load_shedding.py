"""Load shedding against a real server: one slow query class must not starve the rest (issue 17).

A pool of 10 connections; 40 threads run a 0.5 s query (``pg_sleep``) next to one thread of
primary-key lookups. Without limits the slow calls hold every connection and the lookups queue
behind them; with a per-fingerprint limit (static, or adaptive with no number given) the lookups
keep their speed and the slow calls beyond the limit are rejected or wait within the bound.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from queryopt import (
    AsyncOptimizer,
    LimitMode,
    LimitPolicy,
    Optimizer,
    QueryRejected,
    QueryTimeout,
    RecorderPolicy,
    ReportFormat,
    Settings,
    TimeoutPolicy,
)
from queryopt.errors import REJECTED_SQLSTATE
from queryopt.report import render, report
from queryopt.schema.migrator import migrate

SLOW_SQL = "SELECT pg_sleep(0.5)"
LOOKUP_SQL = "SELECT balance FROM accounts WHERE id = %s"
SLOW_THREADS = 40
POOL_SIZE = 10
MAX_WAIT = 0.1
SCHEDULING_SLACK = 0.25
"""Seconds a thread may take to be scheduled again on a busy 2-core machine."""


@pytest.fixture
def accounts(conn: psycopg.Connection[Any]) -> str:
    conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
    conn.execute("INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 1000) g")
    conn.execute("ANALYZE accounts")
    return str(conn.info.dsn)


@dataclass
class Storm:
    lookups: list[float] = field(default_factory=list)
    """Seconds each primary-key lookup took."""
    ran: list[float] = field(default_factory=list)
    """Seconds each slow call that ran took, its wait for a slot included."""
    rejected: list[QueryRejected] = field(default_factory=list)
    busiest: int = 0
    """The most slow statements the server ran at once (sampled from pg_stat_activity)."""
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def lookup_p99(self) -> float:
        ordered = sorted(self.lookups)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]


def run_storm(dsn: str, environ: Mapping[str, str], *, seconds: float = 2.5) -> Storm:
    """40 threads of the slow query and one of lookups through one optimizer with a pool of 10."""
    settings = Settings.from_env(
        {"QUERYOPT_DSN": dsn, "QUERYOPT_RECORD_SLOW": "off", "QUERYOPT_FINGERPRINT_MAX_WAIT": "100ms", **environ}
    )
    storm = Storm()
    stop = threading.Event()
    with Optimizer(settings=settings, min_size=POOL_SIZE, max_size=POOL_SIZE) as optimizer:
        for key in range(1, 51):  # every connection has run the lookup before the storm
            optimizer.execute(LOOKUP_SQL, [key])

        def slow() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    optimizer.execute(SLOW_SQL)
                except QueryRejected as exc:
                    storm.rejected.append(exc)
                    continue
                storm.ran.append(time.perf_counter() - started)

        def lookups() -> None:
            key = 0
            while not stop.is_set():
                key = key % 1000 + 1
                started = time.perf_counter()
                optimizer.execute(LOOKUP_SQL, [key])
                storm.lookups.append(time.perf_counter() - started)
                time.sleep(0.002)

        def monitor() -> None:
            with psycopg.connect(dsn, autocommit=True) as watcher:
                while not stop.is_set():
                    row = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg_sleep%'"
                    ).fetchone()
                    storm.busiest = max(storm.busiest, row[0] if row else 0)
                    time.sleep(0.02)

        workers = [threading.Thread(target=slow) for _ in range(SLOW_THREADS)]
        watcher = threading.Thread(target=monitor)
        for thread in [*workers, watcher]:
            thread.start()
        time.sleep(0.3)  # the slow calls have taken what they can
        looker = threading.Thread(target=lookups)
        looker.start()
        time.sleep(seconds)
        stop.set()
        for thread in [looker, watcher, *workers]:
            thread.join(30)
        storm.stats = optimizer.stats()
    return storm


@pytest.mark.slow
def test_without_limits_the_slow_query_starves_the_lookups(accounts: str) -> None:
    storm = run_storm(accounts, {})
    assert storm.busiest >= POOL_SIZE - 1  # the slow query held (nearly) every connection
    assert storm.lookup_p99 > 0.4  # the problem: a 1 ms lookup queues behind 0.5 s sleeps
    assert storm.rejected == []
    assert "limit_rejections" not in storm.stats


def check_shed(storm: Storm, *, most_at_once: int) -> None:
    assert len(storm.lookups) > 100
    assert storm.lookup_p99 < 0.020, f"lookup p99 {storm.lookup_p99 * 1000:.1f} ms"
    assert 0 < storm.busiest <= most_at_once
    assert storm.rejected, "40 threads on a few slots: some calls must have been turned away"
    for rejection in storm.rejected:
        assert MAX_WAIT <= rejection.waited <= MAX_WAIT + SCHEDULING_SLACK
    assert storm.ran
    assert max(storm.ran) <= 0.5 + MAX_WAIT + SCHEDULING_SLACK  # a call that ran waited within the bound
    assert storm.stats["limit_rejections"] == len(storm.rejected)
    assert storm.stats["limit_in_flight"] == 0


@pytest.mark.slow
def test_a_static_limit_keeps_the_lookups_fast(accounts: str) -> None:
    storm = run_storm(accounts, {"QUERYOPT_FINGERPRINT_CONCURRENCY": "4"})
    check_shed(storm, most_at_once=4)
    rejection = storm.rejected[0]
    assert rejection.limit == 4
    assert rejection.sql == SLOW_SQL


@pytest.mark.slow
def test_an_adaptive_limit_keeps_the_lookups_fast_with_no_number_given(accounts: str) -> None:
    storm = run_storm(accounts, {"QUERYOPT_FINGERPRINT_CONCURRENCY": "adaptive"})
    check_shed(storm, most_at_once=POOL_SIZE - 2)  # the default reserve stays free


# -- what counts against a limit, and what a rejection leaves behind ----------------------------------------

HEAVY_SQL = "SELECT count(*) FROM accounts a CROSS JOIN accounts b CROSS JOIN accounts c WHERE c.id <= %s"
"""A cacheable read that takes a while (some 100 ms): 1000 x 1000 x n rows."""


def one_at_a_time(dsn: str, **limits: Any) -> Optimizer:
    policy = LimitPolicy(LimitMode.STATIC, concurrency=1, max_wait=0.0, **limits)
    return Optimizer(settings=Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False), limits=policy))


def test_cache_hits_and_transactions_take_no_slot(accounts: str) -> None:
    with one_at_a_time(accounts) as optimizer:
        assert optimizer.query(LOOKUP_SQL, [1], use_cache=True) == [(10,)]
        fingerprint = optimizer.prepare(LOOKUP_SQL).analysis.fingerprint
        assert optimizer.limiter is not None
        held = optimizer.limiter.acquire(fingerprint)  # a call of the same shape is running
        try:
            assert optimizer.query(LOOKUP_SQL, [1], use_cache=True) == [(10,)]  # a hit: no slot needed
            with pytest.raises(QueryRejected) as info:
                optimizer.query(LOOKUP_SQL, [2], use_cache=True)  # a miss runs: it needs a slot
            assert (info.value.fingerprint, info.value.limit, info.value.waited) == (fingerprint, 1, 0.0)
            with optimizer.transaction() as tx:  # holds its connection already: not limited
                assert tx.query(LOOKUP_SQL, [3]) == [(30,)]
        finally:
            optimizer.limiter.release(held, 0.001)
        assert optimizer.query(LOOKUP_SQL, [2]) == [(20,)]
        stats = optimizer.stats()
        assert (stats["limit_rejections"], stats["limit_in_flight"], stats["hits"]) == (1, 0, 1)
        assert optimizer.limit_summary()[fingerprint]["rejections"] == 1


def test_single_flight_followers_wait_on_the_leader_not_on_a_slot(accounts: str) -> None:
    with one_at_a_time(accounts) as optimizer:
        optimizer.prepare(HEAVY_SQL)
        start = threading.Barrier(6)
        results: list[object] = []

        def call() -> None:
            start.wait()
            try:
                results.append(optimizer.query(HEAVY_SQL, [4], use_cache=True))
            except QueryRejected as exc:
                results.append(exc)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert results == [[(4_000_000,)]] * 6  # nobody was rejected
        stats = optimizer.stats()
        assert stats["singleflight_joins"] >= 1  # the others joined the leader's run...
        assert stats["limit_rejections"] == 0  # ...instead of asking for the one slot


def test_a_rejection_is_recorded_and_reported_apart_from_the_calls_that_ran(accounts: str) -> None:
    migrate(accounts)
    slow = "SELECT pg_sleep(0.15)"
    settings = Settings(
        dsn=accounts,
        recorder=RecorderPolicy(threshold=0.1, flush_interval=0.05),
        limits=LimitPolicy(LimitMode.STATIC, concurrency=1, max_wait=0.05),
    )
    with Optimizer(settings=settings) as optimizer:
        optimizer.execute(slow)
        fingerprint = optimizer.prepare(slow).analysis.fingerprint
        assert optimizer.limiter is not None
        held = optimizer.limiter.acquire(fingerprint)
        with pytest.raises(QueryRejected):
            optimizer.execute(slow)
        optimizer.limiter.release(held, 0.15)
    with psycopg.connect(accounts) as conn:
        rows = conn.execute(
            "SELECT sqlstate, duration_ms FROM queryopt.slow_queries WHERE fingerprint = %s ORDER BY started_at",
            [fingerprint],
        ).fetchall()
    assert [state for state, _ in rows] == [None, REJECTED_SQLSTATE]
    assert 50 <= rows[1][1] < 1000  # the rejected call's wait
    found = report(accounts, fingerprint=fingerprint)
    (query,) = found.queries
    assert (query.calls, query.rejections, query.errors) == (1, 1, 0)
    assert query.min_ms >= 150  # the 50 ms wait is in no duration figure
    assert found.summary.calls == 1
    assert json.loads(render(found, ReportFormat.JSON))["queries"][0]["rejections"] == 1
    assert "rejected by its concurrency limit" in " ".join(render(found, ReportFormat.TABLE).split())
    assert "| rejected |" in render(found, ReportFormat.MARKDOWN)


def test_the_async_optimizer_sheds_and_waits_in_line(accounts: str) -> None:
    async def scenario(max_wait: float) -> tuple[list[object], dict[str, int]]:
        settings = Settings(
            dsn=accounts,
            recorder=RecorderPolicy(enabled=False),
            limits=LimitPolicy(LimitMode.STATIC, concurrency=2, max_wait=max_wait),
        )
        async with AsyncOptimizer(settings=settings, analysis_processes=0) as optimizer:
            await optimizer.execute(LOOKUP_SQL, [1])

            async def slow() -> object:
                try:
                    return await optimizer.query("SELECT pg_sleep(0.2)")
                except QueryRejected as exc:
                    return exc

            calls = [asyncio.create_task(slow()) for _ in range(6)]
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            assert await optimizer.query(LOOKUP_SQL, [7]) == [(70,)]  # another shape is not held up
            assert time.perf_counter() - started < 0.15
            results = list(await asyncio.gather(*calls))
            return results, optimizer.stats()

    shed, stats = asyncio.run(scenario(0.05))
    assert sum(isinstance(result, QueryRejected) for result in shed) == 4
    assert stats["limit_rejections"] == 4
    waited, stats = asyncio.run(scenario(2.0))
    assert not any(isinstance(result, QueryRejected) for result in waited)
    assert (stats["limit_waits"], stats["limit_in_flight"], stats["limit_waiting"]) == (4, 0, 0)


def test_statement_timeouts_shrink_an_adaptive_limit(accounts: str) -> None:
    settings = Settings(
        dsn=accounts,
        timeout=TimeoutPolicy(statement=0.05),
        recorder=RecorderPolicy(enabled=False),
        limits=LimitPolicy(LimitMode.ADAPTIVE, max_wait=0.0),
    )
    with Optimizer(settings=settings, max_size=10) as optimizer:
        fingerprint = optimizer.prepare(SLOW_SQL).analysis.fingerprint
        for _ in range(6):
            with pytest.raises(QueryTimeout):  # 57014: cancelled by the server
                optimizer.execute(SLOW_SQL)
        assert optimizer.limit_summary()[fingerprint]["limit"] == 2  # 4 x 0.9^6 = 2.1: shed sooner now
        assert optimizer.query(LOOKUP_SQL, [5]) == [(50,)]
        assert optimizer.limit_summary()[optimizer.prepare(LOOKUP_SQL).analysis.fingerprint]["limit"] == 4
