"""The long-list benchmark runs and reports every shape and size; timings are printed by it, never asserted here."""

from __future__ import annotations

from benchmarks import long_lists as benchmark


def test_quick_run_reports_every_shape_with_its_growth() -> None:
    rows = benchmark.run(quick=True)
    assert {(row["shape"], row["items"]) for row in rows} == {
        (shape, items) for shape in benchmark.SHAPES for items in (10_000, 40_000)
    }
    for row in rows:
        assert isinstance(row["analysis_ms"], float)
        assert row["met"] in (True, False, None)
    assert all(isinstance(row["growth_40k_over_10k"], float) for row in rows if row["items"] == 40_000)
