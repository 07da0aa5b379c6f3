"""The advice rendered as JSON, Markdown and terminal text; recorded text never becomes markup."""

from __future__ import annotations

import json

import pytest

from queryopt.advisor.render import render
from queryopt.cli import main
from queryopt.errors import AdvisorError
from tests.unit.advisor.sample import HOSTILE, sample_advice


def test_json_contract() -> None:
    document = json.loads(render(sample_advice(), "json"))
    assert document["schema_version"] == 1
    index = document["indexes"][0]
    assert index["columns"] == ["customer_id", "created_at"]
    assert index["create_statement"].startswith("CREATE INDEX CONCURRENTLY ")
    assert index["size_bytes"] == 12_533_760
    assert index["queries"][0] == {
        "fingerprint": "0123456789abcdef",
        "normalized_sql": HOSTILE,
        "calls": 30,
        "total_ms": 1350.0,
        "cost_before": 6419.3,
        "cost_after": 79.8,
        "share": 0.4,
    }
    assert document["unused_indexes"][0]["name"] == "orders_total_idx"
    assert document["skipped"][0]["reason"] == "named placeholders …"
    assert document["verification"] is None


def test_markdown_escapes_recorded_text() -> None:
    text = render(sample_advice(), "markdown")
    assert "CREATE INDEX CONCURRENTLY orders_customer_id_created_at_idx ON public.orders" in text
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "\\| \\`tick\\`" in text


def test_terminal_text_shows_statements_as_typed() -> None:
    text = render(sample_advice(), "table")
    assert "[bold]red[/bold]" in text
    assert "customer_id, created_at DESC" in text
    assert "orders_total_idx" in text
    assert "Nothing was created." in " ".join(text.split())


def test_unknown_format() -> None:
    with pytest.raises(AdvisorError, match="unknown advice format 'xml'"):
        render(sample_advice(), "xml")


def test_help_names_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["advise", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "postgresql-15-hypopg" in out
    assert "--apply" in out
    assert "CREATE INDEX CONCURRENTLY" in out
