"""docs/api.md, the API reference, covers every public name."""

from __future__ import annotations

import re
from pathlib import Path

import queryopt

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_public_name_has_an_entry_in_the_api_reference() -> None:
    page = API_PAGE.read_text()
    documented = set(re.findall(r"^### `(?:queryopt\.)?(\w+)", page, flags=re.MULTILINE))
    assert sorted(set(queryopt.__all__) - documented) == []
    assert sorted(documented - set(queryopt.__all__)) == []  # nothing documented that is not public


def test_the_readme_links_the_api_reference() -> None:
    assert "(docs/api.md)" in (API_PAGE.parents[1] / "README.md").read_text()
