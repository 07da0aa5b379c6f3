"""The limiter benchmark runs and reports every case; timings are printed by it, never asserted here."""

from __future__ import annotations

from benchmarks import limits as benchmark


def test_quick_run_reports_the_floor_the_peers_and_both_limiter_modes() -> None:
    rows = benchmark.run(quick=True, pinned=False)
    cases = [str(row["case"]) for row in rows]
    assert cases[0] == "empty call (floor)"
    assert sum(case.startswith("queryopt limiter") for case in cases) == 2
    for row in rows:
        assert row["met"] in (True, False, None)
        assert row["pinned"] is False
