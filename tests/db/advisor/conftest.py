"""A shop database with HypoPG and a recorded workload, loaded once for the advisor's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.conftest import TestServer
from tests.db.advisor import shop


def _create(pg_server: TestServer, name: str, template: str) -> str:
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return pg_server.conninfo(name)


def _drop(pg_server: TestServer, name: str) -> None:
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def shop_db(pg_server: TestServer, template_db: str) -> Iterator[str]:
    """The name of a database holding the shop, HypoPG and the recorded workload (tests must not change it)."""
    if "hypopg" not in pg_server.features:
        pytest.skip("the test server does not have hypopg (install postgresql-15-hypopg to run this test)")
    name = f"qt_shop_{uuid.uuid4().hex[:8]}"
    dsn = _create(pg_server, name, template_db)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")
        shop.load(dsn)
        shop.record(dsn)
        yield name
    finally:
        _drop(pg_server, name)


@pytest.fixture
def shop_dsn(pg_server: TestServer, shop_db: str) -> str:
    """The shared shop database (read-only for the test)."""
    return pg_server.conninfo(shop_db)


@pytest.fixture
def own_shop_dsn(pg_server: TestServer, shop_db: str) -> Iterator[str]:
    """A copy of the shop this test may change (indexes created); its write statistics start from zero.

    The recorder stores the database's name with each slow query: the copy gets the workload recorded anew.
    """
    name = f"qt_shopcopy_{uuid.uuid4().hex[:8]}"
    dsn = _create(pg_server, name, shop_db)
    try:
        shop.record(dsn)
        yield dsn
    finally:
        _drop(pg_server, name)
