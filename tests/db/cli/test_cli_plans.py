"""``queryopt plans``, ``pin`` and ``unpin`` against a real database with a captured plan."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from queryopt import Optimizer, RecorderPolicy, Settings
from queryopt.analysis import analyze
from queryopt.cli import main
from queryopt.schema.migrator import migrate

Conn = psycopg.Connection[tuple[Any, ...]]
QUERY = "SELECT o.id FROM orders o WHERE o.customer_id = %s"
FINGERPRINT = analyze(QUERY).fingerprint


@pytest.fixture(autouse=True)
def _no_environment_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QUERYOPT_DSN", "QUERYOPT_RECORDER_DSN", "QUERYOPT_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def captured(dsn: str, conn: Conn) -> str:
    migrate(dsn)
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL)")
    conn.execute("INSERT INTO orders SELECT g, g % 500 FROM generate_series(1, 20000) g")
    conn.execute("CREATE INDEX orders_customer_idx ON orders (customer_id)")
    conn.execute("ANALYZE orders")
    settings = Settings(recorder=RecorderPolicy(threshold=0.0, flush_interval=0.05))
    with Optimizer(dsn, settings=settings) as opt:
        for customer in range(5):
            opt.execute(QUERY, [customer])
        assert opt.recorder is not None
        assert opt.recorder.flush(20)
    return dsn


def test_plans_json_lists_the_captured_plan_with_its_latency(captured: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plans", "--dsn", captured, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema_version"] == 1
    [entry] = document["fingerprints"]
    assert entry["fingerprint"] == FINGERPRINT
    [plan] = entry["plans"]
    assert plan["calls"] == 5
    assert plan["mean_ms"] > 0
    assert any("orders_customer_idx" in line for line in plan["tree"])
    assert entry["regressions"] == []
    assert entry["pin"] is None


def test_plans_table_and_markdown_show_the_plan(captured: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plans", "--dsn", captured, "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert f"## `{FINGERPRINT}`" in markdown
    assert "orders_customer_idx" in markdown
    assert main(["plans", "--dsn", captured]) == 0
    table = capsys.readouterr().out
    assert FINGERPRINT in table
    assert "mean ms" in table
    assert main(["plans", "--dsn", captured, "--fingerprint", "ffffffffffffffff"]) == 0
    assert "No plans captured" in capsys.readouterr().out


def test_pin_of_an_unknown_plan_and_unpin_of_an_unpinned_query_exit_2(
    captured: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pin", FINGERPRINT, "--plan", "0000000000000000", "--dsn", captured]) == 2
    assert "has no captured plan 0000000000000000" in capsys.readouterr().err
    assert main(["unpin", FINGERPRINT, "--dsn", captured]) == 2
    assert "is not pinned" in capsys.readouterr().err


@pytest.mark.pg_hint_plan
def test_pin_and_unpin_from_the_command_line(captured: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pin", FINGERPRINT, "--dsn", captured, "--format", "json"]) == 0
    pinned = json.loads(capsys.readouterr().out)
    assert pinned["schema_version"] == 1
    assert pinned["pinned"]["fingerprint"] == FINGERPRINT
    assert "orders_customer_idx" in pinned["pinned"]["hints"]
    assert main(["plans", "--dsn", captured, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    [entry] = document["fingerprints"]
    assert entry["pin"]["plan_hash"] == pinned["pinned"]["plan_hash"]
    assert entry["plans"][0]["pinned"] is True
    assert [action["action"] for action in document["actions"]] == ["pin"]
    assert main(["unpin", FINGERPRINT, "--dsn", captured]) == 0
    assert f"unpinned {FINGERPRINT}" in capsys.readouterr().out
