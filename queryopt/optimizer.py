"""The optimizer: analysis, hints, cache, execution and observation around every query.

Everything that depends only on the SQL text and the hints asked for is decided
once per distinct text (:mod:`queryopt.preparation`); a call then costs a
dictionary lookup plus the work that truly depends on its parameters.

Connections come from a psycopg pool in autocommit mode: one statement per
call, committed when it returns, so a write invalidates the cached results of
the tables it touched right after it succeeded. :meth:`Optimizer.transaction`
groups statements; its writes invalidate only after it commits.

Session state does not survive between calls (a pooled connection serves
whichever call comes next), so ``SET``/``RESET`` outside a transaction are
refused: put settings in the connection string instead.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal

from psycopg_pool import ConnectionPool

from queryopt.analysis import Analysis, StatementKind
from queryopt.cache import ResultCache, UnkeyableParams, canonical_params
from queryopt.config import Settings
from queryopt.errors import ConfigurationError, QueryError, QueryRejected
from queryopt.execution import Connection, Executor, Params, pool_connection_kwargs, timeout_ms
from queryopt.frontend import FrontEnd, require_database
from queryopt.hints import HintRules
from queryopt.limits import ConcurrencyLimiter, open_limiter, overloaded
from queryopt.observation import CallObserver, open_recorder
from queryopt.preparation import CallPreparer, IndexHints, PreparedCall
from queryopt.recorder import SlowQueryRecorder
from queryopt.result import QueryResult
from queryopt.stats import QueryStats

__all__ = [
    "CacheDecision",
    "Optimizer",
    "Transaction",
    "configure",
    "default_optimizer",
    "metrics_summary",
    "optimize_query",
]

RowShape = Literal["tuple", "dict"]


@dataclass(frozen=True, slots=True)
class CacheDecision:
    """Whether a statement's results may be cached, and if not, why."""

    cacheable: bool
    reasons: tuple[str, ...]


class Optimizer(FrontEnd):
    """Runs queries on a PostgreSQL database with hints, timeouts, retries, caching and recording.

    Give it a ``dsn`` (it then owns a pool) or a psycopg ``pool`` of your own. A ``cache`` may be
    shared between optimizers: keys carry the database and role, so results never cross them.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Connection] | None = None,
        settings: Settings | None = None,
        cache: ResultCache | None = None,
        hint_rules: HintRules | None = None,
        recorder: SlowQueryRecorder | None = None,
        query_stats: QueryStats | None = None,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        self.settings = settings or Settings.from_env()
        dsn = require_database(dsn, self.settings, has_pool=pool is not None)
        self.cache = cache if cache is not None else ResultCache(self.settings.cache)
        self._owns_pool = pool is None
        if pool is None:
            assert dsn is not None
            pool = ConnectionPool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                kwargs=pool_connection_kwargs(self.settings),
                configure=self._configure_connection,
                timeout=self.settings.timeout.connect,
                name="queryopt",
                open=False,
            )
        self.pool = pool
        self.limiter = open_limiter(self.settings.limits, pool.max_size)
        self.executor = Executor(pool, timeouts=self.settings.timeout, retry=self.settings.retry)
        self.preparer = CallPreparer(self.settings, connect=pool.connection, hint_rules=hint_rules)
        self._calls = self.preparer.calls
        if self._owns_pool:
            pool.open(wait=True, timeout=self.settings.timeout.connect)
        if self.preparer.identity is None:
            with pool.connection() as conn:
                self.preparer.learn(conn)
        self._owns_recorder = recorder is None and self.settings.recorder.enabled
        if self._owns_recorder:
            recorder = open_recorder(self.settings, str(pool.conninfo))
        self.observer = CallObserver(
            query_stats if query_stats is not None else QueryStats(self.settings.recorder),
            recorder,
            application_name=self.settings.application_name,
            source="optimize_query",
        )

    def _configure_connection(self, conn: Connection) -> None:
        self.executor.configure_connection(conn)
        self.preparer.learn(conn)

    def prepare(self, sql: str, index_hints: IndexHints = None, *, has_params: bool = True) -> PreparedCall:
        """Analyse ``sql`` and validate its hints now, rather than on its first call."""
        return self.preparer.prepare(sql, index_hints, has_params=has_params)

    def cache_decision(self, sql: str, params: Params = None) -> CacheDecision:
        """Whether results of ``sql`` with ``params`` may be cached, and if not, why."""
        call = self.preparer.prepare(sql, has_params=params is not None)
        reasons = list(call.bypass_reasons)
        try:
            canonical_params(params)
        except UnkeyableParams as exc:
            reasons.append(str(exc))
        return CacheDecision(not reasons, tuple(reasons))

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
    ) -> QueryResult:
        """Run one statement and return its :class:`~queryopt.result.QueryResult`.

        ``use_cache`` serves and stores cacheable reads (``ttl`` seconds, default from the policy);
        ``timeout`` (seconds) overrides the statement timeout for this call; ``retries`` the number
        of tries in all; ``index_hints`` names indexes (``["orders_customer_idx"]``), maps tables or
        aliases to indexes (``{"o": "orders_customer_idx"}``) or gives hint objects.
        """
        call = self._calls.get((sql, None, params is not None)) if index_hints is None else None
        if call is None:
            call = self.preparer.prepare(sql, index_hints, has_params=params is not None)
        limit = None if timeout is None else call_limit(timeout)
        if retries is not None:
            check_retries(retries)
        if not use_cache:
            return self._run(call, params, limit, retries, "off")
        if call.bypass_reasons:
            self.cache.count_bypass()
            return self._run(call, params, limit, retries, "bypass")
        try:
            key = (call.cache_prefix, canonical_params(params))
        except UnkeyableParams:
            self.cache.count_bypass()
            return self._run(call, params, limit, retries, "bypass")
        hit = self.cache.get(key, call.version_keys)
        if hit is not None:
            return hit
        if ttl is not None:
            check_ttl(ttl)
        return self.cache.get_or_execute(
            key, call.version_keys, lambda: self._run(call, params, limit, retries, "miss"), ttl=ttl
        )

    def _run(
        self, call: PreparedCall, params: Params, limit: int | None, retries: int | None, cache_outcome: str
    ) -> QueryResult:
        if call.analysis.kind is StatementKind.UTILITY:
            refuse_session_settings(call)
        if self.limiter is not None:
            return self._run_limited(self.limiter, call, params, limit, retries, cache_outcome)
        return self._run_unlimited(call, params, limit, retries, cache_outcome)

    def _run_limited(
        self,
        limiter: ConcurrencyLimiter,
        call: PreparedCall,
        params: Params,
        limit: int | None,
        retries: int | None,
        cache_outcome: str,
    ) -> QueryResult:
        """:meth:`_run_unlimited` inside a slot of the call's fingerprint, taken before a connection is."""
        try:
            gate = limiter.acquire(call.analysis.fingerprint)
        except QueryRejected as exc:
            self.observer.rejected(
                call, exc, identity=self.preparer.identity, params=params, cache_outcome=cache_outcome
            )
            raise
        started = time.perf_counter()
        dropped = False
        try:
            return self._run_unlimited(call, params, limit, retries, cache_outcome)
        except QueryError as exc:
            dropped = overloaded(exc)
            raise
        finally:
            limiter.release(gate, time.perf_counter() - started, dropped=dropped)

    def _run_unlimited(
        self, call: PreparedCall, params: Params, limit: int | None, retries: int | None, cache_outcome: str
    ) -> QueryResult:
        started = time.perf_counter()
        try:
            result = self.executor.run(call.statement, params, limit_ms=limit, attempts=retries)
        except QueryError as exc:
            if call.invalidates != () and exc.sqlstate is None:
                self.cache.bump(self.preparer.scope, call.invalidates)  # outcome unknown: assume it happened
            self._observe(call, time.perf_counter() - started, params, cache_outcome, None, exc)
            raise
        if call.invalidates != ():
            self.cache.bump(self.preparer.scope, call.invalidates)
        self._observe(call, time.perf_counter() - started, params, cache_outcome, result.rowcount, None)
        return result

    def _observe(
        self,
        call: PreparedCall,
        duration: float,
        params: Params,
        cache_outcome: str,
        rowcount: int | None,
        error: QueryError | None,
    ) -> None:
        self.observer.observe(
            call,
            duration,
            identity=self.preparer.identity,
            params=params,
            cache_outcome=cache_outcome,
            rowcount=rowcount,
            error=error,
        )

    def query(
        self, sql: str, params: Params = None, *, rows: RowShape = "tuple", **options: Any
    ) -> list[tuple[Any, ...]] | list[dict[str, Any]]:
        """Like :meth:`execute`, returning the rows as a list of tuples, or of dicts with ``rows="dict"``."""
        return _shape(self.execute(sql, params, **options), rows)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run several statements in one transaction; their writes invalidate the cache after the commit."""
        with self.pool.connection() as conn:
            tx = Transaction(self, conn)
            with conn.transaction():
                yield tx
        for tables in tx.invalidations:
            self.cache.bump(self.preparer.scope, tables)

    def invalidate(self, table: str | None = None) -> None:
        """Drop cached results that read ``table`` in this database (all of them without a table)."""
        self.cache.bump(self.preparer.scope, None if table is None else [table])

    def stats(self) -> dict[str, int]:
        """Plain counters of the cache, the executor, the concurrency limits and the recorder."""
        return self._stats_with(self.executor.stats())

    def close(self) -> None:
        """Flush the recorder, stop the watchdog, close the pool if this optimizer opened it."""
        if self._owns_recorder and self.recorder is not None:
            self.recorder.close()
        self.executor.watchdog.close()
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
        self._conn = conn
        self.invalidations: list[Sequence[str] | None] = []

    def execute(
        self, sql: str, params: Params = None, *, timeout: float | None = None, index_hints: IndexHints = None
    ) -> QueryResult:
        optimizer = self._optimizer
        call = optimizer.preparer.prepare(sql, index_hints, has_params=params is not None)
        refuse_session_settings_in_transaction(call)
        limit = None if timeout is None else call_limit(timeout)
        started = time.perf_counter()
        try:
            result = optimizer.executor.run_on(self._conn, call.statement, params, limit_ms=limit)
        except QueryError as exc:
            optimizer._observe(call, time.perf_counter() - started, params, "off", None, exc)
            raise
        finally:
            if call.invalidates != ():
                self.invalidations.append(call.invalidates)
        optimizer._observe(call, time.perf_counter() - started, params, "off", result.rowcount, None)
        return result

    def query(self, sql: str, params: Params = None, *, rows: RowShape = "tuple", **options: Any) -> list[Any]:
        return _shape(self.execute(sql, params, **options), rows)


def call_limit(timeout: float) -> int:
    """A call's ``timeout`` in seconds as a statement_timeout in milliseconds; refuses a timeout <= 0."""
    _check_seconds("timeout", timeout)
    if timeout > _MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be at most {_MAX_TIMEOUT:g} seconds (PostgreSQL's statement_timeout), got {timeout!r}",
            setting="timeout",
        )
    return timeout_ms(timeout)


def check_retries(retries: int) -> None:
    """Refuse a per-call ``retries`` that is not a whole number of tries >= 1 (the first one included)."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ConfigurationError(
            f"retries must be a whole number >= 1 (tries in all, the first included), got {retries!r}",
            setting="retries",
        )


def check_ttl(ttl: float) -> None:
    """Refuse a per-call ``ttl`` that is not a finite number of seconds > 0."""
    _check_seconds("ttl", ttl)


_MAX_TIMEOUT: Final = 2_147_483.647
"""statement_timeout is an int of milliseconds."""


def _check_seconds(name: str, value: object) -> None:
    # NaN would pass a `<= 0` test: a NaN ttl made an entry that never expires.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}", setting=name)
    if value <= 0:
        raise ConfigurationError(f"{name} must be > 0 seconds, got {value!r}", setting=name)


def refuse_session_settings(call: PreparedCall) -> None:
    """SET/RESET outside a transaction would change whichever pooled connection ran it: refuse them."""
    if _changes_session(call.analysis):
        raise QueryError(
            "SET/RESET outside a transaction would not last: pooled connections serve other calls next. "
            "Put settings in the connection string, or use Optimizer.transaction() with SET LOCAL",
            sql=call.analysis.sql,
            fingerprint=call.analysis.fingerprint,
        )


def refuse_session_settings_in_transaction(call: PreparedCall) -> None:
    """A plain SET committed in a transaction would stay on the pooled connection: refuse it (SET LOCAL is fine)."""
    if call.analysis.kind is StatementKind.UTILITY and _changes_session(call.analysis, in_transaction=True):
        raise QueryError(
            "SET/RESET would outlive this transaction on a pooled connection: use SET LOCAL",
            sql=call.analysis.sql,
            fingerprint=call.analysis.fingerprint,
        )


def shape_rows(result: QueryResult, rows: RowShape) -> list[Any]:
    """The rows of ``result`` as tuples or dicts."""
    return _shape(result, rows)


def _shape(result: QueryResult, rows: RowShape) -> list[Any]:
    if rows == "tuple":
        return list(result.rows)
    if rows == "dict":
        return result.as_dicts()
    raise ConfigurationError(f"rows must be 'tuple' or 'dict', got {rows!r}", setting="rows")


def _changes_session(analysis: Analysis, *, in_transaction: bool = False) -> bool:
    words = analysis.sql[analysis.head.body_start :].split(None, 2)[:2]
    verb, scope = (word.upper() for word in [*words, "", ""][:2])
    if verb == "RESET":
        return True
    if verb != "SET" or scope == "LOCAL":
        return False
    # SET TRANSACTION / SET CONSTRAINTS last only for the transaction: fine inside one.
    return not (in_transaction and scope in {"TRANSACTION", "CONSTRAINTS"})


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
) -> list[Any]:
    """Run one statement through the default optimizer and return its rows (see :meth:`Optimizer.execute`)."""
    optimizer = _default if _default is not None else default_optimizer()
    result = optimizer.execute(
        sql, params, use_cache=use_cache, ttl=ttl, timeout=timeout, index_hints=index_hints, retries=retries
    )
    return _shape(result, rows)


def metrics_summary() -> dict[str, dict[str, float]]:
    """Live per-fingerprint statistics of the default optimizer (see :meth:`Optimizer.metrics_summary`)."""
    return default_optimizer().metrics_summary()
