"""The record of one slow execution: what the recorder queues and writes (a leaf: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["SlowQuery"]


@dataclass(frozen=True, slots=True)
class SlowQuery:
    """One slow execution: a row of ``slow_queries`` (the fields mirror its columns).

    ``started_at`` should be timezone-aware; ``duration_ms`` is in milliseconds. ``params`` are the raw
    parameters: used to capture the plan, and stored (each value truncated) only when
    ``RecorderPolicy.capture_params`` is on.
    """

    started_at: datetime
    fingerprint: str
    kind: str
    normalized_sql: str
    sql_text: str
    duration_ms: float
    row_count: int | None
    timed_out: bool
    sqlstate: str | None
    hints: str | None
    cache_outcome: str | None
    database_name: str
    role_name: str
    application_name: str | None
    source: str | None
    params: object | None = None
