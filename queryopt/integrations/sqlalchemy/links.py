"""What queryopt keeps per DBAPI connection of an instrumented engine.

A :class:`ConnectionLink` lives as long as its DBAPI connection (in the pool
entry's ``info``). It remembers:

- the ``statement_timeout`` last committed on the session, so that a limit set
  inside a transaction that is then rolled back is known to be gone again (the
  server undoes a ``set_config`` when its transaction rolls back);
- the tables written in the open transaction, whose cached results are
  invalidated once that transaction commits, and forgotten if it rolls back.

queryopt's helpers (identity, catalog, timeouts, planner settings) speak to a
synchronous psycopg connection. With ``create_async_engine`` the DBAPI connection
is SQLAlchemy's adapter around a psycopg ``AsyncConnection``;
:class:`AsyncConnectionFacade` gives it the few synchronous methods they use,
which SQLAlchemy's greenlet bridge runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from queryopt.optimizer.execution import Connection, assume_statement_timeout, known_statement_timeout

__all__ = ["LINK_KEY", "AsyncConnectionFacade", "ConnectionLink"]

LINK_KEY: Final = "queryopt.link"
"""Key of the link in the pool entry's ``info`` (and attribute name on a sync psycopg connection)."""


class AsyncConnectionFacade:
    """The synchronous psycopg subset queryopt's helpers use, over SQLAlchemy's async psycopg adapter.

    Only usable where SQLAlchemy runs sync code for an async engine (inside its greenlet bridge).
    """

    def __init__(self, adapted: Any) -> None:
        self._adapted = adapted
        self._driver = adapted.driver_connection

    @property
    def info(self) -> Any:
        return self._driver.info

    @property
    def autocommit(self) -> bool:
        return bool(self._driver.autocommit)

    @property
    def isolation_level(self) -> Any:
        return self._driver.isolation_level

    def execute(self, query: str, params: Any = None) -> Any:
        """Run ``query``; the returned cursor holds every row already (``fetchone``/``fetchall``)."""
        return self._adapted.execute(query, params)

    def commit(self) -> None:
        self._adapted.commit()

    def rollback(self) -> None:
        self._adapted.rollback()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction block around the statements run inside (for an autocommit connection)."""
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")


class ConnectionLink:
    """queryopt's state for one DBAPI connection: its session timeout and the writes of its open transaction."""

    __slots__ = ("committed_timeout", "conn", "owner", "pending_all", "pending_tables", "timeout_changed")

    def __init__(self, owner: object, conn: Connection) -> None:
        self.owner = owner
        """The instrumentation that made this link (a later one makes its own)."""
        self.conn = conn
        """The psycopg connection, or an :class:`AsyncConnectionFacade` standing in for one."""
        self.committed_timeout: int | None = None
        """The session's ``statement_timeout`` (ms) outside any transaction, as far as queryopt knows."""
        self.pending_tables: set[str] = set()
        self.pending_all = False
        self.timeout_changed = False
        """The limit was set inside the open transaction."""

    @property
    def has_pending(self) -> bool:
        return self.pending_all or bool(self.pending_tables)

    def wrote(self, tables: tuple[str, ...] | None) -> None:
        """Note a write of the open transaction: ``tables``, or ``None`` for tables unknown."""
        if tables is None:
            self.pending_all = True
        else:
            self.pending_tables.update(tables)

    def pending_overlaps(self, tables: frozenset[str]) -> bool:
        """Whether the open transaction wrote any of ``tables`` (or something unknown)."""
        return self.pending_all or not self.pending_tables.isdisjoint(tables)

    def take_pending(self) -> tuple[bool, tuple[str, ...]]:
        """Forget the open transaction's writes and return them as (everything?, tables)."""
        everything, tables = self.pending_all, tuple(self.pending_tables)
        self.pending_all = False
        self.pending_tables.clear()
        return everything, tables

    def timeout_set(self, milliseconds: int, *, autocommit: bool) -> None:
        """The session limit was just set; outside a transaction it sticks at once."""
        if autocommit:
            self.committed_timeout = milliseconds
        else:
            self.timeout_changed = True

    def committed(self) -> None:
        """The transaction committed: the limit set in it now sticks."""
        self.committed_timeout = known_statement_timeout(self.conn)
        self.timeout_changed = False

    def rolled_back(self) -> None:
        """The transaction rolled back: the server put the limit back; so do we, and drop its writes."""
        if known_statement_timeout(self.conn) != self.committed_timeout:
            assume_statement_timeout(self.conn, self.committed_timeout)
        self.timeout_changed = False
        if self.pending_all or self.pending_tables:
            self.take_pending()

    def savepoint_rolled_back(self) -> None:
        """Part of the transaction rolled back: a limit set in the transaction is unknown until set again.

        Writes are kept: whether they were inside the savepoint is unknown, and invalidating too
        much after the commit is safe.
        """
        if self.timeout_changed:
            assume_statement_timeout(self.conn, None)
