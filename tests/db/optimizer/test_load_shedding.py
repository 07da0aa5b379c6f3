"""Load shedding against a real server: one slow query class must not starve the rest (issue 17).

A pool of 10 connections; 40 threads run a 0.5 s query (``pg_sleep``) next to one thread of
primary-key lookups. Without limits the slow calls hold every connection and the lookups queue
behind them; with a per-fingerprint limit (static, or adaptive with no number given) the lookups
keep their speed and the slow calls beyond the limit are rejected or wait within the bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from queryopt import Optimizer, QueryRejected, Settings

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
