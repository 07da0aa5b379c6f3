"""The optimizer: one core that decides each call, and two drivers that run it, blocking or awaited.

- ``core``: the call decision as data (limits, the cache branch, session-setting refusals) — pure;
- ``frontend``: what every front end shares (preparer, observer, cache; the steps after a run);
- ``preparation``: analysis, hints, cache keys and invalidations, once per distinct SQL text;
- ``observation`` / ``live_stats``: per-fingerprint statistics, alerts and the slow-query recorder feed;
- ``execution`` / ``async_execution``: timeouts, retries and errors around one psycopg execution;
- ``blocking``: :class:`Optimizer` and ``optimize_query``; ``awaiting``: :class:`AsyncOptimizer` and
  ``optimize_query_async``.
"""

from queryopt.optimizer.awaiting import AsyncOptimizer, AsyncTransaction, configure_async, optimize_query_async
from queryopt.optimizer.blocking import (
    Optimizer,
    Transaction,
    configure,
    default_optimizer,
    metrics_summary,
    optimize_query,
)
from queryopt.optimizer.core import CacheDecision
from queryopt.optimizer.live_stats import Alert, AlertSeverity, QueryStats

__all__ = [
    "Alert",
    "AlertSeverity",
    "AsyncOptimizer",
    "AsyncTransaction",
    "CacheDecision",
    "Optimizer",
    "QueryStats",
    "Transaction",
    "configure",
    "configure_async",
    "default_optimizer",
    "metrics_summary",
    "optimize_query",
    "optimize_query_async",
]
