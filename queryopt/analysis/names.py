"""Relation and identifier names, folded the way PostgreSQL folds them."""

from __future__ import annotations

from sqlglot import exp

from queryopt.analysis.model import TableRef

__all__ = ["fold_identifier", "identifier_text", "table_ref"]

# PostgreSQL lower-cases only ASCII letters of unquoted identifiers (downcase_identifier).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_identifier(text: str, *, quoted: bool) -> str:
    """``Orders`` → ``orders``; ``"Orders"`` stays ``Orders``; non-ASCII letters keep their case.

    >>> fold_identifier("Orders", quoted=False), fold_identifier("Orders", quoted=True)
    ('orders', 'Orders')
    >>> fold_identifier("ÉTÉ_X", quoted=False)
    'ÉtÉ_x'
    """
    if quoted:
        return text
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def identifier_text(node: object) -> str | None:
    """The folded text of an identifier node, ``None`` for anything else."""
    if isinstance(node, exp.Identifier):
        return fold_identifier(node.this, quoted=bool(node.args.get("quoted")))
    return None


def table_ref(table: exp.Table) -> TableRef:
    """The :class:`TableRef` for a table node whose ``this`` is an identifier."""
    alias = table.args.get("alias")
    return TableRef(
        schema=identifier_text(table.args.get("db")),
        name=identifier_text(table.this) or "",
        alias=identifier_text(alias.this) if alias is not None else None,
    )
