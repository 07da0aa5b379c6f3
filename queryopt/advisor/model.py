"""The advice as plain frozen data, and its JSON layout (``schema_version`` 1).

Version 1 only ever gains keys. Costs are the planner's units, times
milliseconds, rates per hour, sizes bytes, shares fractions of the workload's
recorded time, times ISO 8601 in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from queryopt._version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "Advice",
    "IndexAdvice",
    "QueryEffect",
    "SkippedQuery",
    "UnusedIndex",
    "Verification",
    "VerifiedQuery",
]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class QueryEffect:
    """One workload statement an advised index serves, with the planner's cost before and after."""

    fingerprint: str
    normalized_sql: str
    calls: int
    total_ms: float
    """Recorded time of this fingerprint (the larger of the slow-query table and pg_stat_statements)."""
    cost_before: float
    """Estimated cost with the existing indexes only."""
    cost_after: float
    """Estimated cost with every advised index (hypothetical) in place."""
    share: float
    """This fingerprint's share of the workload's recorded time."""

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "normalized_sql": self.normalized_sql,
            "calls": self.calls,
            "total_ms": self.total_ms,
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
            "share": self.share,
        }


@dataclass(frozen=True, slots=True)
class IndexAdvice:
    """One index to create."""

    table: str
    """``schema.table``."""
    columns: tuple[str, ...]
    descending: tuple[bool, ...]
    name: str
    create_statement: str
    """``CREATE INDEX CONCURRENTLY …``, identifiers quoted where they need it."""
    size_bytes: int
    """HypoPG's estimate of the index's size."""
    queries: tuple[QueryEffect, ...]
    """The statements whose plan uses it, most recorded time first."""
    share: float
    """Share of the workload's recorded time spent in those statements."""
    saved_ms_per_hour: float
    """Estimated time saved when it was chosen: recorded time per hour scaled by the fall in cost."""
    write_cost_ms_per_hour: float
    """Estimated upkeep: row writes per hour on the table times ``write_cost_ms``."""
    writes_per_second: float
    """Rows inserted and updated per second on the table (``pg_stat_user_tables`` since its last reset)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "columns": list(self.columns),
            "descending": list(self.descending),
            "name": self.name,
            "create_statement": self.create_statement,
            "size_bytes": self.size_bytes,
            "queries": [query.to_json() for query in self.queries],
            "share": self.share,
            "saved_ms_per_hour": self.saved_ms_per_hour,
            "write_cost_ms_per_hour": self.write_cost_ms_per_hour,
            "writes_per_second": self.writes_per_second,
        }


@dataclass(frozen=True, slots=True)
class UnusedIndex:
    """An existing index on a workload table that no plan of the workload uses: a hint, not an instruction."""

    table: str
    name: str
    definition: str
    size_bytes: int
    scans: int | None
    """``pg_stat_user_indexes.idx_scan`` since statistics were last reset."""

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "name": self.name,
            "definition": self.definition,
            "size_bytes": self.size_bytes,
            "scans": self.scans,
        }


@dataclass(frozen=True, slots=True)
class SkippedQuery:
    """A workload statement the advisor could not plan, and why."""

    fingerprint: str
    normalized_sql: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "normalized_sql": self.normalized_sql, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class VerifiedQuery:
    """A statement re-planned after the advice: the cost predicted with hypothetical indexes and the cost now."""

    fingerprint: str
    cost_before: float
    cost_predicted: float
    cost_after: float
    indexes_used: tuple[str, ...]
    """The advised indexes the new plan uses."""

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "cost_before": self.cost_before,
            "cost_predicted": self.cost_predicted,
            "cost_after": self.cost_after,
            "indexes_used": list(self.indexes_used),
        }


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``apply``/``verify`` did: indexes created (or not), and every statement re-planned."""

    applied: bool
    """True when the indexes were created for real; False when re-planned with hypothetical ones."""
    created: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    """``(index name, error)`` for each index that could not be created (its invalid remains dropped)."""
    queries: tuple[VerifiedQuery, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "created": list(self.created),
            "failed": [{"name": name, "error": error} for name, error in self.failed],
            "queries": [query.to_json() for query in self.queries],
        }


@dataclass(frozen=True, slots=True)
class Advice:
    """Everything ``advise()`` found: indexes to create, unused indexes, what it could not plan."""

    generated_at: datetime
    database: str
    window_start: datetime
    window_end: datetime
    sources: tuple[str, ...]
    """``slow_queries`` and, when installed, ``pg_stat_statements``."""
    fingerprints: int
    """Distinct statements in the workload (planned or skipped)."""
    workload_ms_per_hour: float
    """Recorded time per hour of the planned statements: what the shares are fractions of."""
    estimated_saving: float
    """Fraction of that time the advised indexes together are estimated to save."""
    budget_bytes: int | None
    max_indexes: int
    indexes: tuple[IndexAdvice, ...]
    unused_indexes: tuple[UnusedIndex, ...]
    skipped: tuple[SkippedQuery, ...]
    notes: tuple[str, ...]
    """Things the user should know (tables never analyzed, parameters planned generically, …)."""
    verification: Verification | None = None
    plans: int = 0
    """How many times the planner was asked (what advising costs the server)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON document as Python values (``schema_version`` 1)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "generator": f"queryopt {__version__}",
            "generated_at": self.generated_at.isoformat(),
            "database": self.database,
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "sources": list(self.sources),
            "workload": {
                "fingerprints": self.fingerprints,
                "ms_per_hour": self.workload_ms_per_hour,
                "estimated_saving": self.estimated_saving,
                "plans": self.plans,
            },
            "options": {"budget_bytes": self.budget_bytes, "max_indexes": self.max_indexes},
            "indexes": [index.to_json() for index in self.indexes],
            "unused_indexes": [index.to_json() for index in self.unused_indexes],
            "skipped": [query.to_json() for query in self.skipped],
            "notes": list(self.notes),
            "verification": self.verification.to_json() if self.verification is not None else None,
        }
