"""The analysis checked against a real PostgreSQL: its function catalog and the relations its planner scans."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import psycopg
import pytest

from queryopt import AnalysisError
from queryopt.analysis import analyze
from queryopt.analysis.functions import (
    BUILTIN_STABLE_FUNCTIONS,
    SESSION_DEPENDENT_FUNCTIONS,
    TIME_DEPENDENT_FUNCTIONS,
    VOLATILE_FUNCTIONS,
)
from tests.corpus.pgbench import PGBENCH_QUERIES
from tests.corpus.tpch import TPCH_QUERIES

Connection = psycopg.Connection[tuple[Any, ...]]

_CATALOG_FUNCTIONS = """
    SELECT p.proname, array_agg(DISTINCT p.provolatile::text), min(p.pronargs)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'pg_catalog'
    GROUP BY p.proname
"""
# Names on queryopt's lists that are SQL keywords (no pg_proc row), extension functions or newer than PostgreSQL 15.
_NOT_IN_PG15_CATALOG = {
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "dblink",
    "dblink_exec",
    "dblink_get_result",
    "dblink_send_query",
    "random_normal",
}


def _catalog(conn: Connection) -> dict[str, tuple[set[str], int]]:
    return {name: (set(volatilities), nargs) for name, volatilities, nargs in conn.execute(_CATALOG_FUNCTIONS)}


def test_allow_listed_builtins_are_immutable_or_stable_in_every_overload(conn: Connection) -> None:
    catalog = _catalog(conn)
    missing = sorted(BUILTIN_STABLE_FUNCTIONS - catalog.keys())
    volatile = sorted(name for name in BUILTIN_STABLE_FUNCTIONS & catalog.keys() if "v" in catalog[name][0])
    assert (missing, volatile) == ([], [])
    assert not BUILTIN_STABLE_FUNCTIONS & (TIME_DEPENDENT_FUNCTIONS | VOLATILE_FUNCTIONS | SESSION_DEPENDENT_FUNCTIONS)


def test_named_volatile_functions_exist(conn: Connection) -> None:
    named = (TIME_DEPENDENT_FUNCTIONS | VOLATILE_FUNCTIONS | SESSION_DEPENDENT_FUNCTIONS) - _NOT_IN_PG15_CATALOG
    assert sorted(named - _catalog(conn).keys()) == []


def test_no_volatile_catalog_function_is_cacheable(conn: Connection) -> None:
    cacheable = []
    for name, (volatilities, nargs) in _catalog(conn).items():
        if "v" not in volatilities:
            continue
        callee = name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'
        sql = f"SELECT {callee}({', '.join(['NULL'] * nargs)})"
        try:
            if analyze(sql).cacheable:
                cacheable.append(name)
        except AnalysisError:
            continue  # not analysable is not cacheable either
    assert cacheable == []


_TPCH_SCHEMA = """
CREATE TABLE region (r_regionkey int PRIMARY KEY, r_name char(25), r_comment varchar(152));
CREATE TABLE nation (n_nationkey int PRIMARY KEY, n_name char(25), n_regionkey int, n_comment varchar(152));
CREATE TABLE part (p_partkey int PRIMARY KEY, p_name varchar(55), p_mfgr char(25), p_brand char(10),
    p_type varchar(25), p_size int, p_container char(10), p_retailprice numeric(15, 2), p_comment varchar(23));
CREATE TABLE supplier (s_suppkey int PRIMARY KEY, s_name char(25), s_address varchar(40), s_nationkey int,
    s_phone char(15), s_acctbal numeric(15, 2), s_comment varchar(101));
CREATE TABLE partsupp (ps_partkey int, ps_suppkey int, ps_availqty int, ps_supplycost numeric(15, 2),
    ps_comment varchar(199), PRIMARY KEY (ps_partkey, ps_suppkey));
CREATE TABLE customer (c_custkey int PRIMARY KEY, c_name varchar(25), c_address varchar(40), c_nationkey int,
    c_phone char(15), c_acctbal numeric(15, 2), c_mktsegment char(10), c_comment varchar(117));
CREATE TABLE orders (o_orderkey int PRIMARY KEY, o_custkey int, o_orderstatus char(1), o_totalprice numeric(15, 2),
    o_orderdate date, o_orderpriority char(15), o_clerk char(15), o_shippriority int, o_comment varchar(79));
CREATE TABLE lineitem (l_orderkey int, l_partkey int, l_suppkey int, l_linenumber int, l_quantity numeric(15, 2),
    l_extendedprice numeric(15, 2), l_discount numeric(15, 2), l_tax numeric(15, 2), l_returnflag char(1),
    l_linestatus char(1), l_shipdate date, l_commitdate date, l_receiptdate date, l_shipinstruct char(25),
    l_shipmode char(10), l_comment varchar(44), PRIMARY KEY (l_orderkey, l_linenumber));
"""


def _scanned(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Relation Name"], plan["Alias"])] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found.extend(_scanned(child))
    return found


def _plan(conn: Connection, sql: str, params: dict[str, object] | None = None) -> list[tuple[str, str]]:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    return _scanned(row[0][0]["Plan"])


@pytest.mark.parametrize("name", sorted(TPCH_QUERIES))
def test_tpch_tables_match_the_relations_postgresql_scans(conn: Connection, name: str) -> None:
    conn.execute(_TPCH_SCHEMA)
    scanned = _plan(conn, TPCH_QUERIES[name])
    tables = analyze(TPCH_QUERIES[name]).tables
    assert Counter(table.name for table in tables) == Counter(relation for relation, _ in scanned)
    # EXPLAIN renames repeated unaliased relations (nation_1), so only explicit aliases compare one to one.
    assert {table.alias for table in tables if table.alias} <= {alias for _, alias in scanned}


def test_pgbench_tables_match_the_relations_postgresql_touches(conn: Connection) -> None:
    for name, sql in PGBENCH_QUERIES.items():
        if name.startswith(("init_history", "init_tellers", "init_accounts", "init_branches")):
            conn.execute(sql)
    for name in ("update_accounts", "select_balance", "update_tellers", "update_branches", "insert_history"):
        sql = PGBENCH_QUERIES[name]
        analysis = analyze(sql)
        params = dict.fromkeys(analysis.placeholder_names, 1)
        scanned = _plan(conn, re.sub(r":([a-z]+)", r"%(\1)s", sql.rstrip(";")), params)
        assert {(t.name, t.reference) for t in analysis.tables} == set(scanned), name
