"""The SQL the report runs: every aggregate is computed by PostgreSQL.

``{table}`` is the schema-qualified ``slow_queries`` as a
:class:`psycopg.sql.Identifier`; ``{only}`` is empty or a fingerprint filter;
everything else is a bound parameter. The plans these are written for (see
``benchmarks/report.py --explain`` and migration 0003) read the two covering
indexes with index-only scans:

- per fingerprint: the distinct fingerprints of the window (a hash over the
  window's ``started_at`` range), then one ordered range of
  ``(fingerprint, started_at)`` per fingerprint and window; the percentile
  sorts are per fingerprint, never of the whole window;
- summary: one ``started_at`` range (the overall percentiles sort it once);
- timeline: one ``started_at`` range per bucket, empty buckets included;
- hint and cache-outcome counts: the only heap read (those columns are not indexed).

Calls a concurrency limit rejected (``sqlstate`` :data:`~queryopt.errors.REJECTED_SQLSTATE`) never ran: they are
counted per fingerprint as ``rejections`` and left out of every duration, count and error figure.
"""

from __future__ import annotations

from psycopg import sql

from queryopt.errors import REJECTED_SQLSTATE
from queryopt.report.model import SortKey

__all__ = ["COUNTS", "PER_FINGERPRINT", "SAMPLES", "SESSION", "SORT_COLUMNS", "SUMMARY", "TIMELINE", "compose"]

# Whole-window sorts stay in memory; JIT compilation costs more than it saves on these short scans; the report
# already works on two connections at once, so parallel workers would only oversubscribe a small server.
SESSION = (
    "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0;"
    " SET LOCAL TimeZone = 'UTC'"
)

_RAN = f"sqlstate IS DISTINCT FROM '{REJECTED_SQLSTATE}'"
"""A recorded call that ran (was not rejected by a concurrency limit)."""

# avg() is written sum() / count(): the same value (PostgreSQL's float8 avg is Sx / N) without avg's sum of squares.
PER_FINGERPRINT = f"""
WITH present AS (
    SELECT DISTINCT fingerprint FROM {{table}}
    WHERE started_at >= %(start)s AND started_at < %(end)s {{only}}
), per_fingerprint AS (
    SELECT p.fingerprint, cur.*, prev.*
    FROM present AS p
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE s.{_RAN}) AS calls,
               coalesce(sum(s.duration_ms) FILTER (WHERE s.{_RAN}), 0) AS total_ms,
               coalesce(min(s.duration_ms) FILTER (WHERE s.{_RAN}), 0) AS min_ms,
               coalesce(
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s.duration_ms)
                       FILTER (WHERE s.{_RAN}),
                   ARRAY[0, 0, 0]::float8[]
               ) AS percentiles,
               coalesce(max(s.duration_ms) FILTER (WHERE s.{_RAN}), 0) AS max_ms,
               count(*) FILTER (WHERE s.timed_out) AS timeouts,
               count(*) FILTER (WHERE s.sqlstate IS NOT NULL AND s.{_RAN}) AS errors,
               min(s.started_at) AS first_seen,
               max(s.started_at) AS last_seen,
               count(*) FILTER (WHERE NOT (s.{_RAN})) AS rejections
        FROM {{table}} AS s
        WHERE s.fingerprint = p.fingerprint AND s.started_at >= %(start)s AND s.started_at < %(end)s
    ) AS cur
    CROSS JOIN LATERAL (
        SELECT count(*) AS previous_calls,
               sum(s.duration_ms) / nullif(count(*), 0) AS previous_mean_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s.duration_ms) AS previous_p95_ms
        FROM {{table}} AS s
        WHERE s.fingerprint = p.fingerprint AND s.started_at >= %(previous_start)s AND s.started_at < %(start)s
              AND s.{_RAN}
    ) AS prev
)
SELECT fingerprint, calls, total_ms, coalesce(total_ms / nullif(calls, 0), 0) AS mean_ms, min_ms, percentiles,
       max_ms, timeouts, errors, first_seen, last_seen, total_ms / nullif(sum(total_ms) OVER (), 0) AS share,
       previous_calls, previous_mean_ms, previous_p95_ms, rejections
FROM per_fingerprint
ORDER BY {{order}} DESC, fingerprint
"""

SORT_COLUMNS = {
    SortKey.TOTAL: "total_ms",
    SortKey.MEAN: "coalesce(total_ms / nullif(calls, 0), 0)",
    SortKey.P95: "percentiles[2]",
    SortKey.CALLS: "calls",
    SortKey.MAX: "max_ms",
}

SUMMARY = f"""
SELECT count(*), coalesce(sum(duration_ms), 0), coalesce(sum(duration_ms) / nullif(count(*), 0), 0),
       coalesce(
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms), ARRAY[0, 0, 0]::float8[]
       ),
       coalesce(max(duration_ms), 0), count(*) FILTER (WHERE timed_out), count(*) FILTER (WHERE sqlstate IS NOT NULL),
       min(started_at), max(started_at)
FROM {{table}}
WHERE started_at >= %(start)s AND started_at < %(end)s AND {_RAN} {{only}}
"""

TIMELINE = f"""
SELECT b.start, agg.calls, agg.total_ms, agg.max_ms, agg.timeouts, agg.errors
FROM generate_series(%(first_bucket)s::timestamptz, %(last_bucket)s::timestamptz, %(width)s::interval) AS b(start)
CROSS JOIN LATERAL (
    SELECT count(*) AS calls, coalesce(sum(duration_ms), 0) AS total_ms, coalesce(max(duration_ms), 0) AS max_ms,
           count(*) FILTER (WHERE timed_out) AS timeouts, count(*) FILTER (WHERE sqlstate IS NOT NULL) AS errors
    FROM {{table}}
    WHERE started_at >= greatest(b.start, %(start)s) AND started_at < least(b.start + %(width)s::interval, %(end)s)
          AND {_RAN} {{only}}
) AS agg
ORDER BY b.start
"""

COUNTS = f"""
SELECT fingerprint, GROUPING(hints) = 0 AS is_hint,
       CASE WHEN GROUPING(hints) = 0 THEN hints ELSE cache_outcome END AS value, count(*)
FROM {{table}}
WHERE started_at >= %(start)s AND started_at < %(end)s AND {_RAN} {{only}}
GROUP BY GROUPING SETS ((fingerprint, hints), (fingerprint, cache_outcome))
"""

# The slowest call of each listed fingerprint (the latest one on a tie; one that ran before a rejected one): a
# top-1 sort of the fingerprint's index-only range, then one heap fetch for its text.
SAMPLES = f"""
SELECT f.fingerprint, s.kind, s.normalized_sql, s.sql_text
FROM unnest(%(fingerprints)s::text[]) AS f(fingerprint)
CROSS JOIN LATERAL (
    SELECT i.id FROM {{table}} AS i
    WHERE i.fingerprint = f.fingerprint AND i.started_at >= %(start)s AND i.started_at < %(end)s
    ORDER BY i.{_RAN} DESC, i.duration_ms DESC, i.started_at DESC, i.id DESC
    LIMIT 1
) AS slowest
JOIN {{table}} AS s ON s.id = slowest.id
"""


def compose(template: str, table: sql.Identifier, *, fingerprint: str | None, order: str = "") -> sql.Composed:
    """``template`` with the table, the optional fingerprint filter and a sort column filled in."""
    only = sql.SQL("AND fingerprint = %(fingerprint)s" if fingerprint is not None else "")
    return sql.SQL(template).format(table=table, only=only, order=sql.SQL(order))
