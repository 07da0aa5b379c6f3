"""Identifiers inside a hint block: quoted like PostgreSQL would, refused when they could escape it.

pg_hint_plan reads unquoted names verbatim (no case folding) and double-quoted
names with ``""`` standing for one quote. It cannot read a name holding ``/*`` or
``*/`` at all, and such a name would end or nest the comment that carries the
hints, turning the rest of the block into SQL. So those names are refused, never
escaped.
"""

from __future__ import annotations

import re

from queryopt.errors import HintError

__all__ = ["RESERVED_KEYWORDS", "check_identifier", "quote_identifier"]

# PostgreSQL 15 keywords that are not "unreserved" (pg_get_keywords() catcode <> 'U'):
# quote_ident() quotes these, so queryopt does too.
RESERVED_KEYWORDS = frozenset(
    """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary bit boolean both case
    cast char character check coalesce collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user dec decimal default
    deferrable desc distinct do else end except exists extract false fetch float for foreign freeze from full grant
    greatest group grouping having ilike in initially inner inout int integer intersect interval into is isnull join
    lateral leading least left like limit localtime localtimestamp national natural nchar none normalize not notnull
    null nullif numeric offset on only or order out outer overlaps overlay placing position precision primary real
    references returning right row select session_user setof similar smallint some substring symmetric table
    tablesample then time timestamp to trailing treat trim true union unique user using values varchar variadic
    verbose when where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse
    xmlpi xmlroot xmlserialize xmltable
    """.split()  # noqa: SIM905 - a word list reads better than 151 quoted strings
)

_SIMPLE = re.compile(r"[a-z_][a-z0-9_]*")
_COMMENT_DELIMITERS = ("/*", "*/")


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it can stand inside a hint block, else raise :class:`~queryopt.HintError`.

    >>> check_identifier("Orders")
    'Orders'
    >>> check_identifier("x*/ DROP TABLE t; /*")
    Traceback (most recent call last):
    ...
    queryopt.HintError: identifier 'x*/ DROP TABLE t; /*' contains '/*' or '*/', which would end the hint comment; ...
    """
    if not isinstance(name, str):
        raise HintError(f"{what} must be a string, got {type(name).__name__}")
    if name == "":
        raise HintError(f"{what} must not be empty")
    if any(delimiter in name for delimiter in _COMMENT_DELIMITERS):
        raise HintError(
            f"{what} {name!r} contains '/*' or '*/', which would end the hint comment; "
            "pg_hint_plan cannot name it: give the relation an alias in the query"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise HintError(f"{what} {name!r} contains a control character (NUL, newline, …), refused inside a hint block")
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    """``name`` as it must be written in a hint: bare when lower-case-simple and not a keyword, else double-quoted.

    >>> quote_identifier("orders"), quote_identifier("Orders"), quote_identifier("order"), quote_identifier('a"b')
    ('orders', '"Orders"', '"order"', '"a""b"')
    """
    check_identifier(name, what)
    if _SIMPLE.fullmatch(name) and name not in RESERVED_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'
