"""``queryopt demo``: the guided tour on a throwaway PostgreSQL."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the guided demo on a throwaway PostgreSQL",
        description="Run the guided demo: caching, hints, timeouts and the slow-query report on sample data.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print("queryopt demo: the guided demo arrives with the demo issue; nothing to run yet.")
    return 0
