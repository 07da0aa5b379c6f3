from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queryopt.errors import HintError
from queryopt.hints import (
    HintSet,
    JoinHint,
    Leading,
    Parallel,
    Rows,
    ScanHint,
    ScanMethod,
    Set,
    check_identifier,
    parse_hints,
    quote_identifier,
)

# Any text PostgreSQL could hold as an identifier except what cannot stand inside a comment.
identifiers = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), min_size=1
).filter(lambda name: "/*" not in name and "*/" not in name)


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("orders", "orders"),
        ("order_items2", "order_items2"),
        ("_tmp", "_tmp"),
        ("Orders", '"Orders"'),
        ("orderS", '"orderS"'),
        ("order", '"order"'),  # reserved keyword
        ("select", '"select"'),
        ("user", '"user"'),
        ("2fast", '"2fast"'),
        ("with space", '"with space"'),
        ('say "hi"', '"say ""hi"""'),
        ("a(b)", '"a(b)"'),
        ("café", '"café"'),
        ("pct%", '"pct%"'),
        ("a$b", '"a$b"'),
    ],
)
def test_quoting_follows_postgresql(name: str, quoted: str) -> None:
    assert quote_identifier(name) == quoted


@pytest.mark.parametrize(
    "name",
    ["x*/ DROP TABLE t; /*", "a*/", "/*b", "x\x00y", "line\nbreak", "tab\there", ""],
)
def test_identifiers_that_could_escape_the_comment_are_rejected(name: str) -> None:
    with pytest.raises(HintError):
        check_identifier(name)
    with pytest.raises(HintError):
        ScanHint("IndexScan", "t", (name,))
    with pytest.raises(HintError):
        ScanHint("SeqScan", name)
    with pytest.raises(HintError):
        JoinHint("HashJoin", ("a", name))


def test_set_values_cannot_close_the_comment() -> None:
    with pytest.raises(HintError):
        Set("application_name", "x*/ SELECT 1; /*")
    with pytest.raises(HintError):
        Set("bad name; drop", "1")


@given(identifiers)
def test_any_allowed_identifier_round_trips_through_pg_hint_plan_syntax(name: str) -> None:
    hint = ScanHint("IndexScan", name, (name,))
    assert "*/" not in hint.render()
    assert "/*" not in hint.render()
    assert parse_hints(hint.render()) == HintSet.of(hint)


def test_rendering_of_every_hint_type() -> None:
    hints = HintSet.of(
        ScanHint("IndexScan", "o", ("orders_customer_idx",)),
        ScanHint(ScanMethod.NO_SEQ_SCAN, "Customers"),
        JoinHint("hashjoin", ("o", "Customers")),
        Leading(("o", "Customers", "l")),
        Rows(("o", "l"), "#", 100),
        Parallel("l", 2),
        Set("enable_nestloop", "off"),
    )
    assert hints.block() == (
        '/*+ IndexScan(o orders_customer_idx) NoSeqScan("Customers") HashJoin(o "Customers") '
        'Leading(o "Customers" l) Rows(o l #100) Parallel(l 2 soft) Set(enable_nestloop off) */'
    )


def test_directed_leading_renders_nested_pairs() -> None:
    assert Leading(("a", "b"), directed=True).render() == "Leading((a b))"
    assert Leading((("a", "b"), "c"), directed=True).render() == "Leading(((a b) c))"
    with pytest.raises(HintError, match="directed=True"):
        Leading((("a", "b"), "c"))
    with pytest.raises(HintError, match="twice"):
        Leading(("a", "a"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ScanHint("FastScan", "t"), "not one of"),
        (lambda: ScanHint("SeqScan", "t", ("t_idx",)), "takes no index names"),
        (lambda: JoinHint("HashJoin", ("a",)), "at least two"),
        (lambda: Rows(("a",), "#", 1), "at least two"),
        (lambda: Rows(("a", "b"), "/", 1), "operator"),
        (lambda: Rows(("a", "b"), "#", float("nan")), "finite"),
        (lambda: Parallel("a", -1), "workers"),
        (lambda: Leading("ab"), "sequence"),
    ],
)
def test_invalid_hints_are_refused(build: object, message: str) -> None:
    with pytest.raises(HintError, match=message):
        build()  # type: ignore[operator]


def test_merge_keeps_one_of_equal_hints_and_refuses_conflicting_scan_methods() -> None:
    first = HintSet.of(ScanHint("IndexScan", "o", ("a_idx",)), JoinHint("HashJoin", ("o", "c")))
    merged = first.merge(HintSet.of(JoinHint("HashJoin", ("c", "o")), ScanHint("SeqScan", "c")))
    assert merged.render() == "IndexScan(o a_idx) HashJoin(o c) SeqScan(c)"
    with pytest.raises(HintError, match=r"relation 'o'.*IndexScan\(o a_idx\) and IndexScan\(o b_idx\)"):
        first.merge([ScanHint("IndexScan", "o", ("b_idx",))])
    with pytest.raises(HintError, match="one scan method per relation"):
        first.merge([ScanHint("NoBitmapScan", "o")])
    with pytest.raises(HintError, match="one join method"):
        first.merge([JoinHint("NestLoop", ("c", "o"))])
    with pytest.raises(HintError, match="one Leading"):
        HintSet.of(Leading(("a", "b")), Leading(("b", "a")))
    with pytest.raises(HintError, match="one value per setting"):
        HintSet.of(Set("work_mem", "1MB"), Set("WORK_MEM", "2MB"))


def test_hint_sets_are_immutable_and_hashable() -> None:
    hints = HintSet.of(ScanHint("SeqScan", "t"))
    assert hash(hints) == hash(HintSet.of(ScanHint("seqscan", "t")))
    with pytest.raises(AttributeError):
        hints.hints = ()  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "IndexScan(o orders_customer_idx)",
        'IndexScan("Mixed Case" "Idx""q")',
        "Leading(((a b) (c d)))",
        "Leading(a b c)",
        "Rows(a b *0.5)",
        "Parallel(t 4 hard)",
        'Set(search_path "a, b")',
        "NestLoop(a b c) NoMemoize(a b)",
        'BitmapScanRegexp(t "^t_.*_idx$")',
    ],
)
def test_parse_then_render_is_stable(text: str) -> None:
    assert parse_hints(text).render() == text


@pytest.mark.parametrize("text", ["IndexScan(o", "Frobnicate(o)", "Rows(a b 10)", 'SeqScan("open)', "Leading((a b c))"])
def test_unreadable_hint_text_raises(text: str) -> None:
    with pytest.raises(HintError):
        parse_hints(text)
