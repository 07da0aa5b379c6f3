"""The advisor benchmark runs end to end in quick mode (its timings are printed, never asserted)."""

from __future__ import annotations

import pytest

from benchmarks import advisor as benchmark
from tests.conftest import TestServer


@pytest.mark.hypopg
def test_quick_benchmark_runs(pg_server: TestServer) -> None:
    rows = benchmark.run(quick=True, dsn=pg_server.conninfo())
    assert [row["fingerprints"] for row in rows] == [20, 20, 20]
    assert rows[1]["indexes"] == 10  # the default limit
    assert rows[2]["indexes"] > 10  # without the limit, more of the 20 lookups by non-key columns get one
    assert all(row["plans"] >= 20 and row["median_s"] > 0 for row in rows)
