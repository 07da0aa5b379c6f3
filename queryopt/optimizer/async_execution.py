"""Run one statement on an asyncio connection pool: the rules of :mod:`queryopt.optimizer.execution`, awaited.

- The server-side ``statement_timeout`` is a session setting of each pooled
  connection, changed only when a call asks for another limit (the same
  remembered attribute as the blocking executor).
- The client-side deadline is ``asyncio.timeout`` at the limit plus
  ``TimeoutPolicy.network_grace`` (a timer, not a task per call as
  ``asyncio.wait_for`` made): cancelling the awaiting task makes psycopg
  send a cancel request and wait (5 s at most) for the server to end the
  statement, else close the connection — so a stalled server never leaves a
  statement running unseen, and never hangs the caller.
- Calls run on leased connections with their cursors (:mod:`queryopt.optimizer.leases`).
- Retries follow the same rules (:class:`~queryopt.optimizer.execution.ExecutionRules`)
  through tenacity's ``AsyncRetrying``; the first attempt runs outside tenacity.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying

from queryopt.config import RetryPolicy, TimeoutPolicy
from queryopt.hints.effect import planner_settings_applied_async
from queryopt.optimizer.execution import (
    KEEP_RESULT_ROWS,
    SET_TIMEOUT_SQL,
    TIMEOUT_ATTRIBUTE,
    ExecutionRules,
    Params,
    Statement,
    _Stalled,
)
from queryopt.optimizer.leases import AsyncLeases
from queryopt.result import QueryResult, described_result

__all__ = ["AsyncConnection", "AsyncExecutor", "Deadlines", "ensure_statement_timeout_async"]

AsyncConnection = psycopg.AsyncConnection[tuple[Any, ...]]


async def ensure_statement_timeout_async(conn: AsyncConnection, milliseconds: int) -> bool:
    """:func:`~queryopt.execution.ensure_statement_timeout` on an asyncio connection."""
    if getattr(conn, TIMEOUT_ATTRIBUTE, None) == milliseconds:
        return False
    await conn.execute(SET_TIMEOUT_SQL, [f"{milliseconds}ms"])
    setattr(conn, TIMEOUT_ATTRIBUTE, milliseconds)
    return True


_current_task: Callable[[], asyncio.Task[Any] | None] = asyncio.current_task  # written in C from 3.12 on
if sys.version_info < (3, 12) and isinstance(getattr(asyncio.tasks, "_current_tasks", None), dict):
    _running_loop = asyncio.get_running_loop
    _tasks_of_loops = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]

    def _current_task_of_running_loop() -> asyncio.Task[Any] | None:
        """``asyncio.current_task()``, which Python 3.11 writes in Python around this very lookup (0.2 µs)."""
        return _tasks_of_loops(_running_loop())  # type: ignore[no-any-return]

    _current_task = _current_task_of_running_loop


class Deadlines:
    """Client-side deadlines of the calls in flight on one event loop, checked by one timer for all of them.

    What ``asyncio.timeout`` does per call (a timer scheduled and cancelled), done once per ``tick``: a
    call past its deadline gets its task cancelled (psycopg then asks the server to cancel the statement,
    or closes the connection), and :meth:`release` tells the call it was the deadline, not its caller.
    """

    def __init__(self, *, tick: float = 0.05) -> None:
        self._tick = tick
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._armed = False

    def watch(self, deadline: float) -> asyncio.Task[Any]:
        """Guard the current task until :meth:`release`; ``deadline`` is a ``time.perf_counter()`` reading."""
        task = _current_task()
        assert task is not None, "a call awaited outside a task"
        self._deadlines[task] = deadline
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_later(self._tick, self._check)
        return task

    def release(self, task: asyncio.Task[Any]) -> bool:
        """Stop guarding ``task``; True when its deadline cancelled it (and only that: the cancel is undone)."""
        self._deadlines.pop(task, None)
        if not self._expired or task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0  # still cancelled by someone else: their CancelledError goes on

    def _check(self) -> None:
        now = time.perf_counter()
        for task, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[task]
                self._expired.add(task)
                task.cancel()
        if self._deadlines:
            asyncio.get_running_loop().call_later(self._tick, self._check)
        else:
            self._armed = False


class AsyncExecutor(ExecutionRules):
    """Runs :class:`~queryopt.optimizer.execution.Statement` objects on a psycopg ``AsyncConnectionPool``."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection], *, timeouts: TimeoutPolicy, retry: RetryPolicy
    ) -> None:
        super().__init__(timeouts=timeouts, retry=retry)
        self.pool = pool
        self.leases = AsyncLeases(pool)
        self.deadlines = Deadlines()

    async def configure_connection(self, conn: AsyncConnection) -> None:
        """Pool ``configure`` hook: the default statement timeout, once per connection."""
        await ensure_statement_timeout_async(conn, self.default_timeout_ms)

    def run(
        self,
        statement: Statement,
        params: Params,
        limit_ms: int | None = None,
        attempts: int | None = None,
        started: float | None = None,
    ) -> Coroutine[Any, Any, QueryResult]:
        """Execute ``statement``, retrying transient failures up to ``attempts`` tries in all (default: the policy);
        ``limit_ms`` and ``started`` as in :meth:`queryopt.optimizer.execution.Executor.run`.

        Returns the first attempt's coroutine itself (to await): one coroutine fewer on every call.
        """
        limit = self.default_timeout_ms if limit_ms is None else limit_ms
        return self._attempt(statement, params, limit, time.perf_counter() if started is None else started, attempts)

    async def run_on(
        self, conn: AsyncConnection, statement: Statement, params: Params, *, limit_ms: int | None = None
    ) -> QueryResult:
        """Execute ``statement`` on a connection the caller holds (inside its transaction): no retries."""
        limit = self.limit(limit_ms)
        started = time.perf_counter()
        try:
            return await self._execute_on(conn, conn.cursor(), statement, params, limit, started, conn.info.encoding)
        except psycopg.Error as exc:
            raise self.translate(statement, exc, limit, started) from exc

    async def _attempt(
        self,
        statement: Statement,
        params: Params,
        limit: int,
        started: float,
        attempts: int | None,
        *,
        first: bool = True,
    ) -> QueryResult:
        """One try; the first one also decides, on failure, to retry (``attempts``) or raise queryopt's error."""
        leases = self.leases
        shelf = leases.shelf
        try:
            lease = shelf.take() or await leases.take()  # an idle lease costs no await
            conn = lease.conn
            cursor = lease.cursor
            try:
                if limit <= 0 or statement.planner_settings or getattr(conn, TIMEOUT_ATTRIBUTE, None) != limit:
                    result = await self._execute_on(conn, cursor, statement, params, limit, started, lease.encoding)
                else:  # the common call, inline: no coroutine of its own
                    deadlines = self.deadlines
                    task = deadlines.watch(started + limit / 1000 + self.timeouts.network_grace)
                    try:
                        await cursor.execute(statement.text, params)
                        described = cursor.pgresult
                        rows = tuple(await cursor.fetchall()) if described is not None and described.nfields else ()
                    except asyncio.CancelledError as exc:
                        if deadlines.release(task):
                            raise _Stalled("no answer from the server past the client deadline") from exc
                        raise
                    except BaseException:
                        deadlines.release(task)
                        raise
                    deadlines.release(task)
                    result = described_result(described, lease.encoding, rows, cursor.rowcount)
            except BaseException:
                await leases.give_back(lease, started, ok=False)  # a broken connection goes back, replaced
                raise
        except psycopg.Error as exc:
            if not first:
                raise  # the retry loop decides
            if self.should_retry(statement, exc, attempts):
                return await self._retry(statement, params, limit, exc, attempts)
            raise self.translate(statement, exc, limit, started) from exc
        if len(result.rows) > KEEP_RESULT_ROWS:
            lease.cursor = conn.cursor()  # the old one, and the large result it holds, are dropped
        if not shelf.keep(lease, started):
            await leases.give_back(lease, started)
        return result

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for a caller's own statements (a transaction): an idle leased one, else a pooled one."""
        return self.leases.connection()

    async def close(self) -> None:
        """Return the idle leased connections to the pool."""
        await self.leases.close()

    async def _execute_on(
        self,
        conn: AsyncConnection,
        cursor: psycopg.AsyncCursor[Any],
        statement: Statement,
        params: Params,
        limit: int,
        started: float,
        encoding: str,
    ) -> QueryResult:
        """Run on ``conn`` (whose Python ``encoding`` names the result's columns), its timeout set first."""
        if getattr(conn, TIMEOUT_ATTRIBUTE, None) != limit and await ensure_statement_timeout_async(conn, limit):
            self.count("timeout_changes")
        if limit <= 0:
            return await self._send(conn, cursor, statement, params, encoding)
        deadline = limit / 1000 + self.timeouts.network_grace - (time.perf_counter() - started)
        try:
            async with asyncio.timeout(max(deadline, 0.001)):
                return await self._send(conn, cursor, statement, params, encoding)
        except TimeoutError as exc:
            # The timeout cancelled the send: psycopg asked the server to cancel the statement (or closed the socket).
            raise _Stalled("no answer from the server past the client deadline") from exc

    @staticmethod
    async def _send(
        conn: AsyncConnection, cursor: psycopg.AsyncCursor[Any], statement: Statement, params: Params, encoding: str
    ) -> QueryResult:
        if statement.planner_settings:
            async with planner_settings_applied_async(conn, statement.planner_settings):
                await cursor.execute(statement.text, params)
                described = cursor.pgresult
                rows = await cursor.fetchall() if described is not None and described.nfields else []
        else:
            await cursor.execute(statement.text, params)
            described = cursor.pgresult
            rows = await cursor.fetchall() if described is not None and described.nfields else []
        return described_result(described, encoding, tuple(rows), cursor.rowcount)

    async def _retry(
        self, statement: Statement, params: Params, limit: int, first: psycopg.Error, attempts: int | None
    ) -> QueryResult:
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(**self.retrying_arguments(statement, first, attempts)):
                with attempt:
                    self.count_retry(attempt.retry_state.attempt_number)
                    started = time.perf_counter()
                    return await self._attempt(statement, params, limit, started, attempts, first=False)
        except psycopg.Error as exc:
            raise self.translate(statement, exc, limit, started) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
