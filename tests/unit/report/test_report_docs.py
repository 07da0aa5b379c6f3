"""docs/report.md describes what the code does: every JSON key, the exit codes, the format list."""

from __future__ import annotations

import json
import re
from pathlib import Path

from queryopt.cli.report import EXIT_ERROR, EXIT_FAIL_ON, EXIT_OK
from queryopt.report import ReportFormat, render
from queryopt.report.csv_table import COLUMNS
from tests.unit.report.report_sample import sample_report

DOCS = (Path(__file__).parents[3] / "docs" / "report.md").read_text(encoding="utf-8")


def _keys(value: object, prefix: str = "") -> set[str]:
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            found |= _keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= _keys(item)
    return found


def test_every_json_key_is_documented() -> None:
    document = json.loads(render(sample_report(), ReportFormat.JSON))
    documented = set(re.findall(r"`([a-z_0-9]+)(?:\[\])?`", DOCS))
    assert _keys(document) - documented == set()
    assert '"schema_version": 1' in DOCS


def test_exit_codes_and_formats_are_documented() -> None:
    for status in (EXIT_OK, EXIT_FAIL_ON, EXIT_ERROR):
        assert re.search(rf"^\| {status} \| ", DOCS, re.MULTILINE)
    for fmt in ReportFormat:
        assert f"- `{fmt.value}`" in DOCS
    assert len(COLUMNS) == len(set(COLUMNS))
