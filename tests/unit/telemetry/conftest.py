from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.telemetry_sdk import Collected, collecting


@pytest.fixture
def collected() -> Iterator[Collected]:
    with collecting() as found:
        yield found
