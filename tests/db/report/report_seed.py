"""Known slow-query rows around a fixed ``NOW``, and what a report over them must say.

The expected numbers are computed here in plain Python, independently of the
report's SQL: percentiles the way PostgreSQL's ``percentile_cont`` defines them
(linear interpolation at position ``f * (n - 1)`` of the sorted values).
Durations are multiples of 1/4 ms so every sum is exact in floating point,
whatever order PostgreSQL adds them in.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from queryopt.schema.migrator import migrate

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=24)
PREVIOUS_START = START - timedelta(hours=24)

OK_FP = "0000000000000a0c"
WARN_FP = "000000000000bad1"
CRIT_FP = "00000000000c0de5"
NEW_FP = "0000000000000e11"
TWICE_FP = "0000000000002222"  # exactly 2x slower: not a regression (the rule is "more than 2x")
GONE_FP = "00000000000000ff"  # only in the previous window: absent from the report
XSS_FP = "0000000000000bad"
HOSTILE_SQL = "SELECT '<script>alert(\"x\")</script>' AS \"a|b\", `tick` FROM t WHERE x = 'it''s' -- & done"
HOSTILE_NORMALIZED = 'SELECT $1 AS "a|b", `tick` FROM t WHERE x = $2 -- <b>bold</b> | pipe'


@dataclass(frozen=True)
class Seed:
    started_at: datetime
    fingerprint: str
    duration_ms: float
    timed_out: bool = False
    sqlstate: str | None = None
    hints: str | None = None
    cache_outcome: str | None = None
    sql_text: str | None = None
    kind: str = "select"


def _at(hours_before_now: float, minute: int = 0) -> datetime:
    return NOW - timedelta(hours=hours_before_now) + timedelta(minutes=minute)


def rows() -> list[Seed]:
    """The rows to insert, in insertion order (ids follow this order)."""
    seeds: list[Seed] = []
    # OK: the same durations in both windows.
    for i, ms in enumerate((100.0, 110.5, 120.25, 130.0)):
        seeds.append(Seed(_at(30, i), OK_FP, ms, cache_outcome="miss"))
        seeds.append(Seed(_at(6, i), OK_FP, ms, hints="/*+ IndexScan(t t_pkey) */", cache_outcome="miss"))
    seeds.append(Seed(_at(5), OK_FP, 115.0, cache_outcome="bypass"))
    # WARNING: 2.5x slower mean and p95.
    for i in range(4):
        seeds.append(Seed(_at(40, i), WARN_FP, 100.0))
        seeds.append(Seed(_at(10, i), WARN_FP, 250.0, cache_outcome="miss"))
    # CRITICAL: mean 100 -> 433.33, with a timeout and an error now.
    seeds += [Seed(_at(47), CRIT_FP, 100.0), Seed(_at(25), CRIT_FP, 100.0)]
    seeds += [
        Seed(_at(23), CRIT_FP, 100.0, hints="/*+ SeqScan(t) */"),
        Seed(_at(12), CRIT_FP, 500.0, sqlstate="40P01"),
        Seed(_at(1), CRIT_FP, 700.0, timed_out=True, sqlstate="57014"),
    ]
    # NEW: nothing before this window; one call exactly at the window's start (included, half-open).
    seeds += [Seed(START, NEW_FP, 50.5, kind="update"), Seed(_at(2, 30), NEW_FP, 70.25, kind="update")]
    # Exactly 2x: ok.
    seeds += [Seed(_at(36), TWICE_FP, 100.0), Seed(_at(30), TWICE_FP, 100.0)]
    seeds += [Seed(_at(3), TWICE_FP, 200.0), Seed(_at(4), TWICE_FP, 200.0)]
    # Only in the previous window.
    seeds.append(Seed(_at(33), GONE_FP, 999.0))
    # A hostile statement; its two slowest calls tie, the later one is the sample (though inserted first).
    seeds += [
        Seed(_at(7), XSS_FP, 300.0, sql_text=HOSTILE_SQL, hints="/*+ Rows(a b #10) | x */", cache_outcome="miss"),
        Seed(_at(8), XSS_FP, 300.0, sql_text=HOSTILE_SQL + " /* earlier */"),
        Seed(_at(9), XSS_FP, 80.75, sql_text=HOSTILE_SQL + " /* fast */"),
    ]
    # Outside both windows: exactly at NOW (the end is excluded) and before the previous window.
    seeds += [Seed(NOW, OK_FP, 5000.0), Seed(PREVIOUS_START - timedelta(seconds=1), CRIT_FP, 1.0)]
    return seeds


def statement(seed: Seed) -> str:
    return seed.sql_text if seed.sql_text is not None else f"SELECT * FROM t_{seed.fingerprint} WHERE id = 1"


def normalized(fingerprint: str) -> str:
    return HOSTILE_NORMALIZED if fingerprint == XSS_FP else f"SELECT * FROM t_{fingerprint} WHERE id = $1"


def seed_table(dsn: str, seeds: list[Seed] | None = None, *, schema: str = "queryopt") -> list[Seed]:
    """Apply the migrations and insert ``seeds`` (default :func:`rows`) in order."""
    seeds = rows() if seeds is None else seeds
    migrate(dsn, schema=schema)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {schema}.slow_queries (started_at, fingerprint, kind, normalized_sql, sql_text, duration_ms,"
            " timed_out, sqlstate, hints, cache_outcome, database_name, role_name)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'app', 'app_user')",
            [
                (
                    s.started_at,
                    s.fingerprint,
                    s.kind,
                    normalized(s.fingerprint),
                    statement(s),
                    s.duration_ms,
                    s.timed_out,
                    s.sqlstate,
                    s.hints,
                    s.cache_outcome,
                )
                for s in seeds
            ],
        )
    return seeds


# -- expectations, computed without SQL ----------------------------------------------------------------


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: interpolate at position fraction * (n - 1) of the sorted values."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Expected:
    fingerprint: str
    calls: int
    total_ms: float
    mean_ms: float
    min_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    share: float
    timeouts: int
    errors: int
    first_seen: datetime
    last_seen: datetime
    sample_sql: str
    kind: str
    hints: dict[str | None, int]
    cache_outcomes: dict[str | None, int]
    previous_calls: int
    previous_mean_ms: float | None
    previous_p95_ms: float | None


def in_window(seed: Seed, start: datetime, end: datetime) -> bool:
    return start <= seed.started_at < end


def expected_queries(seeds: list[Seed], start: datetime = START, end: datetime = NOW) -> dict[str, Expected]:
    length = end - start
    current: dict[str, list[tuple[int, Seed]]] = defaultdict(list)
    previous: dict[str, list[Seed]] = defaultdict(list)
    for index, s in enumerate(seeds):
        if in_window(s, start, end):
            current[s.fingerprint].append((index, s))
        elif in_window(s, start - length, start):
            previous[s.fingerprint].append(s)
    grand_total = sum(s.duration_ms for group in current.values() for _, s in group)
    result = {}
    for fp, indexed in current.items():
        group = [s for _, s in indexed]
        durations = [s.duration_ms for s in group]
        before = [s.duration_ms for s in previous.get(fp, [])]
        slowest = max(indexed, key=lambda pair: (pair[1].duration_ms, pair[1].started_at, pair[0]))[1]
        hints: dict[str | None, int] = defaultdict(int)
        outcomes: dict[str | None, int] = defaultdict(int)
        for s in group:
            hints[s.hints] += 1
            outcomes[s.cache_outcome] += 1
        result[fp] = Expected(
            fingerprint=fp,
            calls=len(group),
            total_ms=sum(durations),
            mean_ms=sum(durations) / len(durations),
            min_ms=min(durations),
            p50_ms=percentile_cont(durations, 0.5),
            p95_ms=percentile_cont(durations, 0.95),
            p99_ms=percentile_cont(durations, 0.99),
            max_ms=max(durations),
            share=sum(durations) / grand_total,
            timeouts=sum(s.timed_out for s in group),
            errors=sum(s.sqlstate is not None for s in group),
            first_seen=min(s.started_at for s in group),
            last_seen=max(s.started_at for s in group),
            sample_sql=statement(slowest),
            kind=slowest.kind,
            hints=dict(hints),
            cache_outcomes=dict(outcomes),
            previous_calls=len(before),
            previous_mean_ms=sum(before) / len(before) if before else None,
            previous_p95_ms=percentile_cont(before, 0.95) if before else None,
        )
    return result


def expected_summary(seeds: list[Seed], start: datetime = START, end: datetime = NOW) -> dict[str, object]:
    group = [s for s in seeds if in_window(s, start, end)]
    durations = [s.duration_ms for s in group]
    return {
        "calls": len(group),
        "fingerprints": len({s.fingerprint for s in group}),
        "total_ms": sum(durations),
        "mean_ms": sum(durations) / len(durations),
        "p50_ms": percentile_cont(durations, 0.5),
        "p95_ms": percentile_cont(durations, 0.95),
        "p99_ms": percentile_cont(durations, 0.99),
        "max_ms": max(durations),
        "timeouts": sum(s.timed_out for s in group),
        "errors": sum(s.sqlstate is not None for s in group),
        "first_seen": min(s.started_at for s in group),
        "last_seen": max(s.started_at for s in group),
    }


def expected_timeline(seeds: list[Seed]) -> list[tuple[datetime, int, float, float, int, int]]:
    """Hourly buckets of the 24 h window (it starts and ends on the hour).

    Each is (start, calls, total, max, timeouts, errors).
    """
    buckets = []
    for hour in range(24):
        bucket_start = START + timedelta(hours=hour)
        group = [s for s in seeds if in_window(s, bucket_start, bucket_start + timedelta(hours=1))]
        buckets.append(
            (
                bucket_start,
                len(group),
                sum(s.duration_ms for s in group),
                max((s.duration_ms for s in group), default=0.0),
                sum(s.timed_out for s in group),
                sum(s.sqlstate is not None for s in group),
            )
        )
    return buckets
