"""Cached results at the cursor: what a statement returned, and how SQLAlchemy is handed it again.

The cache holds what the DBAPI cursor returned (rows as tuples plus the cursor
description), under the same key ``optimize_query`` uses: database scope, final
SQL text, canonical parameters. A hit gives SQLAlchemy a fully buffered fetch
strategy over those rows, the mechanism its dialects use for results read
ahead of time; SQLAlchemy then builds the ``Result`` (Core rows, or ORM objects
through the normal loading, identity map included) as if the cursor had run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy

from queryopt.result import QueryResult

__all__ = ["CursorRows", "fetch_rows", "serve_rows"]

Description = tuple[tuple[Any, ...], ...]


@dataclass(frozen=True, slots=True)
class CursorRows(QueryResult):
    """A :class:`QueryResult` that also keeps the DBAPI cursor description SQLAlchemy needs."""

    description: Description = ()


def fetch_rows(cursor: Any) -> CursorRows:
    """Everything an executed cursor returned, as plain immutable data."""
    described = cursor.description
    if not described:
        return CursorRows((), (), cursor.rowcount, ())
    description = tuple(tuple(column[:7]) for column in described)
    rows = tuple(tuple(row) for row in cursor.fetchall())
    return CursorRows(tuple(column[0] for column in description), rows, len(rows), description)


def serve_rows(context: Any, result: CursorRows) -> None:
    """Make SQLAlchemy read ``result`` instead of the (unexecuted or exhausted) cursor of ``context``."""
    context.cursor_fetch_strategy = FullyBufferedCursorFetchStrategy(
        None, alternate_description=result.description or None, initial_buffer=result.rows
    )
