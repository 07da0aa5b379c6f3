"""The report benchmark runs end to end in quick mode (its timings are printed, never asserted)."""

from __future__ import annotations

import io

from rich.console import Console

from benchmarks import report as benchmark
from tests.conftest import TestServer


def test_quick_benchmark_runs_and_prints_its_table(pg_server: TestServer) -> None:
    results = benchmark.run(quick=True, dsn=pg_server.conninfo())
    scenarios = [r for r in results if r["rows_in_window"] is not None]
    assert [r["rows_in_table"] for r in scenarios] == [20_000, 20_000, 40_000]
    assert all(r["rows_in_window"] == 20_000 and r["fingerprints"] > 100 for r in scenarios)
    assert scenarios[-1]["regressions"] > 0  # the generator slows a few fingerprints down in the window
    assert all(isinstance(r["met"], bool) and r["best_s"] > 0 for r in scenarios)
    out = io.StringIO()
    benchmark.print_table(results, Console(file=out, width=130, color_system=None))
    assert "20,000" in out.getvalue()
