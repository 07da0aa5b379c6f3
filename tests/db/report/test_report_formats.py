"""Every format shows the numbers the seeded rows imply, and recorded text stays text."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest
from rich.console import Console

from queryopt.report import Report, report
from queryopt.report import formatting as fmt
from queryopt.report.csv_table import COLUMNS, render_csv
from queryopt.report.html_page import render_html
from queryopt.report.json_doc import render_json
from queryopt.report.markdown import render_markdown
from queryopt.report.terminal import print_report
from tests.db.report import report_seed as seed
from tests.db.report.report_seed import NOW, XSS_FP


@pytest.fixture
def seeded(dsn: str) -> tuple[Report, list[seed.Seed]]:
    seeds = seed.seed_table(dsn)
    return report(dsn, since="24h", now=NOW), seeds


def _expected_rows(seeds: list[seed.Seed], result: Report) -> list[seed.Expected]:
    expected = seed.expected_queries(seeds)
    return [expected[q.fingerprint] for q in result.queries]


def _human_cells(e: seed.Expected) -> list[str]:
    """The numeric cells of a top-query row as the human formats write them, from the expected values."""
    return [
        fmt.count(e.calls),
        fmt.duration(e.total_ms),
        fmt.duration(e.mean_ms),
        fmt.duration(e.p50_ms),
        fmt.duration(e.p95_ms),
        fmt.duration(e.p99_ms),
        fmt.duration(e.max_ms),
        fmt.share(e.share),
        fmt.count(e.timeouts),
        fmt.count(e.errors),
    ]


# -- JSON ---------------------------------------------------------------------------------------------

V1_QUERY_KEYS = {
    "rank", "fingerprint", "kind", "normalized_sql", "sample_sql", "calls", "total_ms", "mean_ms", "min_ms", "p50_ms",
    "p95_ms", "p99_ms", "max_ms", "share", "timeouts", "errors", "rejections", "first_seen", "last_seen", "hints",
    "cache_outcomes", "regression",
}  # fmt: skip
V1_REGRESSION_KEYS = {
    "fingerprint", "severity", "mean_ms", "p95_ms", "previous_calls", "previous_mean_ms", "previous_p95_ms",
    "mean_ratio", "p95_ratio",
}  # fmt: skip


def test_json_is_schema_version_1_with_every_number(seeded: tuple[Report, list[seed.Seed]]) -> None:
    result, seeds = seeded
    doc = json.loads(render_json(result))
    assert doc["schema_version"] == 1
    assert set(doc) == {
        "schema_version", "generator", "generated_at", "table", "window", "options", "summary", "worst_severity",
        "queries", "regressions", "timeline", "plan_changes", "plan_trees",
    }  # fmt: skip
    assert doc["plan_changes"] == []  # the report reads no plans: the CLI adds them
    assert doc["plan_trees"] == []
    assert doc["window"] == {
        "start": "2024-05-01T12:00:00+00:00",
        "end": "2024-05-02T12:00:00+00:00",
        "previous_start": "2024-04-30T12:00:00+00:00",
        "seconds": 86400.0,
        "bucket_seconds": 3600,
    }
    summary = seed.expected_summary(seeds)
    assert doc["summary"] == {
        key: (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in summary.items()
    }
    assert doc["worst_severity"] == "critical"
    expected = seed.expected_queries(seeds)
    for rank, q in enumerate(doc["queries"], start=1):
        assert set(q) == V1_QUERY_KEYS
        assert set(q["regression"]) == V1_REGRESSION_KEYS
        e = expected[q["fingerprint"]]
        assert q["rank"] == rank
        for name in ("calls", "total_ms", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "share"):
            assert q[name] == getattr(e, name), (q["fingerprint"], name)
        assert (q["timeouts"], q["errors"], q["sample_sql"]) == (e.timeouts, e.errors, e.sample_sql)
        assert (q["first_seen"], q["last_seen"]) == (e.first_seen.isoformat(), e.last_seen.isoformat())
        assert {c["value"]: c["calls"] for c in q["hints"]} == e.hints
        assert {c["value"]: c["calls"] for c in q["cache_outcomes"]} == e.cache_outcomes
        assert q["regression"]["previous_mean_ms"] == e.previous_mean_ms
        assert q["regression"]["previous_p95_ms"] == e.previous_p95_ms
    assert [(r["fingerprint"], r["severity"]) for r in doc["regressions"]] == [
        (r.fingerprint, r.severity.value) for r in result.regressions
    ]
    new = next(r for r in doc["regressions"] if r["severity"] == "new")
    assert (new["mean_ratio"], new["previous_mean_ms"], new["previous_calls"]) == (None, None, 0)
    timeline = [(b["calls"], b["total_ms"], b["max_ms"], b["timeouts"], b["errors"]) for b in doc["timeline"]]
    assert timeline == [row[1:] for row in seed.expected_timeline(seeds)]


# -- CSV ----------------------------------------------------------------------------------------------


def test_csv_has_every_number_at_full_precision(seeded: tuple[Report, list[seed.Seed]]) -> None:
    result, seeds = seeded
    records = list(csv.DictReader(io.StringIO(render_csv(result))))
    assert list(records[0]) == list(COLUMNS)
    for record, e in zip(records, _expected_rows(seeds, result), strict=True):
        assert record["fingerprint"] == e.fingerprint
        assert int(record["calls"]) == e.calls
        for name in ("total_ms", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "share"):
            assert float(record[name]) == getattr(e, name), (e.fingerprint, name)
        assert (int(record["timeouts"]), int(record["errors"])) == (e.timeouts, e.errors)
        assert record["sample_sql"] == e.sample_sql
        assert record["previous_mean_ms"] == ("" if e.previous_mean_ms is None else repr(e.previous_mean_ms))
    xss = next(r for r in records if r["fingerprint"] == XSS_FP)
    assert xss["sample_sql"] == seed.HOSTILE_SQL  # quotes, pipes and backticks survive CSV quoting
    assert xss["severity"] == "new"


def test_csv_names_the_empty_hint_and_cache_values_instead_of_writing_formulas(
    seeded: tuple[Report, list[seed.Seed]],
) -> None:
    result, seeds = seeded
    records = list(csv.DictReader(io.StringIO(render_csv(result))))
    checked = 0
    for record, e in zip(records, _expected_rows(seeds, result), strict=True):
        for column, expected, empty in (("hints", e.hints, "none"), ("cache_outcomes", e.cache_outcomes, "not cached")):
            cells = dict(pair.rsplit("=", 1) for pair in record[column].split("; ")) if record[column] else {}
            assert not record[column].startswith(("'", "=")), record[column]
            assert cells == {empty if value is None else value: str(calls) for value, calls in expected.items()}
            checked += None in expected
    assert checked  # the seed has calls without hints


# -- Markdown -----------------------------------------------------------------------------------------

_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _markdown_table(markdown: str, header_start: str) -> list[list[str]]:
    lines = markdown.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in _CELL_SPLIT.split(line)[1:-1]])
    return table


def test_markdown_tables_hold_every_number(seeded: tuple[Report, list[seed.Seed]]) -> None:
    result, seeds = seeded
    markdown = render_markdown(result)
    top = _markdown_table(markdown, "| # | fingerprint")
    assert len({len(row) for row in top}) == 1  # no recorded text split a row
    for rank, (row, e) in enumerate(zip(top[2:], _expected_rows(seeds, result), strict=True), start=1):
        assert row[0] == str(rank)
        assert row[1] == f"`{e.fingerprint}`"
        assert row[2:12] == _human_cells(e)
    s = seed.expected_summary(seeds)
    summary = _markdown_table(markdown, "| calls | queries")[2]
    assert summary == [
        fmt.count(s["calls"]),  # type: ignore[arg-type]
        fmt.count(s["fingerprints"]),  # type: ignore[arg-type]
        *(fmt.duration(s[name]) for name in ("total_ms", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")),  # type: ignore[arg-type]
        fmt.count(s["timeouts"]),  # type: ignore[arg-type]
        fmt.count(s["errors"]),  # type: ignore[arg-type]
    ]
    regressions = _markdown_table(markdown, "| severity |")[2:]
    assert [row[0] for row in regressions] == ["critical", "warning", "new", "new"]
    timeline = _markdown_table(markdown, "| bucket start")[2:]
    assert [int(row[1]) for row in timeline] == [row[1] for row in seed.expected_timeline(seeds)]


def test_markdown_escapes_recorded_text(seeded: tuple[Report, list[seed.Seed]]) -> None:
    markdown = render_markdown(seeded[0])
    assert "<script" not in markdown
    assert "<b>" not in markdown
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in markdown
    assert "&#x27;it&#x27;&#x27;s&#x27;" in markdown
    # the hint "/*+ Rows(a b #10) | x */" sits in a list item: its pipe, star and hash cannot act as Markdown
    assert r"/\*+ Rows(a b \#10) \| x \*/" in markdown
    outside_pre = re.sub(r"<pre><code>.*?</code></pre>", "", markdown, flags=re.DOTALL)
    assert "`tick`" not in outside_pre
    assert "`tick`" in markdown  # inside <pre><code>, where a backtick is plain text


# -- HTML ---------------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    """Collects table rows as lists of (text, title) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str | None]]] = []
        self._cell: list[str] | None = None
        self._title: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._title = [], dict(attrs).get("title")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._title))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_tables_hold_every_number_and_the_exact_value_on_hover(seeded: tuple[Report, list[seed.Seed]]) -> None:
    result, seeds = seeded
    parser = _Tables()
    parser.feed(render_html(result))
    by_fp = {row[1][0]: row for row in parser.rows if len(row) == 14 and row[0][0].isdigit()}
    for e in _expected_rows(seeds, result):
        row = by_fp[e.fingerprint]
        assert [text for text, _ in row[2:12]] == _human_cells(e)
        titles = [title for _, title in row[3:9]]
        exact = (e.total_ms, e.mean_ms, e.p50_ms, e.p95_ms, e.p99_ms, e.max_ms)
        assert titles == [f"{value!r} ms" for value in exact]


def test_html_escapes_recorded_text_and_loads_nothing(seeded: tuple[Report, list[seed.Seed]]) -> None:
    page = render_html(seeded[0])
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&#x27;it&#x27;&#x27;s&#x27;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page
    assert "url(" not in page
    assert "default-src 'none'" in page  # the CSP that forbids scripts and loads
    assert page.count('<svg class="chart timeline"') == 1
    assert page.count('<svg class="chart distribution"') == len(seeded[0].queries)


# -- terminal -----------------------------------------------------------------------------------------


def test_terminal_at_80_columns_shows_every_top_number(seeded: tuple[Report, list[seed.Seed]]) -> None:
    result, seeds = seeded
    out = io.StringIO()
    print_report(result, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text.split("Top ")[0] + text.split("Top ")[1].split("\n\n")[0]  # no number was cut short
    for rank, e in enumerate(_expected_rows(seeds, result), start=1):
        row = next(line for line in text.splitlines() if line.startswith(f"{rank:<2} {e.fingerprint}"))
        cells = row.split()
        assert cells[2:7] == [
            fmt.count(e.calls),
            fmt.duration(e.total_ms),
            fmt.share(e.share),
            fmt.duration(e.mean_ms),
            fmt.duration(e.p95_ms),
        ]
        detail = f"min {fmt.duration(e.min_ms)} · p50 {fmt.duration(e.p50_ms)} · p99 {fmt.duration(e.p99_ms)}"
        assert detail in text
    s = seed.expected_summary(seeds)
    for label, value in (("slow calls", fmt.count(19)), ("p95", fmt.duration(s["p95_ms"]))):  # type: ignore[arg-type]
        assert re.search(rf"{label}\s+{re.escape(value)}", text)
    assert re.search(r"critical\s+00000000000c0de5", text)


def test_terminal_colours_severity(seeded: tuple[Report, list[seed.Seed]]) -> None:
    out = io.StringIO()
    print_report(seeded[0], Console(file=out, width=80, force_terminal=True, color_system="standard"))
    text = out.getvalue()
    assert "\x1b[1;31mcritical" in text  # bold red
    assert "\x1b[33mwarning" in text  # yellow
