"""A shop of ~400,000-row tables with primary keys only, and a recorded workload over it.

The workload is written into queryopt's slow-query table the way the recorder
writes it (``to_row`` + ``SlowQueryTable``), with parameter values not stored
(the default), so the advisor must plan generic plans. ``events`` is written
heavily after the statistics were reset; its one statement is recorded rarely.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from queryopt.analysis import analyze
from queryopt.config import RecorderPolicy
from queryopt.recorder import SlowQuery
from queryopt.recorder.table import SlowQueryTable, new_record_ids, to_row
from queryopt.schema import migrate

ORDERS = 400_000
CUSTOMERS = 400_000
EVENTS = 100_000

_LOAD = (
    "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, region int NOT NULL, note text)",
    "INSERT INTO customers SELECT g, 'user' || g || '@example.com', g % 50, repeat('x', 20)"
    f" FROM generate_series(1, {CUSTOMERS}) AS g",
    "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,"
    " created_at timestamptz NOT NULL, total numeric(10, 2) NOT NULL)",
    f"INSERT INTO orders SELECT g, 1 + (g::bigint * 7919) % {CUSTOMERS // 20},"
    " (ARRAY['open', 'paid', 'shipped', 'void'])[1 + g % 4],"
    " timestamptz '2024-01-01' + g * interval '1 minute', (g % 1000) / 10.0"
    f" FROM generate_series(1, {ORDERS}) AS g",
    "CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL, at timestamptz NOT NULL, payload text)",
    "INSERT INTO events SELECT g, g % 500, timestamptz '2024-01-01' + g * interval '1 second', 'e'"
    f" FROM generate_series(1, {EVENTS}) AS g",
    "ANALYZE customers",
    "ANALYZE orders",
    "ANALYZE events",
)


@dataclass(frozen=True)
class Recorded:
    """One statement of the workload: its text, parameters to run it with, and how it was recorded."""

    name: str
    sql: str
    params: tuple[object, ...]
    calls: int
    duration_ms: float

    @property
    def fingerprint(self) -> str:
        return analyze(self.sql).fingerprint


WORKLOAD = (
    Recorded("pk lookup", "SELECT * FROM orders WHERE id = %s", (4242,), 40, 60.0),
    Recorded("orders of a customer", "SELECT id, total FROM orders WHERE customer_id = %s", (77,), 30, 45.0),
    Recorded(
        "customer by email", "SELECT id, region FROM customers WHERE email = %s", ("user99@example.com",), 30, 50.0
    ),
    Recorded(
        "range and order",
        "SELECT id, total FROM orders WHERE created_at >= %s AND created_at < %s ORDER BY created_at",
        (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 1, 2, tzinfo=UTC)),
        25,
        70.0,
    ),
    Recorded(
        "latest of a customer (top-N)",
        "SELECT id, total, created_at FROM orders WHERE customer_id = %s ORDER BY created_at DESC LIMIT 10",
        (1234,),
        25,
        45.0,
    ),
    Recorded(
        "orders by email (join)",
        "SELECT o.id, o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email = %s",
        ("user7@example.com",),
        20,
        90.0,
    ),
)
WRITE_HEAVY = Recorded(
    "events of a kind",
    "SELECT id FROM events WHERE kind = %s AND at >= %s",
    (7, datetime(2024, 1, 2, tzinfo=UTC)),
    20,
    40.0,
)


def report_writes(conn: psycopg.Connection[Any], table: str, rows: int) -> None:
    """Make this session's write counters visible to others: flush them, and wait until ``table`` shows
    ``rows`` rows written (a backend reports its counters when idle, at most once a second, or when asked)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = %s", [table]
        ).fetchone()
        if row is not None and row[0] >= rows:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server never reported {rows} writes to {table}")


def forget_writes(conn: psycopg.Connection[Any], table: str, rows: int) -> None:
    """Reset the statistics once the load's writes are in them: a load is not the application's write rate."""
    report_writes(conn, table, rows)
    conn.execute("SELECT pg_stat_reset()")


def load(dsn: str, *, heavy_writes: int = 100_000) -> None:
    """Create and fill the tables, reset the statistics, then write ``events`` hard."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _LOAD:
            conn.execute(statement.encode())
        forget_writes(conn, "events", EVENTS)  # the last table loaded
        if heavy_writes:
            conn.execute("UPDATE events SET payload = 'changed' WHERE id <= %s", [heavy_writes])
            report_writes(conn, "events", heavy_writes)


def record(
    dsn: str,
    workload: tuple[Recorded, ...] = (*WORKLOAD, WRITE_HEAVY),
    *,
    schema: str = "queryopt",
    capture_params: bool = False,
) -> None:
    """Write each statement's calls into the slow-query table, spread over the last hour."""
    migrate(dsn, schema=schema)
    policy = RecorderPolicy(schema=schema, capture_params=capture_params)
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        database = conn.info.dbname
        records = []
        for item in workload:
            analysis = analyze(item.sql)
            for call in range(item.calls):
                records.append(
                    SlowQuery(
                        started_at=now - timedelta(minutes=60) + timedelta(seconds=call * 60),
                        fingerprint=analysis.fingerprint,
                        kind=analysis.kind.value,
                        normalized_sql=analysis.normalized_sql,
                        sql_text=item.sql,
                        duration_ms=item.duration_ms,
                        row_count=1,
                        timed_out=False,
                        sqlstate=None,
                        hints=None,
                        cache_outcome=None,
                        database_name=database,
                        role_name="app",
                        application_name="shop",
                        source=None,
                        params=item.params,
                    )
                )
        rows = [to_row(r, i, None, policy) for r, i in zip(records, new_record_ids(len(records)), strict=True)]
        SlowQueryTable(schema).write(conn, rows, resend=False)
