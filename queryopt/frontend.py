"""What the optimizer, the async optimizer and the SQLAlchemy instrumentation share.

Each front end owns a :class:`~queryopt.preparation.CallPreparer`, a
:class:`~queryopt.observation.CallObserver` and a :class:`~queryopt.cache.ResultCache`;
the facts and counters read from them are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from queryopt.cache import ResultCache
from queryopt.config import HintMode, Settings
from queryopt.errors import ConfigurationError
from queryopt.limits import ConcurrencyLimiter
from queryopt.observation import CallObserver
from queryopt.preparation import CallPreparer
from queryopt.recorder import SlowQueryRecorder
from queryopt.stats import QueryStats

__all__ = ["FrontEnd", "require_database"]


def require_database(dsn: str | None, settings: Settings, *, has_pool: bool) -> str | None:
    """The connection string to use (``dsn``, else ``QUERYOPT_DSN``); an error when neither it nor a pool is given."""
    dsn = dsn or settings.dsn
    if not has_pool and not dsn:
        raise ConfigurationError(
            "no database configured: pass dsn=… or pool=…, or set QUERYOPT_DSN", setting="QUERYOPT_DSN"
        )
    return dsn


class FrontEnd:
    """The shared read-only surface of a front end."""

    preparer: CallPreparer
    observer: CallObserver
    cache: ResultCache
    limiter: ConcurrencyLimiter | None = None
    """Per-fingerprint concurrency limits (``None``: off)."""

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
        """The cache's counters, ``own``, the limiter's (``limit_…``), the recorder's (``recorder_…``) and the
        prepared calls."""
        recorder = self.recorder
        recorded = {f"recorder_{k}": v for k, v in recorder.stats().items()} if recorder else {}
        limited = self.limiter.stats() if self.limiter is not None else {}
        return {**self.cache.stats(), **own, **limited, **recorded, "prepared": len(self.preparer)}
