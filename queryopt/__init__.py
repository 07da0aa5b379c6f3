"""queryopt: faster, safer and visible PostgreSQL queries.

The public API is what ``__all__`` lists; every other module and name may change.

Names are imported on first use (PEP 562), so ``import queryopt`` stays light: a
program that only runs queries never loads the report's renderers (rich),
SQLAlchemy or redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from queryopt._version import __version__

if TYPE_CHECKING:
    from queryopt.advisor import Advice, advise
    from queryopt.analysis import (
        Analysis,
        PlaceholderStyle,
        StatementKind,
        TableRef,
        analysis_cache_info,
        analyze,
        set_analysis_cache_size,
    )
    from queryopt.cache import ResultCache
    from queryopt.cache.backends.redis import RedisBackend
    from queryopt.config import (
        CachePolicy,
        HintMode,
        LimitMode,
        LimitPolicy,
        PlanGuardPolicy,
        RecorderPolicy,
        RetryPolicy,
        Settings,
        TimeoutPolicy,
    )
    from queryopt.errors import (
        AdvisorError,
        AnalysisError,
        CacheError,
        ConfigurationError,
        DatabaseConnectionError,
        HintError,
        MigrationError,
        PinError,
        QueryError,
        QueryoptError,
        QueryRejected,
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
    from queryopt.integrations.sqlalchemy import instrument, uninstrument
    from queryopt.optimizer import (
        Alert,
        AlertSeverity,
        AsyncOptimizer,
        AsyncTransaction,
        CacheDecision,
        Optimizer,
        QueryStats,
        Transaction,
        configure,
        configure_async,
        default_optimizer,
        metrics_summary,
        optimize_query,
        optimize_query_async,
    )
    from queryopt.recorder import SlowQuery, SlowQueryRecorder
    from queryopt.report import Report, ReportFormat
    from queryopt.result import QueryResult

_EXPORTS: Final[dict[str, str]] = {
    "Advice": "queryopt.advisor",
    "AdvisorError": "queryopt.errors",
    "Alert": "queryopt.optimizer",
    "AlertSeverity": "queryopt.optimizer",
    "Analysis": "queryopt.analysis",
    "AnalysisError": "queryopt.errors",
    "AsyncOptimizer": "queryopt.optimizer",
    "AsyncTransaction": "queryopt.optimizer",
    "CacheDecision": "queryopt.optimizer",
    "CacheError": "queryopt.errors",
    "CachePolicy": "queryopt.config",
    "ConfigurationError": "queryopt.errors",
    "DatabaseConnectionError": "queryopt.errors",
    "HintError": "queryopt.errors",
    "HintMode": "queryopt.config",
    "HintRules": "queryopt.hints",
    "HintSet": "queryopt.hints",
    "JoinHint": "queryopt.hints",
    "Leading": "queryopt.hints",
    "LimitMode": "queryopt.config",
    "LimitPolicy": "queryopt.config",
    "MigrationError": "queryopt.errors",
    "PinError": "queryopt.errors",
    "PlanGuardPolicy": "queryopt.config",
    "Optimizer": "queryopt.optimizer",
    "Parallel": "queryopt.hints",
    "PlaceholderStyle": "queryopt.analysis",
    "PlanComparison": "queryopt.hints",
    "QueryError": "queryopt.errors",
    "QueryRejected": "queryopt.errors",
    "QueryResult": "queryopt.result",
    "QueryStats": "queryopt.optimizer",
    "QueryTimeout": "queryopt.errors",
    "QueryoptError": "queryopt.errors",
    "RecorderError": "queryopt.errors",
    "RecorderPolicy": "queryopt.config",
    "RedisBackend": "queryopt.cache.backends.redis",
    "Report": "queryopt.report",
    "ReportError": "queryopt.errors",
    "ReportFormat": "queryopt.report",
    "ResultCache": "queryopt.cache",
    "RetryPolicy": "queryopt.config",
    "Rows": "queryopt.hints",
    "ScanHint": "queryopt.hints",
    "ServerError": "queryopt.errors",
    "Set": "queryopt.hints",
    "Settings": "queryopt.config",
    "SlowQuery": "queryopt.recorder",
    "SlowQueryRecorder": "queryopt.recorder",
    "StatementKind": "queryopt.analysis",
    "TableRef": "queryopt.analysis",
    "TimeoutPolicy": "queryopt.config",
    "Transaction": "queryopt.optimizer",
    "advise": "queryopt.advisor",
    "analysis_cache_info": "queryopt.analysis",
    "analyze": "queryopt.analysis",
    "configure": "queryopt.optimizer",
    "configure_async": "queryopt.optimizer",
    "default_optimizer": "queryopt.optimizer",
    "explain": "queryopt.hints",
    "instrument": "queryopt.integrations.sqlalchemy",
    "metrics_summary": "queryopt.optimizer",
    "optimize_query": "queryopt.optimizer",
    "optimize_query_async": "queryopt.optimizer",
    "set_analysis_cache_size": "queryopt.analysis",
    "uninstrument": "queryopt.integrations.sqlalchemy",
}
"""Each public name and the module that defines it."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'queryopt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "Advice",
    "AdvisorError",
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
    "DatabaseConnectionError",
    "HintError",
    "HintMode",
    "HintRules",
    "HintSet",
    "JoinHint",
    "Leading",
    "LimitMode",
    "LimitPolicy",
    "MigrationError",
    "Optimizer",
    "Parallel",
    "PinError",
    "PlaceholderStyle",
    "PlanComparison",
    "PlanGuardPolicy",
    "QueryError",
    "QueryRejected",
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
    "advise",
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
