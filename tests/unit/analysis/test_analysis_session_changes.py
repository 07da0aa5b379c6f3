"""Which statements change the session of the connection that runs them (decided once per text)."""

from __future__ import annotations

import pytest

from queryopt.analysis import SessionChange, analyze_uncached


@pytest.mark.parametrize(
    ("sql", "form"),
    [
        ("SET work_mem = '1GB'", "SET"),
        ("set search_path to other", "SET"),
        ("SET SESSION statement_timeout = 0", "SET"),
        ("SET ROLE alice", "SET ROLE"),
        ("SET SESSION ROLE alice", "SET ROLE"),
        ("SET SESSION AUTHORIZATION alice", "SET SESSION AUTHORIZATION"),
        ("/* app */ RESET ALL", "RESET"),
        ("RESET ROLE", "RESET"),
        ("DISCARD ALL", "DISCARD"),
        ("discard plans", "DISCARD"),
        ("SELECT set_config('role', 'alice', false)", "set_config(…, false)"),
        ("SELECT set_config('app.tenant', %s, false)", "set_config(…, false)"),
        ("SELECT pg_catalog.set_config('app.tenant', 'b', 'off')", "set_config(…, false)"),
        ("SELECT * FROM t WHERE x = (SELECT set_config('app.tenant', 'b', false))", "set_config(…, false)"),
        ("SELECT set_config('app.tenant', 'b', %s)", "set_config(…, false)"),  # could be false: refused
    ],
)
def test_session_level_changes_are_named(sql: str, form: str) -> None:
    change = analyze_uncached(sql).session_change
    assert change is not None
    assert change.form == form
    assert change.outlives_transaction


@pytest.mark.parametrize(
    "sql",
    [
        "SET LOCAL work_mem = '1GB'",
        "SET LOCAL ROLE alice",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET CONSTRAINTS ALL DEFERRED",
        "SELECT set_config('app.tenant', 'b', true)",
    ],
)
def test_transaction_scoped_changes_do_not_outlive_their_transaction(sql: str) -> None:
    change = analyze_uncached(sql).session_change
    assert change is not None
    assert not change.outlives_transaction


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT current_setting('app.tenant')",
        "SELECT * FROM settings WHERE name = 'SET ROLE'",
        "UPDATE t SET x = 1",
        "SHOW work_mem",
        "SELECT set_config",  # a column, not a call
    ],
)
def test_other_statements_change_nothing(sql: str) -> None:
    assert analyze_uncached(sql).session_change is None


def test_the_change_says_how_to_do_it_instead() -> None:
    change = analyze_uncached("SET ROLE alice").session_change
    assert isinstance(change, SessionChange)
    assert "SET LOCAL ROLE" in change.advice
    assert "connection string" in analyze_uncached("SET work_mem = 1").session_change.advice  # type: ignore[union-attr]
    assert "true" in analyze_uncached("SELECT set_config('a.b', 'c', false)").session_change.advice  # type: ignore[union-attr]
