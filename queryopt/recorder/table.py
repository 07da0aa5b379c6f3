"""The slow-query table: records turned into rows, batches written exactly once, old rows pruned.

A batch is written in one transaction. Every row carries a ``record_id`` the
recorder generates before the first attempt, and the table has a unique index
on it (migration 0002). The first attempt COPYs straight into the table (the
fast path). A retry cannot know whether the earlier attempt committed (a lost
commit acknowledgement looks like any broken connection), so it COPYs into a
temporary staging table and inserts with ``ON CONFLICT (record_id) DO NOTHING``:
rows that already arrived are skipped, the others written. If the earlier
commit is still in flight on a dying backend, the unique index makes the insert
wait for its outcome. Either way each record is stored exactly once.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from queryopt.config import RecorderPolicy
from queryopt.errors import RecorderError, migrate_command

if TYPE_CHECKING:
    from queryopt.recorder.record import SlowQuery

__all__ = ["COLUMNS", "BatchResult", "SlowQueryTable", "new_record_ids", "prune", "to_row"]

COLUMNS = (
    "record_id",
    "started_at",
    "fingerprint",
    "kind",
    "normalized_sql",
    "sql_text",
    "duration_ms",
    "row_count",
    "timed_out",
    "sqlstate",
    "hints",
    "cache_outcome",
    "database_name",
    "role_name",
    "application_name",
    "source",
    "params",
    "plan",
    "plan_hash",
)
Row = tuple[Any, ...]

_BIGINT_MAX = 2**63 - 1
_ROW_INDEX_BITS = 20  # the low bits of a batch's record ids number its rows (batch_size is at most 100,000)
_STAGING = "queryopt_resend"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def new_record_ids(count: int) -> list[uuid.UUID]:
    """``count`` ids for one batch: UUIDv7 layout (time-ordered, so the unique index grows at its right
    edge), one random prefix per batch and the row number in the low bits.

    >>> first, second = new_record_ids(2)
    >>> first.version, second.int - first.int
    (7, 1)
    """
    if count >= 1 << _ROW_INDEX_BITS:
        raise ValueError(f"a batch holds at most {(1 << _ROW_INDEX_BITS) - 1} records")
    millis = time.time_ns() // 1_000_000 & ((1 << 48) - 1)
    random_bits = int.from_bytes(os.urandom(10), "big")
    rand_a = random_bits >> 68 & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1) & ~((1 << _ROW_INDEX_BITS) - 1)
    base = millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return [uuid.UUID(int=base | index) for index in range(count)]


def _text(value: object) -> str | None:
    """Text PostgreSQL accepts: ``str()`` of enums and other objects, NUL characters replaced."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _param_value(value: object, max_length: int) -> object:
    """One parameter value for the JSON column: numbers and booleans as they are, the rest as truncated text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _BIGINT_MAX else str(value)[:max_length]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = "\\x" + bytes(value[: max_length // 2 + 1]).hex()
    elif isinstance(value, (datetime, date, time_of_day)):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        text = value if isinstance(value, str) else str(value)
    return text[:max_length].replace("\x00", "\ufffd")


def params_json(params: object, max_length: int) -> str | None:
    """The JSON stored for a call's parameters: a list, an object, or one value; each value truncated.

    >>> params_json((1, "abcdef", None), 3)
    '[1, "abc", null]'
    >>> params_json({"name": "x" * 10}, 4)
    '{"name": "xxxx"}'
    """
    if params is None:
        return None
    value: object
    if isinstance(params, Mapping):
        value = {str(key): _param_value(item, max_length) for key, item in params.items()}
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes, bytearray)):
        value = [_param_value(item, max_length) for item in params]
    else:
        value = _param_value(params, max_length)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def to_row(
    record: SlowQuery, record_id: uuid.UUID, plan: str | None, policy: RecorderPolicy, plan_hash: str | None = None
) -> Row:
    """One table row (in ``COLUMNS`` order) from a record: values PostgreSQL would refuse are made safe,
    so one odd record cannot block a batch. ``plan_hash`` names the plan the call ran with, when known."""
    duration = record.duration_ms
    if not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration < 0:
        duration = 0.0
    row_count = record.row_count
    if not isinstance(row_count, int) or isinstance(row_count, bool) or not 0 <= row_count <= _BIGINT_MAX:
        row_count = None
    sqlstate = _text(record.sqlstate)
    params = None
    if policy.capture_params and record.params is not None:
        try:
            params = params_json(record.params, policy.param_max_length)
        except (TypeError, ValueError):
            params = json.dumps(str(record.params)[: policy.param_max_length])
    started_at = record.started_at if isinstance(record.started_at, datetime) else _text(record.started_at)
    return (
        record_id,
        started_at,
        _text(record.fingerprint),
        _text(record.kind),
        _text(record.normalized_sql),
        _text(record.sql_text),
        float(duration),
        row_count,
        bool(record.timed_out),
        sqlstate[:5] if sqlstate else None,
        _text(record.hints),
        _text(record.cache_outcome),
        _text(record.database_name),
        _text(record.role_name),
        _text(record.application_name),
        _text(record.source),
        params,
        plan,
        plan_hash,
    )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one write of a batch achieved."""

    stored: int
    """Rows of the batch now in the table (including rows an earlier, unacknowledged attempt stored)."""
    already_present: int
    """Rows a resend found already stored: proof that an earlier attempt committed."""
    rejected: int
    """Rows the database refused (a data or constraint error) and that were dropped."""


class SlowQueryTable:
    """Writes batches of rows into ``<schema>.slow_queries`` over a connection the caller owns."""

    def __init__(self, schema: str) -> None:
        table = sql.Identifier(schema, "slow_queries")
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS)
        staging = sql.Identifier(_STAGING)
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)
        self._create_staging = sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
        ).format(staging, columns, table)
        self._copy_staging = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, columns)
        self._merge_staging = sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (record_id) DO NOTHING"
        ).format(table, columns, columns, staging)
        placeholders = [sql.Placeholder()] * (len(COLUMNS) - 3) + [sql.SQL("%s::jsonb")] * 2 + [sql.Placeholder()]
        self._insert_one = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (record_id) DO NOTHING").format(
            table, columns, sql.SQL(", ").join(placeholders)
        )

    def write(self, conn: psycopg.Connection[Any], rows: Sequence[Row], *, resend: bool) -> BatchResult:
        """Store ``rows`` in one transaction. ``resend=True`` when an earlier attempt may have committed.

        Rows the database refuses (SQLSTATE classes 22 and 23) are retried one by one and the refused ones
        dropped; any other error propagates with the transaction rolled back.
        """
        try:
            with conn.transaction(), conn.cursor() as cursor:
                if not resend:
                    with cursor.copy(self._copy) as copy:
                        for row in rows:
                            copy.write_row(row)
                    return BatchResult(len(rows), 0, 0)
                cursor.execute(self._create_staging)
                with cursor.copy(self._copy_staging) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(self._merge_staging)
                inserted = max(cursor.rowcount, 0)
                return BatchResult(len(rows), len(rows) - inserted, 0)
        except (psycopg.DataError, psycopg.IntegrityError):
            if conn.broken or conn.closed:
                raise
        return self._write_one_by_one(conn, rows)

    def _write_one_by_one(self, conn: psycopg.Connection[Any], rows: Sequence[Row]) -> BatchResult:
        stored = present = rejected = 0
        with conn.transaction(), conn.cursor() as cursor:
            for row in rows:
                try:
                    with conn.transaction():  # a savepoint: one refused row does not abort the others
                        cursor.execute(self._insert_one, row)
                except (psycopg.DataError, psycopg.IntegrityError):
                    rejected += 1
                    continue
                stored += 1
                present += 1 if cursor.rowcount == 0 else 0
        return BatchResult(stored, present, rejected)


def prune(conninfo: str, older_than: float, *, schema: str = "queryopt", batch_size: int = 10_000) -> int:
    """Delete slow-query rows that started more than ``older_than`` seconds ago; returns how many.

    Rows go in batches of ``batch_size``, each its own transaction, so locks stay short and the
    work can be interrupted without losing what was done.
    """
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) or not 0 < older_than < math.inf:
        raise RecorderError(f"prune: older_than must be a positive number of seconds, got {older_than!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise RecorderError(f"prune: batch_size must be an integer >= 1, got {batch_size!r}")
    if not _IDENTIFIER.match(schema):
        raise RecorderError(f"schema name {schema!r} is not a lower-case identifier (letters, digits, _)")
    table = sql.Identifier(schema, "slow_queries")
    delete = sql.SQL("DELETE FROM {} WHERE id IN (SELECT id FROM {} WHERE started_at < %s LIMIT %s)").format(
        table, table
    )
    deleted = 0
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass(%s)", [f"{schema}.slow_queries"]).fetchone()
            if found is None or found[0] is None:
                raise RecorderError(f"{schema}.slow_queries does not exist: run `{migrate_command(schema)}` first")
            cutoff = conn.execute("SELECT now() - make_interval(secs => %s)", [float(older_than)]).fetchone()
            assert cutoff is not None
            while True:
                count = conn.execute(delete, [cutoff[0], batch_size]).rowcount
                deleted += count
                if count < batch_size:
                    return deleted
    except psycopg.Error as exc:
        raise RecorderError(f"cannot prune {schema}.slow_queries ({deleted} rows deleted before): {exc}") from exc
