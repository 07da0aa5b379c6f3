"""Every process applies the stored pins: a background thread reads ``plan_pins`` every few seconds.

Nothing happens per call: the thread rereads the pins every
``PlanGuardPolicy.refresh_interval`` seconds over a connection of its own and,
when they changed, hands them to the process's call preparer as hint rules
(``on_change``). :func:`pin_plan` and :func:`unpin` wake every watcher of the
process, so the process that pins sees its pin at once. With
``PlanGuardPolicy.automatic`` on, the same thread runs the automatic mode's
round (:class:`~queryopt.plans.automatic.AutoPinner`) before each read.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from queryopt.config import PlanGuardPolicy
from queryopt.errors import HintError, PinError
from queryopt.hints import HintRules
from queryopt.plans.automatic import AutoPinner
from queryopt.plans.store import Pin, PinStore
from queryopt.plans.wakeup import register, unregister

__all__ = ["PinWatcher", "pin_rules"]

logger = logging.getLogger("queryopt")

_NO_TABLE_INTERVAL = 60.0  # seconds between looks while queryopt's schema has no plan_pins table
_AUTO_INTERVAL = 10.0  # at least this many seconds between two automatic rounds (each reads an hour of history)


def pin_rules(pins: list[Pin]) -> HintRules:
    """The pins as hint rules by fingerprint (checked against each query when it is prepared)."""
    rules = HintRules()
    for pin in pins:
        try:
            rules.add(pin.fingerprint, pin.hints, name=f"pin of plan {pin.plan_hash}", source="pin")
        except HintError as exc:  # a hand-edited row: skip it, keep the others
            logger.warning("queryopt: pin of %s is not usable: %s", pin.fingerprint, exc)
    return rules


class PinWatcher:
    """Reads the pins of ``conninfo``'s queryopt schema in a daemon thread and reports changes."""

    def __init__(
        self,
        conninfo: str,
        on_change: Callable[[HintRules], None],
        *,
        policy: PlanGuardPolicy | None = None,
        schema: str = "queryopt",
        application_conninfo: str | None = None,
    ) -> None:
        self.policy = policy or PlanGuardPolicy()
        self._conninfo = conninfo
        self._store = PinStore(schema)
        self._on_change = on_change
        self._known: dict[str, tuple[str, str]] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._refreshed = threading.Condition()
        self.refreshes = 0
        self._missing_logged = False
        self._in_round = False
        self._last_auto = -math.inf
        self.auto = (
            AutoPinner(application_conninfo or conninfo, policy=self.policy, schema=schema, store_conninfo=conninfo)
            if self.policy.automatic
            else None
        )
        register(self)
        self._thread = threading.Thread(target=self._run, name="queryopt-pin-watcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def wait_refreshed(self, timeout: float) -> bool:
        """Wake the thread and wait until it has read the pins once more; ``False`` on timeout.

        Called from the watcher's own thread (an automatic pin), it only wakes it: the read follows the round.
        """
        if threading.current_thread() is self._thread or not self._thread.is_alive():
            self._wake.set()
            return False
        with self._refreshed:
            # A round already under way may have read the pins before the change: wait for the next one too.
            target = self.refreshes + (2 if self._in_round else 1)
            self._wake.set()
            return self._refreshed.wait_for(lambda: self.refreshes >= target, timeout)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(5.0)
        unregister(self)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                interval = self._round()
                self._wake.wait(interval)
                self._wake.clear()
        except Exception:  # a bug here must not take the application down
            logger.exception("queryopt: the pin watcher stopped unexpectedly")
        finally:
            if self._conn is not None:
                self._conn.close()

    def _round(self) -> float:
        with self._refreshed:
            self._in_round = True
        interval = self.policy.refresh_interval
        if self.auto is not None and time.monotonic() - self._last_auto >= max(interval, _AUTO_INTERVAL):
            self._last_auto = time.monotonic()
            try:
                self.auto.check()
            except (PinError, psycopg.Error) as exc:
                logger.warning("queryopt: plan guard automatic round failed: %s", exc)
        try:
            self._refresh()
        except PinError as exc:  # no table yet: look again much later (the recorder tells the user to migrate)
            if not self._missing_logged:
                logger.debug("queryopt: pins are not applied: %s", exc)
                self._missing_logged = True
            interval = max(interval, _NO_TABLE_INTERVAL)
        except psycopg.Error as exc:
            logger.debug("queryopt: cannot read pins (keeping the last ones): %s", exc)
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        with self._refreshed:
            self.refreshes += 1
            self._in_round = False
            self._refreshed.notify_all()
        return interval

    def _refresh(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, application_name="queryopt-pin-watcher", connect_timeout=5
            )
        pins = self._store.pins(self._conn)
        known = {pin.fingerprint: (pin.plan_hash, pin.hints) for pin in pins}
        if known != self._known:
            self._known = known
            self._on_change(pin_rules(pins))
