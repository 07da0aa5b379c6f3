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
from queryopt.recorder import SlowQuery, SlowQueryRecorder
from queryopt.stats import Alert, AlertSeverity, QueryStats

__all__ = [
    "Alert",
    "AlertSeverity",
    "AnalysisError",
    "CacheError",
    "CachePolicy",
    "ConfigurationError",
    "HintError",
    "HintMode",
    "MigrationError",
    "QueryError",
    "QueryStats",
    "QueryTimeout",
    "QueryoptError",
    "RecorderError",
    "RecorderPolicy",
    "ReportError",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "SlowQuery",
    "SlowQueryRecorder",
    "TimeoutPolicy",
    "__version__",
]
