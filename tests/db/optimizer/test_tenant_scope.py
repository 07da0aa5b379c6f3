"""Row-level security keyed on a setting: cached rows never cross tenants.

Tenants differ only in a session setting (``app.tenant``) that a policy reads with
``current_setting``. Two optimizers share one cache — in memory, or one Redis
namespace — and each must see only its own tenant's rows, however the setting
reached the session: the connection string, a pool ``configure`` hook, or an
explicit ``cache_scope``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from queryopt import AsyncOptimizer, Optimizer, RecorderPolicy, RedisBackend, ResultCache, Settings
from queryopt.embedded.redis import EmbeddedRedis

QUERY = "SELECT body FROM notes ORDER BY body"
ROWS = {"a": [("a: first",), ("a: second",)], "b": [("b: only",)]}


@pytest.fixture
def tenant_role(conn: psycopg.Connection[Any]) -> Iterator[str]:
    """A role (not a superuser: those bypass row-level security) reading ``notes`` through a tenant policy."""
    role = f"tenant_app_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    conn.execute("CREATE TABLE notes (tenant text NOT NULL, body text NOT NULL)")
    conn.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
    conn.execute("CREATE POLICY by_tenant ON notes USING (tenant = current_setting('app.tenant', true))")
    conn.execute("INSERT INTO notes VALUES ('a', 'a: first'), ('a', 'a: second'), ('b', 'b: only')")
    conn.execute(sql.SQL("GRANT SELECT ON notes TO {}").format(sql.Identifier(role)))
    yield role
    conn.execute("DROP TABLE notes")
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _settings() -> Settings:
    return Settings(recorder=RecorderPolicy(enabled=False))


def _tenant_dsn(dsn: str, role: str, tenant: str) -> str:
    return make_conninfo(dsn, user=role, options=f"-c app.tenant={tenant}")


def _cross_tenant_rows(make_cache: Callable[[], ResultCache], dsn: str, role: str) -> int:
    crossed = 0
    with (
        Optimizer(_tenant_dsn(dsn, role, "a"), settings=_settings(), cache=make_cache()) as a,
        Optimizer(_tenant_dsn(dsn, role, "b"), settings=_settings(), cache=make_cache()) as b,
    ):
        for _ in range(3):
            for tenant, optimizer in (("a", a), ("b", b)):
                rows = optimizer.query(QUERY, use_cache=True)
                crossed += len([row for row in rows if row not in ROWS[tenant]])
    return crossed


def test_settings_in_the_connection_string_separate_a_shared_memory_cache(dsn: str, tenant_role: str) -> None:
    shared = ResultCache()
    assert _cross_tenant_rows(lambda: shared, dsn, tenant_role) == 0
    assert shared.stats()["hits"] == 4  # still a cache: each tenant's later reads are hits


def test_settings_in_the_connection_string_separate_one_redis_namespace(
    dsn: str, tenant_role: str, redis_server: EmbeddedRedis, namespace: str
) -> None:
    backends: list[RedisBackend] = []

    def one_namespace() -> ResultCache:  # two processes would each build their own, sharing the namespace
        backends.append(RedisBackend(redis_server.url, namespace=namespace))
        return ResultCache(backend=backends[-1])

    try:
        assert _cross_tenant_rows(one_namespace, dsn, tenant_role) == 0
    finally:
        for backend in backends:
            backend.close()


def test_a_setting_applied_by_a_pool_configure_hook_separates_them(dsn: str, tenant_role: str) -> None:
    def pool_for(tenant: str) -> ConnectionPool[Any]:
        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT set_config('app.tenant', %s, false)", [tenant])
            conn.commit()

        return ConnectionPool(make_conninfo(dsn, user=tenant_role), configure=configure, open=True, min_size=1)

    shared = ResultCache()
    with pool_for("a") as pool_a, pool_for("b") as pool_b:
        a = Optimizer(pool=pool_a, settings=_settings(), cache=shared)
        b = Optimizer(pool=pool_b, settings=_settings(), cache=shared)
        try:
            assert a.query(QUERY, use_cache=True) == ROWS["a"]
            assert b.query(QUERY, use_cache=True) == ROWS["b"]
            assert a.query(QUERY, use_cache=True) == ROWS["a"]
        finally:
            a.close()
            b.close()


def test_the_async_optimizer_separates_them_too(dsn: str, tenant_role: str) -> None:
    shared = ResultCache()

    async def body() -> None:
        async with (
            AsyncOptimizer(_tenant_dsn(dsn, tenant_role, "a"), settings=_settings(), cache=shared) as a,
            AsyncOptimizer(_tenant_dsn(dsn, tenant_role, "b"), settings=_settings(), cache=shared) as b,
        ):
            for _ in range(2):
                assert await a.query(QUERY, use_cache=True) == ROWS["a"]
                assert await b.query(QUERY, use_cache=True) == ROWS["b"]

    asyncio.run(body())


def test_an_explicit_cache_scope_separates_calls_and_optimizers(
    dsn: str, tenant_role: str, conn: psycopg.Connection[Any]
) -> None:
    # What queryopt cannot see (a tenant chosen per call inside the statement, a setting a function reads):
    # the application names the scope itself.
    count = "SELECT count(*) FROM counted"
    conn.execute("CREATE TABLE counted (n int)")
    with Optimizer(dsn, settings=_settings()) as optimizer:
        assert optimizer.query(count, use_cache=True, cache_scope="tenant-a") == [(0,)]
        conn.execute("INSERT INTO counted VALUES (1)")  # behind queryopt's back: no invalidation
        assert optimizer.query(count, use_cache=True, cache_scope="tenant-b") == [(1,)]
        assert optimizer.query(count, use_cache=True, cache_scope="tenant-a") == [(0,)]  # a's own entry
        assert optimizer.query(count, use_cache=True) == [(1,)]
    shared = ResultCache()
    with (
        Optimizer(dsn, settings=_settings(), cache=shared, cache_scope="a") as a,
        Optimizer(dsn, settings=_settings(), cache=shared, cache_scope="b") as b,
    ):
        assert a.query(count, use_cache=True) == [(1,)]
        conn.execute("INSERT INTO counted VALUES (2)")
        assert b.query(count, use_cache=True) == [(2,)]
