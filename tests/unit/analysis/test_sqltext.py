from __future__ import annotations

from queryopt.analysis.sqltext import split_head


def test_plain_statement_has_no_leading_comments() -> None:
    head = split_head("  SELECT 1")
    assert head.comments == ()
    assert head.body_start == 2
    assert head.hint_block is None


def test_hint_block_first() -> None:
    sql = "/*+ IndexScan(o orders_customer_idx) */\nSELECT * FROM orders o"
    head = split_head(sql)
    assert head.hint_is_first
    assert head.hint_block is not None
    assert head.hint_block.hint_body == "IndexScan(o orders_customer_idx)"
    assert sql[head.body_start :].startswith("SELECT")


def test_hint_after_other_comment_is_found_but_not_first() -> None:
    head = split_head("-- tracing\n/* app=x */ /*+ SeqScan(t) */ SELECT 1")
    assert [c.text for c in head.other_comments] == ["-- tracing", "/* app=x */"]
    assert head.hint_block is not None
    assert not head.hint_is_first


def test_space_after_slash_star_is_not_a_hint() -> None:
    assert split_head("/* +SeqScan(t) */ SELECT 1").hint_block is None


def test_nested_block_comments() -> None:
    sql = "/* outer /* inner */ still outer */ SELECT 1"
    head = split_head(sql)
    assert [c.text for c in head.comments] == ["/* outer /* inner */ still outer */"]
    assert sql[head.body_start :] == "SELECT 1"


def test_unterminated_comment_is_left_to_the_parser() -> None:
    head = split_head("/* never closed SELECT 1")
    assert head.comments == ()
    assert head.body_start == 0


def test_comment_only_text_has_empty_body() -> None:
    sql = "-- nothing here"
    assert split_head(sql).body_start == len(sql)
