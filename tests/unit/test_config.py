from __future__ import annotations

import dataclasses

import pytest

from queryopt import CachePolicy, ConfigurationError, HintMode, RecorderPolicy, RetryPolicy, Settings, TimeoutPolicy
from queryopt.config import parse_duration


def test_defaults_are_sensible() -> None:
    settings = Settings()
    assert settings.timeout.statement == 30.0
    assert settings.recorder.threshold == 0.1
    assert settings.recorder.capture_params is False
    assert settings.hint_mode is HintMode.AUTO


def test_policies_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CachePolicy().ttl = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: TimeoutPolicy(statement=-1), "statement"),
        (lambda: TimeoutPolicy(connect=0), "connect"),
        (lambda: RetryPolicy(attempts=0), "attempts"),
        (lambda: RetryPolicy(initial_backoff=3, max_backoff=1), "max_backoff"),
        (lambda: CachePolicy(ttl=float("nan")), "ttl"),
        (lambda: CachePolicy(max_entries=True), "max_entries"),
        (lambda: RecorderPolicy(schema="Bad-Name"), "schema"),
        (lambda: RecorderPolicy(queue_size=0), "queue_size"),
    ],
)
def test_bad_values_name_the_field(build: object, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, ConfigurationError)
    assert info.value.setting == field


def test_from_env_reads_queryopt_variables() -> None:
    settings = Settings.from_env(
        {
            "QUERYOPT_DSN": "dbname=shop",
            "QUERYOPT_STATEMENT_TIMEOUT": "2500ms",
            "QUERYOPT_CACHE_TTL": "5m",
            "QUERYOPT_SLOW_THRESHOLD": "250ms",
            "QUERYOPT_RECORD_PARAMS": "on",
            "QUERYOPT_HINT_MODE": "planner_settings",
            "QUERYOPT_RETRY_ATTEMPTS": "5",
            "OTHER": "ignored",
        }
    )
    assert settings.dsn == "dbname=shop"
    assert settings.timeout.statement == 2.5
    assert settings.cache.ttl == 300.0
    assert settings.recorder.threshold == 0.25
    assert settings.recorder.capture_params is True
    assert settings.hint_mode is HintMode.PLANNER_SETTINGS
    assert settings.retry.attempts == 5


def test_from_env_statement_timeout_off() -> None:
    assert Settings.from_env({"QUERYOPT_STATEMENT_TIMEOUT": "off"}).timeout.statement is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QUERYOPT_STATEMENT_TIMEOUT", "soon"),
        ("QUERYOPT_CACHE_MAX_ENTRIES", "many"),
        ("QUERYOPT_CACHE_MAX_ENTRIES", "0"),
        ("QUERYOPT_RECORD_PARAMS", "maybe"),
        ("QUERYOPT_HINT_MODE", "always"),
        # Values that parse but that a policy refuses are named by their variable too.
        ("QUERYOPT_CONNECT_TIMEOUT", "0"),
        ("QUERYOPT_CACHE_TTL", "0"),
        ("QUERYOPT_RECORDER_FLUSH_INTERVAL", "0"),
        ("QUERYOPT_PIN_REFRESH", "0"),
        ("QUERYOPT_SCHEMA", "Queryopt"),
        ("QUERYOPT_DSN", "junk"),
        ("QUERYOPT_RECORDER_DSN", "mysql://u@h/db host"),
    ],
)
def test_from_env_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30.0), ("250ms", 0.25), ("5m", 300.0), ("24h", 86400.0), ("30d", 2592000.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="--since"):
        parse_duration("yesterday", name="--since")


def test_from_env_reads_the_recorder_flush_interval_and_the_alert_floor() -> None:
    settings = Settings.from_env({"QUERYOPT_RECORDER_FLUSH_INTERVAL": "250ms", "QUERYOPT_ALERT_MIN_DURATION": "50ms"})
    assert settings.recorder.flush_interval == 0.25
    assert settings.recorder.alert_min_duration == 0.05
    assert Settings.from_env({}).recorder.alert_min_duration == 0.01
