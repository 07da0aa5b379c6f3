"""The recorder's plan bookkeeping: each record's plan hash, plan_history rows, re-capture on a latency jump."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from queryopt import RecorderPolicy, SlowQueryRecorder
from queryopt.schema.migrator import migrate
from tests.factories import FP, slow_query

Conn = psycopg.Connection[tuple[Any, ...]]
SQL = "SELECT * FROM orders WHERE customer_id = %s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def migrated(dsn: str, conn: Conn) -> str:
    migrate(dsn)
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL)")
    conn.execute("INSERT INTO orders SELECT g, g % 1000 FROM generate_series(1, 50000) g")
    conn.execute("CREATE INDEX orders_customer_idx ON orders (customer_id)")
    conn.execute("ANALYZE orders")
    return dsn


def submit(recorder: SlowQueryRecorder, first: int, durations: list[float]) -> None:
    for offset, duration in enumerate(durations):
        record = slow_query(first + offset, sql_text=SQL, duration_ms=duration, params=(7,))
        assert recorder.submit(record)
    assert recorder.flush(20)


def hashes(conn: Conn) -> list[str | None]:
    return [row[0] for row in conn.execute("SELECT plan_hash FROM queryopt.slow_queries ORDER BY started_at")]


def test_a_latency_jump_captures_the_plan_again_within_the_interval(migrated: str, conn: Conn) -> None:
    clock = FakeClock()
    policy = RecorderPolicy(threshold=0.0, plan_interval=3600.0, flush_interval=0.05)
    with SlowQueryRecorder(migrated, policy, explain_conninfo=migrated, clock=clock) as recorder:
        submit(recorder, 0, [2.0] * 6)
        conn.execute("DROP INDEX orders_customer_idx")  # the plan changes under the running workload
        clock.now += 10  # well inside plan_interval: only the jump can trigger a capture
        submit(recorder, 6, [2.2, 40.0, 41.0])
        assert recorder.stats()["plans_captured"] == 2
    first, *same, steady, jumped, after = hashes(conn)
    assert first is not None
    assert same == [first] * 5
    assert steady == first  # recorded before the jump: still the old plan
    assert jumped is not None
    assert jumped != first
    assert after == jumped
    rows = conn.execute(
        "SELECT plan_hash, calls, captures, plan->0->'Plan'->>'Node Type' FROM queryopt.plan_history"
        " WHERE fingerprint = %s ORDER BY first_seen",
        [FP],
    ).fetchall()
    assert [(row[0], row[1], row[2]) for row in rows] == [(first, 7, 1), (jumped, 2, 1)]


def test_new_hints_on_a_fingerprint_capture_its_plan_at_once(migrated: str, conn: Conn) -> None:
    clock = FakeClock()
    policy = RecorderPolicy(threshold=0.0, plan_interval=3600.0, flush_interval=0.05)
    with SlowQueryRecorder(migrated, policy, explain_conninfo=migrated, clock=clock) as recorder:
        submit(recorder, 0, [2.0, 2.0])
        pinned = slow_query(
            2, sql_text="/*+ SeqScan(orders) */ " + SQL, hints="/*+ SeqScan(orders) */", duration_ms=2.0, params=(7,)
        )
        assert recorder.submit(pinned)
        assert recorder.flush(20)
        assert recorder.stats()["plans_captured"] == 2
