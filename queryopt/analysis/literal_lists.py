"""Shorten long ``IN (…)`` lists and ``ARRAY[…]`` of plain literals before a text is parsed.

sqlglot's tokenizer and parser cost about 4 µs per list item, so a 50,000-item
``IN`` list would take 0.2 s to analyse before anything else happens. The
fingerprint keeps one item of a list whose items are alike, and every plain
literal (a number, a ``'string'``) becomes the same placeholder, so a list made
only of plain literals analyses exactly like the same list with its first item
alone: same kind, tables, placeholders, cacheability and fingerprint. This module
cuts such lists down to that first item, with one pass over the text that skips
strings, quoted identifiers, dollar quotes and comments (nested ones too).

The shortened text is only ever analysed; the original is what the server receives.
Anything else in a list (a column, a placeholder, a cast, ``NULL``) keeps the
list whole. A partition bound (``FOR VALUES IN (…)``) is not an IN list and is kept.

>>> collapse_literal_lists("SELECT * FROM t WHERE id IN (1, 2, 3) AND tag = ANY(ARRAY['a', 'b'])")
"SELECT * FROM t WHERE id IN (1) AND tag = ANY(ARRAY['a'])"
>>> collapse_literal_lists("SELECT * FROM t WHERE id IN (1, %s)")
'SELECT * FROM t WHERE id IN (1, %s)'
"""

from __future__ import annotations

import re

__all__ = ["collapse_literal_lists"]

# Where something may begin that the scan must either skip whole or look at: a quote, a dollar
# quote, a comment, or the keyword that opens a list.
_NEXT = re.compile(r"""['"$]|--|/\*|(?<![\w$.])(?:in\s*\(|array\s*\[)""", re.IGNORECASE)
_PLAIN_STRING = re.compile(r"'(?:[^']|'')*+'")
_ESCAPE_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*+'", re.DOTALL)  # E'…': backslash escapes
_QUOTED_IDENTIFIER = re.compile(r'"(?:[^"]|"")*+"')
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$")
_BLOCK_COMMENT_EDGE = re.compile(r"/\*|\*/")
# A plain literal: a number (no sign but minus, no cast) or a string without backslashes (whose
# reading would depend on standard_conforming_strings). Atomic groups and possessive repeats keep
# the match linear: without them the engine keeps backtracking state for every item it passed.
_ITEM = r"(?>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![\w.$])|'(?:[^'\\]|'')*+'(?!'))"
_IN_RUN = re.compile(rf"\s*({_ITEM})(?:\s*+,\s*+{_ITEM})++\s*\)")
_ARRAY_RUN = re.compile(rf"\s*({_ITEM})(?:\s*+,\s*+{_ITEM})++\s*\]")
_LOOK_BACK = 64  # characters before IN searched for the VALUES of a partition bound


def _block_comment_end(sql: str, start: int) -> int:
    """Index just past the (possibly nested) block comment opening at ``start``; -1 when it never closes."""
    depth = 0
    for edge in _BLOCK_COMMENT_EDGE.finditer(sql, start):
        depth += 1 if edge.group() == "/*" else -1
        if depth == 0:
            return edge.end()
    return -1


def _skip(sql: str, found: re.Match[str]) -> int:
    """Index just past the string, identifier, dollar quote or comment that ``found`` opens; -1 if it never ends."""
    start, opener = found.start(), found.group()
    if opener == "'":
        escaped = start > 0 and sql[start - 1] in "eE" and (start == 1 or not _is_word(sql[start - 2]))
        quoted = (_ESCAPE_STRING if escaped else _PLAIN_STRING).match(sql, start)
        return quoted.end() if quoted else -1
    if opener == '"':
        identifier = _QUOTED_IDENTIFIER.match(sql, start)
        return identifier.end() if identifier else -1
    if opener == "$":
        tag = _DOLLAR_TAG.match(sql, start)
        if tag is None or (start > 0 and _is_word(sql[start - 1])):
            return start + 1  # $1, or a $ inside an identifier
        close = sql.find(tag.group(), tag.end())
        return close + len(tag.group()) if close >= 0 else -1
    if opener == "--":
        newline = sql.find("\n", start)
        return len(sql) if newline < 0 else newline + 1
    return _block_comment_end(sql, start)


def _follows_values(sql: str, start: int) -> bool:
    before = sql[max(0, start - _LOOK_BACK) : start].rstrip()
    return before[-6:].lower() == "values" and (len(before) == 6 or not _is_word(before[-7]))


def _is_word(character: str) -> bool:
    return character.isalnum() or character in "_$"


def collapse_literal_lists(sql: str) -> str:
    """``sql`` with every IN list and ARRAY of two or more plain literals cut to its first item."""
    parts: list[str] = []
    copied = position = 0
    while (found := _NEXT.search(sql, position)) is not None:
        if found.group()[0] in "'\"$-/":
            position = _skip(sql, found)
            if position < 0:
                return sql  # an unterminated quote or comment: the parser will say so about the original
            continue
        position = found.end()
        is_array = found.group()[-1] == "["
        if not is_array and _follows_values(sql, found.start()):
            continue
        run = (_ARRAY_RUN if is_array else _IN_RUN).match(sql, position)
        if run is None:
            continue
        parts.append(sql[copied : run.end(1)])
        parts.append(sql[run.end() - 1])  # the closing bracket
        copied = position = run.end()
    if not parts:
        return sql
    parts.append(sql[copied:])
    return "".join(parts)
