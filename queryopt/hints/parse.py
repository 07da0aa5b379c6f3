"""Read hint text written in pg_hint_plan's syntax into the typed model.

Used for a hint block the query already carries (so it can be merged with
queryopt's, never left second) and for hints given as text, such as the
command line's ``--hint 'HashJoin(o c)'``. The grammar follows pg_hint_plan:
a keyword (any case), then a parenthesised list of names, each bare (read up to
whitespace, a parenthesis or a quote, not case-folded) or double-quoted with
``""`` for a quote. ``Leading`` also takes nested pairs: ``Leading(((a b) c))``.
"""

from __future__ import annotations

from dataclasses import dataclass

from queryopt.errors import HintError
from queryopt.hints.hintset import HintSet
from queryopt.hints.model import (
    Hint,
    JoinHint,
    JoinMethod,
    JoinTree,
    Leading,
    Parallel,
    Rows,
    ScanHint,
    ScanMethod,
    Set,
)

__all__ = ["parse_hints"]

_SCAN = {member.value.lower(): member for member in ScanMethod}
_JOIN = {member.value.lower(): member for member in JoinMethod}
_NESTED = list[object]  # a parenthesised group: names (str) and nested groups


@dataclass(slots=True)
class _Reader:
    text: str
    pos: int = 0

    def fail(self, problem: str) -> HintError:
        return HintError(f"cannot read hints {self.text!r}: {problem} at offset {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def keyword(self) -> str:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and not self.text[self.pos].isspace() and self.text[self.pos] != "(":
            self.pos += 1
        return self.text[start : self.pos]

    def expect(self, char: str) -> None:
        self.skip_space()
        if not self.text.startswith(char, self.pos):
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def name(self) -> str:
        self.skip_space()
        text, n = self.text, len(self.text)
        if self.text.startswith('"', self.pos):
            self.pos += 1
            chars: list[str] = []
            while True:
                if self.pos >= n:
                    raise self.fail("unterminated quoted name")
                if text[self.pos] == '"':
                    if text.startswith('""', self.pos):
                        chars.append('"')
                        self.pos += 2
                        continue
                    self.pos += 1
                    break
                chars.append(text[self.pos])
                self.pos += 1
            value = "".join(chars)
        else:
            start = self.pos
            while self.pos < n and not text[self.pos].isspace() and text[self.pos] not in '()"':
                self.pos += 1
            value = text[start : self.pos]
        if value == "":
            raise self.fail("empty name")
        return value

    def group(self, *, nested: bool) -> _NESTED:
        """``( item item … )``; items are names, or groups when ``nested``."""
        self.expect("(")
        items: _NESTED = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                raise self.fail("missing ')'")
            char = self.text[self.pos]
            if char == ")":
                self.pos += 1
                return items
            if char == "(" and nested:
                items.append(self.group(nested=True))
            else:
                items.append(self.name())


def _tree(item: object) -> JoinTree:
    if isinstance(item, str):
        return item
    assert isinstance(item, list)
    if len(item) != 2:
        raise HintError(f"Leading pairs must hold exactly two members, got {len(item)}")
    return (_tree(item[0]), _tree(item[1]))


def _strings(items: _NESTED) -> list[str]:
    return [item for item in items if isinstance(item, str)]


def _one(reader: _Reader, keyword: str) -> Hint:
    lowered = keyword.lower()
    if lowered in _SCAN:
        names = _strings(reader.group(nested=False))
        if not names:
            raise reader.fail(f"{keyword} needs a relation")
        return ScanHint(_SCAN[lowered], names[0], tuple(names[1:]))
    if lowered in _JOIN:
        return JoinHint(_JOIN[lowered], tuple(_strings(reader.group(nested=False))))
    if lowered == "leading":
        items = reader.group(nested=True)
        if len(items) == 1 and isinstance(items[0], list):
            pair = _tree(items[0])
            assert isinstance(pair, tuple)
            return Leading(pair, directed=True)
        if not all(isinstance(item, str) for item in items):
            raise reader.fail("Leading takes either names or one parenthesised pair")
        return Leading(tuple(_strings(items)))
    if lowered == "rows":
        names = _strings(reader.group(nested=False))
        if len(names) < 3 or names[-1][:1] not in "#+-*" or names[-1] == "":
            raise reader.fail("Rows needs relations followed by #n, +n, -n or *n")
        try:
            value = float(names[-1][1:])
        except ValueError:
            raise reader.fail(f"Rows value {names[-1]!r} is not a number") from None
        return Rows(tuple(names[:-1]), names[-1][0], int(value) if value.is_integer() else value)
    if lowered == "parallel":
        names = _strings(reader.group(nested=False))
        if len(names) not in (2, 3) or not names[1].isdigit():
            raise reader.fail("Parallel needs a relation, a number of workers and optionally soft or hard")
        mode = names[2].lower() if len(names) == 3 else "soft"
        if mode not in ("soft", "hard"):
            raise reader.fail(f"Parallel enforcement must be soft or hard, got {names[2]!r}")
        return Parallel(names[0], int(names[1]), hard=mode == "hard")
    if lowered == "set":
        names = _strings(reader.group(nested=False))
        if len(names) != 2:
            raise reader.fail("Set needs a setting name and a value")
        return Set(names[0], names[1])
    raise reader.fail(f"unknown hint keyword {keyword!r}")


def parse_hints(text: str) -> HintSet:
    """Parse hint text (the inside of a ``/*+ … */`` block) into a :class:`HintSet`.

    >>> parse_hints('IndexScan(o "Orders_idx") Leading(((o c) l)) Rows(o c #10)').render()
    'IndexScan(o "Orders_idx") Leading(((o c) l)) Rows(o c #10)'
    """
    reader = _Reader(text)
    hints: list[Hint] = []
    while not reader.at_end():
        keyword = reader.keyword()
        if not keyword:
            raise reader.fail("expected a hint keyword")
        hints.append(_one(reader, keyword))
    return HintSet(tuple(hints))
