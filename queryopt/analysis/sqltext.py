"""Lexical facts about the head of a SQL text, without parsing it.

pg_hint_plan reads a hint block only when it is the first comment of the text,
so queryopt must know exactly which comments lead a statement and where the
statement itself begins. PostgreSQL block comments nest (``/* a /* b */ c */``);
line comments run to the end of the line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LeadingComment", "SqlHead", "split_head"]


@dataclass(frozen=True, slots=True)
class LeadingComment:
    """One comment before the first token; ``start``/``end`` index the original text."""

    text: str
    start: int
    end: int

    @property
    def is_hint_block(self) -> bool:
        """``/*+ … */``: the form pg_hint_plan reads (``/* +`` with a space is not)."""
        return self.text.startswith("/*+")

    @property
    def hint_body(self) -> str:
        """The text between ``/*+`` and ``*/``, stripped."""
        return self.text[3:-2].strip() if self.is_hint_block else ""


@dataclass(frozen=True, slots=True)
class SqlHead:
    """The comments that lead a statement and the offset where the statement starts."""

    comments: tuple[LeadingComment, ...]
    body_start: int

    @property
    def hint_block(self) -> LeadingComment | None:
        """The first leading ``/*+ … */`` block, wherever it stands among the leading comments."""
        return next((comment for comment in self.comments if comment.is_hint_block), None)

    @property
    def hint_is_first(self) -> bool:
        """True when the hint block is the first comment, the only place pg_hint_plan reads it."""
        return bool(self.comments) and self.comments[0].is_hint_block

    @property
    def other_comments(self) -> tuple[LeadingComment, ...]:
        hint = self.hint_block
        return tuple(comment for comment in self.comments if comment is not hint)


def _block_comment_end(sql: str, start: int) -> int:
    """Index just past the block comment opening at ``start``; -1 when it never closes."""
    depth, i, n = 0, start, len(sql)
    while i < n - 1:
        pair = sql[i : i + 2]
        if pair == "/*":
            depth += 1
            i += 2
        elif pair == "*/":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return -1


def split_head(sql: str) -> SqlHead:
    """Find the comments before the first token of ``sql``.

    >>> head = split_head("/* app=shop */ /*+ SeqScan(t) */ SELECT 1")
    >>> [c.text for c in head.comments], head.body_start, head.hint_is_first
    (['/* app=shop */', '/*+ SeqScan(t) */'], 33, False)
    """
    comments: list[LeadingComment] = []
    i, n = 0, len(sql)
    while i < n:
        if sql[i].isspace():
            i += 1
        elif sql.startswith("/*", i):
            end = _block_comment_end(sql, i)
            if end < 0:
                break  # unterminated: leave it to the parser to report
            comments.append(LeadingComment(sql[i:end], i, end))
            i = end
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
            comments.append(LeadingComment(sql[i:end], i, end))
            i = end
        else:
            break
    return SqlHead(tuple(comments), i)
