"""Small builders shared by tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from queryopt.recorder import SlowQuery

FP = "0123456789abcdef"
OTHER_FP = "fedcba9876543210"
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def slow_query(number: int = 0, **changes: Any) -> SlowQuery:
    """A plausible slow SELECT; ``source`` is ``call-<number>`` so each record can be told apart."""
    fields: dict[str, Any] = {
        "started_at": _EPOCH + timedelta(seconds=number),
        "fingerprint": FP,
        "kind": "select",
        "normalized_sql": "SELECT * FROM orders WHERE id = ?",
        "sql_text": "SELECT * FROM orders WHERE id = %s",
        "duration_ms": 150.0,
        "row_count": 1,
        "timed_out": False,
        "sqlstate": None,
        "hints": None,
        "cache_outcome": "miss",
        "database_name": "shop",
        "role_name": "app",
        "application_name": "tests",
        "source": f"call-{number}",
        "params": (number,),
    }
    fields.update(changes)
    return SlowQuery(**fields)
