"""Load shedding: how many calls of one query fingerprint may hold a connection at once.

When one query shape turns slow (a plan flip, a missing index, a lock), every call of it holds a
pooled connection for the whole duration, the pool empties and fast, unrelated queries queue behind
it. :class:`ConcurrencyLimiter` gives each fingerprint a number of slots; a call takes one before it
takes a connection and gives it back when it is done. A call over its fingerprint's limit waits up to
``LimitPolicy.max_wait``, then fails with :class:`~queryopt.QueryRejected`, never having touched the
pool.

Two more rules keep fast queries going:

- **Shared slots.** Every call also takes one of ``pool size - reserve`` shared slots, so all the
  fingerprints together leave the reserve free.
- **The reserve** goes to a fingerprint that has no other call running, when the shared slots are all
  taken: a query class that is not piling up (a primary-key lookup) still finds a connection.

The limit of a fingerprint is static (``LimitMode.STATIC``) or adaptive (``LimitMode.ADAPTIVE``, after
Netflix's Gradient2): the mean latency of each window of calls is compared with a long-term average of
the fingerprint's latency; while it stays within ``adaptive_tolerance`` times the long-term one the limit
grows by a small queue allowance (only if the calls use at least half of it), beyond it the limit shrinks
in proportion. A statement timeout (57014) or a pool timeout cuts the limit by a tenth at once (the AIMD
drop). Waiting for a pooled connection is part of the latency measured, so a pool that makes calls wait
shrinks the limits too. Gradient2 reacts to change: a query that stays slow becomes its own new normal,
and the shared slots and the reserve are what keep it from taking the whole pool.

One core serves both drivers. Acquiring a free slot never blocks and takes no lock: slots are tokens
in lists, and ``list.pop``/``list.append`` are atomic in CPython, so the fast path is two pops and the
release two appends. Only the slow paths take the lock: waiting (:meth:`ConcurrencyLimiter.acquire`
blocks a thread on an event, :meth:`ConcurrencyLimiter.acquire_async` awaits a future), rejecting,
changing an adaptive limit. Waiting calls stand in line per fingerprint, first come first served: a
finishing call hands its slots straight to the first in line, and a new call queues behind the line
instead of overtaking it (else a thread that just finished would take its slot back at once, before any
waiter woke). When a shared slot comes free, the first in line at every fingerprint tries again.

>>> from queryopt.config import LimitMode, LimitPolicy
>>> limiter = ConcurrencyLimiter(LimitPolicy(LimitMode.STATIC, concurrency=2, max_wait=0), pool_size=10)
>>> first, second = limiter.acquire("0123456789abcdef"), limiter.acquire("0123456789abcdef")
>>> limiter.acquire("0123456789abcdef")
Traceback (most recent call last):
...
queryopt.QueryRejected: query 0123456789abcdef has 2 of 2 calls running; rejected after waiting 0.000s
>>> limiter.release(first, 0.01)
>>> limiter.summary()["0123456789abcdef"]["in_flight"]
1
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from psycopg_pool import PoolTimeout

from queryopt.config import LimitMode, LimitPolicy
from queryopt.errors import ConfigurationError, QueryError, QueryRejected

__all__ = ["ConcurrencyLimiter", "Gate", "Slot", "open_limiter", "overloaded"]

_SLOT: Final = True
"""What a slot token is: its identity does not matter, only how many there are."""
_UNKNOWN_POOL_SLOTS: Final = 100
"""Shared slots when the pool's size is unknown (a pool without a fixed bound)."""
_MAX_GATES: Final = 10_000
"""Fingerprints tracked; idle ones are forgotten beyond this (their adaptive limit starts afresh)."""
_DROP_FACTOR: Final = 0.9
"""An adaptive limit after a timeout: this share of what it was (AIMD's multiplicative decrease)."""
_MIN_WINDOW: Final = 32
"""Calls per adaptive window at least (more when the limit is higher): one limit update per window."""
_LONG_WINDOWS: Final = 60
"""Windows the long-term latency average spans."""
_SMOOTHING: Final = 0.2
"""Share of a newly computed adaptive limit taken at each window (the rest is the old limit)."""


class Gate:
    """The slots of one fingerprint, and what happened at them.

    ``free`` holds one token per free slot; ``issued`` is the number of tokens in existence (free or held),
    so ``issued - len(free)`` calls are running. A limit lowered while calls hold tokens leaves ``debt``:
    that many tokens are dropped, not returned, when their calls finish.
    """

    __slots__ = (
        "debt",
        "estimate",
        "fingerprint",
        "free",
        "issued",
        "long_latency",
        "maximum",
        "queue",
        "rejections",
        "sample_sum",
        "samples",
        "wait_seconds",
        "waits",
        "window",
        "window_started",
    )

    def __init__(self, fingerprint: str, limit: int, maximum: int) -> None:
        self.fingerprint = fingerprint
        self.free = [_SLOT] * limit
        self.issued = limit
        self.debt = 0
        self.maximum = maximum
        self.estimate = float(limit)
        self.long_latency = 0.0
        self.sample_sum = 0.0
        self.samples = 0
        self.window_started = time.perf_counter()
        self.window = max(_MIN_WINDOW, limit)
        self.waits = 0
        self.rejections = 0
        self.wait_seconds = 0.0
        self.queue: deque[_Waiter] = deque()
        """Calls waiting for a slot, first come first served (changed under the limiter's lock only)."""

    @property
    def limit(self) -> int:
        """Calls of this fingerprint that may run at once now."""
        return self.issued - self.debt

    @property
    def in_flight(self) -> int:
        """Calls of this fingerprint holding a slot now."""
        return self.issued - len(self.free)


class _Waiter:
    """A call waiting in a gate's queue. ``granted``: a finishing call handed it its slots (set under the lock)."""

    __slots__ = ("granted", "notify")

    def __init__(self, notify: Callable[[], None]) -> None:
        self.granted = False
        self.notify = notify


class ConcurrencyLimiter:
    """Per-fingerprint slots for the calls of one front end on a pool of ``pool_size`` connections
    (``None``: a pool without a known bound; the shared slots are then 100).

    Thread-safe; the same limiter serves threads (:meth:`acquire`) and event loops
    (:meth:`acquire_async`), also both at once. Every acquired :class:`Gate` must be given back with
    :meth:`release` exactly once, in a ``finally``.
    """

    def __init__(self, policy: LimitPolicy, *, pool_size: int | None) -> None:
        if policy.mode is LimitMode.OFF:
            raise ConfigurationError("LimitPolicy.mode is off: no limiter is needed", setting="mode")
        if pool_size is None:
            pool_size = _UNKNOWN_POOL_SLOTS + policy.reserve
        shared = pool_size - policy.reserve
        if shared < 1:
            raise ConfigurationError(
                f"LimitPolicy.reserve ({policy.reserve}) must leave at least one of the pool's {pool_size} "
                "connections to share: lower the reserve or enlarge the pool",
                setting="reserve",
            )
        self.policy = policy
        self.pool_size = pool_size
        self.shared_slots = shared
        self._adaptive = policy.mode is LimitMode.ADAPTIVE
        self._max_wait = policy.max_wait
        self._tolerance = float(policy.adaptive_tolerance)
        self._gates: dict[str, Gate] = {}
        self._shared = [_SLOT] * shared
        self._reserve = policy.reserve
        self._borrowed = 0
        """Reserve slots in use (changed under the lock only)."""
        self._lock = threading.Lock()
        self._waiters: dict[_Waiter, Gate] = {}
        """Every waiting call (changed under the lock only)."""
        self._rejections = 0
        self._waits = 0
        self._wait_seconds = 0.0

    # -- the non-blocking core ---------------------------------------------------------------------------

    def gate(self, fingerprint: str) -> Gate:
        """The slots of ``fingerprint``, created on its first call."""
        gate = self._gates.get(fingerprint)
        if gate is None:
            gate = self._new_gate(fingerprint)
        return gate

    def try_acquire(self, gate: Gate) -> bool:
        """Take a slot of ``gate`` and a shared (or reserve) slot if both are free; never waits.

        (It does not look at the gate's queue: :meth:`acquire` does, so new calls do not overtake waiting ones.)
        """
        try:
            gate.free.pop()
        except IndexError:
            return False
        try:
            self._shared.pop()
        except IndexError:
            return self._try_reserve(gate)
        return True

    def release(self, gate: Gate, duration: float, *, dropped: bool = False) -> None:
        """Give back the slots of a call that took ``duration`` seconds; ``dropped``: it timed out (57014) or
        found no pooled connection, a sign of overload that shrinks an adaptive limit.

        The slots go to the first call waiting at the same gate, if any; otherwise back to their lists.
        """
        if self._adaptive:
            # Per call only a running sum (a sample lost to a race between threads is harmless); the limit is
            # recomputed once per window of calls, under the lock, or at once after a timeout.
            gate.sample_sum += duration
            gate.samples += 1
            if dropped or gate.samples >= gate.window:
                self._settle(gate, dropped)
        if gate.debt or gate.queue:
            self._give_back(gate)
            return
        if self._borrowed:
            self._repay()
        else:
            self._shared.append(_SLOT)
        gate.free.append(_SLOT)
        if self._waiters:
            self._wake_heads()

    def _give_back(self, gate: Gate) -> None:
        """:meth:`release`'s rare paths: a lowered limit destroys the slot, a waiting call is handed it."""
        with self._lock:
            keep = True
            if gate.debt:
                gate.debt -= 1
                gate.issued -= 1
                keep = False
            elif gate.queue:
                waiter = gate.queue.popleft()
                waiter.granted = True  # both slots change hands: no count moves
                waiter.notify()
                return
        if self._borrowed:
            self._repay()
        else:
            self._shared.append(_SLOT)
        if keep:
            gate.free.append(_SLOT)
        if self._waiters:
            self._wake_heads()

    def _try_reserve(self, gate: Gate) -> bool:
        # The shared slots are all taken: the reserve is for a fingerprint with no other call running.
        # Calls running = shared_slots - len(shared) + borrowed, whichever call gives its slot back first.
        with self._lock:
            if self._shared:  # one came free meanwhile
                self._shared.pop()
                return True
            if gate.in_flight == 1 and self._borrowed < self._reserve:
                self._borrowed += 1
                return True
            if gate.debt:
                gate.debt -= 1
                gate.issued -= 1
                return False
        gate.free.append(_SLOT)
        return False

    def _repay(self) -> None:
        with self._lock:
            if self._borrowed:
                self._borrowed -= 1
                return
        self._shared.append(_SLOT)

    def _new_gate(self, fingerprint: str) -> Gate:
        policy = self.policy
        cap = policy.cap_for(fingerprint)
        maximum = self.shared_slots if cap is None else min(cap, self.shared_slots)
        # Adaptive limits start halfway and find their level; static ones start at their cap.
        limit = max(1, math.ceil(maximum / 2)) if self._adaptive else maximum
        with self._lock:
            gate = self._gates.get(fingerprint)
            if gate is None:
                if len(self._gates) >= _MAX_GATES:
                    self._forget_idle_gates()
                gate = self._gates[fingerprint] = Gate(fingerprint, limit, maximum)
        return gate

    def _forget_idle_gates(self) -> None:
        for fingerprint, gate in list(self._gates.items()):
            if gate.in_flight == 0 and not gate.queue:
                del self._gates[fingerprint]

    # -- the adaptive limit ------------------------------------------------------------------------------

    def _settle(self, gate: Gate, dropped: bool) -> None:
        """Recompute the limit after a window of calls or a drop; a lower one leaves debt for releases to pay."""
        with self._lock:
            if dropped:
                estimate = gate.estimate * _DROP_FACTOR
            elif gate.samples >= gate.window:
                estimate = self._gradient(gate, gate.sample_sum / gate.samples)
                gate.sample_sum, gate.samples, gate.window_started = 0.0, 0, time.perf_counter()
            else:
                return
            gate.estimate = estimate = min(float(gate.maximum), max(1.0, estimate))
            target = int(estimate)
            gate.window = max(_MIN_WINDOW, target)
            current = gate.issued - gate.debt
            if target > current:
                self._grow(gate, target - current)
            elif target < current:
                gate.debt += current - target
                self._absorb_debt(gate)

    def _gradient(self, gate: Gate, latency: float) -> float:
        """Gradient2's step for one window whose calls took ``latency`` seconds on average."""
        long = gate.long_latency
        if long == 0.0:
            gate.long_latency = latency
            return gate.estimate
        gate.long_latency = long = long + (latency - long) / _LONG_WINDOWS
        if long > 2 * latency:
            # Latency fell well below the long average: let the long one catch up faster (as Gradient2 does).
            gate.long_latency = long = long * 0.95
        if latency <= 0.0:
            return gate.estimate
        gradient = max(0.5, min(1.0, self._tolerance * long / latency))
        # Little's law: the calls' summed durations over the window's wall time is how many ran at once.
        elapsed = time.perf_counter() - gate.window_started
        if gradient == 1.0 and gate.sample_sum < elapsed * gate.estimate / 2:
            return gate.estimate  # the fingerprint does not use its limit: no evidence it could use more
        proposed = gate.estimate * gradient + math.sqrt(gate.estimate)  # a small queue allowance
        return gate.estimate * (1 - _SMOOTHING) + proposed * _SMOOTHING

    def _grow(self, gate: Gate, count: int) -> None:
        # Cancel debt first: those tokens are still held and simply stay.
        settled = min(gate.debt, count)
        gate.debt -= settled
        count -= settled
        gate.issued += count
        gate.free.extend([_SLOT] * count)
        if count and gate.queue:
            gate.queue[0].notify()

    def _absorb_debt(self, gate: Gate) -> None:
        # Free tokens are destroyed at once; the rest of the debt waits for releases.
        while gate.debt:
            try:
                gate.free.pop()
            except IndexError:
                return
            gate.debt -= 1
            gate.issued -= 1

    # -- waiting -----------------------------------------------------------------------------------------

    def acquire(self, fingerprint: str) -> Gate:
        """A slot of ``fingerprint`` for a thread: at once when free and nobody waits for one, else after
        waiting in line up to ``max_wait``.

        Raises :class:`~queryopt.QueryRejected` when no slot came free in time.
        """
        gate = self._gates.get(fingerprint)
        if gate is None:
            gate = self._new_gate(fingerprint)
        if not gate.queue:  # try_acquire, inlined: this is every call's path
            try:
                gate.free.pop()
            except IndexError:
                return self._wait_blocking(gate)
            try:
                self._shared.pop()
            except IndexError:
                if self._try_reserve(gate):
                    return gate
                return self._wait_blocking(gate)
            return gate
        return self._wait_blocking(gate)

    async def acquire_async(self, fingerprint: str) -> Gate:
        """A slot of ``fingerprint`` for a coroutine: at once when free and nobody waits for one, else after
        awaiting its turn up to ``max_wait``.

        Raises :class:`~queryopt.QueryRejected` when no slot came free in time.
        """
        gate = self._gates.get(fingerprint)
        if gate is None:
            gate = self._new_gate(fingerprint)
        if not gate.queue and self.try_acquire(gate):
            return gate
        return await self._wait_async(gate)

    def _wait_blocking(self, gate: Gate) -> Gate:
        if self._max_wait <= 0:
            raise self._reject(gate, 0.0)
        started = time.perf_counter()
        deadline = started + self._max_wait
        event = threading.Event()
        waiter = _Waiter(event.set)
        self._join(gate, waiter)
        acquired = False
        try:
            # In line before trying: a release after a failed try is sure to notify the first in line.
            while not waiter.granted:
                if gate.queue and gate.queue[0] is waiter and self.try_acquire(gate):
                    acquired = True
                    break
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                event.wait(remaining)
                event.clear()
        except BaseException:
            if self._leave(gate, waiter):
                self._give_back(gate)  # handed over just now, to a call that is not going to run
            raise
        return self._after_wait(gate, waiter, acquired, started)

    async def _wait_async(self, gate: Gate) -> Gate:
        if self._max_wait <= 0:
            raise self._reject(gate, 0.0)
        started = time.perf_counter()
        deadline = started + self._max_wait
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(functools.partial(_wake_future, loop, woken))
        self._join(gate, waiter)
        acquired = False
        try:
            while not waiter.granted:
                if gate.queue and gate.queue[0] is waiter and self.try_acquire(gate):
                    acquired = True
                    break
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(woken), remaining)
                if woken.done():
                    # A fresh future for the next wait, swapped under the lock that every notification holds:
                    # one sent before the swap changed what the next try sees.
                    with self._lock:
                        woken = loop.create_future()
                        waiter.notify = functools.partial(_wake_future, loop, woken)
        except BaseException:
            if self._leave(gate, waiter):
                self._give_back(gate)  # handed over just now, to a call that is not going to run
            raise
        return self._after_wait(gate, waiter, acquired, started)

    def _after_wait(self, gate: Gate, waiter: _Waiter, acquired: bool, started: float) -> Gate:
        waited = time.perf_counter() - started
        granted = self._leave(gate, waiter)
        if granted and acquired:
            self._give_back(gate)  # it took slots itself as they were handed over: one pair is spare
        elif not (granted or acquired):
            raise self._reject(gate, waited)
        self._count_wait(gate, waited)
        return gate

    def _join(self, gate: Gate, waiter: _Waiter) -> None:
        with self._lock:
            gate.queue.append(waiter)
            self._waiters[waiter] = gate

    def _leave(self, gate: Gate, waiter: _Waiter) -> bool:
        """Out of line; True when slots were handed over to it."""
        with self._lock:
            self._waiters.pop(waiter, None)
            if waiter.granted:
                return True
            was_first = bool(gate.queue) and gate.queue[0] is waiter
            with contextlib.suppress(ValueError):
                gate.queue.remove(waiter)
            if was_first and gate.queue:
                gate.queue[0].notify()  # the next in line may find what this one left
            return False

    def _wake_heads(self) -> None:
        # A shared slot came free: the first in line at every gate tries again.
        with self._lock:
            for waiter, gate in self._waiters.items():
                if gate.queue and gate.queue[0] is waiter:
                    waiter.notify()

    def _count_wait(self, gate: Gate, waited: float) -> None:
        with self._lock:
            gate.waits += 1
            gate.wait_seconds += waited
            self._waits += 1
            self._wait_seconds += waited

    def _reject(self, gate: Gate, waited: float) -> QueryRejected:
        with self._lock:
            gate.rejections += 1
            gate.wait_seconds += waited
            self._rejections += 1
            self._wait_seconds += waited
        limit = gate.limit
        running = gate.in_flight
        busy = f"{running} of {limit} calls running" if running >= limit else "no shared pool slot free"
        return QueryRejected(
            f"query {gate.fingerprint} has {busy}; rejected after waiting {waited:.3f}s",
            fingerprint=gate.fingerprint,
            limit=limit,
            waited=waited,
        )

    # -- what happened -----------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Totals: ``limit_waits`` (calls that waited, then ran), ``limit_rejections``, ``limit_wait_ms``
        (all waiting, rejected calls included), ``limit_in_flight`` and ``limit_waiting`` now."""
        with self._lock:
            return {
                "limit_waits": self._waits,
                "limit_rejections": self._rejections,
                "limit_wait_ms": round(self._wait_seconds * 1000),
                "limit_in_flight": self.shared_slots - len(self._shared) + self._borrowed,
                "limit_waiting": len(self._waiters),
            }

    def summary(self) -> dict[str, dict[str, float]]:
        """Per fingerprint: ``limit`` and ``in_flight`` now, ``waits``, ``rejections``, ``wait_seconds``."""
        with self._lock:
            gates = list(self._gates.values())
            return {
                gate.fingerprint: {
                    "limit": gate.limit,
                    "in_flight": gate.in_flight,
                    "waits": gate.waits,
                    "rejections": gate.rejections,
                    "wait_seconds": gate.wait_seconds,
                }
                for gate in gates
            }


def open_limiter(policy: LimitPolicy, pool_size: int | None) -> ConcurrencyLimiter | None:
    """The limiter a front end uses on a pool of ``pool_size`` connections; ``None`` when limits are off."""
    return None if policy.mode is LimitMode.OFF else ConcurrencyLimiter(policy, pool_size=pool_size)


def overloaded(error: BaseException) -> bool:
    """Whether a failed call is a sign of overload for an adaptive limit: a statement timeout (57014) or
    no pooled connection in time."""
    if getattr(error, "sqlstate", None) == "57014":
        return True
    return isinstance(error, PoolTimeout) or isinstance(error.__cause__, PoolTimeout)


def _wake_future(loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None]) -> None:
    def resolve() -> None:
        if not woken.done():
            woken.set_result(None)

    with contextlib.suppress(RuntimeError):  # the waiter's loop is closed: nobody is left to wake
        loop.call_soon_threadsafe(resolve)


class Slot:
    """Holds a call's slot while it runs (blocking or awaited alike), then releases it with the call's duration;
    a call that failed for overload (see :func:`overloaded`) counts as a drop signal."""

    def __init__(self, limiter: ConcurrencyLimiter, gate: Gate) -> None:
        self.limiter = limiter
        self.gate = gate
        self.started = 0.0

    def __enter__(self) -> Slot:
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, *rest: object) -> None:
        dropped = isinstance(exc, QueryError) and overloaded(exc)
        self.limiter.release(self.gate, time.perf_counter() - self.started, dropped=dropped)
