"""The README's first command: the demo, end to end, on small data."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from queryopt.cli.demo_steps import SCHEMA, DemoOptions, run_demo


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


def test_demo_on_its_own_embedded_server(tmp_path: Path) -> None:
    text = _run(tmp_path)
    assert "PostgreSQL started from" in text
    assert "QueryTimeout after" in text
    assert "still running on the server: 0" in text
    assert "the write invalidated it" in text
    assert "Index Scan using orders_status_idx" in text
    assert "invalidated at COMMIT" in text
    assert "Slow-query report" in text


def test_demo_against_an_existing_database_cleans_up(tmp_path: Path, dsn: str) -> None:
    text = _run(tmp_path, dsn=dsn)
    assert "PostgreSQL started from" not in text
    assert f"removed schema {SCHEMA}" in text
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regnamespace(%s)", [SCHEMA]).fetchone() == (None,)
