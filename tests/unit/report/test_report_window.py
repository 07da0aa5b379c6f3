from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queryopt.errors import ReportError
from queryopt.report import Severity
from queryopt.report.model import classify, ratio
from queryopt.report.window import BUCKET_ORIGIN, MAX_BUCKETS, bucket_seconds, bucket_starts, resolve_window

NOW = datetime(2024, 5, 2, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("length", "width"),
    [
        (timedelta(minutes=30), 60),
        (timedelta(hours=2), 300),
        (timedelta(hours=12), 900),
        (timedelta(hours=12, seconds=1), 3600),
        (timedelta(hours=24), 3600),
        (timedelta(days=2), 3600),  # hourly up to two days
        (timedelta(days=2, seconds=1), 6 * 3600),
        (timedelta(days=30), 86400),
        (timedelta(days=365), 7 * 86400),
    ],
)
def test_bucket_fits_the_window(length: timedelta, width: int) -> None:
    assert bucket_seconds(length.total_seconds()) == width


@given(st.integers(min_value=60, max_value=400 * 86400), st.integers(min_value=0, max_value=10**9))
def test_buckets_cover_the_window_with_at_most_49(length_seconds: int, offset_seconds: int) -> None:
    end = BUCKET_ORIGIN + timedelta(seconds=offset_seconds, microseconds=offset_seconds % 7)
    window = resolve_window(now=end, since=float(length_seconds))
    first, last = bucket_starts(window)
    width = timedelta(seconds=window.bucket_seconds)
    assert first <= window.start < first + width
    assert last < window.end <= last + width
    assert (first - BUCKET_ORIGIN) % width == timedelta(0)
    count = (last - first) // width + 1
    assert count <= MAX_BUCKETS + 1 or window.bucket_seconds == 7 * 86400


def test_since_forms_and_defaults() -> None:
    assert resolve_window(now=NOW).start == NOW - timedelta(hours=24)
    assert resolve_window(now=NOW, since="90m").start == NOW - timedelta(minutes=90)
    assert resolve_window(now=NOW, since=600).start == NOW - timedelta(minutes=10)
    window = resolve_window(now=NOW, since=timedelta(days=7))
    assert window.previous_start == NOW - timedelta(days=14)
    assert window.bucket_seconds == 6 * 3600


def test_explicit_bounds_are_utc_and_half_defaults() -> None:
    plus_two = timezone(timedelta(hours=2))
    window = resolve_window(now=NOW, start=datetime(2024, 5, 1, 14, 0, tzinfo=plus_two), end=datetime(2024, 5, 1, 18))
    assert window.start == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert window.end == datetime(2024, 5, 1, 18, 0, tzinfo=UTC)  # naive is read as UTC
    assert window.start.tzinfo is UTC
    assert resolve_window(now=NOW, start=NOW - timedelta(hours=3)).end == NOW
    assert resolve_window(now=NOW, end=NOW - timedelta(hours=3)).start == NOW - timedelta(hours=27)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"since": "1h", "start": NOW}, "not both"),
        ({"since": "-5m"}, "not a duration"),
        ({"since": 0}, "positive"),
        ({"since": True}, "must be a duration"),
        ({"start": NOW, "end": NOW - timedelta(seconds=1)}, "is not before"),
        ({"start": "2024-05-01"}, "must be a datetime"),
    ],
)
def test_bad_windows(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ReportError, match=message):
        resolve_window(now=NOW, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mean", "p95", "severity"),
    [
        (1.0, 1.0, Severity.OK),
        (2.0, 2.0, Severity.OK),
        (2.0001, 1.0, Severity.WARNING),
        (1.0, 2.5, Severity.WARNING),
        (3.0, 3.0, Severity.WARNING),
        (1.0, 3.01, Severity.CRITICAL),
        (float("inf"), 1.0, Severity.CRITICAL),
        (0.1, 0.1, Severity.OK),  # faster is fine
    ],
)
def test_classify_thresholds(mean: float, p95: float, severity: Severity) -> None:
    assert classify(mean, p95, seen_before=True) is severity


def test_new_wins_over_ratios_and_ranks_below_warning() -> None:
    assert classify(None, None, seen_before=False) is Severity.NEW
    ranks = [s.rank for s in (Severity.OK, Severity.NEW, Severity.WARNING, Severity.CRITICAL)]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == 4


def test_ratio_of_zero_previous() -> None:
    assert ratio(5.0, 0.0) == float("inf")
    assert ratio(0.0, 0.0) == 1.0
    assert ratio(3.0, 2.0) == 1.5
