"""Which time range a report covers, and how its timeline is cut into buckets (pure, no I/O).

The window is half-open, ``[start, end)``; the comparison window is the one of
the same length just before it. Timeline buckets are aligned to a fixed origin
(Monday 2001-01-01 00:00 UTC, as ``date_bin`` examples use), so hourly buckets
start on the hour and daily ones at midnight UTC; the first and last bucket may
be partly outside the window, and only calls inside the window are counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from queryopt.config import parse_duration
from queryopt.errors import ConfigurationError, ReportError
from queryopt.report.model import ReportWindow

__all__ = [
    "BUCKET_ORIGIN",
    "DEFAULT_SINCE",
    "MAX_BUCKETS",
    "bucket_seconds",
    "bucket_starts",
    "resolve_window",
]

DEFAULT_SINCE = timedelta(hours=24)
"""The window reported when neither ``since`` nor ``from_``/``to`` is given."""
BUCKET_ORIGIN = datetime(2001, 1, 1, tzinfo=UTC)
"""A Monday at midnight UTC: every bucket boundary is a whole multiple of its width from here."""
MAX_BUCKETS = 48
"""The timeline uses the smallest bucket width that cuts the window into at most this many pieces."""
_WIDTHS = (60, 5 * 60, 15 * 60, 3600, 6 * 3600, 86400, 7 * 86400)


def bucket_seconds(window_seconds: float) -> int:
    """The timeline bucket width for a window of ``window_seconds``.

    Hours for anything from half a day to two days, finer for shorter windows,
    coarser for longer ones:

    >>> bucket_seconds(24 * 3600), bucket_seconds(48 * 3600), bucket_seconds(3 * 86400)
    (3600, 3600, 21600)
    >>> bucket_seconds(3600), bucket_seconds(30 * 86400)
    (300, 86400)
    """
    for width in _WIDTHS:
        if window_seconds / width <= MAX_BUCKETS:
            return width
    return _WIDTHS[-1]


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise ReportError(f"{name} must be a datetime, got {moment!r}")
    # A naive time is read as UTC, the zone the report is shown in.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _length(since: timedelta | float | str) -> timedelta:
    if isinstance(since, timedelta):
        length = since
    elif isinstance(since, str):
        try:
            length = timedelta(seconds=parse_duration(since, name="since", require_unit=True))
        except ConfigurationError as exc:
            raise ReportError(str(exc)) from exc
    elif isinstance(since, (int, float)) and not isinstance(since, bool):
        length = timedelta(seconds=since)
    else:
        raise ReportError(f"since must be a duration such as '24h', seconds or a timedelta, got {since!r}")
    if length <= timedelta(0):
        raise ReportError(f"since must be a positive duration, got {since!r}")
    return length


def resolve_window(
    *,
    now: datetime,
    since: timedelta | float | str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ReportWindow:
    """The report window from ``since`` (a length ending at ``now``) or explicit bounds.

    With only ``start``, the window ends at ``now``; with only ``end``, it is
    :data:`DEFAULT_SINCE` long. Naive datetimes are taken as UTC.

    >>> w = resolve_window(now=datetime(2024, 5, 2, 12, tzinfo=UTC), since="24h")
    >>> w.start.isoformat(), w.previous_start.isoformat(), w.bucket_seconds
    ('2024-05-01T12:00:00+00:00', '2024-04-30T12:00:00+00:00', 3600)
    """
    now = _aware(now, "now")
    if since is not None and (start is not None or end is not None):
        raise ReportError("give either since or from/to, not both")
    if start is None and end is None:
        end_at = now
        start_at = now - _length(since if since is not None else DEFAULT_SINCE)
    else:
        end_at = _aware(end, "to") if end is not None else now
        start_at = _aware(start, "from") if start is not None else end_at - DEFAULT_SINCE
    if start_at >= end_at:
        raise ReportError(f"the window is empty: from {start_at.isoformat()} is not before to {end_at.isoformat()}")
    length = end_at - start_at
    return ReportWindow(
        start=start_at,
        end=end_at,
        previous_start=start_at - length,
        bucket_seconds=bucket_seconds(length.total_seconds()),
    )


def bucket_starts(window: ReportWindow) -> tuple[datetime, datetime]:
    """The start of the first and of the last timeline bucket that overlap the window.

    >>> w = resolve_window(now=datetime(2024, 5, 2, 12, 30, tzinfo=UTC), since="24h")
    >>> [moment.isoformat() for moment in bucket_starts(w)]
    ['2024-05-01T12:00:00+00:00', '2024-05-02T12:00:00+00:00']
    """
    width = timedelta(seconds=window.bucket_seconds)
    first = BUCKET_ORIGIN + ((window.start - BUCKET_ORIGIN) // width) * width
    # The window is half-open: a window ending exactly on a boundary has no bucket starting there.
    last = BUCKET_ORIGIN + ((window.end - BUCKET_ORIGIN - timedelta(microseconds=1)) // width) * width
    return first, last
