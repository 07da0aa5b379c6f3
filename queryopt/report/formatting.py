"""How numbers and times read in the human formats (terminal, Markdown, HTML); JSON and CSV keep raw values."""

from __future__ import annotations

import math
from datetime import datetime

from queryopt.report.model import Count, Regression, Severity, Summary

__all__ = ["bucket_name", "count", "counts", "duration", "moment", "ratio_text", "share", "trend"]


def duration(ms: float | None) -> str:
    """A duration in milliseconds, short enough for a narrow column.

    >>> [duration(v) for v in (4.256, 123.45, 1234.5, 95_000.0, 7_200_000.0)]
    ['4.26ms', '123.5ms', '1.23s', '1.6min', '2.0h']
    """
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{ms:.1f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f}min"
    return f"{ms / 3_600_000:.1f}h"


def share(fraction: float) -> str:
    """A fraction of all slow time as a percentage.

    >>> share(0.12345)
    '12.3%'
    """
    return f"{fraction * 100:.1f}%"


def count(value: int) -> str:
    """A whole number with thousands separators.

    >>> count(1234567)
    '1,234,567'
    """
    return f"{value:,}"


def ratio_text(value: float | None) -> str:
    """A ratio to the previous window: ``3.4x``, ``inf`` when the previous value was 0, ``-`` when there was none.

    >>> ratio_text(3.4213), ratio_text(None), ratio_text(math.inf)
    ('3.42x', '-', 'inf')
    """
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.2f}x"


def trend(regression: Regression) -> str:
    """One word for a fingerprint's comparison: ``new``, ``ok``, or the severity with the worse ratio.

    >>> r = Regression("ab", Severity.CRITICAL, 40.0, 90.0, 3, 10.0, 20.0, 4.0, 4.5)
    >>> trend(r)
    'critical 4.50x'
    """
    if regression.severity in (Severity.NEW, Severity.OK):
        return regression.severity.value
    worst = max(r for r in (regression.mean_ratio, regression.p95_ratio) if r is not None)
    return f"{regression.severity.value} {ratio_text(worst)}"


def moment(value: datetime, *, seconds: bool = False) -> str:
    """A UTC time as ``2024-05-01 12:00`` (with seconds when asked).

    >>> from datetime import UTC
    >>> moment(datetime(2024, 5, 1, 12, 0, 7, tzinfo=UTC), seconds=True)
    '2024-05-01 12:00:07'
    """
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def counts(values: tuple[Count, ...], *, empty: str) -> str:
    """``miss 12, bypass 3``: each value with its calls; ``empty`` names the ``None`` value.

    >>> counts((Count("miss", 12), Count(None, 3)), empty="none")
    'miss 12, none 3'
    """
    return ", ".join(f"{c.value if c.value is not None else empty} {count(c.calls)}" for c in values)


def bucket_name(seconds: int) -> str:
    """``hour``, ``15 minutes``, ``day``…

    >>> bucket_name(3600), bucket_name(900), bucket_name(604800)
    ('hour', '15 minutes', 'week')
    """
    names = {60: "minute", 3600: "hour", 86400: "day", 604800: "week"}
    if seconds in names:
        return names[seconds]
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes"


def summary_figures(summary: Summary) -> list[tuple[str, str]]:
    """The overall summary as (label, formatted value) pairs, in the order every renderer shows them."""
    s = summary
    return [
        ("slow calls", count(s.calls)),
        ("queries", count(s.fingerprints)),
        ("total time", duration(s.total_ms)),
        ("mean", duration(s.mean_ms)),
        ("p50", duration(s.p50_ms)),
        ("p95", duration(s.p95_ms)),
        ("p99", duration(s.p99_ms)),
        ("max", duration(s.max_ms)),
        ("timeouts", count(s.timeouts)),
        ("errors", count(s.errors)),
    ]
