"""The immutable result of analysing one SQL statement."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from queryopt.analysis.functions import unclassified_reason
from queryopt.analysis.sqltext import SqlHead

__all__ = ["Analysis", "PlaceholderStyle", "SessionChange", "StatementKind", "TableRef"]


class StatementKind(StrEnum):
    """What a statement does, at the granularity the cache and the retry policy need."""

    SELECT = "select"
    """A query: SELECT, VALUES, TABLE, UNION/INTERSECT/EXCEPT (possibly with writing CTEs)."""
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    MERGE = "merge"
    DDL = "ddl"
    """CREATE, ALTER, DROP, TRUNCATE, COMMENT, GRANT, REVOKE, …"""
    UTILITY = "utility"
    """Everything else: SET, SHOW, BEGIN/COMMIT, SAVEPOINT, COPY, VACUUM, EXPLAIN, CALL, DO, …"""


class PlaceholderStyle(StrEnum):
    """How the statement marks its parameters."""

    NONE = "none"
    FORMAT = "format"
    """``%s`` (psycopg)."""
    PYFORMAT = "pyformat"
    """``%(name)s`` (psycopg, SQLAlchemy)."""
    NUMERIC = "numeric"
    """``$1`` (server-side, PREPARE)."""
    NAMED = "named"
    """``:name`` (pgbench, SQLAlchemy ``text()`` before compilation)."""
    QMARK = "qmark"
    """``?`` (JDBC/DB-API qmark; psycopg does not accept it)."""
    MIXED = "mixed"
    """More than one of the styles above in one text."""


@dataclass(frozen=True, slots=True)
class TableRef:
    """One occurrence of a base relation in a statement, named as PostgreSQL resolves it."""

    schema: str | None
    """The schema as the query qualifies it (folded), ``None`` when unqualified."""
    name: str
    """Folded like PostgreSQL: unquoted → lower case, quoted → exact."""
    alias: str | None
    """The alias the query gives the relation (folded the same way), ``None`` when not aliased."""

    @property
    def reference(self) -> str:
        """The name pg_hint_plan matches: the alias when aliased, else the bare table name.

        >>> TableRef("public", "orders", "o").reference, TableRef(None, "orders", None).reference
        ('o', 'orders')
        """
        return self.alias if self.alias is not None else self.name

    @property
    def qualified_name(self) -> str:
        """``schema.name`` when qualified, else ``name`` (unquoted; for messages and keys)."""
        return f"{self.schema}.{self.name}" if self.schema is not None else self.name


@dataclass(frozen=True, slots=True)
class SessionChange:
    """A statement that changes settings of the connection running it (``SET``, ``set_config``, …)."""

    form: str
    """What the statement does, for messages: ``SET``, ``SET ROLE``, ``RESET``, ``set_config(…, false)``…"""
    outlives_transaction: bool
    """True when the change stays on the connection after the transaction ends (``SET LOCAL`` does not)."""
    advice: str
    """How to get the same effect without changing a pooled connection for the calls that follow."""
    in_transaction_only: bool = False
    """Meaningful only inside a transaction (``SET LOCAL``, ``SAVEPOINT``): refused on a pooled autocommit call."""
    controls_transaction: bool = False
    """Begins or ends a transaction (``BEGIN``, ``COMMIT``, ``ROLLBACK``): the optimizer owns transactions."""

    def refused(self, *, in_transaction: bool) -> bool:
        """Whether an optimizer refuses the statement on a pooled connection, in or out of a transaction."""
        if self.outlives_transaction or self.controls_transaction:
            return True
        return self.in_transaction_only and not in_transaction


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything queryopt needs to know about one statement, computed once per distinct text."""

    sql: str
    """The exact text analysed."""
    kind: StatementKind
    tables: tuple[TableRef, ...]
    """Every base-relation occurrence (a self-join gives two), in text order; CTE names and functions excluded."""
    written_tables: tuple[TableRef, ...]
    """INSERT/UPDATE/DELETE/MERGE targets (also inside CTEs), COPY FROM, SELECT INTO and DDL/TRUNCATE targets."""
    fingerprint: str
    """16 lower-case hex characters identifying the statement's structure (see ``queryopt.analysis``)."""
    normalized_sql: str
    """The statement with constants and parameters replaced by ``%s``, lists collapsed, comments dropped."""
    cacheable: bool
    """True when a result of this statement may be served from the result cache."""
    uncacheable_reasons: tuple[str, ...]
    """Why not, one human-readable reason each; empty when cacheable."""
    volatile_functions: tuple[str, ...]
    """Lower-case names of time-dependent, volatile and session-dependent functions called, e.g. ``("now",)``."""
    unclassified_functions: tuple[str, ...]
    """Functions whose volatility queryopt cannot classify (``schema.name`` when qualified)."""
    placeholder_style: PlaceholderStyle
    placeholder_count: int
    """Number of placeholder occurrences in the text (``$1`` used twice counts twice)."""
    placeholder_names: tuple[str, ...]
    """Distinct names of ``%(name)s`` / ``:name`` placeholders in order of first use; numbers of ``$n`` as text."""
    head: SqlHead
    """Leading comments, the hint block if any, and where the statement body starts."""
    read_only: bool
    """A SELECT without FOR UPDATE/SHARE, INTO, data-modifying CTE or state-changing/unclassified function."""
    may_write_unlisted: bool = False
    """True when the statement may change tables not in ``written_tables`` (DDL, CALL, DO, unknown functions)."""
    session_change: SessionChange | None = None
    """Set when the statement changes settings of its connection (a pooled one serves other calls next)."""
    _only_unclassified: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unclassified = {unclassified_reason(name) for name in self.unclassified_functions}
        only = bool(self.uncacheable_reasons) and all(r in unclassified for r in self.uncacheable_reasons)
        object.__setattr__(self, "_only_unclassified", only)

    def cacheable_with(self, stable_functions: Collection[str]) -> bool:
        """True if cacheable once the caller vouches for ``stable_functions`` (lower-case names).

        Only unclassified functions can be vouched for; a bare name also covers schema-qualified
        calls of that name (``"tax"`` allows ``billing.tax()``), a qualified one only itself.
        """
        if self.cacheable:
            return True
        if not self._only_unclassified:
            return False
        for name in self.unclassified_functions:
            folded = name.lower()
            if folded not in stable_functions and folded.rpartition(".")[2] not in stable_functions:
                return False
        return True
