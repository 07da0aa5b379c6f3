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
from queryopt.report import Report, ReportFormat

__all__ = [
    "AnalysisError",
    "CacheError",
    "CachePolicy",
    "ConfigurationError",
    "HintError",
    "HintMode",
    "MigrationError",
    "QueryError",
    "QueryTimeout",
    "QueryoptError",
    "RecorderError",
    "RecorderPolicy",
    "Report",
    "ReportError",
    "ReportFormat",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "TimeoutPolicy",
    "__version__",
]
