"""The top queries as CSV: one row per fingerprint, raw numbers (milliseconds, fractions), RFC 4180 quoting.

Text cells that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``, tab or carriage return, e.g. a statement that begins with
a ``--`` comment) get a leading apostrophe, as OWASP advises for CSV files.
"""

from __future__ import annotations

import csv
import io
import math

from queryopt.report.model import Count, Report

__all__ = ["COLUMNS", "render_csv"]

COLUMNS = (
    "rank",
    "fingerprint",
    "kind",
    "calls",
    "total_ms",
    "mean_ms",
    "min_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "share",
    "timeouts",
    "errors",
    "rejections",
    "first_seen",
    "last_seen",
    "severity",
    "previous_calls",
    "previous_mean_ms",
    "previous_p95_ms",
    "mean_ratio",
    "p95_ratio",
    "hints",
    "cache_outcomes",
    "normalized_sql",
    "sample_sql",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return "inf" if math.isinf(value) else repr(value)


def _counts(values: tuple[Count, ...], *, empty: str) -> str:
    # value=calls pairs joined by "; "; the empty value is named as the other renderers name it
    return _text("; ".join(f"{c.value if c.value is not None else empty}={c.calls}" for c in values))


def render_csv(report: Report) -> str:
    """The top queries of ``report`` as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for rank, q in enumerate(report.queries, start=1):
        r = q.regression
        writer.writerow(
            [
                rank,
                q.fingerprint,
                _text(q.kind),
                q.calls,
                _number(q.total_ms),
                _number(q.mean_ms),
                _number(q.min_ms),
                _number(q.p50_ms),
                _number(q.p95_ms),
                _number(q.p99_ms),
                _number(q.max_ms),
                _number(q.share),
                q.timeouts,
                q.errors,
                q.rejections,
                q.first_seen.isoformat(),
                q.last_seen.isoformat(),
                r.severity.value,
                r.previous_calls,
                _number(r.previous_mean_ms),
                _number(r.previous_p95_ms),
                _number(r.mean_ratio),
                _number(r.p95_ratio),
                _counts(q.hints, empty="none"),
                _counts(q.cache_outcomes, empty="not cached"),
                _text(q.normalized_sql),
                _text(q.sample_sql),
            ]
        )
    return out.getvalue()
