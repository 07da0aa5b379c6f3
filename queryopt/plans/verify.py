"""The shape of the plan PostgreSQL chooses for a statement now, with or without a hint set.

A recorded statement usually has placeholders and its parameter values are
not stored (unless asked). PostgreSQL 15 has no ``EXPLAIN (GENERIC_PLAN)``, so
such a statement is prepared under ``plan_cache_mode = force_generic_plan``
with its placeholders numbered and explained with NULLs: a generic plan does
not look at the values. Everything runs in a transaction that is rolled back
and the prepared statement is deallocated.
"""

from __future__ import annotations

from typing import Any

import psycopg
from sqlglot.tokenizer_core import Token, TokenType

from queryopt.analysis import analyze
from queryopt.analysis.sqltext import split_head
from queryopt.analysis.statement import tokenize
from queryopt.errors import QueryError
from queryopt.hints import HintSet, apply_hint_block
from queryopt.hints.plan_shape import PlanShape, plan_shape

__all__ = ["current_shape", "numbered_placeholders", "without_hint_block"]

_PREPARED_NAME = "queryopt_pin_check"
_STATEMENT_TIMEOUT_MS = 10_000


def without_hint_block(sql: str) -> str:
    """``sql`` without its leading ``/*+ … */`` block (a pin replaces whatever hints the capture carried).

    >>> without_hint_block("/*+ SeqScan(t) */ /* app */ SELECT 1")
    '/* app */ SELECT 1'
    """
    block = split_head(sql).hint_block
    if block is None:
        return sql
    return (sql[: block.start] + sql[block.end :].lstrip()).lstrip()


def _adjacent(tokens: list[Token], start: int, length: int) -> bool:
    """Tokens ``start`` … ``start + length - 1`` exist and touch (``% s`` is not a placeholder)."""
    return start + length <= len(tokens) and all(
        tokens[i].start == tokens[i - 1].end + 1 for i in range(start + 1, start + length)
    )


def numbered_placeholders(sql: str) -> tuple[str, int]:
    """``sql`` with psycopg's ``%s`` and ``%(name)s`` written ``$1``, ``$2``… (and ``%%`` as ``%``), and how many.

    >>> numbered_placeholders("SELECT * FROM t WHERE a = %(a)s AND b = %s AND c = %(a)s AND d %% 2 = 0")
    ('SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $1 AND d % 2 = 0', 2)
    >>> numbered_placeholders("SELECT * FROM t WHERE a = $2 AND b = $1")
    ('SELECT * FROM t WHERE a = $2 AND b = $1', 2)
    """
    tokens = tokenize(sql)
    pieces: list[str] = []
    position = 0
    numbers: dict[str, int] = {}
    count = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.token_type is TokenType.PARAMETER and _adjacent(tokens, index, 2):
            number = tokens[index + 1].text
            if tokens[index + 1].token_type is TokenType.NUMBER and number.isdigit():
                count = max(count, int(number))  # already $n: PostgreSQL's own numbering
        if token.token_type is not TokenType.MOD:
            index += 1
            continue
        replacement: str | None = None
        span = 1
        if _adjacent(tokens, index, 2) and tokens[index + 1].token_type is TokenType.MOD:
            replacement, span = "%", 2
        elif _adjacent(tokens, index, 2) and tokens[index + 1].text == "s":
            count += 1
            replacement, span = f"${count}", 2
        elif (
            _adjacent(tokens, index, 5)
            and tokens[index + 1].token_type is TokenType.L_PAREN
            and tokens[index + 3].token_type is TokenType.R_PAREN
            and tokens[index + 4].text == "s"
        ):
            name = tokens[index + 2].text
            if name not in numbers:
                count += 1
                numbers[name] = count
            replacement, span = f"${numbers[name]}", 5
        if replacement is not None:
            pieces.append(sql[position : token.start])
            pieces.append(replacement)
            position = tokens[index + span - 1].end + 1
        index += span
    pieces.append(sql[position:])
    return "".join(pieces), count


def _explained(conn: psycopg.Connection[Any], statement: str) -> Any:
    try:
        # binary=True: the extended protocol, one statement per message.
        row = conn.execute(statement.encode(), binary=True).fetchone()
    except psycopg.Error as exc:
        raise QueryError(f"EXPLAIN failed: {exc}", sql=statement, sqlstate=getattr(exc, "sqlstate", None)) from exc
    assert row is not None
    return row[0]


def current_shape(conn: psycopg.Connection[Any], sql: str, hints: HintSet | None = None) -> PlanShape:
    """The shape of the plan chosen now for ``sql`` (its own hint block removed) with ``hints`` placed first.

    ``conn`` must not be inside a transaction of the caller's: this runs its own and rolls it back.
    """
    body = without_hint_block(sql)
    analysis = analyze(body)
    if analysis.placeholder_count == 0:
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL statement_timeout = {_STATEMENT_TIMEOUT_MS}")
            text = apply_hint_block(body, hints or HintSet(), has_params=False)
            return plan_shape(_explained(conn, "EXPLAIN (FORMAT JSON) " + text))
    numbered, count = numbered_placeholders(body)
    text = apply_hint_block(numbered, hints or HintSet(), has_params=False)
    prepared = False
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL statement_timeout = {_STATEMENT_TIMEOUT_MS}")
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            # pg_hint_plan reads the hint block of a prepared statement's text: only letters and spaces before it.
            try:
                conn.execute(f"PREPARE {_PREPARED_NAME} AS {text}".encode(), binary=True)
            except psycopg.Error as exc:
                raise QueryError(f"cannot prepare the statement: {exc}", sql=text) from exc
            prepared = True
            nulls = ", ".join(["NULL"] * count)
            return plan_shape(_explained(conn, f"EXPLAIN (FORMAT JSON) EXECUTE {_PREPARED_NAME}({nulls})"))
    finally:
        if prepared and not conn.broken:
            with conn.transaction():  # a prepared statement outlives the transaction it was made in
                conn.execute(f"DEALLOCATE {_PREPARED_NAME}")
