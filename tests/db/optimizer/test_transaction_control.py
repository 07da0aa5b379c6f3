"""Transaction control sent as calls: refused, because pooled calls commit on their own.

A user who sends ``BEGIN``, an insert and ``ROLLBACK`` through ``execute`` expects
the insert undone; on pooled autocommit connections it would stay committed. The
optimizers refuse the control statements and say to use ``transaction()``, and
inside one they refuse what would end it under its feet.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from queryopt import AsyncOptimizer, Optimizer, QueryError, RecorderPolicy, Settings

OUTSIDE = {
    "BEGIN": "optimizer.transaction()",
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE": "optimizer.transaction()",
    "COMMIT": "already committed",
    "ROLLBACK": "already committed",
    "END": "already committed",
    "SAVEPOINT before_insert": "inside Optimizer.transaction()",
    "ROLLBACK TO SAVEPOINT before_insert": "inside Optimizer.transaction()",
    "SET LOCAL work_mem = '64MB'": "inside Optimizer.transaction()",
    "LISTEN orders_changed": "connection of your own",
}
INSIDE_REFUSED = ["COMMIT", "ROLLBACK", "BEGIN", "PREPARE TRANSACTION 'x'", "LISTEN orders_changed"]


def _settings(dsn: str) -> Settings:
    return Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False))


@pytest.fixture
def table(conn: psycopg.Connection[Any]) -> str:
    conn.execute("CREATE TABLE ledger (id int PRIMARY KEY)")
    return "ledger"


def test_begin_insert_rollback_as_calls_is_refused_before_anything_is_written(dsn: str, table: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        with pytest.raises(QueryError, match=r"BEGIN outside a transaction .*optimizer\.transaction\(\)"):
            optimizer.execute("BEGIN")
        with pytest.raises(QueryError, match="COMMIT/ROLLBACK outside a transaction"):
            optimizer.execute("ROLLBACK")
        with optimizer.transaction() as tx:  # what the user meant
            tx.execute("INSERT INTO ledger VALUES (1)")
            tx.execute("SAVEPOINT s")
            tx.execute("INSERT INTO ledger VALUES (2)")
            tx.execute("ROLLBACK TO SAVEPOINT s")
            tx.execute("SET LOCAL work_mem = '64MB'")
        assert optimizer.query("SELECT id FROM ledger") == [(1,)]


@pytest.mark.parametrize(("statement", "advice"), OUTSIDE.items(), ids=list(OUTSIDE))
def test_transaction_control_outside_a_transaction_is_refused(dsn: str, statement: str, advice: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        with pytest.raises(QueryError, match="outside a transaction") as refused:
            optimizer.execute(statement)
        assert advice in str(refused.value)
        # The pooled connection is as it was: idle, not left inside a transaction.
        assert optimizer.query("SELECT now() = statement_timestamp()") == [(True,)]


@pytest.mark.parametrize("statement", INSIDE_REFUSED)
def test_what_would_end_or_outlive_a_transaction_is_refused_inside_it(dsn: str, table: str, statement: str) -> None:
    def insert_then(optimizer: Optimizer) -> None:
        with optimizer.transaction() as tx:
            tx.execute("INSERT INTO ledger VALUES (7)")
            tx.execute(statement)

    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        with pytest.raises(QueryError, match="instead"):
            insert_then(optimizer)
        assert optimizer.query("SELECT count(*) FROM ledger") == [(0,)]  # the block rolled back on the error


def test_the_async_optimizer_refuses_the_same(dsn: str, table: str) -> None:
    async def insert_then_commit(optimizer: AsyncOptimizer) -> None:
        async with optimizer.transaction() as tx:
            await tx.execute("INSERT INTO ledger VALUES (1)")
            await tx.execute("COMMIT")

    async def main() -> None:
        async with AsyncOptimizer(settings=_settings(dsn), max_size=1, analysis_processes=0) as optimizer:
            with pytest.raises(QueryError, match="BEGIN outside a transaction"):
                await optimizer.execute("BEGIN")
            with pytest.raises(QueryError, match="would end the transaction"):
                await insert_then_commit(optimizer)
            assert await optimizer.query("SELECT count(*) FROM ledger") == [(0,)]

    asyncio.run(main())
