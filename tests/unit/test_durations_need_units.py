"""A window given as text needs its unit: ``5`` could be seconds, minutes or days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from queryopt import ConfigurationError, ReportError
from queryopt.advisor.advice import _window
from queryopt.report.window import resolve_window

NOW = datetime(2024, 5, 2, 12, tzinfo=UTC)


def test_a_report_window_without_a_unit_is_refused() -> None:
    with pytest.raises(ReportError, match=r"needs a unit \(ms, s, m, h or d\)"):
        resolve_window(now=NOW, since="5")
    assert resolve_window(now=NOW, since=5) == resolve_window(now=NOW, since="5s")  # a number is seconds


def test_an_advice_window_without_a_unit_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"needs a unit"):
        _window("24")
    assert _window("24h") == 86400.0
