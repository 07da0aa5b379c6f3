from __future__ import annotations

import logging

import pytest

from queryopt.config import HintMode
from queryopt.errors import HintError
from queryopt.hints import (
    HintSet,
    JoinHint,
    Leading,
    Rows,
    ScanHint,
    Set,
    plan_hints,
    planner_settings,
    unsupported_by_planner_settings,
)


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (ScanHint("IndexScan", "o", ("o_idx",)), [("enable_seqscan", "off"), ("enable_bitmapscan", "off")]),
        (ScanHint("BitmapScan", "o"), [("enable_seqscan", "off"), ("enable_indexscan", "off")]),
        (
            ScanHint("SeqScan", "o"),
            [("enable_indexscan", "off"), ("enable_indexonlyscan", "off"), ("enable_bitmapscan", "off")],
        ),
        (ScanHint("NoSeqScan", "o"), [("enable_seqscan", "off")]),
        (JoinHint("HashJoin", ("a", "b")), [("enable_nestloop", "off"), ("enable_mergejoin", "off")]),
        (JoinHint("NoNestLoop", ("a", "b")), [("enable_nestloop", "off")]),
        (Set("work_mem", "64MB"), [("work_mem", "64MB")]),
    ],
)
def test_planner_settings_translate_hints_statement_wide(hint: ScanHint, expected: list[tuple[str, str]]) -> None:
    assert planner_settings(HintSet.of(hint)) == expected


def test_settings_of_several_hints_are_combined_once() -> None:
    hints = HintSet.of(ScanHint("IndexScan", "a", ("a_idx",)), ScanHint("IndexOnlyScan", "b"))
    assert planner_settings(hints) == [("enable_seqscan", "off"), ("enable_bitmapscan", "off")]


def test_hints_that_contradict_statement_wide_are_refused() -> None:
    with pytest.raises(HintError, match="whole statement"):
        planner_settings(HintSet.of(ScanHint("IndexScan", "a"), ScanHint("SeqScan", "b")))
    with pytest.raises(HintError, match="enable_indexscan"):
        planner_settings(HintSet.of(ScanHint("IndexScan", "a"), Set("enable_indexscan", "off")))


def test_hints_without_a_setting_are_reported_not_translated() -> None:
    hints = HintSet.of(Leading(("a", "b")), Rows(("a", "b"), "#", 5), ScanHint("SeqScan", "a"))
    assert unsupported_by_planner_settings(hints) == (Leading(("a", "b")), Rows(("a", "b"), "#", 5))


def test_auto_mode_uses_the_block_when_pg_hint_plan_is_active() -> None:
    hints = HintSet.of(ScanHint("IndexScan", "t", ("t_v_idx",)))
    plan = plan_hints("SELECT * FROM t", hints, mode=HintMode.AUTO, hint_plan_active=True, has_params=False)
    assert plan.mode is HintMode.PG_HINT_PLAN
    assert plan.sql == "/*+ IndexScan(t t_v_idx) */ SELECT * FROM t"
    assert plan.settings == ()
    assert plan.effective


def test_auto_mode_falls_back_to_planner_settings_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    hints = HintSet.of(ScanHint("IndexScan", "t", ("t_v_idx",)))
    caplog.set_level(logging.INFO, logger="queryopt")
    for _ in range(3):
        plan = plan_hints(
            "SELECT * FROM t", hints, mode=HintMode.AUTO, hint_plan_active=False, has_params=False, database="db-a"
        )
        assert plan.sql == "SELECT * FROM t"
        assert plan.mode is HintMode.PLANNER_SETTINGS
        assert plan.settings == (("enable_seqscan", "off"), ("enable_bitmapscan", "off"))
    assert [r.getMessage() for r in caplog.records].count(
        "pg_hint_plan is not active in database db-a: hints fall back to planner settings, "
        "which act on the whole statement"
    ) == 1


def test_forced_pg_hint_plan_mode_without_the_extension_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    hints = HintSet.of(ScanHint("SeqScan", "t"))
    for _ in range(3):
        plan = plan_hints(
            "SELECT 1", hints, mode=HintMode.PG_HINT_PLAN, hint_plan_active=False, has_params=False, database="db-b"
        )
        assert plan.sql.startswith("/*+ SeqScan(t) */")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "db-b" in r.getMessage()]
    assert len(warnings) == 1


def test_planner_settings_mode_reports_untranslatable_hints_once(caplog: pytest.LogCaptureFixture) -> None:
    hints = HintSet.of(Leading(("a", "b")), ScanHint("SeqScan", "a"))
    for _ in range(2):
        plan = plan_hints(
            "SELECT 1", hints, mode=HintMode.PLANNER_SETTINGS, hint_plan_active=True, has_params=False, database="c"
        )
        assert plan.ignored == (Leading(("a", "b")),)
    assert len([r for r in caplog.records if "Leading" in r.getMessage()]) == 1


def test_off_mode_sends_the_text_unchanged() -> None:
    hints = HintSet.of(ScanHint("SeqScan", "t"))
    plan = plan_hints("SELECT 1", hints, mode=HintMode.OFF, hint_plan_active=True, has_params=False)
    assert (plan.sql, plan.settings, plan.effective) == ("SELECT 1", (), False)
    assert plan.ignored == hints.hints
