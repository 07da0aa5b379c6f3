"""What one statement returned, as plain immutable data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["QueryResult", "query_result"]


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


_new = object.__new__
_slots = vars(QueryResult)  # the slot descriptors write past the frozen __setattr__
_set_columns = _slots["columns"].__set__
_set_rows = _slots["rows"].__set__
_set_rowcount = _slots["rowcount"].__set__


def query_result(columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...], rowcount: int) -> QueryResult:
    """``QueryResult(columns, rows, rowcount)``, built once per query on the hot path: the slots are filled
    directly, without the frozen dataclass's ``__init__`` (three ``object.__setattr__`` calls)."""
    result: QueryResult = _new(QueryResult)
    _set_columns(result, columns)
    _set_rows(result, rows)
    _set_rowcount(result, rowcount)
    return result
