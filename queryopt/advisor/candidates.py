"""Candidate B-tree indexes for one table occurrence, from how a statement searches it (pure).

The order of a B-tree's columns decides what it serves: equality columns first
(any order among them serves the query; the most distinct leads, so the index
also serves other queries filtering on it alone), then one range column or the
``ORDER BY`` columns, which the index then returns already sorted (a top-N
query stops after N entries). Join keys are equality conditions for a nested
loop's inner side. Wider combinations are candidates too, with no fixed limit
on their width: the costing decides whether the extra size pays.

>>> from queryopt.advisor.predicates import ColumnUse
>>> use = ColumnUse((None, "orders"), equality=("status", "customer_id"), order=(("created_at", True),))
>>> [c.label for c in candidate_indexes(use, {"customer_id": 20000, "status": 4})]  # doctest: +NORMALIZE_WHITESPACE
['customer_id', 'status', 'customer_id, status', 'customer_id, status, created_at', 'created_at']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from queryopt.advisor.predicates import ColumnUse, TableName

__all__ = ["IndexCandidate", "candidate_indexes", "covers", "unique_candidates"]

MAX_CANDIDATES_PER_USE = 16


@dataclass(frozen=True, slots=True)
class IndexCandidate:
    """A B-tree index that may help: key columns in order, ``descending`` per column.

    Directions are normalized so the first column is ascending (a B-tree is read
    backwards as cheaply as forwards); a descending flag remains only where the
    sort mixes directions.
    """

    table: TableName
    columns: tuple[str, ...]
    descending: tuple[bool, ...]

    @property
    def label(self) -> str:
        return ", ".join(f"{c} DESC" if d else c for c, d in zip(self.columns, self.descending, strict=True))


def _make(table: TableName, columns: Sequence[str], descending: Sequence[bool] | None = None) -> IndexCandidate | None:
    seen: dict[str, bool] = {}
    for position, column in enumerate(columns):
        seen.setdefault(column, bool(descending[position]) if descending is not None else False)
    if not seen:
        return None
    flags = tuple(seen.values())
    if flags[0]:
        flags = tuple(not flag for flag in flags)
    return IndexCandidate(table, tuple(seen), flags)


def candidate_indexes(use: ColumnUse, distinct: Mapping[str, float] | None = None) -> list[IndexCandidate]:
    """The candidate indexes for one table occurrence, most specific ideas after the simple ones.

    ``distinct`` (column → estimated distinct values, from ``pg_stats``) orders equality columns,
    most distinct first; without it they keep the order the statement names them in.
    """
    rank = distinct or {}
    equality = sorted(use.equality, key=lambda column: -rank.get(column, 0.0))
    found: dict[IndexCandidate, None] = {}

    def add(columns: Sequence[str], descending: Sequence[bool] | None = None) -> None:
        candidate = _make(use.table, columns, descending)
        if candidate is not None:
            found.setdefault(candidate)

    for column in equality:
        add([column])
    for width in range(2, len(equality) + 1):
        add(equality[:width])
    for column in use.ranges:
        add([*equality, column])
    sort = [(column, desc) for column, desc in use.order if column not in use.equality]
    if sort:
        sort_columns = [column for column, _ in sort]
        # Equality columns are fixed, so only the sort columns' directions relative to each other matter.
        sort_desc = [desc != sort[0][1] for _, desc in sort]
        add([*equality, *sort_columns], [False] * len(equality) + sort_desc)
        add(sort_columns, sort_desc)
    for column in use.ranges:
        add([column])
    for column in use.joins:
        add([column])
        if equality:
            add([column, *equality])
    return list(found)[:MAX_CANDIDATES_PER_USE]


def _directions_match(candidate: Sequence[bool], existing: Sequence[bool]) -> bool:
    same = all(c == e for c, e in zip(candidate, existing, strict=False))
    flipped = all(c != e for c, e in zip(candidate, existing, strict=False))
    return same or flipped


def covers(key_columns: Sequence[str | None], key_descending: Sequence[bool], candidate: IndexCandidate) -> bool:
    """True when an existing B-tree with these keys already serves ``candidate``: its columns are a prefix.

    >>> c = IndexCandidate((None, "t"), ("a", "b"), (False, False))
    >>> covers(["a", "b", "c"], [False] * 3, c), covers(["b", "a"], [False] * 2, c), covers(["a"], [False], c)
    (True, False, False)
    """
    width = len(candidate.columns)
    if len(key_columns) < width or tuple(key_columns[:width]) != candidate.columns:
        return False
    return _directions_match(candidate.descending, key_descending[:width])


def unique_candidates(groups: Iterable[Iterable[IndexCandidate]]) -> list[IndexCandidate]:
    """Candidates from many statements, each once, in first-seen order."""
    return list(dict.fromkeys(candidate for group in groups for candidate in group))
