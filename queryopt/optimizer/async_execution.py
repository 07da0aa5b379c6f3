"""Run one statement on an asyncio connection pool: the rules of :mod:`queryopt.optimizer.execution`, awaited.

- The server-side ``statement_timeout`` is a session setting of each pooled
  connection, changed only when a call asks for another limit (the same
  remembered attribute as the blocking executor).
- The client-side deadline is ``asyncio.wait_for`` at the limit plus
  ``TimeoutPolicy.network_grace``: cancelling the awaiting task makes psycopg
  send a cancel request and wait (5 s at most) for the server to end the
  statement, else close the connection — so a stalled server never leaves a
  statement running unseen, and never hangs the caller.
- Retries follow the same rules (:class:`~queryopt.optimizer.execution.ExecutionRules`)
  through tenacity's ``AsyncRetrying``; the first attempt runs outside tenacity.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying

from queryopt.config import RetryPolicy, TimeoutPolicy
from queryopt.hints.effect import planner_settings_applied_async
from queryopt.optimizer.execution import (
    SET_TIMEOUT_SQL,
    TIMEOUT_ATTRIBUTE,
    ExecutionRules,
    Params,
    Statement,
    _Stalled,
    column_names,
)
from queryopt.result import QueryResult

__all__ = ["AsyncConnection", "AsyncExecutor", "ensure_statement_timeout_async"]

AsyncConnection = psycopg.AsyncConnection[tuple[Any, ...]]


async def ensure_statement_timeout_async(conn: AsyncConnection, milliseconds: int) -> bool:
    """:func:`~queryopt.execution.ensure_statement_timeout` on an asyncio connection."""
    if getattr(conn, TIMEOUT_ATTRIBUTE, None) == milliseconds:
        return False
    await conn.execute(SET_TIMEOUT_SQL, [f"{milliseconds}ms"])
    setattr(conn, TIMEOUT_ATTRIBUTE, milliseconds)
    return True


class AsyncExecutor(ExecutionRules):
    """Runs :class:`~queryopt.optimizer.execution.Statement` objects on a psycopg ``AsyncConnectionPool``."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection], *, timeouts: TimeoutPolicy, retry: RetryPolicy
    ) -> None:
        super().__init__(timeouts=timeouts, retry=retry)
        self.pool = pool

    async def configure_connection(self, conn: AsyncConnection) -> None:
        """Pool ``configure`` hook: the default statement timeout, once per connection."""
        await ensure_statement_timeout_async(conn, self.default_timeout_ms)

    async def run(
        self, statement: Statement, params: Params, *, limit_ms: int | None = None, attempts: int | None = None
    ) -> QueryResult:
        """Execute ``statement``, retrying transient failures up to ``attempts`` tries in all (default: the policy)."""
        limit = self.limit(limit_ms)
        started = time.perf_counter()
        try:
            return await self._attempt(statement, params, limit, started)
        except psycopg.Error as exc:
            if self.should_retry(statement, exc, attempts):
                return await self._retry(statement, params, limit, exc, attempts)
            raise self.translate(statement, exc, limit, started) from exc

    async def run_on(
        self, conn: AsyncConnection, statement: Statement, params: Params, *, limit_ms: int | None = None
    ) -> QueryResult:
        """Execute ``statement`` on a connection the caller holds (inside its transaction): no retries."""
        limit = self.limit(limit_ms)
        started = time.perf_counter()
        try:
            return await self._execute_on(conn, statement, params, limit, started)
        except psycopg.Error as exc:
            raise self.translate(statement, exc, limit, started) from exc

    async def _attempt(self, statement: Statement, params: Params, limit: int, started: float) -> QueryResult:
        async with self.pool.connection() as conn:
            return await self._execute_on(conn, statement, params, limit, started)

    async def _execute_on(
        self, conn: AsyncConnection, statement: Statement, params: Params, limit: int, started: float
    ) -> QueryResult:
        if getattr(conn, TIMEOUT_ATTRIBUTE, None) != limit and await ensure_statement_timeout_async(conn, limit):
            self.count("timeout_changes")
        if limit <= 0:
            return await self._send(conn, statement, params)
        deadline = limit / 1000 + self.timeouts.network_grace - (time.perf_counter() - started)
        try:
            return await asyncio.wait_for(self._send(conn, statement, params), max(deadline, 0.001))
        except TimeoutError as exc:
            # wait_for cancelled the send: psycopg asked the server to cancel the statement (or closed the socket).
            raise _Stalled("no answer from the server past the client deadline") from exc

    @staticmethod
    async def _send(conn: AsyncConnection, statement: Statement, params: Params) -> QueryResult:
        if statement.planner_settings:
            async with planner_settings_applied_async(conn, statement.planner_settings):
                cursor = await conn.execute(statement.text, params)
                columns = column_names(cursor.pgresult, conn)
                rows = await cursor.fetchall() if columns else []
        else:
            cursor = await conn.execute(statement.text, params)
            columns = column_names(cursor.pgresult, conn)
            rows = await cursor.fetchall() if columns else []
        return QueryResult(columns, tuple(rows), cursor.rowcount)

    async def _retry(
        self, statement: Statement, params: Params, limit: int, first: psycopg.Error, attempts: int | None
    ) -> QueryResult:
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(**self.retrying_arguments(statement, first, attempts)):
                with attempt:
                    self.count("retries")
                    started = time.perf_counter()
                    return await self._attempt(statement, params, limit, started)
        except psycopg.Error as exc:
            raise self.translate(statement, exc, limit, started) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
