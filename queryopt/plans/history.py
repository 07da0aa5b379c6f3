"""Plan history per fingerprint, the plan changes in a window, and the regressions they brought.

Every recorded call carries the hash of the plan it ran with (the recorder's
latest capture for its fingerprint). Consecutive calls with one plan form a
*run*; where one run ends and the next begins, the plan changed. A change is a
regression by the report's rules: the new plan's mean or p95 more than 2x the
old plan's is a warning, more than 3x critical. Latencies are those of the
recorded calls (the slow-query table: calls above the recorder's threshold, up
to its sampling limit), percentiles PostgreSQL's ``percentile_cont``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from queryopt.errors import ReportError
from queryopt.hints.plan_shape import plan_shape
from queryopt.plans.store import Action, Pin, PinStore

__all__ = [
    "CRITICAL_RATIO",
    "WARNING_RATIO",
    "FingerprintPlans",
    "PlanChange",
    "PlanHistory",
    "PlanRun",
    "PlanStats",
    "plan_changes",
    "plan_history",
]

WARNING_RATIO = 2.0
CRITICAL_RATIO = 3.0

# One row per run of consecutive calls with one plan, per fingerprint, in the window.
_RUNS = """
WITH calls AS (
    SELECT id, fingerprint, plan_hash, started_at, duration_ms,
           CASE WHEN plan_hash IS DISTINCT FROM lag(plan_hash) OVER w THEN 1 ELSE 0 END AS starts_run
    FROM {slow}
    WHERE plan_hash IS NOT NULL AND started_at >= %(start)s AND started_at < %(end)s
      AND (%(fingerprint)s::text IS NULL OR fingerprint = %(fingerprint)s)
    WINDOW w AS (PARTITION BY fingerprint ORDER BY started_at, id)
), numbered AS (
    SELECT *, sum(starts_run) OVER (PARTITION BY fingerprint ORDER BY started_at, id ROWS UNBOUNDED PRECEDING) AS run
    FROM calls
)
SELECT fingerprint, run, plan_hash, min(started_at) AS first_seen, max(started_at) AS last_seen,
       count(*) AS calls, avg(duration_ms) AS mean_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
FROM numbered
GROUP BY fingerprint, run, plan_hash
ORDER BY fingerprint, run
"""

# Per plan, over the whole window (a plan used in several runs counts once).
_PLANS = """
SELECT h.fingerprint, h.plan_hash, h.first_seen, h.last_seen, h.calls AS total_calls, h.total_ms, h.captures,
       h.normalized_sql, h.plan, s.calls, s.mean_ms, s.p95_ms
FROM {history} h
LEFT JOIN (
    SELECT fingerprint, plan_hash, count(*) AS calls, avg(duration_ms) AS mean_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
    FROM {slow}
    WHERE plan_hash IS NOT NULL AND started_at >= %(start)s AND started_at < %(end)s
      AND (%(fingerprint)s::text IS NULL OR fingerprint = %(fingerprint)s)
    GROUP BY fingerprint, plan_hash
) s USING (fingerprint, plan_hash)
WHERE h.last_seen >= %(start)s AND h.first_seen < %(end)s
  AND (%(fingerprint)s::text IS NULL OR h.fingerprint = %(fingerprint)s)
ORDER BY h.fingerprint, h.first_seen
"""


@dataclass(frozen=True, slots=True)
class PlanRun:
    """Consecutive recorded calls of one fingerprint that ran with one plan."""

    fingerprint: str
    plan_hash: str
    first_seen: datetime
    last_seen: datetime
    calls: int
    mean_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class PlanChange:
    """Where a fingerprint's plan changed, with the latency of the runs on either side."""

    fingerprint: str
    at: datetime
    from_plan: str
    to_plan: str
    before: PlanRun
    after: PlanRun

    @property
    def ratio(self) -> float:
        """The worse of mean and p95, after over before (above 1: slower)."""
        mean = self.after.mean_ms / self.before.mean_ms if self.before.mean_ms > 0 else 1.0
        p95 = self.after.p95_ms / self.before.p95_ms if self.before.p95_ms > 0 else 1.0
        return max(mean, p95)

    @property
    def severity(self) -> str | None:
        """``critical``, ``warning`` or ``None`` (no regression) by the report's 3x and 2x rules."""
        ratio = self.ratio
        return "critical" if ratio > CRITICAL_RATIO else "warning" if ratio > WARNING_RATIO else None


@dataclass(frozen=True, slots=True)
class PlanStats:
    """One plan of a fingerprint: when it was seen, its latency in the window, its tree."""

    plan_hash: str
    first_seen: datetime
    last_seen: datetime
    calls: int
    """Recorded calls in the window that ran with this plan."""
    mean_ms: float | None
    p95_ms: float | None
    total_calls: int
    """Recorded calls with this plan since it was first seen (outlives pruning of the slow-query table)."""
    lifetime_mean_ms: float | None
    captures: int
    tree: tuple[str, ...]
    pinned: bool


@dataclass(frozen=True, slots=True)
class FingerprintPlans:
    """A fingerprint's plans, plan changes and the regressions among them."""

    fingerprint: str
    normalized_sql: str
    plans: tuple[PlanStats, ...]
    changes: tuple[PlanChange, ...]
    pin: Pin | None = None

    @property
    def regressions(self) -> tuple[PlanChange, ...]:
        return tuple(change for change in self.changes if change.severity is not None)

    def plan(self, plan_hash: str) -> PlanStats | None:
        return next((plan for plan in self.plans if plan.plan_hash == plan_hash), None)


@dataclass(frozen=True, slots=True)
class PlanHistory:
    """Everything ``queryopt plans`` shows: per fingerprint its plans and changes, and the action log."""

    start: datetime
    end: datetime
    fingerprints: tuple[FingerprintPlans, ...]
    actions: tuple[Action, ...] = field(default=())

    def for_fingerprint(self, fingerprint: str) -> FingerprintPlans | None:
        return next((entry for entry in self.fingerprints if entry.fingerprint == fingerprint), None)


def plan_changes(runs: Sequence[PlanRun]) -> list[PlanChange]:
    """The changes between consecutive runs of each fingerprint (``runs`` ordered by fingerprint, then time)."""
    changes = []
    for before, after in itertools.pairwise(runs):
        if before.fingerprint == after.fingerprint and before.plan_hash != after.plan_hash:
            changes.append(
                PlanChange(before.fingerprint, after.first_seen, before.plan_hash, after.plan_hash, before, after)
            )
    return changes


def _tree(plan: Any) -> tuple[str, ...]:
    try:
        return plan_shape(plan).lines()
    except Exception:  # a hand-edited or foreign row must not hide the others
        return ()


def plan_history(
    conninfo_or_conn: str | psycopg.Connection[Any],
    *,
    since: timedelta | float = timedelta(hours=24),
    end: datetime | None = None,
    fingerprint: str | None = None,
    schema: str = "queryopt",
) -> PlanHistory:
    """Per fingerprint seen in the window ending at ``end`` (default now): its plans with latency, its plan
    changes (regressions flagged), its pin; and the plan guard's actions in the window."""
    length = since if isinstance(since, timedelta) else timedelta(seconds=since)
    if length <= timedelta(0):
        raise ReportError(f"--since must be a positive duration, got {length}")
    end = end or datetime.now(UTC)
    start = end - length
    store = PinStore(schema)
    params = {"start": start, "end": end, "fingerprint": fingerprint}
    slow, history = sql.Identifier(schema, "slow_queries"), sql.Identifier(schema, "plan_history")
    owned = isinstance(conninfo_or_conn, str)
    conn = psycopg.connect(conninfo_or_conn, autocommit=True) if isinstance(conninfo_or_conn, str) else conninfo_or_conn
    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            try:
                run_rows = cursor.execute(sql.SQL(_RUNS).format(slow=slow), params).fetchall()
                plan_rows = cursor.execute(sql.SQL(_PLANS).format(slow=slow, history=history), params).fetchall()
            except psycopg.errors.UndefinedTable as exc:
                raise ReportError(f"{schema}.plan_history does not exist: run `queryopt migrate` first") from exc
            except psycopg.errors.UndefinedColumn as exc:
                raise ReportError(f"{schema}.slow_queries has no plan_hash: run `queryopt migrate` first") from exc
        pins = {pin.fingerprint: pin for pin in store.pins(conn)}
        actions = tuple(store.actions(conn, start, fingerprint))
    finally:
        if owned:
            conn.close()
    runs = [
        PlanRun(
            r["fingerprint"], r["plan_hash"], r["first_seen"], r["last_seen"], r["calls"], r["mean_ms"], r["p95_ms"]
        )
        for r in run_rows
    ]
    changes: dict[str, list[PlanChange]] = {}
    for change in plan_changes(runs):
        changes.setdefault(change.fingerprint, []).append(change)
    by_fingerprint: dict[str, list[PlanStats]] = {}
    texts: dict[str, str] = {}
    for r in plan_rows:
        pin = pins.get(r["fingerprint"])
        texts[r["fingerprint"]] = r["normalized_sql"]
        by_fingerprint.setdefault(r["fingerprint"], []).append(
            PlanStats(
                plan_hash=r["plan_hash"],
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
                calls=int(r["calls"] or 0),
                mean_ms=r["mean_ms"],
                p95_ms=r["p95_ms"],
                total_calls=int(r["total_calls"]),
                lifetime_mean_ms=r["total_ms"] / r["total_calls"] if r["total_calls"] else None,
                captures=int(r["captures"]),
                tree=_tree(r["plan"]),
                pinned=pin is not None and pin.plan_hash == r["plan_hash"],
            )
        )
    entries = tuple(
        FingerprintPlans(fp, texts[fp], tuple(plans), tuple(changes.get(fp, ())), pins.get(fp))
        for fp, plans in sorted(by_fingerprint.items(), key=lambda item: _worst(changes.get(item[0], [])))
    )
    return PlanHistory(start, end, entries, actions)


def _worst(changes: Sequence[PlanChange]) -> tuple[int, float]:
    """Sort key: fingerprints with the worst regression first."""
    regressions = [change.ratio for change in changes if change.severity is not None]
    return (0 if regressions else 1, -max(regressions, default=0.0))
