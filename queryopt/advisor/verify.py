"""``--verify`` / ``--apply``: re-plan the workload with the advice in place, and create it only when asked.

With ``apply`` each index is built by ``CREATE INDEX CONCURRENTLY`` on a
connection of its own in autocommit (it cannot run in a transaction, and it
does not block writes). A build that fails leaves an invalid index behind:
it is dropped (``DROP INDEX CONCURRENTLY IF EXISTS``) and the failure
reported; the other indexes are still built. Without ``apply`` nothing is
created: the workload is re-planned with the hypothetical indexes together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import psycopg
from psycopg import sql

from queryopt.advisor.model import Advice, IndexAdvice, Verification, VerifiedQuery

__all__ = ["Replanned", "create_indexes", "verification"]

Replanned = Mapping[str, tuple[float, float, frozenset[str]]]
"""fingerprint → (cost before, cost now, names of the indexes the plan reads)."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def create_indexes(dsn: str, indexes: tuple[IndexAdvice, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Build each advised index for real; ``(created names, (name, error) pairs)``."""
    created: list[str] = []
    failed: list[tuple[str, str]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The advisor's own session is read-only; this one must not be, whatever the role's default.
        conn.execute("SET default_transaction_read_only = off")
        for index in indexes:
            try:
                conn.execute(index.create_statement.encode())
                created.append(index.name)
            except psycopg.Error as exc:
                failed.append((index.name, _one_line(exc)))
                schema = index.table.split(".", 1)[0]
                drop = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, index.name))
                try:
                    conn.execute(drop)
                except psycopg.Error as drop_error:
                    failed.append((index.name, f"its invalid leftover could not be dropped: {_one_line(drop_error)}"))
    return tuple(created), tuple(failed)


def verification(
    advice: Advice,
    replan: Callable[[], Replanned],
    *,
    applied: bool,
    names: Mapping[str, str],
    created: tuple[str, ...] = (),
    failed: tuple[tuple[str, str], ...] = (),
) -> Advice:
    """``advice`` with a :class:`Verification`: every planned statement, its predicted and its new cost.

    ``names`` maps the index names plans show (HypoPG's ``<oid>btree_…`` or the real ones) to advised names.
    """
    predicted: dict[str, float] = {}
    for index in advice.indexes:
        for effect in index.queries:
            predicted[effect.fingerprint] = min(predicted.get(effect.fingerprint, effect.cost_after), effect.cost_after)
    queries = []
    for fingerprint, (before, after, used) in sorted(replan().items()):
        advised = tuple(sorted({names[name] for name in used if name in names}))
        queries.append(VerifiedQuery(fingerprint, before, predicted.get(fingerprint, before), after, advised))
    return replace(advice, verification=Verification(applied, created, failed, tuple(queries)))
