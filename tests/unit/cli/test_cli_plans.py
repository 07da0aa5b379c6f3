"""``queryopt plans``, ``pin`` and ``unpin``: listed, documented, and clear without a database."""

from __future__ import annotations

import pytest

from queryopt.cli import main


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        (["plans"], ["--since", "--fingerprint", "--format", "regression", "exit status"]),
        (["pin"], ["FINGERPRINT", "--plan", "pg_hint_plan", "EXPLAIN", "exit status"]),
        (["unpin"], ["FINGERPRINT", "exit status"]),
    ],
)
def test_each_command_documents_itself(
    command: list[str], phrases: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for phrase in phrases:
        assert phrase in out, phrase


def test_the_commands_are_listed_in_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("plans", "pin", "unpin"):
        assert f"    {name} " in out, name


@pytest.mark.parametrize("command", [["plans"], ["pin", "0123456789abcdef"], ["unpin", "0123456789abcdef"]])
def test_without_a_database_the_error_says_how_to_give_one(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QUERYOPT_DSN", "QUERYOPT_RECORDER_DSN"):
        monkeypatch.delenv(name, raising=False)
    assert main(command) == 2
    assert "pass --dsn or set QUERYOPT_DSN" in capsys.readouterr().err
