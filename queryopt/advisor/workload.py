"""The workload: recorded statements by fingerprint, weighted by the time they took.

Two sources, merged by fingerprint (queryopt's fingerprint is the same for
``%s`` and ``$1`` texts):

- queryopt's slow-query table over the window (default 24 h): calls and total
  duration per fingerprint, the text and parameters of the slowest call;
- ``pg_stat_statements`` when it is installed in the database: every call since
  its last reset, not only slow ones.

Weights are rates (recorded milliseconds per hour) so the two sources, which
cover different spans, compare: the slow-query table's span is the window, or
less when recording began inside it; pg_stat_statements' the time since its
reset. A fingerprint in both takes the larger rate (the slow calls are a subset
of all calls). Only SELECT, UPDATE and DELETE statements are kept: the ones an
index can speed up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from queryopt.analysis import Analysis, StatementKind, analyze
from queryopt.errors import AdvisorError, AnalysisError

__all__ = [
    "MAX_STATEMENTS",
    "WorkloadQuery",
    "merge",
    "pg_stat_statements_schema",
    "read_pg_stat_statements",
    "read_slow_queries",
]

MAX_STATEMENTS = 500
"""At most this many statements per source, the most time-consuming first."""
_KINDS = (StatementKind.SELECT, StatementKind.UPDATE, StatementKind.DELETE)
_MIN_SPAN_S = 60.0  # a source younger than a minute still counts as one: no absurd rates from a few seconds
_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})

# Totals first, then one row (the slowest call's text and parameters) per fingerprint kept: no texts are
# carried through the aggregate, whatever the number of recorded calls.
_SLOW = """
WITH top AS (
    SELECT fingerprint, count(*) AS calls, sum(duration_ms) AS total_ms
    FROM {table}
    WHERE started_at >= %(start)s AND started_at < %(end)s AND database_name = %(database)s AND kind = ANY(%(kinds)s)
    GROUP BY fingerprint
    ORDER BY total_ms DESC
    LIMIT %(limit)s
)
SELECT top.fingerprint, top.calls, top.total_ms, slowest.sql_text, slowest.params::text
FROM top
CROSS JOIN LATERAL (
    SELECT s.sql_text, s.params
    FROM {table} AS s
    WHERE s.fingerprint = top.fingerprint AND s.started_at >= %(start)s AND s.started_at < %(end)s
      AND s.database_name = %(database)s
    ORDER BY s.duration_ms DESC
    LIMIT 1
) AS slowest
ORDER BY top.total_ms DESC, top.fingerprint
"""
_PGSS = """
SELECT s.query, s.calls, s.total_exec_time,
       greatest(extract(epoch FROM now() - (SELECT stats_reset FROM {schema}.pg_stat_statements_info)), 0)::float8
FROM {schema}.pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel
ORDER BY s.total_exec_time DESC
LIMIT %s
"""


@dataclass(frozen=True, slots=True)
class WorkloadQuery:
    """One statement of the workload."""

    fingerprint: str
    sql_text: str
    analysis: Analysis
    calls: int
    total_ms: float
    ms_per_hour: float
    sources: tuple[str, ...]
    params_json: str | None = None
    """The slowest recorded call's parameters (JSON), when the recorder stored them."""


def _usable(analysis: Analysis, own_schema: str) -> bool:
    if analysis.kind not in _KINDS or not analysis.tables:
        return False
    return all(t.schema not in _SYSTEM_SCHEMAS and t.schema != own_schema for t in analysis.tables) and not any(
        t.schema is None and t.name.startswith("pg_") for t in analysis.tables
    )


def _rate(total_ms: float, span_s: float) -> float:
    return total_ms / max(span_s, _MIN_SPAN_S) * 3600.0


def read_slow_queries(
    conn: psycopg.Connection[Any], schema: str, database: str, start: datetime, end: datetime
) -> list[WorkloadQuery]:
    """Fingerprints recorded in ``<schema>.slow_queries`` for ``database`` between ``start`` and ``end``."""
    found = conn.execute("SELECT to_regclass(%s)", [f"{schema}.slow_queries"]).fetchone()
    if found is None or found[0] is None:
        raise AdvisorError(f"{schema}.slow_queries does not exist: run `queryopt migrate --schema {schema}` first")
    table = sql.Identifier(schema, "slow_queries")
    first = conn.execute(sql.SQL("SELECT min(started_at) FROM {}").format(table)).fetchone()
    began = first[0] if first is not None and first[0] is not None else start
    span_s = (end - max(start, began)).total_seconds()
    kinds = [kind.value for kind in _KINDS]
    query = sql.SQL(_SLOW).format(table=table)
    workload = []
    arguments = {"start": start, "end": end, "database": database, "kinds": kinds, "limit": MAX_STATEMENTS}
    for fingerprint, calls, total_ms, sql_text, params in conn.execute(query, arguments):
        try:
            analysis = analyze(sql_text)
        except AnalysisError:
            continue
        if _usable(analysis, schema):
            workload.append(
                WorkloadQuery(
                    fingerprint, sql_text, analysis, int(calls), float(total_ms), _rate(float(total_ms), span_s),
                    ("slow_queries",), params,
                )
            )  # fmt: skip
    return workload


def pg_stat_statements_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The schema pg_stat_statements is installed in, in this database; ``None`` when it is not."""
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    return None if row is None else str(row[0])


def read_pg_stat_statements(conn: psycopg.Connection[Any], own_schema: str) -> list[WorkloadQuery]:
    """This database's top-level statements from pg_stat_statements (empty when it is not installed or readable)."""
    schema = pg_stat_statements_schema(conn)
    if schema is None:
        return []
    try:
        with conn.transaction():
            rows = conn.execute(sql.SQL(_PGSS).format(schema=sql.Identifier(schema)), [MAX_STATEMENTS]).fetchall()
    except psycopg.Error:  # not preloaded ("must be loaded via shared_preload_libraries"), or too old a version
        return []
    merged: dict[str, WorkloadQuery] = {}
    for text, calls, total_ms, span_s in rows:
        if not text or text.startswith("<insufficient privilege>"):
            continue
        try:
            analysis = analyze(text)
        except AnalysisError:
            continue
        if not _usable(analysis, own_schema):
            continue
        query = WorkloadQuery(
            analysis.fingerprint, text, analysis, int(calls), float(total_ms), _rate(float(total_ms), span_s),
            ("pg_stat_statements",),
        )  # fmt: skip
        known = merged.get(query.fingerprint)
        if known is not None:  # texts pg_stat_statements tells apart (e.g. by search_path) that we do not
            query = replace(
                known,
                calls=known.calls + query.calls,
                total_ms=known.total_ms + query.total_ms,
                ms_per_hour=known.ms_per_hour + query.ms_per_hour,
            )
        merged[query.fingerprint] = query
    return list(merged.values())


def merge(*sources: list[WorkloadQuery]) -> list[WorkloadQuery]:
    """One query per fingerprint: the larger rate wins, the slow-query table's text and parameters are kept."""
    merged: dict[str, WorkloadQuery] = {}
    for source in sources:
        for query in source:
            known = merged.get(query.fingerprint)
            if known is None:
                merged[query.fingerprint] = query
                continue
            best = known if known.ms_per_hour >= query.ms_per_hour else query
            merged[query.fingerprint] = replace(
                known,
                calls=best.calls,
                total_ms=best.total_ms,
                ms_per_hour=best.ms_per_hour,
                sources=tuple(dict.fromkeys(known.sources + query.sources)),
            )
    return sorted(merged.values(), key=lambda query: (-query.ms_per_hour, query.fingerprint))
