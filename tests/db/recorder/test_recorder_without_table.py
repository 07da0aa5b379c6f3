"""A first script on a database where ``queryopt migrate`` never ran: one clear message, then silence."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from queryopt import RecorderPolicy, SlowQueryRecorder
from queryopt.errors import ReportError
from queryopt.report import report
from queryopt.schema import migrate
from tests.factories import slow_query

FIRST_SCRIPT = textwrap.dedent(
    """
    import logging, sys, time
    import queryopt

    logging.basicConfig(level=logging.INFO)
    queryopt.configure(sys.argv[1])
    for _ in range(5):
        queryopt.optimize_query("SELECT pg_sleep(%s)", [0.12])  # slow: recorded by default
        time.sleep(0.3)
    print("done", flush=True)
    """
)


def test_a_first_script_is_told_once_to_run_queryopt_migrate(dsn: str) -> None:
    env = {**os.environ, "QUERYOPT_RECORDER_FLUSH_INTERVAL": "100ms"}
    env.pop("QUERYOPT_DSN", None)
    finished = subprocess.run(
        [sys.executable, "-c", FIRST_SCRIPT, dsn], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "done"
    messages = [line for line in finished.stderr.splitlines() if "queryopt" in line]
    assert len([line for line in messages if "queryopt migrate" in line]) == 1, finished.stderr
    assert not [line for line in messages if "retrying" in line or "not written" in line], finished.stderr


def test_the_recorder_stops_trying_once_it_finds_no_table(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="queryopt"):
        recorder = SlowQueryRecorder(dsn, RecorderPolicy(flush_interval=0.05))
        try:
            assert recorder.submit(slow_query(1))
            deadline = time.monotonic() + 10
            while recorder.submit(slow_query(2)):  # accepted until the writer finds the table missing
                assert time.monotonic() < deadline, "the recorder never noticed the missing table"
                time.sleep(0.02)
            time.sleep(0.3)  # a writer still retrying would fail again here
            stats = recorder.stats()
        finally:
            recorder.close()
    assert stats["write_failures"] == 1
    assert stats["pending"] == 0
    assert stats["dropped"] >= 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "queryopt.slow_queries does not exist" in warnings[0]
    assert "`queryopt migrate`" in warnings[0]


def test_the_report_names_the_cli_command_when_the_table_is_missing(dsn: str) -> None:
    with pytest.raises(ReportError, match=r"run `queryopt migrate`") as caught:
        report(dsn, since=3600)
    assert "migrate(" not in str(caught.value)
    with pytest.raises(ReportError, match=r"run `queryopt migrate --schema perf`"):
        report(dsn, since=3600, schema="perf")


def test_a_schema_older_than_this_version_is_reported_once_naming_queryopt_migrate(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:  # as if the last migration had not been applied
        conn.execute("ALTER TABLE queryopt.slow_queries DROP COLUMN plan_hash")
    with caplog.at_level(logging.INFO, logger="queryopt"):
        recorder = SlowQueryRecorder(dsn, RecorderPolicy(flush_interval=0.05))
        try:
            assert recorder.submit(slow_query(1))
            deadline = time.monotonic() + 10
            while recorder.submit(slow_query(2)):
                assert time.monotonic() < deadline, "the recorder never noticed the out-of-date table"
                time.sleep(0.02)
            stats = recorder.stats()
        finally:
            recorder.close()
    assert stats["write_failures"] == 1
    told = [record.getMessage() for record in caplog.records if "queryopt migrate" in record.getMessage()]
    assert len(told) == 1, told
    assert "out of date" in told[0]
