"""The immutable set of hints queryopt sends in one block, at most one per slot.

pg_hint_plan keeps one scan method per relation, one join method per set of
relations, one ``Leading``, one ``Rows`` per set of relations, one ``Parallel``
per relation and one value per setting, and silently drops all but one when a
slot is filled twice. :class:`HintSet` refuses that instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from queryopt.errors import HintError
from queryopt.hints.model import HINT_TYPES, Hint, ScanHint

__all__ = ["HintSet"]


def _describe_slot(slot: tuple[str, ...]) -> str:
    family, *names = slot
    subject = " ".join(names)
    return {
        "scan": f"relation {subject!r} (one scan method per relation)",
        "join": f"relations {subject!r} (one join method per set of relations)",
        "memoize": f"relations {subject!r} (one Memoize/NoMemoize per set of relations)",
        "leading": "the join order (one Leading per statement)",
        "rows": f"relations {subject!r} (one Rows per set of relations)",
        "parallel": f"relation {subject!r} (one Parallel per relation)",
        "set": f"setting {subject!r} (one value per setting)",
    }[family]


@dataclass(frozen=True, slots=True)
class HintSet:
    """An immutable, ordered collection of hints holding at most one hint per slot.

    >>> from queryopt.hints.model import JoinHint, ScanHint
    >>> hints = HintSet.of(ScanHint("IndexScan", "o", ("orders_customer_idx",)), JoinHint("HashJoin", ("o", "c")))
    >>> hints.render()
    'IndexScan(o orders_customer_idx) HashJoin(o c)'
    >>> hints.merge(HintSet.of(ScanHint("SeqScan", "o")))
    Traceback (most recent call last):
    ...
    queryopt.HintError: conflicting hints for relation 'o' (one scan method per relation): ...
    """

    hints: tuple[Hint, ...] = ()
    _slots: dict[tuple[str, ...], Hint] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        slots: dict[tuple[str, ...], Hint] = {}
        unique: list[Hint] = []
        for hint in self.hints:
            if not isinstance(hint, HINT_TYPES):
                raise HintError(f"not a hint: {hint!r}")
            held = slots.get(hint.slot)
            if held is None:
                slots[hint.slot] = hint
                unique.append(hint)
            elif held.meaning != hint.meaning:
                raise HintError(
                    f"conflicting hints for {_describe_slot(hint.slot)}: {held.render()} and {hint.render()}; "
                    "pg_hint_plan would silently use only one"
                )
        object.__setattr__(self, "hints", tuple(unique))
        object.__setattr__(self, "_slots", slots)

    @classmethod
    def of(cls, *hints: Hint) -> HintSet:
        return cls(tuple(hints))

    def merge(self, other: HintSet | Iterable[Hint]) -> HintSet:
        """This set followed by ``other``'s hints; equal hints appear once, conflicting ones raise HintError."""
        extra = other.hints if isinstance(other, HintSet) else tuple(other)
        if not extra:
            return self
        return HintSet(self.hints + extra)

    def __iter__(self) -> Iterator[Hint]:
        return iter(self.hints)

    def __len__(self) -> int:
        return len(self.hints)

    def __bool__(self) -> bool:
        return bool(self.hints)

    def __contains__(self, hint: object) -> bool:
        return hint in self.hints

    @property
    def relations(self) -> tuple[str, ...]:
        """Every relation some hint names, in first-mention order."""
        return tuple(dict.fromkeys(name for hint in self.hints for name in hint.relations))

    @property
    def scan_hints(self) -> tuple[ScanHint, ...]:
        return tuple(hint for hint in self.hints if isinstance(hint, ScanHint))

    def render(self) -> str:
        """The hints as pg_hint_plan reads them, space separated (without the comment delimiters)."""
        return " ".join(hint.render() for hint in self.hints)

    def block(self) -> str:
        """The whole hint comment, ``/*+ … */``."""
        return f"/*+ {self.render()} */"
