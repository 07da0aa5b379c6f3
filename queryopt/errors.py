"""The exceptions queryopt raises.

Every error derives from :class:`QueryoptError`, so ``except QueryoptError``
catches everything queryopt itself decides to raise::

    QueryoptError
     ├── ConfigurationError      a bad setting (also a ValueError)
     ├── DatabaseConnectionError the database cannot be reached or refused the connection (also a ConnectionError)
     ├── AnalysisError           SQL that cannot be analysed: syntax, not exactly one statement
     ├── HintError               a hint that names a relation or index the query/catalog lacks
     ├── QueryError              the database refused or failed a statement (keeps sqlstate)
     │    └── QueryTimeout        the statement ran past its limit and was cancelled
     ├── QueryRejected           too many calls of one query shape at once: shed without a connection
     ├── CacheError              the result cache cannot serve a request
     ├── RecorderError           the slow-query recorder cannot be set up
     ├── MigrationError          queryopt's own schema cannot be created or checked
     ├── ReportError             a report cannot be produced (no table, bad window, …)
     ├── AdvisorError            index advice cannot be produced (no HypoPG, no slow-query table, …)
     ├── PinError                a plan cannot be pinned or unpinned (no pg_hint_plan, shape not reproduced, …)
     └── ServerError             an embedded PostgreSQL cannot be found, started or stopped

Errors carry their context as attributes (``sql``, ``fingerprint``, ``sqlstate``,
``line``, ``column``…) and pickle with it, so they cross process boundaries
intact. Driver errors are wrapped with ``raise … from exc``.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "REJECTED_SQLSTATE",
    "AdvisorError",
    "AnalysisError",
    "CacheError",
    "ConfigurationError",
    "DatabaseConnectionError",
    "HintError",
    "MigrationError",
    "PinError",
    "QueryError",
    "QueryRejected",
    "QueryTimeout",
    "QueryoptError",
    "RecorderError",
    "ReportError",
    "ServerError",
]


def migrate_command(schema: str = "queryopt") -> str:
    """The command that creates queryopt's tables in ``schema``, for messages that tell the user to run it.

    >>> migrate_command(), migrate_command("perf")
    ('queryopt migrate', 'queryopt migrate --schema perf')
    """
    return "queryopt migrate" if schema == "queryopt" else f"queryopt migrate --schema {schema}"


def _restore(cls: type[QueryoptError], args: tuple[Any, ...], state: dict[str, Any]) -> QueryoptError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class QueryoptError(Exception):
    """Base class of every error queryopt raises."""

    __module__ = "queryopt"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default exception pickling.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(QueryoptError, ValueError):
    """A setting has a value queryopt cannot use; the message names the setting."""

    __module__ = "queryopt"

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class AnalysisError(QueryoptError):
    """The SQL text cannot be analysed.

    ``line`` and ``column`` (1-based) and ``highlight`` point at the offending
    fragment when the parser located it.
    """

    __module__ = "queryopt"

    def __init__(
        self,
        message: str,
        *,
        sql: str,
        line: int | None = None,
        column: int | None = None,
        highlight: str | None = None,
    ) -> None:
        super().__init__(message)
        self.sql = sql
        self.line = line
        self.column = column
        self.highlight = highlight


class HintError(QueryoptError):
    """A hint cannot be applied as asked: unknown relation, unknown index, conflict, bad name."""

    __module__ = "queryopt"

    def __init__(self, message: str, *, sql: str | None = None) -> None:
        super().__init__(message)
        self.sql = sql


class DatabaseConnectionError(QueryoptError, ConnectionError):
    """The database cannot be reached, or refused the connection.

    ``reason`` is libpq's own explanation (``Connection refused``, ``database "shop" does not
    exist``, ``password authentication failed``…); ``target`` names host, port, database and user,
    never the password.
    """

    __module__ = "queryopt"

    def __init__(self, message: str, *, reason: str, target: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.target = target


class QueryError(QueryoptError):
    """The database failed a statement; ``sqlstate`` is PostgreSQL's error code."""

    __module__ = "queryopt"

    def __init__(
        self,
        message: str,
        *,
        sql: str | None = None,
        fingerprint: str | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.sql = sql
        self.fingerprint = fingerprint
        self.sqlstate = sqlstate


class QueryTimeout(QueryError):
    """The statement exceeded its time limit and was cancelled on the server.

    ``limit`` and ``elapsed`` are in seconds.
    """

    __module__ = "queryopt"

    def __init__(
        self,
        message: str,
        *,
        sql: str | None = None,
        fingerprint: str | None = None,
        sqlstate: str | None = "57014",
        limit: float | None = None,
        elapsed: float | None = None,
    ) -> None:
        super().__init__(message, sql=sql, fingerprint=fingerprint, sqlstate=sqlstate)
        self.limit = limit
        self.elapsed = elapsed


REJECTED_SQLSTATE: Final = "QOREJ"
"""What the slow-query table stores as ``sqlstate`` for a rejected call: queryopt's own marker, not a
PostgreSQL code (PostgreSQL's classes never start with ``Q``)."""


class QueryRejected(QueryoptError):
    """A call waited ``waited`` seconds for a slot of its fingerprint (``limit`` calls at once) and was
    turned away before it took a connection: the query shape is overloaded. Retry later, or raise its limit.
    """

    __module__ = "queryopt"
    sqlstate: str = REJECTED_SQLSTATE

    def __init__(self, message: str, *, fingerprint: str, limit: int, waited: float, sql: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.limit = limit
        self.waited = waited
        self.sql = sql


class CacheError(QueryoptError):
    """The result cache cannot serve a request (for example a misconfigured backend)."""

    __module__ = "queryopt"


class RecorderError(QueryoptError):
    """The slow-query recorder cannot be set up or used as asked."""

    __module__ = "queryopt"


class MigrationError(QueryoptError):
    """queryopt's own schema cannot be created, upgraded or checked."""

    __module__ = "queryopt"


class ReportError(QueryoptError):
    """A report cannot be produced; the message says why in one line."""

    __module__ = "queryopt"


class AdvisorError(QueryoptError):
    """Index advice cannot be produced or applied; the message says why and what to do, in one line."""

    __module__ = "queryopt"


class PinError(QueryoptError):
    """A plan cannot be pinned or unpinned; the message says why and what to do next."""

    __module__ = "queryopt"

    def __init__(self, message: str, *, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class ServerError(QueryoptError):
    """An embedded PostgreSQL server cannot be found, started or stopped."""

    __module__ = "queryopt"
