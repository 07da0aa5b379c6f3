"""The text the advisor asks the planner about: the recorded statement with ``$n`` placeholders.

Recorded texts carry the placeholders the application used; psycopg turned
``%s`` and ``%(name)s`` into ``$1``, ``$2``… when it sent them (a name used twice
is one parameter) and ``%%`` into ``%``. The advisor does the same on the
original text, never on sqlglot's regenerated SQL, so the planner sees what the
server saw. ``pg_stat_statements`` texts already use ``$n``.

>>> planning_text("SELECT * FROM t WHERE a = %(a)s AND b = %(b)s AND c = %(a)s AND d LIKE 'x%%'")
("SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $1 AND d LIKE 'x%'", 2)
>>> planning_text("/*+ SeqScan(t) */ SELECT * FROM t WHERE id = $2 AND k = $1;")
('SELECT * FROM t WHERE id = $2 AND k = $1', 2)
"""

from __future__ import annotations

import re

from queryopt.analysis import Analysis, PlaceholderStyle, analyze

__all__ = ["PlanningTextError", "planning_text"]

# psycopg's placeholder grammar: %s, %b, %t, %(name)s… and %% for a literal percent sign.
_PYFORMAT = re.compile(r"%(?:\(([^)]+)\))?([sbt%])")
_NUMBERED = re.compile(r"\$(\d+)")


class PlanningTextError(ValueError):
    """The statement's placeholders cannot be turned into ``$n`` (``:name`` or ``?`` styles, or a mix)."""


def _pyformat_to_numbered(body: str) -> tuple[str, int]:
    numbers: dict[str, int] = {}
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        name, code = match.group(1), match.group(2)
        if code == "%":
            return "%"
        if name is None:
            positional += 1
            key = f"#{positional}"
        else:
            key = name
        number = numbers.setdefault(key, len(numbers) + 1)
        return f"${number}"

    return _PYFORMAT.sub(replace, body), len(numbers)


def planning_text(sql: str, analysis: Analysis | None = None) -> tuple[str, int]:
    """``(text, parameter count)``: the statement without leading comments or a trailing ``;``, placeholders
    as ``$n``. Raises :class:`PlanningTextError` for placeholder styles the server cannot take."""
    analysis = analysis if analysis is not None else analyze(sql)
    body = sql[analysis.head.body_start :].strip().rstrip(";").rstrip()
    style = analysis.placeholder_style
    if style in (PlaceholderStyle.FORMAT, PlaceholderStyle.PYFORMAT):
        return _pyformat_to_numbered(body)
    if style is PlaceholderStyle.NUMERIC:
        return body, max((int(number) for number in _NUMBERED.findall(body)), default=0)
    if style is PlaceholderStyle.NONE:
        return body, 0
    raise PlanningTextError(f"{style.value} placeholders cannot be planned (the server takes $n, psycopg %s)")
