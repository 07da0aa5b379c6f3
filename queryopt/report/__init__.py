"""The slow-query report: numbers aggregated by PostgreSQL, rendered as terminal tables, JSON, Markdown, CSV or HTML.

``report(dsn, since="24h")`` returns a :class:`Report` of plain frozen data;
:func:`render` turns it into text in one of :data:`FORMATS`.
"""

from queryopt.report.data import report
from queryopt.report.model import (
    Count,
    FingerprintReport,
    PlanChangeNote,
    PlanTree,
    Regression,
    Report,
    ReportWindow,
    Severity,
    SortKey,
    Summary,
    TimelineBucket,
)
from queryopt.report.render import ReportFormat, render

__all__ = [
    "Count",
    "FingerprintReport",
    "PlanChangeNote",
    "PlanTree",
    "Regression",
    "Report",
    "ReportFormat",
    "ReportWindow",
    "Severity",
    "SortKey",
    "Summary",
    "TimelineBucket",
    "render",
    "report",
]
