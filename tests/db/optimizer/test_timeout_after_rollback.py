"""After a transaction rolls back (or fails), the statement timeout queryopt remembers for the connection
is the server's again: no call runs under another call's limit. One pooled connection, sync and async."""

from __future__ import annotations

import asyncio

import pytest

from queryopt import AsyncOptimizer, Optimizer, QueryError, QueryTimeout, RecorderPolicy, Settings, TimeoutPolicy

SHOW = "SELECT current_setting('statement_timeout')"


class Abandon(Exception):
    """The application gives up its unit of work."""


def _abandon(optimizer: Optimizer, *statements: tuple[str, float | None]) -> None:
    with optimizer.transaction() as tx:
        for sql, timeout in statements:
            tx.execute(sql, timeout=timeout)
        raise Abandon


async def _abandon_async(db: AsyncOptimizer, *statements: tuple[str, float | None]) -> None:
    async with db.transaction() as tx:
        for sql, timeout in statements:
            await tx.execute(sql, timeout=timeout)
        raise Abandon


def _settings(dsn: str) -> Settings:
    return Settings(dsn=dsn, timeout=TimeoutPolicy(statement=30.0), recorder=RecorderPolicy(enabled=False))


def test_a_limit_set_in_a_rolled_back_transaction_does_not_stay_remembered(dsn: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        optimizer.query("SELECT 1", timeout=0.01)  # committed: the session's limit is 10 ms now
        with pytest.raises(Abandon):
            _abandon(optimizer, ("SELECT 1", None))  # the default limit, set inside the transaction
        # The rollback put 10 ms back on the server; a default call must not run under it.
        assert optimizer.query(SHOW) == [("30s",)]
        optimizer.query("SELECT pg_sleep(0.05)")

        with pytest.raises(Abandon):
            _abandon(optimizer, ("SELECT 1", 0.01))
        assert optimizer.query(SHOW) == [("30s",)]
        with pytest.raises(QueryTimeout):
            optimizer.query("SELECT pg_sleep(0.5)", timeout=0.01)  # the 10 ms limit is really set again


def test_a_failed_statement_in_a_transaction_leaves_the_remembered_limit_true(dsn: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        optimizer.query("SELECT 1", timeout=0.01)
        with pytest.raises(QueryError):
            _abandon(optimizer, ("SELECT 1", None), ("SELECT 1 / 0", None))
        assert optimizer.query(SHOW) == [("30s",)]


def test_the_async_optimizer_keeps_it_true_too(dsn: str) -> None:
    async def body() -> None:
        async with AsyncOptimizer(settings=_settings(dsn), max_size=1) as db:
            await db.query("SELECT 1", timeout=0.01)
            with pytest.raises(Abandon):
                await _abandon_async(db, ("SELECT 1", None))
            assert await db.query(SHOW) == [("30s",)]
            with pytest.raises(QueryError):
                await _abandon_async(db, ("SELECT 1", 0.01), ("SELECT 1 / 0", None))
            assert await db.query(SHOW) == [("30s",)]
            with pytest.raises(QueryTimeout):
                await db.query("SELECT pg_sleep(0.5)", timeout=0.01)
            assert await db.query(SHOW) == [("30s",)]

    asyncio.run(body())
