"""What ``queryopt top`` shows, as plain data: the slowest recent queries, what runs now, recent regressions.

One snapshot is three reads on one short-lived, read-only connection: the
per-fingerprint aggregates of the last minutes from ``<schema>.slow_queries``
(the report's statement, so the numbers match ``queryopt report`` for the same
window, compared with the window of the same length before it), their slowest
sample's normalized text, and the statements running now from
``pg_stat_activity``. A running statement's text is shown normalized by
:func:`queryopt.analysis.analyze` (constants become ``%s``), so literal values
in it are not displayed; text that cannot be analysed (for example cut short by
``track_activity_query_size``) is shown as its first keyword only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from queryopt.analysis import analyze
from queryopt.errors import QueryoptError, ReportError, migrate_command
from queryopt.report.data import connect_read_only, one_line
from queryopt.report.model import ReportWindow, Severity, SortKey, classify, ratio
from queryopt.report.statements import PER_FINGERPRINT, SAMPLES, SESSION, SORT_COLUMNS, compose

__all__ = ["LiveView", "RecentQuery", "RecentRegression", "RunningStatement", "live_view"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_KEYWORD = re.compile(r"\s*([A-Za-z]{1,32})")
_CONNECT_TIMEOUT = "5"

RUNNING = """
SELECT pid, datname, usename, application_name, state, wait_event_type, wait_event,
       extract(epoch FROM clock_timestamp() - query_start)::float8 AS seconds, query
FROM pg_catalog.pg_stat_activity
WHERE backend_type = 'client backend' AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()
      AND query_start IS NOT NULL
ORDER BY query_start
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class RecentQuery:
    """One fingerprint's slow calls in the window."""

    fingerprint: str
    kind: str
    normalized_sql: str
    calls: int
    total_ms: float
    mean_ms: float
    p95_ms: float
    max_ms: float
    timeouts: int
    errors: int
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class RunningStatement:
    """A statement a client backend is running (or a transaction it holds open) right now."""

    pid: int
    database: str | None
    user: str | None
    application_name: str
    state: str
    """``active``, ``idle in transaction``, …"""
    wait: str | None
    """``wait_event_type:wait_event`` when the backend waits (a lock, I/O, a client…)."""
    seconds: float
    """Since the statement started."""
    fingerprint: str | None
    """queryopt's fingerprint of the text, so it can be matched with the slow table; ``None`` if unparsable."""
    query: str
    """The text normalized (constants as ``%s``), or its first keyword followed by ``…``."""


@dataclass(frozen=True, slots=True)
class RecentRegression:
    """A fingerprint of the window much slower than in the window of the same length before it."""

    fingerprint: str
    severity: Severity
    mean_ms: float
    p95_ms: float
    previous_mean_ms: float
    previous_p95_ms: float
    mean_ratio: float | None
    p95_ratio: float | None


@dataclass(frozen=True, slots=True)
class LiveView:
    """One snapshot for ``queryopt top``."""

    schema: str
    generated_at: datetime
    window: ReportWindow
    sort: SortKey
    slowest: tuple[RecentQuery, ...]
    running: tuple[RunningStatement, ...]
    regressions: tuple[RecentRegression, ...]
    """Warnings and criticals only, worst first."""


def _connect(conninfo: str) -> psycopg.Connection[tuple[Any, ...]]:
    return connect_read_only(conninfo, application_name="queryopt top", connect_timeout=_CONNECT_TIMEOUT)


def _check(schema: str, top: int, minutes: float) -> None:
    if not isinstance(schema, str) or not _IDENTIFIER.match(schema):
        raise ReportError(f"schema name {schema!r} is not a lower-case identifier (letters, digits, _)")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ReportError(f"top must be a whole number >= 1, got {top!r}")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= 7 * 24 * 60:
        raise ReportError(f"the window must be more than 0 and at most 7 days, got {minutes!r} minutes")


def live_view(
    conninfo: str, *, schema: str = "queryopt", minutes: float = 5.0, top: int = 10, sort: SortKey | str = "p95"
) -> LiveView:
    """A snapshot: the ``top`` slowest fingerprints of the last ``minutes`` (by ``sort``), every statement
    running now (longest first, at most ``top`` × 3), and the regressions of the window.

    Raises :class:`~queryopt.ReportError` in one line when the database is unreachable or queryopt's
    table is missing (``queryopt migrate`` creates it).
    """
    _check(schema, top, minutes)
    try:
        sort_key = SortKey(sort)
    except ValueError:
        allowed = ", ".join(key.value for key in SortKey)
        raise ReportError(f"cannot sort by {sort!r}: use one of {allowed}") from None
    table = sql.Identifier(schema, "slow_queries")
    with _connect(conninfo) as conn:
        try:
            with conn.transaction():
                conn.execute(SESSION)
                found = conn.execute("SELECT to_regclass(%s), statement_timestamp()", [f"{schema}.slow_queries"])
                row = found.fetchone()
                assert row is not None
                if row[0] is None:
                    raise ReportError(
                        f"the table {schema}.slow_queries does not exist: run `{migrate_command(schema)}` "
                        "against this database first"
                    )
                now: datetime = row[1]
                length = timedelta(minutes=minutes)
                window = ReportWindow(now - length, now, now - 2 * length, max(1, round(length.total_seconds())))
                params = {"start": window.start, "end": window.end, "previous_start": window.previous_start}
                rows = conn.execute(
                    compose(PER_FINGERPRINT, table, fingerprint=None, order=SORT_COLUMNS[sort_key]), params
                ).fetchall()
                listed = rows[:top]
                sampled = conn.execute(
                    compose(SAMPLES, table, fingerprint=None), {**params, "fingerprints": [r[0] for r in listed]}
                )
                samples = {fp: (kind, normalized) for fp, kind, normalized, _text in sampled}
                running = conn.execute(RUNNING, {"limit": top * 3}).fetchall()
        except psycopg.Error as exc:
            raise ReportError(f"reading the live view failed: {one_line(exc)}") from exc
    return LiveView(
        schema=schema,
        generated_at=now,
        window=window,
        sort=sort_key,
        slowest=tuple(_recent(row, *samples.get(row[0], ("", ""))) for row in listed),
        running=tuple(sorted((_running(row) for row in running), key=lambda r: -r.seconds)),
        regressions=tuple(sorted(_regressions(rows), key=_worst_first)),
    )


def _recent(row: tuple[Any, ...], kind: str, normalized: str) -> RecentQuery:
    fingerprint, calls, total, mean, _minimum, percentiles, maximum, timeouts, errors, _first, last = row[:11]
    return RecentQuery(
        fingerprint=fingerprint,
        kind=kind,
        normalized_sql=normalized,
        calls=calls,
        total_ms=total,
        mean_ms=mean,
        p95_ms=percentiles[1],
        max_ms=maximum,
        timeouts=timeouts,
        errors=errors,
        last_seen=last,
    )


def _regressions(rows: list[tuple[Any, ...]]) -> list[RecentRegression]:
    found = []
    for row in rows:
        fingerprint, mean, p95 = row[0], row[3], row[5][1]
        previous_calls, previous_mean, previous_p95 = row[12:15]
        if not previous_calls:
            continue  # new in this window: nothing to regress from
        mean_ratio, p95_ratio = ratio(mean, previous_mean), ratio(p95, previous_p95)
        severity = classify(mean_ratio, p95_ratio, seen_before=True)
        if severity.rank >= Severity.WARNING.rank:
            found.append(
                RecentRegression(fingerprint, severity, mean, p95, previous_mean, previous_p95, mean_ratio, p95_ratio)
            )
    return found


def _worst_first(regression: RecentRegression) -> tuple[int, float, str]:
    worst = max((r for r in (regression.mean_ratio, regression.p95_ratio) if r is not None), default=0.0)
    return (-regression.severity.rank, -worst, regression.fingerprint)


def _running(row: tuple[Any, ...]) -> RunningStatement:
    pid, database, user, application, state, wait_type, wait_event, seconds, text = row
    fingerprint, shown = _normalized(text)
    return RunningStatement(
        pid=pid,
        database=database,
        user=user,
        application_name=application or "",
        state=state or "",
        wait=f"{wait_type}:{wait_event}" if wait_type else None,
        seconds=max(0.0, seconds or 0.0),
        fingerprint=fingerprint,
        query=shown,
    )


def _normalized(text: str | None) -> tuple[str | None, str]:
    if not text or text.startswith("<insufficient privilege>"):
        return None, "<insufficient privilege>" if text else ""
    try:
        analysis = analyze(text)
    except QueryoptError:
        keyword = _KEYWORD.match(text)
        return None, f"{keyword.group(1).upper()} …" if keyword else "…"
    return analysis.fingerprint, analysis.normalized_sql
