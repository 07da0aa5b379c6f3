"""Live per-fingerprint statistics and anomaly alerts, in memory and bounded.

:meth:`QueryStats.observe` runs on every query, so it does a few attribute
writes under a lock: the same query as the last call needs no lookup, and the
recent mean is summed only for a call slow enough to raise an alert. The
baseline of a fingerprint is the mean of its recent calls (the window before
the call being judged). A call slower than ``alert_warning_factor`` times the
baseline raises a warning, slower than ``alert_critical_factor`` times a
critical alert; one fingerprint raises at most one alert per cooldown. Sorting
for the 95th percentile happens only in :meth:`QueryStats.summary`.

>>> stats = QueryStats()
>>> for seconds in (0.010, 0.012, 0.011):
...     stats.observe("0123456789abcdef", seconds)
>>> summary = stats.summary()["0123456789abcdef"]
>>> summary["count"], round(summary["mean"], 3), summary["max"]
(3, 0.011, 0.012)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from queryopt.config import RecorderPolicy

__all__ = ["Alert", "AlertSeverity", "QueryStats"]

logger = logging.getLogger("queryopt")

_DEFAULT_POLICY = RecorderPolicy()


class AlertSeverity(StrEnum):
    """How far a call strayed from its fingerprint's baseline."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alert:
    """A call much slower than the recent calls of the same query."""

    fingerprint: str
    severity: AlertSeverity
    duration: float
    """Seconds the call took."""
    baseline: float
    """Mean seconds of the fingerprint's recent calls before this one."""
    at: datetime
    """When the alert was raised (UTC)."""


class _Window:
    """The recent durations of one fingerprint, as a ring buffer with a running sum."""

    __slots__ = ("count", "durations", "last_alert", "next")

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.reset()

    def reset(self) -> None:
        self.durations.clear()
        self.next = 0
        self.count = 0
        self.last_alert = -math.inf


class QueryStats:
    """Per-fingerprint count, mean, min, max and p95 over a sliding window, with anomaly alerts.

    Bounded: ``policy.stats_window`` calls per fingerprint, ``policy.stats_max_fingerprints``
    fingerprints (the least recently seen is forgotten). ``clock`` gives wall-clock seconds
    (``time.time``) and may be replaced in tests. Thread-safe.
    """

    def __init__(self, policy: RecorderPolicy = _DEFAULT_POLICY, *, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self._clock = clock
        self._size = policy.stats_window
        self._max_fingerprints = policy.stats_max_fingerprints
        self._min_samples = policy.alert_min_samples
        self._min_duration = policy.alert_min_duration
        self._warning = policy.alert_warning_factor
        self._critical = policy.alert_critical_factor
        self._cooldown = policy.alert_cooldown
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._latest: str | None = None
        self._latest_window = _Window()
        self._lock = threading.Lock()
        self._callbacks: tuple[Callable[[Alert], None], ...] = ()

    def observe(self, fingerprint: str, duration: float) -> None:
        """Count one call of ``fingerprint`` that took ``duration`` seconds; may raise an alert."""
        alert = None
        lock = self._lock
        lock.acquire()  # not `with`: its __enter__/__exit__ calls cost as much again as the lock
        try:
            # The same query again is already the most recently seen: no lookup.
            window = self._latest_window if fingerprint is self._latest else self._window_of(fingerprint)
            durations = window.durations
            position = window.next
            if duration >= self._min_duration and len(durations) >= self._min_samples:
                # Only a call this slow can raise an alert: the baseline is summed here, not on every call.
                baseline = math.fsum(durations) / len(durations)
                if duration > baseline * self._warning:
                    alert = self._judge(fingerprint, window, duration, baseline)
            window.count += 1
            if position < len(durations):
                durations[position] = duration
            else:
                durations.append(duration)
            window.next = position + 1 if position + 1 < self._size else 0
        finally:
            lock.release()
        if alert is not None:
            self._emit(alert)

    def _window_of(self, fingerprint: str) -> _Window:
        """The window of ``fingerprint``, made the most recently seen (the lock is held)."""
        window = self._windows.get(fingerprint)
        if window is None:
            if len(self._windows) >= self._max_fingerprints:
                window = self._windows.popitem(last=False)[1]
                window.reset()  # reuse the evicted window: no allocation on the eviction path
            else:
                window = _Window()
            self._windows[fingerprint] = window
        else:
            self._windows.move_to_end(fingerprint)
        self._latest, self._latest_window = fingerprint, window
        return window

    def summary(self) -> dict[str, dict[str, float]]:
        """Plain data per fingerprint, durations in seconds: ``count`` (calls seen since tracked),
        ``samples`` (calls in the window), and ``mean``, ``min``, ``max``, ``p95`` over the window."""
        with self._lock:
            snapshot = [(fp, window.count, list(window.durations)) for fp, window in self._windows.items()]
        summary: dict[str, dict[str, float]] = {}
        for fingerprint, count, durations in snapshot:
            ordered = sorted(durations)
            samples = len(ordered)
            summary[fingerprint] = {
                "count": count,
                "samples": samples,
                "mean": math.fsum(ordered) / samples,
                "min": ordered[0],
                "max": ordered[-1],
                "p95": ordered[max(0, math.ceil(0.95 * samples) - 1)],  # nearest rank
            }
        return summary

    def on_alert(self, callback: Callable[[Alert], None]) -> None:
        """Call ``callback(alert)`` for every alert, on the thread that observed the call: keep it quick."""
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

    def _judge(self, fingerprint: str, window: _Window, duration: float, baseline: float) -> Alert | None:
        now = self._clock()
        if now - window.last_alert < self._cooldown:
            return None
        window.last_alert = now
        severity = AlertSeverity.CRITICAL if duration > baseline * self._critical else AlertSeverity.WARNING
        return Alert(fingerprint, severity, duration, baseline, datetime.fromtimestamp(now, UTC))

    def _emit(self, alert: Alert) -> None:
        level = logging.ERROR if alert.severity is AlertSeverity.CRITICAL else logging.WARNING
        logger.log(
            level,
            "queryopt: %s: query %s took %.1f ms, %.1fx its recent mean of %.1f ms",
            alert.severity.value,
            alert.fingerprint,
            alert.duration * 1000,
            alert.duration / alert.baseline if alert.baseline > 0 else math.inf,
            alert.baseline * 1000,
        )
        for callback in self._callbacks:
            try:
                callback(alert)
            except Exception:  # an application's callback must not fail the query that triggered it
                logger.exception("queryopt: alert callback %r failed", callback)
