"""Which table nodes of a tree are base relations, which are written, and in what order they appear.

A name is a CTE reference only where the CTE is in scope: inside the statement
that owns the ``WITH``, and in a non-recursive ``WITH`` only in the CTEs that
follow it (``WITH t AS (SELECT * FROM t)`` reads the real table ``t``).
Schema-qualified names are never CTEs. ``FOR UPDATE OF a`` names, the new name
of ``ALTER … RENAME TO`` and the objects of ``DROP FUNCTION`` / ``CREATE
SEQUENCE`` and the like are not relations either.
"""

from __future__ import annotations

from sqlglot import exp

from queryopt.analysis.names import identifier_text

__all__ = ["dml_target", "relation_tables", "written_table_nodes"]

# DDL kinds whose direct table nodes are tables or views (not indexes, sequences, functions, schemas, …).
_RELATION_KINDS = frozenset({"TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE"})
_DDL_NODES = (exp.Create, exp.Drop, exp.Comment, exp.Alter)


def _cte_names(with_: exp.Expr, upto: int | None) -> set[str]:
    ctes = with_.expressions if upto is None else with_.expressions[:upto]
    return {name for cte in ctes if (name := identifier_text(cte.args["alias"].this)) is not None}


def _is_cte_reference(table: exp.Table, name: str) -> bool:
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            # Inside a CTE body: earlier CTEs are visible, and all of them (itself too) when RECURSIVE.
            upto = None if node.args.get("recursive") else child.index
            if name in _cte_names(node, upto):
                return True
            owner = node.parent
            if owner is None:
                return False
            child, node = owner, owner.parent  # the owner's own WITH was just handled
            continue
        with_ = node.args.get("with_")
        if with_ is not None and name in _cte_names(with_, None):
            return True
        child, node = node, node.parent
    return False


def _is_relation(table: exp.Table) -> bool:
    parent = table.parent
    if isinstance(parent, (exp.Lock, exp.AlterRename)):
        return False
    if isinstance(parent, _DDL_NODES):
        kind = str(parent.args.get("kind") or "").upper()
        if parent.args.get("materialized") and kind == "VIEW":
            kind = "MATERIALIZED VIEW"
        return kind in _RELATION_KINDS
    return True


def _position(table: exp.Table) -> int:
    start = table.this.meta_get("start")
    return start if isinstance(start, int) else -1


def relation_tables(tables: list[exp.Table], cte_names: set[str]) -> list[exp.Table]:
    """The base-relation table nodes among ``tables``, in text order."""
    found = []
    for table in tables:
        if not _is_relation(table):
            continue
        if cte_names and table.args.get("db") is None:
            name = identifier_text(table.this)
            if name in cte_names and _is_cte_reference(table, name):
                continue
        found.append(table)
    if len(found) > 1:
        found.sort(key=_position)  # a stable sort keeps walk order where positions are missing
    return found


def dml_target(node: exp.Expr) -> exp.Table | None:
    """The table an INSERT/UPDATE/DELETE/MERGE writes."""
    target = node.this
    if isinstance(target, exp.Schema):
        target = target.this
    return target if isinstance(target, exp.Table) else None


def _ddl_targets(root: exp.Expr) -> list[exp.Expr | None]:
    if isinstance(root, exp.TruncateTable):
        return list(root.expressions)
    if isinstance(root, exp.Drop):
        return list(root.args.get("tables") or [root.this])
    if isinstance(root, exp.Create):
        target = root.this
        if isinstance(target, exp.Index):
            return [target.args.get("table")]
        return [target.this if isinstance(target, exp.Schema) else target]
    if isinstance(root, exp.Alter):
        return [root.this]
    if isinstance(root, exp.Copy) and root.args.get("kind"):  # COPY … FROM loads the table
        return [root.this]
    return []


def written_table_nodes(root: exp.Expr, dml: list[exp.Expr], into: exp.Table | None) -> set[int]:
    """The ``id()`` of every table node the statement writes."""
    written = {id(target) for node in dml if (target := dml_target(node)) is not None}
    written.update(id(target) for target in _ddl_targets(root) if isinstance(target, exp.Table))
    if into is not None:
        written.add(id(into))
    return written
