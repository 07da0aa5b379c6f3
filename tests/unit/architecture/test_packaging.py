"""A built wheel holds every package of the source tree (an editable install would hide a missing one)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import queryopt

ROOT = Path(queryopt.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(("queryopt", *init.parent.relative_to(ROOT).parts)).rstrip(".") for init in ROOT.rglob("__init__.py")
    }
    on_disk.add("queryopt.migrations")  # SQL files in migrations/, mapped by package-dir
    assert listed == on_disk
