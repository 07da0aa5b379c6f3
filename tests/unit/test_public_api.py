from __future__ import annotations

import pickle
import subprocess
import sys

import queryopt
from queryopt import AnalysisError, QueryoptError, QueryTimeout

PUBLIC_API = [
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
"""The public names: a change here is a change of the public API (a release note, maybe a major version)."""


def test_the_public_api_is_exactly_what_was_promised() -> None:
    assert queryopt.__all__ == PUBLIC_API


def test_import_queryopt_loads_no_optional_or_heavy_dependency() -> None:
    heavy = ("rich", "sqlalchemy", "redis", "sqlglot")
    script = f"import sys, queryopt; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_all_is_sorted_and_importable() -> None:
    assert queryopt.__all__ == sorted(queryopt.__all__)
    for name in queryopt.__all__:
        assert hasattr(queryopt, name), name


def test_every_error_derives_from_queryopt_error() -> None:
    errors = [getattr(queryopt, name) for name in queryopt.__all__ if name.endswith(("Error", "Timeout"))]
    assert errors
    for error in errors:
        assert issubclass(error, QueryoptError), error


def test_errors_pickle_with_their_context() -> None:
    timeout = QueryTimeout("too slow", sql="SELECT pg_sleep(5)", fingerprint="ab12", limit=1.0, elapsed=1.01)
    copy = pickle.loads(pickle.dumps(timeout))
    assert (copy.sqlstate, copy.limit, copy.elapsed, copy.fingerprint) == ("57014", 1.0, 1.01, "ab12")
    assert str(copy) == "too slow"
    syntax = AnalysisError("bad", sql="SELEC 1", line=1, column=5, highlight="SELEC")
    assert pickle.loads(pickle.dumps(syntax)).column == 5
