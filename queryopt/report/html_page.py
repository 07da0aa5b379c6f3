"""The report as one self-contained HTML file: inline CSS and SVG, no script, no network.

A Content-Security-Policy meta tag forbids scripts and every external load, so
even a recorded statement that slipped past escaping could not run or fetch
anything. Every recorded text goes through :func:`html.escape` (quotes too).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from queryopt._version import __version__
from queryopt.report import formatting as fmt
from queryopt.report.model import FingerprintReport, PlanChangeNote, Regression, Report, Severity
from queryopt.report.svg import distribution_chart, timeline_chart

__all__ = ["SEVERITY_COLOURS", "render_html"]

SEVERITY_COLOURS = {
    Severity.CRITICAL: "#b3261e",
    Severity.WARNING: "#b86e00",
    Severity.NEW: "#1f5fb4",
    Severity.OK: "#2a7a3b",
}

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1c2430;
       background: #f6f7f9; margin: 0; padding: 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #5f6b7a; margin: 0; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 16px; }
.tile { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: 8px 14px; min-width: 92px; }
.tile .label { color: #5f6b7a; font-size: 12px; } .tile .number { font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; background: #fff; border: 1px solid #dde2e8; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e7ebf0; text-align: right; white-space: nowrap; }
th { background: #eef1f5; font-weight: 600; } td.text, th.text { text-align: left; }
code, pre { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: 8px 10px; white-space: pre-wrap;
      word-break: break-word; max-width: 1100px; }
.query { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: 4px 16px 12px; margin: 14px 0; }
.severity { font-weight: 600; }
.chart { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; }
.chart text { font: 11px system-ui, sans-serif; fill: #5f6b7a; } .chart text.value { fill: #1c2430; }
footer { color: #5f6b7a; margin-top: 32px; font-size: 12px; }
"""


def _severity(severity: Severity, text: str | None = None) -> str:
    colour = SEVERITY_COLOURS[severity]
    return f'<span class="severity sev-{severity.value}" style="color:{colour}">{escape(text or severity.value)}</span>'


def _ms(value: float | None) -> str:
    """A duration cell: the readable value, the exact milliseconds on hover."""
    if value is None:
        return "<td>-</td>"
    return f'<td title="{value!r} ms">{escape(fmt.duration(value))}</td>'


def _tile(label: str, value: str) -> str:
    return f'<div class="tile"><div class="label">{escape(label)}</div><div class="number">{escape(value)}</div></div>'


def _regression_row(r: Regression) -> str:
    return (
        f'<tr><td class="text">{_severity(r.severity)}</td><td class="text"><code>{escape(r.fingerprint)}</code></td>'
        f"{_ms(r.previous_mean_ms)}{_ms(r.mean_ms)}<td>{escape(fmt.ratio_text(r.mean_ratio))}</td>"
        f"{_ms(r.previous_p95_ms)}{_ms(r.p95_ms)}<td>{escape(fmt.ratio_text(r.p95_ratio))}</td></tr>"
    )


def _query_row(rank: int, q: FingerprintReport) -> str:
    return (
        f'<tr><td>{rank}</td><td class="text"><a href="#q{rank}"><code>{escape(q.fingerprint)}</code></a></td>'
        f"<td>{escape(fmt.count(q.calls))}</td>{_ms(q.total_ms)}{_ms(q.mean_ms)}{_ms(q.p50_ms)}{_ms(q.p95_ms)}"
        f"{_ms(q.p99_ms)}{_ms(q.max_ms)}<td>{escape(fmt.share(q.share))}</td>"
        f"<td>{escape(fmt.count(q.timeouts))}</td><td>{escape(fmt.count(q.errors))}</td>"
        f"<td>{escape(fmt.count(q.rejections))}</td>"
        f'<td class="text">{_severity(q.regression.severity, fmt.trend(q.regression))}</td></tr>'
    )


def _plan_change_row(c: PlanChangeNote) -> str:
    verdict = _severity(Severity(c.severity)) if c.severity else "no"
    return (
        f'<tr><td class="text">{escape(fmt.moment(c.at, seconds=True))}</td>'
        f'<td class="text"><code>{escape(c.fingerprint)}</code></td><td class="text"><code>{escape(c.from_plan)}</code>'
        f" → <code>{escape(c.to_plan)}</code></td>{_ms(c.before_mean_ms)}{_ms(c.after_mean_ms)}"
        f'<td class="text">{verdict}</td></tr>'
    )


def _plan_changes(report: Report) -> str:
    if not report.plan_changes:
        return ""
    return (
        "<h3>Plan changes</h3><table><tr><th class=text>at (UTC)</th><th class=text>fingerprint</th>"
        "<th class=text>plan</th><th>mean before</th><th>mean after</th><th class=text>regression</th></tr>"
        + "".join(_plan_change_row(c) for c in report.plan_changes)
        + "</table>"
    )


def _plan_tree(report: Report, q: FingerprintReport) -> str:
    tree = report.plan_tree(q.fingerprint)
    if tree is None:
        return ""
    return f"<p>Plan <code>{escape(tree.plan_hash)}</code>:</p><pre>{escape(chr(10).join(tree.lines))}</pre>"


def _query_section(rank: int, q: FingerprintReport, plan: str = "") -> str:
    return (
        f'<section class="query" id="q{rank}"><h3>{rank}. <code>{escape(q.fingerprint)}</code> '
        f"({escape(q.kind)}) {_severity(q.regression.severity, fmt.trend(q.regression))}</h3>"
        f'<p class="meta">{escape(fmt.count(q.calls))} calls, {escape(fmt.duration(q.total_ms))} total '
        f"({escape(fmt.share(q.share))} of all slow time), seen {escape(fmt.moment(q.first_seen, seconds=True))} "
        f"to {escape(fmt.moment(q.last_seen, seconds=True))} UTC</p>"
        f'<p class="meta">hints: {escape(fmt.counts(q.hints, empty="none"))}; '
        f"cache: {escape(fmt.counts(q.cache_outcomes, empty='not cached'))}</p>"
        f"{distribution_chart(q)}"
        f"<p>Normalized statement:</p><pre>{escape(q.normalized_sql)}</pre>"
        f"<p>Slowest call:</p><pre>{escape(q.sample_sql)}</pre>{plan}</section>"
    )


def _size(value: object) -> str:
    return f"{float(value) / 1024 / 1024:.1f} MB" if isinstance(value, (int, float)) else "-"


def _advice_section(advice: Mapping[str, Any]) -> str:
    """Index advice (``queryopt advise`` JSON data): what to create, for which statements, and unused indexes."""
    indexes = advice.get("indexes") or []
    if indexes:
        rows = "".join(
            f'<tr><td class="text">{escape(str(i.get("table")))}</td>'
            f'<td class="text">{escape(", ".join(map(str, i.get("columns") or [])))}</td>'
            f"<td>{escape(_size(i.get('size_bytes')))}</td><td>{escape(fmt.share(float(i.get('share') or 0)))}</td>"
            f'<td class="text">{escape(" ".join(str(q.get("fingerprint")) for q in i.get("queries") or []))}</td></tr>'
            for i in indexes
        )
        statements = "\n".join(f"{i.get('create_statement')};" for i in indexes)
        body = (
            "<table><tr><th class=text>table</th><th class=text>columns</th><th>size</th><th>share of slow time</th>"
            f"<th class=text>fingerprints</th></tr>{rows}</table><pre>{escape(statements)}</pre>"
        )
    else:
        body = '<p class="meta">No index would save enough of the recorded time to be worth its size and upkeep.</p>'
    unused = advice.get("unused_indexes") or []
    if unused:
        items = "".join(
            f"<li><code>{escape(str(u.get('name')))}</code> on {escape(str(u.get('table')))}, "
            f"{escape(_size(u.get('size_bytes')))}</li>"
            for u in unused
        )
        body += f'<p class="meta">Indexes no recorded statement uses (a hint, not an instruction):</p><ul>{items}</ul>'
    return (
        '<section id="advice"><h2>Index advice</h2><p class="meta">Costed with HypoPG hypothetical indexes; '
        f"nothing was created. Run <code>queryopt advise</code> for details.</p>{body}</section>"
    )


def render_html(report: Report, advice: Mapping[str, Any] | None = None) -> str:
    """The whole report as a standalone HTML document (with an index-advice section when ``advice`` is given)."""
    w, s = report.window, report.summary
    scope = f", fingerprint {report.fingerprint} only" if report.fingerprint else ""
    tiles = fmt.summary_figures(s)
    if report.regressions:
        regressions = (
            "<table><tr><th class=text>severity</th><th class=text>fingerprint</th><th>mean before</th>"
            "<th>mean now</th><th>mean ratio</th><th>p95 before</th><th>p95 now</th><th>p95 ratio</th></tr>"
            + "".join(_regression_row(r) for r in report.regressions)
            + "</table>"
        )
    else:
        regressions = '<p class="meta">No fingerprint is new or more than 2x slower than in the previous window.</p>'
    rows = "".join(_query_row(rank, q) for rank, q in enumerate(report.queries, start=1))
    sections = "".join(_query_section(rank, q, _plan_tree(report, q)) for rank, q in enumerate(report.queries, start=1))
    regressions += _plan_changes(report)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Slow-query report {escape(fmt.moment(w.start))} to {escape(fmt.moment(w.end))} UTC</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>Slow-query report</h1>
<p class="meta">{escape(fmt.moment(w.start, seconds=True))} to {escape(fmt.moment(w.end, seconds=True))} UTC,
compared with the window from {escape(fmt.moment(w.previous_start, seconds=True))}; table
<code>{escape(report.schema)}.slow_queries</code>{escape(scope)}. Percentiles are PostgreSQL's continuous
<code>percentile_cont</code> (interpolated between recorded durations).</p>
<div class="tiles">{"".join(_tile(label, value) for label, value in tiles)}</div>
</header>
<section id="timeline"><h2>Timeline: total slow time per {escape(fmt.bucket_name(w.bucket_seconds))}</h2>
{timeline_chart(report.timeline, bucket_seconds=w.bucket_seconds)}</section>
<section id="regressions"><h2>Regressions (worst: {_severity(report.worst_severity)})</h2>{regressions}</section>
<section id="queries"><h2>Top {len(report.queries)} queries by {escape(report.sort.value)}</h2>
<table><tr><th>#</th><th class=text>fingerprint</th><th>calls</th><th>total</th><th>mean</th><th>p50</th><th>p95</th>
<th>p99</th><th>max</th><th>share</th><th>timeouts</th><th>errors</th><th>rejected</th><th class=text>trend</th></tr>
{rows}</table>
{sections}</section>
{_advice_section(advice) if advice is not None else ""}
<footer>Generated by queryopt {escape(__version__)} at {escape(fmt.moment(report.generated_at, seconds=True))} UTC.
</footer>
</body>
</html>
"""
