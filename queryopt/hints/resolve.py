"""Turn the caller's ``index_hints`` into a validated :class:`HintSet` for one query.

The caller may write:

- an index name alone, ``"orders_customer_idx"`` (or ``"shop.orders_customer_idx"``):
  its table is found in the catalog, then the name the query gives that table;
- a mapping, ``{"orders": "orders_customer_idx"}``: table or alias → index or indexes;
- hint objects (:class:`ScanHint`, :class:`JoinHint`, …) or hint text in
  pg_hint_plan syntax (``"HashJoin(o c)"``), for everything else;
- a sequence mixing the above, or a ready :class:`HintSet`.

Every relation must be one the query names; a table the query aliases is
rewritten to its alias (pg_hint_plan only matches the alias). Every index must
exist on that relation's table and suit the scan method. Anything else raises
:class:`~queryopt.HintError` naming what the query and the catalog really hold.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import psycopg

from queryopt.errors import HintError
from queryopt.hints.catalog import Catalog, IndexInfo, TableInfo
from queryopt.hints.hintset import HintSet
from queryopt.hints.model import HINT_TYPES, Hint, ScanHint, ScanMethod
from queryopt.hints.parse import parse_hints

__all__ = [
    "HintRequest",
    "IndexHintsArg",
    "NamedIndex",
    "QueryRelations",
    "RelationIndexes",
    "TableRefLike",
    "check_relations",
    "hint_requests",
    "resolve_hints",
]


@dataclass(frozen=True, slots=True)
class NamedIndex:
    """An index named without its table (``"orders_customer_idx"`` or ``"shop.orders_customer_idx"``)."""

    name: str


@dataclass(frozen=True, slots=True)
class RelationIndexes:
    """Indexes for one relation, named by table or alias (``{"o": "orders_customer_idx"}``)."""

    relation: str
    indexes: tuple[str, ...]


HintRequest: TypeAlias = NamedIndex | RelationIndexes | Hint

RelationIndexMapping: TypeAlias = Mapping[str, str | Sequence[str]]
IndexHintsArg: TypeAlias = (
    str | Sequence[str | HintRequest | RelationIndexMapping] | RelationIndexMapping | HintSet | None
)
"""The forms ``index_hints`` takes (see the module docstring)."""


class TableRefLike(Protocol):
    """What resolution needs of :class:`queryopt.analysis.TableRef`."""

    @property
    def schema(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def alias(self) -> str | None: ...
    @property
    def reference(self) -> str: ...


class QueryRelations(Protocol):
    """What resolution needs of :class:`queryopt.analysis.Analysis`."""

    @property
    def sql(self) -> str: ...
    @property
    def tables(self) -> Sequence[TableRefLike]: ...


def _describe_ref(ref: TableRefLike) -> str:
    table = f"{ref.schema}.{ref.name}" if ref.schema else ref.name
    return f"{table} AS {ref.alias}" if ref.alias else table


@dataclass(frozen=True, slots=True)
class _Relations:
    """The query's relations, indexed by the names a caller may use for them."""

    refs: tuple[TableRefLike, ...]

    def listing(self) -> str:
        if not self.refs:
            return "the query reads no tables"
        return "the query's relations are: " + ", ".join(dict.fromkeys(_describe_ref(ref) for ref in self.refs))

    def reference(self, name: str) -> str:
        """The name pg_hint_plan knows the relation by, for a reference, table name or schema.table."""
        by_reference = [ref for ref in self.refs if ref.reference == name]
        if by_reference:
            if len(by_reference) > 1:
                raise HintError(
                    f"relation {name!r} appears {len(by_reference)} times in the query and pg_hint_plan cannot tell "
                    f"them apart: give each occurrence its own alias ({self.listing()})"
                )
            return name
        schema, _, table = name.rpartition(".")
        by_table = [ref for ref in self.refs if ref.name == table and (not schema or ref.schema in (schema, None))]
        references = list(dict.fromkeys(ref.reference for ref in by_table))
        if len(references) == 1 and len(by_table) == 1:
            return references[0]
        if by_table:
            raise HintError(
                f"table {name!r} appears in the query as {', '.join(references)}: name the alias instead "
                f"({self.listing()})"
            )
        near = [ref.reference for ref in self.refs if ref.reference.lower() == name.lower()]
        advice = f"; names are case-sensitive, did you mean {near[0]!r}?" if near else ""
        raise HintError(f"relation {name!r} is not in the query: {self.listing()}{advice}")

    def refs_for(self, reference: str) -> list[TableRefLike]:
        return [ref for ref in self.refs if ref.reference == reference]


def _table_of(ref: TableRefLike, catalog: Catalog, conn: psycopg.Connection[Any] | None) -> TableInfo:
    table = catalog.table(ref.schema, ref.name)
    if table is None and catalog.refresh_for([f"table:{ref.schema}.{ref.name}"], conn):
        table = catalog.table(ref.schema, ref.name)
    if table is None:
        where = f"schema {ref.schema!r}" if ref.schema else f"search_path {', '.join(catalog.search_path) or '(empty)'}"
        raise HintError(
            f"table {ref.name!r} ({ref.reference} in the query) is not a table of database "
            f"{catalog.identity.dbname!r} ({where}); index hints need a real table"
        )
    return table


def _index_listing(table: TableInfo) -> str:
    if not table.indexes:
        return f"table {table.qualified_name} has no indexes"
    return f"indexes of {table.qualified_name}: " + ", ".join(index.describe() for index in table.indexes)


def _check_index_suits(kind: ScanMethod, index: IndexInfo, table: TableInfo) -> None:
    if not index.valid:
        raise HintError(
            f"index {index.name!r} on {table.qualified_name} is not valid (being built concurrently, or its build "
            "failed): the planner cannot use it"
        )
    plain = kind in (ScanMethod.INDEX_SCAN, ScanMethod.INDEX_ONLY_SCAN)
    if plain and not index.index_scan:
        raise HintError(
            f"index {index.name!r} ({index.method}) supports only bitmap scans: use BitmapScan, not {kind.value}"
        )
    if kind is ScanMethod.BITMAP_SCAN and not index.bitmap_scan:
        raise HintError(f"index {index.name!r} ({index.method}) does not support bitmap scans")


def _validate_scan(
    hint: ScanHint, relations: _Relations, catalog: Catalog, conn: psycopg.Connection[Any] | None
) -> None:
    if not hint.indexes:
        return
    (ref,) = relations.refs_for(hint.relation)
    table = _table_of(ref, catalog, conn)
    if hint.kind.is_regexp:
        for pattern in hint.indexes:
            try:
                matcher = re.compile(pattern)
            except re.error as exc:
                raise HintError(f"{hint.kind.value} pattern {pattern!r} is not a regular expression: {exc}") from None
            if not any(matcher.search(name) for name in table.index_names):
                raise HintError(f"{hint.kind.value} pattern {pattern!r} matches no index: {_index_listing(table)}")
        return
    missing = [name for name in hint.indexes if table.index(name) is None]
    if missing and catalog.refresh_for([f"index:{name}" for name in missing], conn):
        table = _table_of(ref, catalog, conn)
        missing = [name for name in hint.indexes if table.index(name) is None]
    if missing:
        elsewhere = [
            f"{name!r} is on {index.schema}.{index.table}" for name in missing for index in catalog.indexes_named(name)
        ]
        detail = f" ({'; '.join(elsewhere)})" if elsewhere else ""
        raise HintError(
            f"index {', '.join(map(repr, missing))} is not an index of {table.qualified_name} "
            f"({hint.relation} in the query){detail}; {_index_listing(table)}"
        )
    for name in hint.indexes:
        index = table.index(name)
        assert index is not None
        _check_index_suits(hint.kind, index, table)


def _scan_kind_for(indexes: Sequence[IndexInfo]) -> ScanMethod:
    """IndexScan, unless an index only serves bitmap scans (gin, brin): then BitmapScan, which every index serves."""
    return ScanMethod.INDEX_SCAN if all(index.index_scan for index in indexes) else ScanMethod.BITMAP_SCAN


def _locate_index(
    qualified: str, relations: _Relations, catalog: Catalog, conn: psycopg.Connection[Any] | None
) -> tuple[str, IndexInfo]:
    """(reference, index) for an index named without its table."""
    schema, _, name = qualified.rpartition(".")

    def candidates() -> list[IndexInfo]:
        return [index for index in catalog.indexes_named(name) if not schema or index.schema == schema]

    found = candidates()
    if not found and catalog.refresh_for([f"index:{qualified}"], conn):
        found = candidates()
    tables = catalog.tables  # one snapshot for the whole lookup
    query_tables: dict[tuple[str, str], list[str]] = {}
    for ref in relations.refs:
        table = catalog.table(ref.schema, ref.name)
        if table is not None:
            query_tables.setdefault((table.schema, table.name), []).append(ref.reference)
    if not found:
        known = [_index_listing(tables[key]) for key in query_tables if key in tables and tables[key].indexes] or [
            "the query's tables have no indexes"
        ]
        raise HintError(f"no index named {qualified!r} in database {catalog.identity.dbname!r}; {'; '.join(known)}")
    usable = [index for index in found if (index.schema, index.table) in query_tables]
    if not usable:
        owners = ", ".join(f"{index.schema}.{index.table}" for index in found)
        raise HintError(f"index {qualified!r} is on {owners}, which the query does not read; {relations.listing()}")
    if len(usable) > 1:
        raise HintError(
            f"index name {qualified!r} exists in several schemas the query reads: qualify it (schema.index)"
        )
    index = usable[0]
    references = list(dict.fromkeys(query_tables[(index.schema, index.table)]))
    if len(references) > 1 or len(relations.refs_for(references[0])) > 1:
        raise HintError(
            f"table {index.schema}.{index.table} of index {qualified!r} appears in the query as "
            f"{', '.join(references)}: say which, e.g. {{{references[0]!r}: {qualified!r}}}"
        )
    return references[0], index


def _mapping_requests(mapping: Mapping[Any, Any]) -> list[HintRequest]:
    requests: list[HintRequest] = []
    for relation, indexes in mapping.items():
        names = (indexes,) if isinstance(indexes, str) else tuple(indexes) if isinstance(indexes, Sequence) else ()
        if not isinstance(relation, str) or not names or not all(isinstance(name, str) for name in names):
            raise HintError(f"index_hints mapping takes relation -> index name(s), got {relation!r}: {indexes!r}")
        requests.append(RelationIndexes(relation, names))
    return requests


def hint_requests(index_hints: IndexHintsArg) -> tuple[HintRequest, ...]:
    """The caller's ``index_hints`` as an immutable, hashable tuple (hint text is parsed here).

    >>> hint_requests(["orders_customer_idx", "HashJoin(o c)"])
    (NamedIndex(name='orders_customer_idx'), JoinHint(kind=<JoinMethod.HASH_JOIN: 'HashJoin'>, relations=('o', 'c')))
    >>> hint_requests([{"o": "orders_customer_idx"}])
    (RelationIndexes(relation='o', indexes=('orders_customer_idx',)),)
    """
    if index_hints is None:
        return ()
    if isinstance(index_hints, HintSet):
        return index_hints.hints
    if isinstance(index_hints, Mapping):
        return tuple(_mapping_requests(index_hints))
    items: Sequence[object] = [index_hints] if isinstance(index_hints, str) else index_hints
    if not isinstance(items, Sequence):
        raise HintError(f"index_hints must be a name, a sequence, a mapping or a HintSet, got {index_hints!r}")
    requests: list[HintRequest] = []
    for item in items:
        if isinstance(item, Mapping):
            requests.extend(_mapping_requests(item))
        elif isinstance(item, HINT_TYPES):
            requests.append(item)  # type: ignore[arg-type]  # HINT_TYPES holds exactly the Hint union
        elif isinstance(item, (NamedIndex, RelationIndexes)):
            requests.append(item)
        elif isinstance(item, str) and "(" in item:
            requests.extend(parse_hints(item))
        elif isinstance(item, str) and item.strip():
            requests.append(NamedIndex(item.strip()))
        else:
            raise HintError(f"index_hints entries must be index names, hint text or hint objects, got {item!r}")
    return tuple(requests)


def _resolve(
    analysis: QueryRelations,
    requests: Sequence[HintRequest],
    catalog: Catalog | None,
    conn: psycopg.Connection[Any] | None,
) -> HintSet:
    relations = _Relations(tuple(analysis.tables))
    wanted: dict[str, list[IndexInfo]] = {}  # reference -> indexes asked for by name or mapping
    hints: list[Hint] = []
    for request in requests:
        if isinstance(request, (NamedIndex, RelationIndexes)) and catalog is None:
            raise HintError("index names cannot be checked without a catalog")
        if isinstance(request, NamedIndex):
            assert catalog is not None
            reference, index = _locate_index(request.name, relations, catalog, conn)
            wanted.setdefault(reference, []).append(index)
        elif isinstance(request, RelationIndexes):
            assert catalog is not None
            reference = relations.reference(request.relation)
            probe = ScanHint(ScanMethod.BITMAP_SCAN, reference, request.indexes)  # checks names, existence, validity
            _validate_scan(probe, relations, catalog, conn)
            table = _table_of(relations.refs_for(reference)[0], catalog, conn)
            for name in probe.indexes:
                named = table.index(name)
                assert named is not None  # _validate_scan checked it
                wanted.setdefault(reference, []).append(named)
        else:
            mapping = {name: relations.reference(name) for name in request.relations}
            hints.append(request.with_relations(mapping))
    scans = [
        ScanHint(_scan_kind_for(indexes), reference, tuple(index.name for index in indexes))
        for reference, indexes in wanted.items()
    ]
    result = HintSet(tuple(scans)).merge(hints)
    for hint in result.scan_hints:
        if hint.indexes and catalog is None:
            raise HintError(f"{hint.render()} names indexes, which cannot be checked without a catalog")
        if catalog is not None:
            _validate_scan(hint, relations, catalog, conn)
    return result


def check_relations(analysis: QueryRelations, index_hints: IndexHintsArg) -> None:
    """Check, without a catalog, that every relation the hints name is one the query names (indexes unchecked)."""
    relations = _Relations(tuple(analysis.tables))
    for request in hint_requests(index_hints):
        if isinstance(request, RelationIndexes):
            relations.reference(request.relation)
        elif not isinstance(request, NamedIndex):
            for name in request.relations:
                relations.reference(name)


_CACHE_SIZE = 2048
_cache: OrderedDict[Hashable, HintSet] = OrderedDict()
_cache_lock = threading.Lock()


def resolve_hints(
    analysis: QueryRelations,
    index_hints: IndexHintsArg,
    catalog: Catalog | None,
    *,
    conn: psycopg.Connection[Any] | None = None,
) -> HintSet:
    """Resolve and validate ``index_hints`` for the query ``analysis`` describes.

    With ``conn``, a table or index the catalog does not know triggers one
    reload through it before the error. Without a catalog (``None``) only hints
    that name no index can be resolved. Results are cached by query text,
    hints and catalog version, so a repeated call costs a dictionary lookup.
    """
    requests = hint_requests(index_hints)
    if not requests:
        return HintSet()
    key = (analysis.sql, requests, catalog.serial if catalog else 0, catalog.version if catalog else 0)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    result = _resolve(analysis, requests, catalog, conn)
    with _cache_lock:
        _cache[key] = result
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result
