from __future__ import annotations

from collections.abc import Iterator

import pytest

import queryopt.telemetry
from tests.telemetry_sdk import Collected, collecting


@pytest.fixture
def collected(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collected]:
    """Front ends built with ``Settings(telemetry=True)`` report to an in-memory SDK during the test."""
    with collecting() as found:
        monkeypatch.setattr(queryopt.telemetry, "_shared", found.telemetry)
        yield found
