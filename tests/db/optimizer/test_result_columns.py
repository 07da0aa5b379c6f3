"""Column names read from the server when asked for: right after the connection ran other statements,
in the client's encoding, and kept by the cache without the driver's result."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from queryopt import AsyncOptimizer, Settings
from queryopt.optimizer.blocking import Optimizer


def test_names_stay_right_after_the_leased_cursor_ran_other_statements(dsn: str) -> None:
    with Optimizer(dsn, settings=Settings(dsn=dsn), max_size=1) as optimizer:
        first = optimizer.execute("SELECT %s::int AS id, 'a' AS name", [1])
        for n in range(3):  # the same leased cursor runs these
            optimizer.execute("SELECT %s::int AS other, 2 AS columns, 3 AS here", [n])
        written = optimizer.execute("CREATE TEMP TABLE IF NOT EXISTS scratch (x int)")
        assert first.columns == ("id", "name")
        assert first.as_dicts() == [{"id": 1, "name": "a"}]
        assert written.columns == ()
        assert written.rows == ()


def test_names_are_decoded_in_the_client_encoding(dsn: str) -> None:
    latin = make_conninfo(dsn, client_encoding="LATIN1")
    with Optimizer(latin, settings=Settings(dsn=latin)) as optimizer:
        result = optimizer.execute('SELECT %s::int AS "café", 2 AS "naïve"', [1])
        assert result.columns == ("café", "naïve")
        assert optimizer.execute('SELECT %s::text AS "señal"', ["ñ"]).as_dicts() == [{"señal": "ñ"}]


def test_the_async_optimizer_names_columns_too(dsn: str) -> None:
    async def run() -> tuple[tuple[str, ...], tuple[str, ...]]:
        async with AsyncOptimizer(dsn, settings=Settings(dsn=dsn), analysis_processes=0) as optimizer:
            first = await optimizer.execute("SELECT %s::int AS id", [1])
            second = await optimizer.execute("SELECT %s::int AS total, 1 AS more", [2])
            return first.columns, second.columns

    assert asyncio.run(run()) == (("id",), ("total", "more"))


def test_a_cached_result_keeps_its_names_not_the_drivers_result(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
    conn.execute("INSERT INTO items VALUES (1, 'one')")
    with Optimizer(dsn, settings=Settings(dsn=dsn)) as optimizer:
        stored = optimizer.execute("SELECT id, label FROM items WHERE id = %s", [1], use_cache=True)
        served = optimizer.execute("SELECT id, label FROM items WHERE id = %s", [1], use_cache=True)
        assert served is stored
        assert optimizer.stats()["hits"] == 1
        assert not _holds_a_driver_result(served)
        assert served.columns == ("id", "label")
        fresh = optimizer.execute("SELECT id, label FROM items WHERE id = %s", [1])
        assert _holds_a_driver_result(fresh)  # until its names are read
        assert fresh.columns == ("id", "label")
        assert not _holds_a_driver_result(fresh)


def _holds_a_driver_result(result: object) -> bool:
    return any(type(held).__name__ == "PGresult" for held in gc.get_referents(result))
