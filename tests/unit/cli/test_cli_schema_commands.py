from __future__ import annotations

import pytest

from queryopt.cli import main


@pytest.mark.parametrize(
    ("command", "options"),
    [("migrate", ["--dsn", "--schema", "--check"]), ("prune", ["--older-than", "--batch-size", "--dsn", "--schema"])],
)
def test_commands_are_listed_and_document_their_options(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert command in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    for option in options:
        assert option in help_text
