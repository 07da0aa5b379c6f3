"""Which columns of each table a statement filters, joins and sorts on (pure sqlglot, no I/O).

Each ``SELECT``, ``UPDATE`` and ``DELETE`` of the tree is one scope: its own
``FROM``/``JOIN``/target tables, its ``WHERE`` and ``JOIN … ON`` conjuncts, its
``ORDER BY``. A conjunct ``col = <no column of this scope>`` is an equality,
``<``/``<=``/``>``/``>=``/``BETWEEN`` a range, ``col IN (list)`` and ``col IS NULL``
equalities, ``a.x = b.y`` a join key of both tables (a column of an enclosing
scope counts as a value: a correlated subquery looks its table up by it).
Expressions over a column (``lower(x) = …``, ``x::date = …``) and ``OR`` are
left alone: a plain B-tree on the column would not serve them.

>>> uses = column_uses("SELECT * FROM orders o WHERE o.customer_id = %s AND o.created_at >= %s "
...                    "ORDER BY o.created_at DESC LIMIT 10")
>>> uses[0].equality, uses[0].ranges, uses[0].order
(('customer_id',), ('created_at',), (('created_at', True),))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlglot import exp

from queryopt.analysis.names import identifier_text, table_ref
from queryopt.analysis.statement import parse_statement

__all__ = ["ColumnUse", "ColumnsOf", "TableName", "column_uses", "column_uses_of_tree"]

TableName = tuple[str | None, str]
"""``(schema or None, name)`` as the statement names the table, folded like PostgreSQL."""
ColumnsOf = Callable[[TableName], frozenset[str] | None]
"""The columns a table has (``None`` when unknown); resolves unqualified columns in joins."""

_SCOPES = (exp.Select, exp.Update, exp.Delete)
_RANGES = (exp.GT, exp.GTE, exp.LT, exp.LTE)


@dataclass(frozen=True, slots=True)
class ColumnUse:
    """How one table occurrence of a statement is searched: column names in the order the text uses them."""

    table: TableName
    equality: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    """``ORDER BY`` columns with ``True`` for descending, when every sort key is a column of this table."""
    joins: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.equality or self.ranges or self.order or self.joins)


@dataclass(slots=True)
class _Occurrence:
    table: TableName
    equality: dict[str, None] = field(default_factory=dict)
    ranges: dict[str, None] = field(default_factory=dict)
    joins: dict[str, None] = field(default_factory=dict)
    order: tuple[tuple[str, bool], ...] = ()

    def frozen(self) -> ColumnUse:
        ranges = tuple(c for c in self.ranges if c not in self.equality)
        joins = tuple(c for c in self.joins if c not in self.equality)
        return ColumnUse(self.table, tuple(self.equality), ranges, self.order, joins)


@dataclass(slots=True)
class _Scope:
    node: exp.Expr
    occurrences: dict[str, _Occurrence]
    """By the name the scope refers to them: the alias, else the table name."""
    parent: _Scope | None


def _own_tables(node: exp.Expr) -> Iterator[exp.Table]:
    candidates: list[exp.Expr | None] = []
    if isinstance(node, (exp.Update, exp.Delete)):
        candidates.append(node.this)
        candidates.extend(node.args.get("using") or [])
    from_ = node.args.get("from_")
    if from_ is not None:
        candidates.append(from_.this)
    candidates.extend(join.this for join in node.args.get("joins") or [])
    for table in candidates:
        if isinstance(table, exp.Table) and isinstance(table.this, exp.Identifier):
            yield table


def _conjuncts(condition: exp.Expr | None) -> Iterator[exp.Expr]:
    if condition is None:
        return
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.this)
        yield from _conjuncts(condition.expression)
    else:
        yield condition


class _Resolver:
    def __init__(self, columns_of: ColumnsOf | None) -> None:
        self._columns_of = columns_of

    def _has(self, occurrence: _Occurrence, column: str) -> bool | None:
        if self._columns_of is None:
            return None
        columns = self._columns_of(occurrence.table)
        return None if columns is None else column in columns

    def resolve(self, node: exp.Expr, scope: _Scope) -> tuple[_Scope, _Occurrence, str] | None:
        """The scope and table occurrence a plain column reference belongs to, and its folded name."""
        while isinstance(node, exp.Paren):
            node = node.this
        if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
            return None
        name = identifier_text(node.this)
        qualifier = identifier_text(node.args.get("table"))
        if name is None:
            return None
        current: _Scope | None = scope
        while current is not None:
            if qualifier is not None:
                occurrence = current.occurrences.get(qualifier)
                if occurrence is not None:
                    return current, occurrence, name
            else:
                found = self._unqualified(current, name)
                if found is not None:
                    return current, found, name
            current = current.parent
        return None

    def _unqualified(self, scope: _Scope, name: str) -> _Occurrence | None:
        occurrences = list(scope.occurrences.values())
        having = [o for o in occurrences if self._has(o, name)]
        if len(having) == 1:
            return having[0]
        if len(occurrences) == 1 and self._has(occurrences[0], name) is not False:
            return occurrences[0]
        return None


def _direct_columns(node: exp.Expr, scope: _Scope) -> Iterator[exp.Column]:
    """Columns of ``node`` that belong to ``scope`` itself, not to a subquery inside it."""
    if isinstance(node, exp.Column):
        yield node
        return
    for column in node.find_all(exp.Column):
        if column.find_ancestor(*_SCOPES) is scope.node:
            yield column


class _Collector:
    def __init__(self, columns_of: ColumnsOf | None) -> None:
        self.resolver = _Resolver(columns_of)

    def is_value(self, node: exp.Expr, scope: _Scope) -> bool:
        """True when ``node`` is fixed while this scope's tables are searched (no column of the scope)."""
        for column in _direct_columns(node, scope):
            found = self.resolver.resolve(column, scope)
            if found is None or found[0] is scope:
                return False  # an unknown column may be this scope's: not a value
        return True

    def conjunct(self, condition: exp.Expr, scope: _Scope) -> None:
        if isinstance(condition, exp.EQ):
            self._equality(condition.this, condition.expression, scope)
        elif isinstance(condition, _RANGES):
            for column, other in ((condition.this, condition.expression), (condition.expression, condition.this)):
                self._single(column, other, scope, "ranges")
        elif isinstance(condition, exp.Between):
            found = self.resolver.resolve(condition.this, scope)
            bounds = (condition.args.get("low"), condition.args.get("high"))
            if found and found[0] is scope and all(b is not None and self.is_value(b, scope) for b in bounds):
                found[1].ranges.setdefault(found[2])
        elif isinstance(condition, exp.In):
            found = self.resolver.resolve(condition.this, scope)
            if found is None or found[0] is not scope:
                return
            if condition.args.get("query") is not None:
                found[1].joins.setdefault(found[2])
            elif all(self.is_value(item, scope) for item in condition.expressions):
                found[1].equality.setdefault(found[2])
        elif isinstance(condition, exp.Is) and isinstance(condition.expression, exp.Null):
            found = self.resolver.resolve(condition.this, scope)
            if found and found[0] is scope:
                found[1].equality.setdefault(found[2])

    def _single(self, column: exp.Expr, other: exp.Expr, scope: _Scope, kind: str) -> None:
        found = self.resolver.resolve(column, scope)
        if found and found[0] is scope and self.is_value(other, scope):
            getattr(found[1], kind).setdefault(found[2])

    def _equality(self, left: exp.Expr, right: exp.Expr, scope: _Scope) -> None:
        lhs, rhs = self.resolver.resolve(left, scope), self.resolver.resolve(right, scope)
        if lhs and rhs:
            if lhs[1] is rhs[1]:
                return  # a.x = a.y: not a search condition
            for one, other in ((lhs, rhs), (rhs, lhs)):
                if one[0] is scope and other[0] is scope:
                    one[1].joins.setdefault(one[2])
                elif one[0] is scope:  # correlated: the outer value is fixed while this scope runs
                    one[1].equality.setdefault(one[2])
                    other[1].joins.setdefault(other[2])
            return
        self._single(left, right, scope, "equality")
        self._single(right, left, scope, "equality")

    def order(self, node: exp.Expr, scope: _Scope) -> None:
        order = node.args.get("order")
        if order is None:
            return
        keys: list[tuple[str, bool]] = []
        owner: _Occurrence | None = None
        for ordered in order.expressions:
            found = self.resolver.resolve(ordered.this, scope)
            if found is None or found[0] is not scope or (owner is not None and found[1] is not owner):
                return  # sorting by an expression or by two tables: no single index yields the order
            owner = found[1]
            keys.append((found[2], bool(ordered.args.get("desc"))))
        if owner is not None:
            owner.order = tuple(keys)


def column_uses_of_tree(root: exp.Expr, columns_of: ColumnsOf | None = None) -> list[ColumnUse]:
    """:func:`column_uses` for a parsed tree (which it does not change)."""
    collector = _Collector(columns_of)
    scopes: dict[int, _Scope] = {}
    order: list[_Scope] = []
    for node in root.find_all(*_SCOPES, bfs=True):  # breadth first: an outer scope before its subqueries
        parent_node = node.find_ancestor(*_SCOPES)
        parent = scopes.get(id(parent_node)) if parent_node is not None else None
        occurrences: dict[str, _Occurrence] = {}
        for table in _own_tables(node):
            ref = table_ref(table)
            occurrences.setdefault(ref.reference, _Occurrence((ref.schema, ref.name)))
        scope = _Scope(node, occurrences, parent)
        scopes[id(node)] = scope
        order.append(scope)
    for scope in order:
        if not scope.occurrences:
            continue
        statement = scope.node
        conditions = [statement.args.get("where")]
        conditions += [join.args.get("on") for join in statement.args.get("joins") or []]
        for condition in conditions:
            inner = condition.this if isinstance(condition, exp.Where) else condition
            for conjunct in _conjuncts(inner):
                collector.conjunct(conjunct, scope)
        for join in statement.args.get("joins") or []:
            _using(join, scope)
        if isinstance(statement, exp.Select):
            collector.order(statement, scope)
    return [o.frozen() for scope in order for o in scope.occurrences.values()]


def _using(join: exp.Expr, scope: _Scope) -> None:
    """``JOIN t USING (k)``: ``k`` is a join key of every table of the scope (those without it find no plan)."""
    for identifier in join.args.get("using") or []:
        name = identifier_text(identifier if isinstance(identifier, exp.Identifier) else identifier.this)
        if name is not None:
            for occurrence in scope.occurrences.values():
                occurrence.joins.setdefault(name)


def column_uses(sql: str, columns_of: ColumnsOf | None = None) -> list[ColumnUse]:
    """Every table occurrence of ``sql`` with the columns it is searched by (empty uses included).

    Raises :class:`~queryopt.AnalysisError` when the text is not one statement.
    """
    parsed = parse_statement(sql)
    if parsed.root is None or isinstance(parsed.root, exp.Command):
        return []
    return column_uses_of_tree(parsed.root, columns_of)
