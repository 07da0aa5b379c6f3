"""The OpenTelemetry instruments queryopt feeds: one histogram and one span per call, counters read from stats().

This module imports ``opentelemetry`` (the API only: the application brings the
SDK and its exporters) and is imported only when telemetry is on. A call is
reported after it ended, with explicit start and end times, so the optimizer
does nothing extra while the statement runs. Attributes that depend only on the
statement are computed once per fingerprint (:func:`~queryopt.telemetry.conventions.describe`);
a call adds its namespace, cache outcome and error to a copy of them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from queryopt._version import __version__
from queryopt.analysis import Analysis
from queryopt.telemetry.conventions import (
    DURATION_BUCKETS,
    ERROR_TYPE,
    NAMESPACE,
    STATUS_CODE,
    CallDescription,
    describe,
    error_type,
    namespace,
    sqlstate_of,
)

__all__ = ["DURATION_METRIC", "AlertLike", "AlertSource", "HasStats", "Telemetry"]

DURATION_METRIC: Final = "db.client.operation.duration"
CACHE_OUTCOME: Final = "queryopt.cache.outcome"
HINTS_APPLIED: Final = "queryopt.hints.applied"
_DESCRIPTIONS_KEPT = 4096


class HasStats(Protocol):
    """Anything with plain counters: the result cache, the slow-query recorder."""

    def stats(self) -> Mapping[str, int]: ...


class AlertLike(Protocol):
    """What an alert of the live statistics carries (``queryopt.Alert``)."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def duration(self) -> float: ...
    @property
    def baseline(self) -> float: ...


class AlertSource(Protocol):
    """Where alerts come from (``queryopt.QueryStats``)."""

    def on_alert(self, callback: Callable[[AlertLike], None]) -> None: ...


class _Watched:
    """The live objects one family of counters reads; a cache shared by two optimizers counts once."""

    def __init__(self) -> None:
        # Keyed by identity, held weakly: watching never keeps a closed optimizer's cache alive.
        self._objects: weakref.WeakValueDictionary[int, HasStats] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def add(self, source: HasStats) -> None:
        with self._lock:
            self._objects[id(source)] = source

    def totals(self) -> dict[str, int]:
        with self._lock:
            sources = list(self._objects.values())
        totals: dict[str, int] = {}
        for source in sources:
            for name, value in source.stats().items():
                totals[name] = totals.get(name, 0) + value
        return totals


class Telemetry:
    """Reports calls, cache and recorder counters and alerts to OpenTelemetry.

    Without providers, the global ones (``opentelemetry.metrics.set_meter_provider``, …) are used,
    including those the application sets after queryopt started.
    """

    def __init__(
        self, *, meter_provider: MeterProvider | None = None, tracer_provider: TracerProvider | None = None
    ) -> None:
        meter = metrics.get_meter("queryopt", __version__, meter_provider=meter_provider)
        self._tracer = trace.get_tracer("queryopt", __version__, tracer_provider=tracer_provider)
        self._duration = meter.create_histogram(
            DURATION_METRIC,
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._alerts = meter.create_counter(
            "queryopt.alerts", unit="{alert}", description="Calls much slower than their query's recent mean."
        )
        self._caches = _Watched()
        self._recorders = _Watched()
        for name, unit, key, description in (
            ("queryopt.cache.hits", "{hit}", "hits", "Calls served from the result cache."),
            ("queryopt.cache.misses", "{miss}", "misses", "Cacheable calls that ran on the database."),
            ("queryopt.cache.evictions", "{eviction}", "evictions", "Cached results evicted to respect the bounds."),
        ):
            meter.create_observable_counter(name, [self._reader(self._caches, key)], unit=unit, description=description)
        for name, key, description in (
            ("queryopt.recorder.queued", "queued", "Slow-query records accepted on the recorder's queue."),
            ("queryopt.recorder.written", "recorded", "Slow-query records written to the table."),
        ):
            meter.create_observable_counter(
                name, [self._reader(self._recorders, key)], unit="{record}", description=description
            )
        meter.create_observable_counter(
            "queryopt.recorder.dropped",
            [self._dropped],
            unit="{record}",
            description="Slow-query records not written: queue full or closed, or sampled out.",
        )
        self._descriptions: dict[str, CallDescription] = {}
        self._namespaces: dict[tuple[str, str], str] = {}
        self._alert_sources: weakref.WeakValueDictionary[int, AlertSource] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    @staticmethod
    def _reader(watched: _Watched, key: str) -> _Callback:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            totals = watched.totals()
            return [Observation(totals[key])] if key in totals else []

        return observe

    def _dropped(self, options: CallbackOptions) -> Iterable[Observation]:
        totals = self._recorders.totals()
        if "dropped" not in totals:
            return []
        return [
            Observation(totals["dropped"], {"queryopt.recorder.reason": "queue"}),
            Observation(totals.get("sampled_out", 0), {"queryopt.recorder.reason": "sampled_out"}),
        ]

    # -- what the front ends call --------------------------------------------------------------------

    def watch_cache(self, cache: HasStats) -> None:
        """Report ``cache.stats()`` hits, misses and evictions while ``cache`` lives."""
        self._caches.add(cache)

    def watch_recorder(self, recorder: HasStats) -> None:
        """Report ``recorder.stats()`` queued, written (``recorded``) and dropped records while it lives."""
        self._recorders.add(recorder)

    def watch_alerts(self, stats: AlertSource) -> None:
        """Report the alerts of ``stats`` (once, however many front ends share it)."""
        with self._lock:
            if self._alert_sources.get(id(stats)) is stats:
                return
            self._alert_sources[id(stats)] = stats
        stats.on_alert(self.record_alert)

    def record_call(
        self,
        analysis: Analysis,
        duration: float,
        *,
        database: str,
        search_path: str,
        cache_outcome: str,
        error: BaseException | None = None,
        hints: str | None = None,
        plan_hash: str | None = None,
        retries: int | None = None,
        source: str | None = None,
    ) -> None:
        """Report one call that took ``duration`` seconds and has just ended: a histogram value and a span.

        ``cache_outcome`` is ``hit``, ``miss``, ``bypass`` or ``off``; ``hints`` the hint block or planner
        settings applied; ``retries`` the tries after the first. Never raises for a closed exporter.
        """
        end = time.time_ns()
        description = self._descriptions.get(analysis.fingerprint)
        if description is None:
            description = self._describe(analysis)
        where = self._namespaces.get((database, search_path))
        if where is None:
            where = self._namespaces[(database, search_path)] = namespace(database, search_path)
        measured: dict[str, str | bool | int] = dict(description.metric)
        measured[NAMESPACE] = where
        measured[CACHE_OUTCOME] = cache_outcome
        measured[HINTS_APPLIED] = hints is not None
        sqlstate = None
        if error is not None:
            sqlstate = sqlstate_of(error)
            if sqlstate is not None:
                measured[STATUS_CODE] = sqlstate
            measured[ERROR_TYPE] = error_type(error, sqlstate)
        self._duration.record(duration, measured)
        spanned = {**description.span, **measured}
        if hints is not None:
            spanned["queryopt.hints"] = hints
        if plan_hash is not None:
            spanned["queryopt.plan.hash"] = plan_hash
        if retries is not None:
            spanned["queryopt.retries"] = retries
        if source is not None:
            spanned["queryopt.source"] = source
        span = self._tracer.start_span(
            description.span_name, kind=SpanKind.CLIENT, attributes=spanned, start_time=end - int(duration * 1e9)
        )
        if error is not None:
            # The error's message is left out on purpose: a server DETAIL line can quote row values.
            span.set_status(Status(StatusCode.ERROR, str(measured[ERROR_TYPE])))
        span.end(end_time=end)

    def record_alert(self, alert: AlertLike) -> None:
        """Count an alert and add it as an event to the span current on this thread (the application's)."""
        severity = str(alert.severity)
        self._alerts.add(1, {"queryopt.alert.severity": severity})
        current = trace.get_current_span()
        if current.is_recording():
            current.add_event(
                "queryopt.alert",
                {
                    "queryopt.fingerprint": alert.fingerprint,
                    "queryopt.alert.severity": severity,
                    "queryopt.alert.duration": alert.duration,
                    "queryopt.alert.baseline": alert.baseline,
                },
            )

    def _describe(self, analysis: Analysis) -> CallDescription:
        if len(self._descriptions) >= _DESCRIPTIONS_KEPT:
            self._descriptions.clear()  # many distinct shapes: start over rather than grow without bound
        description = self._descriptions[analysis.fingerprint] = describe(analysis)
        return description


class _Callback(Protocol):
    def __call__(self, options: CallbackOptions) -> Iterable[Observation]: ...
