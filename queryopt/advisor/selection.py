"""Greedy choice of indexes over the whole workload (in the spirit of AutoAdmin/Extend), pure of any I/O.

Each round costs every remaining candidate together with the indexes chosen so
far and takes the one with the best net saving per byte; it stops when no
candidate saves at least ``min_gain`` (recorded milliseconds per hour), the
index budget is spent or ``max_indexes`` are chosen. A statement's saving is
its recorded time scaled by the fall in its estimated cost:
``rate × (cost_now − cost_with) / cost_before``. The net saving subtracts the
index's upkeep (the table's row writes times a per-write cost).

Costing is the expensive part (one plan per statement the candidate's table
touches), so a candidate's costs are kept between rounds and planned again only
when an index chosen since shares one of its statements. A last pass drops a
chosen index whose statements do as well without it (a wider index chosen later
can make a narrow one redundant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Choice", "Costing", "Option", "select_indexes"]

_MIN_SIZE = 8192.0  # one page: keeps "saving per byte" finite for a tiny estimate


@dataclass(frozen=True, slots=True)
class Option:
    """A candidate as the selection sees it."""

    key: int
    size_bytes: int
    write_cost: float
    """Upkeep in milliseconds per hour."""
    queries: frozenset[int]
    """The workload statements whose tables it is on."""


@dataclass(frozen=True, slots=True)
class Choice:
    option: Option
    saved: float
    """Milliseconds per hour saved when it was chosen (before upkeep)."""


class Costing(Protocol):
    """Plans statements with the chosen indexes, optionally plus one more."""

    def costs(self, queries: frozenset[int], extra: Option | None) -> Mapping[int, float]: ...

    def choose(self, option: Option) -> None: ...

    def unchoose(self, option: Option) -> None: ...


def _saving(
    queries: frozenset[int],
    costs: Mapping[int, float],
    current: Mapping[int, float],
    base: Mapping[int, float],
    rates: Mapping[int, float],
) -> float:
    total = 0.0
    for query in queries:
        before = base[query]
        if before > 0:
            total += rates[query] * max(0.0, current[query] - costs[query]) / before
    return total


def select_indexes(
    options: Sequence[Option],
    *,
    base: Mapping[int, float],
    rates: Mapping[int, float],
    costing: Costing,
    min_gain: float,
    max_indexes: int,
    budget_bytes: int | None,
    initial: Mapping[int, Mapping[int, float]] | None = None,
) -> list[Choice]:
    """The indexes to create, in the order chosen; ``costing`` is left with exactly those chosen.

    ``initial`` holds costs already planned for an option alone (option key → statement → cost).
    """
    current = dict(base)
    remaining = list(options)
    cached: dict[int, Mapping[int, float]] = dict(initial or {})
    chosen: list[Choice] = []
    spent = 0
    while len(chosen) < max_indexes and remaining:
        best: tuple[float, Option, float] | None = None
        for option in remaining:
            if budget_bytes is not None and spent + option.size_bytes > budget_bytes:
                continue
            costs = cached.get(option.key)
            if costs is None:
                costs = cached[option.key] = costing.costs(option.queries, option)
            saved = _saving(option.queries, costs, current, base, rates)
            net = saved - option.write_cost
            if net < min_gain or net <= 0:
                continue
            score = net / max(float(option.size_bytes), _MIN_SIZE)
            if best is None or score > best[0]:
                best = (score, option, saved)
        if best is None:
            break
        _, option, saved = best
        costing.choose(option)
        chosen.append(Choice(option, saved))
        spent += option.size_bytes
        for query, cost in cached[option.key].items():
            current[query] = min(current[query], cost)
        remaining = [other for other in remaining if other is not option]
        for other in remaining:
            if other.queries & option.queries:
                cached.pop(other.key, None)
    return _prune(chosen, base=base, rates=rates, costing=costing, min_gain=min_gain)


def _prune(
    chosen: list[Choice],
    *,
    base: Mapping[int, float],
    rates: Mapping[int, float],
    costing: Costing,
    min_gain: float,
) -> list[Choice]:
    if len(chosen) < 2:
        return chosen
    kept: list[Choice] = []
    for choice in chosen:
        option = choice.option
        with_all = costing.costs(option.queries, None)
        costing.unchoose(option)
        without = costing.costs(option.queries, None)
        saved = _saving(option.queries, with_all, without, base, rates)
        if saved - option.write_cost >= min_gain and saved > option.write_cost:
            costing.choose(option)
            kept.append(choice)
    return kept
