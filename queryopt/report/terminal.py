"""The report as rich tables for a terminal, readable at 80 columns, severity in colour and in words.

Recorded text is always wrapped in :class:`rich.text.Text`, so a statement
containing ``[bold]`` or ``[link=…]`` is shown as typed, never as markup.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from queryopt.report import formatting as fmt
from queryopt.report.model import FingerprintReport, Regression, Report, Severity

__all__ = ["SEVERITY_STYLES", "print_report", "render_text"]

SEVERITY_STYLES = {
    Severity.CRITICAL: "bold red",
    Severity.WARNING: "yellow",
    Severity.NEW: "cyan",
    Severity.OK: "green",
}
_SPARK = " ▁▂▃▄▅▆▇█"
_SQL_LINES = 3
_REGRESSION_ROWS = 30


def _table(title: str) -> Table:
    # Two spaces between columns and no outer padding: the widest table fits in 80 columns.
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )


def _severity(severity: Severity, text: str | None = None) -> Text:
    return Text(text or severity.value, style=SEVERITY_STYLES[severity])


def _summary(report: Report) -> Table:
    s = report.summary
    grid = Table.grid(padding=(0, 2))
    for _ in range(3):
        grid.add_column(style="dim")
        grid.add_column(justify="right")
    pairs = fmt.summary_figures(s)
    for start in range(0, len(pairs), 3):
        cells: list[RenderableType] = []
        for label, value in pairs[start : start + 3]:
            cells += [Text(label), Text(value)]
        grid.add_row(*cells)
    return grid


def _timeline(report: Report) -> RenderableType:
    buckets = report.timeline
    peak = max((b.total_ms for b in buckets), default=0.0)
    levels = len(_SPARK) - 1
    spark = "".join(
        _SPARK[0 if b.total_ms <= 0 else max(1, round(b.total_ms / peak * levels))] if peak > 0 else " "
        for b in buckets
    )
    busiest = max(buckets, key=lambda b: b.total_ms) if buckets else None
    lines = [Text("Timeline", style="bold"), Text(spark, style="blue")]
    if busiest is not None:
        width = fmt.bucket_name(report.window.bucket_seconds)
        lines.append(
            Text(
                f"{fmt.moment(buckets[0].start)} to {fmt.moment(buckets[-1].start)} UTC, one bar per {width}; "
                f"busiest {fmt.moment(busiest.start)}: {fmt.count(busiest.calls)} calls, "
                f"{fmt.duration(busiest.total_ms)}",
                style="dim",
            )
        )
    return Group(*lines)


def _regressions(report: Report) -> RenderableType:
    if not report.regressions:
        return Text("No fingerprint is new or more than 2x slower than in the previous window.", style="green")
    table = _table("Regressions (vs the previous window)")
    table.add_column("status", no_wrap=True)
    table.add_column("fingerprint", no_wrap=True)
    for name in ("mean was", "mean", "ratio", "p95 was", "p95", "ratio"):
        table.add_column(name, justify="right", no_wrap=True)
    for r in report.regressions[:_REGRESSION_ROWS]:
        table.add_row(*_regression_cells(r))
    hidden = len(report.regressions) - _REGRESSION_ROWS
    if hidden > 0:
        table.caption = f"… and {hidden} more (all of them in --format json, markdown or html)"
        table.caption_justify = "left"
    return table


def _regression_cells(r: Regression) -> list[RenderableType]:
    return [
        _severity(r.severity),
        Text(r.fingerprint),
        Text(fmt.duration(r.previous_mean_ms)),
        Text(fmt.duration(r.mean_ms)),
        Text(fmt.ratio_text(r.mean_ratio)),
        Text(fmt.duration(r.previous_p95_ms)),
        Text(fmt.duration(r.p95_ms)),
        Text(fmt.ratio_text(r.p95_ratio)),
    ]


def _queries(report: Report) -> Table:
    table = _table(f"Top {len(report.queries)} queries by {report.sort.value}")
    table.add_column("#", justify="right")
    table.add_column("fingerprint", no_wrap=True)
    for name in ("calls", "total", "share", "mean", "p95"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("trend", no_wrap=True)
    for rank, q in enumerate(report.queries, start=1):
        table.add_row(
            Text(str(rank)),
            Text(q.fingerprint),
            Text(fmt.count(q.calls)),
            Text(fmt.duration(q.total_ms)),
            Text(fmt.share(q.share)),
            Text(fmt.duration(q.mean_ms)),
            Text(fmt.duration(q.p95_ms)),
            _severity(q.regression.severity),
        )
    return table


def _statement(rank: int, q: FingerprintReport) -> RenderableType:
    head = Text.assemble(
        (f"{rank}. {q.fingerprint}", "bold"), f" {q.kind} ", _severity(q.regression.severity, fmt.trend(q.regression))
    )
    numbers = Text(
        f"min {fmt.duration(q.min_ms)} · p50 {fmt.duration(q.p50_ms)} · p99 {fmt.duration(q.p99_ms)}"
        f" · max {fmt.duration(q.max_ms)} · {fmt.count(q.timeouts)} timeouts · {fmt.count(q.errors)} errors"
        + (f" · {fmt.count(q.rejections)} rejected by its concurrency limit" if q.rejections else "")
    )
    sql = Text(" ".join(q.normalized_sql.split()), style="dim", overflow="ellipsis")
    detail = Text(
        f"hints: {fmt.counts(q.hints, empty='none')}; cache: {fmt.counts(q.cache_outcomes, empty='not cached')}",
        style="dim",
    )
    return Group(head, _Clipped(numbers), _Clipped(sql), _Clipped(detail))


class _Clipped:
    """A Text wrapped to the width but cut to a few lines, so a huge statement cannot flood the terminal."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # 3 columns of indent and 1 for the ellipsis
        lines = list(self.text.wrap(console, max(options.max_width - 4, 10)))
        if len(lines) > _SQL_LINES:
            lines = [*lines[: _SQL_LINES - 1], lines[_SQL_LINES - 1] + Text("…")]
        for line in lines:
            yield Text("   ") + line


def print_report(report: Report, console: Console) -> None:
    """Print the report on ``console`` (its width decides the layout)."""
    w = report.window
    scope = f", fingerprint {report.fingerprint}" if report.fingerprint else ""
    console.print(Text("Slow-query report", style="bold"))
    console.print(
        Text(f"{fmt.moment(w.start)} → {fmt.moment(w.end)} UTC, compared with the window before", style="dim")
    )
    console.print(Text(f"table {report.schema}.slow_queries{scope}", style="dim"))
    console.print()
    console.print(_summary(report))
    console.print()
    console.print(_timeline(report))
    console.print()
    console.print(_regressions(report))
    for c in report.plan_changes:
        verdict = f"{c.severity} regression" if c.severity else "no regression"
        console.print(
            Text(
                f"plan change {fmt.moment(c.at, seconds=True)} {c.fingerprint}: {c.from_plan} → {c.to_plan}, "
                f"mean {fmt.duration(c.before_mean_ms)} → {fmt.duration(c.after_mean_ms)} ({verdict})"
            )
        )
    console.print()
    console.print(_queries(report))
    console.print()
    for rank, q in enumerate(report.queries, start=1):
        console.print(_statement(rank, q))
    console.print(Text("Percentiles: PostgreSQL percentile_cont (continuous, interpolated).", style="dim"))


def render_text(report: Report, *, width: int = 100) -> str:
    """The terminal view as plain text (no colour codes), e.g. for ``--output report.txt``."""
    out = io.StringIO()
    print_report(report, Console(file=out, width=width, color_system=None, force_terminal=False))
    return out.getvalue()
