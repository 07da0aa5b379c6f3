"""The optimizer: analysis, hints, cache, execution and observation around every query.

Everything that depends only on the SQL text and the hints asked for is decided
once per distinct text (:mod:`queryopt.optimizer.preparation`); a call then costs a
dictionary lookup plus the work that truly depends on its parameters.

Connections come from a psycopg pool in autocommit mode: one statement per
call, committed when it returns, so a write invalidates the cached results of
the tables it touched right after it succeeded. A call keeps its connection
leased for the next one (:mod:`queryopt.optimizer.leases`). :meth:`Optimizer.transaction`
groups statements; its writes invalidate only after it commits.

Session state does not survive between calls (a pooled connection serves
whichever call comes next), so ``SET``/``RESET`` outside a transaction are
refused: put settings in the connection string instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from psycopg_pool import ConnectionPool

from queryopt.cache import ResultCache
from queryopt.config import Settings
from queryopt.errors import QueryError, QueryRejected
from queryopt.hints import HintRules
from queryopt.optimizer.connecting import check_connection
from queryopt.optimizer.core import (
    CacheDecision,
    CallPlan,
    RowShape,
    cache_decision,
    cache_key,
    check_cache_scope,
    check_options,
    plan_call,
    plan_transaction_call,
    shape_rows,
)
from queryopt.optimizer.execution import (
    Connection,
    Executor,
    Params,
    TimeoutAfterRollback,
    pool_connection_kwargs,
)
from queryopt.optimizer.frontend import FrontEnd, Pending, Tables
from queryopt.optimizer.limits import Slot
from queryopt.optimizer.live_stats import QueryStats
from queryopt.optimizer.preparation import CallPreparer, IndexHints, PreparedCall
from queryopt.recorder import SlowQueryRecorder
from queryopt.result import QueryResult

__all__ = [
    "Optimizer",
    "Transaction",
    "configure",
    "default_optimizer",
    "metrics_summary",
    "optimize_query",
]


class Optimizer(FrontEnd):
    """Runs queries on a PostgreSQL database with hints, timeouts, retries, caching and recording.

    Give it a ``dsn`` (it then owns a pool) or a psycopg ``pool`` of your own. A ``cache`` may be
    shared between optimizers: keys carry the database, the role and the session's settings (those
    of the connection string, of a pool ``configure`` hook, and custom ones that row-level-security
    policies read), plus ``cache_scope`` when given, so results never cross roles or tenants.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Connection] | None = None,
        settings: Settings | None = None,
        cache: ResultCache | None = None,
        hint_rules: HintRules | None = None,
        cache_scope: Hashable = None,
        recorder: SlowQueryRecorder | None = None,
        query_stats: QueryStats | None = None,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        dsn = self._settle(dsn, settings, cache, has_pool=pool is not None)
        self._owns_pool = pool is None
        if pool is None:
            pool = ConnectionPool(dsn, **self._pool_options(min_size=min_size, max_size=max_size, name="queryopt"))
        self.pool = pool
        self._limit_to(pool.max_size)
        self.executor = Executor(pool, timeouts=self.settings.timeout, retry=self.settings.retry)
        check_cache_scope(cache_scope)
        self.preparer = CallPreparer(
            self.settings, connect=self.executor.connection, hint_rules=hint_rules, cache_scope=cache_scope
        )
        self._texts = self.preparer.texts
        self._cache_get = self.cache.get
        if self._owns_pool:
            check_connection(dsn, pool_connection_kwargs(self.settings))  # a bad DSN fails here, at once
            pool.open(wait=True, timeout=self.settings.timeout.connect)
        if self.preparer.identity is None:
            with pool.connection() as conn:
                self.preparer.learn(conn)
        self._observe_into(recorder, query_stats, str(pool.conninfo), source="optimize_query")

    def _configure_connection(self, conn: Connection) -> None:
        self.executor.configure_connection(conn)
        self.preparer.learn(conn)

    def prepare(self, sql: str, index_hints: IndexHints = None, *, has_params: bool = True) -> PreparedCall:
        """Analyse ``sql`` and validate its hints now, rather than on its first call."""
        return self.preparer.prepare(sql, index_hints, has_params=has_params)

    def cache_decision(self, sql: str, params: Params = None) -> CacheDecision:
        """Whether results of ``sql`` with ``params`` may be cached, and if not, why."""
        return cache_decision(self.preparer.prepare(sql, has_params=params is not None), params)

    # -- running -----------------------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        params: Params = None,
        *,
        use_cache: bool = False,
        ttl: float | None = None,
        timeout: float | None = None,
        index_hints: IndexHints = None,
        retries: int | None = None,
        cache_scope: Hashable = None,
    ) -> QueryResult:
        """Run one statement and return its :class:`~queryopt.result.QueryResult`.

        ``use_cache`` serves and stores cacheable reads (``ttl`` seconds, default from the policy);
        ``timeout`` (seconds) overrides the statement timeout for this call; ``retries`` the number
        of tries in all; ``index_hints`` names indexes (``["orders_customer_idx"]``), maps tables or
        aliases to indexes (``{"o": "orders_customer_idx"}``) or gives hint objects. ``cache_scope``
        (a string, number or tuple of them) is added to the cache key, for results that depend on
        something the session does not show (a tenant picked inside the statement).
        """
        call = self._texts.get(sql) if index_hints is None and params is not None else None
        if call is None:
            call = self.preparer.prepare(sql, index_hints, has_params=params is not None)
        if ttl is not None or timeout is not None or retries is not None:
            check_options(ttl, timeout, retries)
        if use_cache:
            if cache_scope is not None:
                check_cache_scope(cache_scope)
            key = cache_key(call, params, cache_scope)
            if key is not None:
                if self._telemetry is None:
                    if (hit := self._cache_get(key, call.version_keys)) is not None:
                        return hit
                else:  # telemetry on: a hit is timed and reported too
                    started = time.perf_counter()
                    if (hit := self._cache_get(key, call.version_keys)) is not None:
                        self._served(call, started)
                        return hit
        else:
            if cache_scope is not None:
                check_cache_scope(cache_scope)
            key = None
        plan = plan_call(self.cache, call, params, key, use_cache, ttl, timeout, retries)
        if key is None:
            return self._run(call, params, plan)
        return self._run_cached(call, params, plan, key)

    def _run_cached(self, call: PreparedCall, params: Params, plan: CallPlan, key: Hashable) -> QueryResult:
        """A cache miss: run and store, one run for concurrent identical misses. (Its own method: a closure in
        :meth:`execute` would turn the variables it captures into cells on every call, a hit's included.)"""
        return self.cache.get_or_execute(key, call.version_keys, lambda: self._run(call, params, plan), ttl=plan.ttl)

    def _run(self, call: PreparedCall, params: Params, plan: CallPlan, admitted: bool = False) -> QueryResult:
        """Run a planned call on a leased connection and observe it (in a slot of its fingerprint's limit,
        when limits are on, unless ``admitted`` already)."""
        if not admitted and self.limiter is not None:
            return self._run_limited(call, params, plan)
        started = time.perf_counter()
        try:
            result = self.executor.run(call.statement, params, plan.limit_ms, plan.attempts, started)
        except QueryError as exc:
            self._invalidate(self._run_failed(call, params, plan, started, exc, None))
            raise
        tables = self._run_finished(call, params, plan, started, result, None)
        if tables != ():
            self.cache.bump(self.preparer.scope, tables)
        return result

    def _run_in(self, tx: Transaction, call: PreparedCall, params: Params, plan: CallPlan) -> QueryResult:
        """Run a planned call inside ``tx``: its invalidations wait for the commit."""
        started = time.perf_counter()
        try:
            result = self.executor.run_on(tx.conn, call.statement, params, limit_ms=plan.limit_ms)
        except QueryError as exc:
            self._run_failed(call, params, plan, started, exc, tx.invalidations)
            raise
        self._run_finished(call, params, plan, started, result, tx.invalidations)
        return result

    def _run_limited(self, call: PreparedCall, params: Params, plan: CallPlan) -> QueryResult:
        """:meth:`_run` inside a slot of the call's fingerprint, taken before a connection is (a transaction,
        which holds its connection already, is not limited)."""
        limiter = self.limiter
        assert limiter is not None
        try:
            gate = limiter.acquire(call.analysis.fingerprint)
        except QueryRejected as exc:
            self._rejected(call, params, plan, exc)
            raise
        with Slot(limiter, gate):
            return self._run(call, params, plan, True)

    def _invalidate(self, tables: Tables) -> None:
        if tables != ():
            self.cache.bump(self.preparer.scope, tables)

    def query(
        self,
        sql: str,
        params: Params = None,
        *,
        rows: RowShape = "tuple",
        use_cache: bool = False,
        ttl: float | None = None,
        timeout: float | None = None,
        index_hints: IndexHints = None,
        retries: int | None = None,
        cache_scope: Hashable = None,
    ) -> list[tuple[Any, ...]] | list[dict[str, Any]]:
        """Like :meth:`execute`, returning the rows as a list of tuples, or of dicts with ``rows="dict"``."""
        result = self.execute(
            sql,
            params,
            use_cache=use_cache,
            ttl=ttl,
            timeout=timeout,
            index_hints=index_hints,
            retries=retries,
            cache_scope=cache_scope,
        )
        return list(result.rows) if rows == "tuple" else shape_rows(result, rows)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run several statements in one transaction; their writes invalidate the cache after the commit."""
        with self.executor.connection() as conn:  # an idle leased one, never one a call is using
            tx = Transaction(self, conn)
            with TimeoutAfterRollback(conn) as guard, conn.transaction():
                yield tx
                guard.body_ended = True
        for tables in tx.invalidations:
            self.cache.bump(self.preparer.scope, tables)

    def invalidate(self, table: str | None = None) -> None:
        """Drop cached results that read ``table`` in this database (all of them without a table)."""
        self.cache.bump(self.preparer.scope, None if table is None else [table])

    def stats(self) -> dict[str, int]:
        """Plain counters of the cache, the executor, the concurrency limits and the recorder."""
        return self._stats_with(self.executor.stats())

    def close(self) -> None:
        """Flush the recorder, stop the watchdog and the pin watcher, close the pool if this optimizer opened it."""
        self._stop_watching()
        if self._owns_recorder and self.recorder is not None:
            self.recorder.close()
        self.executor.close()
        if self._owns_pool:
            self.pool.close()

    def __enter__(self) -> Optimizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Transaction:
    """Statements sharing one transaction: no cache, no retries, hints and timeouts as usual."""

    def __init__(self, optimizer: Optimizer, conn: Connection) -> None:
        self._optimizer = optimizer
        self.conn = conn
        self.invalidations: Pending = []

    def execute(
        self, sql: str, params: Params = None, *, timeout: float | None = None, index_hints: IndexHints = None
    ) -> QueryResult:
        call = self._optimizer.preparer.prepare(sql, index_hints, has_params=params is not None)
        return self._optimizer._run_in(self, call, params, plan_transaction_call(call, params, timeout))

    def query(self, sql: str, params: Params = None, *, rows: RowShape = "tuple", **options: Any) -> list[Any]:
        return shape_rows(self.execute(sql, params, **options), rows)


# -- the module-level API ------------------------------------------------------------------------------

_default: Optimizer | None = None
_default_lock = threading.Lock()


def configure(dsn: str | None = None, **options: Any) -> Optimizer:
    """Create the optimizer that :func:`optimize_query` uses (replacing and closing any previous one)."""
    global _default
    optimizer = Optimizer(dsn, **options)
    with _default_lock:
        previous, _default = _default, optimizer
    if previous is not None:
        previous.close()
    return optimizer


def default_optimizer() -> Optimizer:
    """The optimizer :func:`optimize_query` uses, created from ``QUERYOPT_*`` settings on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Optimizer()
    return _default


def optimize_query(
    sql: str,
    params: Params = None,
    *,
    use_cache: bool = False,
    ttl: float | None = None,
    timeout: float | None = None,
    index_hints: IndexHints = None,
    retries: int | None = None,
    rows: RowShape = "tuple",
    cache_scope: Hashable = None,
) -> list[Any]:
    """Run one statement through the default optimizer and return its rows (see :meth:`Optimizer.execute`)."""
    optimizer = _default if _default is not None else default_optimizer()
    result = optimizer.execute(
        sql,
        params,
        use_cache=use_cache,
        ttl=ttl,
        timeout=timeout,
        index_hints=index_hints,
        retries=retries,
        cache_scope=cache_scope,
    )
    return list(result.rows) if rows == "tuple" else shape_rows(result, rows)


def metrics_summary() -> dict[str, dict[str, float]]:
    """Live per-fingerprint statistics of the default optimizer (see :meth:`Optimizer.metrics_summary`)."""
    return default_optimizer().metrics_summary()
