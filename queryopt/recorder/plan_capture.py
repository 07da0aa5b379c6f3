"""Plans of slow statements: ``EXPLAIN (FORMAT JSON)``, never ANALYZE, run by the recorder's thread.

The plan is asked of the application's database (where the statement ran), at
most once per fingerprint per interval and for a few records per batch, so a
burst of slow queries costs a bounded amount of planning. A fingerprint whose
latency jumps (a record more than ``JUMP_FACTOR`` times slower or faster than
its recent mean) or whose hints changed (a pin was set or removed) is captured
again at once, so a plan flip is seen within a batch, not an interval.
Each plan carries its shape hash (:mod:`queryopt.hints.plan_shape`). Three guards make
sure nothing is executed: only statement kinds EXPLAIN accepts, the extended
protocol (one statement per message, so ``…; DROP …`` cannot ride along), and a
read-only transaction that is rolled back.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from queryopt.errors import HintError
from queryopt.hints.plan_shape import plan_shape

if TYPE_CHECKING:
    from queryopt.recorder.record import SlowQuery

__all__ = ["CapturedPlan", "PlanCapture"]

logger = logging.getLogger("queryopt")

EXPLAINABLE_KINDS = frozenset({"select", "insert", "update", "delete", "merge"})
MAX_PLANS_PER_BATCH = 5  # planning is cheap, but a batch of 500 distinct slow statements should not stall writes
_STATEMENT_TIMEOUT_MS = 2000
_RECONNECT_AFTER = 60.0  # seconds without plans after the application's database could not be reached
_MAX_TRACKED_FINGERPRINTS = 10_000
JUMP_FACTOR = 2.0  # the report's warning ratio: a record this much slower than its fingerprint's mean is a jump
_JUMP_MIN_RECORDS = 5  # records of a fingerprint before its mean is trusted
_JUMP_MIN_GAP = 0.5  # seconds between two jump captures of one fingerprint (a noisy query must not EXPLAIN per batch)
_MEAN_WEIGHT = 0.2  # weight of the newest record in the running mean


@dataclass(frozen=True, slots=True)
class CapturedPlan:
    """One captured plan: the JSON text stored with the record and its shape hash (None if unreadable)."""

    plan: str
    plan_hash: str | None


class _Latency:
    """A fingerprint's running mean of recorded durations, to notice a jump."""

    __slots__ = ("count", "hints", "mean")

    def __init__(self, hints: str | None) -> None:
        self.count = 0
        self.mean = 0.0
        self.hints = hints

    def rehinted(self, hints: str | None) -> bool:
        """The record carries other hints than the last one (pinned or unpinned): another plan, surely."""
        if hints == self.hints:
            return False
        self.hints, self.count = hints, 0
        return True

    def jumped(self, duration_ms: float) -> bool:
        jump = self.count >= _JUMP_MIN_RECORDS and (
            duration_ms > JUMP_FACTOR * self.mean or duration_ms * JUMP_FACTOR < self.mean
        )
        if jump:
            self.count, self.mean = 1, duration_ms  # a new level: judge later records against it
        else:
            self.mean = duration_ms if self.count == 0 else self.mean + _MEAN_WEIGHT * (duration_ms - self.mean)
            self.count += 1
        return jump


class PlanCapture:
    """Captures plans over a connection of its own; used from one thread only."""

    def __init__(
        self,
        conninfo: str,
        *,
        interval: float,
        clock: Callable[[], float],
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._connect_options = dict(connect_options or {"connect_timeout": 5})
        self._interval = interval
        self._clock = clock
        self._last_capture: dict[str, float] = {}
        self._latency: dict[str, _Latency] = {}
        self._owed: set[str] = set()  # fingerprints that jumped while no capture was possible
        self.current: dict[str, str] = {}
        """Fingerprint → hash of its latest captured plan (what its later records ran with, as far as known)."""
        self._conn: psycopg.Connection[Any] | None = None
        self._retry_at = -math.inf
        self.captured = 0
        self.failed = 0

    def plans(self, records: Sequence[SlowQuery]) -> dict[int, CapturedPlan]:
        """Plans for the records of a batch that are due one, by position in ``records``."""
        now = self._clock()
        if len(self._last_capture) > _MAX_TRACKED_FINGERPRINTS:
            self._last_capture = {fp: at for fp, at in self._last_capture.items() if now - at < self._interval}
        if len(self._latency) > _MAX_TRACKED_FINGERPRINTS:
            self._latency = {}
            self.current = {}
            self._owed = set()
        found: dict[int, CapturedPlan] = {}
        attempts = 0
        for index, record in enumerate(records):
            latency = self._latency.get(record.fingerprint)
            if latency is None:
                latency = self._latency[record.fingerprint] = _Latency(record.hints)
            rehinted = latency.rehinted(record.hints)
            jumped = latency.jumped(record.duration_ms) or rehinted or record.fingerprint in self._owed
            if str(record.kind) not in EXPLAINABLE_KINDS:
                continue
            last = self._last_capture.get(record.fingerprint)
            wait = 0.0 if rehinted else _JUMP_MIN_GAP if jumped else self._interval
            if attempts >= MAX_PLANS_PER_BATCH or (last is not None and now - last < wait):
                if jumped:
                    self._owed.add(record.fingerprint)
                continue
            self._owed.discard(record.fingerprint)
            self._last_capture[record.fingerprint] = now  # a statement that cannot be explained waits too
            attempts += 1
            plan = self._explain(record)
            if plan is not None:
                found[index] = plan
                if plan.plan_hash is not None:
                    self.current[record.fingerprint] = plan.plan_hash
        return found

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any] | None:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._clock() < self._retry_at:
            return None
        try:
            conn = psycopg.connect(self._conninfo, application_name="queryopt-plan-capture", **self._connect_options)
            conn.execute(f"SET statement_timeout = {_STATEMENT_TIMEOUT_MS}")
            conn.commit()
            conn.read_only = True
        except psycopg.Error as exc:
            logger.warning("queryopt: cannot connect to capture plans (retrying in %.0fs): %s", _RECONNECT_AFTER, exc)
            self._retry_at = self._clock() + _RECONNECT_AFTER
            return None
        self._conn = conn
        return conn

    def _explain(self, record: SlowQuery) -> CapturedPlan | None:
        conn = self._connection()
        if conn is None:
            return None
        statement = b"EXPLAIN (FORMAT JSON) " + record.sql_text.encode()
        params: Any = record.params
        try:
            try:
                # binary=True forces the extended protocol even without parameters: one statement only.
                row = conn.execute(statement, params, binary=True).fetchone()
            finally:
                if not conn.broken:
                    conn.rollback()
        except (psycopg.Error, TypeError, ValueError) as exc:
            self.failed += 1
            logger.debug("queryopt: no plan for fingerprint %s: %s", record.fingerprint, exc)
            if conn.broken:
                self.close()
            return None
        if row is None:
            self.failed += 1
            return None
        self.captured += 1
        plan = row[0]
        try:
            plan_hash: str | None = plan_shape(plan).plan_hash
        except (HintError, ValueError, TypeError, LookupError):
            plan_hash = None
        return CapturedPlan(plan if isinstance(plan, str) else json.dumps(plan), plan_hash)
