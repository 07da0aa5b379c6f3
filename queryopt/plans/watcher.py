"""Every process applies the stored pins: a background thread reads ``plan_pins`` every few seconds.

Nothing happens per call: the thread rereads the pins every
``PlanGuardPolicy.refresh_interval`` seconds over a connection of its own and,
when they changed, hands them to the call preparers as hint rules
(``on_change``). One thread and one connection serve every front end of the
process that reads the same database's queryopt schema (an optimizer, its
asyncio twin, an instrumented engine): each :class:`PinWatcher` is a
subscription to that shared feed, and a new one is handed the pins already
read at once. :func:`pin_plan` and :func:`unpin` wake every feed of the
process, so the process that pins sees its pin at once. With
``PlanGuardPolicy.automatic`` on, the feed's thread (one of its own, not shared)
runs the automatic mode's round (:class:`~queryopt.plans.automatic.AutoPinner`)
before each read.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Hashable
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
    """A front end's subscription to the pins of ``conninfo``'s queryopt schema: ``on_change`` gets the pins as
    hint rules now (when they were read already) and whenever they change, until :meth:`close`."""

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
        self._on_change = on_change
        self._feed = _subscribe(conninfo, on_change, self.policy, schema, application_conninfo)

    @property
    def auto(self) -> AutoPinner | None:
        """The automatic mode's pinner (``None``: the mode is off)."""
        return self._feed.auto

    @property
    def refreshes(self) -> int:
        """Reads of the pins so far (by the shared feed)."""
        return self._feed.refreshes

    def wake(self) -> None:
        self._feed.wake()

    def wait_refreshed(self, timeout: float) -> bool:
        """Wake the feed and wait until it has read the pins once more; ``False`` on timeout."""
        return self._feed.wait_refreshed(timeout)

    def close(self) -> None:
        """End this subscription; the feed stops with its last one."""
        _unsubscribe(self._feed, self._on_change)


_FEEDS: dict[Hashable, _PinFeed] = {}
_FEEDS_LOCK = threading.Lock()


def _subscribe(
    conninfo: str,
    on_change: Callable[[HintRules], None],
    policy: PlanGuardPolicy,
    schema: str,
    application_conninfo: str | None,
) -> _PinFeed:
    # An automatic feed pins for one application database under its own policy: never shared.
    key: Hashable = (conninfo, schema, policy.refresh_interval) if not policy.automatic else object()
    with _FEEDS_LOCK:
        feed = _FEEDS.get(key)
        if feed is None or not feed.alive():  # none yet, or one inherited from the parent of a fork
            feed = _FEEDS[key] = _PinFeed(key, conninfo, policy, schema, application_conninfo)
        feed.subscribe(on_change)
    return feed


def _unsubscribe(feed: _PinFeed, on_change: Callable[[HintRules], None]) -> None:
    with _FEEDS_LOCK:
        if not feed.unsubscribe(on_change):
            return
        if _FEEDS.get(feed.key) is feed:
            del _FEEDS[feed.key]
    feed.close()


class _PinFeed:
    """Reads the pins of ``conninfo``'s queryopt schema in a daemon thread and hands changes to its subscribers."""

    def __init__(
        self,
        key: Hashable,
        conninfo: str,
        policy: PlanGuardPolicy,
        schema: str,
        application_conninfo: str | None,
    ) -> None:
        self.key = key
        self.policy = policy
        self._conninfo = conninfo
        self._store = PinStore(schema)
        self._subscribers: list[Callable[[HintRules], None]] = []
        self._rules: HintRules | None = None
        """The pins last handed out (``None``: not read yet)."""
        self._handing = threading.Lock()
        self._known: dict[str, tuple[str, str]] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._refreshed = threading.Condition()
        self.refreshes = 0
        self._missing_logged = False
        self._in_round = False
        self._last_auto = -math.inf
        self._pid = os.getpid()
        self.auto = (
            AutoPinner(application_conninfo or conninfo, policy=policy, schema=schema, store_conninfo=conninfo)
            if policy.automatic
            else None
        )
        register(self)
        self._thread = threading.Thread(target=self._run, name="queryopt-pin-watcher", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._pid == os.getpid() and self._thread.is_alive() and not self._stopping.is_set()

    def subscribe(self, on_change: Callable[[HintRules], None]) -> None:
        with self._handing:
            self._subscribers.append(on_change)
            rules = self._rules
            if rules is not None:
                on_change(rules)

    def unsubscribe(self, on_change: Callable[[HintRules], None]) -> bool:
        """Remove ``on_change``; True when no subscriber is left."""
        with self._handing:
            if on_change in self._subscribers:
                self._subscribers.remove(on_change)
            return not self._subscribers

    def wake(self) -> None:
        self._wake.set()

    def wait_refreshed(self, timeout: float) -> bool:
        """Wake the thread and wait until it has read the pins once more; ``False`` on timeout.

        Called from the feed's own thread (an automatic pin), it only wakes it: the read follows the round.
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
        if threading.current_thread() is not self._thread:
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
            self._hand_out(pin_rules(pins))

    def _hand_out(self, rules: HintRules) -> None:
        with self._handing:
            self._rules = rules
            subscribers = list(self._subscribers)
            for on_change in subscribers:
                try:
                    on_change(rules)
                except Exception:  # one front end's failure must not keep the pins from the others
                    logger.exception("queryopt: could not apply the pins to %r", on_change)
