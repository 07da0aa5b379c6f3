"""The automatic mode: pin the last good plan after a regression that came with a plan change, and keep
the pin only if it helps (what SQL Server's automatic plan correction does).

:meth:`AutoPinner.check` is one round, run by a process's pin watcher every few
seconds when :attr:`PlanGuardPolicy.automatic` is on (or by hand):

1. An automatic pin with ``verify_calls`` recorded calls since it was set is judged: not faster than
   the plan it replaced (``baseline_ms``) → unpinned; faster → marked verified. Both are logged.
2. A fingerprint whose latest plan change is a regression (``regression_ratio``) and is still in use,
   with an estimated gain per call of at least ``min_gain_ms``, gets the plan before the change pinned
   (generated, verified by EXPLAIN, stored; a refusal is logged). A plan the automatic mode already
   pinned, unpinned or was refused for since that change is not tried again.

One process at a time runs a round (a session advisory lock on queryopt's database).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from queryopt.config import PlanGuardPolicy
from queryopt.errors import PinError
from queryopt.plans.history import FingerprintPlans, PlanChange, plan_history
from queryopt.plans.pinning import pin_plan, unpin
from queryopt.plans.store import Action, ActionKind, Pin, PinMode, PinStore

__all__ = ["AUTO_ACTOR", "AutoPinner"]

logger = logging.getLogger("queryopt")

AUTO_ACTOR = "automatic"
_LOCK_KEY = 0x71_6F_70_6C_61_6E  # "qoplan": one automatic round at a time per database
_PIN_CHANGES = frozenset({ActionKind.PIN.value, ActionKind.UNPIN.value})
_SINCE_PIN = "SELECT count(*), avg(duration_ms) FROM {} WHERE fingerprint = %s AND started_at >= %s"


class AutoPinner:
    """One automatic round per :meth:`check` over ``conninfo`` (the application's database; queryopt's
    tables too unless ``store_conninfo`` says where they are)."""

    def __init__(
        self,
        conninfo: str,
        *,
        policy: PlanGuardPolicy | None = None,
        schema: str = "queryopt",
        store_conninfo: str | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.store_conninfo = store_conninfo
        self.policy = policy or PlanGuardPolicy(automatic=True)
        self.schema = schema
        self._store = PinStore(schema)
        self._since_pin = sql.SQL(_SINCE_PIN).format(sql.Identifier(schema, "slow_queries"))

    def check(self) -> list[str]:
        """Run one round; returns what was done, one line each (also logged and in ``plan_actions``)."""
        done: list[str] = []
        with ExitStack() as stack:
            app = stack.enter_context(psycopg.connect(self.conninfo, autocommit=True))
            store_conn = (
                app
                if self.store_conninfo is None
                else stack.enter_context(psycopg.connect(self.store_conninfo, autocommit=True))
            )
            locked = store_conn.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY]).fetchone()
            if not locked or not locked[0]:
                return done  # another process is running a round
            try:
                history = plan_history(store_conn, since=timedelta(seconds=self.policy.window), schema=self.schema)
                for pin in self._store.pins(store_conn):
                    if pin.mode is PinMode.AUTOMATIC and pin.note is None:
                        done.extend(self._judge(store_conn, pin))
                pinned = {pin.fingerprint for pin in self._store.pins(store_conn)}
                for entry in history.fingerprints:
                    if entry.fingerprint not in pinned:
                        done.extend(self._correct(app, store_conn, entry, history.actions))
            finally:
                store_conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
        for line in done:
            logger.warning("queryopt: plan guard: %s", line)
        return done

    def _judge(self, conn: psycopg.Connection[Any], pin: Pin) -> list[str]:
        row = conn.execute(self._since_pin, [pin.fingerprint, pin.pinned_at]).fetchone()
        calls, mean = (int(row[0]), row[1]) if row else (0, None)
        if calls < self.policy.verify_calls or mean is None or pin.baseline_ms is None:
            return []
        verdict = f"{mean:.1f} ms over {calls} calls under the pin, {pin.baseline_ms:.1f} ms before"
        if mean >= pin.baseline_ms:
            reason = f"automatic pin of plan {pin.plan_hash} removed: not faster ({verdict})"
            unpin(conn, pin.fingerprint, schema=self.schema, actor=AUTO_ACTOR, reason=reason)
            return [f"{pin.fingerprint}: {reason}"]
        note = f"verified faster: {verdict}"
        self._store.mark(conn, pin, note)
        self._store.log(conn, pin.fingerprint, pin.plan_hash, ActionKind.VERIFIED, AUTO_ACTOR, note)
        return [f"{pin.fingerprint}: automatic pin of plan {pin.plan_hash} {note}"]

    def _due(self, entry: FingerprintPlans, actions: tuple[Action, ...]) -> PlanChange | None:
        if not entry.changes:
            return None
        change = entry.changes[-1]  # its later run is the fingerprint's latest: the regressed plan is in use
        if any(
            action.fingerprint == entry.fingerprint
            and action.action in _PIN_CHANGES
            and change.before.last_seen <= action.at <= change.after.first_seen
            for action in actions
        ):
            return None  # a pin or an unpin made this change: nothing the planner did
        if change.ratio <= self.policy.regression_ratio:
            return None
        if change.after.mean_ms - change.before.mean_ms < self.policy.min_gain_ms:
            return None
        return change

    def _correct(
        self,
        app: psycopg.Connection[Any],
        store_conn: psycopg.Connection[Any],
        entry: FingerprintPlans,
        actions: tuple[Action, ...],
    ) -> list[str]:
        change = self._due(entry, actions)
        if change is None:
            return []
        # Never the same plan twice for one change, and never again in the window once it was unpinned.
        tried = any(
            action.fingerprint == entry.fingerprint
            and action.plan_hash == change.from_plan
            and action.actor == AUTO_ACTOR
            and (action.at >= change.at or action.action == ActionKind.UNPIN.value)
            for action in actions
        )
        if tried:
            return []
        try:
            pin = pin_plan(
                app,
                entry.fingerprint,
                plan_hash=change.from_plan,
                schema=self.schema,
                store_conninfo=store_conn,
                mode=PinMode.AUTOMATIC,
                actor=AUTO_ACTOR,
                baseline_ms=change.after.mean_ms,
            )
        except PinError as exc:
            return [f"{entry.fingerprint}: no automatic pin after a {change.ratio:.1f}x regression: {exc}"]
        return [
            f"{entry.fingerprint}: pinned plan {pin.plan_hash} after plan {change.to_plan} made it "
            f"{change.ratio:.1f}x slower ({change.before.mean_ms:.1f} -> {change.after.mean_ms:.1f} ms)"
        ]
