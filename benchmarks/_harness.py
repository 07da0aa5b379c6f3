"""Shared measuring tools: interleaved rounds, medians with spread, CPU pinning, rich tables.

Benchmarks compare inside one run and report ratios, never absolute times
against a fixed number in a test. Cases are measured in interleaved rounds
(a, b, c, a, b, c, …) so drift on a noisy machine hits every case alike.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table


@dataclass
class Case:
    """One thing to time: ``call`` runs once per iteration (or ``loop(n)`` runs it ``n`` times, see :meth:`of`)."""

    name: str
    call: Callable[[], object]
    samples: list[float] = field(default_factory=list)
    """Seconds per call, one sample per round."""
    loop: Callable[[int], Any] | None = None
    """Runs the timed statement ``n`` times in one frame (:meth:`of`); ``None``: ``call()`` is timed."""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Half the inter-quartile range relative to the median (0.05 = ±5 %)."""
        if len(self.samples) < 4:
            return (max(self.samples) - min(self.samples)) / 2 / self.median if self.median else 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / 2 / self.median if self.median else 0.0

    @classmethod
    def of(cls, name: str, statement: str, namespace: Mapping[str, object], *, awaited: bool = False) -> Case:
        """A case timing ``statement`` as an application writes it, the way ``timeit`` does: compiled into
        the loop's own body, so no wrapper (a ``partial``, a lambda) is timed with it. ``namespace`` holds
        the names it uses; ``call`` runs it once (to check what it returns). With ``awaited``, ``statement``
        may ``await`` and both ``loop`` and ``call`` are coroutine functions."""
        prefix = "async " if awaited else ""
        code = (
            f"{prefix}def loop(n):\n    for _ in range(n):\n        {statement}\n\n"
            f"{prefix}def call():\n    return {statement}\n"
        )
        scope = dict(namespace)
        exec(compile(code, f"<benchmark {name}>", "exec"), scope)  # a benchmark's own literal text
        return cls(name, scope["call"], loop=scope["loop"])  # type: ignore[arg-type]


def measure(cases: Sequence[Case], *, rounds: int = 7, min_time: float = 0.2, warmup: int = 50) -> None:
    """Fill each case's samples: per round, as many calls as fit in ``min_time``, interleaved across cases."""
    numbers = {}
    for case in cases:
        for _ in range(warmup):
            case.call()
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < min_time / 4:
            case.call()
            count += 1
        elapsed = time.perf_counter() - started
        numbers[case.name] = max(1, int(count * min_time / max(elapsed, 1e-9)))
    for _ in range(rounds):
        for case in cases:
            number = numbers[case.name]
            call = case.call
            loop = case.loop
            started = time.perf_counter()
            if loop is not None:
                loop(number)
            else:
                for _ in range(number):
                    call()
            case.samples.append((time.perf_counter() - started) / number)


def pin(cpu: int, *pids: int) -> bool:
    """Pin this process and ``pids`` (e.g. the postmaster, whose new children inherit it) to one CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        for pid in (0, *pids):
            os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


def format_seconds(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def verdict(met: bool | None) -> str:
    if met is None:
        return ""
    return "[green]met[/green]" if met else "[red]not met[/red]"


def print_table(title: str, rows: Sequence[dict[str, object]], console: Console | None = None) -> None:
    """Print rows (dicts with the same keys) as a rich table; ``met`` values become coloured verdicts."""
    console = console or Console()
    if not rows:
        console.print(f"[bold]{title}[/bold]: no rows")
        return
    table = Table(title=title, title_justify="left")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column, justify="left" if column in {"case", "target", "met"} else "right")
    for row in rows:
        cells = (verdict(row.get(c)) if c == "met" else str(row.get(c, "")) for c in columns)  # type: ignore[arg-type]
        table.add_row(*cells)
    console.print(table)


@contextmanager
def scratch_database(dsn: str | None, name: str, *, server_settings: Mapping[str, str] | None = None) -> Iterator[str]:
    """A fresh database ``name`` on ``dsn``'s server (dropped afterwards), or on a throwaway server when ``dsn``
    is None (started with ``server_settings``)."""
    if dsn is None:
        from queryopt.embedded import EmbeddedPostgres

        with (
            EmbeddedPostgres(settings=dict(server_settings or {})) as server,
            scratch_database(server.conninfo(), name) as target,
        ):
            yield target
        return
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(dsn, dbname=name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(drop)
