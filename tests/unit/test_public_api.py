from __future__ import annotations

import pickle

import queryopt
from queryopt import AnalysisError, QueryoptError, QueryTimeout


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
