"""The text the planner is asked about: placeholders as the server saw them."""

from __future__ import annotations

import pytest

from queryopt.advisor.statements import PlanningTextError, planning_text


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = %s AND b = %s", ("SELECT * FROM t WHERE a = $1 AND b = $2", 2)),
        ("SELECT * FROM t WHERE a = %(x)s OR b = %(x)s", ("SELECT * FROM t WHERE a = $1 OR b = $1", 1)),
        ("SELECT x %% 2 FROM t WHERE a = %s", ("SELECT x % 2 FROM t WHERE a = $1", 1)),
        ("SELECT * FROM t WHERE a = $2 AND b = $1", ("SELECT * FROM t WHERE a = $2 AND b = $1", 2)),
        ("SELECT * FROM t WHERE a = 1", ("SELECT * FROM t WHERE a = 1", 0)),
        ("/*+ SeqScan(t) */ /* app */ SELECT * FROM t WHERE a = %s ;", ("SELECT * FROM t WHERE a = $1", 1)),
    ],
)
def test_placeholders_become_numbered(sql: str, expected: tuple[str, int]) -> None:
    assert planning_text(sql) == expected


@pytest.mark.parametrize("sql", ["SELECT * FROM t WHERE a = :a", "SELECT * FROM t WHERE a = ?"])
def test_styles_the_server_cannot_take(sql: str) -> None:
    with pytest.raises(PlanningTextError, match="cannot be planned"):
        planning_text(sql)
