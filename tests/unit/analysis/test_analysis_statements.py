"""One statement per call, its kind, its placeholders and its head; errors that say what is wrong."""

from __future__ import annotations

import logging
import pickle

import pytest
import sqlglot.tokens

from queryopt import AnalysisError
from queryopt.analysis import PlaceholderStyle, StatementKind, analyze, analyze_uncached


def test_sqlglotc_is_in_use() -> None:
    assert sqlglot.tokens.SQLGLOTC_INSTALLED, "sqlglotc (a dependency) is not installed: analysis is ~3x slower"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", StatementKind.SELECT),
        ("(SELECT 1)", StatementKind.SELECT),
        ("SELECT a FROM t UNION ALL SELECT a FROM u", StatementKind.SELECT),
        ("VALUES (1)", StatementKind.SELECT),
        ("TABLE t", StatementKind.SELECT),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", StatementKind.SELECT),
        ("WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s", StatementKind.INSERT),
        ("UPDATE t SET a = 1", StatementKind.UPDATE),
        ("DELETE FROM t", StatementKind.DELETE),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", StatementKind.MERGE),
        ("CREATE TABLE t (a int)", StatementKind.DDL),
        ("CREATE EXTENSION IF NOT EXISTS pg_trgm", StatementKind.DDL),
        ("ALTER TABLE t ADD COLUMN b int", StatementKind.DDL),
        ("ALTER SEQUENCE s RESTART", StatementKind.DDL),
        ("DROP INDEX i", StatementKind.DDL),
        ("TRUNCATE t", StatementKind.DDL),
        ("COMMENT ON TABLE t IS 'x'", StatementKind.DDL),
        ("GRANT SELECT ON t TO app", StatementKind.DDL),
        ("SECURITY LABEL ON TABLE t IS NULL", StatementKind.DDL),
        ("BEGIN", StatementKind.UTILITY),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", StatementKind.UTILITY),
        ("COMMIT", StatementKind.UTILITY),
        ("ABORT", StatementKind.UTILITY),
        ("SAVEPOINT sa_savepoint_1", StatementKind.UTILITY),
        ("RELEASE SAVEPOINT sa_savepoint_1", StatementKind.UTILITY),
        ("ROLLBACK TO SAVEPOINT sa_savepoint_1", StatementKind.UTILITY),
        ("SET statement_timeout = '5s'", StatementKind.UTILITY),
        ("SHOW work_mem", StatementKind.UTILITY),
        ("RESET ALL", StatementKind.UTILITY),
        ("DISCARD ALL", StatementKind.UTILITY),
        ("LISTEN jobs", StatementKind.UTILITY),
        ("NOTIFY jobs, 'x'", StatementKind.UTILITY),
        ("VACUUM (ANALYZE) t", StatementKind.UTILITY),
        ("ANALYZE t", StatementKind.UTILITY),
        ("CHECKPOINT", StatementKind.UTILITY),
        ("CLUSTER t", StatementKind.UTILITY),
        ("EXPLAIN (FORMAT JSON) SELECT 1", StatementKind.UTILITY),
        ("CALL p(1)", StatementKind.UTILITY),
        ("DO $$ BEGIN PERFORM 1; END $$", StatementKind.UTILITY),
        ("LOCK TABLE t IN SHARE MODE", StatementKind.UTILITY),
        ("COPY t TO STDOUT", StatementKind.UTILITY),
        ("REFRESH MATERIALIZED VIEW mv", StatementKind.UTILITY),
    ],
)
def test_statement_kinds(sql: str, kind: StatementKind) -> None:
    assert analyze(sql).kind is kind


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT 1; DROP TABLE x", 2),
        ("SELECT 1; SELECT 2; SELECT 3;", 3),
        ("SAVEPOINT a; DROP TABLE x", 2),
        ("RELEASE SAVEPOINT a; SELECT 1", 2),
        ("SELECT ';' AS semi; SELECT $$;$$", 2),
    ],
)
def test_more_than_one_statement_is_refused_with_the_count(sql: str, found: int) -> None:
    with pytest.raises(AnalysisError, match=f"exactly one SQL statement, found {found}") as caught:
        analyze(sql)
    assert caught.value.sql == sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;",
        "SELECT 1;  -- done",
        "SELECT ';' /* ; */ FROM t -- ;",
        "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$",
    ],
)
def test_semicolons_in_strings_comments_and_the_end_are_one_statement(sql: str) -> None:
    assert analyze(sql).sql == sql


@pytest.mark.parametrize("sql", ["", "   \n\t", "-- only a comment", "/* a */ /*+ SeqScan(t) */", ";", " ; ; "])
def test_empty_or_comment_only_text_is_refused(sql: str) -> None:
    with pytest.raises(AnalysisError, match="no SQL statement found"):
        analyze(sql)


def test_syntax_error_carries_line_column_highlight_and_sql() -> None:
    sql = "SELECT id\nFROM\nWHERE id = 1"
    with pytest.raises(AnalysisError) as caught:
        analyze(sql)
    error = caught.value
    assert (error.line, error.column, error.highlight, error.sql) == (3, 1, "WHERE", sql)
    assert str(error).startswith("SQL syntax error at line 3, column 1 near 'WHERE'")
    assert "<Token" not in str(error)
    assert pickle.loads(pickle.dumps(error)).highlight == "WHERE"


@pytest.mark.parametrize(
    ("sql", "line", "column", "near", "says"),
    [
        # Where PostgreSQL points: the first character of the token, not its last.
        ("SELECT 1 FROM", 1, 10, "FROM", "Expected table name but got the end of the text"),
        ("SELECT * FROM t WHERE", 1, 17, "WHERE", "something is missing here"),
        ("SELECT a FROM t\nWHERE b = = 2", 2, 11, "=", "something is missing here"),
        # A first word that is no keyword is the mistake, not the token sqlglot stumbled on after it.
        ("SELEC 1", 1, 1, "SELEC", "a statement begins with a keyword"),
        ("  -- a comment\n  selct id FROM t", 2, 3, "selct", "a statement begins with a keyword"),
    ],
)
def test_syntax_errors_point_where_the_mistake_starts(sql: str, line: int, column: int, near: str, says: str) -> None:
    with pytest.raises(AnalysisError) as caught:
        analyze(sql)
    error = caught.value
    assert (error.line, error.column, error.highlight) == (line, column, near)
    assert str(error).startswith(f"SQL syntax error at line {line}, column {column} near {near!r}: {says}")
    assert "SENTINEL" not in str(error)
    assert "<class" not in str(error)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 'unterminated", "cannot be tokenized"),
        ("SELECT $$never closed", "cannot be tokenized"),
        ("hello world", "not a SQL statement"),
        ("x = 1", "not a SQL statement"),
        ("SELECT (" * 5000 + "1", "cannot be analysed"),
        ("SELEC 1", "syntax error"),
        ("INSERT INTO", "syntax error"),
    ],
)
def test_bad_text_raises_analysis_error(sql: str, message: str) -> None:
    with pytest.raises(AnalysisError, match=message) as caught:
        analyze(sql)
    assert caught.value.sql == sql


def test_non_text_is_refused() -> None:
    with pytest.raises(AnalysisError, match="must be a str"):
        analyze_uncached(b"SELECT 1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "style", "count", "names"),
    [
        ("SELECT 1", PlaceholderStyle.NONE, 0, ()),
        ("SELECT * FROM t WHERE a = %s AND b = %s", PlaceholderStyle.FORMAT, 2, ()),
        ("SELECT * FROM t WHERE a = %(a)s AND b = %(B)s OR a = %(a)s", PlaceholderStyle.PYFORMAT, 3, ("a", "B")),
        ("SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1", PlaceholderStyle.NUMERIC, 3, ("1", "2")),
        ("SELECT * FROM t WHERE a = :aid AND b = :b", PlaceholderStyle.NAMED, 2, ("aid", "b")),
        ("SELECT * FROM t WHERE a = ?", PlaceholderStyle.QMARK, 1, ()),
        ("SELECT * FROM t WHERE a = %s AND b = :b", PlaceholderStyle.MIXED, 2, ("b",)),
        ("SELECT '%s', ':x', '$1' FROM t WHERE c::text = 'a' -- %s", PlaceholderStyle.NONE, 0, ()),
        ("SELECT * FROM t WHERE id IN (%(id_1_1)s, %(id_1_2)s) LIMIT %(param_1)s", PlaceholderStyle.PYFORMAT, 3, None),
        ("CALL p(%s, %s)", PlaceholderStyle.FORMAT, 2, ()),
        ("CALL p(%(a)s, :b, $3)", PlaceholderStyle.MIXED, 3, ("a", "b", "3")),
        ("NOTIFY jobs, %s", PlaceholderStyle.FORMAT, 1, ()),
    ],
)
def test_placeholders(sql: str, style: PlaceholderStyle, count: int, names: tuple[str, ...] | None) -> None:
    analysis = analyze(sql)
    assert (analysis.placeholder_style, analysis.placeholder_count) == (style, count)
    if names is not None:
        assert analysis.placeholder_names == names


def test_head_reports_hint_block_and_other_leading_comments() -> None:
    hinted = analyze("/*+ IndexScan(o orders_pkey) */ SELECT * FROM orders o WHERE id = %s")
    assert hinted.head.hint_is_first
    assert hinted.head.hint_block is not None
    assert hinted.head.hint_block.hint_body == "IndexScan(o orders_pkey)"
    traced = analyze("/* app=shop */ /*+ SeqScan(o) */ SELECT * FROM orders o")
    assert not traced.head.hint_is_first
    assert [c.text for c in traced.head.other_comments] == ["/* app=shop */"]
    plain = analyze("SELECT 1 /*+ trailing, not a hint */")
    assert (plain.head.comments, plain.head.body_start) == ((), 0)


def test_analysis_keeps_the_exact_text() -> None:
    sql = "  select  1  "
    assert analyze(sql).sql == sql


def test_sqlglot_command_fallback_warnings_are_silenced_but_others_pass(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        analyze_uncached("VACUUM orders")
        analyze_uncached("LOCK TABLE orders IN SHARE MODE")
        logging.getLogger("sqlglot").warning("an unrelated sqlglot warning")
    assert [record.getMessage() for record in caplog.records] == ["an unrelated sqlglot warning"]


def test_doubled_percent_is_the_modulo_operator_of_pyformat_drivers() -> None:
    doubled = analyze("SELECT count(*) FROM big WHERE id %% 7 = %s AND name LIKE 'a%%'")
    single = analyze("SELECT count(*) FROM big WHERE id % 7 = %s AND name LIKE 'a%'")
    assert doubled.fingerprint == single.fingerprint
    assert [table.name for table in doubled.tables] == ["big"]
    assert doubled.placeholder_count == 1
