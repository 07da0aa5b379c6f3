"""How hints take effect: pg_hint_plan when the database has it, planner settings otherwise.

Without pg_hint_plan a hint comment is inert. The honest fallback is
transaction-local planner settings (``SET LOCAL enable_seqscan = off``…), which
act on the WHOLE statement, not on one relation: ``IndexScan(o orders_idx)``
becomes "no sequential and no bitmap scans anywhere in this statement", and the
planner still picks which index. ``Leading``, ``Rows``, ``Parallel`` and
``Memoize`` have no such equivalent and are dropped in that mode. When hints are
asked for but cannot take effect, the ``queryopt`` logger says so once per
database and reason, never once per query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from queryopt.config import HintMode
from queryopt.errors import HintError
from queryopt.hints.catalog import database_identity, fetch_metadata
from queryopt.hints.hintset import HintSet
from queryopt.hints.model import Hint, JoinHint, JoinMethod, ScanHint, ScanMethod, Set
from queryopt.hints.placement import apply_hint_block

__all__ = [
    "HINT_PLAN_ACTIVE_SQL",
    "HintPlan",
    "hint_plan_active",
    "plan_hints",
    "planner_settings",
    "planner_settings_applied",
    "planner_settings_applied_async",
    "unsupported_by_planner_settings",
]

logger = logging.getLogger("queryopt")

HINT_PLAN_ACTIVE_SQL = _ACTIVE_SQL = (
    "SELECT 1 FROM pg_settings WHERE name = 'pg_hint_plan.enable_hint' AND setting = 'on'"
)
_active: dict[tuple[Any, str], bool] = {}
_active_lock = threading.Lock()
_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def log_once(reason: str, database: str, level: int, message: str) -> bool:
    """Log ``message`` the first time ``reason`` happens for ``database``; True when it was logged."""
    with _logged_lock:
        if (reason, database) in _logged:
            return False
        _logged.add((reason, database))
    logger.log(level, message)
    return True


def hint_plan_active(conn: psycopg.Connection[Any], *, recheck: bool = False) -> bool:
    """Whether pg_hint_plan reads hints for ``conn``'s database and role, asked once per both.

    The reliable check is a ``pg_settings`` row ``pg_hint_plan.enable_hint = on``
    (no row when the library is not loaded; ``current_setting`` can be fooled by
    a plain ``SET`` of the name). A DBA enables it with
    ``shared_preload_libraries`` or ``ALTER ROLE … SET session_preload_libraries``.
    """
    key = (database_identity(conn), conn.info.user)
    if not recheck:
        with _active_lock:
            known = _active.get(key)
        if known is not None:
            return known
    active = bool(fetch_metadata(conn, _ACTIVE_SQL))
    with _active_lock:
        _active[key] = active
    return active


_SCAN_SETTINGS: dict[ScanMethod, tuple[tuple[str, ...], str | None]] = {
    # method: (settings switched off, setting the method itself needs)
    ScanMethod.SEQ_SCAN: (("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"), "enable_seqscan"),
    ScanMethod.TID_SCAN: (("enable_seqscan", "enable_indexscan", "enable_bitmapscan"), "enable_tidscan"),
    ScanMethod.INDEX_SCAN: (("enable_seqscan", "enable_bitmapscan"), "enable_indexscan"),
    ScanMethod.INDEX_SCAN_REGEXP: (("enable_seqscan", "enable_bitmapscan"), "enable_indexscan"),
    ScanMethod.INDEX_ONLY_SCAN: (("enable_seqscan", "enable_bitmapscan"), "enable_indexscan"),
    ScanMethod.INDEX_ONLY_SCAN_REGEXP: (("enable_seqscan", "enable_bitmapscan"), "enable_indexscan"),
    ScanMethod.BITMAP_SCAN: (("enable_seqscan", "enable_indexscan"), "enable_bitmapscan"),
    ScanMethod.BITMAP_SCAN_REGEXP: (("enable_seqscan", "enable_indexscan"), "enable_bitmapscan"),
    ScanMethod.NO_SEQ_SCAN: (("enable_seqscan",), None),
    ScanMethod.NO_TID_SCAN: (("enable_tidscan",), None),
    ScanMethod.NO_INDEX_SCAN: (("enable_indexscan",), None),
    ScanMethod.NO_INDEX_ONLY_SCAN: (("enable_indexonlyscan",), None),
    ScanMethod.NO_BITMAP_SCAN: (("enable_bitmapscan",), None),
}
_JOIN_SETTINGS: dict[JoinMethod, tuple[tuple[str, ...], str | None]] = {
    JoinMethod.NEST_LOOP: (("enable_hashjoin", "enable_mergejoin"), "enable_nestloop"),
    JoinMethod.HASH_JOIN: (("enable_nestloop", "enable_mergejoin"), "enable_hashjoin"),
    JoinMethod.MERGE_JOIN: (("enable_nestloop", "enable_hashjoin"), "enable_mergejoin"),
    JoinMethod.NO_NEST_LOOP: (("enable_nestloop",), None),
    JoinMethod.NO_HASH_JOIN: (("enable_hashjoin",), None),
    JoinMethod.NO_MERGE_JOIN: (("enable_mergejoin",), None),
    JoinMethod.NO_MEMOIZE: (("enable_memoize",), None),
}


def _translation(hint: Hint) -> tuple[tuple[str, ...], str | None] | None:
    if isinstance(hint, ScanHint):
        return _SCAN_SETTINGS[hint.kind]
    if isinstance(hint, JoinHint):
        return _JOIN_SETTINGS.get(hint.kind)
    return None


def unsupported_by_planner_settings(hints: HintSet) -> tuple[Hint, ...]:
    """The hints planner settings cannot express (``Leading``, ``Rows``, ``Parallel``, ``Memoize``)."""
    return tuple(hint for hint in hints if not isinstance(hint, Set) and _translation(hint) is None)


def planner_settings(hints: HintSet) -> list[tuple[str, str]]:
    """The statement-wide planner settings that approximate ``hints`` without pg_hint_plan.

    They act on the whole statement, not one relation, and cannot pick an index
    (the planner chooses among all of them). Hints that contradict each other
    statement-wide (``IndexScan`` on one table, ``SeqScan`` on another) raise
    :class:`~queryopt.HintError`; hints without an equivalent are left out
    (see :func:`unsupported_by_planner_settings`).

    >>> planner_settings(HintSet.of(ScanHint("IndexScan", "o", ("orders_customer_idx",))))
    [('enable_seqscan', 'off'), ('enable_bitmapscan', 'off')]
    """
    settings: dict[str, str] = {}
    needed: dict[str, Hint] = {}
    switched_off_by: dict[str, Hint] = {}
    for hint in hints:
        if isinstance(hint, Set):
            settings[hint.guc] = hint.value
            continue
        translation = _translation(hint)
        if translation is None:
            continue
        off, needs = translation
        for name in off:
            settings[name] = "off"
            switched_off_by.setdefault(name, hint)
        if needs is not None:
            needed.setdefault(needs, hint)
    for name, hint in needed.items():
        if name in switched_off_by or settings.get(name, "on") in ("off", "false", "0"):
            other = switched_off_by.get(name)
            cause = other.render() if other is not None else f"Set({name} {settings[name]})"
            raise HintError(
                f"planner settings act on the whole statement and cannot combine {hint.render()} with {cause} "
                f"(both would need {name}); use pg_hint_plan for per-relation hints"
            )
    return list(settings.items())


@dataclass(frozen=True, slots=True)
class HintPlan:
    """How one statement carries its hints: the text to send and the settings to apply around it."""

    sql: str
    """The statement text to send (with the hint block first in pg_hint_plan mode)."""
    mode: HintMode
    """The effective mode: PG_HINT_PLAN, PLANNER_SETTINGS or OFF (never AUTO)."""
    hints: HintSet
    settings: tuple[tuple[str, str], ...] = ()
    """``SET LOCAL`` name/value pairs (planner-settings mode), applied by :func:`planner_settings_applied`."""
    ignored: tuple[Hint, ...] = ()
    """Hints asked for that cannot take effect in this mode."""

    @property
    def effective(self) -> bool:
        """True when at least one hint acts on the plan (as far as queryopt can know)."""
        return bool(self.hints) and (self.mode is HintMode.PG_HINT_PLAN or bool(self.settings))


def plan_hints(
    sql: str,
    hints: HintSet,
    *,
    mode: HintMode,
    hint_plan_active: bool,
    has_params: bool,
    database: str = "",
) -> HintPlan:
    """Decide how ``hints`` reach the server for ``sql`` (pure apart from once-per-database log lines).

    >>> plan = plan_hints("SELECT * FROM t", HintSet.of(ScanHint("SeqScan", "t")), mode=HintMode.AUTO,
    ...                   hint_plan_active=True, has_params=False)
    >>> plan.sql, plan.mode.value
    ('/*+ SeqScan(t) */ SELECT * FROM t', 'pg_hint_plan')
    """
    if mode is HintMode.AUTO:
        mode = HintMode.PG_HINT_PLAN if hint_plan_active else HintMode.PLANNER_SETTINGS
        if hints and not hint_plan_active:
            log_once(
                "fallback",
                database,
                logging.INFO,
                f"pg_hint_plan is not active in database {database or '?'}: hints fall back to planner settings, "
                "which act on the whole statement",
            )
    if not hints:
        return HintPlan(sql, mode, hints)
    if mode is HintMode.OFF:
        log_once("off", database, logging.INFO, "hint mode is off: index hints are ignored")
        return HintPlan(sql, mode, hints, ignored=hints.hints)
    if mode is HintMode.PG_HINT_PLAN:
        if not hint_plan_active:
            log_once(
                "inactive",
                database,
                logging.WARNING,
                f"hint mode is pg_hint_plan but pg_hint_plan is not active in database {database or '?'}: "
                "hint blocks are sent and have no effect (preload it, or use hint mode auto)",
            )
        return HintPlan(apply_hint_block(sql, hints, has_params=has_params), mode, hints)
    settings = tuple(planner_settings(hints))
    ignored = unsupported_by_planner_settings(hints)
    if ignored:
        log_once(
            "unsupported:" + ",".join(sorted({type(hint).__name__ for hint in ignored})),
            database,
            logging.WARNING,
            "planner settings cannot express "
            + ", ".join(sorted({hint.render().split("(")[0] for hint in ignored}))
            + " hints: they are ignored without pg_hint_plan",
        )
    return HintPlan(sql, mode, hints, settings, ignored)


_SET_SQL = (
    "SELECT s.name, s.old, set_config(s.name, s.value, true) FROM "
    "(SELECT name, value, current_setting(name) AS old FROM unnest(%s::text[], %s::text[]) AS u(name, value) "
    "OFFSET 0) AS s"
)
_RESTORE_SQL = "SELECT set_config(name, value, true) FROM unnest(%s::text[], %s::text[]) AS u(name, value)"


@asynccontextmanager
async def planner_settings_applied_async(
    conn: psycopg.AsyncConnection[Any], settings: tuple[tuple[str, str], ...] | list[tuple[str, str]]
) -> AsyncIterator[None]:
    """:func:`planner_settings_applied` on an asyncio connection."""
    if not settings:
        yield
        return
    names = [name for name, _ in settings]
    values = [value for _, value in settings]
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        async with conn.transaction():
            await conn.execute(_RESTORE_SQL, [names, values])
            yield
        return
    previous = await (await conn.execute(_SET_SQL, [names, values])).fetchall()
    try:
        yield
    finally:
        if conn.info.transaction_status == TransactionStatus.INTRANS:
            await conn.execute(_RESTORE_SQL, [[row[0] for row in previous], [row[1] for row in previous]])


@contextmanager
def planner_settings_applied(
    conn: psycopg.Connection[Any], settings: tuple[tuple[str, str], ...] | list[tuple[str, str]]
) -> Iterator[None]:
    """Apply ``settings`` transaction-locally (``SET LOCAL``) for the statements run inside the block.

    In autocommit mode the block is one transaction, whose end discards them.
    Inside the caller's transaction they are set, and put back afterwards, so
    they do not leak into the caller's next statements.
    """
    if not settings:
        yield
        return
    names = [name for name, _ in settings]
    values = [value for _, value in settings]
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        with conn.transaction():
            conn.execute(_RESTORE_SQL, [names, values])
            yield
        return
    previous = conn.execute(_SET_SQL, [names, values]).fetchall()
    try:
        yield
    finally:
        if conn.info.transaction_status == TransactionStatus.INTRANS:
            conn.execute(_RESTORE_SQL, [[row[0] for row in previous], [row[1] for row in previous]])
