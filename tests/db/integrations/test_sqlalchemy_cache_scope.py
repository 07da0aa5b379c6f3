"""An instrumented engine's cache keys: session settings and the per-statement ``cache_scope`` option."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from queryopt import CachePolicy, ConfigurationError, RecorderPolicy, Settings
from queryopt.integrations.sqlalchemy import instrument, uninstrument
from tests.db.integrations.sqlalchemy_app import sync_engine

QUIET = Settings(recorder=RecorderPolicy(enabled=False), cache=CachePolicy(ttl=60))
COUNT = text("SELECT count(*) FROM counted")


@pytest.fixture
def engine(dsn: str, conn: psycopg.Connection[Any]) -> Iterator[Engine]:
    conn.execute("CREATE TABLE counted (n int)")
    engine = sync_engine(dsn)
    instrument(engine, settings=QUIET)
    yield engine
    uninstrument(engine)
    engine.dispose()


def _count(engine: Engine, **options: Any) -> int:
    with engine.connect() as connection:
        value = connection.execute(COUNT.execution_options(queryopt={"cache": True, **options})).scalar()
        connection.commit()
    assert isinstance(value, int)
    return value


def test_a_cache_scope_option_keeps_its_own_entries(engine: Engine, conn: psycopg.Connection[Any]) -> None:
    assert _count(engine, cache_scope="tenant-a") == 0
    conn.execute("INSERT INTO counted VALUES (1)")  # behind queryopt's back: no invalidation
    assert _count(engine, cache_scope="tenant-b") == 1
    assert _count(engine, cache_scope="tenant-a") == 0
    with pytest.raises(ConfigurationError, match="cache_scope"):
        _count(engine, cache_scope=["not", "hashable"])
