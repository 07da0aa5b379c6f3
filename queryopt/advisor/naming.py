"""Names for advised indexes: ``<table>_<columns>_idx``, within PostgreSQL's 63 bytes, free in the schema."""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any

import psycopg

__all__ = ["index_name", "proposed_name"]

_MAX_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer names silently


def _clip(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode(errors="ignore")


def proposed_name(table: str, columns: Sequence[str], suffix: str = "") -> str:
    """``orders_customer_id_created_at_idx``; the table part is shortened first when it is too long.

    >>> proposed_name("orders", ["customer_id", "created_at"])
    'orders_customer_id_created_at_idx'
    >>> len(proposed_name("t" * 80, ["c" * 80], "2").encode())
    63
    """
    tail = "_" + "_".join(columns) + "_idx"
    head = _clip(table, max(8, _MAX_BYTES - len(tail.encode()) - len(suffix.encode())))
    return _clip(head + tail, _MAX_BYTES - len(suffix.encode())) + suffix


def index_name(conn: psycopg.Connection[Any], schema: str, table: str, columns: Sequence[str], taken: Set[str]) -> str:
    """A proposed name no relation of ``schema`` has and ``taken`` does not hold."""
    for attempt in range(1, 1000):
        name = proposed_name(table, columns, "" if attempt == 1 else str(attempt))
        if name in taken:
            continue
        exists = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            [schema, name],
        ).fetchone()
        if not exists:
            return name
    raise RuntimeError(f"no free index name for {schema}.{table}")  # 999 namesakes: not a real schema
