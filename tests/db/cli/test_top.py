"""``queryopt top``: one snapshot as JSON and as text at 80 columns, against a real server with a statement running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from queryopt.cli import main
from queryopt.schema import migrate

LITERAL = "private-literal-4711"
FAST_FP = "00000000000000fa"
SLOW_FP = "000000000000510e"
REGRESSED_FP = "0000000000000bad"


def _seed(dsn: str) -> None:
    """Slow calls of three fingerprints: two in the last minutes, one also earlier, and now 5x slower."""
    migrate(dsn)
    rows: list[tuple[Any, ...]] = []
    for i in range(4):
        rows.append((FAST_FP, f"{i} minutes", 120.0, "SELECT * FROM orders WHERE id = %s"))
        rows.append((SLOW_FP, f"{i} minutes", 900.0, "SELECT count(*) FROM orders"))
        rows.append((REGRESSED_FP, f"{i} minutes", 500.0, "SELECT * FROM customers WHERE name = %s"))
        rows.append((REGRESSED_FP, f"{6 + i} minutes", 100.0, "SELECT * FROM customers WHERE name = %s"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO queryopt.slow_queries (started_at, fingerprint, kind, normalized_sql, sql_text, duration_ms,"
            " database_name, role_name) VALUES (now() - %s::interval, %s, 'select', %s, %s, %s, 'shop', 'app')",
            [(ago, fp, sql, sql, ms) for fp, ago, ms, sql in rows],
        )


@pytest.fixture
def sleeping(dsn: str) -> Iterator[int]:
    """A statement running on another connection for the duration of the test; yields its backend pid."""
    conn = psycopg.connect(dsn, autocommit=True, application_name="top-test")
    pid = conn.info.backend_pid
    failures: list[BaseException] = []

    def sleep() -> None:
        try:
            conn.execute(f"SELECT pg_sleep(60), '{LITERAL}'")
        except psycopg.errors.QueryCanceled:
            pass
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=sleep)
    thread.start()
    with psycopg.connect(dsn, autocommit=True) as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = watcher.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            if state is not None and state[0] == "active":
                break
            time.sleep(0.02)
        time.sleep(0.2)  # so that it has been running for a measurable while
        try:
            yield pid
        finally:
            watcher.execute("SELECT pg_cancel_backend(%s)", [pid])
            thread.join(10)
            conn.close()
    assert not failures


def _top(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["top", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_once_as_json_lists_the_running_statement_and_the_slowest(
    dsn: str, sleeping: int, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(dsn)
    status, out, err = _top(capsys, "--dsn", dsn, "--once", "--format", "json", "--since", "5m")
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert document["schema_version"] == 1
    assert document["table"] == "queryopt.slow_queries"
    assert document["window"]["seconds"] == 300.0
    running = {r["pid"]: r for r in document["running"]}
    assert sleeping in running
    statement = running[sleeping]
    assert statement["application_name"] == "top-test"
    assert statement["state"] == "active"
    assert statement["seconds"] >= 0.2
    assert "pg_sleep" in statement["query"].lower()
    assert statement["fingerprint"] is not None
    assert LITERAL not in out  # constants of running statements are shown as placeholders
    slowest = [q["fingerprint"] for q in document["slowest"]]
    assert slowest == [SLOW_FP, REGRESSED_FP, FAST_FP]  # by p95, the default
    assert document["slowest"][0]["calls"] == 4
    assert document["slowest"][0]["p95_ms"] == 900.0
    (regression,) = document["regressions"]
    assert regression["fingerprint"] == REGRESSED_FP
    assert regression["severity"] == "critical"
    assert regression["mean_ratio"] == 5.0


def test_once_as_text_fits_80_columns(dsn: str, sleeping: int, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(dsn)
    status, out, _ = _top(capsys, "--dsn", dsn, "--once")
    assert status == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(SLOW_FP in line for line in lines)
    assert any(str(sleeping) in line and "pg_sleep" in line.lower() for line in lines)
    assert any("critical" in line and REGRESSED_FP in line for line in lines)


def test_missing_table_is_one_line_naming_queryopt_migrate(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _top(capsys, "--dsn", dsn, "--once", "--format", "json")
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "queryopt migrate" in err


def test_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    status, out, err = _top(capsys, "--dsn", f"host={tmp_path} port=1 dbname=none", "--once")
    assert status == 2
    assert out == ""
    assert err.startswith("queryopt: error: cannot connect to the database")
    assert err.count("\n") == 1


def test_bad_interval_is_one_line(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _top(capsys, "--dsn", dsn, "--interval", "10ms")
    assert status == 2
    assert "--interval" in err
