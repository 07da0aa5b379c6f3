"""Fixtures shared by the whole suite.

Database tests get a real PostgreSQL: the suite starts a throwaway cluster
(queryopt.embedded.postgres) once per session, or uses ``QUERYOPT_TEST_DSN`` when set.
Each test that asks for ``dsn`` gets a fresh database cloned from a template.
Tests marked with a server feature (``pg_hint_plan``, ``hypopg``,
``pg_stat_statements``) skip with a reason when the server lacks it.

Redis tests get a real ``redis-server`` the same way (queryopt.embedded.redis,
a unix socket in a temporary folder), once per session; each test gets its own
namespace in it. They skip with a reason only where no redis-server exists.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.embedded.redis import EmbeddedRedis, find_redis_server
from queryopt.errors import ServerError

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")

TEMPLATE_DB = "queryopt_template"
FEATURE_MARKERS = ("pg_hint_plan", "hypopg", "pg_stat_statements")


@dataclass
class TestServer:
    """Where the database tests connect: ``conninfo(dbname)`` builds a connection string."""

    __test__ = False
    base: str
    features: frozenset[str]

    def conninfo(self, dbname: str = "postgres") -> str:
        return make_conninfo(self.base, dbname=dbname)


def _features(conninfo: str) -> frozenset[str]:
    found = set()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute(
            "SELECT 1 FROM pg_settings WHERE name = 'pg_hint_plan.enable_hint' AND setting = 'on'"
        ).fetchone():
            found.add("pg_hint_plan")
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone():
            found.add("hypopg")
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        if preload and "pg_stat_statements" in str(preload[0]):
            found.add("pg_stat_statements")
    return frozenset(found)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestServer]:
    external = os.environ.get("QUERYOPT_TEST_DSN")
    if external:
        yield TestServer(external, _features(external))
        return
    with EmbeddedPostgres() as server:
        base = server.conninfo()
        yield TestServer(base, _features(base))


@pytest.fixture(scope="session")
def template_db(pg_server: TestServer) -> str:
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    if "pg_stat_statements" in pg_server.features:
        with psycopg.connect(pg_server.conninfo(TEMPLATE_DB), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return TEMPLATE_DB


@pytest.fixture
def dsn(pg_server: TestServer, template_db: str) -> Iterator[str]:
    """A connection string to a fresh, empty database of this test's own."""
    name = f"qt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template_db))
        )
    try:
        yield pg_server.conninfo(name)
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to this test's database."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if f"{os.sep}tests{os.sep}db{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def _skip_without_server_feature(request: pytest.FixtureRequest) -> None:
    wanted = [name for name in FEATURE_MARKERS if request.node.get_closest_marker(name)]
    if not wanted:
        return
    server: TestServer = request.getfixturevalue("pg_server")
    for name in wanted:
        if name not in server.features:
            pytest.skip(f"the test server does not have {name} (install/preload it to run this test)")


def redis_server_binary() -> str:
    """The redis-server to run, or a skip saying how to get one."""
    try:
        return str(find_redis_server())
    except ServerError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A redis-server for the whole session (unix socket, no persistence)."""
    with EmbeddedRedis(binary=redis_server_binary()) as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, which the test may stop and restart."""
    with EmbeddedRedis(binary=redis_server_binary()) as server:
        yield server


@pytest.fixture
def namespace() -> str:
    """A Redis namespace of this test's own."""
    return f"test-{uuid.uuid4().hex[:12]}"
