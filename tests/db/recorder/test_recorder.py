"""The slow-query recorder against real PostgreSQL servers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from queryopt import RecorderPolicy, SlowQueryRecorder
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.errors import REJECTED_SQLSTATE
from queryopt.schema.migrator import migrate
from tests.factories import FP, OTHER_FP, slow_query

Conn = psycopg.Connection[tuple[Any, ...]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rows(dsn: str, columns: str = "source") -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT {columns} FROM queryopt.slow_queries ORDER BY started_at, id").fetchall()


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def migrated(dsn: str, conn: Conn) -> str:
    migrate(dsn)
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    conn.execute("INSERT INTO orders SELECT g, g * 2 FROM generate_series(1, 1000) g")
    conn.execute("ANALYZE orders")
    return dsn


def test_slow_records_appear_with_every_field_and_fast_ones_do_not(migrated: str) -> None:
    policy = RecorderPolicy(capture_params=True, param_max_length=5)
    record = slow_query(
        7,
        duration_ms=123.5,
        row_count=1,
        timed_out=True,
        sqlstate="57014",
        hints="IndexScan(orders orders_pkey)",
        sql_text="/*+ IndexScan(orders orders_pkey) */ SELECT * FROM orders WHERE id = %s AND %s <> ''",
        params=(42, "abcdefghij"),
    )
    with SlowQueryRecorder(migrated, policy, explain_conninfo=migrated) as recorder:
        assert recorder.is_slow(FP, 0.1235)
        assert not recorder.is_slow(FP, 0.05)
        assert recorder.submit(record) is True
        assert recorder.submit(slow_query(8, duration_ms=99.9)) is False  # below the 100 ms threshold
        assert recorder.flush(10)
        stats = recorder.stats()
    assert stats["recorded"] == 1
    assert stats["below_threshold"] == 1
    assert stats["pending"] == 0
    assert stats["plans_captured"] == 1
    columns = (
        "started_at, fingerprint, kind, normalized_sql, sql_text, duration_ms, row_count, timed_out, sqlstate,"
        " hints, cache_outcome, database_name, role_name, application_name, source, params, plan, record_id"
    )
    [row] = _rows(migrated, columns)
    assert row[:15] == (
        record.started_at,
        FP,
        "select",
        record.normalized_sql,
        record.sql_text,
        123.5,
        1,
        True,
        "57014",
        "IndexScan(orders orders_pkey)",
        "miss",
        "shop",
        "app",
        "tests",
        "call-7",
    )
    assert row[15] == [42, "abcde"]  # truncated to param_max_length
    plan = row[16]
    assert plan[0]["Plan"]["Relation Name"] == "orders"
    assert row[17] is not None


def test_params_and_plans_are_off_unless_asked_for(migrated: str) -> None:
    with SlowQueryRecorder(migrated) as recorder:
        assert recorder.submit(slow_query(1, params=("secret",)))
        assert recorder.flush(10)
    assert _rows(migrated, "params, plan") == [(None, None)]


def test_per_fingerprint_threshold_overrides_the_default(migrated: str) -> None:
    policy = RecorderPolicy(threshold=0.1, thresholds={FP: 1.0, OTHER_FP: 0.01})
    with SlowQueryRecorder(migrated, policy) as recorder:
        assert recorder.submit(slow_query(1, fingerprint=FP, duration_ms=500)) is False
        assert recorder.submit(slow_query(2, fingerprint=FP, duration_ms=1000)) is True
        assert recorder.submit(slow_query(3, fingerprint=OTHER_FP, duration_ms=20)) is True
        assert recorder.flush(10)
    assert _rows(migrated) == [("call-2",), ("call-3",)]


def test_sampling_caps_records_per_fingerprint_per_window(migrated: str) -> None:
    clock = FakeClock()
    policy = RecorderPolicy(max_per_fingerprint=3, sample_window=60.0)
    with SlowQueryRecorder(migrated, policy, clock=clock) as recorder:
        accepted = [recorder.submit(slow_query(n)) for n in range(10)]
        assert accepted == [True] * 3 + [False] * 7
        assert recorder.submit(slow_query(10, fingerprint=OTHER_FP)) is True  # another query is not affected
        clock.now += 60.0
        assert [recorder.submit(slow_query(n)) for n in range(11, 15)] == [True, True, True, False]
        assert recorder.flush(10)
        stats = recorder.stats()
    assert (stats["recorded"], stats["sampled_out"]) == (7, 8)
    assert len(_rows(migrated)) == 7


def test_rejections_are_recorded_whatever_their_wait_and_sampled_apart(migrated: str) -> None:
    clock = FakeClock()
    policy = RecorderPolicy(threshold=0.1, max_per_fingerprint=2, sample_window=60.0)
    with SlowQueryRecorder(migrated, policy, clock=clock) as recorder:
        rejected = [recorder.submit(slow_query(n, duration_ms=0.0, sqlstate=REJECTED_SQLSTATE)) for n in range(5)]
        assert rejected == [True, True, False, False, False]  # below the threshold, yet kept; sampled
        assert [recorder.submit(slow_query(n)) for n in range(5, 8)] == [True, True, False]  # a budget of their own
        assert recorder.submit(slow_query(8, duration_ms=50.0, sqlstate="23505")) is False  # fast errors: not slow
        assert recorder.flush(10)
    assert [state for (state,) in _rows(migrated, "sqlstate")].count(REJECTED_SQLSTATE) == 2


def test_plan_capture_never_executes_the_statement(migrated: str, conn: Conn) -> None:
    policy = RecorderPolicy(plan_interval=0)
    records = [
        slow_query(1, kind="delete", sql_text="DELETE FROM orders", params=None),
        slow_query(2, fingerprint=OTHER_FP, sql_text="SELECT 1; DROP TABLE orders", params=None),
        slow_query(3, fingerprint="1" * 16, kind="ddl", sql_text="DROP TABLE orders", params=None),
    ]
    with SlowQueryRecorder(migrated, policy, explain_conninfo=migrated) as recorder:
        assert all(recorder.submit(record) for record in records)
        assert recorder.flush(10)
        stats = recorder.stats()
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1000,)
    plans = dict(_rows(migrated, "source, plan"))
    assert plans["call-1"][0]["Plan"]["Node Type"] == "ModifyTable"
    assert plans["call-2"] is None  # two statements: refused by the extended protocol
    assert plans["call-3"] is None  # DDL is never explained
    assert (stats["plans_captured"], stats["plan_failures"]) == (1, 1)


def test_plans_are_rate_limited_per_fingerprint(migrated: str) -> None:
    clock = FakeClock()
    policy = RecorderPolicy(plan_interval=300.0)
    with SlowQueryRecorder(migrated, policy, explain_conninfo=migrated, clock=clock) as recorder:
        for n in range(3):
            recorder.submit(slow_query(n))
        assert recorder.flush(10)
        clock.now += 300.0
        recorder.submit(slow_query(3))
        assert recorder.flush(10)
        assert recorder.stats()["plans_captured"] == 2
    plans = [plan is not None for (plan,) in _rows(migrated, "plan")]
    assert plans == [True, False, False, True]


def test_a_row_the_database_refuses_is_dropped_alone(migrated: str) -> None:
    with SlowQueryRecorder(migrated) as recorder:
        recorder.submit(slow_query(1))
        recorder.submit(slow_query(2, started_at="not a timestamp"))  # type: ignore[arg-type]
        recorder.submit(slow_query(3, sql_text="SELECT '\x00'", sqlstate="P0001-too-long"))
        assert recorder.flush(10)
        stats = recorder.stats()
    assert (stats["recorded"], stats["rejected"]) == (2, 1)
    assert _rows(migrated, "source, sql_text, sqlstate") == [
        ("call-1", "SELECT * FROM orders WHERE id = %s", None),
        ("call-3", "SELECT '\ufffd'", "P0001"),
    ]


def test_a_missing_schema_stops_the_recorder_and_a_recorder_opened_after_migrate_writes(dsn: str) -> None:
    # A missing table is a setup step not taken (``queryopt migrate``), not an outage: no retrying
    # (see test_recorder_without_table.py for the one message it gives).
    policy = RecorderPolicy(retry_max_backoff=0.1, flush_interval=0.05)
    with SlowQueryRecorder(dsn, policy) as recorder:
        assert recorder.submit(slow_query(1))
        _wait_until(lambda: recorder.stats()["write_failures"] > 0)
        assert recorder.stats()["pending"] == 0
        migrate(dsn)
        assert not recorder.submit(slow_query(2))
    with SlowQueryRecorder(dsn, policy) as recorder:
        assert recorder.submit(slow_query(3))
        assert recorder.flush(20)
    assert _rows(dsn) == [("call-3",)]


def test_recording_database_outage_leaves_the_application_alone(dsn: str) -> None:
    """The recorder writes to its own server; the application keeps querying another one while it is down."""
    with EmbeddedPostgres() as recording_server:
        recording_dsn = recording_server.conninfo()
        migrate(recording_dsn)
        policy = RecorderPolicy(retry_max_backoff=0.2, flush_interval=0.05, batch_size=7, max_per_fingerprint=1000)
        recorder = SlowQueryRecorder(recording_dsn, policy)
        try:
            with psycopg.connect(dsn, autocommit=True) as app:

                def application_call(number: int) -> None:
                    started = datetime.now(UTC)
                    assert app.execute("SELECT %s::int + 1", [number]).fetchone() == (number + 1,)
                    assert recorder.submit(slow_query(number, started_at=started)) is True

                for number in range(10):
                    application_call(number)
                assert recorder.flush(10)

                recording_server.stop(keep_data=True)
                for number in range(10, 60):
                    application_call(number)
                _wait_until(lambda: recorder.stats()["write_failures"] >= 2)
                assert recorder.stats()["pending"] == 50
                assert recorder.flush(0.2) is False

                recording_server.start()
                for number in range(60, 70):
                    application_call(number)
                assert recorder.flush(30)
                stats = recorder.stats()
        finally:
            recorder.close()
        assert (stats["recorded"], stats["pending"], stats["dropped"]) == (70, 0, 0)
        sources = [source for (source,) in _rows(recording_dsn)]
        assert sorted(sources) == sorted(f"call-{n}" for n in range(70))  # each exactly once


def test_a_full_queue_drops_and_counts_and_memory_stays_bounded(tmp_path: object) -> None:
    import tracemalloc

    unreachable = f"host={tmp_path} dbname=nowhere connect_timeout=1"
    policy = RecorderPolicy(queue_size=100, batch_size=10, max_per_fingerprint=1_000_000, retry_max_backoff=0.05)
    recorder = SlowQueryRecorder(unreachable, policy)
    try:
        accepted = sum(recorder.submit(slow_query(n)) for n in range(1000))
        assert accepted == 100
        stats = recorder.stats()
        assert (stats["pending"], stats["dropped"]) == (100, 900)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(20_000):
                recorder.submit(slow_query(n, fingerprint=f"{n:016x}"))
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert growth < 64 * 1024, f"memory grew by {growth} bytes while every record was dropped"
        assert recorder.stats()["dropped"] == 20_900
        assert recorder.stats()["pending"] == 100
    finally:
        recorder.close(timeout=0.1)
    assert recorder.submit(slow_query(1)) is False  # closed


def test_records_are_flushed_at_interpreter_exit(migrated: str) -> None:
    script = textwrap.dedent(
        """
        import sys
        from queryopt import SlowQueryRecorder
        from tests.factories import slow_query
        recorder = SlowQueryRecorder(sys.argv[1])
        for number in range(3):
            assert recorder.submit(slow_query(number))
        # no flush, no close: the atexit hook must write them
        """
    )
    result = subprocess.run([sys.executable, "-c", script, migrated], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _rows(migrated) == [("call-0",), ("call-1",), ("call-2",)]


def test_a_disabled_recorder_records_nothing(migrated: str) -> None:
    with SlowQueryRecorder(migrated, RecorderPolicy(enabled=False)) as recorder:
        assert recorder.submit(slow_query(1)) is False
        assert recorder.flush(1)
    assert _rows(migrated) == []


def test_bad_connection_string_is_a_recorder_error() -> None:
    from queryopt import RecorderError

    with pytest.raises(RecorderError, match="conninfo"):
        SlowQueryRecorder("host='unterminated")
