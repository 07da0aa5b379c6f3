"""A connection string that cannot connect fails at once with libpq's reason, as the CLI does."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time

import pytest
from psycopg.conninfo import make_conninfo

import queryopt
from queryopt import AsyncOptimizer, DatabaseConnectionError, Optimizer, QueryoptError, RecorderPolicy, Settings


def _settings() -> Settings:
    return Settings(recorder=RecorderPolicy(enabled=False))


@pytest.fixture
def missing_database(dsn: str) -> str:
    return make_conninfo(dsn, dbname="no_such_database_here")


REFUSED = "host=127.0.0.1 port=1 dbname=shop user=app password=secret connect_timeout=5"


@pytest.mark.parametrize("which", ["refused", "missing database"])
def test_the_optimizer_raises_a_queryopt_error_with_libpqs_reason_quickly(
    which: str, missing_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    dsn, reason = (REFUSED, "Connection refused") if which == "refused" else (missing_database, "does not exist")
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseConnectionError) as caught:
        Optimizer(dsn, settings=_settings())
    assert time.monotonic() - started < 2.0
    error = caught.value
    assert isinstance(error, QueryoptError)
    assert isinstance(error, ConnectionError)
    assert reason in str(error)
    assert reason in error.reason
    assert "secret" not in str(error)
    assert not [r for r in caplog.records if r.name.startswith("psycopg") and r.levelno >= logging.WARNING]
    assert pickle.loads(pickle.dumps(error)).reason == error.reason


def test_configure_and_the_async_optimizer_raise_it_too(missing_database: str) -> None:
    with pytest.raises(DatabaseConnectionError, match="does not exist"):
        queryopt.configure(missing_database, settings=_settings())

    async def body() -> None:
        started = time.monotonic()
        with pytest.raises(DatabaseConnectionError, match="does not exist"):
            async with AsyncOptimizer(missing_database, settings=_settings()):
                pass
        assert time.monotonic() - started < 2.0

    asyncio.run(body())
