"""Renderers on a hand-built Report: hostile text in every recorded field stays text, odd values render."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from queryopt.errors import ReportError
from queryopt.report import (
    Count,
    QueryStats,
    Regression,
    Report,
    ReportFormat,
    ReportWindow,
    Severity,
    SortKey,
    Summary,
    TimelineBucket,
    render,
)
from queryopt.report.markdown import inline
from queryopt.report.terminal import print_report

START = datetime(2024, 5, 1, 12, tzinfo=UTC)
HOSTILE = "[bold red]x[/] <script>alert('x')</script> | `y` \"q\" *z* _w_ &amp; \\ #h"
FORMULA = '=HYPERLINK("http://example.invalid")'


def _regression(fingerprint: str, severity: Severity, mean_ratio: float | None) -> Regression:
    previous = None if severity is Severity.NEW else 10.0
    return Regression(fingerprint, severity, 50.0, 60.0, 0 if previous is None else 3, previous, 0.0, mean_ratio, None)


def _report() -> Report:
    crit = _regression("[red]fp[/red]", Severity.CRITICAL, math.inf)
    query = QueryStats(
        fingerprint=crit.fingerprint,
        kind=HOSTILE,
        normalized_sql=HOSTILE + "\n  -- second line",
        sample_sql="-- leading comment\n" + HOSTILE,
        calls=3,
        total_ms=150.0,
        mean_ms=50.0,
        min_ms=0.0,
        p50_ms=40.0,
        p95_ms=60.0,
        p99_ms=61.5,
        max_ms=62.0,
        share=1.0,
        timeouts=1,
        errors=2,
        first_seen=START,
        last_seen=START + timedelta(hours=1),
        hints=(Count(HOSTILE, 2), Count(None, 1)),
        cache_outcomes=(Count(FORMULA, 3),),
        regression=crit,
    )
    return Report(
        schema="queryopt",
        generated_at=START + timedelta(days=1),
        window=ReportWindow(START, START + timedelta(hours=24), START - timedelta(hours=24), 3600),
        sort=SortKey.TOTAL,
        top=20,
        fingerprint=None,
        summary=Summary(3, 1, 150.0, 50.0, 40.0, 60.0, 61.5, 62.0, 1, 2, START, START + timedelta(hours=1)),
        queries=(query,),
        regressions=(crit, _regression("0000000000000e11", Severity.NEW, None)),
        timeline=tuple(
            TimelineBucket(START + timedelta(hours=h), 1 if h < 3 else 0, 50.0 if h < 3 else 0.0, 62.0, 0, 0)
            for h in range(24)
        ),
    )


def test_terminal_shows_rich_markup_as_typed() -> None:
    out = io.StringIO()
    print_report(_report(), Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert "[red]fp[/red]" in text
    assert "[bold red]x[/]" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "inf" in text  # a previous mean of 0 cannot give a finite ratio


def test_terminal_clips_a_long_statement_to_three_lines() -> None:
    report = _report()
    long_query = replace(report.queries[0], normalized_sql="SELECT " + "x, " * 2000 + "1")
    out = io.StringIO()
    print_report(replace(report, queries=(long_query,)), Console(file=out, width=80, color_system=None))
    sql_lines = [line for line in out.getvalue().splitlines() if "x, x, x" in line]
    assert len(sql_lines) == 3
    assert sql_lines[-1].rstrip().endswith("…")


def test_markdown_inline_escaping() -> None:
    assert inline("a|b") == r"a\|b"
    assert inline("`x`") == r"\`x\`"
    assert inline("<script>") == "&lt;script&gt;"
    assert inline("line\nbreak") == "line break"
    assert inline('it\'s "q"') == "it&#x27;s &quot;q&quot;"


def test_markdown_has_no_live_html_or_markup_from_recorded_text() -> None:
    markdown = render(_report(), ReportFormat.MARKDOWN)
    assert "<script" not in markdown
    outside_pre = re.sub(r"<pre><code>.*?</code></pre>", "", markdown, flags=re.DOTALL)
    for raw, escaped in (("[bold red]", r"\[bold red\]"), ("`y`", r"\`y\`"), ("*z*", r"\*z\*"), ("| `y`", r"\| \`y\`")):
        assert raw not in outside_pre
        assert escaped in outside_pre
    assert r"\[red\]fp\[/red\]" in outside_pre  # an odd fingerprint is escaped, not put in a code span
    assert "<pre><code>-- leading comment\n" in markdown  # line breaks of a statement are kept


def test_html_escapes_every_recorded_field() -> None:
    page = render(_report(), ReportFormat.HTML)
    assert "<script" not in page
    assert "alert(&#x27;x&#x27;)" in page
    assert "&amp;amp;" in page  # an entity in the SQL is shown as typed, not decoded
    assert "&lt;script&gt;" in page
    assert page.count("<svg") == 2


def test_json_writes_an_infinite_ratio_as_null() -> None:
    doc = json.loads(render(_report(), "json"))
    assert doc["regressions"][0]["mean_ratio"] is None
    assert doc["regressions"][0]["severity"] == "critical"
    assert doc["queries"][0]["hints"] == [{"value": HOSTILE, "calls": 2}, {"value": None, "calls": 1}]


def test_csv_neutralises_formulas_but_keeps_text() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(), "csv"))))
    assert rows[0]["cache_outcomes"] == "'" + FORMULA + "=3"
    assert rows[0]["sample_sql"] == "'-- leading comment\n" + HOSTILE
    assert rows[0]["normalized_sql"] == HOSTILE + "\n  -- second line"
    assert rows[0]["mean_ratio"] == "inf"
    assert rows[0]["min_ms"] == "0.0"


def test_unknown_format() -> None:
    with pytest.raises(ReportError, match="unknown report format 'pdf'"):
        render(_report(), "pdf")
