"""The report as JSON with a stable, versioned layout (``schema_version`` 1, documented in docs/report.md).

Version 1 only ever gains keys; renaming, removing or changing the meaning of
a key makes version 2. Durations are milliseconds as floats, shares fractions,
times ISO 8601 in UTC; a ratio is ``null`` when there is nothing to compare
with (a new fingerprint, or a previous value of 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from queryopt._version import __version__
from queryopt.report.model import (
    Count,
    FingerprintReport,
    PlanChangeNote,
    Regression,
    Report,
    Summary,
    TimelineBucket,
)

__all__ = ["SCHEMA_VERSION", "document", "render_json"]

SCHEMA_VERSION = 1


def _time(value: datetime) -> str:
    return value.isoformat()


def _ratio(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def _counts(values: tuple[Count, ...]) -> list[dict[str, Any]]:
    return [{"value": c.value, "calls": c.calls} for c in values]


def _regression(r: Regression) -> dict[str, Any]:
    return {
        "fingerprint": r.fingerprint,
        "severity": r.severity.value,
        "mean_ms": r.mean_ms,
        "p95_ms": r.p95_ms,
        "previous_calls": r.previous_calls,
        "previous_mean_ms": r.previous_mean_ms,
        "previous_p95_ms": r.previous_p95_ms,
        "mean_ratio": _ratio(r.mean_ratio),
        "p95_ratio": _ratio(r.p95_ratio),
    }


def _summary(s: Summary) -> dict[str, Any]:
    return {
        "calls": s.calls,
        "fingerprints": s.fingerprints,
        "total_ms": s.total_ms,
        "mean_ms": s.mean_ms,
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "p99_ms": s.p99_ms,
        "max_ms": s.max_ms,
        "timeouts": s.timeouts,
        "errors": s.errors,
        "first_seen": _time(s.first_seen),
        "last_seen": _time(s.last_seen),
    }


def _query(rank: int, q: FingerprintReport) -> dict[str, Any]:
    return {
        "rank": rank,
        "fingerprint": q.fingerprint,
        "kind": q.kind,
        "normalized_sql": q.normalized_sql,
        "sample_sql": q.sample_sql,
        "calls": q.calls,
        "total_ms": q.total_ms,
        "mean_ms": q.mean_ms,
        "min_ms": q.min_ms,
        "p50_ms": q.p50_ms,
        "p95_ms": q.p95_ms,
        "p99_ms": q.p99_ms,
        "max_ms": q.max_ms,
        "share": q.share,
        "timeouts": q.timeouts,
        "errors": q.errors,
        "rejections": q.rejections,
        "first_seen": _time(q.first_seen),
        "last_seen": _time(q.last_seen),
        "hints": _counts(q.hints),
        "cache_outcomes": _counts(q.cache_outcomes),
        "regression": _regression(q.regression),
    }


def _bucket(b: TimelineBucket) -> dict[str, Any]:
    return {
        "start": _time(b.start),
        "calls": b.calls,
        "total_ms": b.total_ms,
        "max_ms": b.max_ms,
        "timeouts": b.timeouts,
        "errors": b.errors,
    }


def _plan_change(c: PlanChangeNote) -> dict[str, Any]:
    return {
        "fingerprint": c.fingerprint,
        "at": _time(c.at),
        "from_plan": c.from_plan,
        "to_plan": c.to_plan,
        "before_mean_ms": c.before_mean_ms,
        "after_mean_ms": c.after_mean_ms,
        "severity": c.severity,
    }


def document(report: Report, advice: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document as Python values (what :func:`render_json` serialises).

    ``advice`` is index advice as plain JSON data (``queryopt advise --format json``); when given it becomes
    the ``advice`` key.
    """
    window = report.window
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generator": f"queryopt {__version__}",
        "generated_at": _time(report.generated_at),
        "table": f"{report.schema}.slow_queries",
        "window": {
            "start": _time(window.start),
            "end": _time(window.end),
            "previous_start": _time(window.previous_start),
            "seconds": window.seconds,
            "bucket_seconds": window.bucket_seconds,
        },
        "options": {"top": report.top, "sort": report.sort.value, "fingerprint": report.fingerprint},
        "summary": _summary(report.summary),
        "worst_severity": report.worst_severity.value,
        "queries": [_query(rank, q) for rank, q in enumerate(report.queries, start=1)],
        "regressions": [_regression(r) for r in report.regressions],
        "timeline": [_bucket(b) for b in report.timeline],
        "plan_changes": [_plan_change(c) for c in report.plan_changes],
        "plan_trees": [
            {"fingerprint": t.fingerprint, "plan_hash": t.plan_hash, "lines": list(t.lines)} for t in report.plan_trees
        ],
    }
    if advice is not None:
        doc["advice"] = dict(advice)
    return doc


def render_json(report: Report, advice: Mapping[str, Any] | None = None) -> str:
    """The report as an indented JSON text ending with a newline (with an ``advice`` key when given)."""
    return json.dumps(document(report, advice), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
