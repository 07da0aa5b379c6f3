"""``queryopt demo``: the guided tour on a throwaway PostgreSQL (or a database you name)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from queryopt.errors import ConfigurationError


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scale must be a number, got {text!r}") from None
    if not 0.001 <= value <= 20:
        raise argparse.ArgumentTypeError(f"--scale must be between 0.001 and 20, got {value:g}")
    return value


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the guided demo on a throwaway PostgreSQL",
        description=(
            "Run the guided demo: a small shop with a few hundred thousand rows, the result cache, an index hint, "
            "a timeout, slow-query recording, the report and index advice from the recorded queries (HypoPG). "
            "Without --dsn it starts a throwaway PostgreSQL; with --dsn it works in its own schema (queryopt_demo) "
            "and removes it afterwards, with the HypoPG extension if the demo created it."
        ),
    )
    parser.add_argument("--dsn", help="use this database instead of a throwaway server")
    parser.add_argument("--scale", type=_scale, default=1.0, help="multiply the number of rows (default 1.0)")
    parser.add_argument("--keep", action="store_true", help="leave the data (and the server) running afterwards")
    parser.add_argument(
        "--html", type=Path, default=Path("queryopt-report.html"), help="where to write the HTML report"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from queryopt.cli.demo_steps import DemoOptions, run_demo

    if args.html.exists() and args.html.is_dir():
        raise ConfigurationError(f"--html: {args.html} is a folder; give a file name", setting="--html")
    return run_demo(DemoOptions(dsn=args.dsn, scale=args.scale, keep=args.keep, html=args.html))
