"""queryopt: faster, safer and visible PostgreSQL queries.

The public API is what ``__all__`` lists; every other module and name may change.
"""

from queryopt._version import __version__
from queryopt.config import CachePolicy, HintMode, RecorderPolicy, RetryPolicy, Settings, TimeoutPolicy
from queryopt.errors import (
    AnalysisError,
    CacheError,
    ConfigurationError,
    HintError,
    MigrationError,
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

__all__ = [
    "AnalysisError",
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
    "Parallel",
    "PlanComparison",
    "QueryError",
    "QueryTimeout",
    "QueryoptError",
    "RecorderError",
    "RecorderPolicy",
    "ReportError",
    "RetryPolicy",
    "Rows",
    "ScanHint",
    "ServerError",
    "Set",
    "Settings",
    "TimeoutPolicy",
    "__version__",
    "explain",
]
