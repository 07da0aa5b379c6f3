"""Leased connections: kept between calls with their cursor, returned when idle, on close, and to waiting clients."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from queryopt import QueryTimeout, RecorderPolicy, Settings, TimeoutPolicy
from queryopt.optimizer.awaiting import AsyncOptimizer
from queryopt.optimizer.blocking import Optimizer
from queryopt.optimizer.execution import Statement
from queryopt.optimizer.leases import IDLE_SECONDS

Pool = ConnectionPool[psycopg.Connection[Any]]
PID = "SELECT pg_backend_pid()"


def settings(dsn: str) -> Settings:
    return Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False))


def make_pool(dsn: str, max_size: int, *, timeout: float = 5.0) -> Pool:
    pool: Pool = ConnectionPool(
        dsn, min_size=1, max_size=max_size, kwargs={"autocommit": True}, timeout=timeout, open=True
    )
    pool.wait()
    return pool


@pytest.fixture
def optimizer(dsn: str) -> Iterator[Optimizer]:
    with Optimizer(dsn, settings=settings(dsn), max_size=2) as optimizer:
        yield optimizer


def pid(optimizer: Optimizer) -> int:
    rows = optimizer.query(PID, [])
    return int(rows[0][0])


def until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def test_a_call_reuses_the_connection_and_cursor_of_the_previous_one(optimizer: Optimizer) -> None:
    first = pid(optimizer)
    lease = optimizer.executor.leases.shelf.take()
    assert lease is not None, "the connection stays leased after the call"
    cursor = lease.cursor
    optimizer.executor.leases.give_back(lease, time.perf_counter())
    requests = optimizer.pool.get_stats()["requests_num"]
    assert [pid(optimizer) for _ in range(5)] == [first] * 5
    assert optimizer.pool.get_stats()["requests_num"] == requests, "no call asked the pool"
    again = optimizer.executor.leases.shelf.take()
    assert again is lease
    assert again.cursor is cursor


def test_an_idle_lease_goes_back_to_the_pool(optimizer: Optimizer) -> None:
    pid(optimizer)
    assert len(optimizer.executor.leases.shelf) == 1
    assert until(lambda: len(optimizer.executor.leases.shelf) == 0, IDLE_SECONDS * 20)
    assert until(lambda: optimizer.pool.get_stats()["pool_available"] >= 1)


def test_close_returns_the_leases_to_a_pool_the_optimizer_does_not_own(dsn: str) -> None:
    pool = make_pool(dsn, 1)
    try:
        optimizer = Optimizer(pool=pool, settings=settings(dsn))
        pid(optimizer)
        optimizer.close()
        with pool.connection(timeout=0.5) as conn:  # the only connection is back at once
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()


def test_a_client_waiting_for_the_pool_gets_an_idle_lease_soon(dsn: str) -> None:
    pool = make_pool(dsn, 1)
    try:
        with Optimizer(pool=pool, settings=settings(dsn)) as optimizer:
            optimizer.executor.leases.shelf.idle = 60.0  # not returned for being idle: only for the waiting client
            pid(optimizer)  # the pool's only connection is now leased, idle
            started = time.monotonic()
            conn = pool.getconn(timeout=2.0)
            waited = time.monotonic() - started
            pool.putconn(conn)
        assert waited < 1.0, f"waited {waited:.3f} s for an idle lease"
    finally:
        pool.close()


def test_eight_threads_share_a_pool_of_two_without_starving(dsn: str) -> None:
    pool = make_pool(dsn, 2, timeout=10.0)
    finished: list[int] = []  # the thread of each finished call, in order
    errors: list[BaseException] = []
    start = threading.Barrier(8)
    try:
        with Optimizer(pool=pool, settings=settings(dsn)) as optimizer:
            optimizer.executor.leases.shelf.idle = 60.0  # leases go back for waiting threads, not for being idle

            def work(number: int) -> None:
                try:
                    start.wait()
                    for _ in range(20):
                        assert optimizer.query("SELECT %s::int", [number]) == [(number,)]
                        finished.append(number)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not errors, errors
            assert len(finished) == 160, "every call of every thread ran"
            # A call that ends while others wait hands its connection on: no two threads run all theirs first.
            assert len(set(finished[:40])) >= 5, finished[:40]
    finally:
        pool.close()


def test_a_broken_leased_connection_is_replaced(optimizer: Optimizer, conn: psycopg.Connection[Any]) -> None:
    before = pid(optimizer)
    conn.execute("SELECT pg_terminate_backend(%s)", [before])
    assert until(lambda: not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [before]).fetchone())
    after = pid(optimizer)  # a read is retried on a new connection
    assert after != before
    assert pid(optimizer) == after, "the new connection is leased in turn"
    assert optimizer.executor.leases.shelf.take() is not None


def test_a_transaction_uses_a_connection_of_its_own(optimizer: Optimizer) -> None:
    optimizer.execute("CREATE TABLE notes (id int PRIMARY KEY)")
    outside = pid(optimizer)
    with optimizer.transaction() as tx:
        inside = int(tx.query(PID)[0][0])
        tx.execute("INSERT INTO notes VALUES (1)")
        # A call outside the transaction, on the same thread, neither joins it nor sees its write.
        assert optimizer.query("SELECT count(*) FROM notes", []) == [(0,)]
        assert pid(optimizer) != inside
    assert optimizer.query("SELECT count(*) FROM notes", []) == [(1,)]
    assert outside in {inside, pid(optimizer)}


def test_a_transaction_takes_the_idle_lease_of_a_pool_of_one(dsn: str) -> None:
    pool = make_pool(dsn, 1, timeout=1.0)
    try:
        with Optimizer(pool=pool, settings=settings(dsn)) as optimizer:
            leased = pid(optimizer)
            with optimizer.transaction() as tx:  # no wait for the pool: the idle lease serves it
                assert int(tx.query(PID)[0][0]) == leased
            assert pid(optimizer) == leased
    finally:
        pool.close()


def test_a_timeout_leaves_the_lease_usable_with_the_default_limit(dsn: str) -> None:
    config = Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False), timeout=TimeoutPolicy(statement=30.0))
    with Optimizer(dsn, settings=config, max_size=1) as optimizer:
        leased = pid(optimizer)
        with pytest.raises(QueryTimeout):
            optimizer.execute("SELECT pg_sleep(2)", [], timeout=0.05)
        assert pid(optimizer) == leased
        assert optimizer.query("SELECT current_setting('statement_timeout')", []) == [("30s",)]


def test_a_connection_left_in_a_transaction_is_not_kept(optimizer: Optimizer) -> None:
    pid(optimizer)
    # The optimizer refuses BEGIN outside transaction(); the executor below it must not keep one either.
    optimizer.executor.run(Statement("BEGIN", "b" * 16, read_only=False), None)
    assert len(optimizer.executor.leases.shelf) == 0, "a connection inside a transaction went back to the pool"
    # The pool rolled it back; whichever connection serves the next call is outside any transaction.
    assert optimizer.query("SELECT now() = statement_timestamp()", []) == [(True,)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_forgets_the_leases_of_its_parent(optimizer: Optimizer) -> None:
    leased = pid(optimizer)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        forgotten = len(optimizer.executor.leases.shelf) == 0
        os.write(write, b"1" if forgotten else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(child, 0)
    assert answer == b"1", "the child still had the parent's leases"
    assert pid(optimizer) == leased, "the parent's leased connection still works"


def test_the_async_optimizer_leases_too(dsn: str) -> None:
    async def main() -> None:
        async with AsyncOptimizer(dsn, settings=settings(dsn), max_size=2, analysis_processes=0) as optimizer:
            shelf = optimizer.executor.leases.shelf
            pids = {int((await optimizer.query(PID, []))[0][0]) for _ in range(5)}
            assert len(pids) == 1
            assert len(shelf) == 1
            deadline = time.monotonic() + IDLE_SECONDS * 20
            while len(shelf) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(shelf) == 0, "an idle lease went back to the pool"
            async with optimizer.transaction() as tx:
                assert await tx.query("SELECT 1") == [(1,)]
            assert len(shelf) == 1
        assert len(shelf) == 0, "closing returned the lease"

    asyncio.run(main())
