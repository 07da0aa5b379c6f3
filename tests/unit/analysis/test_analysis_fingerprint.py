"""The corpus (TPC-H, pgbench, SQLAlchemy 2 shapes) and the fingerprint's invariances, by example and by property."""

from __future__ import annotations

import random
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlglot.dialects.dialect import Dialect
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType

from queryopt import AnalysisError
from queryopt.analysis import StatementKind, analyze, analyze_uncached
from tests.corpus.pgbench import PGBENCH_QUERIES
from tests.corpus.sqlalchemy_shapes import OrderLine, User, compile_for_psycopg, sqlalchemy_statements
from tests.corpus.tpch import TPCH_QUERIES

CORPUS: dict[str, str] = {
    **{f"tpch_{name}": sql for name, sql in TPCH_QUERIES.items()},
    **{f"pgbench_{name}": sql for name, sql in PGBENCH_QUERIES.items()},
    **{f"sqlalchemy_{name}": sql for name, sql in sqlalchemy_statements().items()},
}


def test_corpus_is_what_the_issue_asks_for() -> None:
    assert len(TPCH_QUERIES) == 22
    assert len(PGBENCH_QUERIES) >= 7
    assert len(sqlalchemy_statements()) >= 20


def test_every_corpus_query_analyses_with_a_distinct_fingerprint() -> None:
    fingerprints: dict[str, str] = {}
    for name, sql in CORPUS.items():
        analysis = analyze(sql)
        assert re.fullmatch(r"[0-9a-f]{16}", analysis.fingerprint), name
        assert analysis.normalized_sql
        assert "--" not in analysis.normalized_sql
        assert "/*" not in analysis.normalized_sql
        assert analysis.fingerprint not in fingerprints, f"{name} and {fingerprints[analysis.fingerprint]} collide"
        fingerprints[analysis.fingerprint] = name


def test_tpch_queries_are_cacheable_reads_of_their_tables() -> None:
    for name, sql in TPCH_QUERIES.items():
        analysis = analyze(sql)
        assert (analysis.kind, analysis.cacheable, analysis.read_only) == (StatementKind.SELECT, True, True), name
        assert analysis.tables, name
        assert not analysis.written_tables, name
    q21 = analyze(TPCH_QUERIES["q21"])
    assert [t.reference for t in q21.tables] == ["supplier", "l1", "orders", "nation", "l2", "l3"]
    assert [t.reference for t in analyze(TPCH_QUERIES["q15"]).tables] == ["lineitem", "supplier"]  # revenue0 is a CTE


def test_sqlalchemy_expanded_in_lists_and_multi_row_values_collapse() -> None:
    two = compile_for_psycopg(select(User).where(User.id.in_([1, 2])))
    five = compile_for_psycopg(select(User).where(User.id.in_([1, 2, 3, 4, 5])))
    assert two != five
    assert analyze(two).fingerprint == analyze(five).fingerprint
    assert analyze(five).placeholder_count == 5
    rows = [{"order_id": i, "product_id": i, "quantity": 1, "price": 1.0} for i in range(3)]
    assert (
        analyze(compile_for_psycopg(insert(OrderLine).values(rows[:2]))).fingerprint
        == analyze(compile_for_psycopg(insert(OrderLine).values(rows))).fingerprint
    )


SAME = [
    ("SELECT * FROM t WHERE a = 1", "select *\n  from T\n where A = 42 -- the answer"),
    ("SELECT * FROM t WHERE a = %s", "SELECT * FROM t WHERE a = $1"),
    ("SELECT * FROM t WHERE a = %(a)s", "SELECT * FROM t WHERE a = :a"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (1, 2, 3, 4, 5)"),
    ("SELECT * FROM t WHERE a = ANY(ARRAY[1, 2])", "SELECT * FROM t WHERE a = ANY(ARRAY[7])"),
    ("SELECT * FROM t WHERE (a, b) IN ((1, 2))", "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))"),
    ("INSERT INTO t VALUES (1, 'a')", "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
    ("SELECT * FROM t WHERE a > -1", "SELECT * FROM t WHERE a > 5"),
    ("SELECT * FROM t WHERE d > now() - interval '3 days'", "SELECT * FROM t WHERE d > now() - interval '1' month"),
    ("SELECT * FROM t WHERE flag = true", "SELECT * FROM t WHERE flag = false"),
    ("SELECT * FROM t WHERE d = date '2024-01-01'", "SELECT * FROM t WHERE d = DATE '1999-12-31'"),
    ("SELECT * FROM t WHERE b = x'1F'", "SELECT * FROM t WHERE b = x'FF00'"),
    ("SELECT * FROM t LIMIT 10 OFFSET 20", "SELECT * FROM t LIMIT %s OFFSET %s"),
    # a hint block is a comment: hinted and unhinted runs share statistics
    ("SELECT * FROM t a WHERE id = 1", "/*+ IndexScan(a t_pkey) */ SELECT * FROM t a WHERE id = 2"),
    ("VACUUM t", "vacuum   /* nightly */ T"),
    ("CALL p(%s)", "call P( :x )"),
    ("SAVEPOINT s1", "savepoint  S1"),
]

DIFFERENT = [
    ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a > 1"),
    ("SELECT * FROM t", "SELECT * FROM u"),
    ("SELECT * FROM t a", "SELECT * FROM t b"),  # aliases are kept: hints name them
    ("SELECT * FROM t", 'SELECT * FROM "T"'),  # quoted names are case-sensitive
    ("SELECT a, b FROM t ORDER BY 1", "SELECT a, b FROM t ORDER BY 2"),  # positions are structure
    ("SELECT a, count(*) FROM t GROUP BY 1", "SELECT a, count(*) FROM t GROUP BY 2"),
    ("SELECT CAST(a AS numeric(10, 2)) FROM t", "SELECT CAST(a AS numeric(12, 2)) FROM t"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a = 1"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (b, c)"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t WHERE a IN (SELECT a FROM u)"),
    ("SELECT * FROM t", "SELECT * FROM t LIMIT 1"),
    ("SELECT * FROM t", "SELECT * FROM t FOR UPDATE"),
    ("SELECT a FROM t", "SELECT DISTINCT a FROM t"),
    ("SELECT * FROM t WHERE a IS TRUE", "SELECT * FROM t WHERE a IS FALSE"),
    ("INSERT INTO t VALUES (1, 2)", "INSERT INTO t VALUES (1, 2), (3, now())"),
    ("VACUUM t", "VACUUM u"),
]


@pytest.mark.parametrize(("left", "right"), SAME)
def test_same_fingerprint(left: str, right: str) -> None:
    assert analyze(left).fingerprint == analyze(right).fingerprint
    assert analyze(left).normalized_sql == analyze(right).normalized_sql


@pytest.mark.parametrize(("left", "right"), DIFFERENT)
def test_different_structure_different_fingerprint(left: str, right: str) -> None:
    assert analyze(left).fingerprint != analyze(right).fingerprint


# --- property tests -----------------------------------------------------------------------------------------------

POSTGRES = Dialect.get_or_raise("postgres")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CASE_CHANGES = (str.upper, str.lower, str.title, str.swapcase)


def _placeholder_tokens(tokens: list[Token]) -> set[int]:
    """Indices of tokens that belong to ``%s``, ``%(name)s``, ``:name`` and ``$1`` (their case and text matter)."""
    marked: set[int] = set()
    for i, token in enumerate(tokens):
        if token.token_type in (TokenType.MOD, TokenType.COLON, TokenType.PARAMETER):
            j = i + 1
            while j < len(tokens) and tokens[j].start == tokens[j - 1].end + 1 and j - i <= 4:
                marked.add(j)
                j += 1
    return marked


def _type_modifier_numbers(tokens: list[Token]) -> set[int]:
    """Indices of numbers inside ``numeric(10, 2)``-like type modifiers (structure, not constants)."""
    marked: set[int] = set()
    inside: list[bool] = []
    for i, token in enumerate(tokens):
        if token.token_type is TokenType.L_PAREN:
            inside.append(i > 0 and tokens[i - 1].token_type in Parser.TYPE_TOKENS)
        elif token.token_type is TokenType.R_PAREN and inside:
            inside.pop()
        elif token.token_type is TokenType.NUMBER and inside and inside[-1]:
            marked.add(i)
    return marked


def _same_shape(rng: random.Random, text: str) -> str:
    """A different constant of the same shape: digits stay digits, letters letters ('1998-12-01' → '4071-58-36')."""
    return "".join(
        rng.choice(string.digits)
        if char.isdigit()
        else rng.choice(string.ascii_uppercase if char.isupper() else string.ascii_lowercase)
        if char.isascii() and char.isalpha()
        else char
        for char in text
    )


def disguise(sql: str, seed: int) -> str:
    """``sql`` with random whitespace, keyword/identifier case, comments and constants (one seed, many choices)."""
    rng = random.Random(seed)
    tokens = POSTGRES.tokenize(sql)
    keep_text = _placeholder_tokens(tokens) | _type_modifier_numbers(tokens)
    # After VACUUM, CALL, SHOW, … the tokenizer returns the raw rest as one string: it is not a constant.
    keep_text |= {i + 1 for i, token in enumerate(tokens) if token.token_type in POSTGRES.tokenizer_class.COMMANDS}
    parts = [rng.choice(["", "", "/*+ SeqScan(t) */ ", "/* app=shop */\n", "-- leading\n", "  \n"])]
    previous_end = -1
    for i, token in enumerate(tokens):
        gap = sql[previous_end + 1 : token.start]
        if i and gap and not gap.strip():
            gap = rng.choice([" ", "  ", "\n", "\t", "\n    ", " \r\n "])
            if rng.random() < 0.15:
                comment = "".join(rng.choices("abc XYZ+=;'\"%()", k=rng.randint(0, 12)))
                gap += rng.choice([f"/* {comment} */ ", f"-- {comment}\n"])
        parts.append(gap)
        text = sql[token.start : token.end + 1]
        if i not in keep_text:
            if token.token_type is TokenType.STRING:
                text = "'" + _same_shape(rng, token.text).replace("'", "''") + "'"
            elif token.token_type is TokenType.NUMBER:
                text = str(rng.randint(0, 10**6))
            elif token.token_type is not TokenType.IDENTIFIER and _WORD.fullmatch(text):
                text = rng.choice(_CASE_CHANGES)(text)
        parts.append(text)
        previous_end = token.end
    parts.append(sql[previous_end + 1 :])
    parts.append(rng.choice(["", "  ", "\n-- trailing", " /* end */"]))
    return "".join(parts)


@pytest.mark.parametrize("name", list(CORPUS))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_whitespace_case_comments_and_constants_keep_the_fingerprint(name: str, seed: int) -> None:
    sql = CORPUS[name]
    variant = disguise(sql, seed)
    original, changed = analyze(sql), analyze_uncached(variant)
    assert changed.fingerprint == original.fingerprint, (variant, changed.normalized_sql, original.normalized_sql)
    assert (changed.kind, changed.tables, changed.cacheable) == (original.kind, original.tables, original.cacheable)


_SQLISH_WORDS = (
    "SELECT FROM WHERE WITH RECURSIVE AS JOIN LATERAL ON USING INSERT INTO VALUES UPDATE SET DELETE MERGE MATCHED "
    "WHEN THEN CASE END CREATE TABLE DROP ALTER TRUNCATE VACUUM SAVEPOINT RELEASE CALL EXPLAIN DO UNION FOR SHARE "
    "IN EXISTS NOT NULL ARRAY interval date t u x f now() random() ( ) [ ] , ; . :: = < * + - %s %(a)s :a $1 ? "
    "1 2.5 'a' '' \" \"q\" $$ $$body$$ /* */ /*+ -- \n"
)
_SQLISH = st.sampled_from(_SQLISH_WORDS.split(" "))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_SQLISH, max_size=25).map(" ".join)))
def test_arbitrary_text_raises_nothing_but_analysis_error(text: str) -> None:
    try:
        analysis = analyze_uncached(text)
    except AnalysisError as error:
        failed_sql = error.sql
    else:
        assert len(analysis.fingerprint) == 16
        failed_sql = analysis.sql
    assert failed_sql == text
