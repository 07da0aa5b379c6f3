"""``queryopt top``'s snapshot as JSON (``schema_version`` 1) and as rich tables that fit 80 columns.

Recorded and running SQL is wrapped in :class:`rich.text.Text`, so text containing
``[bold]`` is shown as typed, never as markup, and is cut to one line with an ellipsis.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from queryopt._version import __version__
from queryopt.report import formatting as fmt
from queryopt.report.live import LiveView, RecentQuery, RecentRegression, RunningStatement
from queryopt.report.terminal import SEVERITY_STYLES

__all__ = ["SCHEMA_VERSION", "live_document", "live_json", "live_renderable"]

SCHEMA_VERSION = 1


def _ratio(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def _recent(q: RecentQuery) -> dict[str, Any]:
    return {
        "fingerprint": q.fingerprint,
        "kind": q.kind,
        "normalized_sql": q.normalized_sql,
        "calls": q.calls,
        "total_ms": q.total_ms,
        "mean_ms": q.mean_ms,
        "p95_ms": q.p95_ms,
        "max_ms": q.max_ms,
        "timeouts": q.timeouts,
        "errors": q.errors,
        "last_seen": q.last_seen.isoformat(),
    }


def _running(r: RunningStatement) -> dict[str, Any]:
    return {
        "pid": r.pid,
        "database": r.database,
        "user": r.user,
        "application_name": r.application_name,
        "state": r.state,
        "wait": r.wait,
        "seconds": r.seconds,
        "fingerprint": r.fingerprint,
        "query": r.query,
    }


def _regression(r: RecentRegression) -> dict[str, Any]:
    return {
        "fingerprint": r.fingerprint,
        "severity": r.severity.value,
        "mean_ms": r.mean_ms,
        "p95_ms": r.p95_ms,
        "previous_mean_ms": r.previous_mean_ms,
        "previous_p95_ms": r.previous_p95_ms,
        "mean_ratio": _ratio(r.mean_ratio),
        "p95_ratio": _ratio(r.p95_ratio),
    }


def live_document(view: LiveView) -> dict[str, Any]:
    """The snapshot as JSON-ready values. Version 1 only ever gains keys."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"queryopt {__version__}",
        "generated_at": view.generated_at.isoformat(),
        "table": f"{view.schema}.slow_queries",
        "window": {
            "start": view.window.start.isoformat(),
            "end": view.window.end.isoformat(),
            "seconds": view.window.seconds,
        },
        "sort": view.sort.value,
        "slowest": [_recent(q) for q in view.slowest],
        "running": [_running(r) for r in view.running],
        "regressions": [_regression(r) for r in view.regressions],
    }


def live_json(view: LiveView) -> str:
    """The snapshot as indented JSON ending with a newline."""
    return json.dumps(live_document(view), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        expand=True,
    )


def _sql(text: str) -> Text:
    return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")


def _seconds(value: float) -> str:
    return fmt.duration(value * 1000.0)


def _window_name(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def live_renderable(view: LiveView, *, interval: float | None = None, problem: str | None = None) -> RenderableType:
    """The snapshot as a header and three tables; ``problem`` (a failed refresh) is shown under the header."""
    window = _window_name(view.window.seconds)
    header = Text.assemble(
        ("queryopt top", "bold"),
        f"  {view.schema}.slow_queries, last {window}",
        f"  {view.generated_at.strftime('%H:%M:%S')} UTC",
        (f"  every {interval:g}s, q quits" if interval is not None else "", "dim"),
        no_wrap=True,
        overflow="ellipsis",
    )
    parts: list[RenderableType] = [header]
    if problem is not None:
        parts.append(Text(problem, style="bold red", no_wrap=True, overflow="ellipsis"))
    slowest = _table(f"Slowest in the last {window} (by {view.sort.value})")
    slowest.add_column("fingerprint", no_wrap=True, width=16)
    slowest.add_column("calls", justify="right", no_wrap=True)
    slowest.add_column("p95", justify="right", no_wrap=True)
    slowest.add_column("mean", justify="right", no_wrap=True)
    slowest.add_column("query", no_wrap=True, overflow="ellipsis", ratio=1)
    for q in view.slowest:
        slowest.add_row(
            q.fingerprint, fmt.count(q.calls), fmt.duration(q.p95_ms), fmt.duration(q.mean_ms), _sql(q.normalized_sql)
        )
    if not view.slowest:
        slowest.add_row("", "", "", "", Text("no slow query recorded in this window", style="dim"))
    running = _table("Running now")
    running.add_column("pid", justify="right", no_wrap=True)
    running.add_column("for", justify="right", no_wrap=True)
    running.add_column("app", no_wrap=True, max_width=12, overflow="ellipsis")
    running.add_column("state", no_wrap=True, max_width=12, overflow="ellipsis")
    running.add_column("query", no_wrap=True, overflow="ellipsis", ratio=1)
    for r in view.running:
        state = Text(r.wait or r.state, style="yellow" if r.wait else "")
        running.add_row(str(r.pid), _seconds(r.seconds), r.application_name, state, _sql(r.query))
    if not view.running:
        running.add_row("", "", "", "", Text("nothing running", style="dim"))
    parts += [Text(""), slowest, Text(""), running]
    if view.regressions:
        regressions = _table(f"Regressions against the {window} before")
        regressions.expand = False
        regressions.add_column("severity", no_wrap=True)
        regressions.add_column("fingerprint", no_wrap=True, width=16)
        regressions.add_column("mean", justify="right", no_wrap=True)
        regressions.add_column("was", justify="right", no_wrap=True)
        regressions.add_column("p95", justify="right", no_wrap=True)
        regressions.add_column("was", justify="right", no_wrap=True)
        for g in view.regressions:
            regressions.add_row(
                Text(g.severity.value, style=SEVERITY_STYLES[g.severity]),
                g.fingerprint,
                fmt.duration(g.mean_ms),
                fmt.duration(g.previous_mean_ms),
                fmt.duration(g.p95_ms),
                fmt.duration(g.previous_p95_ms),
            )
        parts += [Text(""), regressions]
    return Group(*parts)
