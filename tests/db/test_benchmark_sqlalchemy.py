"""The SQLAlchemy benchmark runs end to end and reports every case; timings are printed by it, never asserted here."""

from __future__ import annotations

from benchmarks import sqlalchemy as benchmark


def test_quick_run_reports_every_case_with_a_verdict_for_the_target() -> None:
    rows = benchmark.run(quick=True, pinned=False)  # pinning would pin the test process too
    assert [(row["query"], row["case"]) for row in rows] == [
        ("Core text() PK lookup", "plain engine"),
        ("Core text() PK lookup", "instrumented"),
        ("Core text() PK lookup", "instrumented, cache hit"),
        ("Core text() PK lookup", "control: another plain engine"),
        ("Core text() PK lookup", "reference: 2 empty listeners"),
        ("ORM session.get", "plain engine"),
        ("ORM session.get", "instrumented"),
        ("ORM select one", "plain engine"),
        ("ORM select one", "instrumented"),
        ("ORM select one", "instrumented, cache hit"),
    ]
    verdicts = [row["met"] for row in rows if row["met"] is not None]
    assert len(verdicts) == 1
    assert all(str(row["vs plain"]).endswith("x") for row in rows)
