"""The report's numbers, aggregated by PostgreSQL from ``<schema>.slow_queries``.

Every statement runs in one read-only REPEATABLE READ transaction, so the
summary, the per-query rows and the timeline describe the same snapshot even
while the recorder keeps inserting. Values are bound parameters; the table name
is a validated schema quoted with :class:`psycopg.sql.Identifier`.

Percentiles are PostgreSQL's ``percentile_cont`` (continuous: linear
interpolation between the two closest recorded durations), not a nearest-rank
value. Plans (see ``benchmarks/report.py``): per-fingerprint numbers come from
one ordered index-only range scan per fingerprint (migration 0002), the
timeline from one index range per bucket, so no step sorts the whole window
except the overall percentiles.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from queryopt.errors import ReportError
from queryopt.report.model import (
    Count,
    QueryStats,
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
from queryopt.report.window import bucket_starts, resolve_window

__all__ = ["report"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TABLE = "slow_queries"
_CONNECT_TIMEOUT = "10"
# Sorts of a whole window stay in memory; JIT compilation costs more than it saves on these scans.
_SESSION = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off; SET LOCAL TimeZone = 'UTC'"

_PER_FINGERPRINT = """
WITH present AS (
    SELECT DISTINCT fingerprint FROM {table}
    WHERE started_at >= %(start)s AND started_at < %(end)s {only}
), per_fingerprint AS (
    SELECT p.fingerprint, cur.*, prev.previous_calls, prev.previous_mean_ms, prev.previous_p95_ms
    FROM present AS p
    CROSS JOIN LATERAL (
        SELECT count(*) AS calls,
               sum(s.duration_ms) AS total_ms,
               avg(s.duration_ms) AS mean_ms,
               min(s.duration_ms) AS min_ms,
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s.duration_ms) AS percentiles,
               max(s.duration_ms) AS max_ms,
               count(*) FILTER (WHERE s.timed_out) AS timeouts,
               count(*) FILTER (WHERE s.sqlstate IS NOT NULL) AS errors,
               min(s.started_at) AS first_seen,
               max(s.started_at) AS last_seen,
               -- the slowest call (ties: the latest id) without a second pass: arrays compare element-wise
               max(ARRAY[s.duration_ms, s.id::double precision]) AS slowest
        FROM {table} AS s
        WHERE s.fingerprint = p.fingerprint AND s.started_at >= %(start)s AND s.started_at < %(end)s
    ) AS cur
    CROSS JOIN LATERAL (
        SELECT count(*) AS previous_calls,
               avg(s.duration_ms) AS previous_mean_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s.duration_ms) AS previous_p95_ms
        FROM {table} AS s
        WHERE s.fingerprint = p.fingerprint AND s.started_at >= %(previous_start)s AND s.started_at < %(start)s
    ) AS prev
)
SELECT fingerprint, calls, total_ms, mean_ms, min_ms, percentiles, max_ms, timeouts, errors, first_seen, last_seen,
       slowest[2]::bigint, total_ms / nullif(sum(total_ms) OVER (), 0) AS share,
       previous_calls, previous_mean_ms, previous_p95_ms
FROM per_fingerprint
ORDER BY {order} DESC, fingerprint
"""

_SUMMARY = """
SELECT count(*), coalesce(sum(duration_ms), 0), avg(duration_ms),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms), max(duration_ms),
       count(*) FILTER (WHERE timed_out), count(*) FILTER (WHERE sqlstate IS NOT NULL),
       min(started_at), max(started_at)
FROM {table}
WHERE started_at >= %(start)s AND started_at < %(end)s {only}
"""

_TIMELINE = """
SELECT b.start, agg.calls, agg.total_ms, agg.max_ms, agg.timeouts, agg.errors
FROM generate_series(%(first_bucket)s::timestamptz, %(last_bucket)s::timestamptz, %(width)s::interval) AS b(start)
CROSS JOIN LATERAL (
    SELECT count(*) AS calls, coalesce(sum(duration_ms), 0) AS total_ms, coalesce(max(duration_ms), 0) AS max_ms,
           count(*) FILTER (WHERE timed_out) AS timeouts, count(*) FILTER (WHERE sqlstate IS NOT NULL) AS errors
    FROM {table}
    WHERE started_at >= greatest(b.start, %(start)s) AND started_at < least(b.start + %(width)s::interval, %(end)s)
          {only}
) AS agg
ORDER BY b.start
"""

_COUNTS = """
SELECT fingerprint, GROUPING(hints) = 0 AS is_hint,
       CASE WHEN GROUPING(hints) = 0 THEN hints ELSE cache_outcome END AS value, count(*)
FROM {table}
WHERE started_at >= %(start)s AND started_at < %(end)s AND fingerprint = ANY(%(fingerprints)s)
GROUP BY GROUPING SETS ((fingerprint, hints), (fingerprint, cache_outcome))
"""

_SAMPLES = "SELECT id, kind, normalized_sql, sql_text FROM {table} WHERE id = ANY(%(ids)s)"

_SORT_COLUMNS = {
    SortKey.TOTAL: "total_ms",
    SortKey.MEAN: "mean_ms",
    SortKey.P95: "percentiles[2]",
    SortKey.CALLS: "calls",
    SortKey.MAX: "max_ms",
}

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


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _connect(conninfo: str) -> psycopg.Connection[Row]:
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ReportError(f"the connection string is not valid: {_one_line(exc)}") from exc
    # A report should fail fast on an unreachable server instead of waiting for the OS.
    defaults = {"connect_timeout": _CONNECT_TIMEOUT, "application_name": "queryopt report"}
    from_env = {"connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
    extra = {key: value for key, value in defaults.items() if key not in params and from_env[key] not in os.environ}
    try:
        conn = psycopg.connect(make_conninfo(conninfo, **extra))
    except psycopg.Error as exc:
        raise ReportError(f"cannot connect to the database: {_one_line(exc)}") from exc
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


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

    Raises :class:`~queryopt.ReportError` with a one-line reason when the
    database is unreachable, the table is missing (migrations not applied) or
    empty, the fingerprint is unknown, or the window holds no slow query.
    """
    sort_key = _check_arguments(schema, top, sort, fingerprint)
    table = sql.Identifier(schema, _TABLE)
    with _connect(conninfo) as conn:
        try:
            with conn.transaction():
                conn.execute(_SESSION)
                _require_table(conn, schema)
                server_now = conn.execute("SELECT statement_timestamp()").fetchone()
                assert server_now is not None
                window = resolve_window(now=now or server_now[0], since=since, start=from_, end=to)
                only = sql.SQL("AND fingerprint = %(fingerprint)s" if fingerprint is not None else "")
                params: dict[str, Any] = {
                    "start": window.start,
                    "end": window.end,
                    "previous_start": window.previous_start,
                    "fingerprint": fingerprint,
                }
                query = sql.SQL(_PER_FINGERPRINT).format(table=table, only=only, order=sql.SQL(_SORT_COLUMNS[sort_key]))
                rows = conn.execute(query, params).fetchall()
                if not rows:
                    raise ReportError(_nothing_found(conn, table, window, fingerprint))
                summary_row = conn.execute(sql.SQL(_SUMMARY).format(table=table, only=only), params).fetchone()
                summary = _summary(summary_row, fingerprints=len(rows))
                timeline = _timeline(conn, table, only, window, params)
                queries = _queries(conn, table, window, rows[:top])
                regressions = tuple(sorted((_regression(row) for row in rows), key=_regression_order))
        except psycopg.Error as exc:
            raise ReportError(f"the report query failed: {_one_line(exc)}") from exc
    return Report(
        schema=schema,
        generated_at=server_now[0],
        window=window,
        sort=sort_key,
        top=top,
        fingerprint=fingerprint,
        summary=summary,
        queries=queries,
        regressions=tuple(r for r in regressions if r.severity is not Severity.OK),
        timeline=timeline,
    )


def _require_table(conn: psycopg.Connection[Row], schema: str) -> None:
    found = conn.execute(
        "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s", [schema, _TABLE]
    ).fetchone()
    if found is None:
        raise ReportError(
            f"the table {schema}.{_TABLE} does not exist: apply queryopt's migrations first "
            f"(queryopt.migrate.migrate(dsn, schema={schema!r}))"
        )


def _nothing_found(
    conn: psycopg.Connection[Row], table: sql.Composed | sql.Identifier, window: ReportWindow, fingerprint: str | None
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


def _summary(row: Row | None, *, fingerprints: int) -> Summary:
    assert row is not None
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


def _timeline(
    conn: psycopg.Connection[Row],
    table: sql.Identifier,
    only: sql.SQL,
    window: ReportWindow,
    params: dict[str, Any],
) -> tuple[TimelineBucket, ...]:
    first, last = bucket_starts(window)
    bucket_params = {
        **params,
        "first_bucket": first,
        "last_bucket": last,
        "width": timedelta(seconds=window.bucket_seconds),
    }
    rows = conn.execute(sql.SQL(_TIMELINE).format(table=table, only=only), bucket_params).fetchall()
    return tuple(
        TimelineBucket(start=start, calls=calls, total_ms=total, max_ms=maximum, timeouts=timeouts, errors=errors)
        for start, calls, total, maximum, timeouts, errors in rows
    )


def _regression(row: Row) -> Regression:
    fingerprint, _calls, _total, mean, _min, percentiles, *_rest = row
    previous_calls, previous_mean, previous_p95 = row[13:16]
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


def _queries(
    conn: psycopg.Connection[Row], table: sql.Identifier, window: ReportWindow, rows: Sequence[Row]
) -> tuple[QueryStats, ...]:
    """The top rows with what needs the heap: hint and cache-outcome counts, the slowest call's text."""
    fingerprints = [row[0] for row in rows]
    params = {"start": window.start, "end": window.end, "fingerprints": fingerprints}
    hints: dict[str, list[tuple[str | None, int]]] = {fp: [] for fp in fingerprints}
    outcomes: dict[str, list[tuple[str | None, int]]] = {fp: [] for fp in fingerprints}
    for fingerprint, is_hint, value, calls in conn.execute(sql.SQL(_COUNTS).format(table=table), params):
        (hints if is_hint else outcomes)[fingerprint].append((value, calls))
    samples = {
        sample_id: (kind, normalized, text)
        for sample_id, kind, normalized, text in conn.execute(
            sql.SQL(_SAMPLES).format(table=table), {"ids": [row[11] for row in rows]}
        )
    }
    queries = []
    for row in rows:
        fingerprint, calls, total, mean, minimum, percentiles, maximum, timeouts, errors, first, last, sample_id = row[
            :12
        ]
        kind, normalized, text = samples[sample_id]
        queries.append(
            QueryStats(
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
                share=row[12] if row[12] is not None else 0.0,
                timeouts=timeouts,
                errors=errors,
                first_seen=first,
                last_seen=last,
                hints=_counts(hints[fingerprint]),
                cache_outcomes=_counts(outcomes[fingerprint]),
                regression=_regression(row),
            )
        )
    return tuple(queries)
