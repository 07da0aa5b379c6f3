"""``queryopt migrate`` and ``queryopt prune`` against a real database."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from queryopt.cli import main
from queryopt.config import RecorderPolicy
from queryopt.recorder.table import SlowQueryTable, new_record_ids, to_row
from queryopt.schema.migrator import migrate
from tests.factories import slow_query

Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture(autouse=True)
def _no_environment_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QUERYOPT_DSN", "QUERYOPT_RECORDER_DSN", "QUERYOPT_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


def test_migrate_check_exits_1_listing_pending_then_0_once_current(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--check", "--dsn", dsn]) == 1
    out = capsys.readouterr().out
    assert "0001_slow_queries" in out
    assert "0002_slow_query_record_ids" in out
    assert main(["migrate", "--dsn", dsn]) == 0
    assert "applied 0002_slow_query_record_ids" in capsys.readouterr().out
    assert main(["migrate", "--check", "--dsn", dsn]) == 0
    assert "is current" in capsys.readouterr().out
    assert main(["migrate", "--dsn", dsn]) == 0
    assert "already current" in capsys.readouterr().out


def test_migrate_takes_the_dsn_and_schema_from_the_environment(
    dsn: str, conn: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUERYOPT_DSN", dsn)
    monkeypatch.setenv("QUERYOPT_SCHEMA", "observability")
    assert main(["migrate"]) == 0
    assert conn.execute("SELECT to_regclass('observability.slow_queries') IS NOT NULL").fetchone() == (True,)
    assert main(["migrate", "--check", "--schema", "queryopt"]) == 1


def test_check_exit_status_from_the_real_command(dsn: str) -> None:
    command = [sys.executable, "-m", "queryopt", "migrate", "--check", "--dsn", dsn]
    assert subprocess.run(command, capture_output=True, check=False).returncode == 1
    migrate(dsn)
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0


def test_without_a_dsn_the_error_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--check"]) == 2
    assert capsys.readouterr().err == "queryopt: error: no database given: pass --dsn or set QUERYOPT_DSN\n"
    assert main(["prune", "--older-than", "30d"]) == 2


def test_prune_reports_how_many_rows_it_deleted(dsn: str, conn: Conn, capsys: pytest.CaptureFixture[str]) -> None:
    migrate(dsn)
    now = datetime.now(UTC)
    records = [slow_query(n, started_at=now - timedelta(days=days)) for n, days in enumerate([45, 31, 2])]
    ids = new_record_ids(len(records))
    with psycopg.connect(dsn) as writer:
        rows = [to_row(record, ids[n], None, RecorderPolicy()) for n, record in enumerate(records)]
        SlowQueryTable("queryopt").write(writer, rows, resend=False)
    assert main(["prune", "--older-than", "30d", "--dsn", dsn, "--batch-size", "1"]) == 0
    assert "deleted 2 slow-query record(s) older than 30d" in capsys.readouterr().out
    assert conn.execute("SELECT source FROM queryopt.slow_queries").fetchall() == [("call-2",)]


def test_prune_refuses_a_bad_age(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--older-than", "a while", "--dsn", dsn]) == 2
    assert "--older-than" in capsys.readouterr().err
