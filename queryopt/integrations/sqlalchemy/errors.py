"""A statement timeout that existing SQLAlchemy code and queryopt code both recognise."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

from queryopt.errors import QueryTimeout

__all__ = ["SQLAlchemyQueryTimeout"]


def _restore(cls: type[SQLAlchemyQueryTimeout], args: tuple[Any, ...], state: dict[str, Any]) -> SQLAlchemyQueryTimeout:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class SQLAlchemyQueryTimeout(sa_exc.OperationalError, QueryTimeout):
    """The server cancelled a statement of an instrumented engine for running past its limit.

    Still the ``sqlalchemy.exc.OperationalError`` SQLAlchemy raises (``.orig`` is psycopg's
    ``QueryCanceled``, the message and statement are SQLAlchemy's), and also a
    :class:`queryopt.QueryTimeout` with ``fingerprint``, ``limit`` and ``elapsed`` (seconds).
    """

    @classmethod
    def from_operational_error(
        cls,
        error: sa_exc.OperationalError,
        *,
        sql: str | None,
        fingerprint: str | None,
        limit: float | None,
        elapsed: float | None,
    ) -> SQLAlchemyQueryTimeout:
        """SQLAlchemy's ``error`` for a cancelled statement, with queryopt's timeout details added."""
        timeout = cls(
            error.statement,
            error.params,
            error.orig if error.orig is not None else error,
            hide_parameters=error.hide_parameters,
            connection_invalidated=error.connection_invalidated,
            code=error.__dict__.get("code"),
            ismulti=error.ismulti,
        )
        timeout.detail = list(error.detail)
        timeout.sql = sql
        timeout.fingerprint = fingerprint
        timeout.sqlstate = getattr(error.orig, "sqlstate", None) or "57014"
        timeout.limit = limit
        timeout.elapsed = elapsed
        return timeout

    def __reduce__(self) -> tuple[Any, ...]:
        # Both bases pickle their own way; keep every attribute of both.
        return (_restore, (type(self), self.args, dict(self.__dict__)))
