"""Following the ends of an instrumented engine's transactions.

Writes must invalidate the cache after their transaction commits, never before:
a reader that ran between an early invalidation and the COMMIT would cache
the old rows again, under versions that look current. SQLAlchemy's ``commit``
event fires before the COMMIT is sent and there is no after-commit engine event,
so :class:`TransactionHooks` wraps the dialect's ``do_commit``/``do_rollback``
(and the savepoint and two-phase variants) of this one engine, as instance
attributes that :meth:`TransactionHooks.remove` takes away again. Pool resets
on check-in go through the same ``do_rollback``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from queryopt.integrations.sqlalchemy.links import LINK_KEY, ConnectionLink

__all__ = ["TransactionHooks", "link_of_pooled", "pool_info"]

OnCommit = Callable[[ConnectionLink, bool], None]


def pool_info(pooled: Any) -> dict[str, Any] | None:
    """The ``info`` of a pooled connection (a SQLAlchemy ``Connection`` or pool proxy).

    ``None`` for the ad-hoc proxy SQLAlchemy uses while it initialises its dialect on the very first
    connection: queryopt leaves those few statements alone.
    """
    try:
        info = pooled.info
    except (AttributeError, NotImplementedError):
        return None
    return info if isinstance(info, dict) else None


def link_of_pooled(pooled: Any) -> ConnectionLink | None:
    """The link of a pooled connection, if it has one."""
    info = pool_info(pooled)
    return None if info is None else info.get(LINK_KEY)


class TransactionHooks:
    """The wrapped transaction methods of one dialect; ``on_commit(link, failed)`` hears of every COMMIT."""

    def __init__(self, dialect: Any, on_commit: OnCommit) -> None:
        self.dialect = dialect
        self._on_commit = on_commit
        self._wrapped: dict[str, tuple[Any, Callable[..., Any]]] = {}

    def install(self) -> None:
        self._wrap("do_commit", self._wrapped_commit)
        self._wrap("do_rollback", self._wrapped_rollback)
        self._wrap("do_rollback_to_savepoint", self._wrapped_rollback_to_savepoint)
        self._wrap("do_commit_twophase", self._wrapped_commit_twophase)
        self._wrap("do_rollback_twophase", self._wrapped_rollback_twophase)

    def remove(self) -> None:
        """Put the dialect's own methods back (unless something else wrapped them since)."""
        for name, (original, wrapper) in list(self._wrapped.items()):
            if self.dialect.__dict__.get(name) is wrapper:
                if original is None:
                    delattr(self.dialect, name)
                else:
                    setattr(self.dialect, name, original)
        self._wrapped.clear()

    def _committed(self, pooled: Any, *, failed: bool = False) -> None:
        link = link_of_pooled(pooled)
        if link is not None:
            self._on_commit(link, failed)

    def _wrap(self, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        # An instance attribute shadows the dialect class's method for this engine only; remove() takes it away.
        dialect = self.dialect
        wrapper = make(getattr(dialect, name))
        self._wrapped[name] = (dialect.__dict__.get(name), wrapper)
        setattr(dialect, name, wrapper)

    def _wrapped_commit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_commit(dbapi_connection: Any) -> None:
            try:
                original(dbapi_connection)
            except BaseException:
                self._committed(dbapi_connection, failed=True)
                raise
            self._committed(dbapi_connection)

        return do_commit

    def _wrapped_rollback(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_rollback(dbapi_connection: Any) -> None:
            try:
                original(dbapi_connection)
            finally:
                link = link_of_pooled(dbapi_connection)
                if link is not None:
                    link.rolled_back()

        return do_rollback

    def _wrapped_rollback_to_savepoint(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_rollback_to_savepoint(connection: Any, name: str) -> None:
            try:
                original(connection, name)
            finally:
                link = link_of_pooled(connection)
                if link is not None:
                    link.savepoint_rolled_back()

        return do_rollback_to_savepoint

    def _wrapped_commit_twophase(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_commit_twophase(connection: Any, *args: Any, **kwargs: Any) -> None:
            try:
                original(connection, *args, **kwargs)
            except BaseException:
                self._committed(connection, failed=True)
                raise
            self._committed(connection)

        return do_commit_twophase

    def _wrapped_rollback_twophase(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_rollback_twophase(connection: Any, *args: Any, **kwargs: Any) -> None:
            try:
                original(connection, *args, **kwargs)
            finally:
                link = link_of_pooled(connection)
                if link is not None:
                    link.rolled_back()

        return do_rollback_twophase
