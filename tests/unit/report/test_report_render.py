"""Renderers on a hand-built Report: hostile text in every recorded field stays text, odd values render."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace

import pytest
from rich.console import Console

from queryopt.errors import ReportError
from queryopt.report import ReportFormat, render
from queryopt.report.markdown import inline
from queryopt.report.terminal import print_report
from tests.unit.report.report_sample import FORMULA, HOSTILE, sample_report


def test_terminal_shows_rich_markup_as_typed() -> None:
    out = io.StringIO()
    print_report(sample_report(), Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert "[red]fp[/red]" in text
    assert "[bold red]x[/]" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "inf" in text  # a previous mean of 0 cannot give a finite ratio


def test_terminal_clips_a_long_statement_to_three_lines() -> None:
    report = sample_report()
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
    markdown = render(sample_report(), ReportFormat.MARKDOWN)
    assert "<script" not in markdown
    outside_pre = re.sub(r"<pre><code>.*?</code></pre>", "", markdown, flags=re.DOTALL)
    for raw, escaped in (("[bold red]", r"\[bold red\]"), ("`y`", r"\`y\`"), ("*z*", r"\*z\*"), ("| `y`", r"\| \`y\`")):
        assert raw not in outside_pre
        assert escaped in outside_pre
    assert r"\[red\]fp\[/red\]" in outside_pre  # an odd fingerprint is escaped, not put in a code span
    assert "<pre><code>-- leading comment\n" in markdown  # line breaks of a statement are kept


def test_html_escapes_every_recorded_field() -> None:
    page = render(sample_report(), ReportFormat.HTML)
    assert "<script" not in page
    assert "alert(&#x27;x&#x27;)" in page
    assert "&amp;amp;" in page  # an entity in the SQL is shown as typed, not decoded
    assert "&lt;script&gt;" in page
    assert page.count("<svg") == 2


def test_json_writes_an_infinite_ratio_as_null() -> None:
    doc = json.loads(render(sample_report(), "json"))
    assert doc["regressions"][0]["mean_ratio"] is None
    assert doc["regressions"][0]["severity"] == "critical"
    assert doc["queries"][0]["hints"] == [{"value": HOSTILE, "calls": 2}, {"value": None, "calls": 1}]


def test_csv_neutralises_formulas_but_keeps_text() -> None:
    rows = list(csv.DictReader(io.StringIO(render(sample_report(), "csv"))))
    assert rows[0]["cache_outcomes"] == "'" + FORMULA + "=3"
    assert rows[0]["sample_sql"] == "'-- leading comment\n" + HOSTILE
    assert rows[0]["normalized_sql"] == HOSTILE + "\n  -- second line"
    assert rows[0]["mean_ratio"] == "inf"
    assert rows[0]["min_ms"] == "0.0"


def test_unknown_format() -> None:
    with pytest.raises(ReportError, match="unknown report format 'pdf'"):
        render(sample_report(), "pdf")
