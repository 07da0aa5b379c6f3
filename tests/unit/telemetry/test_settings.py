from __future__ import annotations

import sys

import pytest

import queryopt.telemetry
from queryopt import ConfigurationError, Settings
from queryopt.telemetry import telemetry_for


def test_telemetry_is_off_by_default_and_costs_nothing() -> None:
    assert Settings().telemetry is False
    assert Settings.from_env({}).telemetry is False
    assert telemetry_for(Settings()) is None


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("true", True), ("1", True), ("off", False)])
def test_queryopt_telemetry_turns_it_on(value: str, expected: bool) -> None:
    assert Settings.from_env({"QUERYOPT_TELEMETRY": value}).telemetry is expected


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="QUERYOPT_TELEMETRY") as info:
        Settings.from_env({"QUERYOPT_TELEMETRY": "maybe"})
    assert info.value.setting == "QUERYOPT_TELEMETRY"


def test_a_non_boolean_setting_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match=r"Settings\.telemetry") as info:
        Settings(telemetry="yes")  # type: ignore[arg-type]
    assert info.value.setting == "telemetry"


def test_on_gives_one_telemetry_for_the_process() -> None:
    settings = Settings(telemetry=True)
    first = telemetry_for(settings)
    assert first is not None
    assert telemetry_for(settings) is first
    assert isinstance(first, queryopt.telemetry.Telemetry)


def test_on_without_opentelemetry_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queryopt.telemetry, "_shared", None)
    monkeypatch.delitem(sys.modules, "queryopt.telemetry.instruments")
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if the extra were not installed
    with pytest.raises(ConfigurationError, match=r"queryopt\[otel\]") as info:
        telemetry_for(Settings(telemetry=True))
    assert info.value.setting == "QUERYOPT_TELEMETRY"
