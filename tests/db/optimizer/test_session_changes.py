"""Every statement form that would change a pooled connection for the calls after it is refused.

The optimizers use a pool of one connection here, so a change that got through would
show in the very next call.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from queryopt import AsyncOptimizer, Optimizer, QueryError, RecorderPolicy, Settings

SESSION_FORMS = {
    "SET work_mem = '1GB'": "connection string",
    "SET SESSION search_path TO other": "connection string",
    "SET ROLE {role}": "SET LOCAL ROLE",
    "SET SESSION AUTHORIZATION {role}": "SET LOCAL SESSION AUTHORIZATION",
    "RESET work_mem": "nothing to reset",
    "DISCARD PLANS": "ON COMMIT DROP",
    "SELECT set_config('role', '{role}', false)": "set_config(name, value, true)",
    "SELECT set_config('app.tenant', 'b', false)": "set_config(name, value, true)",
    "SELECT 1 FROM (SELECT set_config('app.tenant', %s, false)) AS s": "set_config(name, value, true)",
}
STATE = "SELECT current_user, current_setting('app.tenant', true), current_setting('work_mem')"


@pytest.fixture
def role(conn: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"other_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _settings(dsn: str) -> Settings:
    return Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False))


def _params(statement: str) -> list[str] | None:
    return ["b"] if "%s" in statement else None


@pytest.mark.parametrize(("statement", "advice"), SESSION_FORMS.items(), ids=list(SESSION_FORMS))
def test_a_session_change_outside_a_transaction_is_refused(dsn: str, role: str, statement: str, advice: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        before = optimizer.query(STATE)
        with pytest.raises(QueryError, match="outside a transaction") as refused:
            optimizer.execute(statement.format(role=role), _params(statement))
        assert advice in str(refused.value)
        assert optimizer.query(STATE) == before


@pytest.mark.parametrize(("statement", "advice"), SESSION_FORMS.items(), ids=list(SESSION_FORMS))
def test_a_session_change_inside_a_transaction_is_refused(dsn: str, role: str, statement: str, advice: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        before = optimizer.query(STATE)
        with pytest.raises(QueryError, match="outlive") as refused, optimizer.transaction() as tx:
            tx.execute(statement.format(role=role), _params(statement))
        assert advice in str(refused.value)
        assert optimizer.query(STATE) == before


def test_transaction_local_changes_are_allowed_and_end_with_it(dsn: str, role: str) -> None:
    with Optimizer(settings=_settings(dsn), max_size=1) as optimizer:
        before = optimizer.query(STATE)
        with optimizer.transaction() as tx:
            tx.execute("SELECT set_config('app.tenant', 'b', true)")
            tx.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)).as_string(None))
            assert tx.query(STATE)[0][:2] == (role, "b")
        (user, tenant, work_mem) = optimizer.query(STATE)[0]
        assert (user, tenant or None, work_mem) == before[0]  # a custom setting once set reads '' after


def test_the_async_optimizer_refuses_them_too(dsn: str, role: str) -> None:
    async def body() -> None:
        async with AsyncOptimizer(settings=_settings(dsn), max_size=1) as db:
            before = await db.query(STATE)
            for statement, advice in SESSION_FORMS.items():
                with pytest.raises(QueryError, match="outside a transaction") as refused:
                    await db.execute(statement.format(role=role), _params(statement))
                assert advice in str(refused.value)
                with pytest.raises(QueryError, match="outlive"):
                    async with db.transaction() as tx:
                        await tx.execute(statement.format(role=role), _params(statement))
            assert await db.query(STATE) == before

    asyncio.run(body())
