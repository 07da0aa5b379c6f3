"""The report's numbers, aggregated by PostgreSQL from ``<schema>.slow_queries`` (SQL in ``statements``).

Everything is read in read-only REPEATABLE READ transactions sharing one
snapshot (``pg_export_snapshot``), so the summary, the per-query rows and the
timeline describe the same moment even while the recorder keeps inserting. Two
connections work at once: the per-fingerprint aggregates on one, the summary,
timeline and hint/cache counts on the other, which roughly halves the wall time
on a server with two or more cores. Values are bound parameters; the table name
is a validated schema quoted with :class:`psycopg.sql.Identifier`.

Percentiles are PostgreSQL's ``percentile_cont`` (continuous: linear
interpolation between the two closest recorded durations), not a nearest-rank
value.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from queryopt.errors import ReportError, migrate_command
from queryopt.report.model import (
    Count,
    FingerprintReport,
    Regression,
    Report,
    ReportWindow,
    Severity,
    SortKey,
    Summary,
    TimelineBucket,
    classify,
    ratio,
)
from queryopt.report.statements import (
    COUNTS,
    PER_FINGERPRINT,
    SAMPLES,
    SESSION,
    SORT_COLUMNS,
    SUMMARY,
    TIMELINE,
    compose,
)
from queryopt.report.window import bucket_starts, resolve_window

__all__ = ["report"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TABLE = "slow_queries"
_CONNECT_TIMEOUT = "10"

Row = tuple[Any, ...]


def _check_arguments(schema: str, top: int, sort: SortKey | str, fingerprint: str | None) -> SortKey:
    if not isinstance(schema, str) or not _IDENTIFIER.match(schema):
        raise ReportError(f"schema name {schema!r} is not a lower-case identifier (letters, digits, _)")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ReportError(f"top must be a whole number >= 1, got {top!r}")
    if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint.strip()):
        raise ReportError(f"fingerprint must be a non-empty string, got {fingerprint!r}")
    try:
        return SortKey(sort)
    except ValueError:
        allowed = ", ".join(key.value for key in SortKey)
        raise ReportError(f"cannot sort by {sort!r}: use one of {allowed}") from None


def one_line(exc: BaseException) -> str:
    """A driver error's text on one line (libpq's messages span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def connect_read_only(conninfo: str, *, application_name: str, connect_timeout: str) -> psycopg.Connection[Row]:
    """A read-only connection that fails fast and says why in one line (a report, the live view)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ReportError(
            f"the connection string is not valid: {one_line(exc)} "
            "(use postgresql://user@host/dbname or 'host=… dbname=…')"
        ) from exc
    # Fail fast on an unreachable server instead of waiting for the OS; the caller's own values win.
    defaults = {"connect_timeout": connect_timeout, "application_name": application_name}
    from_env = {"connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
    extra = {key: value for key, value in defaults.items() if key not in params and from_env[key] not in os.environ}
    try:
        conn = psycopg.connect(make_conninfo(conninfo, **extra))
    except psycopg.Error as exc:
        raise ReportError(f"cannot connect to the database: {one_line(exc)}") from exc
    conn.read_only = True
    return conn


def _connect(conninfo: str) -> psycopg.Connection[Row]:
    conn = connect_read_only(conninfo, application_name="queryopt report", connect_timeout=_CONNECT_TIMEOUT)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for every aggregate
    return conn


@dataclass(frozen=True, slots=True)
class _Scope:
    """What every statement of one report is about: the table, the window, the optional fingerprint."""

    table: sql.Identifier
    window: ReportWindow
    fingerprint: str | None

    def compose(self, template: str, order: str = "") -> sql.Composed:
        return compose(template, self.table, fingerprint=self.fingerprint, order=order)

    @property
    def params(self) -> dict[str, Any]:
        first, last = bucket_starts(self.window)
        return {
            "start": self.window.start,
            "end": self.window.end,
            "previous_start": self.window.previous_start,
            "fingerprint": self.fingerprint,
            "first_bucket": first,
            "last_bucket": last,
            "width": timedelta(seconds=self.window.bucket_seconds),
        }


@dataclass(frozen=True, slots=True)
class _WindowAggregates:
    """What the second connection computes while the first aggregates per fingerprint."""

    summary: Row
    timeline: tuple[TimelineBucket, ...]
    hints: dict[str, list[tuple[str | None, int]]]
    cache_outcomes: dict[str, list[tuple[str | None, int]]]


def report(
    conninfo: str,
    *,
    since: timedelta | float | str | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    top: int = 20,
    sort: SortKey | str = SortKey.TOTAL,
    fingerprint: str | None = None,
    schema: str = "queryopt",
    now: datetime | None = None,
) -> Report:
    """Aggregate the slow-query table of ``schema`` over a time window into a :class:`Report`.

    The window is ``since`` (a ``timedelta``, seconds, or ``"24h"``) ending at
    ``now``, or ``[from_, to)``; the default is the last 24 hours. ``now``
    defaults to the database server's clock. ``top`` fingerprints are listed,
    ordered by ``sort``; regressions cover every fingerprint of the window.
    Opens two connections for the duration of the report.

    Raises :class:`~queryopt.ReportError` with a one-line reason when the
    database is unreachable, the table is missing (migrations not applied) or
    empty, the fingerprint is unknown, or the window holds no slow query.
    """
    sort_key = _check_arguments(schema, top, sort, fingerprint)
    table = sql.Identifier(schema, _TABLE)
    with _connect(conninfo) as conn:
        try:
            with conn.transaction():
                conn.execute(SESSION)
                _require_table(conn, schema)
                clock = conn.execute("SELECT statement_timestamp(), pg_export_snapshot()").fetchone()
                assert clock is not None
                generated_at, snapshot = clock
                window = resolve_window(now=now or generated_at, since=since, start=from_, end=to)
                scope = _Scope(table, window, fingerprint)
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="queryopt-report") as pool:
                    side = pool.submit(_window_aggregates, conninfo, snapshot, scope)
                    rows = conn.execute(scope.compose(PER_FINGERPRINT, SORT_COLUMNS[sort_key]), scope.params).fetchall()
                    samples = _samples(conn, scope, rows[:top])
                    aggregates = side.result()
                if not rows:
                    raise ReportError(_nothing_found(conn, table, window, fingerprint))
        except psycopg.Error as exc:
            raise ReportError(f"the report query failed: {one_line(exc)}") from exc
    regressions = sorted((_regression(row) for row in rows), key=_regression_order)
    return Report(
        schema=schema,
        generated_at=generated_at,
        window=window,
        sort=sort_key,
        top=top,
        fingerprint=fingerprint,
        summary=_summary(aggregates.summary, fingerprints=len(rows)),
        queries=tuple(_query(row, samples[row[0]], aggregates) for row in rows[:top]),
        regressions=tuple(r for r in regressions if r.severity is not Severity.OK),
        timeline=aggregates.timeline,
    )


def _window_aggregates(conninfo: str, snapshot: str, scope: _Scope) -> _WindowAggregates:
    """Summary, timeline and hint/cache counts, on a second connection that sees the first one's snapshot."""
    with _connect(conninfo) as conn, conn.transaction():
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        conn.execute(SESSION)
        params = scope.params
        summary = conn.execute(scope.compose(SUMMARY), params).fetchone()
        assert summary is not None
        timeline = tuple(
            TimelineBucket(start=start, calls=calls, total_ms=total, max_ms=maximum, timeouts=timeouts, errors=errors)
            for start, calls, total, maximum, timeouts, errors in conn.execute(scope.compose(TIMELINE), params)
        )
        hints: dict[str, list[tuple[str | None, int]]] = defaultdict(list)
        outcomes: dict[str, list[tuple[str | None, int]]] = defaultdict(list)
        for fingerprint, is_hint, value, calls in conn.execute(scope.compose(COUNTS), params):
            (hints if is_hint else outcomes)[fingerprint].append((value, calls))
    return _WindowAggregates(summary, timeline, hints, outcomes)


def _samples(conn: psycopg.Connection[Row], scope: _Scope, rows: Sequence[Row]) -> dict[str, tuple[str, str, str]]:
    """``fingerprint -> (kind, normalized_sql, sql_text)`` of the slowest call of each listed fingerprint."""
    if not rows:
        return {}
    params = {**scope.params, "fingerprints": [row[0] for row in rows]}
    return {fp: (kind, normalized, text) for fp, kind, normalized, text in conn.execute(scope.compose(SAMPLES), params)}


def _require_table(conn: psycopg.Connection[Row], schema: str) -> None:
    found = conn.execute(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s", [schema, _TABLE]
    ).fetchone()
    if found is None:
        raise ReportError(f"the table {schema}.{_TABLE} does not exist: run `{migrate_command(schema)}` first")


def _nothing_found(
    conn: psycopg.Connection[Row], table: sql.Identifier, window: ReportWindow, fingerprint: str | None
) -> str:
    """Why the window is empty, in one line: no rows at all, unknown fingerprint, or nothing in this window."""
    only = sql.SQL("WHERE fingerprint = %(fingerprint)s" if fingerprint is not None else "")
    extent = conn.execute(
        sql.SQL("SELECT min(started_at), max(started_at) FROM {table} {only}").format(table=table, only=only),
        {"fingerprint": fingerprint},
    ).fetchone()
    assert extent is not None
    between = f"between {window.start.isoformat()} and {window.end.isoformat()}"
    if extent[0] is None and fingerprint is None:
        return f"the slow-query table {table.as_string(conn)} is empty: nothing has been recorded yet"
    if extent[0] is None:
        return f"no slow query has fingerprint {fingerprint!r} (check the fingerprint, or the schema)"
    what = f"fingerprint {fingerprint!r}" if fingerprint is not None else "the table"
    return (
        f"no slow query {between}; {what} has calls from {extent[0].isoformat()} to {extent[1].isoformat()}"
        " (widen --since or choose --from/--to)"
    )


def _summary(row: Row, *, fingerprints: int) -> Summary:
    calls, total, mean, percentiles, maximum, timeouts, errors, first_seen, last_seen = row
    return Summary(
        calls=calls,
        fingerprints=fingerprints,
        total_ms=total,
        mean_ms=mean,
        p50_ms=percentiles[0],
        p95_ms=percentiles[1],
        p99_ms=percentiles[2],
        max_ms=maximum,
        timeouts=timeouts,
        errors=errors,
        first_seen=first_seen,
        last_seen=last_seen,
    )


def _regression(row: Row) -> Regression:
    fingerprint, mean, percentiles = row[0], row[3], row[5]
    previous_calls, previous_mean, previous_p95 = row[12:15]
    p95 = percentiles[1]
    mean_ratio = ratio(mean, previous_mean)
    p95_ratio = ratio(p95, previous_p95)
    return Regression(
        fingerprint=fingerprint,
        severity=classify(mean_ratio, p95_ratio, seen_before=previous_calls > 0),
        mean_ms=mean,
        p95_ms=p95,
        previous_calls=previous_calls,
        previous_mean_ms=previous_mean,
        previous_p95_ms=previous_p95,
        mean_ratio=mean_ratio,
        p95_ratio=p95_ratio,
    )


def _regression_order(regression: Regression) -> tuple[int, float, str]:
    worst = max((r for r in (regression.mean_ratio, regression.p95_ratio) if r is not None), default=0.0)
    return (-regression.severity.rank, -worst, regression.fingerprint)


def _counts(pairs: Sequence[tuple[str | None, int]]) -> tuple[Count, ...]:
    ordered = sorted(pairs, key=lambda pair: (-pair[1], pair[0] is None, pair[0] or ""))
    return tuple(Count(value=value, calls=calls) for value, calls in ordered)


def _query(row: Row, sample: tuple[str, str, str], aggregates: _WindowAggregates) -> FingerprintReport:
    fingerprint, calls, total, mean, minimum, percentiles, maximum, timeouts, errors, first, last, share = row[:12]
    kind, normalized, text = sample
    return FingerprintReport(
        fingerprint=fingerprint,
        kind=kind,
        normalized_sql=normalized,
        sample_sql=text,
        calls=calls,
        total_ms=total,
        mean_ms=mean,
        min_ms=minimum,
        p50_ms=percentiles[0],
        p95_ms=percentiles[1],
        p99_ms=percentiles[2],
        max_ms=maximum,
        share=share if share is not None else 0.0,
        timeouts=timeouts,
        errors=errors,
        first_seen=first,
        last_seen=last,
        hints=_counts(aggregates.hints.get(fingerprint, [])),
        cache_outcomes=_counts(aggregates.cache_outcomes.get(fingerprint, [])),
        regression=_regression(row),
        rejections=row[15],
    )
