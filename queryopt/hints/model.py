"""A typed model of pg_hint_plan hints, each rendering itself in pg_hint_plan's syntax.

Each hint knows the relations it names (as the query names them: the alias when
aliased), the *slot* it occupies in pg_hint_plan (see :mod:`queryopt.hints.hintset`)
and its *meaning*, which ignores the order names were given in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias, TypeVar

from queryopt.errors import HintError
from queryopt.hints.identifiers import check_identifier, quote_identifier

__all__ = [
    "HINT_TYPES",
    "Hint",
    "JoinHint",
    "JoinMethod",
    "JoinTree",
    "Leading",
    "Parallel",
    "Rows",
    "ScanHint",
    "ScanMethod",
    "Set",
]


class ScanMethod(StrEnum):
    """Scan hint keywords, spelt as pg_hint_plan spells them."""

    SEQ_SCAN = "SeqScan"
    TID_SCAN = "TidScan"
    INDEX_SCAN = "IndexScan"
    INDEX_ONLY_SCAN = "IndexOnlyScan"
    BITMAP_SCAN = "BitmapScan"
    INDEX_SCAN_REGEXP = "IndexScanRegexp"
    INDEX_ONLY_SCAN_REGEXP = "IndexOnlyScanRegexp"
    BITMAP_SCAN_REGEXP = "BitmapScanRegexp"
    NO_SEQ_SCAN = "NoSeqScan"
    NO_TID_SCAN = "NoTidScan"
    NO_INDEX_SCAN = "NoIndexScan"
    NO_INDEX_ONLY_SCAN = "NoIndexOnlyScan"
    NO_BITMAP_SCAN = "NoBitmapScan"

    @property
    def takes_indexes(self) -> bool:
        """Index, index-only and bitmap scans may name the indexes to choose from."""
        return self in _INDEX_SCANS

    @property
    def is_regexp(self) -> bool:
        """The ``…Regexp`` forms take POSIX regular expressions instead of index names."""
        return self.value.endswith("Regexp")


_INDEX_SCANS = frozenset(
    {
        ScanMethod.INDEX_SCAN,
        ScanMethod.INDEX_ONLY_SCAN,
        ScanMethod.BITMAP_SCAN,
        ScanMethod.INDEX_SCAN_REGEXP,
        ScanMethod.INDEX_ONLY_SCAN_REGEXP,
        ScanMethod.BITMAP_SCAN_REGEXP,
    }
)


class JoinMethod(StrEnum):
    """Join hint keywords (``Memoize``/``NoMemoize`` steer the inner side of a nested loop)."""

    NEST_LOOP = "NestLoop"
    HASH_JOIN = "HashJoin"
    MERGE_JOIN = "MergeJoin"
    NO_NEST_LOOP = "NoNestLoop"
    NO_HASH_JOIN = "NoHashJoin"
    NO_MERGE_JOIN = "NoMergeJoin"
    MEMOIZE = "Memoize"
    NO_MEMOIZE = "NoMemoize"


_E = TypeVar("_E", bound=StrEnum)


def _enum_member(enum: type[_E], value: object, what: str) -> _E:
    """Accept the enum member or its keyword in any case (pg_hint_plan compares keywords case-insensitively)."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        for member in enum:
            if member.value.lower() == value.lower():
                return member
    allowed = ", ".join(member.value for member in enum)
    raise HintError(f"{what} {value!r} is not one of {allowed}")


def _names(values: Iterable[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    return tuple(check_identifier(value, what) for value in values)


def _quoted(names: Iterable[str]) -> str:
    return " ".join(quote_identifier(name) for name in names)


@dataclass(frozen=True, slots=True)
class ScanHint:
    """How to scan one relation: ``ScanHint("IndexScan", "o", ("orders_customer_idx",))``.

    ``relation`` is the name the query uses (its alias when aliased); ``indexes``
    limits the choice to these indexes (only for index, index-only and bitmap
    scans; regular expressions for the ``…Regexp`` forms).

    >>> ScanHint("indexscan", "o", ("orders_customer_idx",)).render()
    'IndexScan(o orders_customer_idx)'
    """

    kind: ScanMethod
    relation: str
    indexes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _enum_member(ScanMethod, self.kind, "scan hint"))
        check_identifier(self.relation, "relation")
        indexes = _names(self.indexes, "index name")
        if indexes and not self.kind.takes_indexes:
            raise HintError(f"{self.kind.value} takes no index names, got {list(indexes)}")
        object.__setattr__(self, "indexes", tuple(dict.fromkeys(indexes)))

    @property
    def relations(self) -> tuple[str, ...]:
        return (self.relation,)

    @property
    def slot(self) -> tuple[str, ...]:
        return ("scan", self.relation)

    @property
    def meaning(self) -> tuple[object, ...]:
        """What the hint asks for, independent of the order names were given in."""
        return (self.kind, self.relation, tuple(sorted(self.indexes)))

    def render(self) -> str:
        return f"{self.kind.value}({_quoted((self.relation, *self.indexes))})"

    def with_relations(self, mapping: dict[str, str]) -> ScanHint:
        return ScanHint(self.kind, mapping.get(self.relation, self.relation), self.indexes)


@dataclass(frozen=True, slots=True)
class JoinHint:
    """How to join a set of relations: ``JoinHint("HashJoin", ("o", "c"))``; order does not matter.

    >>> JoinHint("NestLoop", ("o", "c")).render()
    'NestLoop(o c)'
    """

    kind: JoinMethod
    relations: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _enum_member(JoinMethod, self.kind, "join hint"))
        relations = tuple(dict.fromkeys(_names(self.relations, "relation")))
        if len(relations) < 2:
            raise HintError(f"{self.kind.value} needs at least two distinct relations, got {list(relations)}")
        object.__setattr__(self, "relations", relations)

    @property
    def slot(self) -> tuple[str, ...]:
        family = "memoize" if self.kind in (JoinMethod.MEMOIZE, JoinMethod.NO_MEMOIZE) else "join"
        return (family, *sorted(self.relations))

    @property
    def meaning(self) -> tuple[object, ...]:
        return (self.kind, tuple(sorted(self.relations)))

    def render(self) -> str:
        return f"{self.kind.value}({_quoted(self.relations)})"

    def with_relations(self, mapping: dict[str, str]) -> JoinHint:
        return JoinHint(self.kind, tuple(mapping.get(name, name) for name in self.relations))


JoinTree: TypeAlias = "str | tuple[JoinTree, JoinTree]"


def _tree_names(tree: JoinTree) -> Iterator[str]:
    if isinstance(tree, str):
        yield tree
    else:
        for branch in tree:
            yield from _tree_names(branch)


def _check_tree(tree: object) -> JoinTree:
    if isinstance(tree, str):
        return check_identifier(tree, "relation")
    if isinstance(tree, Sequence) and len(tree) == 2:
        return (_check_tree(tree[0]), _check_tree(tree[1]))
    raise HintError(f"a directed Leading joins pairs: each group must hold exactly two members, got {tree!r}")


def _render_tree(tree: JoinTree) -> str:
    if isinstance(tree, str):
        return quote_identifier(tree)
    return f"({_render_tree(tree[0])} {_render_tree(tree[1])})"


def _map_tree(tree: JoinTree, mapping: dict[str, str]) -> JoinTree:
    if isinstance(tree, str):
        return mapping.get(tree, tree)
    return (_map_tree(tree[0], mapping), _map_tree(tree[1], mapping))


@dataclass(frozen=True, slots=True)
class Leading:
    """Join order. By default only the order is fixed (``Leading(a b c)``); ``directed=True`` also fixes
    which side is outer, folding the relations left-deep, and accepts nested pairs for bushy trees.

    >>> Leading(("a", "b", "c")).render()
    'Leading(a b c)'
    >>> Leading(("a", "b", "c"), directed=True).render()
    'Leading(((a b) c))'
    >>> Leading((("a", "b"), ("c", "d")), directed=True).render()
    'Leading(((a b) (c d)))'
    """

    order: tuple[JoinTree, ...]
    directed: bool = False

    def __post_init__(self) -> None:
        given: object = self.order
        if isinstance(given, str) or not isinstance(given, Iterable):
            raise HintError(f"Leading takes a sequence of relations, got {given!r}")
        items = tuple(given)
        if self.directed:
            order: tuple[JoinTree, ...] = tuple(_check_tree(item) for item in items)
        elif all(isinstance(item, str) for item in items):
            order = _names(items, "relation")
        else:
            raise HintError("nested pairs in Leading fix the join direction: pass directed=True")
        names = [name for item in order for name in _tree_names(item)]
        if len(names) < 2:
            raise HintError(f"Leading needs at least two relations, got {names}")
        if len(set(names)) != len(names):
            raise HintError(f"Leading names a relation twice: {names}")
        object.__setattr__(self, "order", order)

    @property
    def relations(self) -> tuple[str, ...]:
        return tuple(name for item in self.order for name in _tree_names(item))

    @property
    def tree(self) -> JoinTree:
        """The join tree of a directed Leading: the relations folded left-deep."""
        tree = self.order[0]
        for item in self.order[1:]:
            tree = (tree, item)
        return tree

    @property
    def slot(self) -> tuple[str, ...]:
        return ("leading",)

    @property
    def meaning(self) -> tuple[object, ...]:
        return (self.directed, self.tree if self.directed else self.order)

    def render(self) -> str:
        if self.directed:
            return f"Leading({_render_tree(self.tree)})"
        return f"Leading({_quoted(self.relations)})"

    def with_relations(self, mapping: dict[str, str]) -> Leading:
        return Leading(tuple(_map_tree(item, mapping) for item in self.order), directed=self.directed)


_ROWS_OPERATORS = {"#": "set to", "+": "add", "-": "subtract", "*": "multiply by"}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True, slots=True)
class Rows:
    """Correct the row estimate of a join: ``Rows(("o", "c"), "#", 100)`` sets it to 100; ``+``, ``-``
    and ``*`` add, subtract and multiply. pg_hint_plan applies it to joins only (two relations or more).

    >>> Rows(("o", "c"), "*", 2.5).render()
    'Rows(o c *2.5)'
    """

    relations: tuple[str, ...]
    operator: str
    value: float

    def __post_init__(self) -> None:
        relations = tuple(dict.fromkeys(_names(self.relations, "relation")))
        if len(relations) < 2:
            raise HintError(f"Rows corrects joins: it needs at least two relations, got {list(relations)}")
        if self.operator not in _ROWS_OPERATORS:
            raise HintError(f"Rows operator must be one of {' '.join(_ROWS_OPERATORS)}, got {self.operator!r}")
        value: object = self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise HintError(f"Rows value must be a finite number >= 0, got {value!r}")
        object.__setattr__(self, "relations", relations)

    @property
    def slot(self) -> tuple[str, ...]:
        return ("rows", *sorted(self.relations))

    @property
    def meaning(self) -> tuple[object, ...]:
        return (tuple(sorted(self.relations)), self.operator, float(self.value))

    def render(self) -> str:
        return f"Rows({_quoted(self.relations)} {self.operator}{_number(self.value)})"

    def with_relations(self, mapping: dict[str, str]) -> Rows:
        return Rows(tuple(mapping.get(name, name) for name in self.relations), self.operator, self.value)


@dataclass(frozen=True, slots=True)
class Parallel:
    """Parallel workers for one relation's scan; ``hard=True`` forces the plan to use them.

    >>> Parallel("o", 4, hard=True).render()
    'Parallel(o 4 hard)'
    """

    relation: str
    workers: int
    hard: bool = False

    def __post_init__(self) -> None:
        check_identifier(self.relation, "relation")
        workers: object = self.workers
        if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 1024:
            raise HintError(f"Parallel workers must be an integer from 0 to 1024, got {workers!r}")

    @property
    def relations(self) -> tuple[str, ...]:
        return (self.relation,)

    @property
    def slot(self) -> tuple[str, ...]:
        return ("parallel", self.relation)

    @property
    def meaning(self) -> tuple[object, ...]:
        return (self.relation, self.workers, self.hard)

    def render(self) -> str:
        return f"Parallel({quote_identifier(self.relation)} {self.workers} {'hard' if self.hard else 'soft'})"

    def with_relations(self, mapping: dict[str, str]) -> Parallel:
        return Parallel(mapping.get(self.relation, self.relation), self.workers, self.hard)


_GUC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_.+\-]+")


@dataclass(frozen=True, slots=True)
class Set:
    """A planner setting for this statement only: ``Set("work_mem", "64MB")``.

    >>> Set("random_page_cost", "1.1").render()
    'Set(random_page_cost 1.1)'
    """

    guc: str
    value: str

    def __post_init__(self) -> None:
        guc: object = self.guc
        if not isinstance(guc, str) or not _GUC_NAME.fullmatch(guc):
            raise HintError(f"Set needs a setting name such as work_mem, got {guc!r}")
        object.__setattr__(self, "guc", guc.lower())
        value: object = self.value
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif isinstance(value, (int, float)):
            value = _number(value)
        if not isinstance(value, str):
            raise HintError(f"Set value must be a string, got {value!r}")
        object.__setattr__(self, "value", check_identifier(value, "setting value"))

    @property
    def relations(self) -> tuple[str, ...]:
        return ()

    @property
    def slot(self) -> tuple[str, ...]:
        return ("set", self.guc)

    @property
    def meaning(self) -> tuple[object, ...]:
        return (self.guc, self.value)

    def render(self) -> str:
        bare = _BARE_VALUE.fullmatch(self.value)
        value = self.value if bare else '"' + self.value.replace('"', '""') + '"'
        return f"Set({self.guc} {value})"

    def with_relations(self, mapping: dict[str, str]) -> Set:
        return self


Hint: TypeAlias = ScanHint | JoinHint | Leading | Rows | Parallel | Set
HINT_TYPES: tuple[type, ...] = (ScanHint, JoinHint, Leading, Rows, Parallel, Set)
