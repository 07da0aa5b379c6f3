"""The report as GitHub-flavoured Markdown, e.g. for a CI job summary or a pull-request comment.

Recorded text (SQL, hint blocks, cache outcomes) is never trusted: inline it
is HTML-escaped and its Markdown punctuation backslash-escaped, so a ``|``
cannot split a table cell, a backtick cannot open code and ``<script>`` stays
text; statements go in ``<pre><code>`` blocks with HTML escaping, which keeps
their line breaks.
"""

from __future__ import annotations

import html
import re

from queryopt.report import formatting as fmt
from queryopt.report.model import Regression, Report

__all__ = ["code", "inline", "render_markdown"]

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#!])")
_PLAIN_NAME = re.compile(r"[0-9A-Za-z_.-]+")


def inline(text: str) -> str:
    """Recorded text made safe for a table cell or a paragraph: one line, nothing interpreted.

    >>> inline("a | b `c` <script>")
    'a \\\\| b \\\\`c\\\\` &lt;script&gt;'
    """
    one_line = " ".join(text.split())
    return html.escape(_MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line), quote=True)


def code(name: str) -> str:
    """A fingerprint or kind as inline code when it is a plain name; otherwise escaped text (a ``|`` in a
    code span would still split a table cell).

    >>> code("00000000000c0de5"), code("a|b")
    ('`00000000000c0de5`', 'a\\\\|b')
    """
    return f"`{name}`" if _PLAIN_NAME.fullmatch(name) else inline(name)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    return [_row(header), _row(align), *(_row(r) for r in rows)]


def _regression_row(r: Regression) -> list[str]:
    return [
        r.severity.value,
        code(r.fingerprint),
        fmt.duration(r.previous_mean_ms),
        fmt.duration(r.mean_ms),
        fmt.ratio_text(r.mean_ratio),
        fmt.duration(r.previous_p95_ms),
        fmt.duration(r.p95_ms),
        fmt.ratio_text(r.p95_ratio),
    ]


def render_markdown(report: Report) -> str:
    """The whole report as Markdown text ending with a newline."""
    w, s = report.window, report.summary
    lines = [
        "# Slow-query report",
        "",
        f"Window {fmt.moment(w.start, seconds=True)} to {fmt.moment(w.end, seconds=True)} UTC, "
        f"compared with the window before it (from {fmt.moment(w.previous_start, seconds=True)}). "
        f"Table `{report.schema}.slow_queries`"
        + (f", fingerprint {code(report.fingerprint)} only" if report.fingerprint else "")
        + ". Percentiles are PostgreSQL's continuous `percentile_cont`.",
        "",
        "## Summary",
        "",
        *_table(
            ["calls", "queries", "total", "mean", "p50", "p95", "p99", "max", "timeouts", "errors"],
            [
                [
                    fmt.count(s.calls),
                    fmt.count(s.fingerprints),
                    fmt.duration(s.total_ms),
                    fmt.duration(s.mean_ms),
                    fmt.duration(s.p50_ms),
                    fmt.duration(s.p95_ms),
                    fmt.duration(s.p99_ms),
                    fmt.duration(s.max_ms),
                    fmt.count(s.timeouts),
                    fmt.count(s.errors),
                ]
            ],
            numeric_from=0,
        ),
        "",
        "## Regressions",
        "",
    ]
    if report.regressions:
        lines += _table(
            ["severity", "fingerprint", "mean before", "mean now", "mean ratio", "p95 before", "p95 now", "p95 ratio"],
            [_regression_row(r) for r in report.regressions],
            numeric_from=2,
        )
    else:
        lines.append("No fingerprint is new or more than 2x slower than in the previous window.")
    if report.plan_changes:
        lines += ["", "### Plan changes", ""]
        lines += _table(
            ["at (UTC)", "fingerprint", "from plan", "to plan", "mean before", "mean after", "regression"],
            [
                [
                    fmt.moment(c.at, seconds=True),
                    f"`{c.fingerprint}`",
                    f"`{c.from_plan}`",
                    f"`{c.to_plan}`",
                    fmt.duration(c.before_mean_ms),
                    fmt.duration(c.after_mean_ms),
                    c.severity or "no",
                ]
                for c in report.plan_changes
            ],
            numeric_from=4,
        )
    lines += ["", f"## Top {len(report.queries)} queries by {report.sort.value}", ""]
    lines += _table(
        [
            "#",
            "fingerprint",
            "calls",
            "total",
            "mean",
            "p50",
            "p95",
            "p99",
            "max",
            "share",
            "timeouts",
            "errors",
            "rejected",
            "trend",
        ],
        [
            [
                str(rank),
                code(q.fingerprint),
                fmt.count(q.calls),
                fmt.duration(q.total_ms),
                fmt.duration(q.mean_ms),
                fmt.duration(q.p50_ms),
                fmt.duration(q.p95_ms),
                fmt.duration(q.p99_ms),
                fmt.duration(q.max_ms),
                fmt.share(q.share),
                fmt.count(q.timeouts),
                fmt.count(q.errors),
                fmt.count(q.rejections),
                fmt.trend(q.regression),
            ]
            for rank, q in enumerate(report.queries, start=1)
        ],
        numeric_from=2,
    )
    for rank, q in enumerate(report.queries, start=1):
        lines += [
            "",
            f"### {rank}. {code(q.fingerprint)} ({inline(q.kind)})",
            "",
            f"- seen {fmt.moment(q.first_seen, seconds=True)} to {fmt.moment(q.last_seen, seconds=True)} UTC; "
            f"min {fmt.duration(q.min_ms)}",
            f"- hints: {inline(fmt.counts(q.hints, empty='none'))}",
            f"- cache: {inline(fmt.counts(q.cache_outcomes, empty='not cached'))}",
            "",
            "Normalized:",
            "",
            f"<pre><code>{html.escape(q.normalized_sql, quote=True)}</code></pre>",
            "",
            "Slowest call:",
            "",
            f"<pre><code>{html.escape(q.sample_sql, quote=True)}</code></pre>",
        ]
    lines += ["", "## Timeline", ""]
    lines += _table(
        ["bucket start (UTC)", "calls", "total", "max", "timeouts", "errors"],
        [
            [
                fmt.moment(b.start),
                fmt.count(b.calls),
                fmt.duration(b.total_ms),
                fmt.duration(b.max_ms if b.calls else None),
                fmt.count(b.timeouts),
                fmt.count(b.errors),
            ]
            for b in report.timeline
        ],
    )
    return "\n".join(lines) + "\n"
