"""report() against seeded rows: every number is what the rows imply, and every failure is one clear ReportError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queryopt.errors import ReportError
from queryopt.report import Report, Severity, SortKey, report
from queryopt.schema.migrator import migrate
from tests.db.report import report_seed as seed
from tests.db.report.report_seed import CRIT_FP, GONE_FP, NEW_FP, NOW, OK_FP, START, TWICE_FP, WARN_FP, XSS_FP


@pytest.fixture
def seeded(dsn: str) -> tuple[str, list[seed.Seed]]:
    return dsn, seed.seed_table(dsn)


@pytest.fixture
def full_report(seeded: tuple[str, list[seed.Seed]]) -> Report:
    return report(seeded[0], since="24h", now=NOW)


def test_window_is_half_open_and_compared_with_the_one_before(full_report: Report) -> None:
    window = full_report.window
    assert (window.start, window.end, window.previous_start) == (START, NOW, START - timedelta(hours=24))
    assert window.bucket_seconds == 3600


def test_summary_numbers_are_what_the_rows_imply(seeded: tuple[str, list[seed.Seed]], full_report: Report) -> None:
    expected = seed.expected_summary(seeded[1])
    s = full_report.summary
    actual = {name: getattr(s, name) for name in expected}
    assert actual == expected
    assert s.calls == 19  # a hand count, so the helper itself is checked once


def test_every_query_number_is_what_the_rows_imply(seeded: tuple[str, list[seed.Seed]], full_report: Report) -> None:
    expected = seed.expected_queries(seeded[1])
    assert (
        {q.fingerprint for q in full_report.queries}
        == set(expected)
        == {
            OK_FP,
            WARN_FP,
            CRIT_FP,
            NEW_FP,
            TWICE_FP,
            XSS_FP,
        }
    )
    for q in full_report.queries:
        e = expected[q.fingerprint]
        numbers = ("calls", "total_ms", "mean_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "share")
        for name in numbers:
            assert getattr(q, name) == getattr(e, name), (q.fingerprint, name)
        assert (q.timeouts, q.errors, q.first_seen, q.last_seen) == (e.timeouts, e.errors, e.first_seen, e.last_seen)
        assert q.sample_sql == e.sample_sql
        assert q.kind == e.kind
        assert q.normalized_sql == seed.normalized(q.fingerprint)
        assert {c.value: c.calls for c in q.hints} == e.hints
        assert {c.value: c.calls for c in q.cache_outcomes} == e.cache_outcomes
        r = q.regression
        assert (r.previous_calls, r.previous_mean_ms, r.previous_p95_ms) == (
            e.previous_calls,
            e.previous_mean_ms,
            e.previous_p95_ms,
        )
    assert sum(q.share for q in full_report.queries) == pytest.approx(1.0)


def test_percentiles_interpolate_like_postgresql(full_report: Report) -> None:
    crit = next(q for q in full_report.queries if q.fingerprint == CRIT_FP)
    # sorted [100, 500, 700]: p50 is the middle value; p95 sits at position 1.9 -> 500 + 0.9 * 200
    assert (crit.p50_ms, crit.p95_ms, crit.p99_ms) == (500.0, 500.0 + 0.9 * 200.0, 500.0 + 0.98 * 200.0)


def test_sample_is_the_slowest_call_and_the_latest_on_a_tie(full_report: Report) -> None:
    xss = next(q for q in full_report.queries if q.fingerprint == XSS_FP)
    assert xss.sample_sql == seed.HOSTILE_SQL  # started after the "/* earlier */" call of the same duration


def test_regressions_classify_each_fingerprint(full_report: Report) -> None:
    severities = {r.fingerprint: r.severity for r in full_report.regressions}
    assert severities == {
        CRIT_FP: Severity.CRITICAL,
        WARN_FP: Severity.WARNING,
        NEW_FP: Severity.NEW,
        XSS_FP: Severity.NEW,
    }
    assert [r.severity for r in full_report.regressions] == [
        Severity.CRITICAL,
        Severity.WARNING,
        Severity.NEW,
        Severity.NEW,
    ]
    by_fp = {q.fingerprint: q.regression for q in full_report.queries}
    assert by_fp[OK_FP].severity is Severity.OK
    assert by_fp[TWICE_FP].severity is Severity.OK
    assert by_fp[TWICE_FP].mean_ratio == 2.0
    assert by_fp[WARN_FP].mean_ratio == 2.5
    assert by_fp[CRIT_FP].mean_ratio == (1300.0 / 3) / 100.0
    assert GONE_FP not in severities
    assert full_report.worst_severity is Severity.CRITICAL
    assert [r.fingerprint for r in full_report.findings_at_least(Severity.WARNING)] == [CRIT_FP, WARN_FP]


def test_timeline_has_every_hour_with_its_calls(seeded: tuple[str, list[seed.Seed]], full_report: Report) -> None:
    actual = [(b.start, b.calls, b.total_ms, b.max_ms, b.timeouts, b.errors) for b in full_report.timeline]
    assert actual == seed.expected_timeline(seeded[1])
    assert sum(b.calls for b in full_report.timeline) == full_report.summary.calls


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        (SortKey.TOTAL, lambda e: e.total_ms),
        (SortKey.MEAN, lambda e: e.mean_ms),
        (SortKey.P95, lambda e: e.p95_ms),
        (SortKey.CALLS, lambda e: e.calls),
        (SortKey.MAX, lambda e: e.max_ms),
    ],
)
def test_sort_and_top(seeded: tuple[str, list[seed.Seed]], sort: SortKey, key: object) -> None:
    expected = seed.expected_queries(seeded[1]).values()
    order = sorted(expected, key=lambda e: (-key(e), e.fingerprint))  # type: ignore[operator]
    result = report(seeded[0], since=timedelta(hours=24), now=NOW, sort=sort, top=3)
    assert [q.fingerprint for q in result.queries] == [e.fingerprint for e in order[:3]]
    # regressions are not limited to the top list
    assert {r.fingerprint for r in result.regressions} == {CRIT_FP, WARN_FP, NEW_FP, XSS_FP}


def test_fingerprint_filter_restricts_everything(seeded: tuple[str, list[seed.Seed]]) -> None:
    result = report(seeded[0], since="24h", now=NOW, fingerprint=WARN_FP)
    assert [q.fingerprint for q in result.queries] == [WARN_FP]
    assert result.summary.calls == 4
    assert result.summary.total_ms == 1000.0
    assert [r.severity for r in result.regressions] == [Severity.WARNING]
    assert sum(b.calls for b in result.timeline) == 4
    assert result.queries[0].share == 1.0


def test_explicit_from_to_window(seeded: tuple[str, list[seed.Seed]]) -> None:
    start, end = NOW - timedelta(hours=12), NOW - timedelta(hours=2)
    result = report(seeded[0], from_=start, to=end.replace(tzinfo=None))  # naive means UTC
    expected = seed.expected_queries(seeded[1], start, end)
    assert {q.fingerprint: q.calls for q in result.queries} == {fp: e.calls for fp, e in expected.items()}
    assert result.window.bucket_seconds == 900  # 10 h -> 15-minute buckets (at most 48)
    assert sum(b.calls for b in result.timeline) == result.summary.calls


def test_default_window_ends_at_the_server_clock(dsn: str) -> None:
    recent = datetime.now(UTC) - timedelta(minutes=5)
    seed.seed_table(dsn, [seed.Seed(recent, OK_FP, 42.0), seed.Seed(recent - timedelta(days=2), OK_FP, 1.0)])
    result = report(dsn)
    assert result.summary.calls == 1
    assert result.window.end - result.window.start == timedelta(hours=24)


def test_custom_schema(dsn: str) -> None:
    seed.seed_table(dsn, schema="observability")
    assert report(dsn, since="24h", now=NOW, schema="observability").summary.calls == 19


# -- one clear error for each way a report can be impossible ------------------------------------------


def test_missing_table_says_to_apply_migrations(dsn: str) -> None:
    with pytest.raises(ReportError, match=r"queryopt\.slow_queries does not exist: run `queryopt migrate` first"):
        report(dsn)


def test_empty_table(dsn: str) -> None:
    migrate(dsn)
    with pytest.raises(ReportError, match="is empty: nothing has been recorded yet"):
        report(dsn)


def test_no_rows_in_the_window_names_the_recorded_range(seeded: tuple[str, list[seed.Seed]]) -> None:
    with pytest.raises(ReportError, match=r"no slow query between 2023-01-01.*the table has calls from 2024-04-30"):
        report(seeded[0], from_=datetime(2023, 1, 1, tzinfo=UTC), to=datetime(2023, 1, 2, tzinfo=UTC))


def test_unknown_fingerprint(seeded: tuple[str, list[seed.Seed]]) -> None:
    with pytest.raises(ReportError, match="no slow query has fingerprint 'ffffffffffffffff'"):
        report(seeded[0], since="24h", now=NOW, fingerprint="ffffffffffffffff")


def test_known_fingerprint_outside_the_window(seeded: tuple[str, list[seed.Seed]]) -> None:
    with pytest.raises(ReportError, match=f"fingerprint '{GONE_FP}' has calls from"):
        report(seeded[0], since="24h", now=NOW, fingerprint=GONE_FP)


def test_unreachable_database(tmp_path: object) -> None:
    with pytest.raises(ReportError, match="cannot connect to the database") as info:
        report(f"host={tmp_path} dbname=nothing connect_timeout=1")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"schema": 'x"; DROP TABLE t; --'}, "not a lower-case identifier"),
        ({"top": 0}, "top must be a whole number >= 1"),
        ({"sort": "name"}, "cannot sort by 'name'"),
        ({"since": "soon"}, "not a duration"),
        ({"since": "0s"}, "positive duration"),
        ({"since": "1h", "from_": NOW}, "either since or from"),
        ({"from_": NOW, "to": NOW}, "the window is empty"),
        ({"fingerprint": " "}, "fingerprint must be a non-empty string"),
    ],
)
def test_bad_arguments(seeded: tuple[str, list[seed.Seed]], arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ReportError, match=message):
        report(seeded[0], **arguments)  # type: ignore[arg-type]
