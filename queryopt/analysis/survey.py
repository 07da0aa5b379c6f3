"""One pass over a statement's tree that gathers facts and normalizes the tree for the fingerprint.

The pass is pre-order, so each node's facts are read before the node is
replaced: a placeholder is recorded with its style, then becomes a plain
``%s``. Literals, booleans, negative numbers, typed strings and interval
constants become placeholders too; unquoted identifiers are folded to lower
case and bare words (option names, units) to upper case. Two kinds of literal
stay, because they are structure, not data: the position in ``ORDER BY 1`` /
``GROUP BY 1`` and type modifiers (``numeric(10, 2)``).
The tree is the caller's own copy (fresh from the parser) and is discarded after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from sqlglot import exp

from queryopt.analysis.functions import Volatility, classify_function, has_side_effects
from queryopt.analysis.model import PlaceholderStyle
from queryopt.analysis.names import fold_identifier, identifier_text
from queryopt.analysis.session import set_config_is_local

__all__ = ["FunctionCall", "TreeFacts", "survey"]

# Typed sqlglot nodes for built-ins whose value is not a function of their arguments.
_TYPED_UNSTABLE: dict[type[exp.Expr], tuple[str, Volatility]] = {
    exp.CurrentTimestamp: ("now", Volatility.TIME_DEPENDENT),
    exp.CurrentDate: ("current_date", Volatility.TIME_DEPENDENT),
    exp.CurrentTime: ("current_time", Volatility.TIME_DEPENDENT),
    exp.Localtime: ("localtime", Volatility.TIME_DEPENDENT),
    exp.Localtimestamp: ("localtimestamp", Volatility.TIME_DEPENDENT),
    exp.Rand: ("random", Volatility.VOLATILE),
    exp.Uuid: ("gen_random_uuid", Volatility.VOLATILE),
}
# Special date/time input strings that PostgreSQL resolves against the clock when cast.
_CLOCK_WORDS = frozenset({"now", "today", "tomorrow", "yesterday"})
_TEMPORAL_TYPES = frozenset(exp.DataType.TEMPORAL_TYPES)
_STRUCTURAL_LITERAL_PARENTS = (exp.Ordered, exp.Group, exp.DataTypeParam)

(
    _IDENTIFIER,
    _VAR,
    _TABLE,
    _FUNCTION,
    _TYPED_FUNCTION,
    _PLACEHOLDER,
    _PARAMETER,
    _LITERAL,
    _CONSTANT,
    _BOOLEAN,
    _NEG,
    _INTERVAL,
    _CAST,
    _LOCK,
    _INTO,
    _DML,
    _CTE,
    _SAMPLE,
    _LIST,
) = range(19)

_CODES: dict[type[exp.Expr], int] = {
    exp.Identifier: _IDENTIFIER,
    exp.Var: _VAR,
    exp.Table: _TABLE,
    exp.Anonymous: _FUNCTION,
    exp.AnonymousAggFunc: _FUNCTION,
    **dict.fromkeys(_TYPED_UNSTABLE, _TYPED_FUNCTION),
    exp.Placeholder: _PLACEHOLDER,
    exp.Parameter: _PARAMETER,
    exp.Literal: _LITERAL,
    **dict.fromkeys(
        (exp.HexString, exp.BitString, exp.ByteString, exp.RawString, exp.National, exp.UnicodeString), _CONSTANT
    ),
    exp.Boolean: _BOOLEAN,
    exp.Neg: _NEG,
    exp.Interval: _INTERVAL,
    exp.Cast: _CAST,
    exp.Lock: _LOCK,
    exp.Into: _INTO,
    **dict.fromkeys((exp.Insert, exp.Update, exp.Delete, exp.Merge), _DML),
    exp.CTE: _CTE,
    exp.TableSample: _SAMPLE,
    **dict.fromkeys((exp.In, exp.Array, exp.Values), _LIST),
}


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A call whose volatility matters (anything not safe), or any anonymous call."""

    name: str
    volatility: Volatility
    side_effects: bool


@dataclass(slots=True)
class TreeFacts:
    """What :func:`survey` found, before tables are scoped and lists collapsed."""

    tables: list[exp.Table] = field(default_factory=list)
    cte_names: set[str] = field(default_factory=set)
    functions: list[FunctionCall] = field(default_factory=list)
    placeholders: list[tuple[PlaceholderStyle, str | None]] = field(default_factory=list)
    locks: bool = False
    into: exp.Table | None = None
    dml: list[exp.Expr] = field(default_factory=list)
    clock_literals: list[str] = field(default_factory=list)
    unrepeatable_samples: int = 0
    lists: list[exp.Expr] = field(default_factory=list)
    set_config_locals: list[bool] = field(default_factory=list)
    """One entry per ``set_config`` call: whether it is transaction-local."""


def _anonymous_call(node: exp.Expr) -> FunctionCall:
    this = node.this
    quoted = isinstance(this, exp.Identifier) and bool(this.args.get("quoted"))
    name = fold_identifier(this.this if isinstance(this, exp.Identifier) else str(this), quoted=quoted)
    parent = node.parent
    schema = None
    if isinstance(parent, exp.Dot) and node.arg_key == "expression":
        qualifier = parent.this
        schema = identifier_text(qualifier.expression if isinstance(qualifier, exp.Dot) else qualifier)
    volatility = classify_function(name, schema=schema, argument_count=len(node.expressions))
    if schema == "pg_catalog" and volatility is not Volatility.UNCLASSIFIED:
        schema = None  # pg_catalog.now() is the built-in now()
    return FunctionCall(f"{schema}.{name}" if schema else name, volatility, has_side_effects(name))


def _placeholder_fact(node: exp.Expr) -> tuple[PlaceholderStyle, str | None]:
    this = node.this
    if isinstance(this, exp.Identifier):
        return PlaceholderStyle.PYFORMAT, this.this
    if isinstance(this, str):  # sqlglot keeps ``:name`` as a bare string, ``%(name)s`` as an identifier
        return PlaceholderStyle.NAMED, this
    return (PlaceholderStyle.QMARK if node.args.get("jdbc") else PlaceholderStyle.FORMAT), None


class _Replacer:
    """Replaces nodes in O(1) each: sqlglot's ``replace`` re-parents a node's whole list, so replacing
    every item of a 10,000-item IN list one by one costs 10,000²/2 steps. Items of lists are swapped in
    place here, and each list touched is handed back to sqlglot once, at the end, to re-parent it."""

    __slots__ = ("_lists",)

    def __init__(self) -> None:
        self._lists: dict[int, tuple[exp.Expr, str]] = {}

    def __call__(self, node: exp.Expr, replacement: exp.Expr) -> None:
        parent, key, index = node.parent, node.arg_key, node.index
        if parent is None or key is None or index is None:
            node.replace(replacement)
            return
        items = parent.args[key]
        items[index] = replacement
        node.parent = node.arg_key = node.index = None  # detached as replace() leaves it; see finish()
        self._lists[id(items)] = (parent, key)

    def finish(self) -> None:
        for parent, key in self._lists.values():
            parent.set(key, parent.args[key])  # one pass per list: parents, indexes, cached hashes


def survey(root: exp.Expr) -> TreeFacts:
    """Gather facts from ``root`` and normalize it in place for fingerprinting."""
    facts = TreeFacts()
    replace = _Replacer()
    try:
        _walk(root, facts, replace)
    finally:
        replace.finish()
    return facts


def _walk(root: exp.Expr, facts: TreeFacts, replace: _Replacer) -> None:
    for node in root.dfs():
        code = _CODES.get(type(node))
        if code is None:
            continue
        if code == _IDENTIFIER:
            if not node.args.get("quoted"):
                node.args["this"] = fold_identifier(node.this, quoted=False)
        elif code == _VAR:  # option names, units, keywords sqlglot keeps as words: case-insensitive
            if isinstance(node.this, str):
                node.args["this"] = node.this.upper()
        elif code == _TABLE:
            if isinstance(node.this, exp.Identifier):
                facts.tables.append(cast(exp.Table, node))
        elif code == _FUNCTION:
            call = _anonymous_call(node)
            facts.functions.append(call)
            if call.name == "set_config":  # read before its arguments become placeholders (pre-order)
                facts.set_config_locals.append(set_config_is_local(node))
        elif code == _TYPED_FUNCTION:
            function, volatility = _TYPED_UNSTABLE[type(node)]
            facts.functions.append(FunctionCall(function, volatility, False))
        elif code == _PLACEHOLDER:
            style, placeholder = _placeholder_fact(node)
            facts.placeholders.append((style, placeholder))
            if style is not PlaceholderStyle.FORMAT:
                replace(node, exp.Placeholder())
        elif code == _PARAMETER:
            number = node.this
            facts.placeholders.append((PlaceholderStyle.NUMERIC, number.name if number is not None else None))
            replace(node, exp.Placeholder())
        elif code == _LITERAL:
            if not isinstance(node.parent, _STRUCTURAL_LITERAL_PARENTS):
                replace(node, exp.Placeholder())
        elif code == _CONSTANT:
            replace(node, exp.Placeholder())
        elif code == _BOOLEAN:
            if not isinstance(node.parent, exp.Is):
                replace(node, exp.Placeholder())
        elif code == _NEG:
            if isinstance(node.this, exp.Literal):
                replace(node, exp.Placeholder())
        elif code == _INTERVAL:
            if isinstance(node.this, exp.Literal):  # '3 days', '3' DAY: the unit is part of the constant
                replace(node, exp.Cast(this=exp.Placeholder(), to=exp.DataType(this=exp.DataType.Type.INTERVAL)))
        elif code == _CAST:
            value = node.this
            if isinstance(value, exp.Literal) and value.is_string and value.this.strip().lower() in _CLOCK_WORDS:
                target = node.args.get("to")
                if isinstance(target, exp.DataType) and target.this in _TEMPORAL_TYPES:
                    facts.clock_literals.append(value.this.strip().lower())
        elif code == _LOCK:
            facts.locks = True
        elif code == _INTO:
            if isinstance(node.this, exp.Table):
                facts.into = node.this
        elif code == _DML:
            facts.dml.append(node)
        elif code == _CTE:
            alias = node.args.get("alias")
            name = identifier_text(alias.this) if alias is not None else None
            if name is not None:
                facts.cte_names.add(name)
        elif code == _SAMPLE:
            if node.args.get("seed") is None:
                facts.unrepeatable_samples += 1
        elif len(node.expressions) > 1:  # _LIST
            facts.lists.append(node)
