"""Plan history written by the recorder: which plan shape each fingerprint ran with, and when.

For every batch the recorder knows, per record, the hash of the latest plan
captured for its fingerprint (:attr:`queryopt.plans.PlanCapture.current`). This
module folds a batch into one row per (fingerprint, plan hash) and upserts it
into ``<schema>.plan_history``: first and last seen, recorded calls and their
total time, how often the plan was captured, the plan itself and the statement
it was captured for (what a pin is later verified with).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from queryopt.recorder.plan_capture import CapturedPlan
    from queryopt.recorder.record import SlowQuery

__all__ = ["PlanHistoryTable", "PlanUse", "plan_uses"]


@dataclass(slots=True)
class PlanUse:
    """The records of one batch that ran with one plan of one fingerprint."""

    fingerprint: str
    plan_hash: str
    first_seen: datetime
    last_seen: datetime
    calls: int
    total_ms: float
    captured: CapturedPlan | None
    normalized_sql: str
    sql_text: str


def plan_uses(
    records: Sequence[SlowQuery], hashes: Sequence[str | None], captured: Mapping[int, CapturedPlan]
) -> list[PlanUse]:
    """Fold a batch: ``hashes[i]`` is the plan record ``i`` ran with, ``captured`` the plans taken in this batch."""
    uses: dict[tuple[str, str], PlanUse] = {}
    for index, (record, plan_hash) in enumerate(zip(records, hashes, strict=True)):
        if plan_hash is None:
            continue
        plan = captured.get(index)
        if plan is not None and plan.plan_hash != plan_hash:
            plan = None
        use = uses.get((record.fingerprint, plan_hash))
        if use is None:
            uses[(record.fingerprint, plan_hash)] = PlanUse(
                record.fingerprint,
                plan_hash,
                record.started_at,
                record.started_at,
                1,
                record.duration_ms,
                plan,
                record.normalized_sql,
                record.sql_text,
            )
            continue
        use.first_seen = min(use.first_seen, record.started_at)
        use.last_seen = max(use.last_seen, record.started_at)
        use.calls += 1
        use.total_ms += record.duration_ms
        if plan is not None:
            use.captured, use.sql_text = plan, record.sql_text
    return list(uses.values())


class PlanHistoryTable:
    """Upserts batches of :class:`PlanUse` into ``<schema>.plan_history`` over the caller's connection."""

    def __init__(self, schema: str) -> None:
        table = sql.Identifier(schema, "plan_history")
        self._upsert = sql.SQL(
            "INSERT INTO {} AS h (fingerprint, plan_hash, first_seen, last_seen, calls, total_ms, captures,"
            " normalized_sql, sql_text, plan) VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s, %s::jsonb)"
            " ON CONFLICT (fingerprint, plan_hash) DO UPDATE SET"
            " first_seen = least(h.first_seen, excluded.first_seen),"
            " last_seen = greatest(h.last_seen, excluded.last_seen),"
            " calls = h.calls + excluded.calls, total_ms = h.total_ms + excluded.total_ms,"
            " captures = h.captures + 1, sql_text = excluded.sql_text, plan = excluded.plan"
        ).format(table)
        self._count = sql.SQL(
            "UPDATE {} SET first_seen = least(first_seen, %s), last_seen = greatest(last_seen, %s),"
            " calls = calls + %s, total_ms = total_ms + %s WHERE fingerprint = %s AND plan_hash = %s"
        ).format(table)

    def write(self, conn: psycopg.Connection[Any], uses: Sequence[PlanUse]) -> None:
        """Store ``uses`` in one transaction (a plan only counted, never captured here, updates an existing row)."""
        captured = [
            (
                u.fingerprint,
                u.plan_hash,
                u.first_seen,
                u.last_seen,
                u.calls,
                u.total_ms,
                u.normalized_sql,
                u.sql_text,
                u.captured.plan,
            )
            for u in uses
            if u.captured is not None
        ]
        counted = [
            (u.first_seen, u.last_seen, u.calls, u.total_ms, u.fingerprint, u.plan_hash)
            for u in uses
            if u.captured is None
        ]
        with conn.transaction(), conn.cursor() as cursor:
            if captured:
                cursor.executemany(self._upsert, captured)
            if counted:
                cursor.executemany(self._count, counted)
