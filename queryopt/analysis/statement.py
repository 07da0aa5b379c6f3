"""Turn SQL text into exactly one sqlglot tree, or an :class:`~queryopt.AnalysisError` that says why not.

sqlglot is used as a library, never extended (``sqlglotc`` forbids subclassing its
Parser, Generator or Expression): each thread keeps its own tokenizer, parser and
generator because building them costs more than a short parse, and they hold
per-call state.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.generator import Generator
from sqlglot.parser import Parser
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

from queryopt.errors import AnalysisError

__all__ = ["ParsedStatement", "generator", "parse_statement", "tokenize"]

POSTGRES = Dialect.get_or_raise("postgres")

# PostgreSQL statements whose leading keyword sqlglot does not model: it misreads them
# (``SAVEPOINT a`` as a column alias) or rejects them (``RELEASE SAVEPOINT a``).
UNMODELLED_UTILITY_VERBS = frozenset(
    {
        "ABORT", "CHECKPOINT", "CLOSE", "CLUSTER", "DEALLOCATE", "DISCARD", "LISTEN", "LOAD", "MOVE", "NOTIFY",
        "REFRESH", "REINDEX", "RELEASE", "SAVEPOINT", "START", "UNLISTEN", "VACUUM",
    }
)  # fmt: skip
UNMODELLED_DDL_VERBS = frozenset({"IMPORT", "REASSIGN", "SECURITY"})

_FALLBACK_MESSAGE = "Falling back to parsing as a 'Command'"
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: \d+, col: \d+, start: .*?>")
_MISSING_PART = re.compile(r"Required keyword: '(\w+)' missing for <class '(?:[\w]+\.)*(\w+)'>")
_END_OF_TEXT = "'SENTINEL'"  # the token sqlglot's parser reads past the last one


def _drop_command_fallback_warnings(record: logging.LogRecord) -> bool:
    # sqlglot warns (with the whole SQL text) each time it meets VACUUM, SHOW, CALL, …: drop only that warning.
    return _FALLBACK_MESSAGE not in record.getMessage()


def _quiet_sqlglot() -> None:
    sqlglot_logger = logging.getLogger("sqlglot")
    if _drop_command_fallback_warnings not in sqlglot_logger.filters:
        sqlglot_logger.addFilter(_drop_command_fallback_warnings)


_quiet_sqlglot()


class _Tools(threading.local):
    """One tokenizer, parser and generator per thread."""

    def __init__(self) -> None:
        self.tokenizer: Tokenizer = POSTGRES.tokenizer()
        self.parser: Parser = POSTGRES.parser(error_level=ErrorLevel.IMMEDIATE)
        self.generator: Generator = POSTGRES.generator(comments=False, unsupported_level=ErrorLevel.IGNORE)


_tools = _Tools()


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    """One statement: its tree (``None`` for a statement sqlglot does not model) and its tokens."""

    root: exp.Expr | None
    tokens: list[Token]
    verb: str
    """The first keyword, upper case (``SELECT``, ``WITH``, ``SAVEPOINT``, …)."""


def tokenize(sql: str) -> list[Token]:
    """sqlglot's PostgreSQL tokens for ``sql`` (comments are attached, not returned)."""
    return _tools.tokenizer.tokenize(sql)


def generator() -> Generator:
    """This thread's PostgreSQL generator (no comments, unsupported features ignored)."""
    return _tools.generator


def _statement_count(tokens: list[Token]) -> int:
    count, pending = 0, False
    for token in tokens:
        if token.token_type is TokenType.SEMICOLON:
            count, pending = count + pending, False
        else:
            pending = True
    return count + pending


def _count_error(sql: str, count: int) -> AnalysisError:
    if count == 0:
        return AnalysisError("no SQL statement found: the text is empty or holds only comments", sql=sql)
    return AnalysisError(f"expected exactly one SQL statement, found {count}; send them one at a time", sql=sql)


def _syntax_error(sql: str, error: ParseError) -> AnalysisError:
    detail = error.errors[0] if error.errors else {}
    line, column, highlight = detail.get("line"), detail.get("col"), detail.get("highlight")
    if isinstance(column, int) and highlight and "\n" not in highlight:
        column = max(1, column - len(highlight) + 1)  # sqlglot gives the token's last column; PostgreSQL its first
    description = _TOKEN_REPR.sub(r"'\1'", str(detail.get("description") or error).splitlines()[0])
    description = _MISSING_PART.sub(r"something is missing here (sqlglot: \2 without its '\1')", description)
    description = description.replace(_END_OF_TEXT, "the end of the text")
    return _located_error(sql, line, column, highlight, description)


def _located_error(sql: str, line: object, column: object, highlight: object, description: str) -> AnalysisError:
    where = f" at line {line}, column {column}" if line is not None and column is not None else ""
    near = f" near {highlight!r}" if highlight else ""
    return AnalysisError(
        f"SQL syntax error{where}{near}: {description}",
        sql=sql,
        line=line if isinstance(line, int) else None,
        column=column if isinstance(column, int) else None,
        highlight=highlight if isinstance(highlight, str) else None,
    )


def _not_a_keyword(sql: str, text: str, first: Token) -> AnalysisError:
    """A statement whose first word is no keyword (``SELEC 1``): where PostgreSQL would point, at that word."""
    prefix = text[: first.start]
    line = prefix.count("\n") + 1
    column = first.start - (prefix.rfind("\n") + 1) + 1
    return _located_error(
        sql, line, column, first.text, "a statement begins with a keyword (SELECT, INSERT, UPDATE, WITH, …)"
    )


def parse_statement(sql: str) -> ParsedStatement:
    """Parse ``sql`` as PostgreSQL; exactly one statement or :class:`AnalysisError`.

    ``%%`` is read as ``%``: drivers with ``%s`` placeholders (psycopg, SQLAlchemy) need the modulo
    operator and literal percent signs doubled when parameters are passed.
    """
    text = sql.replace("%%", "%") if "%%" in sql else sql
    try:
        tokens = _tools.tokenizer.tokenize(text)
    except TokenError as error:
        raise AnalysisError(f"SQL cannot be tokenized: {error}", sql=sql) from error
    if not tokens:
        raise _count_error(sql, 0)
    verb = tokens[0].text.upper()
    unmodelled = verb in UNMODELLED_UTILITY_VERBS or verb in UNMODELLED_DDL_VERBS
    try:
        trees = _tools.parser.parse(tokens, text)
    except ParseError as error:
        if not unmodelled:
            if tokens[0].token_type is TokenType.VAR and len(tokens) > 1:
                raise _not_a_keyword(sql, text, tokens[0]) from error
            raise _syntax_error(sql, error) from error
        count = _statement_count(tokens)
        if count != 1:
            raise _count_error(sql, count) from error
        return ParsedStatement(None, tokens, verb)
    statements = [tree for tree in trees if tree is not None and not isinstance(tree, exp.Semicolon)]
    if len(statements) != 1:
        raise _count_error(sql, len(statements))
    root = statements[0]
    if unmodelled and not isinstance(root, exp.Command):
        return ParsedStatement(None, tokens, verb)
    return ParsedStatement(root, tokens, verb)
