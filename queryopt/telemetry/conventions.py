"""OpenTelemetry database client conventions (stable since semantic conventions 1.33) derived from an analysis.

Pure: no OpenTelemetry import, no I/O. Everything here depends only on the
statement's structure, so :class:`CallDescription` is computed once per
fingerprint and reused by every call. The operation and the tables come from
:class:`~queryopt.analysis.Analysis` (sqlglot already parsed the text once);
the query text is the analysis' normalized SQL, in which every constant and
parameter is a ``%s`` placeholder: parameter values never reach an attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from queryopt.analysis import Analysis, StatementKind, TableRef
from queryopt.errors import QueryRejected, QueryTimeout

__all__ = [
    "COLLECTION",
    "DURATION_BUCKETS",
    "ERROR_TYPE",
    "NAMESPACE",
    "OPERATION",
    "QUERY_SUMMARY",
    "QUERY_TEXT",
    "STATUS_CODE",
    "SYSTEM",
    "CallDescription",
    "describe",
    "error_type",
    "namespace",
    "operation_name",
    "query_summary",
    "sqlstate_of",
]

SYSTEM: Final = "db.system.name"
NAMESPACE: Final = "db.namespace"
OPERATION: Final = "db.operation.name"
COLLECTION: Final = "db.collection.name"
QUERY_SUMMARY: Final = "db.query.summary"
QUERY_TEXT: Final = "db.query.text"
STATUS_CODE: Final = "db.response.status_code"
ERROR_TYPE: Final = "error.type"

DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""The explicit bucket boundaries (seconds) the conventions advise for ``db.client.operation.duration``."""

SUMMARY_MAX_LENGTH: Final = 255

_VERBS: Final = MappingProxyType(
    {
        StatementKind.SELECT: "SELECT",
        StatementKind.INSERT: "INSERT",
        StatementKind.UPDATE: "UPDATE",
        StatementKind.DELETE: "DELETE",
        StatementKind.MERGE: "MERGE",
    }
)
_KEYWORD = re.compile(r"[A-Za-z]{1,32}")


@dataclass(frozen=True, slots=True)
class CallDescription:
    """The attributes of one statement shape: the same for every call of a fingerprint."""

    span_name: str
    """``db.query.summary``, the span name the conventions ask for."""
    metric: MappingProxyType[str, str]
    """Low-cardinality attributes for the duration histogram (system, operation, collection, summary)."""
    span: MappingProxyType[str, str]
    """The metric's attributes plus the query text (placeholders only) and queryopt's fingerprint."""


def operation_name(analysis: Analysis) -> str:
    """``db.operation.name``: the statement's verb, upper-case (``SELECT``, ``INSERT``, ``CREATE``, ``VACUUM``…).

    >>> from queryopt.analysis import analyze
    >>> operation_name(analyze("with t as (select 1) select * from t")), operation_name(analyze("vacuum orders"))
    ('SELECT', 'VACUUM')
    """
    verb = _VERBS.get(analysis.kind)
    if verb is not None:
        return verb
    # DDL and utility statements: their first keyword (letters only, so nothing but a keyword gets through).
    match = _KEYWORD.match(analysis.sql, analysis.head.body_start)
    return match.group(0).upper() if match else analysis.kind.value.upper()


def _distinct(tables: tuple[TableRef, ...], skip: frozenset[str] = frozenset()) -> list[str]:
    names: dict[str, None] = {}
    for table in tables:
        name = table.qualified_name
        if name not in skip:
            names[name] = None
    return list(names)


def query_summary(analysis: Analysis) -> str:
    """``db.query.summary``: ``{operation} {targets}``, then ``SELECT {tables read}`` for a write that reads others.

    At most 255 characters, cut between words.

    >>> from queryopt.analysis import analyze
    >>> query_summary(analyze("SELECT id FROM orders WHERE customer_id = %s"))
    'SELECT orders'
    >>> query_summary(analyze("INSERT INTO shipping (id) SELECT o.id FROM orders o WHERE o.paid"))
    'INSERT shipping SELECT orders'
    """
    operation = operation_name(analysis)
    written = _distinct(analysis.written_tables)
    if analysis.kind is StatementKind.SELECT:
        words = [operation, *_distinct(analysis.tables)]
    else:
        words = [operation, *written]
        read = _distinct(analysis.tables, frozenset(written))
        if read:
            words += ["SELECT", *read]
    summary = " ".join(words)
    if len(summary) <= SUMMARY_MAX_LENGTH:
        return summary
    cut = summary.rfind(" ", 0, SUMMARY_MAX_LENGTH + 1)
    return summary[:cut] if cut > 0 else summary[:SUMMARY_MAX_LENGTH]


def describe(analysis: Analysis) -> CallDescription:
    """Every attribute that depends only on the statement (computed once per fingerprint by the caller).

    ``db.collection.name`` is set only when the statement touches exactly one table, as the conventions ask.
    """
    summary = query_summary(analysis)
    metric = {SYSTEM: "postgresql", OPERATION: operation_name(analysis), QUERY_SUMMARY: summary}
    tables = _distinct(analysis.tables)
    if len(tables) == 1:
        metric[COLLECTION] = tables[0]
    span = {**metric, QUERY_TEXT: analysis.normalized_sql, "queryopt.fingerprint": analysis.fingerprint}
    return CallDescription(summary, MappingProxyType(metric), MappingProxyType(span))


def namespace(database: str, search_path: str) -> str:
    """``db.namespace``: ``{database}|{schema}``, the schema being the first one of ``search_path``.

    ``"$user"`` is skipped: it names a schema only when one with the role's name exists, which
    would take another query to know. Without a schema, the database alone.

    >>> namespace("shop", '"$user", public')
    'shop|public'
    >>> namespace("shop", "")
    'shop'
    """
    for entry in search_path.split(","):
        schema = entry.strip().strip('"')
        if schema and schema != "$user":
            return f"{database}|{schema}" if database else schema
    return database


def sqlstate_of(error: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of ``error`` (or of the driver error it wraps), when it has one.

    A call a concurrency limit turned away never reached the server: no SQLSTATE, whatever marker it carries.
    """
    if isinstance(error, QueryRejected):
        return None
    for candidate in (error, error.__cause__, getattr(error, "orig", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
    return None


def error_type(error: BaseException, sqlstate: str | None) -> str:
    """``error.type``: the SQLSTATE when there is one (as the conventions ask), ``timeout`` for a client-side
    deadline, else the qualified name of the driver's exception (or of queryopt's own).

    >>> error_type(TimeoutError(), None), error_type(ValueError(), "22P02")
    ('timeout', '22P02')
    """
    if sqlstate is not None:
        return sqlstate
    from_driver = error.__cause__ if error.__cause__ is not None else error
    if isinstance(error, QueryTimeout) or isinstance(from_driver, TimeoutError):
        return "timeout"
    kind = type(from_driver)
    return f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__qualname__
