"""One entry point for every output format of the same :class:`~queryopt.report.Report`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from queryopt.errors import ReportError
from queryopt.report.csv_table import render_csv
from queryopt.report.html_page import render_html
from queryopt.report.json_doc import render_json
from queryopt.report.markdown import render_markdown
from queryopt.report.model import Report
from queryopt.report.terminal import render_text

__all__ = ["ReportFormat", "render"]


class ReportFormat(StrEnum):
    """The output formats of ``queryopt report --format``."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    CSV = "csv"
    HTML = "html"


_RENDERERS: dict[ReportFormat, Callable[[Report], str]] = {
    ReportFormat.TABLE: render_text,
    ReportFormat.JSON: render_json,
    ReportFormat.MARKDOWN: render_markdown,
    ReportFormat.CSV: render_csv,
    ReportFormat.HTML: render_html,
}


def render(
    report: Report, format: ReportFormat | str = ReportFormat.TABLE, *, advice: Mapping[str, Any] | None = None
) -> str:
    """``report`` as text in ``format`` (``table`` gives plain text, 100 columns wide).

    ``advice`` (index advice as plain JSON data) adds an advice section to the JSON and HTML formats.
    """
    try:
        chosen = ReportFormat(format)
    except ValueError:
        allowed = ", ".join(f.value for f in ReportFormat)
        raise ReportError(f"unknown report format {format!r}: use one of {allowed}") from None
    if advice is not None and chosen is ReportFormat.JSON:
        return render_json(report, advice)
    if advice is not None and chosen is ReportFormat.HTML:
        return render_html(report, advice)
    return _RENDERERS[chosen](report)
