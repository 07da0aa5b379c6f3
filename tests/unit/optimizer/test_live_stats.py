from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import pytest

from queryopt import Alert, AlertSeverity, QueryStats, RecorderPolicy

FP = "0123456789abcdef"
OTHER = "fedcba9876543210"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _stats_with_alerts(clock: FakeClock, **policy: object) -> tuple[QueryStats, list[Alert]]:
    stats = QueryStats(RecorderPolicy(**policy), clock=clock)  # type: ignore[arg-type]
    alerts: list[Alert] = []
    stats.on_alert(alerts.append)
    return stats, alerts


def test_summary_is_plain_numbers_over_the_window() -> None:
    stats = QueryStats(RecorderPolicy(stats_window=20))
    for ms in range(1, 21):
        stats.observe(FP, ms / 1000)
    summary = stats.summary()
    assert set(summary) == {FP}
    row = summary[FP]
    assert row["count"] == 20
    assert row["samples"] == 20
    assert row["min"] == 0.001
    assert row["max"] == 0.020
    assert row["mean"] == pytest.approx(0.0105)
    assert row["p95"] == 0.019  # nearest rank: the 19th of 20


def test_window_slides_and_count_keeps_growing() -> None:
    stats = QueryStats(RecorderPolicy(stats_window=5))
    for seconds in [9.0] * 5 + [1.0] * 5:
        stats.observe(FP, seconds)
    row = stats.summary()[FP]
    assert (row["count"], row["samples"], row["min"], row["max"], row["mean"]) == (10, 5, 1.0, 1.0, 1.0)


def test_running_sum_stays_exact_over_many_laps() -> None:
    stats = QueryStats(RecorderPolicy(stats_window=7))
    for index in range(10_003):
        stats.observe(FP, 0.1 if index % 2 else 0.3)
    row = stats.summary()[FP]
    assert math.isclose(row["mean"], sum(0.1 if i % 2 else 0.3 for i in range(9_996, 10_003)) / 7)


def test_fingerprints_are_bounded_least_recently_seen_evicted() -> None:
    stats = QueryStats(RecorderPolicy(stats_max_fingerprints=3))
    for fp in ("a" * 16, "b" * 16, "c" * 16):
        stats.observe(fp, 0.01)
    stats.observe("a" * 16, 0.01)  # a is now the most recent, b the least
    stats.observe("d" * 16, 0.01)
    assert set(stats.summary()) == {"a" * 16, "c" * 16, "d" * 16}
    for index in range(1000):
        stats.observe(f"{index:016x}", 0.01)
    assert len(stats.summary()) == 3


def test_alerts_fire_with_severity_once_per_cooldown(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    stats, alerts = _stats_with_alerts(clock, alert_cooldown=300.0, alert_min_samples=10)
    for _ in range(10):
        stats.observe(FP, 0.010)
    with caplog.at_level(logging.WARNING, logger="queryopt"):
        stats.observe(FP, 0.019)  # under 2x: nothing
        assert alerts == []
        stats.observe(FP, 0.025)  # baseline ~10.8 ms: over 2x, under 3x
    assert [a.severity for a in alerts] == [AlertSeverity.WARNING]
    first = alerts[0]
    assert first.fingerprint == FP
    assert first.duration == 0.025
    assert first.baseline == pytest.approx((10 * 0.010 + 0.019) / 11)
    assert first.at == datetime.fromtimestamp(clock.now, UTC)
    assert any(r.levelno == logging.WARNING and FP in r.getMessage() for r in caplog.records)

    clock.now += 299.0
    stats.observe(FP, 0.500)  # critical, but inside the cooldown
    assert len(alerts) == 1

    clock.now += 1.0
    for _ in range(100):  # a fresh baseline of 10 ms
        stats.observe(FP, 0.010)
    with caplog.at_level(logging.WARNING, logger="queryopt"):
        stats.observe(FP, 0.031)
        stats.observe(FP, 0.100)  # again inside the new cooldown
    assert [a.severity for a in alerts] == [AlertSeverity.WARNING, AlertSeverity.CRITICAL]
    assert alerts[1].at == datetime.fromtimestamp(clock.now, UTC)
    assert any(r.levelno == logging.ERROR and "critical" in r.getMessage() for r in caplog.records)


def test_cooldown_is_per_fingerprint() -> None:
    clock = FakeClock()
    stats, alerts = _stats_with_alerts(clock, alert_min_samples=3)
    for fp in (FP, OTHER):
        for _ in range(3):
            stats.observe(fp, 0.010)
        stats.observe(fp, 0.050)
    assert [(a.fingerprint, a.severity) for a in alerts] == [(FP, "critical"), (OTHER, "critical")]


def test_no_alert_without_enough_history_or_for_tiny_durations() -> None:
    clock = FakeClock()
    stats, alerts = _stats_with_alerts(clock, alert_min_samples=10, alert_min_duration=0.005)
    for _ in range(9):
        stats.observe(FP, 0.010)
    stats.observe(FP, 1.0)  # only 9 calls of history
    for _ in range(20):
        stats.observe(OTHER, 0.0001)
    stats.observe(OTHER, 0.004)  # 40x, but below alert_min_duration
    assert alerts == []


def test_a_failing_callback_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    stats = QueryStats(RecorderPolicy(alert_min_samples=2))
    seen: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("callback bug")

    stats.on_alert(broken)
    stats.on_alert(seen.append)
    stats.observe(FP, 0.01)
    stats.observe(FP, 0.01)
    with caplog.at_level(logging.ERROR, logger="queryopt"):
        stats.observe(FP, 1.0)  # must not raise
    assert len(seen) == 1
    assert "callback" in caplog.text


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"alert_warning_factor": 1.0}, "alert_warning_factor"),
        ({"alert_warning_factor": 3.0, "alert_critical_factor": 2.0}, "alert_critical_factor"),
        ({"stats_window": 1}, "stats_window"),
        ({"alert_cooldown": -1}, "alert_cooldown"),
        ({"thresholds": {"not-a-fingerprint": 1.0}}, "thresholds"),
        ({"thresholds": {FP: -1.0}}, "thresholds"),
        ({"batch_size": 1_000_000}, "batch_size"),
    ],
)
def test_recorder_policy_validates_new_fields(policy: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RecorderPolicy(**policy)  # type: ignore[arg-type]


def test_per_fingerprint_thresholds_are_read_only_and_hashable() -> None:
    policy = RecorderPolicy(thresholds={FP: 2})
    assert policy.threshold_for(FP) == 2.0
    assert policy.threshold_for(OTHER) == 0.1
    assert hash(policy) == hash(RecorderPolicy(thresholds={FP: 2.0}))
    with pytest.raises(TypeError):
        policy.thresholds[FP] = 5.0  # type: ignore[index]
