from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queryopt.analysis.sqltext import split_head
from queryopt.errors import HintError
from queryopt.hints import HintSet, JoinHint, Leading, ScanHint, Set, apply_hint_block, existing_hints

names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}|[A-Z][A-Za-z ]{0,6}", fullmatch=True)
scan_hints = st.builds(
    ScanHint,
    st.sampled_from(["IndexScan", "BitmapScan", "IndexOnlyScan"]),
    names,
    st.lists(names, max_size=2).map(tuple),
)
hint_sets = st.lists(scan_hints, min_size=1, max_size=4, unique_by=lambda hint: hint.relation).map(
    lambda hints: HintSet(tuple(hints))
)
bodies = st.sampled_from(
    [
        "SELECT * FROM orders o WHERE o.customer_id = %s",
        "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent",
        "select 1 /* trailing */",
        "UPDATE t SET v = v + 1 WHERE id = %(id)s -- done",
        "EXPLAIN SELECT * FROM t",
        "SELECT '/*+ not a hint */' AS text",
    ]
)
plain_comments = st.sampled_from(
    ["", "/* app=shop,route=/orders */ ", "-- traceparent=00-abc\n", "/* a /* nested */ b */\n"]
)


@given(hint_sets, plain_comments, bodies, st.booleans())
def test_block_first_exactly_once_and_original_text_follows(
    hints: HintSet, comment: str, body: str, has_params: bool
) -> None:
    sql = comment + body
    out = apply_hint_block(sql, hints, has_params=has_params)
    assert out.startswith("/*+ ")
    head = split_head(out)
    assert head.hint_is_first
    assert [c for c in head.comments if c.is_hint_block] == [head.comments[0]]
    block = head.comments[0].text
    assert out[len(block) :].lstrip(" ") == sql or out[len(block) :] == " " + sql
    assert out.endswith(sql)
    assert existing_hints(out, has_params=has_params) == hints


def test_sqlcommenter_comment_is_kept_after_the_block() -> None:
    sql = "/*controller='orders',framework='django'*/ SELECT * FROM orders o"
    out = apply_hint_block(sql, HintSet.of(ScanHint("IndexScan", "o", ("orders_pkey",))), has_params=False)
    assert out == "/*+ IndexScan(o orders_pkey) */ " + sql


def test_existing_leading_hint_block_is_merged_not_left_second() -> None:
    sql = "/*+ HashJoin(o c) */\nSELECT * FROM orders o JOIN customers c USING (customer_id)"
    out = apply_hint_block(sql, HintSet.of(ScanHint("SeqScan", "c")), has_params=False)
    assert out == "/*+ HashJoin(o c) SeqScan(c) */ SELECT * FROM orders o JOIN customers c USING (customer_id)"


def test_dead_hint_block_behind_a_tracing_comment_is_revived_in_front() -> None:
    sql = "/* trace=1 */ /*+ SeqScan(t) */ SELECT * FROM t"
    assert apply_hint_block(sql, HintSet(), has_params=False) == "/*+ SeqScan(t) */ /* trace=1 */ SELECT * FROM t"
    merged = apply_hint_block(sql, HintSet.of(JoinHint("NestLoop", ("t", "u"))), has_params=False)
    assert merged == "/*+ SeqScan(t) NestLoop(t u) */ /* trace=1 */ SELECT * FROM t"


def test_hint_block_after_leading_keywords_is_merged_and_body_left_alone() -> None:
    sql = "SELECT /*+ SeqScan(t) */ * FROM t"
    out = apply_hint_block(sql, HintSet.of(Leading(("t", "u"))), has_params=False)
    assert out == "/*+ SeqScan(t) Leading(t u) */ " + sql


def test_conflict_with_the_querys_own_hint_is_an_error() -> None:
    sql = "/*+ IndexScan(o a_idx) */ SELECT * FROM orders o"
    with pytest.raises(HintError, match="conflicting"):
        apply_hint_block(sql, HintSet.of(ScanHint("IndexScan", "o", ("b_idx",))), has_params=False)


def test_unreadable_existing_block_is_an_error_not_dropped() -> None:
    with pytest.raises(HintError, match="cannot be merged"):
        apply_hint_block("/*+ IndexScan(o */ SELECT 1", HintSet.of(ScanHint("SeqScan", "o")), has_params=False)


def test_percent_is_escaped_only_with_parameters() -> None:
    hints = HintSet.of(ScanHint("IndexScan", "t", ("t%idx",)), Set("application_name", "50%"))
    with_params = apply_hint_block("SELECT * FROM t WHERE v = %s", hints, has_params=True)
    assert with_params.startswith('/*+ IndexScan(t "t%%idx") Set(application_name "50%%") */ ')
    without = apply_hint_block("SELECT * FROM t WHERE v = 1", hints, has_params=False)
    assert without.startswith('/*+ IndexScan(t "t%idx") Set(application_name "50%") */ ')
    # An existing escaped block is read back unescaped and not escaped twice.
    again = apply_hint_block(with_params, HintSet.of(JoinHint("HashJoin", ("t", "u"))), has_params=True)
    assert again.startswith('/*+ IndexScan(t "t%%idx") Set(application_name "50%%") HashJoin(t u) */ ')


def test_nothing_to_do_returns_the_same_text() -> None:
    for sql in ["SELECT 1", "/*+ SeqScan(t) */ SELECT 1", "SELECT /*+ SeqScan(t) */ 1"]:
        assert apply_hint_block(sql, HintSet(), has_params=False) is sql


def test_works_in_front_of_with_and_explain() -> None:
    hints = HintSet.of(ScanHint("SeqScan", "t"))
    assert apply_hint_block("WITH x AS (SELECT 1) SELECT * FROM t", hints, has_params=False).startswith(
        "/*+ SeqScan(t) */ WITH"
    )
    assert apply_hint_block("EXPLAIN (ANALYZE) SELECT * FROM t", hints, has_params=False).startswith(
        "/*+ SeqScan(t) */ EXPLAIN (ANALYZE)"
    )


@given(hint_sets, st.text().filter(lambda body: "/*+" not in body and not split_head(body).comments), st.booleans())
def test_any_text_without_leading_comments_follows_the_block_byte_for_byte(
    hints: HintSet, body: str, has_params: bool
) -> None:
    out = apply_hint_block(body, hints, has_params=has_params)
    block = hints.block().replace("%", "%%") if has_params else hints.block()
    assert out in (block + " " + body, block + body)
    assert out.count("/*+") == 1
