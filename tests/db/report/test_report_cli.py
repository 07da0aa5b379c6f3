"""``queryopt report``: formats, output files, --fail-on exit codes, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from queryopt.cli import main
from queryopt.schema.migrator import migrate
from tests.db.report import report_seed as seed
from tests.db.report.report_seed import CRIT_FP, NEW_FP, OK_FP, WARN_FP

WINDOW = ["--from", "2024-05-01T12:00:00Z", "--to", "2024-05-02T12:00:00+00:00"]


@pytest.fixture
def seeded_dsn(dsn: str) -> str:
    seed.seed_table(dsn)
    return dsn


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["report", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("extra", "fail_on", "status"),
    [
        ([], "critical", 1),  # the seeded window holds a critical regression
        ([], "warning", 1),
        (["--fingerprint", WARN_FP], "critical", 0),  # only a warning here
        (["--fingerprint", WARN_FP], "warning", 1),
        (["--fingerprint", CRIT_FP], "critical", 1),
        (["--fingerprint", NEW_FP], "warning", 0),  # new is informational
        (["--fingerprint", OK_FP], "warning", 0),
        ([], None, 0),  # without --fail-on a regression does not fail the run
    ],
)
def test_fail_on_exit_status(
    seeded_dsn: str, capsys: pytest.CaptureFixture[str], extra: list[str], fail_on: str | None, status: int
) -> None:
    options = ["--fail-on", fail_on] if fail_on else []
    code, out, err = _run(capsys, "--dsn", seeded_dsn, *WINDOW, *extra, "--format", "json", *options)
    assert code == status
    assert json.loads(out)["schema_version"] == 1  # the report is written either way
    if status == 1:
        assert f"failing because of --fail-on {fail_on}" in err
    else:
        assert err == ""


def test_fail_on_critical_fails_exactly_when_a_critical_regression_exists(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before, now = seed.START - timedelta(hours=1), seed.NOW - timedelta(hours=1)
    rows = [seed.Seed(before, "00000000000000aa", 100.0), seed.Seed(now, "00000000000000aa", 300.0)]
    seed.seed_table(dsn, rows)
    assert _run(capsys, "--dsn", dsn, *WINDOW, "--fail-on", "critical")[0] == 0  # exactly 3x: a warning
    seed.seed_table(dsn, [seed.Seed(now, "00000000000000aa", 301.0)])  # mean now 300.5: more than 3x
    assert _run(capsys, "--dsn", dsn, *WINDOW, "--fail-on", "critical")[0] == 1


def test_dsn_from_the_environment_and_output_file(
    seeded_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QUERYOPT_DSN", seeded_dsn)
    target = tmp_path / "report.html"
    code, out, err = _run(capsys, *WINDOW, "--format", "html", "--output", str(target))
    assert code == 0
    assert out == ""
    assert f"wrote the html report to {target}" in err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [("table", "Top 6 queries by total"), ("markdown", "# Slow-query report"), ("csv", "rank,fingerprint")],
)
def test_formats_on_stdout(seeded_dsn: str, capsys: pytest.CaptureFixture[str], fmt: str, marker: str) -> None:
    code, out, _ = _run(capsys, "--dsn", seeded_dsn, *WINDOW, "--format", fmt, "--top", "10", "--sort", "p95")
    assert code == 0
    assert marker.replace("total", "p95") in out


def test_custom_schema_from_the_environment(
    dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed.seed_table(dsn, schema="observability")
    monkeypatch.setenv("QUERYOPT_SCHEMA", "observability")
    code, out, _ = _run(capsys, "--dsn", dsn, *WINDOW, "--format", "json")
    assert code == 0
    assert json.loads(out)["table"] == "observability.slow_queries"


# -- errors: one line on stderr, exit status 2, never a traceback --------------------------------------


def _assert_one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("queryopt: error: ")
    assert message in err
    assert "Traceback" not in err


def test_table_missing(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    _assert_one_line_error(capsys, ["--dsn", dsn], "run `queryopt migrate` first")


def test_table_empty(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    migrate(dsn)
    _assert_one_line_error(capsys, ["--dsn", dsn], "is empty: nothing has been recorded yet")


def test_unknown_fingerprint(seeded_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    _assert_one_line_error(capsys, ["--dsn", seeded_dsn, "--fingerprint", "nope"], "no slow query has fingerprint")


def test_no_rows_in_the_window(seeded_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    _assert_one_line_error(capsys, ["--dsn", seeded_dsn, "--since", "1h"], "widen --since")


def test_unreachable_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _assert_one_line_error(capsys, ["--dsn", f"host={tmp_path} dbname=x"], "cannot connect to the database")


def test_no_dsn(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYOPT_DSN", raising=False)
    _assert_one_line_error(capsys, [], "pass --dsn or set QUERYOPT_DSN")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "1h", "--from", "2024-05-01"], "not both"),
        (["--from", "yesterday"], "is not an ISO 8601 time"),
        (["--top", "0"], "top must be a whole number"),
        (["--schema", "Bad-Name"], "not a lower-case identifier"),
    ],
)
def test_bad_arguments(seeded_dsn: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    _assert_one_line_error(capsys, ["--dsn", seeded_dsn, *argv], message)


def test_unwritable_output(seeded_dsn: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "r.json"
    _assert_one_line_error(capsys, ["--dsn", seeded_dsn, *WINDOW, "-o", str(target)], "cannot write the report")


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = capsys.readouterr().out
    for line in ("0  the report was produced", "1  --fail-on found", "2  error"):
        assert line in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "report" in capsys.readouterr().out


def test_console_script_exit_status_without_traceback(dsn: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "queryopt", "report", "--dsn", dsn], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("queryopt: error: the table queryopt.slow_queries does not exist")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("since", ["5", "1.5", " 30 "])
def test_a_since_without_a_unit_is_an_error_naming_the_units(
    seeded_dsn: str, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    _assert_one_line_error(capsys, ["--dsn", seeded_dsn, "--since", since], "needs a unit (ms, s, m, h or d)")


def test_prune_older_than_without_a_unit_is_an_error(seeded_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prune", "--dsn", seeded_dsn, "--older-than", "30"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "needs a unit (ms, s, m, h or d)" in err


def test_the_slow_query_table_is_read_where_the_recorder_writes_it(
    seeded_dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The application's database has no queryopt tables; the recorder writes to another one.
    application = psycopg.conninfo.make_conninfo(seeded_dsn, dbname="postgres")
    monkeypatch.setenv("QUERYOPT_DSN", application)
    monkeypatch.setenv("QUERYOPT_RECORDER_DSN", seeded_dsn)
    code, out, err = _run(capsys, *WINDOW, "--format", "markdown")
    assert code == 0, err
    assert "# Slow-query report" in out
