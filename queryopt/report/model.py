"""The report as plain, frozen data: what every renderer reads and nothing more.

Durations are milliseconds (``float``), shares are fractions (0..1), times are
timezone-aware UTC datetimes. Percentiles are PostgreSQL's ``percentile_cont``:
the continuous percentile, interpolated linearly between the two nearest
recorded durations (so p95 of ``[10, 20]`` is 19.5, a value no call took).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "CRITICAL_RATIO",
    "WARNING_RATIO",
    "Count",
    "FingerprintReport",
    "Regression",
    "Report",
    "ReportWindow",
    "Severity",
    "SortKey",
    "Summary",
    "TimelineBucket",
    "classify",
    "ratio",
]

WARNING_RATIO = 2.0
"""Mean or p95 more than this many times the previous window's is a warning."""
CRITICAL_RATIO = 3.0
"""Mean or p95 more than this many times the previous window's is critical."""


class Severity(StrEnum):
    """How a fingerprint compares with the previous window of the same length.

    ``NEW`` (absent from the previous window) is informational: only
    ``WARNING`` and ``CRITICAL`` count as regressions for ``--fail-on``.
    """

    OK = "ok"
    NEW = "new"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Orders severities: ok < new < warning < critical."""
        return _RANK[self]


_RANK = {Severity.OK: 0, Severity.NEW: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class SortKey(StrEnum):
    """What the top-N list is ordered by (largest first)."""

    TOTAL = "total"
    MEAN = "mean"
    P95 = "p95"
    CALLS = "calls"
    MAX = "max"


def ratio(current: float, previous: float | None) -> float | None:
    """``current / previous``; ``None`` without a previous value, infinite when it was 0.

    >>> ratio(30.0, 10.0)
    3.0
    >>> ratio(5.0, None) is None
    True
    >>> ratio(0.0, 0.0)
    1.0
    """
    if previous is None:
        return None
    if previous == 0:
        return 1.0 if current == 0 else math.inf
    return current / previous


def classify(mean_ratio: float | None, p95_ratio: float | None, *, seen_before: bool) -> Severity:
    """The severity of a fingerprint from its mean and p95 ratios to the previous window.

    More than 3x worse on either is critical, more than 2x a warning; exactly 2x is not.

    >>> classify(3.5, 1.0, seen_before=True)
    <Severity.CRITICAL: 'critical'>
    >>> classify(1.2, 2.01, seen_before=True)
    <Severity.WARNING: 'warning'>
    >>> classify(2.0, 2.0, seen_before=True)
    <Severity.OK: 'ok'>
    >>> classify(None, None, seen_before=False)
    <Severity.NEW: 'new'>
    """
    if not seen_before:
        return Severity.NEW
    worst = max((r for r in (mean_ratio, p95_ratio) if r is not None), default=1.0)
    if worst > CRITICAL_RATIO:
        return Severity.CRITICAL
    if worst > WARNING_RATIO:
        return Severity.WARNING
    return Severity.OK


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """The reported time range ``[start, end)`` and the one it is compared with."""

    start: datetime
    end: datetime
    previous_start: datetime
    """Start of the comparison window ``[previous_start, start)``, of the same length."""
    bucket_seconds: int
    """Width of one timeline bucket."""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Count:
    """How many slow calls had one value of a column (a hint block, a cache outcome)."""

    value: str | None
    """The value; ``None`` when the column was empty (no hint, no cache involved)."""
    calls: int


@dataclass(frozen=True, slots=True)
class Regression:
    """One fingerprint of the reported window compared with the previous window."""

    fingerprint: str
    severity: Severity
    mean_ms: float
    p95_ms: float
    previous_calls: int
    """Slow calls in the previous window; 0 means the fingerprint is new."""
    previous_mean_ms: float | None
    previous_p95_ms: float | None
    mean_ratio: float | None
    """``mean_ms / previous_mean_ms``; ``None`` when new, infinite when the previous mean was 0."""
    p95_ratio: float | None
    """``p95_ms / previous_p95_ms``, like ``mean_ratio``."""


@dataclass(frozen=True, slots=True)
class FingerprintReport:
    """Aggregates of one fingerprint over the reported window."""

    fingerprint: str
    kind: str
    normalized_sql: str
    sample_sql: str
    """The statement of the slowest call in the window (the latest on a tie), as it was sent."""
    calls: int
    total_ms: float
    mean_ms: float
    min_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    share: float
    """This fingerprint's part of all slow time in the window, 0..1."""
    timeouts: int
    errors: int
    """Calls that ended with an error (a SQLSTATE was recorded); timeouts count here too."""
    first_seen: datetime
    last_seen: datetime
    hints: tuple[Count, ...]
    """Hint blocks the calls ran with, most frequent first."""
    cache_outcomes: tuple[Count, ...]
    """Result-cache outcomes of the calls, most frequent first."""
    regression: Regression
    rejections: int = 0
    """Calls a concurrency limit turned away before they ran (not in ``calls`` nor in any duration)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """The whole reported window at once."""

    calls: int
    fingerprints: int
    total_ms: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    timeouts: int
    errors: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class TimelineBucket:
    """Slow calls that started in ``[start, start + bucket_seconds)``."""

    start: datetime
    calls: int
    total_ms: float
    max_ms: float
    timeouts: int
    errors: int


@dataclass(frozen=True, slots=True)
class PlanChangeNote:
    """A plan change of a fingerprint in the window (from ``queryopt plans``), shown next to the regressions."""

    fingerprint: str
    at: datetime
    from_plan: str
    to_plan: str
    before_mean_ms: float
    after_mean_ms: float
    severity: str | None
    """``warning``/``critical`` when the change was a regression (2x/3x), else ``None``."""


@dataclass(frozen=True, slots=True)
class PlanTree:
    """The latest captured plan of a fingerprint, one indented line per node."""

    fingerprint: str
    plan_hash: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the renderers show, computed once by :func:`queryopt.report.report`."""

    schema: str
    generated_at: datetime
    window: ReportWindow
    sort: SortKey
    top: int
    fingerprint: str | None
    """The fingerprint the report was restricted to, if any."""
    summary: Summary
    queries: tuple[FingerprintReport, ...]
    """The top ``top`` fingerprints by ``sort``, largest first."""
    regressions: tuple[Regression, ...]
    """Every fingerprint of the window that is new or worse (not only the top ones), worst first."""
    timeline: tuple[TimelineBucket, ...]
    """Every bucket of the window in time order, empty ones included."""
    plan_changes: tuple[PlanChangeNote, ...] = ()
    """Plan changes in the window, oldest first (given by the caller: the report itself reads no plans)."""
    plan_trees: tuple[PlanTree, ...] = ()
    """The latest plan of the top queries that have one."""

    def plan_tree(self, fingerprint: str) -> PlanTree | None:
        return next((tree for tree in self.plan_trees if tree.fingerprint == fingerprint), None)

    @property
    def worst_severity(self) -> Severity:
        return max((r.severity for r in self.regressions), key=lambda s: s.rank, default=Severity.OK)

    def findings_at_least(self, severity: Severity) -> tuple[Regression, ...]:
        """Regressions at or above ``severity`` (what ``--fail-on`` checks)."""
        return tuple(r for r in self.regressions if r.severity.rank >= severity.rank)
