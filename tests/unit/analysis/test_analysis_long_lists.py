"""Long IN lists and ARRAY[...] literals: analysis cost grows linearly and the analysis does not change with length."""

from __future__ import annotations

import gc
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queryopt.analysis import StatementKind, analyze_uncached, analyzer
from queryopt.analysis.literal_lists import collapse_literal_lists


def _in_list(count: int, *, template: str = "SELECT o.id FROM orders o WHERE o.customer_id IN ({})") -> str:
    return template.format(", ".join(str(i) for i in range(count)))


def _array(count: int) -> str:
    items = ", ".join(f"'sku-{i}'" for i in range(count))
    return f"SELECT * FROM items WHERE sku = ANY(ARRAY[{items}]) AND shop = %s"


def _placeholders(count: int) -> str:
    """SQLAlchemy's expanding IN: one placeholder per item, which must all be counted (no shortening)."""
    return "SELECT * FROM users WHERE id IN (" + ", ".join(f"%(id_{i})s" for i in range(count)) + ")"


def _best_seconds(sql: str, runs: int = 5) -> float:
    # The garbage collector's full passes grow with the whole heap (other tests' objects included):
    # noise here, not the growth of the analysis being measured.
    gc.collect()
    gc.disable()
    try:
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            analyze_uncached(sql)
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        gc.enable()


@pytest.mark.parametrize("build", [_in_list, _array, _placeholders], ids=["IN list", "ARRAY", "placeholders"])
def test_analysis_cost_grows_linearly_with_list_length(build: object) -> None:
    assert callable(build)
    small, large = build(5_000), build(20_000)
    analyze_uncached(small)  # warm sqlglot's lazy tables
    ratio = _best_seconds(large) / _best_seconds(small)
    # Four times the items: linear is ~4, quadratic ~16 (before the fix: 10k literals 2.8 s, 40k 44 s).
    # The bound leaves room for a busy machine.
    assert ratio < 10, f"{len(large)} characters took {ratio:.1f}x the time of {len(small)}"


@pytest.mark.parametrize("build", [_in_list, _array], ids=["IN list", "ARRAY"])
def test_analysis_of_a_list_does_not_depend_on_its_length(build: object) -> None:
    assert callable(build)
    analyses = [analyze_uncached(build(count)) for count in (1, 2, 50, 5_000, 20_000)]
    first = analyses[0]
    for analysis in analyses[1:]:
        assert analysis.fingerprint == first.fingerprint
        assert analysis.normalized_sql == first.normalized_sql
        assert analysis.tables == first.tables
        assert analysis.kind is first.kind is StatementKind.SELECT
        assert analysis.placeholder_count == first.placeholder_count
        assert analysis.cacheable == first.cacheable


def test_analysis_keeps_the_original_text_and_its_syntax_error_positions() -> None:
    sql = _in_list(5_000)
    assert analyze_uncached(sql).sql == sql
    broken = _in_list(5_000) + " AND ("
    with pytest.raises(Exception, match=r"line 1, column") as caught:
        analyze_uncached(broken)
    assert getattr(caught.value, "sql", None) == broken
    assert getattr(caught.value, "column", 0) > 5_000  # the column of the original text, not a collapsed one


def test_lists_that_are_not_all_plain_literals_are_analysed_whole() -> None:
    mixed = _in_list(3_000).replace("(0, ", "(0, o.shop_id, ", 1)
    assert collapse_literal_lists(mixed) == mixed
    with_placeholders = _in_list(3_000).replace("(0, ", "(%s, ", 1)
    assert analyze_uncached(with_placeholders).placeholder_count == 1
    assert collapse_literal_lists(with_placeholders) == with_placeholders
    casted = _in_list(3_000).replace("2999)", "2999::int)")
    assert collapse_literal_lists(casted) == casted


@pytest.mark.parametrize(
    "wrapper",
    [
        "SELECT 'x IN ({})' AS label, 1 FROM t",  # inside a string
        'SELECT "IN ({})" FROM t',  # inside a quoted identifier
        "SELECT $tag$ IN ({}) $tag$ FROM t",  # inside a dollar-quoted string
        "SELECT 1 FROM t -- IN ({})\n",  # inside a line comment
        "SELECT 1 FROM t /* a /* nested */ IN ({}) */",  # inside a nested block comment
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN ({})",  # a partition bound, not an IN list
    ],
)
def test_text_that_only_looks_like_a_list_is_left_alone(wrapper: str) -> None:
    items = ", ".join(str(i) for i in range(3_000))
    sql = wrapper.format(items)
    assert collapse_literal_lists(sql) == sql


def test_a_list_after_a_string_holding_a_quote_and_a_bracket_is_still_collapsed() -> None:
    items = ", ".join(f"'it''s, {i})'" for i in range(3_000))
    sql = f"SELECT * FROM t WHERE note = E'a\\'b' AND label IN ({items}) AND id NOT IN (-1, 2.5, 3e4, .5)"
    collapsed = collapse_literal_lists(sql)
    assert collapsed == "SELECT * FROM t WHERE note = E'a\\'b' AND label IN ('it''s, 0)') AND id NOT IN (-1)"
    assert analyze_uncached(collapsed).fingerprint == analyze_uncached(sql).fingerprint


_ITEMS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda value: repr(abs(value))),
    st.text(alphabet="ab ,()'[]%s$-/*", max_size=8).map(lambda text: "'" + text.replace("'", "''") + "'"),
)


@settings(max_examples=200)
@given(items=st.lists(_ITEMS, min_size=1, max_size=40), shape=st.sampled_from(["IN ({})", "= ANY(ARRAY[{}])"]))
def test_a_shortened_text_analyses_exactly_like_the_whole_text(items: list[str], shape: str) -> None:
    padding = "/* " + "x" * 2100 + " */ "  # long enough to be shortened
    sql = padding + "SELECT t.a FROM t WHERE t.b " + shape.format(", ".join(items)) + " AND t.c = %s"
    shortened = analyze_uncached(sql)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analyzer, "_LONG_TEXT", 10**9)  # the same text, parsed whole
        assert analyze_uncached(sql) == shortened
