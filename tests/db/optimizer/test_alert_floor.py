"""The alert floor: sub-millisecond queries that once take a few tens of milliseconds raise no alert below it."""

from __future__ import annotations

from queryopt import Alert, Optimizer, QueryStats, Settings


def _alerts_after_a_spike(dsn: str, environ: dict[str, str]) -> list[Alert]:
    settings = Settings.from_env({"QUERYOPT_RECORD_SLOW": "off", **environ})
    stats = QueryStats(settings.recorder)
    alerts: list[Alert] = []
    stats.on_alert(alerts.append)
    with Optimizer(dsn, settings=settings, query_stats=stats) as optimizer:
        for _ in range(settings.recorder.alert_min_samples + 2):
            optimizer.query("SELECT pg_sleep(%s)", [0])  # well under a millisecond each
        optimizer.query("SELECT pg_sleep(%s)", [0.06])  # 60 ms: a hundredfold spike
    return alerts


def test_the_default_floor_lets_a_real_spike_alert(dsn: str) -> None:
    assert [alert.severity for alert in _alerts_after_a_spike(dsn, {})] == ["critical"]


def test_no_alert_below_a_floor_set_in_the_environment(dsn: str) -> None:
    assert _alerts_after_a_spike(dsn, {"QUERYOPT_ALERT_MIN_DURATION": "100ms"}) == []
