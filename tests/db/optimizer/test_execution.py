"""Timeouts, stalls and retries around one statement, against a real server."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from queryopt.config import RetryPolicy, TimeoutPolicy
from queryopt.errors import QueryError, QueryTimeout
from queryopt.optimizer.execution import Executor, Statement

Pool = ConnectionPool[psycopg.Connection[tuple[Any, ...]]]


def make_executor(dsn: str, *, statement: float | None = 30.0, grace: float = 5.0, attempts: int = 3) -> Executor:
    executor: Executor | None = None

    def configure(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        assert executor is not None
        executor.configure_connection(conn)

    pool: Pool = ConnectionPool(
        dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, configure=configure, open=False
    )
    executor = Executor(
        pool,
        timeouts=TimeoutPolicy(statement=statement, network_grace=grace),
        retry=RetryPolicy(attempts=attempts, initial_backoff=0.01, max_backoff=0.05, jitter=0.01),
    )
    pool.open(wait=True)
    return executor


@pytest.fixture
def executor(dsn: str) -> Iterator[Executor]:
    executor = make_executor(dsn)
    yield executor
    executor.pool.close()
    executor.watchdog.close()


def read(text: str) -> Statement:
    return Statement(text=text, fingerprint="f" * 16, read_only=True)


def write(text: str) -> Statement:
    return Statement(text=text, fingerprint="e" * 16, read_only=False)


def test_runs_a_query_and_returns_columns_rows_and_count(executor: Executor) -> None:
    result = executor.run(read("SELECT g AS n, g * 2 AS double FROM generate_series(1, 3) g WHERE g >= %s"), [2])
    assert result.columns == ("n", "double")
    assert result.rows == ((2, 4), (3, 6))
    assert result.rowcount == 2


def test_timeout_is_enforced_by_the_server_and_the_pool_stays_usable(
    executor: Executor, conn: psycopg.Connection[Any]
) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryTimeout) as info:
        executor.run(read("SELECT pg_sleep(5) /* runaway */"), None, limit_ms=200)
    assert time.perf_counter() - started < 3
    error = info.value
    assert error.sqlstate == "57014"
    assert error.limit == 0.2
    assert error.elapsed is not None
    assert error.elapsed >= 0.2
    running = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'", ["%runaway%"]
    ).fetchone()
    assert running == (0,)
    assert executor.run(read("SELECT 1"), None).rows == ((1,),)
    # The connection went back to the default limit only when asked: the next call with a different limit changes it.
    assert executor.stats()["timeouts"] == 1


def test_timeout_is_changed_only_when_a_call_asks_for_a_different_limit(executor: Executor) -> None:
    for _ in range(5):
        executor.run(read("SELECT 1"), None)
    assert executor.stats()["timeout_changes"] == 0
    executor.run(read("SELECT 1"), None, limit_ms=1234)
    shown = executor.run(read("SHOW statement_timeout"), None, limit_ms=1234).rows
    assert shown == (("1234ms",),)
    assert executor.stats()["timeout_changes"] == 1


def test_a_silent_stall_is_cut_by_the_client_deadline(dsn: str) -> None:
    executor = make_executor(dsn, statement=0.3, grace=0.3, attempts=1)
    try:
        executor.pool.resize(1, 1)
        pid = executor.run(read("SELECT pg_backend_pid()"), None).rows[0][0]
        os.kill(pid, signal.SIGSTOP)  # the server process stops answering, as behind a dead network
        try:
            started = time.perf_counter()
            with pytest.raises(QueryTimeout, match="stopped answering"):
                executor.run(read("SELECT 1"), None)
            assert time.perf_counter() - started < 5
        finally:
            os.kill(pid, signal.SIGCONT)
        assert executor.run(read("SELECT 2"), None).rows == ((2,),)
        assert executor.stats()["stalls"] == 1
    finally:
        executor.pool.close()
        executor.watchdog.close()


def test_database_errors_keep_their_sqlstate(executor: Executor) -> None:
    with pytest.raises(QueryError) as info:
        executor.run(read("SELECT * FROM no_such_table"), None)
    assert info.value.sqlstate == "42P01"
    assert "no_such_table" in str(info.value)
    assert executor.run(read("SELECT 1"), None).rows == ((1,),)


def test_serialization_failure_is_retried_and_the_write_applied_once(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL)")
    conn.execute("INSERT INTO account VALUES (1, 100), (2, 100)")
    conn.execute("CREATE TABLE audit (id serial PRIMARY KEY, note text)")
    executor = make_executor(dsn + " options='-c default_transaction_isolation=serializable'")
    blocker = psycopg.connect(dsn)
    try:
        blocker.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        blocker.execute("SELECT balance FROM account WHERE id = 1").fetchone()
        blocker.execute("UPDATE account SET balance = balance - 10 WHERE id = 1")
        # The write below conflicts with the open serializable transaction once it commits.
        statement = write(
            "WITH moved AS (UPDATE account SET balance = balance + 10 WHERE id = 1 RETURNING balance)"
            " INSERT INTO audit (note) SELECT 'balance ' || balance FROM moved"
        )
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(executor.run(statement, None)))
        worker.start()
        time.sleep(0.3)  # the statement waits on the row lock held by the blocker
        blocker.commit()
        worker.join(10)
        assert outcome, "the retried statement did not succeed"
        assert executor.stats()["retries"] >= 1
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (1,)
        assert conn.execute("SELECT balance FROM account WHERE id = 1").fetchone() == (100,)
    finally:
        blocker.close()
        executor.pool.close()
        executor.watchdog.close()


def test_a_write_whose_connection_is_lost_is_not_retried(executor: Executor, conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE events (id serial PRIMARY KEY)")
    executor.pool.resize(1, 1)
    pid = executor.run(read("SELECT pg_backend_pid()"), None).rows[0][0]
    killer = threading.Timer(0.3, lambda: conn.execute("SELECT pg_terminate_backend(%s)", [pid]))
    killer.start()
    with pytest.raises(QueryError, match="may or may not have been applied"):
        executor.run(write("INSERT INTO events DEFAULT VALUES RETURNING (SELECT pg_sleep(2))::text"), None)
    killer.join()
    assert executor.stats()["retries"] == 0


def test_a_read_whose_connection_is_lost_is_retried(executor: Executor, conn: psycopg.Connection[Any]) -> None:
    executor.pool.resize(1, 1)
    pid = executor.run(read("SELECT pg_backend_pid()"), None).rows[0][0]
    conn.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert executor.run(read("SELECT 42"), None).rows == ((42,),)
    assert executor.stats()["retries"] == 1
