"""The optimizer for asyncio applications: the same policies as :class:`~queryopt.Optimizer`, awaited.

::

    async with AsyncOptimizer("dbname=shop") as db:
        rows = await db.query("SELECT * FROM orders WHERE id = %s", [42], use_cache=True)

Connections come from psycopg's ``AsyncConnectionPool`` (autocommit, one
statement per call). What is shared with the blocking optimizer, and not
written twice: :class:`~queryopt.optimizer.preparation.CallPreparer` (analysis, hints,
cache keys and invalidations), :class:`~queryopt.cache.policy.ResultCache` (whose
``aget_or_execute`` makes concurrent identical misses of one event loop await a
single run, and across processes with a shared backend),
:class:`~queryopt.optimizer.execution.ExecutionRules` (timeouts, retries, errors) and
:class:`~queryopt.optimizer.observation.CallObserver` (statistics and the slow-query
recorder, whose ``submit`` never blocks).

**The event loop never runs analysis.** Analysing a new SQL text costs from
~0.4 ms (a primary-key lookup) to tens of ms (a long analytic query) of CPU.
A worker *thread* does not help: sqlglot's compiled parser (sqlglotc, mypyc)
holds the GIL for the whole analysis, so the loop stalled as long with
``asyncio.to_thread`` as without (``benchmarks/async_prepare``). So analysis runs
in a worker *process* (``analysis_processes``, 1 by default, started in the
background when the optimizer opens; 0 analyses in a thread instead), and
catalog look-ups for hints (blocking I/O) in a thread with a blocking connection
of its own. A text prepared once is served from a dictionary, in the loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time
import weakref
from collections.abc import AsyncIterator, Coroutine, Hashable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from queryopt.analysis import Analysis, analyze, analyze_uncached
from queryopt.cache import ResultCache
from queryopt.config import Settings
from queryopt.errors import ConfigurationError, QueryError, QueryRejected
from queryopt.hints import HintRules
from queryopt.hints.effect import HINT_PLAN_ACTIVE_SQL
from queryopt.optimizer.async_execution import AsyncConnection, AsyncExecutor
from queryopt.optimizer.connecting import check_connection_async
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
    Params,
    TimeoutAfterRollback,
    pool_connection_kwargs,
)
from queryopt.optimizer.frontend import FrontEnd, Pending, Tables
from queryopt.optimizer.limits import Slot
from queryopt.optimizer.live_stats import QueryStats
from queryopt.optimizer.preparation import (
    CUSTOM_SETTINGS_SQL,
    IDENTIFY_SQL,
    POLICY_SETTINGS_SQL,
    VIEW_SOURCES_SQL,
    CallPreparer,
    IndexHints,
    PreparedCall,
    SessionIdentity,
    custom_setting_names,
    freeze_hints,
    identity_from_row,
    view_sources,
    with_custom_settings,
)
from queryopt.recorder import SlowQueryRecorder
from queryopt.result import QueryResult

logger = logging.getLogger("queryopt")

__all__ = ["AsyncOptimizer", "AsyncTransaction", "configure_async", "optimize_query_async"]

_NOT_CONNINFO = frozenset({"autocommit", "prepare_threshold", "row_factory", "cursor_factory", "context"})


class _CatalogConnection:
    """One blocking connection, opened on first need, lent to preparation in its worker thread."""

    def __init__(self, conninfo: str, settings: Settings) -> None:
        self._conninfo = conninfo
        self._settings = settings
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                conn = self._conn = psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name=self._settings.application_name,
                    connect_timeout=max(1, round(self._settings.timeout.connect)),
                )
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class AsyncOptimizer(FrontEnd):
    """Runs queries from asyncio code with hints, timeouts, retries, caching and recording.

    Give it a ``dsn`` (it then owns an ``AsyncConnectionPool``) or a ``pool`` of your own.
    It opens on first use, or explicitly with ``await optimizer.open()`` / ``async with``.
    A ``cache`` with a shared backend (``ResultCache(backend=RedisBackend(…))``) shares
    results and invalidations with every other process; close it yourself
    (``await cache.aclose()``) when the loop that used it ends.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: AsyncConnectionPool[AsyncConnection] | None = None,
        settings: Settings | None = None,
        cache: ResultCache | None = None,
        hint_rules: HintRules | None = None,
        cache_scope: Hashable = None,
        recorder: SlowQueryRecorder | None = None,
        query_stats: QueryStats | None = None,
        min_size: int = 1,
        max_size: int = 10,
        analysis_processes: int = 1,
    ) -> None:
        if isinstance(analysis_processes, bool) or not isinstance(analysis_processes, int) or analysis_processes < 0:
            raise ConfigurationError(
                f"analysis_processes must be a whole number >= 0, got {analysis_processes!r}",
                setting="analysis_processes",
            )
        self.analysis_processes = analysis_processes
        self._analysts: ProcessPoolExecutor | None = None
        dsn = self._settle(dsn, settings, cache, has_pool=pool is not None)
        self._dsn = dsn
        self._owns_pool = pool is None
        if pool is None:
            options = self._pool_options(min_size=min_size, max_size=max_size, name="queryopt-async")
            pool = AsyncConnectionPool(dsn, **options)
        self.pool = pool
        self._limit_to(pool.max_size)
        self.executor = AsyncExecutor(pool, timeouts=self.settings.timeout, retry=self.settings.retry)
        # Where preparation's worker thread and the recorder connect (a pool's conninfo may be a callable).
        kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
        extra = {key: value for key, value in kwargs.items() if key not in _NOT_CONNINFO}
        conninfo = make_conninfo(pool.conninfo if isinstance(pool.conninfo, str) else dsn, **extra)
        self._catalog = _CatalogConnection(conninfo, self.settings)
        check_cache_scope(cache_scope)
        self.preparer = CallPreparer(
            self.settings, connect=self._catalog.connection, hint_rules=hint_rules, cache_scope=cache_scope
        )
        self._calls = self.preparer.calls
        self._texts = self.preparer.texts
        self._observe_into(recorder, query_stats, conninfo, source="optimize_query_async")
        self._opened = False
        self._open_lock: asyncio.Lock | None = None

    # -- life cycle --------------------------------------------------------------------------------------

    async def open(self) -> AsyncOptimizer:
        """Open the pool (if this optimizer made it) and learn which database it serves."""
        if self._opened:
            return self
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if not self._opened:
                if self._owns_pool:
                    # A bad DSN fails here, at once, with libpq's reason (the pool would retry until its timeout).
                    await check_connection_async(self._dsn, pool_connection_kwargs(self.settings))
                    await self.pool.open(wait=True, timeout=self.settings.timeout.connect)
                if self.preparer.identity is None:
                    async with self.pool.connection() as conn:
                        await self._learn(conn)
                if self.analysis_processes and self._analysts is None:
                    # Spawned, not forked (threads run here); started now so the first new text need not wait.
                    self._analysts = ProcessPoolExecutor(
                        self.analysis_processes, mp_context=multiprocessing.get_context("spawn")
                    )
                    self._analysts.submit(analyze_uncached, "SELECT 1").add_done_callback(_retrieve)
                self._opened = True
        return self

    async def _configure_connection(self, conn: AsyncConnection) -> None:
        await self.executor.configure_connection(conn)
        await self._learn(conn)

    async def _learn(self, conn: AsyncConnection) -> None:
        preparer = self.preparer
        policy_settings = preparer.policy_settings
        identity = await _identify(conn, policy_settings)
        if preparer.new_database(identity):
            policy_settings = tuple(str(name) for (name,) in await (await conn.execute(POLICY_SETTINGS_SQL)).fetchall())
            if set(policy_settings) - set(preparer.policy_settings):
                identity = await _identify(conn, policy_settings)
        if identity != preparer.identity:
            active = bool(await (await conn.execute(HINT_PLAN_ACTIVE_SQL)).fetchall())
            views = view_sources(await (await conn.execute(VIEW_SOURCES_SQL)).fetchall())
            preparer.adopt(identity, active, views, policy_settings)

    async def close(self) -> None:
        """Flush the recorder, close the pool if this optimizer opened it and the catalog connection."""
        await asyncio.to_thread(self._stop_watching)
        if self._owns_recorder and self.observer.recorder is not None:
            await asyncio.to_thread(self.observer.recorder.close)
        await self.executor.close()
        if self._owns_pool:
            await self.pool.close()
        await asyncio.to_thread(self._catalog.close)
        analysts, self._analysts = self._analysts, None
        if analysts is not None:
            await asyncio.to_thread(analysts.shutdown)
        self._opened = False

    async def __aenter__(self) -> AsyncOptimizer:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- facts -------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Plain counters of the cache, the executor and the recorder (a shared backend's SCAN included)."""
        return self._stats_with(self.executor.stats())

    # -- preparation -------------------------------------------------------------------------------------

    async def prepare(self, sql: str, index_hints: IndexHints = None, *, has_params: bool = True) -> PreparedCall:
        """Analyse ``sql`` (in the worker process) and validate its hints (in a thread), once per distinct text."""
        if not self._opened:
            await self.open()
        key = (sql, None if index_hints is None else freeze_hints(index_hints), has_params)
        call = self._calls.get(key)
        if call is not None:
            return call
        analysis = await self._analyze(sql)
        if self.preparer.needs_catalog(index_hints):
            return await asyncio.to_thread(
                self.preparer.prepare, sql, index_hints, has_params=has_params, analysis=analysis
            )
        return self.preparer.prepare(sql, has_params=has_params, analysis=analysis)  # analysed already: µs

    async def _analyze(self, sql: str) -> Analysis:
        """``analyze(sql)`` away from the event loop: in the worker process, else a thread."""
        analysts = self._analysts
        if analysts is not None:
            try:
                return await asyncio.get_running_loop().run_in_executor(analysts, analyze_uncached, sql)
            except BrokenProcessPool:
                self._analysts = None
                analysts.shutdown(wait=False)
                logger.warning(
                    "queryopt: the analysis worker process could not start, so SQL is analysed in a thread "
                    "(a long new statement can then stall the event loop). The usual cause is a script "
                    'without `if __name__ == "__main__":` around its entry point (the worker imports the '
                    "script again) or one read from standard input; pass analysis_processes=0 to skip the worker."
                )
        return await asyncio.to_thread(analyze, sql)

    async def cache_decision(self, sql: str, params: Params = None) -> CacheDecision:
        """Whether results of ``sql`` with ``params`` may be cached, and if not, why."""
        return cache_decision(await self.prepare(sql, has_params=params is not None), params)

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
    ) -> Coroutine[Any, Any, QueryResult]:
        """Run one statement; the options mean what they mean in :meth:`queryopt.Optimizer.execute`."""
        # A prepared text, no cache, no options: the run's own coroutine is returned to be awaited, so the
        # call costs one coroutine fewer. Everything else (and every error) waits for the await, as before.
        call = self._texts.get(sql) if index_hints is None and params is not None and self._opened else None
        if (
            call is not None
            and not use_cache
            and ttl is None
            and timeout is None
            and retries is None
            and cache_scope is None
        ):
            try:
                plan = plan_call(self.cache, call, params, None, False, None, None, None)
            except QueryError as exc:
                return _raising(exc)
            return self._run(call, params, plan)
        return self._execute(sql, params, use_cache, ttl, timeout, index_hints, retries, cache_scope)

    async def _execute(
        self,
        sql: str,
        params: Params,
        use_cache: bool,
        ttl: float | None,
        timeout: float | None,
        index_hints: IndexHints,
        retries: int | None,
        cache_scope: Hashable,
    ) -> QueryResult:
        """:meth:`execute` when it needs to await before running: a new text, the cache, options to check."""
        call = self._texts.get(sql) if index_hints is None and params is not None and self._opened else None
        if call is None:
            call = await self.prepare(sql, index_hints, has_params=params is not None)
        if ttl is not None or timeout is not None or retries is not None:
            check_options(ttl, timeout, retries)
        if cache_scope is not None:
            check_cache_scope(cache_scope)
        key = cache_key(call, params, cache_scope) if use_cache else None
        if key is not None:
            if self._telemetry is None:
                hit = await self.cache.aget(key, call.version_keys)
            else:  # telemetry on: a hit is timed and reported too
                started = time.perf_counter()
                if (hit := await self.cache.aget(key, call.version_keys)) is not None:
                    self._served(call, started)
            if hit is not None:
                return hit
        plan = plan_call(self.cache, call, params, key, use_cache, ttl, timeout, retries)
        if key is None:
            return await self._run(call, params, plan)
        return await self._run_cached(call, params, plan, key)

    async def _run_cached(self, call: PreparedCall, params: Params, plan: CallPlan, key: Hashable) -> QueryResult:
        """A cache miss: run and store, one run for concurrent identical misses (no closure in :meth:`_execute`)."""
        return await self.cache.aget_or_execute(
            key, call.version_keys, lambda: self._run(call, params, plan), ttl=plan.ttl
        )

    async def _run(self, call: PreparedCall, params: Params, plan: CallPlan, admitted: bool = False) -> QueryResult:
        """Run a planned call on a leased connection and observe it (in a slot of its fingerprint's limit,
        when limits are on, unless ``admitted`` already)."""
        if not admitted and self.limiter is not None:
            return await self._run_limited(call, params, plan)
        started = time.perf_counter()
        try:
            result = await self.executor.run(call.statement, params, plan.limit_ms, plan.attempts, started)
        except QueryError as exc:
            await self._invalidate(self._run_failed(call, params, plan, started, exc, None))
            raise
        except asyncio.CancelledError:  # cancelled mid-write: assume done
            await self._invalidate(self._run_failed(call, params, plan, started, None, None))
            raise
        tables = self._run_finished(call, params, plan, started, result, None)
        if tables != ():  # most calls invalidate nothing: no coroutine for them
            await self.cache.abump(self.preparer.scope, tables)
        return result

    async def _run_in(self, tx: AsyncTransaction, call: PreparedCall, params: Params, plan: CallPlan) -> QueryResult:
        """Run a planned call inside ``tx``: its invalidations wait for the commit."""
        started = time.perf_counter()
        try:
            result = await self.executor.run_on(tx.conn, call.statement, params, limit_ms=plan.limit_ms)
        except QueryError as exc:
            self._run_failed(call, params, plan, started, exc, tx.invalidations)
            raise
        except asyncio.CancelledError:
            self._run_failed(call, params, plan, started, None, tx.invalidations)
            raise
        self._run_finished(call, params, plan, started, result, tx.invalidations)
        return result

    async def _run_limited(self, call: PreparedCall, params: Params, plan: CallPlan) -> QueryResult:
        """:meth:`_run` inside a slot of the call's fingerprint, taken before a connection is (a transaction,
        which holds its connection already, is not limited)."""
        limiter = self.limiter
        assert limiter is not None
        try:
            gate = await limiter.acquire_async(call.analysis.fingerprint)
        except QueryRejected as exc:
            self._rejected(call, params, plan, exc)
            raise
        with Slot(limiter, gate):
            return await self._run(call, params, plan, True)

    async def _invalidate(self, tables: Tables) -> None:
        if tables != ():
            await self.cache.abump(self.preparer.scope, tables)

    async def query(
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
        result = await self.execute(
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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """Run several statements in one transaction; their writes invalidate the cache after the commit."""
        if not self._opened:
            await self.open()
        async with self.executor.connection() as conn:  # an idle leased one, never one a call is using
            tx = AsyncTransaction(self, conn)
            with TimeoutAfterRollback(conn) as guard:
                async with conn.transaction():
                    yield tx
                    guard.body_ended = True
        for tables in tx.invalidations:
            await self.cache.abump(self.preparer.scope, tables)

    async def invalidate(self, table: str | None = None) -> None:
        """Drop cached results that read ``table`` in this database (all of them without a table)."""
        if not self._opened:
            await self.open()
        await self.cache.abump(self.preparer.scope, None if table is None else [table])


async def _identify(conn: AsyncConnection, custom_settings: Sequence[str]) -> SessionIdentity:
    """:func:`queryopt.optimizer.preparation.identify` for an asyncio connection."""
    identity = identity_from_row(conn.info.host, await (await conn.execute(IDENTIFY_SQL)).fetchone())
    names = custom_setting_names(conn, custom_settings)
    if not names:
        return identity
    return with_custom_settings(identity, await (await conn.execute(CUSTOM_SETTINGS_SQL, [names])).fetchall())


class AsyncTransaction:
    """Statements sharing one transaction: no cache, no retries, hints and timeouts as usual."""

    def __init__(self, optimizer: AsyncOptimizer, conn: AsyncConnection) -> None:
        self._optimizer = optimizer
        self.conn = conn
        self.invalidations: Pending = []

    async def execute(
        self, sql: str, params: Params = None, *, timeout: float | None = None, index_hints: IndexHints = None
    ) -> QueryResult:
        call = await self._optimizer.prepare(sql, index_hints, has_params=params is not None)
        return await self._optimizer._run_in(self, call, params, plan_transaction_call(call, params, timeout))

    async def query(self, sql: str, params: Params = None, *, rows: RowShape = "tuple", **options: Any) -> list[Any]:
        return shape_rows(await self.execute(sql, params, **options), rows)


async def _raising(error: QueryError) -> QueryResult:
    raise error


def _retrieve(future: Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # the warm-up's outcome does not matter; retrieving it keeps asyncio quiet


# -- the module-level API ------------------------------------------------------------------------------

_default: tuple[asyncio.AbstractEventLoop, AsyncOptimizer] | None = None
_default_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def configure_async(dsn: str | None = None, **options: Any) -> AsyncOptimizer:
    """Open the optimizer :func:`optimize_query_async` uses in this event loop (closing a previous one)."""
    global _default
    optimizer = await AsyncOptimizer(dsn, **options).open()
    loop = asyncio.get_running_loop()
    previous, _default = _default, (loop, optimizer)
    if previous is not None and previous[0] is loop:
        await previous[1].close()
    return optimizer


async def optimize_query_async(
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
    """Run one statement through the event loop's default :class:`AsyncOptimizer` and return its rows.

    The default is the one :func:`configure_async` opened, else one built from ``QUERYOPT_*`` settings
    on first use. A pool belongs to one event loop: a new loop gets a new default.
    """
    loop = asyncio.get_running_loop()
    default = _default
    if default is None or default[0] is not loop:
        lock = _default_locks.setdefault(loop, asyncio.Lock())
        async with lock:  # concurrent first calls open one optimizer
            default = _default
            optimizer = await configure_async() if default is None or default[0] is not loop else default[1]
    else:
        optimizer = default[1]
    result = await optimizer.execute(
        sql,
        params,
        use_cache=use_cache,
        ttl=ttl,
        timeout=timeout,
        index_hints=index_hints,
        retries=retries,
        cache_scope=cache_scope,
    )
    return shape_rows(result, rows)
