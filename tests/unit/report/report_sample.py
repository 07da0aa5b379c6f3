"""A hand-built Report with hostile text in every recorded field, for renderer tests without a database."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from queryopt.report import (
    Count,
    FingerprintReport,
    Regression,
    Report,
    ReportWindow,
    Severity,
    SortKey,
    Summary,
    TimelineBucket,
)

START = datetime(2024, 5, 1, 12, tzinfo=UTC)
HOSTILE = "[bold red]x[/] <script>alert('x')</script> | `y` \"q\" *z* _w_ &amp; \\ #h"
FORMULA = '=HYPERLINK("http://example.invalid")'


def _regression(fingerprint: str, severity: Severity, mean_ratio: float | None) -> Regression:
    previous = None if severity is Severity.NEW else 10.0
    return Regression(fingerprint, severity, 50.0, 60.0, 0 if previous is None else 3, previous, 0.0, mean_ratio, None)


def sample_report() -> Report:
    crit = _regression("[red]fp[/red]", Severity.CRITICAL, math.inf)
    query = FingerprintReport(
        fingerprint=crit.fingerprint,
        kind=HOSTILE,
        normalized_sql=HOSTILE + "\n  -- second line",
        sample_sql="-- leading comment\n" + HOSTILE,
        calls=3,
        total_ms=150.0,
        mean_ms=50.0,
        min_ms=0.0,
        p50_ms=40.0,
        p95_ms=60.0,
        p99_ms=61.5,
        max_ms=62.0,
        share=1.0,
        timeouts=1,
        errors=2,
        first_seen=START,
        last_seen=START + timedelta(hours=1),
        hints=(Count(HOSTILE, 2), Count(None, 1)),
        cache_outcomes=(Count(FORMULA, 3),),
        regression=crit,
    )
    return Report(
        schema="queryopt",
        generated_at=START + timedelta(days=1),
        window=ReportWindow(START, START + timedelta(hours=24), START - timedelta(hours=24), 3600),
        sort=SortKey.TOTAL,
        top=20,
        fingerprint=None,
        summary=Summary(3, 1, 150.0, 50.0, 40.0, 60.0, 61.5, 62.0, 1, 2, START, START + timedelta(hours=1)),
        queries=(query,),
        regressions=(crit, _regression("0000000000000e11", Severity.NEW, None)),
        timeline=tuple(
            TimelineBucket(START + timedelta(hours=h), 1 if h < 3 else 0, 50.0 if h < 3 else 0.0, 62.0, 0, 0)
            for h in range(24)
        ),
    )
