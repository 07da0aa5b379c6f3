"""Token-level facts for statements sqlglot keeps as opaque commands (VACUUM, CALL, SAVEPOINT, …).

Without a tree, placeholders are recognised from adjacent tokens (``%`` ``s``,
``%`` ``(`` name ``)`` ``s``, ``$`` number, ``:`` name, ``?``) and the normalized
text is the tokens joined by single spaces, so whitespace, comments and keyword
case do not change the fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import Token, TokenType

from queryopt.analysis.model import PlaceholderStyle, TableRef
from queryopt.analysis.names import fold_identifier
from queryopt.analysis.statement import tokenize

__all__ = ["CommandText", "command_text", "refresh_target"]

_NAME_TOKENS = (TokenType.VAR, TokenType.IDENTIFIER)


@dataclass(frozen=True, slots=True)
class CommandText:
    """What the tokens of an opaque command tell."""

    normalized_sql: str
    placeholders: tuple[tuple[PlaceholderStyle, str | None], ...]
    words: frozenset[str]
    """Upper-case unquoted words, to spot options such as ``ANALYZE``."""


def _adjacent(tokens: list[Token], start: int, length: int) -> bool:
    return start + length <= len(tokens) and all(
        tokens[i].start == tokens[i - 1].end + 1 for i in range(start + 1, start + length)
    )


def _placeholder_at(tokens: list[Token], i: int) -> tuple[PlaceholderStyle, str | None, int] | None:
    """The placeholder starting at token ``i`` and how many tokens it spans, if any."""
    kind, text = tokens[i].token_type, tokens[i].text
    if kind is TokenType.MOD and _adjacent(tokens, i, 2) and tokens[i + 1].text == "s":
        return PlaceholderStyle.FORMAT, None, 2
    if (
        kind is TokenType.MOD
        and _adjacent(tokens, i, 5)
        and tokens[i + 1].token_type is TokenType.L_PAREN
        and tokens[i + 3].token_type is TokenType.R_PAREN
        and tokens[i + 4].text == "s"
    ):
        return PlaceholderStyle.PYFORMAT, tokens[i + 2].text, 5
    if kind is TokenType.PARAMETER and _adjacent(tokens, i, 2) and tokens[i + 1].token_type is TokenType.NUMBER:
        return PlaceholderStyle.NUMERIC, tokens[i + 1].text, 2
    if (
        kind is TokenType.COLON
        and _adjacent(tokens, i, 2)
        and tokens[i + 1].token_type in _NAME_TOKENS
        and (i == 0 or tokens[i - 1].token_type is not TokenType.COLON)
    ):
        return PlaceholderStyle.NAMED, tokens[i + 1].text, 2
    if kind is TokenType.PLACEHOLDER and text == "?":
        return PlaceholderStyle.QMARK, None, 1
    return None


def _render(token: Token) -> str:
    kind, text = token.token_type, token.text
    if kind is TokenType.STRING:
        return "'" + text.replace("'", "''") + "'"
    if kind is TokenType.IDENTIFIER:
        return '"' + text.replace('"', '""') + '"'
    if kind is TokenType.VAR:
        return fold_identifier(text, quoted=False)
    return text.upper()


def _scan(tokens: list[Token]) -> CommandText:
    parts: list[str] = []
    placeholders: list[tuple[PlaceholderStyle, str | None]] = []
    words: set[str] = set()
    i = 0
    while i < len(tokens):
        found = _placeholder_at(tokens, i)
        if found is not None:
            style, name, span = found
            placeholders.append((style, name))
            parts.append("%s")
            i += span
            continue
        token = tokens[i]
        if token.token_type is not TokenType.STRING and token.token_type is not TokenType.IDENTIFIER:
            words.add(token.text.upper())
        parts.append(_render(token))
        i += 1
    return CommandText(" ".join(parts), tuple(placeholders), frozenset(words))


def command_text(verb: str, rest: str | None = None, tokens: list[Token] | None = None) -> CommandText:
    """Normalize an opaque command given its verb and either its raw remainder or its tokens.

    >>> command_text("CALL", "refresh_stats( %s,  :day )").normalized_sql
    'CALL refresh_stats ( %s , %s )'
    """
    if tokens is None:
        try:
            tokens = tokenize(rest or "")
        except TokenError:
            scanned = CommandText(" ".join((rest or "").split()), (), frozenset((rest or "").upper().split()))
            return CommandText(f"{verb} {scanned.normalized_sql}".strip(), (), scanned.words)
    scanned = _scan([t for t in tokens if t.token_type is not TokenType.SEMICOLON])
    text = f"{verb} {scanned.normalized_sql}".strip()
    return CommandText(text, scanned.placeholders, scanned.words)


def refresh_target(rest_tokens: list[Token]) -> TableRef | None:
    """The view of ``REFRESH MATERIALIZED VIEW [CONCURRENTLY] [schema.]name …``, given the tokens after REFRESH."""
    words = [token.text.upper() for token in rest_tokens]
    if words[:2] != ["MATERIALIZED", "VIEW"]:
        return None
    i = 3 if words[2:3] == ["CONCURRENTLY"] and rest_tokens[2].token_type is not TokenType.IDENTIFIER else 2
    parts: list[str] = []
    while i < len(rest_tokens) and rest_tokens[i].token_type in _NAME_TOKENS:
        parts.append(fold_identifier(rest_tokens[i].text, quoted=rest_tokens[i].token_type is TokenType.IDENTIFIER))
        if i + 1 < len(rest_tokens) and rest_tokens[i + 1].token_type is TokenType.DOT:
            i += 2
        else:
            break
    if len(parts) == 1:
        return TableRef(None, parts[0], None)
    if len(parts) >= 2:
        return TableRef(parts[-2], parts[-1], None)
    return None
