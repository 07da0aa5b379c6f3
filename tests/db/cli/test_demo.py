"""The README's first command: the demo, end to end, on small data."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from queryopt.cli.demo_steps import SCHEMA, DemoOptions, run_demo
from tests.conftest import TestServer

ADVISED = f"CREATE INDEX CONCURRENTLY order_items_product_id_idx ON {SCHEMA}.order_items (product_id)"


def _run(tmp_path: Path, **options: Any) -> str:
    out = io.StringIO()
    html = tmp_path / "report.html"
    status = run_demo(DemoOptions(scale=0.05, html=html, console=Console(file=out, width=120), **options))
    assert status == 0
    text = out.getvalue()
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    return text


def _assert_advice(text: str, server: TestServer) -> None:
    assert "6. Index advice" in text
    if "hypopg" not in server.features:
        assert "index advice skipped: the server lacks HypoPG (install postgresql-15-hypopg" in text
        return
    assert ADVISED in text
    assert "built order_items_product_id_idx: the lookup went from" in text
    summary = next(line for line in text.splitlines() if "│ advice" in line)
    assert "lookup" in summary
    assert "est. cost" in summary


def test_demo_on_its_own_embedded_server(tmp_path: Path, pg_server: TestServer) -> None:
    text = _run(tmp_path)
    assert "PostgreSQL started from" in text
    assert "QueryTimeout after" in text
    assert "still running on the server: 0" in text
    assert "the write invalidated it" in text
    assert "Index Scan using orders_status_idx" in text
    assert "invalidated at COMMIT" in text
    assert "Slow-query report" in text
    _assert_advice(text, pg_server)
    _assert_shedding(text)


def _assert_shedding(text: str) -> None:
    assert "7. Load shedding" in text
    rows = {line.split("│")[1].strip(): line.split("│")[2:-1] for line in text.splitlines() if "│" in line}
    unlimited, limited = rows["no limits"], rows["2 per query shape"]
    assert int(unlimited[-1]) == 0  # nothing turned away without limits
    assert int(limited[-1]) > 0  # exports over the limit were rejected (QueryRejected)
    assert int(limited[0]) > 0  # and the lookup kept running
    assert "│ load shedding" in text


def test_demo_against_an_existing_database_cleans_up(tmp_path: Path, dsn: str, pg_server: TestServer) -> None:
    text = _run(tmp_path, dsn=dsn)
    assert "PostgreSQL started from" not in text
    assert f"removed schema {SCHEMA}" in text
    _assert_advice(text, pg_server)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regnamespace(%s)", [SCHEMA]).fetchone() == (None,)
        # The demo created HypoPG for its advice: it went with the schema, and no index it built is left.
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'hypopg'").fetchall() == []
        assert conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'order_items%'").fetchall() == []


def test_demo_leaves_a_hypopg_the_database_already_had(tmp_path: Path, dsn: str, pg_server: TestServer) -> None:
    if "hypopg" not in pg_server.features:
        pytest.skip("the test server does not have hypopg (install postgresql-15-hypopg to run this test)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
    text = _run(tmp_path, dsn=dsn)
    assert ADVISED in text
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'hypopg'"
        ).fetchall() == [("public",)]
