"""Plan identity and the hints that reproduce a plan: pure functions of ``EXPLAIN (FORMAT JSON)``.

A plan's *shape* is what the planner chose, not what it estimated: node types
(with join type and aggregate strategy), the relations scanned under the names
the query uses, the indexes, and the tree they form. Costs, row counts, worker
counts and conditions (which carry constants of custom plans) are left out, so
the same plan hashes alike whatever the data size or the parameter values.

:func:`pin_hints` turns a shape into the full pg_hint_plan hint set that asks
for it again: a directed ``Leading`` with the join tree, the method of every
join, the scan method and index of every relation.

>>> explained = [{"Plan": {"Node Type": "Nested Loop", "Join Type": "Inner", "Total Cost": 9.5, "Plans": [
...     {"Node Type": "Seq Scan", "Relation Name": "customers", "Alias": "c"},
...     {"Node Type": "Index Scan", "Relation Name": "orders", "Alias": "o", "Index Name": "orders_customer_idx"},
... ]}}]
>>> shape = plan_shape(explained)
>>> pin_hints(shape).render()
'Leading((c o)) Set(max_parallel_workers_per_gather 0) NestLoop(c o) SeqScan(c) IndexScan(o orders_customer_idx)'
>>> shape.plan_hash == plan_shape(explained).plan_hash, len(shape.plan_hash)
(True, 16)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from queryopt.errors import HintError
from queryopt.hints.hintset import HintSet
from queryopt.hints.model import Hint, JoinHint, JoinMethod, JoinTree, Leading, ScanHint, ScanMethod, Set

__all__ = ["PlanShape", "ShapeNode", "pin_hints", "plan_shape"]

_JOINS = {"Nested Loop": JoinMethod.NEST_LOOP, "Hash Join": JoinMethod.HASH_JOIN, "Merge Join": JoinMethod.MERGE_JOIN}
_SCANS = {
    "Seq Scan": ScanMethod.SEQ_SCAN,
    "Index Scan": ScanMethod.INDEX_SCAN,
    "Index Only Scan": ScanMethod.INDEX_ONLY_SCAN,
    "Bitmap Heap Scan": ScanMethod.BITMAP_SCAN,
    "Tid Scan": ScanMethod.TID_SCAN,
}
# Scans of something that is not a table: pg_hint_plan has no scan method for them and cannot order them.
_UNHINTABLE_SCANS = frozenset(
    {"Subquery Scan", "CTE Scan", "Function Scan", "Values Scan", "WorkTable Scan", "Table Function Scan"}
)
_GATHERS = frozenset({"Gather", "Gather Merge"})
_SUBPLAN_RELATIONS = frozenset({"InitPlan", "SubPlan"})
# What else the planner chose that is part of the shape: join type, aggregate strategy, CTE and function names.
_DETAIL_KEYS = ("Join Type", "Strategy", "Partial Mode", "Operation", "CTE Name", "Function Name")


@dataclass(frozen=True, slots=True)
class ShapeNode:
    """One node of a plan, without its estimates."""

    node_type: str
    relation: str | None = None
    alias: str | None = None
    """The name the query uses for the relation (pg_hint_plan's name for it)."""
    index: str | None = None
    detail: str | None = None
    """Join type, aggregate strategy, CTE or function name, when the node has one."""
    subplan: bool = False
    """An InitPlan or SubPlan below its parent: a query block of its own."""
    children: tuple[ShapeNode, ...] = ()

    @property
    def label(self) -> str:
        text = self.node_type + (f" ({self.detail})" if self.detail else "")
        if self.index:
            text += f" using {self.index}"
        if self.relation:
            text += f" on {self.relation}" + (f" {self.alias}" if self.alias and self.alias != self.relation else "")
        return ("subplan: " if self.subplan else "") + text

    def canonical(self) -> str:
        """A text that is equal for equal shapes (the input of the plan hash)."""
        fields = (self.node_type, self.detail, self.relation, self.alias, self.index, self.subplan)
        own = json.dumps(fields, separators=(",", ":"))
        return own + "[" + ",".join(child.canonical() for child in self.children) + "]"

    def walk(self, depth: int = 0) -> Iterator[tuple[int, ShapeNode]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


@dataclass(frozen=True, slots=True)
class PlanShape:
    """The shape of one plan and its stable hash."""

    root: ShapeNode
    plan_hash: str
    """16 lower-case hex characters; equal for plans of equal shape."""

    def lines(self) -> tuple[str, ...]:
        """The plan tree, one indented line per node (for terminals and reports)."""
        return tuple("  " * depth + ("-> " if depth else "") + node.label for depth, node in self.root.walk())

    def differences(self, other: PlanShape) -> str:
        """The first node where two shapes part, for a one-line message."""
        mine, theirs = self.lines(), other.lines()
        for position, (left, right) in enumerate(zip(mine, theirs, strict=False)):
            if left != right:
                return f"node {position + 1}: {left.strip()!r} became {right.strip()!r}"
        if len(mine) != len(theirs):
            return f"{len(mine)} nodes became {len(theirs)}"
        return "the shapes are equal"


def _node(plan: Mapping[str, Any], *, subplan: bool = False) -> ShapeNode:
    details = [str(plan[key]) for key in _DETAIL_KEYS if plan.get(key) not in (None, "")]
    children = tuple(
        _node(child, subplan=child.get("Parent Relationship") in _SUBPLAN_RELATIONS) for child in plan.get("Plans", ())
    )
    relation = plan.get("Relation Name")
    return ShapeNode(
        node_type=str(plan.get("Node Type", "?")),
        relation=str(relation) if relation is not None else None,
        alias=str(plan["Alias"]) if plan.get("Alias") is not None else None,
        index=str(plan["Index Name"]) if plan.get("Index Name") is not None else None,
        detail=", ".join(details) or None,
        subplan=subplan,
        children=children,
    )


def plan_shape(explained: Any) -> PlanShape:
    """The shape of an ``EXPLAIN (FORMAT JSON)`` result: the list psycopg returns, its first item, or JSON text."""
    document = json.loads(explained) if isinstance(explained, (str, bytes)) else explained
    if isinstance(document, list):
        document = document[0] if document else None
    if not isinstance(document, Mapping) or not isinstance(document.get("Plan"), Mapping):
        raise HintError("not an EXPLAIN (FORMAT JSON) result: expected [{'Plan': {...}}]")
    root = _node(document["Plan"])
    digest = hashlib.sha256(root.canonical().encode()).hexdigest()[:16]
    return PlanShape(root, digest)


# -- pinning -----------------------------------------------------------------------------------------------


class _PinBuilder:
    """Walks a shape once, collecting scan and join hints and the join tree of each query block."""

    def __init__(self) -> None:
        self.scans: list[Hint] = []
        self.joins: list[Hint] = []
        self.trees: list[JoinTree] = []
        self.names: dict[str, str] = {}

    def block(self, node: ShapeNode) -> None:
        """One query block (the statement, or an InitPlan/SubPlan): its join tree, if it joins."""
        tree = self.tree(node)
        if tree is not None and not isinstance(tree, str):
            self.trees.append(tree)

    def tree(self, node: ShapeNode) -> JoinTree | None:
        inputs = [child for child in node.children if not child.subplan]
        for child in node.children:
            if child.subplan:
                self.block(child)
        method = _JOINS.get(node.node_type)
        if method is not None:
            if len(inputs) != 2:
                raise HintError(f"cannot pin: a {node.node_type} node with {len(inputs)} inputs")
            outer, inner = self.tree(inputs[0]), self.tree(inputs[1])
            if outer is None or inner is None:
                raise HintError(f"cannot pin: one side of a {node.node_type} is not a table pg_hint_plan can name")
            joined: JoinTree = (outer, inner)
            self.joins.append(JoinHint(method, tuple(_names(joined))))
            return joined
        if node.node_type in _SCANS:
            return self.scan(node)
        if node.node_type in _UNHINTABLE_SCANS:
            for child in inputs:
                self.block(child)  # a subquery's own joins and scans can still be pinned
            return None
        if len(inputs) == 1:
            return self.tree(inputs[0])
        if not inputs:
            return None
        raise HintError(f"cannot pin: a {node.node_type} node combines {len(inputs)} inputs (pin one join tree)")

    def scan(self, node: ShapeNode) -> str:
        alias = node.alias or node.relation
        if alias is None:
            raise HintError(f"cannot pin: a {node.node_type} without a relation name")
        seen = self.names.get(alias)
        if seen is not None:
            raise HintError(
                f"cannot pin: the name {alias!r} is scanned twice ({seen}, {node.label}); "
                "pg_hint_plan cannot tell the two apart"
            )
        self.names[alias] = node.label
        method = _SCANS[node.node_type]
        indexes: tuple[str, ...] = ()
        if method is ScanMethod.BITMAP_SCAN:
            indexes = tuple(dict.fromkeys(n.index for _, n in node.walk() if n.index))
        elif node.index:
            indexes = (node.index,)
        self.scans.append(ScanHint(method, alias, indexes))
        return alias


def _names(tree: JoinTree) -> Iterator[str]:
    if isinstance(tree, str):
        yield tree
    else:
        for branch in tree:
            yield from _names(branch)


def pin_hints(shape: PlanShape) -> HintSet:
    """The pg_hint_plan hints that ask for ``shape``: ``Leading`` with its join tree, each join's method,
    each relation's scan method and indexes, and no parallel workers for a serial plan.

    :class:`~queryopt.HintError` says why a plan cannot be pinned (two query blocks that join, a relation
    scanned twice under one name, an Append of several inputs…)."""
    builder = _PinBuilder()
    builder.block(shape.root)
    if len(builder.trees) > 1:
        raise HintError(
            f"cannot pin: the plan joins in {len(builder.trees)} query blocks and pg_hint_plan takes one Leading"
        )
    hints: list[Hint] = [Leading((tree,), directed=True) for tree in builder.trees]
    if not builder.scans:
        raise HintError("cannot pin: the plan scans no table")
    if not any(node.node_type in _GATHERS for _, node in shape.root.walk()):
        # A serial plan stays serial: once more rows are expected the planner would add workers around it.
        hints.append(Set("max_parallel_workers_per_gather", "0"))
    return HintSet((*hints, *builder.joins, *builder.scans))
