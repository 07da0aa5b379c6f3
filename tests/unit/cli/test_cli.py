from __future__ import annotations

import subprocess
import sys

import pytest

from queryopt import __version__
from queryopt.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"queryopt {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "demo" in out


def test_console_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "queryopt", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["demo"],
        ["explain", "SELECT 1"],
        ["report"],
        ["migrate"],
        ["prune", "--older-than", "30d"],
        ["plans"],
        ["pin", "0123456789abcdef"],
        ["unpin", "0123456789abcdef"],
        ["top", "--once"],
        ["advise"],
    ],
)
def test_an_unreachable_database_is_one_line_and_exit_2(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--dsn", "host=/nonexistent dbname=x connect_timeout=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("queryopt: error: ")
    assert "/nonexistent" in err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize("command", [["plans"], ["pin", "0123456789abcdef"], ["explain", "SELECT 1"], ["report"]])
def test_every_command_says_it_could_not_connect(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--dsn", "host=/nonexistent dbname=x connect_timeout=2"]) == 2
    assert "connect" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["plans"], ["report"], ["migrate"]])
def test_a_url_of_another_database_gets_the_forms_libpq_accepts(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--dsn", "mysql://u@h/db"]) == 2
    assert "postgresql://user@host/dbname" in capsys.readouterr().err
