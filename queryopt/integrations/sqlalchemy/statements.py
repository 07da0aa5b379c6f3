"""Statements as queryopt prepares them inside SQLAlchemy's execution.

Hints are checked against the catalog once per distinct text, while that text
first runs: the look-ups use the statement's own connection (no second pool
connection, which a full pool could not give), lent through a context variable
for the duration of the preparation. Text queryopt cannot analyse becomes an
*opaque* call: sent untouched, never cached, timed under a fingerprint of its text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from queryopt.analysis import Analysis, PlaceholderStyle, StatementKind
from queryopt.analysis.sqltext import split_head
from queryopt.cache import ResultCache
from queryopt.errors import ConfigurationError
from queryopt.optimizer.execution import Connection, Statement
from queryopt.optimizer.preparation import PreparedCall

__all__ = ["lending", "lent_connection", "opaque_call", "text_fingerprint"]

_LENT: ContextVar[Connection | None] = ContextVar("queryopt_sqlalchemy_connection", default=None)


@contextmanager
def lending(conn: Connection) -> Iterator[None]:
    """Lend ``conn`` to :func:`lent_connection` while a statement of it is prepared."""
    token = _LENT.set(conn)
    try:
        yield
    finally:
        _LENT.reset(token)


@contextmanager
def lent_connection() -> Iterator[Connection]:
    """The connection of the statement being prepared: catalog look-ups for its hints run on it."""
    conn = _LENT.get()
    if conn is None:
        raise ConfigurationError("queryopt: SQLAlchemy statements are prepared only while they run")
    yield conn


def text_fingerprint(sql: str) -> str:
    """16 hex characters from the text with its whitespace normalised."""
    return hashlib.blake2b(" ".join(sql.split()).encode(), digest_size=8).hexdigest()


def opaque_call(sql: str, reason: str, scope: Any) -> PreparedCall:
    """A statement queryopt cannot analyse: sent untouched, timed under a fingerprint of its text."""
    fingerprint = text_fingerprint(sql)
    analysis = Analysis(
        sql=sql,
        kind=StatementKind.UTILITY,
        tables=(),
        written_tables=(),
        fingerprint=fingerprint,
        normalized_sql=" ".join(sql.split()),
        cacheable=False,
        uncacheable_reasons=(reason,),
        volatile_functions=(),
        unclassified_functions=(),
        placeholder_style=PlaceholderStyle.NONE,
        placeholder_count=0,
        placeholder_names=(),
        head=split_head(sql),
        read_only=False,
        may_write_unlisted=True,
    )
    return PreparedCall(
        analysis=analysis,
        statement=Statement(sql, fingerprint, False),
        hint_text=None,
        cache_prefix=(scope, sql),
        version_keys=ResultCache.version_keys(scope, ()),
        bypass_reasons=(reason,),
        invalidates=None,  # it may have written anything
    )
