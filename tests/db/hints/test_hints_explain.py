"""Resolution against a real catalog, explain() and ``queryopt explain`` on vanilla PostgreSQL behaviour."""

from __future__ import annotations

import json

import psycopg
import pytest

from queryopt.analysis import analyze
from queryopt.cli import main
from queryopt.config import HintMode
from queryopt.errors import HintError
from queryopt.hints import Catalog, IndexUsage, explain, hint_plan_active, resolve_hints

Conn = psycopg.Connection[tuple[object, ...]]
QUERY = "SELECT * FROM items i WHERE i.v < 5"


@pytest.fixture
def items(conn: Conn) -> Conn:
    # Half the rows match: the planner prefers a sequential scan over the index on v.
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, payload text)")
    conn.execute("INSERT INTO items SELECT g, g % 10, repeat('x', 40) FROM generate_series(1, 5000) AS g")
    conn.execute("CREATE INDEX items_v_idx ON items (v)")
    conn.execute("ANALYZE items")
    return conn


def test_index_name_alone_resolves_through_the_alias(items: Conn) -> None:
    catalog = Catalog.load(items)
    hints = resolve_hints(analyze("SELECT * FROM items AS it WHERE it.v = 1"), "items_v_idx", catalog)
    assert hints.render() == "IndexScan(it items_v_idx)"


def test_catalog_errors_name_what_exists(items: Conn) -> None:
    catalog = Catalog.load(items)
    with pytest.raises(HintError, match=r"'items_vv_idx' is not an index of public.items .*items_pkey \(btree on id\)"):
        resolve_hints(analyze(QUERY), {"i": "items_vv_idx"}, catalog)
    items.execute("CREATE TABLE other (id int PRIMARY KEY)")
    with pytest.raises(HintError, match=r"'other_pkey' is on public\.other, which the query does not read"):
        resolve_hints(analyze(QUERY), "other_pkey", catalog, conn=items)


def test_index_created_after_loading_is_found_by_one_reload(items: Conn) -> None:
    catalog = Catalog.load(items)
    items.execute("CREATE INDEX items_payload_idx ON items (payload)")
    hints = resolve_hints(analyze(QUERY), {"items": "items_payload_idx"}, catalog, conn=items)
    assert hints.render() == "IndexScan(i items_payload_idx)"
    assert catalog.version == 2


def test_planner_settings_explain_reports_the_index_scan(items: Conn, dsn: str) -> None:
    comparison = explain(dsn, QUERY, hints="items_v_idx", mode=HintMode.PLANNER_SETTINGS)
    assert comparison.mode is HintMode.PLANNER_SETTINGS
    assert comparison.before.nodes[0].node_type == "Seq Scan"
    assert (comparison.after.nodes[0].node_type, comparison.after.nodes[0].index) == ("Index Scan", "items_v_idx")
    assert comparison.index_usage == (IndexUsage("i", "items_v_idx", used_before=False, used_after=True),)
    assert comparison.settings == (("enable_seqscan", "off"), ("enable_bitmapscan", "off"))
    assert comparison.hinted_sql == QUERY
    # The planner preferred the sequential scan because it estimated it cheaper.
    assert comparison.after.total_cost > comparison.before.total_cost > 0
    assert comparison.plan_changed
    assert not comparison.analyzed
    assert comparison.before.execution_time_ms is None
    assert any("whole statement" in note for note in comparison.notes)
    # Nothing leaked into the session: the same connection plans a sequential scan again.
    assert items.execute("SHOW enable_seqscan").fetchone() == ("on",)


def test_statement_wide_settings_that_disable_a_needed_scan_are_flagged(items: Conn) -> None:
    items.execute("CREATE TABLE tags (item_id int, tag text)")  # no index: only a sequential scan can read it
    items.execute("INSERT INTO tags SELECT g, 't' FROM generate_series(1, 100) AS g")
    items.execute("ANALYZE tags")
    sql = "SELECT * FROM items i JOIN tags t ON t.item_id = i.id WHERE i.v < 5"
    comparison = explain(items, sql, hints="items_v_idx", mode=HintMode.PLANNER_SETTINGS)
    assert any("Seq Scan on tags t" in note and "not comparable" in note for note in comparison.notes)


def test_explain_with_parameters_and_analyze_leaves_no_trace(items: Conn) -> None:
    comparison = explain(
        items,
        "DELETE FROM items WHERE v < %s",
        [5],
        hints={"items": "items_v_idx"},
        analyze=True,
        mode=HintMode.PLANNER_SETTINGS,
    )
    assert comparison.analyzed
    assert comparison.before.execution_time_ms is not None
    assert comparison.after.uses_index("items_v_idx", "items")
    assert items.execute("SELECT count(*) FROM items").fetchone() == (5000,)


def test_explain_refuses_explain_and_bad_hints(items: Conn) -> None:
    with pytest.raises(HintError, match="statement itself"):
        explain(items, "/* x */ EXPLAIN " + QUERY)
    with pytest.raises(HintError, match="not a ddl statement"):
        explain(items, "CREATE TABLE nope (id int)")
    with pytest.raises(HintError, match="relation 'items_1' is not in the query"):
        explain(items, QUERY, hints={"items_1": "items_v_idx"})


@pytest.mark.pg_hint_plan
def test_pg_hint_plan_explain_reports_the_hint_used(items: Conn) -> None:
    comparison = explain(items, QUERY, hints="items_v_idx")
    assert comparison.mode is HintMode.PG_HINT_PLAN
    assert comparison.hinted_sql == "/*+ IndexScan(i items_v_idx) */ " + QUERY
    assert comparison.after.nodes[0].index == "items_v_idx"
    assert comparison.hint_report is not None
    assert comparison.hint_report.used == ("IndexScan(i items_v_idx)",)
    assert comparison.hint_report.not_used == ()


def test_cli_prints_the_comparison(
    items: Conn, dsn: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    status = main(["explain", QUERY, "--hint", "items_v_idx", "--dsn", dsn, "--mode", "planner_settings"])
    out = capsys.readouterr().out
    assert status == 0
    assert "IndexScan(i items_v_idx)" in out
    assert "enable_seqscan=off" in out
    assert "Seq Scan on items i" in out
    assert "Index Scan using items_v_idx on items i" in out
    assert "hinted indexes" in out


@pytest.mark.parametrize("as_json", [["--format", "json"], ["--json"]])
def test_cli_json_and_parameters(items: Conn, dsn: str, capsys: pytest.CaptureFixture[str], as_json: list[str]) -> None:
    status = main(
        ["explain", "SELECT * FROM items WHERE v < %s", "--param", "5", "--hint", "items=items_v_idx", "--dsn", dsn,
         "--mode", "planner_settings", *as_json]
    )  # fmt: skip
    assert status == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema_version"] == 1
    assert document["index_usage"] == [
        {"relation": "items", "index": "items_v_idx", "used_before": False, "used_after": True}
    ]
    assert document["after"]["nodes"][0]["node_type"] == "Index Scan"


def test_cli_bad_hint_is_one_line_and_exit_2(items: Conn, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["explain", QUERY, "--hint", "items_typo_idx", "--dsn", dsn])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("queryopt: error: no index named 'items_typo_idx'")
    assert err.count("\n") == 1


def test_auto_mode_makes_the_hint_take_effect_either_way(items: Conn) -> None:
    comparison = explain(items, QUERY, hints="items_v_idx")
    expected = HintMode.PG_HINT_PLAN if hint_plan_active(items) else HintMode.PLANNER_SETTINGS
    assert comparison.mode is expected
    assert comparison.index_usage == (IndexUsage("i", "items_v_idx", used_before=False, used_after=True),)


def test_cli_placeholders_without_params_say_which_option_is_missing(
    items: Conn, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["explain", "SELECT * FROM items WHERE v < %s", "--dsn", dsn])
    err = capsys.readouterr().err
    assert status == 2
    assert "1 placeholder(s) but no parameter values were given" in err
    assert "--param VALUE" in err
    assert "EXPLAIN (FORMAT JSON)" not in err
