"""The analysis benchmark runs and reports every measure; timings are printed by it, never asserted here."""

from __future__ import annotations

import io

from rich.console import Console

from benchmarks import analysis as benchmark


def test_quick_run_reports_hit_miss_and_parse_for_both_cases() -> None:
    rows = benchmark.run(quick=True)
    assert {(row["case"], row["measure"]) for row in rows} == {
        (case, measure)
        for case in ("PK lookup", "TPC-H average")
        for measure in ("LRU hit", "miss (full analysis)", "bare parse_one")
    }
    for row in rows:
        assert isinstance(row["median_us"], float)
        assert row["median_us"] > 0
        assert row["met"] in (True, False, None)
    output = io.StringIO()
    benchmark.render(rows, Console(file=output, width=140))
    assert "TPC-H average" in output.getvalue()
    assert "target" in output.getvalue()
