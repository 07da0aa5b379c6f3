"""``queryopt advise`` from the command line, the report's advice section, and one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from queryopt.cli import main

pytestmark = pytest.mark.hypopg


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_json_on_stdout(shop_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "advise", "--dsn", shop_dsn, "--format", "json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["schema_version"] == 1
    assert {"orders_customer_id_idx", "customers_email_idx", "orders_created_at_idx"} <= {
        index["name"] for index in document["indexes"]
    }


def test_table_and_markdown_output(shop_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "advise", "--dsn", shop_dsn)
    assert code == 0
    assert "CREATE INDEX CONCURRENTLY customers_email_idx ON public.customers (email);" in out
    assert "Nothing was created." in " ".join(out.split())
    target = tmp_path / "advice.md"
    code, out, err = _run(capsys, "advise", "--dsn", shop_dsn, "--format", "markdown", "--output", str(target))
    assert (code, out) == (0, "")
    assert f"wrote the markdown advice to {target}" in err
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Index advice for ")
    assert "CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id);" in text


def test_fail_on_advice_exits_1_for_ci(shop_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "advise", "--dsn", shop_dsn, "--format", "json", "--fail-on-advice")
    assert code == 1
    assert "advised; failing because of --fail-on-advice" in err


def test_the_report_gains_an_advice_section(shop_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "report", "--dsn", shop_dsn, "--since", "2h", "--format", "json")
    assert code == 0
    advice = json.loads(out)["advice"]
    assert advice["schema_version"] == 1
    assert "customers_email_idx" in {index["name"] for index in advice["indexes"]}
    code, out, _ = _run(capsys, "report", "--dsn", shop_dsn, "--since", "2h", "--format", "json", "--no-advice")
    assert code == 0
    assert "advice" not in json.loads(out)
    code, out, _ = _run(capsys, "report", "--dsn", shop_dsn, "--since", "2h", "--format", "html")
    assert code == 0
    assert '<section id="advice"><h2>Index advice</h2>' in out
    assert "CREATE INDEX CONCURRENTLY customers_email_idx ON public.customers (email);" in out


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("queryopt: error: ")
    return err


@pytest.mark.usefixtures("shop_db")  # only where the server has HypoPG
def test_without_hypopg_in_the_database(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["advise", "--dsn", dsn])
    assert "needs the HypoPG extension" in err
    assert "CREATE EXTENSION hypopg" in err


@pytest.mark.usefixtures("shop_db")
def test_without_queryopt_schema(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
    err = _one_line_error(capsys, ["advise", "--dsn", dsn, "--schema", "elsewhere"])
    assert "elsewhere.slow_queries does not exist: run `queryopt migrate --schema elsewhere` first" in err


def test_without_a_database(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYOPT_DSN", raising=False)
    monkeypatch.delenv("QUERYOPT_RECORDER_DSN", raising=False)
    err = _one_line_error(capsys, ["advise"])
    assert "pass --dsn or set QUERYOPT_DSN" in err


def test_bad_options_are_one_line_errors(shop_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "max_indexes must be an integer >= 1" in _one_line_error(
        capsys, ["advise", "--dsn", shop_dsn, "--max-indexes", "0"]
    )
    assert "is not a duration" in _one_line_error(capsys, ["advise", "--dsn", shop_dsn, "--since", "soon"])
