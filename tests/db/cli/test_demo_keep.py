"""``queryopt demo --keep`` prints a connect command that works when pasted, and where the slow table is."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from queryopt.cli.demo_steps import SCHEMA


def _psql() -> str:
    found = shutil.which("psql")
    if found is None:
        pytest.skip("psql is not installed")
    return found


def test_the_printed_connect_command_works_when_pasted(dsn: str, tmp_path: Path) -> None:
    psql = _psql()
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    demo = subprocess.run(
        [sys.executable, "-m", "queryopt", "demo", "--dsn", dsn, "--keep", "--scale", "0.01"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    commands = [line.strip() for line in lines if line.strip().startswith("psql ")]
    assert len(commands) == 1, demo.stdout[-2000:]
    words = shlex.split(commands[0])  # one shell word per argument: nothing nested, nothing cut
    assert words[0] == "psql"
    assert f"{SCHEMA}.slow_queries" in demo.stdout
    query = f"SELECT count(*) > 0 FROM customers, (SELECT 1 FROM {SCHEMA}.slow_queries LIMIT 1) AS recorded"
    pasted = subprocess.run(
        [psql, *words[1:], "-X", "-At", "-c", query], capture_output=True, text=True, timeout=30, check=False
    )
    assert pasted.returncode == 0, pasted.stderr
    assert pasted.stdout.strip() == "t"
