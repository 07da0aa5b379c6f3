from __future__ import annotations

import pytest

from queryopt.cli import main


def test_explain_help_documents_hints_and_analyze(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--hint", "--param", "--analyze", "--dsn", "--mode", "--format", "--json"):
        assert option in out
    assert "never by default" in out


def test_explain_is_listed_in_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "explain" in capsys.readouterr().out


def test_explain_without_a_database_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUERYOPT_DSN", raising=False)
    assert main(["explain", "SELECT 1", "--hint", "t_idx"]) == 2
    assert "pass --dsn or set QUERYOPT_DSN" in capsys.readouterr().err
