"""docs/api.md, the API reference, is exactly what docs/build_api.py writes from the code."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import queryopt

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_api_reference_is_current() -> None:
    build = runpy.run_path(str(DOCS / "build_api.py"))
    assert build["main"](["--check"]) == 0, "docs/api.md is stale: run python docs/build_api.py"


def test_every_public_name_has_an_entry_in_the_api_reference() -> None:
    page = (DOCS / "api.md").read_text()
    for name in queryopt.__all__:
        assert f"### `{name}" in page or f"### `queryopt.{name}`" in page, name


@pytest.mark.parametrize("hook", ["finished", "failed", "served", "rejected"])
def test_internal_steps_of_the_optimizers_are_not_on_the_page(hook: str) -> None:
    assert f"- `{hook}(" not in (DOCS / "api.md").read_text()


def test_the_readme_links_the_api_reference() -> None:
    assert "(docs/api.md)" in (DOCS.parent / "README.md").read_text()
