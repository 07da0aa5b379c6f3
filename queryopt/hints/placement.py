"""Put one hint block at the very head of a statement, where pg_hint_plan reads it.

pg_hint_plan reads only the first ``/*+`` of the text, and only when every
character before it is a letter, digit, whitespace, ``_``, ``,``, ``(``, ``)``,
``[`` or ``]``. So queryopt's block goes first; hint blocks the text already
carries (first, after a tracing comment where they are dead, or after the
leading keywords as in ``SELECT /*+ … */``) are read and merged into it; other
leading comments follow the block; the statement itself is never rewritten.
"""

from __future__ import annotations

from queryopt.analysis.sqltext import SqlHead, split_head
from queryopt.errors import HintError
from queryopt.hints.hintset import HintSet
from queryopt.hints.parse import parse_hints

__all__ = ["apply_hint_block", "existing_hints", "render_block"]

_HINT_START = "/*+"
_HINT_END = "*/"
_ALLOWED_BEFORE_HINT = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_,()[] \t\n\r\f\v")


def render_block(hints: HintSet, *, has_params: bool) -> str:
    """``/*+ … */`` for ``hints``; with parameters, ``%`` is doubled so the driver passes it through.

    >>> from queryopt.hints.model import Set
    >>> render_block(HintSet.of(Set("search_path", "a%b")), has_params=True)
    '/*+ Set(search_path "a%%b") */'
    """
    block = hints.block()
    return block.replace("%", "%%") if has_params else block


def _body_hint_span(sql: str, body_start: int) -> tuple[int, int] | None:
    """A ``/*+ … */`` after the first keywords (``SELECT /*+ … */``) that pg_hint_plan would read."""
    i, n = body_start, len(sql)
    while i < n and sql[i] in _ALLOWED_BEFORE_HINT:
        i += 1
    if not sql.startswith(_HINT_START, i):
        return None
    end = sql.find(_HINT_END, i + len(_HINT_START))
    return None if end < 0 else (i, end + len(_HINT_END))


def _read_block(text: str, *, has_params: bool) -> HintSet:
    body = text[len(_HINT_START) : -len(_HINT_END)]
    if has_params:
        body = body.replace("%%", "%")
    try:
        return parse_hints(body)
    except HintError as exc:
        raise HintError(f"the query's own hint block {text!r} cannot be merged: {exc}") from exc


def existing_hints(sql: str, *, has_params: bool = False, head: SqlHead | None = None) -> HintSet:
    """The hints ``sql`` already carries in leading hint blocks and in a block after its first keywords.

    >>> existing_hints("/* app=shop */ /*+ SeqScan(t) */ SELECT * FROM t").render()
    'SeqScan(t)'
    """
    head = head if head is not None else split_head(sql)
    found = HintSet()
    for comment in head.comments:
        if comment.is_hint_block:
            found = found.merge(_read_block(comment.text, has_params=has_params))
    span = _body_hint_span(sql, head.body_start)
    if span is not None:
        found = found.merge(_read_block(sql[span[0] : span[1]], has_params=has_params))
    return found


def _without_hint_comments(sql: str, head: SqlHead) -> str:
    """The leading text (comments and whitespace) with its hint blocks and their trailing whitespace cut out."""
    pieces: list[str] = []
    position = 0
    for comment in head.comments:
        if not comment.is_hint_block:
            continue
        pieces.append(sql[position : comment.start])
        position = comment.end
        while position < head.body_start and sql[position].isspace():
            position += 1
    pieces.append(sql[position : head.body_start])
    return "".join(pieces)


def apply_hint_block(sql: str, hints: HintSet, *, has_params: bool) -> str:
    """``sql`` with one hint block holding ``hints`` and the hints it already carried, placed first.

    Other leading comments (sqlcommenter, tracing) follow the block; everything
    from the first token on is byte-for-byte unchanged. Conflicting scan hints
    for one relation raise :class:`~queryopt.HintError`. With ``has_params``,
    ``%`` inside the block is written ``%%`` (and read back so from existing blocks).

    >>> from queryopt.hints.model import ScanHint
    >>> apply_hint_block("/* app=shop */ SELECT * FROM t", HintSet.of(ScanHint("SeqScan", "t")), has_params=False)
    '/*+ SeqScan(t) */ /* app=shop */ SELECT * FROM t'
    >>> apply_hint_block("/*+ NestLoop(a b) */ SELECT 1", HintSet.of(ScanHint("SeqScan", "a")), has_params=False)
    '/*+ NestLoop(a b) SeqScan(a) */ SELECT 1'
    """
    head = split_head(sql)
    carried_first = head.hint_is_first and len([c for c in head.comments if c.is_hint_block]) == 1
    if not hints and (head.hint_block is None or carried_first):
        return sql  # nothing to add and nothing misplaced
    merged = existing_hints(sql, has_params=has_params, head=head).merge(hints)
    if not merged:
        return sql
    rest = _without_hint_comments(sql, head) + sql[head.body_start :]
    separator = "" if rest[:1].isspace() else " "
    return render_block(merged, has_params=has_params) + separator + rest
