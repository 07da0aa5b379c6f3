"""The greedy choice over a workload, against a cost model written out by hand (no planner needed).

In the model a statement costs the cheapest of its base cost and what each chosen index offers it.
"""

from __future__ import annotations

from collections.abc import Mapping

from queryopt.advisor.selection import Option, select_indexes


class Model:
    def __init__(self, base: dict[int, float], offers: dict[int, dict[int, float]]) -> None:
        self.base = base
        self.offers = offers  # option key -> statement -> cost with that index
        self.chosen: set[int] = set()
        self.plans = 0

    def _cost(self, query: int, indexes: set[int]) -> float:
        return min([self.base[query], *(self.offers[i].get(query, self.base[query]) for i in indexes)])

    def costs(self, queries: frozenset[int], extra: Option | None) -> Mapping[int, float]:
        indexes = self.chosen | ({extra.key} if extra is not None else set())
        self.plans += len(queries)
        return {q: self._cost(q, indexes) for q in queries}

    def choose(self, option: Option) -> None:
        self.chosen.add(option.key)

    def unchoose(self, option: Option) -> None:
        self.chosen.discard(option.key)


def _option(key: int, queries: set[int], size: int = 10_000_000, write_cost: float = 0.0) -> Option:
    return Option(key, size, write_cost, frozenset(queries))


def _select(model: Model, options: list[Option], rates: dict[int, float], **overrides: object) -> list[int]:
    settings: dict[str, object] = {"min_gain": 1.0, "max_indexes": 10, "budget_bytes": None} | overrides
    choices = select_indexes(options, base=model.base, rates=rates, costing=model, **settings)  # type: ignore[arg-type]
    return [choice.option.key for choice in choices]


def test_best_saving_per_byte_first_and_nothing_that_does_not_help() -> None:
    model = Model({0: 1000.0, 1: 1000.0}, {1: {0: 10.0}, 2: {1: 10.0}, 3: {}})
    options = [_option(1, {0}, size=10_000_000), _option(2, {1}, size=5_000_000), _option(3, {0, 1})]
    assert _select(model, options, {0: 100.0, 1: 100.0}) == [2, 1]
    assert model.chosen == {1, 2}


def test_one_index_serving_two_statements_beats_two_that_serve_one_each() -> None:
    model = Model({0: 1000.0, 1: 1000.0}, {1: {0: 10.0, 1: 10.0}, 2: {0: 10.0}, 3: {1: 10.0}})
    options = [_option(2, {0}), _option(3, {1}), _option(1, {0, 1})]
    assert _select(model, options, {0: 100.0, 1: 100.0}) == [1]  # 2 and 3 add nothing once 1 is there


def test_stops_when_the_next_index_saves_too_little() -> None:
    model = Model({0: 1000.0, 1: 1000.0}, {1: {0: 10.0}, 2: {1: 10.0}})
    options = [_option(1, {0}), _option(2, {1})]
    assert _select(model, options, {0: 100.0, 1: 0.5}, min_gain=1.0) == [1]


def test_upkeep_is_subtracted() -> None:
    model = Model({0: 1000.0}, {1: {0: 10.0}})
    assert _select(model, [_option(1, {0}, write_cost=150.0)], {0: 100.0}) == []
    assert _select(model, [_option(1, {0}, write_cost=50.0)], {0: 100.0}) == [1]


def test_budget_and_count_limits() -> None:
    model = Model({0: 1000.0, 1: 1000.0}, {1: {0: 10.0}, 2: {1: 10.0}})
    options = [_option(1, {0}, size=6_000_000), _option(2, {1}, size=6_000_000)]
    assert len(_select(model, options, {0: 100.0, 1: 100.0}, budget_bytes=10_000_000)) == 1
    model.chosen.clear()
    assert len(_select(model, options, {0: 100.0, 1: 100.0}, max_indexes=1)) == 1


def test_a_narrow_index_made_redundant_by_a_later_wide_one_is_dropped() -> None:
    # 1 = (a) serves statement 0 and is chosen first (more saving per byte); 2 = (a, b) serves both,
    # so once 2 is chosen, 1 saves nothing any more.
    model = Model({0: 1000.0, 1: 1000.0}, {1: {0: 10.0}, 2: {0: 10.0, 1: 10.0}})
    options = [_option(1, {0, 1}, size=5_000_000), _option(2, {0, 1}, size=11_000_000)]
    assert _select(model, options, {0: 100.0, 1: 100.0}) == [2]
    assert model.chosen == {2}


def test_costs_are_reused_until_a_choice_touches_their_statements() -> None:
    model = Model(dict.fromkeys(range(6), 1000.0), {k: {k: 10.0} for k in range(6)})
    options = [_option(k, {k}, size=1_000_000 * (k + 1)) for k in range(6)]
    assert _select(model, options, dict.fromkeys(range(6), 100.0)) == [0, 1, 2, 3, 4, 5]
    assert model.plans == 6 + 6 * 2  # once each, plus the final pass (with and without each choice)
