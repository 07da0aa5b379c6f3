"""Cached results at the cursor: what a statement returned, and how SQLAlchemy is handed it again.

The cache holds what the DBAPI cursor returned (rows as tuples plus the cursor
description), under the same key ``optimize_query`` uses: database scope, final
SQL text, canonical parameters. A hit gives SQLAlchemy a fully buffered fetch
strategy over those rows, the mechanism its dialects use for results read
ahead of time; SQLAlchemy then builds the ``Result`` (Core rows, or ORM objects
through the normal loading, identity map included) as if the cursor had run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Final

from psycopg import IsolationLevel
from sqlalchemy.engine.cursor import FullyBufferedCursorFetchStrategy

from queryopt.cache import ResultCache
from queryopt.integrations.sqlalchemy.links import ConnectionLink
from queryopt.optimizer.core import cache_key as optimizer_cache_key
from queryopt.optimizer.preparation import PreparedCall
from queryopt.result import QueryResult

__all__ = ["CursorRows", "cache_key", "cached_rows", "fetch_rows", "serve_rows"]

Description = tuple[tuple[Any, ...], ...]
_SNAPSHOT_LEVELS: Final = frozenset({IsolationLevel.REPEATABLE_READ, IsolationLevel.SERIALIZABLE})


class CursorRows(QueryResult):
    """A :class:`QueryResult` that also keeps the DBAPI cursor description SQLAlchemy needs."""

    __slots__ = ("_description",)

    def __init__(
        self, columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...], rowcount: int, description: Description = ()
    ) -> None:
        super().__init__(columns, rows, rowcount)
        self._description = description

    @property
    def description(self) -> Description:
        """The DBAPI ``cursor.description`` rows (the first seven fields of each column)."""
        return self._description

    def __reduce__(self) -> tuple[type[CursorRows], tuple[Any, ...]]:
        return CursorRows, (self.columns, self.rows, self.rowcount, self._description)


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


def cache_key(
    call: PreparedCall, parameters: Any, context: Any, link: ConnectionLink, cache_scope: Hashable = None
) -> Hashable | None:
    """The key ``optimize_query`` would use for this execution, or ``None`` when it must bypass the cache."""
    if context.execution_options.get("stream_results"):
        return None
    conn = link.conn
    if not conn.autocommit:
        if link.has_pending and link.pending_overlaps(frozenset(table.name for table in call.analysis.tables)):
            return None  # the transaction's own uncommitted writes must be visible to it
        if conn.isolation_level in _SNAPSHOT_LEVELS:
            return None  # a snapshot transaction must not see data newer than its snapshot
    return optimizer_cache_key(call, parameters, cache_scope)


def cached_rows(
    cache: ResultCache,
    key: Hashable,
    call: PreparedCall,
    run: Callable[[], QueryResult],
    *,
    ttl: float | None,
    single_flight: bool,
) -> CursorRows:
    """The rows under ``key``, from the cache or from ``run`` (then stored); concurrent misses share one run
    when ``single_flight``."""
    result = cache.get(key, call.version_keys)
    if result is None:
        if single_flight:
            result = cache.get_or_execute(key, call.version_keys, run, ttl=ttl)
        else:
            cache.count_miss()
            versions, generation = cache.snapshot(call.version_keys)
            result = run()
            cache.store(key, result, versions=versions, generation=generation, ttl=ttl)
    if isinstance(result, CursorRows):
        return result
    # Stored by optimize_query under the same key: no cursor description, names are enough for SQLAlchemy.
    described = tuple((name, None, None, None, None, None, None) for name in result.columns)
    return CursorRows(result.columns, result.rows, result.rowcount, described)
