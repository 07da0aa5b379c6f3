"""The fingerprint: a short hash of the statement's structure.

Two texts share a fingerprint when they differ only in whitespace, keyword or
unquoted-identifier case, comments, constants and parameter values or styles
(``%s``, ``%(id)s``, ``$1`` and ``:id`` are alike), and in how many items an
``IN (…)`` list, an ``ARRAY[…]`` or a multi-row ``VALUES`` holds when the items
are alike. Aliases are kept (hints name them), so are positions in ``ORDER BY 1``.

A leading ``/*+ … */`` hint block is a comment, so a hinted and an unhinted run
of one query share a fingerprint and their statistics: that is on purpose, it
lets the recorder compare the two.
"""

from __future__ import annotations

import hashlib

from sqlglot import exp

from queryopt.analysis.statement import generator

__all__ = ["collapse_lists", "fingerprint_of", "normalized_text"]


def collapse_lists(lists: list[exp.Expr]) -> None:
    """Keep one item of each IN-list, array or VALUES whose items are all alike (after normalization)."""
    for node in reversed(lists):  # innermost first, so a row's inner lists are collapsed before rows compare
        items = node.expressions
        first = items[0]
        if all(item == first for item in items[1:]):
            node.set("expressions", [first])


def normalized_text(root: exp.Expr) -> str:
    """The normalized tree as PostgreSQL text without comments (it consumes the tree)."""
    return generator().generate(root, copy=False)


def fingerprint_of(normalized_sql: str) -> str:
    """16 hex characters of BLAKE2b over the normalized text.

    >>> fingerprint_of("SELECT %s")
    '7e6105c25cf114f0'
    """
    return hashlib.blake2b(normalized_sql.encode(), digest_size=8).hexdigest()
