"""What the optimizer, the async optimizer and the SQLAlchemy instrumentation share.

The steps after a run (observe it; decide what it invalidates) are here, so the
blocking and the awaiting driver only run I/O around them.

Each front end owns a :class:`~queryopt.optimizer.preparation.CallPreparer`, a
:class:`~queryopt.optimizer.observation.CallObserver` and a :class:`~queryopt.cache.policy.ResultCache`;
the facts and counters read from them are the same everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from queryopt.cache import ResultCache
from queryopt.config import HintMode, Settings
from queryopt.errors import ConfigurationError, QueryError, QueryRejected
from queryopt.optimizer.core import CallPlan
from queryopt.optimizer.execution import Params, pool_connection_kwargs
from queryopt.optimizer.limits import ConcurrencyLimiter, open_limiter
from queryopt.optimizer.live_stats import QueryStats
from queryopt.optimizer.observation import CallObserver, open_recorder
from queryopt.optimizer.preparation import CallPreparer, PreparedCall
from queryopt.plans.watcher import PinWatcher
from queryopt.recorder import SlowQueryRecorder
from queryopt.result import QueryResult
from queryopt.telemetry import telemetry_for

if TYPE_CHECKING:
    from queryopt.telemetry import Telemetry

__all__ = ["FrontEnd", "Pending", "Tables", "require_database"]

Tables = tuple[str, ...] | None
"""Tables whose cached results a run invalidates: ``()`` none, ``None`` every table of the database."""
Pending = list[Sequence[str] | None]
"""A transaction's invalidations, applied after it commits."""


def require_database(dsn: str | None, settings: Settings, *, has_pool: bool) -> str | None:
    """The connection string to use (``dsn``, else ``QUERYOPT_DSN``); an error when neither it nor a pool is given."""
    dsn = dsn or settings.dsn
    if not has_pool and not dsn:
        raise ConfigurationError(
            "no database configured: pass dsn=… or pool=…, or set QUERYOPT_DSN", setting="QUERYOPT_DSN"
        )
    return dsn


class FrontEnd:
    """The shared surface of a front end, and the steps of its life and of its calls that do not block."""

    settings: Settings
    preparer: CallPreparer
    observer: CallObserver
    cache: ResultCache
    pin_watcher: PinWatcher | None = None
    """Reads the stored pins in the background (``None``: pins are not applied, ``PlanGuardPolicy.watch_pins``)."""
    _owns_recorder: bool
    _telemetry: Telemetry | None
    _quick_below: float
    """Calls faster than this (seconds) are only counted: :attr:`CallObserver.quick_below`."""
    _count: Callable[[str, float], None]
    """Counts one call of a fingerprint in the live statistics (``QueryStats.observe``)."""
    limiter: ConcurrencyLimiter | None = None
    """Per-fingerprint concurrency limits (``None``: off)."""

    def _settle(self, dsn: str | None, settings: Settings | None, cache: ResultCache | None, *, has_pool: bool) -> str:
        """Adopt ``settings`` (else ``QUERYOPT_*``) and ``cache`` (else a new one); the DSN to use ('' with a pool)."""
        self.settings = settings or Settings.from_env()
        self.cache = cache if cache is not None else ResultCache(self.settings.cache)
        return require_database(dsn, self.settings, has_pool=has_pool) or ""

    def _pool_options(self, *, min_size: int, max_size: int, name: str) -> dict[str, Any]:
        """Keyword arguments for the psycopg pool a front end opens for itself."""
        return {
            "min_size": min_size,
            "max_size": max_size,
            "kwargs": pool_connection_kwargs(self.settings),
            "configure": self._configure_connection,
            "timeout": self.settings.timeout.connect,
            "name": name,
            "open": False,
        }

    def _limit_to(self, pool_size: int | None) -> None:
        """Per-fingerprint limits from the settings, for a pool of ``pool_size`` connections (``None``: unknown)."""
        self.limiter = open_limiter(self.settings.limits, pool_size)

    def _configure_connection(self, conn: Any) -> Any:
        raise NotImplementedError

    def _observe_into(
        self, recorder: SlowQueryRecorder | None, query_stats: QueryStats | None, conninfo: str, *, source: str
    ) -> None:
        """Statistics (``query_stats`` or new) and the recorder (``recorder``, else one of its own when enabled)."""
        self._owns_recorder = recorder is None and self.settings.recorder.enabled
        if self._owns_recorder:
            recorder = open_recorder(self.settings, conninfo)
        self.observer = CallObserver(
            query_stats if query_stats is not None else QueryStats(self.settings.recorder),
            recorder,
            application_name=self.settings.application_name,
            source=source,
            telemetry=telemetry_for(self.settings),
        )
        self._telemetry = self.observer.telemetry
        self._quick_below = self.observer.quick_below
        self._count = self.observer.stats.observe
        if self._telemetry is not None:
            self._telemetry.watch_cache(self.cache)
        self._watch_pins(conninfo)

    def _watch_pins(self, conninfo: str) -> None:
        """Apply the pins stored where queryopt's tables are (the recorder's database) to this front end."""
        policy = self.settings.plans
        if policy.watch_pins and conninfo:
            self.pin_watcher = PinWatcher(
                self.settings.recorder.dsn or conninfo,
                self.preparer.use_pins,
                policy=policy,
                schema=self.settings.recorder.schema,
                application_conninfo=conninfo,
            )

    def _stop_watching(self) -> None:
        watcher, self.pin_watcher = self.pin_watcher, None
        if watcher is not None:
            watcher.close()

    @property
    def hint_mode(self) -> HintMode:
        """How hints take effect on this database (``auto`` resolved once a connection was seen)."""
        return self.preparer.hint_mode

    @property
    def recorder(self) -> SlowQueryRecorder | None:
        """Where slow calls go (``None``: not recorded)."""
        return self.observer.recorder

    @property
    def query_stats(self) -> QueryStats:
        """Live per-fingerprint statistics."""
        return self.observer.stats

    def metrics_summary(self) -> dict[str, dict[str, float]]:
        """Live per-fingerprint statistics: count, mean, min, max, p95 (seconds) over recent calls."""
        return self.query_stats.summary()

    def limit_summary(self) -> dict[str, dict[str, float]]:
        """Per fingerprint: its concurrency ``limit`` and ``in_flight`` calls now, and since the start ``waits``
        (calls that waited for a slot, then ran), ``rejections`` and ``wait_seconds``. Empty when limits are off."""
        return {} if self.limiter is None else self.limiter.summary()

    def _stats_with(self, own: Mapping[str, int]) -> dict[str, int]:
        """The cache's counters, ``own``, the limiter's (``limit_…``, when on), the recorder's (``recorder_…``)
        and the prepared calls."""
        recorder = self.recorder
        recorded = {f"recorder_{k}": v for k, v in recorder.stats().items()} if recorder else {}
        limited = self.limiter.stats() if self.limiter is not None else {}
        return {**self.cache.stats(), **own, **limited, **recorded, "prepared": len(self.preparer)}

    # -- after a run: the same steps for every driver ------------------------------------------------

    def _run_finished(
        self,
        call: PreparedCall,
        params: Params,
        plan: CallPlan,
        started: float,
        result: QueryResult,
        pending: Pending | None,
    ) -> Tables:
        """Observe a successful run; the tables whose cached results to invalidate now (``()``: none)."""
        duration = time.perf_counter() - started
        if duration < self._quick_below:  # neither slow nor reported (most calls): counted, nothing built
            self._count(call.statement.fingerprint, duration)
        else:
            self._observe_call(call, params, plan, duration, result.rowcount, None)
        tables = call.invalidates
        if tables == ():  # a read: nothing to decide
            return ()
        return _invalidation(tables, pending, happened=True)

    def _run_failed(
        self,
        call: PreparedCall,
        params: Params,
        plan: CallPlan,
        started: float,
        error: QueryError | None,
        pending: Pending | None,
    ) -> Tables:
        """Observe a failed run (``error`` ``None``: cancelled by the caller, not observed); what to invalidate.

        A write whose outcome is unknown (the connection was lost, the caller cancelled) is assumed done.
        """
        if error is not None:
            self._observe_call(call, params, plan, time.perf_counter() - started, None, error)
        return _invalidation(call.invalidates, pending, happened=error is None or error.sqlstate is None)

    def _served(self, call: PreparedCall, started: float) -> None:
        """A call answered from the cache (``started``: ``perf_counter()`` before the lookup): telemetry only."""
        self.observer.served_from_cache(call, time.perf_counter() - started, self.preparer.identity)

    def _rejected(self, call: PreparedCall, params: Params, plan: CallPlan, error: QueryRejected) -> None:
        """Record a call its fingerprint's concurrency limit turned away (it never ran)."""
        self.observer.rejected(
            call, error, identity=self.preparer.identity, params=params, cache_outcome=plan.cache_outcome
        )

    def _observe_call(
        self,
        call: PreparedCall,
        params: Params,
        plan: CallPlan,
        duration: float,
        rowcount: int | None,
        error: QueryError | None,
    ) -> None:
        self.observer.observe(
            call,
            duration,
            identity=self.preparer.identity,
            params=params,
            cache_outcome=plan.cache_outcome,
            rowcount=rowcount,
            error=error,
        )


def _invalidation(tables: Tables, pending: Pending | None, *, happened: bool) -> Tables:
    if tables == ():
        return ()
    if pending is not None:  # in a transaction: invalidated once it commits
        pending.append(tables)
        return ()
    return tables if happened else ()
