"""``queryopt top``: a live terminal view of slow and running queries, refreshed every few seconds.

The data comes from :func:`queryopt.report.live.live_view` (plain data); this
module only draws it with rich and reads the keyboard. On a terminal, stdin is
put in cbreak mode (no echo, no line buffering) and polled with ``select``
between refreshes, so ``q`` quits at once; the terminal is restored on exit.
Without a terminal, or with ``--once`` or ``--format json``, one snapshot is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, TextIO

from queryopt.cli.database import add_database_options, database_from
from queryopt.config import parse_duration
from queryopt.errors import ConfigurationError, QueryoptError

if TYPE_CHECKING:  # loaded when the command runs, so that `queryopt --help` stays light
    from rich.console import Console

    from queryopt.report.live import LiveView

# The report's sort keys, written out so that `queryopt --help` loads neither the report nor rich
# (tests/unit/cli/test_cli_startup.py checks they match SortKey).
SORT_KEYS: Final = ("total", "mean", "p95", "calls", "max")

_MIN_INTERVAL = 0.2
_QUIT_KEYS = frozenset("qQ")

_EPILOG = """\
keys: q quits (Ctrl-C too).

The slowest list and the regressions come from queryopt's slow-query table (run `queryopt migrate`
once); "running now" is pg_stat_activity, every database of the server, with constants in the text
shown as %s. Alerts raised inside an application process are not visible here: see its logs or
its telemetry (docs/telemetry.md).

exit status: 0 after q, Ctrl-C or --once; 2 on an error (one line on stderr).
"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "top",
        help="live view: slowest recent queries, statements running now, regressions",
        description="A live terminal view, refreshed every --interval: the fingerprints slowest in the last "
        "--since minutes from queryopt's slow-query table, the statements running now from pg_stat_activity "
        "(with how long), and regressions against the window before. Fits 80 columns.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_database_options(parser)
    parser.add_argument("--interval", default="2s", metavar="DURATION", help="time between refreshes (default: 2s)")
    parser.add_argument("--since", default="5m", metavar="DURATION", help="window of the slowest list (default: 5m)")
    parser.add_argument("--top", type=int, default=10, help="fingerprints listed (default: 10)")
    parser.add_argument("--sort", choices=SORT_KEYS, default="p95", help="order of the slowest list")
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    parser.add_argument(
        "--format", choices=["table", "json"], default="table", help="json: one snapshot, schema_version 1"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from queryopt.report.live import live_view
    from queryopt.report.live_render import live_json, live_renderable

    interval = parse_duration(args.interval, name="--interval")
    if interval < _MIN_INTERVAL:
        raise ConfigurationError(f"--interval must be at least {_MIN_INTERVAL:g}s, got {args.interval!r}")
    minutes = parse_duration(args.since, name="--since") / 60.0
    dsn, schema = database_from(args)

    def snapshot() -> LiveView:
        return live_view(dsn, schema=schema, minutes=minutes, top=args.top, sort=args.sort)

    view = snapshot()  # a first failure (unreachable, not migrated) is one line and exit 2
    if args.format == "json":
        sys.stdout.write(live_json(view))
        return 0
    console = Console()
    if args.once or not (sys.stdin.isatty() and console.is_terminal):
        console.print(live_renderable(view))
        return 0
    _watch(console, view, snapshot, interval)
    return 0


def _watch(console: Console, view: LiveView, snapshot: Any, interval: float) -> None:
    from rich.live import Live

    from queryopt.report.live_render import live_renderable

    problem: str | None = None
    with (
        contextlib.suppress(KeyboardInterrupt),
        _cbreak(sys.stdin),
        Live(live_renderable(view, interval=interval), console=console, screen=True, auto_refresh=False) as live,
    ):
        while True:
            if _quit_pressed(sys.stdin, interval):
                return
            try:
                view, problem = snapshot(), None
            except QueryoptError as exc:  # keep the last view on screen and say why it is stale
                problem = f"refresh failed, retrying: {' '.join(str(exc).split())}"
            live.update(live_renderable(view, interval=interval, problem=problem), refresh=True)


def _quit_pressed(stream: TextIO, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a key; ``True`` when it is q."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([stream], [], [], left)
        if not readable:
            return False
        # os.read, not stream.read: keys left in Python's buffer would be invisible to the next select.
        keys = os.read(stream.fileno(), 64).decode(errors="replace")
        if keys == "" or not _QUIT_KEYS.isdisjoint(keys):  # "" is end of input: nobody is left to press q
            return True
    return False


@contextlib.contextmanager
def _cbreak(stream: TextIO) -> Iterator[None]:
    """Keys arrive one at a time without echo; the terminal's settings come back on exit, whatever happens."""
    try:
        import termios
        import tty
    except ImportError:  # not a POSIX terminal: keys arrive after Enter
        yield
        return
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
