"""Whether a result may be cached, and why not: one row per reason, plus what stays cacheable."""

from __future__ import annotations

import pytest

from queryopt.analysis import analyze
from queryopt.analysis.functions import unclassified_reason
from queryopt.config import CachePolicy

UNCACHEABLE: list[tuple[str, tuple[str, ...]]] = [
    # not a read
    ("INSERT INTO t (a) VALUES (%s)", ("not a read: insert statement",)),
    ("UPDATE t SET a = 1", ("not a read: update statement",)),
    ("DELETE FROM t", ("not a read: delete statement",)),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", ("not a read: merge statement",)),
    ("CREATE TABLE t (a int)", ("not a read: ddl statement",)),
    ("TRUNCATE t", ("not a read: ddl statement",)),
    ("VACUUM t", ("not a read: utility statement",)),
    ("SET search_path TO app", ("not a read: utility statement",)),
    ("SAVEPOINT sp1", ("not a read: utility statement",)),
    # locks, INTO, writing CTEs
    ("SELECT * FROM t WHERE id = 1 FOR UPDATE", ("SELECT … FOR UPDATE/SHARE locks rows",)),
    ("SELECT * FROM t FOR SHARE NOWAIT", ("SELECT … FOR UPDATE/SHARE locks rows",)),
    ("SELECT * FROM (SELECT * FROM t FOR NO KEY UPDATE) s", ("SELECT … FOR UPDATE/SHARE locks rows",)),
    ("SELECT * INTO copy_t FROM t", ("SELECT INTO creates a table",)),
    ("WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone", ("data-modifying CTE (DELETE in WITH)",)),
    ("WITH n AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM n", ("data-modifying CTE (INSERT in WITH)",)),
    ("WITH u AS (UPDATE t SET a = 1 RETURNING id) SELECT * FROM u", ("data-modifying CTE (UPDATE in WITH)",)),
    # volatile functions
    ("SELECT random()", ("volatile function random()",)),
    ("SELECT gen_random_uuid()", ("volatile function gen_random_uuid()",)),
    ("SELECT nextval('order_ids')", ("volatile function nextval()",)),
    ("SELECT setval('order_ids', 10)", ("volatile function setval()",)),
    ("SELECT currval('order_ids')", ("volatile function currval()",)),
    ("SELECT pg_sleep(1)", ("volatile function pg_sleep()",)),
    ("SELECT txid_current()", ("volatile function txid_current()",)),
    ("SELECT pg_advisory_lock(42)", ("volatile function pg_advisory_lock()",)),
    ("SELECT pg_try_advisory_xact_lock(42)", ("volatile function pg_try_advisory_xact_lock()",)),
    ("SELECT uuid_generate_v4()", ("volatile function uuid_generate_v4()",)),
    ("SELECT set_config('a.b', 'c', false)", ("volatile function set_config()",)),
    ("SELECT * FROM t ORDER BY random() LIMIT 1", ("volatile function random()",)),
    # time-dependent functions and literals
    ("SELECT now()", ("time-dependent function now()",)),
    ("SELECT CURRENT_TIMESTAMP", ("time-dependent function now()",)),
    ("SELECT * FROM t WHERE day = current_date", ("time-dependent function current_date",)),
    ("SELECT current_time", ("time-dependent function current_time",)),
    ("SELECT localtimestamp", ("time-dependent function localtimestamp",)),
    ("SELECT localtime", ("time-dependent function localtime",)),
    ("SELECT clock_timestamp()", ("time-dependent function clock_timestamp()",)),
    ("SELECT statement_timestamp()", ("time-dependent function statement_timestamp()",)),
    ("SELECT transaction_timestamp()", ("time-dependent function transaction_timestamp()",)),
    ("SELECT timeofday()", ("time-dependent function timeofday()",)),
    ("SELECT pg_catalog.now()", ("time-dependent function now()",)),
    ("SELECT age(born) FROM people", ("time-dependent function age()",)),
    ("SELECT * FROM t WHERE created > 'now'::timestamptz", ("time-dependent literal 'now'",)),
    ("SELECT * FROM t WHERE day = date 'today'", ("time-dependent literal 'today'",)),
    # session-dependent functions
    ("SELECT current_setting('app.tenant')", ("session-dependent function current_setting()",)),
    ("SELECT pg_backend_pid()", ("session-dependent function pg_backend_pid()",)),
    # functions queryopt cannot classify
    ("SELECT my_tax(total) FROM orders", (unclassified_reason("my_tax"),)),
    ("SELECT billing.lower(name) FROM t", (unclassified_reason("billing.lower"),)),
    ("SELECT * FROM report_rows(%s) r", (unclassified_reason("report_rows"),)),
    # random samples and system catalogs
    ("SELECT * FROM t TABLESAMPLE BERNOULLI (5)", ("TABLESAMPLE without REPEATABLE returns different rows each time",)),
    ("SELECT * FROM pg_stat_activity", ("system catalog pg_stat_activity changes without writes queryopt sees",)),
    (
        "SELECT * FROM information_schema.tables",
        ("system catalog information_schema.tables changes without writes queryopt sees",),
    ),
    # several reasons at once, each once
    (
        "INSERT INTO log (at, id) VALUES (now(), nextval('ids')), (now(), nextval('ids'))",
        ("not a read: insert statement", "time-dependent function now()", "volatile function nextval()"),
    ),
]

CACHEABLE = [
    "SELECT 1",
    "SELECT id, name FROM users WHERE id = %s",
    "SELECT count(*), sum(total), avg(total), max(day) FROM orders GROUP BY cid HAVING count(*) > 2",
    "SELECT lower(name), upper(name), length(name), substring(name FROM 1 FOR 2), coalesce(a, b) FROM t",
    "SELECT jsonb_build_object('a', a), to_jsonb(t), jsonb_agg(x) FROM t GROUP BY a",
    "SELECT date_trunc('day', ts), extract(year FROM ts), age(ts, born), to_char(ts, 'YYYY') FROM t",
    "SELECT row_number() OVER (PARTITION BY a ORDER BY b), lag(b) OVER w FROM t WINDOW w AS (ORDER BY b)",
    "SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (42)",
    "SELECT * FROM generate_series(1, 10) g JOIN t ON t.id = g",
    "SELECT * FROM t WHERE day > date '2024-01-01' - interval '3 days'",
    "WITH x AS (SELECT * FROM t) SELECT * FROM x",
    "SELECT a FROM t UNION SELECT a FROM u",
    "VALUES (1, 2), (3, 4)",
]


@pytest.mark.parametrize(("sql", "reasons"), UNCACHEABLE, ids=[case[0][:60] for case in UNCACHEABLE])
def test_each_reason_is_named(sql: str, reasons: tuple[str, ...]) -> None:
    analysis = analyze(sql)
    assert analysis.cacheable is False
    assert analysis.uncacheable_reasons == reasons


@pytest.mark.parametrize("sql", CACHEABLE)
def test_plain_reads_are_cacheable(sql: str) -> None:
    analysis = analyze(sql)
    assert (analysis.cacheable, analysis.uncacheable_reasons, analysis.read_only) == (True, (), True)


@pytest.mark.parametrize(
    ("sql", "read_only"),
    [
        ("SELECT * FROM t", True),
        ("SELECT random(), now() FROM t", True),  # uncacheable, but safe to re-run
        ("SELECT nextval('s')", False),
        ("SELECT pg_advisory_lock(1)", False),
        ("SELECT my_func()", False),  # an unknown function may write
        ("SELECT * FROM t FOR UPDATE", False),
        ("SELECT * INTO u FROM t", False),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", False),
        ("INSERT INTO t VALUES (1)", False),
        ("SHOW work_mem", False),
    ],
)
def test_read_only(sql: str, read_only: bool) -> None:
    assert analyze(sql).read_only is read_only


def test_volatile_and_unclassified_functions_are_listed_once_each() -> None:
    analysis = analyze("SELECT now(), random(), now(), f(1), f(2), s.g(), current_setting('x'), lower('A')")
    assert analysis.volatile_functions == ("now", "random", "current_setting")
    assert analysis.unclassified_functions == ("f", "s.g")


def test_cacheable_with_vouched_functions() -> None:
    analysis = analyze("SELECT my_tax(total), Billing.Rate(day) FROM orders")
    assert analysis.cacheable is False
    assert analysis.cacheable_with(frozenset()) is False
    assert analysis.cacheable_with(frozenset({"my_tax"})) is False
    assert analysis.cacheable_with(frozenset({"my_tax", "billing.rate"})) is True
    assert analysis.cacheable_with(frozenset({"my_tax", "rate"})) is True  # a bare name covers qualified calls
    assert analysis.cacheable_with(CachePolicy(stable_functions=frozenset({"MY_TAX", "Rate"})).stable_functions)


def test_cacheable_with_cannot_override_other_reasons() -> None:
    assert analyze("SELECT my_tax(total), now() FROM orders").cacheable_with({"my_tax"}) is False
    assert analyze("SELECT my_tax(total) FROM orders FOR UPDATE").cacheable_with({"my_tax"}) is False
    assert analyze("UPDATE orders SET tax = my_tax(total)").cacheable_with({"my_tax"}) is False
    assert analyze("SELECT 1").cacheable_with(frozenset()) is True


@pytest.mark.parametrize(
    ("sql", "unlisted"),
    [
        ("SELECT * FROM t", False),
        ("UPDATE t SET a = 1", False),
        ("SELECT my_func()", True),
        ("SELECT dblink_exec('loopback', 'DELETE FROM t')", True),
        ("CALL refresh_all()", True),
        ("DO $$ BEGIN DELETE FROM t; END $$", True),
        ("EXECUTE prepared_delete(1)", True),
        ("EXPLAIN (ANALYZE) DELETE FROM t", True),
        ("EXPLAIN SELECT * FROM t", False),
        ("DROP TABLE t CASCADE", True),
        ("REFRESH MATERIALIZED VIEW mv", False),
        ("VACUUM t", False),
        ("COPY t FROM STDIN", False),
    ],
)
def test_may_write_unlisted(sql: str, unlisted: bool) -> None:
    assert analyze(sql).may_write_unlisted is unlisted
