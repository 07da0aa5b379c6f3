"""queryopt: faster, safer and visible PostgreSQL queries.

The public API is what ``__all__`` lists; every other module and name may change.
"""

from typing import TYPE_CHECKING, Any

from queryopt._version import __version__
from queryopt.analysis import (
    Analysis,
    PlaceholderStyle,
    StatementKind,
    TableRef,
    analysis_cache_info,
    analyze,
    set_analysis_cache_size,
)
from queryopt.async_optimizer import AsyncOptimizer, AsyncTransaction, configure_async, optimize_query_async
from queryopt.backends.redis import RedisBackend
from queryopt.cache import ResultCache
from queryopt.config import CachePolicy, HintMode, RecorderPolicy, RetryPolicy, Settings, TimeoutPolicy
from queryopt.errors import (
    AnalysisError,
    CacheError,
    ConfigurationError,
    HintError,
    MigrationError,
    PinError,
    QueryError,
    QueryoptError,
    QueryTimeout,
    RecorderError,
    ReportError,
    ServerError,
)
from queryopt.hints import (
    HintRules,
    HintSet,
    JoinHint,
    Leading,
    Parallel,
    PlanComparison,
    Rows,
    ScanHint,
    Set,
    explain,
)
from queryopt.optimizer import (
    CacheDecision,
    Optimizer,
    Transaction,
    configure,
    default_optimizer,
    metrics_summary,
    optimize_query,
)
from queryopt.recorder import SlowQuery, SlowQueryRecorder
from queryopt.report import Report, ReportFormat
from queryopt.result import QueryResult
from queryopt.stats import Alert, AlertSeverity, QueryStats

if TYPE_CHECKING:
    from queryopt.integrations.sqlalchemy import instrument, uninstrument

_LAZY = frozenset({"instrument", "uninstrument"})  # need SQLAlchemy: imported on first use only


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from queryopt.integrations import sqlalchemy

        return getattr(sqlalchemy, name)
    raise AttributeError(f"module 'queryopt' has no attribute {name!r}")


__all__ = [
    "Alert",
    "AlertSeverity",
    "Analysis",
    "AnalysisError",
    "AsyncOptimizer",
    "AsyncTransaction",
    "CacheDecision",
    "CacheError",
    "CachePolicy",
    "ConfigurationError",
    "HintError",
    "HintMode",
    "HintRules",
    "HintSet",
    "JoinHint",
    "Leading",
    "MigrationError",
    "PinError",
    "Optimizer",
    "Parallel",
    "PlaceholderStyle",
    "PlanComparison",
    "QueryError",
    "QueryResult",
    "QueryStats",
    "QueryTimeout",
    "QueryoptError",
    "RecorderError",
    "RecorderPolicy",
    "RedisBackend",
    "Report",
    "ReportError",
    "ReportFormat",
    "ResultCache",
    "RetryPolicy",
    "Rows",
    "ScanHint",
    "ServerError",
    "Set",
    "Settings",
    "SlowQuery",
    "SlowQueryRecorder",
    "StatementKind",
    "TableRef",
    "TimeoutPolicy",
    "Transaction",
    "__version__",
    "analysis_cache_info",
    "analyze",
    "configure",
    "configure_async",
    "default_optimizer",
    "explain",
    "instrument",
    "metrics_summary",
    "optimize_query",
    "optimize_query_async",
    "set_analysis_cache_size",
    "uninstrument",
]
