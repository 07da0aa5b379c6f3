"""The hot-path benchmark runs end to end and reports every case; timings are printed by it, never asserted here."""

from __future__ import annotations

from benchmarks import hot_path as benchmark


def test_quick_run_reports_every_case_against_raw_psycopg_on_one_connection() -> None:
    rows = benchmark.run(quick=True, pinned=False)  # pinning would pin the test process too
    cases = [(row["query"], row["case"]) for row in rows]
    assert cases[:9] == [
        ("primary-key lookup", "raw psycopg, one connection"),
        ("primary-key lookup", "floor: raw psycopg, reused cursor"),
        ("primary-key lookup", "Optimizer.query, cache off"),
        ("primary-key lookup", "Optimizer.execute, cache off"),
        ("primary-key lookup", "optimize_query, cache off"),
        ("primary-key lookup", "cache hit: Optimizer.execute"),
        ("primary-key lookup", "cache hit: Optimizer.query"),
        ("primary-key lookup", "cache hit: optimize_query"),
        ("primary-key lookup", "floor: a dict lookup and an expiry check"),
    ]
    assert rows[0]["target"] == "baseline (no pool)"
    assert ("primary-key lookup, asyncio", "AsyncOptimizer.query, cache off") in cases
    engine = {row["case"]: row for row in rows if row["query"] == "primary-key lookup, SQLAlchemy text()"}
    assert engine["instrumented engine, cache off"]["target"] == "≤ 1.05x plain"
    startup = {row["case"]: row for row in rows if row["query"] == "fresh interpreter"}
    assert startup["import queryopt: resident memory added"]["target"] == "≤ 25 MiB"
    assert startup["queryopt --help: wall time"]["target"] == "≤ 0.30 s"
    verdicts = [row["met"] for row in rows if row["met"] is not None]
    assert len(verdicts) == 12
    assert all(isinstance(verdict, bool) for verdict in verdicts)
