"""docs/advise.md describes what the code does: every JSON key, the exit codes, the formats."""

from __future__ import annotations

import json
import re
from pathlib import Path

from queryopt.advisor.render import AdviceFormat, render
from queryopt.cli.advise import EXIT_ADVICE, EXIT_OK
from tests.unit.advisor.sample import sample_advice

DOCS = (Path(__file__).parents[3] / "docs" / "advise.md").read_text(encoding="utf-8")
README = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")


def _keys(value: object) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            found |= _keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= _keys(item)
    return found


def test_every_json_key_is_documented() -> None:
    document = json.loads(render(sample_advice(verified=True), AdviceFormat.JSON))
    documented = set(re.findall(r"`([a-z_0-9]+)(?:\[\])?`", DOCS))
    assert _keys(document) - documented == set()
    assert '"schema_version": 1' in DOCS


def test_exit_codes_formats_and_the_package_are_documented() -> None:
    for status in (EXIT_OK, EXIT_ADVICE, 2):
        assert re.search(rf"^\| {status} \| ", DOCS, re.MULTILINE)
    for fmt in AdviceFormat:
        assert f"- `{fmt.value}`" in DOCS
    assert "postgresql-15-hypopg" in DOCS
    assert "queryopt advise" in README
    assert "docs/advise.md" in README
