"""The first connection of a front end's own pool: made once directly, so a bad DSN fails at once.

A psycopg pool that cannot connect retries in the background, logs each failure and
gives up after its timeout with ``PoolTimeout`` (no cause). Before opening a pool of
its own, a front end connects once itself: a refused connection, an unknown host,
a missing database or a wrong password then raises :class:`DatabaseConnectionError`
with libpq's reason in the time libpq takes to say it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from queryopt.errors import DatabaseConnectionError

__all__ = ["check_connection", "check_connection_async", "connection_error"]

_TARGET_KEYS = ("host", "hostaddr", "port", "dbname", "user")


def describe_target(conninfo: str, options: dict[str, Any]) -> str:
    """``host=… port=… dbname=… user=…`` as given (libpq defaults otherwise); never the password.

    >>> describe_target("postgresql://app:secret@db:5433/shop", {})
    'host=db port=5433 dbname=shop user=app'
    """
    try:
        given = {**conninfo_to_dict(conninfo), **options}
    except psycopg.Error:
        return "the configured database"
    parts = [f"{key}={given[key]}" for key in _TARGET_KEYS if given.get(key) not in (None, "")]
    return " ".join(parts) or "the default database (libpq defaults)"


def connection_error(conninfo: str, options: dict[str, Any], exc: BaseException) -> DatabaseConnectionError:
    """queryopt's error for a failed connection, with libpq's reason in one line."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    target = describe_target(conninfo, options)
    return DatabaseConnectionError(f"cannot connect to {target}: {reason}", reason=reason, target=target)


def check_connection(conninfo: str, options: dict[str, Any]) -> None:
    """Connect once and close; :class:`DatabaseConnectionError` when libpq cannot."""
    try:
        psycopg.connect(conninfo, **options).close()
    except psycopg.Error as exc:
        raise connection_error(conninfo, options, exc) from exc


async def check_connection_async(conninfo: str, options: dict[str, Any]) -> None:
    """:func:`check_connection` for coroutines."""
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, **options)
    except psycopg.Error as exc:
        raise connection_error(conninfo, options, exc) from exc
    await conn.close()
