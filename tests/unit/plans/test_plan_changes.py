"""Plan changes from runs of calls, and which of them are regressions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queryopt.plans import PlanRun, plan_changes

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def run(fingerprint: str, plan: str, minute: int, mean: float, p95: float | None = None) -> PlanRun:
    start = T0 + timedelta(minutes=minute)
    return PlanRun(fingerprint, plan, start, start + timedelta(seconds=50), 10, mean, p95 if p95 is not None else mean)


def test_a_change_is_where_consecutive_runs_of_one_fingerprint_differ() -> None:
    runs = [run("a", "p1", 0, 1.0), run("a", "p2", 1, 5.0), run("a", "p1", 2, 1.1), run("b", "p9", 0, 3.0)]
    changes = plan_changes(runs)
    assert [(c.fingerprint, c.from_plan, c.to_plan, c.at) for c in changes] == [
        ("a", "p1", "p2", T0 + timedelta(minutes=1)),
        ("a", "p2", "p1", T0 + timedelta(minutes=2)),
    ]
    assert [c.severity for c in changes] == ["critical", None]


@pytest.mark.parametrize(
    ("before", "after", "severity"),
    [
        ((1.0, 1.0), (2.0, 2.0), None),  # exactly 2x is not a regression (the report's rule)
        ((1.0, 1.0), (2.1, 1.0), "warning"),
        ((1.0, 1.0), (1.0, 3.5), "critical"),  # p95 alone counts
        ((0.0, 0.0), (5.0, 5.0), None),  # nothing to compare with
    ],
)
def test_the_severity_follows_the_reports_2x_and_3x_rules(
    before: tuple[float, float], after: tuple[float, float], severity: str | None
) -> None:
    [change] = plan_changes([run("a", "p1", 0, *before), run("a", "p2", 1, *after)])
    assert change.severity == severity
