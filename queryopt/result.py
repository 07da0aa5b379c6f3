"""What one statement returned, as plain immutable data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["QueryResult"]


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows as tuples (immutable, so a cached result can be shared), their column names, the row count."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    rowcount: int
    """Rows returned, or rows affected by a write (-1 when the server does not say)."""

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as fresh dictionaries keyed by column name."""
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in self.rows]
