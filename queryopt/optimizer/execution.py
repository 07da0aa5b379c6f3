"""Run one statement on a pooled connection: server-side timeouts, a client-side
deadline for silent stalls, and retries of transient failures.

- The statement timeout is a *session* setting of each pooled connection, set
  when the connection is made and changed only when a call asks for a different
  limit (a ``SET LOCAL`` per query would cost a transaction per query). The
  server cancels a statement that runs too long, so it stops using the database.
- A :class:`Watchdog` thread guards against a network that stops answering:
  past the limit plus ``TimeoutPolicy.network_grace`` it sends a cancel request
  and then shuts the socket down, so the caller gets an error instead of a hang.
- Serialization failures and deadlocks (the statement was rolled back) are
  retried with exponential backoff and jitter; a lost connection is retried only
  for read-only statements, because a write's outcome is then unknown. The first
  attempt runs outside tenacity, so success costs nothing extra.

:class:`ExecutionRules` holds what does not depend on blocking or awaiting (the
limits, which failures are retried and how, the translation into queryopt's
errors, the counters); :class:`Executor` and
:class:`~queryopt.optimizer.async_execution.AsyncExecutor` only move bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from queryopt.config import RetryPolicy, Settings, TimeoutPolicy
from queryopt.errors import QueryError, QueryTimeout
from queryopt.hints import planner_settings_applied
from queryopt.optimizer.leases import Leases
from queryopt.result import QueryResult, described_result

__all__ = [
    "RETRIES",
    "ExecutionRules",
    "Executor",
    "Statement",
    "TimeoutAfterRollback",
    "Watchdog",
    "assume_statement_timeout",
    "ensure_statement_timeout",
    "known_statement_timeout",
    "take_retries",
    "timeout_ms",
]

logger = logging.getLogger("queryopt")

Params = Sequence[Any] | Mapping[str, Any] | None
Connection = psycopg.Connection[tuple[Any, ...]]

TIMEOUT_ATTRIBUTE: Final = "_queryopt_statement_timeout_ms"
"""The connection attribute remembering the statement_timeout queryopt last set on it."""
SET_TIMEOUT_SQL: Final = "SELECT set_config('statement_timeout', %s, false)"
_CONNECTION_LOST_STATES: Final = frozenset({"57P01", "57P02", "57P03"})
KEEP_RESULT_ROWS: Final = 1000
"""A leased cursor that fetched more rows than this is replaced, so an idle lease holds no large result."""
_RETRY_ANY_STATEMENT: Final = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

RETRIES: Final[ContextVar[int]] = ContextVar("queryopt_retries", default=0)
"""Tries after the first of the last call in this thread or task that needed any: set only by a retry (never
on the hot path), read and reset by :func:`take_retries` after a call whose outcome is reported."""


def take_retries() -> int:
    """The tries after the first of the call that just ended here (0 when it needed none), and forget them."""
    retries = RETRIES.get()
    if retries:
        RETRIES.set(0)
    return retries


def ensure_statement_timeout(conn: Connection, milliseconds: int) -> bool:
    """Give ``conn`` this session ``statement_timeout`` unless it already has it; True when it changed.

    The value last set through queryopt is remembered on the connection, so an unchanged limit costs
    no round trip.
    """
    if getattr(conn, TIMEOUT_ATTRIBUTE, None) == milliseconds:
        return False
    conn.execute(SET_TIMEOUT_SQL, [f"{milliseconds}ms"])
    setattr(conn, TIMEOUT_ATTRIBUTE, milliseconds)
    return True


def known_statement_timeout(conn: object) -> int | None:
    """The session ``statement_timeout`` (ms) queryopt last set on ``conn``; ``None`` when unknown."""
    value: int | None = getattr(conn, TIMEOUT_ATTRIBUTE, None)
    return value


def assume_statement_timeout(conn: object, milliseconds: int | None) -> None:
    """Record what ``conn``'s session ``statement_timeout`` is now (``None``: unknown, set it again next time).

    For a caller that knows the server changed it, e.g. a rollback undoing a ``set_config`` made in its transaction.
    """
    setattr(conn, TIMEOUT_ATTRIBUTE, milliseconds)


class TimeoutAfterRollback:
    """Around a transaction on ``conn``: when it does not commit, the rollback puts back the session's
    ``statement_timeout`` from before it, so the remembered one must be put back too.

    Set ``body_ended`` after the transaction's body: a quiet ``psycopg.Rollback`` skips that line.
    """

    def __init__(self, conn: object) -> None:
        self.conn = conn
        self.before = known_statement_timeout(conn)
        self.body_ended = False

    def __enter__(self) -> TimeoutAfterRollback:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None or not self.body_ended:
            assume_statement_timeout(self.conn, self.before)


def pool_connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection options of the pools queryopt opens itself: autocommit (one statement per call),
    its application name, the connect timeout."""
    return {
        "autocommit": True,
        "application_name": settings.application_name,
        "connect_timeout": max(1, round(settings.timeout.connect)),
    }


def timeout_ms(seconds: float | None) -> int:
    """``statement_timeout`` in milliseconds; 0 means no limit."""
    return 0 if seconds is None else max(1, round(seconds * 1000))


@dataclass(frozen=True, slots=True)
class Statement:
    """What the executor sends: the final text and what decides how it may be retried."""

    text: str
    """Exactly what reaches the server (hint block included)."""
    fingerprint: str
    read_only: bool
    """Safe to re-run after a lost connection."""
    planner_settings: tuple[tuple[str, str], ...] = ()
    """Transaction-local settings (``enable_seqscan=off``…) applied around the statement."""


class Watchdog:
    """Cancels statements whose connection stopped answering past their client-side deadline."""

    def __init__(self, *, tick: float = 0.1, cancel_timeout: float = 2.0) -> None:
        self._tick = tick
        self._cancel_timeout = cancel_timeout
        self._deadlines: dict[Connection, float] = {}
        self._stalled: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def watch(self, conn: Connection, deadline: float) -> None:
        """Guard ``conn`` until :meth:`release`; ``deadline`` is a ``time.perf_counter()`` reading."""
        self._deadlines[conn] = deadline
        if self._thread is None:
            self._start()

    def release(self, conn: Connection) -> bool:
        """Stop guarding ``conn``; True when the watchdog had to intervene."""
        self._deadlines.pop(conn, None)
        if not self._stalled:
            return False
        with self._lock:
            if conn in self._stalled:
                self._stalled.discard(conn)
                return True
        return False

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="queryopt-watchdog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.perf_counter()
            for conn, deadline in list(self._deadlines.items()):
                if deadline <= now and self._deadlines.get(conn) == deadline:
                    self._intervene(conn)

    def _intervene(self, conn: Connection) -> None:
        with self._lock:
            self._stalled.add(conn)
        logger.warning("queryopt: no answer from the server past the client deadline; cancelling the statement")
        with contextlib.suppress(Exception):
            conn.cancel_safe(timeout=self._cancel_timeout)
        if conn in self._deadlines:
            # The cancel did not get through: cut the connection so the blocked call returns.
            with contextlib.suppress(OSError, psycopg.Error):
                sock = socket.socket(fileno=os.dup(conn.fileno()))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()
            self._deadlines.pop(conn, None)


def _connection_lost(exc: BaseException) -> bool:
    if not isinstance(exc, psycopg.OperationalError) or isinstance(exc, (pg_errors.QueryCanceled, _Stalled)):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _CONNECTION_LOST_STATES


class ExecutionRules:
    """What the blocking and the asyncio executors share: limits, retry decisions, errors, counters."""

    def __init__(self, *, timeouts: TimeoutPolicy, retry: RetryPolicy) -> None:
        self.timeouts = timeouts
        self.retry = retry
        self.default_timeout_ms = timeout_ms(timeouts.statement)
        self._counters = {"retries": 0, "timeouts": 0, "stalls": 0, "errors": 0, "timeout_changes": 0}

    def limit(self, limit_ms: int | None) -> int:
        """The statement_timeout of one call, in milliseconds (0: none)."""
        return self.default_timeout_ms if limit_ms is None else limit_ms

    def should_retry(self, statement: Statement, exc: BaseException, attempts: int | None) -> bool:
        """Whether a first attempt's failure is worth more attempts."""
        tries = self.retry.attempts if attempts is None else attempts
        return tries > 1 and self.retryable(statement, exc)

    def retryable(self, statement: Statement, exc: BaseException) -> bool:
        """Serialization failures and deadlocks always; a lost connection only for reads."""
        if isinstance(exc, _RETRY_ANY_STATEMENT):
            return True
        return statement.read_only and self.retry.retry_reads_on_disconnect and _connection_lost(exc)

    def retrying_arguments(self, statement: Statement, first: BaseException, attempts: int | None) -> dict[str, Any]:
        """Keyword arguments for tenacity's ``Retrying`` or ``AsyncRetrying``: the attempts after the first."""
        policy = self.retry
        tries = policy.attempts if attempts is None else attempts
        logger.info("queryopt: retrying %s after %s", statement.fingerprint, type(first).__name__)
        return {
            "stop": stop_after_attempt(tries - 1),
            "wait": wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
            + wait_random(0, policy.jitter),
            "retry": retry_if_exception(lambda exc: self.retryable(statement, exc)),
            "reraise": True,
        }

    def count(self, name: str) -> None:
        self._counters[name] += 1

    def count_retry(self, retries: int) -> None:
        """One more try of a call, its ``retries``-th after the first (told to :data:`RETRIES` as well)."""
        self._counters["retries"] += 1
        RETRIES.set(retries)

    def translate(
        self, statement: Statement, exc: psycopg.Error, limit: int, started: float, *, stalled: bool = False
    ) -> QueryError:
        """queryopt's error for a driver error: :class:`QueryTimeout` for a cancelled statement."""
        elapsed = time.perf_counter() - started
        sql = statement.text
        stalled = stalled or isinstance(exc, _Stalled)
        if stalled or isinstance(exc, pg_errors.QueryCanceled):
            self._counters["stalls" if stalled else "timeouts"] += 1
            why = (
                "the server stopped answering; the client cancelled it"
                if stalled
                else "cancelled by the server's statement_timeout"
            )
            return QueryTimeout(
                f"query {statement.fingerprint} exceeded its {limit / 1000:g}s limit after {elapsed:.3f}s ({why})",
                sql=sql,
                fingerprint=statement.fingerprint,
                limit=limit / 1000,
                elapsed=elapsed,
            )
        self._counters["errors"] += 1
        state = exc.sqlstate
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _connection_lost(exc) and not statement.read_only:
            message += " (connection lost during a write: it may or may not have been applied; not retried)"
        prefix = f"[{state}] " if state else ""
        return QueryError(f"{prefix}{message}", sql=sql, fingerprint=statement.fingerprint, sqlstate=state)

    def stats(self) -> dict[str, int]:
        """retries, timeouts, stalls, errors, timeout_changes."""
        return dict(self._counters)


class Executor(ExecutionRules):
    """Runs :class:`Statement` objects on a psycopg pool with timeouts and retries.

    Calls run on leased connections (:mod:`queryopt.optimizer.leases`): kept out of the pool between
    calls with their cursor, returned when idle, when the pool has waiting clients, and on :meth:`close`.
    """

    def __init__(
        self,
        pool: ConnectionPool[Connection],
        *,
        timeouts: TimeoutPolicy,
        retry: RetryPolicy,
        watchdog: Watchdog | None = None,
    ) -> None:
        super().__init__(timeouts=timeouts, retry=retry)
        self.pool = pool
        self.watchdog = watchdog or Watchdog()
        self.leases = Leases(pool)

    def configure_connection(self, conn: Connection) -> None:
        """Pool ``configure`` hook: give a new connection the default statement timeout, once."""
        ensure_statement_timeout(conn, self.default_timeout_ms)

    def run(
        self,
        statement: Statement,
        params: Params,
        limit_ms: int | None = None,
        attempts: int | None = None,
        started: float | None = None,
    ) -> QueryResult:
        """Execute ``statement``, retrying transient failures up to ``attempts`` tries in all (default: the policy).

        ``limit_ms`` is the statement timeout (default: the policy's); ``started``, the caller's
        ``time.perf_counter()`` reading when the call began (default: now) from which the deadline runs."""
        limit = self.default_timeout_ms if limit_ms is None else limit_ms
        if started is None:
            started = time.perf_counter()
        try:
            return self._attempt(statement, params, limit, started)
        except psycopg.Error as exc:
            if self.should_retry(statement, exc, attempts):
                return self._retry(statement, params, limit, exc, attempts)
            raise self.translate(statement, exc, limit, started) from exc

    def _attempt(self, statement: Statement, params: Params, limit: int, started: float) -> QueryResult:
        leases = self.leases
        shelf = leases.shelf
        lease = shelf.take() or leases.new()
        conn = lease.conn
        cursor = lease.cursor
        try:
            if limit <= 0 or statement.planner_settings or getattr(conn, TIMEOUT_ATTRIBUTE, None) != limit:
                result = self._execute_on(conn, cursor, statement, params, limit, started, lease.encoding)
            else:  # the common call, inline: no frame of its own
                watchdog = self.watchdog
                watchdog.watch(conn, started + limit / 1000 + self.timeouts.network_grace)
                try:
                    cursor.execute(statement.text, params)
                    described = cursor.pgresult
                    rows = cursor.fetchall() if described is not None and described.nfields else []
                except psycopg.Error as exc:
                    if watchdog.release(conn):
                        raise _Stalled(str(exc)) from exc
                    raise
                watchdog.release(conn)
                result = described_result(described, lease.encoding, tuple(rows), cursor.rowcount)
        except BaseException:
            leases.give_back(lease, started, ok=False)  # a broken connection goes back to the pool, replaced
            raise
        if len(result.rows) > KEEP_RESULT_ROWS:
            lease.cursor = conn.cursor()  # the old one, and the large result it holds, are dropped
        if not shelf.keep(lease, started):
            leases.release(lease)
        return result

    def connection(self) -> AbstractContextManager[Connection]:
        """A connection for a caller's own statements (a transaction, catalog look-ups): idle leased, else pooled."""
        return self.leases.connection()

    def run_on(
        self, conn: Connection, statement: Statement, params: Params, *, limit_ms: int | None = None
    ) -> QueryResult:
        """Execute ``statement`` on a connection the caller holds (inside its transaction): no retries."""
        limit = self.default_timeout_ms if limit_ms is None else limit_ms
        started = time.perf_counter()
        try:
            return self._execute_on(conn, conn.cursor(), statement, params, limit, started, conn.info.encoding)
        except psycopg.Error as exc:
            raise self.translate(statement, exc, limit, started) from exc

    def _execute_on(
        self,
        conn: Connection,
        cursor: psycopg.Cursor[Any],
        statement: Statement,
        params: Params,
        limit: int,
        started: float,
        encoding: str,
    ) -> QueryResult:
        """Run on ``conn`` (whose Python ``encoding`` names the result's columns), its timeout set first."""
        if getattr(conn, TIMEOUT_ATTRIBUTE, None) != limit and ensure_statement_timeout(conn, limit):
            self._counters["timeout_changes"] += 1
        guarded = limit > 0
        if guarded:
            self.watchdog.watch(conn, started + limit / 1000 + self.timeouts.network_grace)
        try:
            if statement.planner_settings:
                with planner_settings_applied(conn, statement.planner_settings):
                    cursor.execute(statement.text, params)
                    described = cursor.pgresult
                    rows = cursor.fetchall() if described is not None and described.nfields else []
            else:
                cursor.execute(statement.text, params)
                described = cursor.pgresult
                rows = cursor.fetchall() if described is not None and described.nfields else []
        except psycopg.Error as exc:
            if guarded and self.watchdog.release(conn):
                raise _Stalled(str(exc)) from exc
            raise
        if guarded:
            self.watchdog.release(conn)
        return described_result(described, encoding, tuple(rows), cursor.rowcount)

    def close(self) -> None:
        """Return the idle leased connections to the pool and stop the watchdog."""
        self.leases.close()
        self.watchdog.close()

    def _retry(
        self, statement: Statement, params: Params, limit: int, first: psycopg.Error, attempts: int | None
    ) -> QueryResult:
        started = time.perf_counter()
        try:
            for attempt in Retrying(**self.retrying_arguments(statement, first, attempts)):
                with attempt:
                    self.count_retry(attempt.retry_state.attempt_number)
                    started = time.perf_counter()
                    return self._attempt(statement, params, limit, started)
        except psycopg.Error as exc:
            raise self.translate(statement, exc, limit, started) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


class _Stalled(psycopg.OperationalError):
    """The watchdog had to cut a connection that stopped answering."""
