from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from queryopt.analysis import analyze
from queryopt.errors import ConfigurationError, HintError
from queryopt.hints import Catalog, HintRules, IndexInfo, TableInfo

CATALOG = Catalog.from_tables(
    [
        TableInfo(
            "public",
            "orders",
            (IndexInfo("public", "orders", "orders_customer_idx", "btree", ("customer_id",), False, False, True),),
        ),
        TableInfo("public", "customers", ()),
    ]
)
ORM_SQL = "SELECT orders_1.id FROM orders AS orders_1 WHERE orders_1.customer_id = %(customer_id)s"


def test_rule_by_example_sql_matches_the_same_query_with_other_constants_and_spacing() -> None:
    rules = HintRules(catalog=CATALOG)
    rules.add(ORM_SQL, ["orders_customer_idx"])
    other_text = "SELECT orders_1.id\n  FROM orders AS orders_1\n WHERE orders_1.customer_id = 42"
    hints = rules.for_analysis(analyze(other_text))
    assert hints is not None
    assert hints.render() == "IndexScan(orders_1 orders_customer_idx)"
    assert rules.for_analysis(analyze("SELECT 1")) is None


def test_rule_by_fingerprint_with_mapping_and_hint_text() -> None:
    fingerprint = analyze(ORM_SQL).fingerprint
    rules = HintRules()
    rule = rules.add(fingerprint, {"orders_1": "orders_customer_idx"}, name="orders of a customer")
    assert rule.sql is None
    hints = rules.for_analysis(analyze(ORM_SQL), catalog=CATALOG)
    assert hints is not None
    assert hints.render() == "IndexScan(orders_1 orders_customer_idx)"


def test_rule_whose_hints_no_longer_fit_is_reported_once_and_not_applied(caplog: pytest.LogCaptureFixture) -> None:
    fingerprint = analyze(ORM_SQL).fingerprint
    rules = HintRules(catalog=CATALOG)
    rules.add(fingerprint, ["orders_dropped_idx"], name="stale")
    for _ in range(3):
        assert rules.for_analysis(analyze(ORM_SQL)) is None
    warnings = [record.getMessage() for record in caplog.records if record.name == "queryopt"]
    assert len(warnings) == 1
    assert "hint rule stale (api)" in warnings[0]
    assert "no index named 'orders_dropped_idx'" in warnings[0]
    assert [problem.rule for problem in rules.check()] == ["stale (api)"]


def test_rule_written_for_other_tables_is_reported() -> None:
    fingerprint = analyze(ORM_SQL).fingerprint
    rules = HintRules(catalog=CATALOG)
    rules.add(fingerprint, ["NoSeqScan(orders_1)"], tables=["customers"], name="moved")
    assert rules.for_analysis(analyze(ORM_SQL)) is None
    (problem,) = rules.check()
    assert "the query reads ['orders'], the rule was written for ['customers']" in problem.problem


def test_rule_naming_indexes_without_a_catalog_is_not_applied_until_given_one() -> None:
    rules = HintRules()
    rules.add(ORM_SQL, ["orders_customer_idx"])  # relations are checked now, indexes once a catalog is known
    with pytest.raises(HintError, match="relation 'o' is not in the query"):
        rules.add(ORM_SQL, {"o": "orders_customer_idx"})
    assert rules.check() == []
    assert rules.for_analysis(analyze(ORM_SQL)) is None
    assert "without a catalog" in rules.check()[0].problem
    hints = rules.for_analysis(analyze(ORM_SQL), catalog=CATALOG)
    assert hints is not None
    assert hints.render() == "IndexScan(orders_1 orders_customer_idx)"


def test_adding_a_rule_by_sql_checks_it_at_once() -> None:
    rules = HintRules(catalog=CATALOG)
    with pytest.raises(HintError, match="relation 'o' is not in the query"):
        rules.add(ORM_SQL, ["SeqScan(o)"])
    with pytest.raises(HintError, match="no hints"):
        rules.add(ORM_SQL, [])
    assert len(rules) == 0


def test_check_revalidates_rules_given_as_sql_against_a_new_catalog() -> None:
    rules = HintRules(catalog=CATALOG)
    rules.add(ORM_SQL, ["orders_customer_idx"])
    assert rules.check() == []
    without_index = Catalog.from_tables([TableInfo("public", "orders", ()), TableInfo("public", "customers", ())])
    (problem,) = rules.check(without_index)
    assert "orders_customer_idx" in problem.problem


def test_rules_file_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "hints.toml"
    fingerprint = analyze("SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id").fingerprint
    path.write_text(
        f"""
[[rule]]
name = "orders of a customer"
sql = "{ORM_SQL}"
hints = ["orders_customer_idx"]

[[rule]]
fingerprint = "{fingerprint}"
tables = ["customers", "orders"]
hints = ["Leading((c o))", "HashJoin(c o)"]
indexes = {{ o = "orders_customer_idx" }}
"""
    )
    rules = HintRules.load(path, catalog=CATALOG)
    assert len(rules) == 2
    joined = rules.for_analysis(analyze("SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id"))
    assert joined is not None
    assert joined.render() == "IndexScan(o orders_customer_idx) Leading((c o)) HashJoin(c o)"
    assert [rule.source for rule in rules] == ["hints.toml#1", "hints.toml#2"]


def test_rules_file_in_json(tmp_path: Path) -> None:
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"rule": [{"sql": ORM_SQL, "indexes": {"orders_1": ["orders_customer_idx"]}}]}))
    rules = HintRules.from_file(path, catalog=CATALOG)
    assert rules.for_analysis(analyze(ORM_SQL)) is not None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[rule]]\nhints = ['x']\n", "rule 1: a rule needs sql or fingerprint"),
        ("[[rule]]\nfingerprint = 'XYZ'\nhints = ['x']\n", "16 lower-case hex"),
        ("[[rule]]\nfingerprint = '0123456789abcdef'\nhint = ['x']\n", "unknown keys \\['hint'\\]"),
        ("[[rule]]\nfingerprint = '0123456789abcdef'\nhints = ['IndexScan(o']\n", "cannot read hints"),
        ("[[rule]]\nfingerprint = '0123456789abcdef'\nhints = 'x'\n", "must be a list"),
        ("not toml = = 1", "hints.toml"),
    ],
)
def test_bad_rules_file_names_file_and_rule(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "hints.toml"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        HintRules.load(path)


def test_missing_rules_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.toml"):
        HintRules.load(tmp_path / "nope.toml")


def test_lookup_without_a_rule_is_cheap(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="queryopt")
    rules = HintRules(catalog=CATALOG)
    rules.add(ORM_SQL, ["orders_customer_idx"])
    assert rules.for_analysis(analyze("SELECT * FROM customers")) is None
    assert caplog.records == []


def test_readme_rules_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "rules.toml"
    path.write_text(example)
    rules = HintRules.load(path, catalog=CATALOG)
    assert [rule.name for rule in rules] == ["orders of a customer", None]
    hints = rules.for_analysis(
        analyze("SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 7")
    )
    assert hints is not None
    assert hints.render() == "IndexScan(o orders_customer_idx) Leading((c o))"
