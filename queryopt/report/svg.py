"""Inline SVG charts for the HTML report: no script, no external resource, every text escaped.

Hover text uses SVG ``<title>`` elements, which browsers show as native tooltips.
"""

from __future__ import annotations

from html import escape

from queryopt.report import formatting as fmt
from queryopt.report.model import FingerprintReport, TimelineBucket

__all__ = ["BAR_COLOUR", "DISTRIBUTION_COLOURS", "distribution_chart", "timeline_chart"]

BAR_COLOUR = "#2f6fdf"
"""Fill of the timeline bars (the browser test looks for it in the screenshot)."""
DISTRIBUTION_COLOURS = ("#9ec5f8", "#5b9bef", "#2f6fdf", "#1d4fa8", "#b03a2e")
"""Fills of the min, p50, p95, p99 and max bars."""
_AXIS = "#5f6b7a"


def _num(value: float) -> str:
    return f"{value:.1f}"


def timeline_chart(buckets: tuple[TimelineBucket, ...], *, bucket_seconds: int, width: int = 960) -> str:
    """Bars of total slow time per bucket, with calls and the slowest call in each bar's tooltip."""
    height, left, right, top, bottom = 240, 64, 12, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((b.total_ms for b in buckets), default=0.0)
    scale = plot_h / peak if peak > 0 else 0.0
    step = plot_w / max(len(buckets), 1)
    parts = [
        f'<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Total slow time per bucket">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{_AXIS}"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{_AXIS}"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h - fraction * plot_h
        parts.append(
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" class="axis">'
            f"{escape(fmt.duration(peak * fraction) if fraction else '0')}</text>"
        )
    label_every = max(1, len(buckets) // 8)
    label = "%Y-%m-%d" if bucket_seconds >= 86400 else "%H:%M"
    for index, bucket in enumerate(buckets):
        x = left + index * step
        bar_h = bucket.total_ms * scale
        tip = (
            f"{fmt.moment(bucket.start)} UTC: {fmt.count(bucket.calls)} calls, {fmt.duration(bucket.total_ms)} total, "
            f"slowest {fmt.duration(bucket.max_ms if bucket.calls else None)}, "
            f"{fmt.count(bucket.timeouts)} timeouts, {fmt.count(bucket.errors)} errors"
        )
        parts.append(
            f'<rect class="bar" x="{_num(x + step * 0.1)}" y="{_num(top + plot_h - bar_h)}" '
            f'width="{_num(step * 0.8)}" height="{_num(bar_h)}" fill="{BAR_COLOUR}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{_num(x + step / 2)}" y="{height - bottom + 16}" text-anchor="middle" class="axis">'
                f"{escape(bucket.start.strftime(label))}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def distribution_chart(query: FingerprintReport, *, width: int = 520) -> str:
    """Horizontal bars for one fingerprint's min, p50, p95, p99 and max on a scale from 0 to its max."""
    row_h, left, right, top = 22, 44, 84, 4
    height = top * 2 + row_h * 5
    plot_w = width - left - right
    values = (
        ("min", query.min_ms),
        ("p50", query.p50_ms),
        ("p95", query.p95_ms),
        ("p99", query.p99_ms),
        ("max", query.max_ms),
    )
    scale = plot_w / query.max_ms if query.max_ms > 0 else 0.0
    parts = [
        f'<svg class="chart distribution" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(f"Latency distribution of {query.fingerprint}", quote=True)}">'
    ]
    for index, ((name, value), colour) in enumerate(zip(values, DISTRIBUTION_COLOURS, strict=True)):
        y = top + index * row_h
        bar_w = max(value * scale, 1.0)
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="axis">{name}</text>'
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{_num(bar_w)}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{name} {escape(fmt.duration(value))} ({value!r} ms)</title></rect>"
            f'<text x="{_num(left + bar_w + 6)}" y="{y + 15}" class="value">{escape(fmt.duration(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
