"""Pin a captured plan: generate its full hint set, prove by EXPLAIN that it reproduces the plan, store it.

A pin needs pg_hint_plan: planner settings act on the whole statement and cannot
fix a join order, so without it a pin is refused. The hints come from the plan
(:func:`queryopt.hints.plan_shape.pin_hints`), are checked against the query
and the catalog like any hint (an index dropped since the capture is named),
and the statement is explained with them: a pin is stored only when the plan
PostgreSQL then chooses has the captured shape. Refusals are logged too.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from queryopt.analysis import analyze
from queryopt.errors import HintError, PinError, QueryError
from queryopt.hints import Catalog, hint_plan_active, resolve_hints
from queryopt.hints.plan_shape import PlanShape, pin_hints, plan_shape
from queryopt.plans.store import ActionKind, Pin, PinMode, PinStore
from queryopt.plans.verify import current_shape, without_hint_block
from queryopt.plans.wakeup import wake_watchers

__all__ = ["NO_PG_HINT_PLAN", "CapturedPlanRow", "captured_plans", "pin_plan", "unpin"]

NO_PG_HINT_PLAN = (
    "pg_hint_plan is not loaded in this database, and planner settings cannot pin a join order: "
    "ask a DBA to preload it (shared_preload_libraries, or ALTER ROLE … SET session_preload_libraries)"
)

_CAPTURED = """
SELECT plan_hash, first_seen, last_seen, calls, total_ms, sql_text, plan
FROM {} WHERE fingerprint = %s ORDER BY last_seen DESC
"""


@dataclass(frozen=True, slots=True)
class CapturedPlanRow:
    """A plan of ``plan_history``: what a pin is generated from."""

    plan_hash: str
    first_seen: datetime
    last_seen: datetime
    calls: int
    mean_ms: float | None
    sql_text: str
    plan: Any


def captured_plans(conn: psycopg.Connection[Any], fingerprint: str, *, schema: str) -> list[CapturedPlanRow]:
    """The captured plans of ``fingerprint``, latest first."""
    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(
                sql.SQL(_CAPTURED).format(sql.Identifier(schema, "plan_history")), [fingerprint]
            ).fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise PinError(f"{schema}.plan_history does not exist: run `queryopt migrate` first") from exc
    return [
        CapturedPlanRow(
            r["plan_hash"],
            r["first_seen"],
            r["last_seen"],
            int(r["calls"]),
            r["total_ms"] / r["calls"] if r["calls"] else None,
            r["sql_text"],
            r["plan"],
        )
        for r in rows
    ]


def _choose(plans: list[CapturedPlanRow], fingerprint: str, plan_hash: str | None) -> CapturedPlanRow:
    if not plans:
        raise PinError(
            f"no plan captured for fingerprint {fingerprint}: queryopt records plans of slow calls "
            "(RecorderPolicy.capture_plans); `queryopt plans` lists what was captured",
            fingerprint=fingerprint,
        )
    if plan_hash is None:
        # The fastest plan seen: what a person reaching for `pin` after a regression wants back.
        timed = [plan for plan in plans if plan.mean_ms is not None]
        return min(timed, key=lambda plan: plan.mean_ms or 0.0) if timed else plans[0]
    for plan in plans:
        if plan.plan_hash == plan_hash:
            return plan
    known = ", ".join(plan.plan_hash for plan in plans)
    raise PinError(
        f"fingerprint {fingerprint} has no captured plan {plan_hash} (captured: {known})", fingerprint=fingerprint
    )


def _refuse(
    store: PinStore, conn: psycopg.Connection[Any], fingerprint: str, plan_hash: str | None, actor: str, reason: str
) -> PinError:
    store.log(conn, fingerprint, plan_hash, ActionKind.REFUSED, actor, reason)
    return PinError(f"cannot pin {fingerprint}: {reason}", fingerprint=fingerprint)


def _connect(stack: ExitStack, conninfo_or_conn: str | psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    if isinstance(conninfo_or_conn, str):
        return stack.enter_context(psycopg.connect(conninfo_or_conn, autocommit=True))
    return conninfo_or_conn


def pin_plan(
    conninfo_or_conn: str | psycopg.Connection[Any],
    fingerprint: str,
    *,
    plan_hash: str | None = None,
    schema: str = "queryopt",
    store_conninfo: str | psycopg.Connection[Any] | None = None,
    mode: PinMode = PinMode.MANUAL,
    actor: str = "cli",
    baseline_ms: float | None = None,
) -> Pin:
    """Pin ``plan_hash`` (default: the fastest captured plan) for ``fingerprint``; returns the stored pin.

    ``conninfo_or_conn`` is the application's database (where the plan is verified); ``store_conninfo``
    holds queryopt's tables when they live elsewhere. :class:`~queryopt.PinError` says why a pin is refused.
    """
    with ExitStack() as stack:
        app = _connect(stack, conninfo_or_conn)
        store_conn = app if store_conninfo is None else _connect(stack, store_conninfo)
        store = PinStore(schema)
        chosen = _choose(captured_plans(store_conn, fingerprint, schema=schema), fingerprint, plan_hash)
        if not hint_plan_active(app, recheck=True):
            raise _refuse(store, store_conn, fingerprint, chosen.plan_hash, actor, NO_PG_HINT_PLAN)
        try:
            target = plan_shape(chosen.plan)
            body = without_hint_block(chosen.sql_text)
            hints = resolve_hints(analyze(body), pin_hints(target), Catalog.load(app), conn=app)
        except HintError as exc:
            raise _refuse(store, store_conn, fingerprint, chosen.plan_hash, actor, str(exc)) from exc
        try:
            reproduced: PlanShape = current_shape(app, body, hints)
        except QueryError as exc:
            reason = f"the hinted statement cannot be explained: {exc}"
            raise _refuse(store, store_conn, fingerprint, chosen.plan_hash, actor, reason) from exc
        if reproduced.plan_hash != target.plan_hash:
            reason = (
                f"with the hints PostgreSQL chooses plan {reproduced.plan_hash}, not {target.plan_hash} "
                f"({target.differences(reproduced)})"
            )
            raise _refuse(store, store_conn, fingerprint, chosen.plan_hash, actor, reason)
        pin = Pin(
            fingerprint,
            target.plan_hash,
            hints.render(),
            mode,
            datetime.now(UTC),
            baseline_ms,
            None,
        )
        detail = f"{mode.value} pin of plan {target.plan_hash}, verified by EXPLAIN: {pin.hints}"
        if baseline_ms is not None:
            detail += f" (replacing a plan averaging {baseline_ms:.1f} ms)"
        stored = store.save(store_conn, pin, actor=actor, detail=detail)
    wake_watchers()
    return stored


def unpin(
    conninfo_or_conn: str | psycopg.Connection[Any],
    fingerprint: str,
    *,
    schema: str = "queryopt",
    actor: str = "cli",
    reason: str = "unpinned by hand",
) -> Pin:
    """Remove the pin of ``fingerprint`` (``conninfo_or_conn`` holds queryopt's tables); returns it."""
    with ExitStack() as stack:
        conn = _connect(stack, conninfo_or_conn)
        removed = PinStore(schema).remove(conn, fingerprint, actor=actor, detail=reason)
    if removed is None:
        raise PinError(
            f"fingerprint {fingerprint} is not pinned (`queryopt plans` lists the pins)", fingerprint=fingerprint
        )
    wake_watchers()
    return removed
