"""Connections kept out of the pool between calls, each with its cursor: a call reuses one without asking the pool.

On a primary-key lookup, the pool's ``getconn``/``putconn`` and a new cursor per
call cost more than all the rest of queryopt's work (``benchmarks/hot_path.py``):
a reused cursor keeps psycopg's adapters and prepared-statement state warm. So a
connection a call took from the pool stays *leased* afterwards, on a last-in
first-out shelf: the next call (on this thread or another; in this event loop)
takes it back with one ``list.pop`` — atomic, so no lock — and a thread calling
alone gets the same connection every time. A lease goes back to the pool:

- when a call ends while clients wait for the pool (ours or anyone's sharing it),
  so leases never starve other threads; a sweep also returns every idle lease then;
- when it has been idle for ``idle`` seconds (the sweep), and when it has been out
  of the pool for ``max_hold`` seconds, so the pool's checks, ``max_lifetime``,
  ``reset`` and shrinking still apply;
- when its connection is broken, inside a transaction or not in autocommit
  (the pool then rolls back, commits or replaces it as usual);
- when the front end closes. A forked child forgets its parent's leases without
  touching them: their sockets belong to the parent.

Whether clients wait is read from the pool's queue of waiting clients
(psycopg_pool keeps it in ``_waiting``; asking ``get_stats()`` per call would
cost more than the lease saves). A pool without one is never leased from.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, Generic, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = ["IDLE_SECONDS", "MAX_HOLD_SECONDS", "AsyncLeases", "Lease", "LeaseShelf", "Leases"]

IDLE_SECONDS: Final = 0.1
"""A lease unused this long goes back to the pool."""
MAX_HOLD_SECONDS: Final = 5.0
"""A lease out of the pool this long goes back after its call, so the pool's own upkeep still runs."""
SWEEP_SECONDS: Final = 0.025
"""How often idle leases are looked at (at most): a client waiting for the pool waits about this long for one."""

_IDLE = TransactionStatus.IDLE
ConnectionT = TypeVar("ConnectionT", bound=psycopg.BaseConnection[Any])


class Lease(Generic[ConnectionT]):
    """One connection out of the pool and the cursor that runs its calls."""

    __slots__ = ("autocommit", "conn", "cursor", "encoding", "idle_since", "until")

    def __init__(self, conn: ConnectionT, cursor: Any, until: float) -> None:
        self.conn = conn
        self.cursor = cursor
        self.autocommit = conn.autocommit
        """Read once: nobody else holds the connection while it is leased (a transaction keeps it anyway)."""
        self.encoding = conn.info.encoding
        """The Python name of the client encoding, read once: it names the columns of the lease's results
        (a change of a session setting that would outlive its call or transaction is refused)."""
        self.until = until
        """``time.perf_counter()`` past which the lease goes back to the pool after its call."""
        self.idle_since = 0.0


class LeaseShelf(Generic[ConnectionT]):
    """The leases not in use, and when they go back to the pool; shared by the blocking and the asyncio side.

    ``take``/``keep`` run on every call and take no lock: ``list.pop``, ``append`` and ``remove`` are atomic.
    """

    def __init__(self, pool: Any, *, idle: float, max_hold: float, wake: Callable[[], None]) -> None:
        self.idle = idle
        self.max_hold = max_hold
        self.tick = min(idle / 2, SWEEP_SECONDS)
        self._pool = pool
        waiting = getattr(pool, "_waiting", None)
        self.enabled = isinstance(waiting, deque)
        """Whether leases are kept at all (a pool whose waiting clients cannot be seen is used call by call)."""
        self._waiting: deque[Any] = waiting if isinstance(waiting, deque) else deque([None])
        self._leases: list[Lease[ConnectionT]] = []
        self._wake = wake
        self.parked = True
        """Set by the sweep when it sleeps with nothing to sweep; the next shelved lease wakes it."""
        self.closed = False
        _SHELVES.add(self)

    def take(self) -> Lease[ConnectionT] | None:
        """An idle lease (the most recently used), or ``None``."""
        try:
            return self._leases.pop()
        except IndexError:
            return None

    def keep(self, lease: Lease[ConnectionT], now: float) -> bool:
        """Shelve ``lease`` after a call started at ``now``; False when it must go back to the pool instead."""
        conn = lease.conn
        if self._waiting or now >= lease.until or not lease.autocommit or conn.pgconn.transaction_status != _IDLE:
            return False
        lease.idle_since = now
        leases = self._leases
        leases.append(lease)
        if self.closed:  # closed meanwhile: whoever removes it returns it
            try:
                leases.remove(lease)
            except ValueError:
                return True
            return False
        if self.parked:
            self.parked = False
            self._wake()
        return True

    def stale(self, now: float) -> list[Lease[ConnectionT]]:
        """Take the leases idle for ``idle`` seconds (all of them when the pool has waiting clients or closed)."""
        everything = bool(self._waiting) or self._pool.closed
        taken = []
        leases = self._leases
        while leases:
            try:
                oldest = leases[0]
            except IndexError:
                break
            if not everything and now - oldest.idle_since < self.idle:
                break
            try:
                leases.remove(oldest)  # a call may have taken it meanwhile
            except ValueError:
                continue
            taken.append(oldest)
        return taken

    def close(self) -> list[Lease[ConnectionT]]:
        """Stop shelving; take every idle lease."""
        self.closed = True
        return self.drain()

    def drain(self) -> list[Lease[ConnectionT]]:
        taken = []
        while (lease := self.take()) is not None:
            taken.append(lease)
        return taken

    def __len__(self) -> int:
        return len(self._leases)

    def forget(self) -> None:
        """In a forked child: drop the parent's leases unused (kept referenced: nothing may touch their sockets)."""
        _ORPHANS.extend(self._leases)
        self._leases.clear()
        self.parked = True


class Leases:
    """Leases from a blocking psycopg pool, with a sweeper thread returning idle ones."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        idle: float = IDLE_SECONDS,
        max_hold: float = MAX_HOLD_SECONDS,
    ) -> None:
        self.pool = pool
        self._wake_up = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.shelf: LeaseShelf[psycopg.Connection[Any]] = LeaseShelf(
            pool, idle=idle, max_hold=max_hold, wake=self._wake
        )

    def take(self) -> Lease[psycopg.Connection[Any]]:
        """A lease for one call: an idle one, else a new one from the pool (waiting for it as the pool does)."""
        return self.shelf.take() or self.new()

    def new(self) -> Lease[psycopg.Connection[Any]]:
        """A new lease from the pool (waiting for a connection as the pool does)."""
        conn = self.pool.getconn()
        return Lease(conn, conn.cursor(), time.perf_counter() + self.shelf.max_hold)

    def give_back(self, lease: Lease[psycopg.Connection[Any]], now: float, *, ok: bool = True) -> None:
        """After a call started at ``now``: shelve ``lease``, or return it to the pool (``ok``: the call succeeded)."""
        if not self.shelf.keep(lease, now):
            self.release(lease, ok=ok)

    def release(self, lease: Lease[psycopg.Connection[Any]], *, ok: bool = True) -> None:
        """Return ``lease`` to the pool (committing or rolling back first if it is not in autocommit)."""
        self._return(lease, ok=ok)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for a caller's own statements (a transaction, catalog look-ups), shelved again after."""
        lease = self.take()
        ok = False
        try:
            yield lease.conn
            ok = True
        finally:
            self.give_back(lease, time.perf_counter(), ok=ok)

    def close(self) -> None:
        """Return every idle lease and stop the sweeper; leases in use go back when their call ends."""
        for lease in self.shelf.close():
            self._return(lease)
        self._stop.set()
        self._wake_up.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _return(self, lease: Lease[psycopg.Connection[Any]], *, ok: bool = True) -> None:
        conn = lease.conn
        with contextlib.suppress(psycopg.Error):
            lease.cursor.close()
            if not conn.autocommit and not conn.closed:
                # What the pool's `with conn:` did: commit after success, roll back after an error.
                if ok:
                    conn.commit()
                else:
                    conn.rollback()
        self.pool.putconn(conn)

    def _wake(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive():  # not started yet, or in a forked child
            with self._lock:
                if (self._thread is None or not self._thread.is_alive()) and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._sweep, name="queryopt-leases", daemon=True)
                    self._thread.start()
                    return
        self._wake_up.set()

    def _sweep(self) -> None:
        shelf = self.shelf
        while not self._stop.wait(shelf.tick):
            for lease in shelf.stale(time.perf_counter()):
                self._return_quietly(lease)
            if not len(shelf):
                self._wake_up.clear()
                shelf.parked = True
                if not len(shelf):  # a call shelving a lease from now on wakes us
                    self._wake_up.wait()
                shelf.parked = False

    def _return_quietly(self, lease: Lease[psycopg.Connection[Any]]) -> None:
        with contextlib.suppress(Exception):  # the pool may have closed meanwhile; the sweep must go on
            self._return(lease)


class AsyncLeases:
    """Leases from an asyncio psycopg pool, swept by a timer of the event loop that uses them."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        idle: float = IDLE_SECONDS,
        max_hold: float = MAX_HOLD_SECONDS,
    ) -> None:
        self.pool = pool
        self._returning: set[asyncio.Task[None]] = set()
        self.shelf: LeaseShelf[psycopg.AsyncConnection[Any]] = LeaseShelf(
            pool, idle=idle, max_hold=max_hold, wake=self._wake
        )

    async def take(self) -> Lease[psycopg.AsyncConnection[Any]]:
        """A lease for one call: an idle one, else a new one from the pool."""
        lease = self.shelf.take()
        if lease is None:
            conn = await self.pool.getconn()
            lease = Lease(conn, conn.cursor(), time.perf_counter() + self.shelf.max_hold)
        return lease

    async def give_back(self, lease: Lease[psycopg.AsyncConnection[Any]], now: float, *, ok: bool = True) -> None:
        """After a call started at ``now``: shelve ``lease``, or return it to the pool."""
        if not self.shelf.keep(lease, now):
            await self._return(lease, ok=ok)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for a caller's own statements (a transaction), shelved again after."""
        lease = await self.take()
        ok = False
        try:
            yield lease.conn
            ok = True
        finally:
            await self.give_back(lease, time.perf_counter(), ok=ok)

    async def close(self) -> None:
        """Return every idle lease; leases in use go back when their call ends."""
        for lease in self.shelf.close():
            await self._return(lease)
        for task in list(self._returning):
            with contextlib.suppress(Exception):
                await task

    async def _return(self, lease: Lease[psycopg.AsyncConnection[Any]], *, ok: bool = True) -> None:
        conn = lease.conn
        with contextlib.suppress(psycopg.Error):
            await lease.cursor.close()
            if not conn.autocommit and not conn.closed:
                if ok:
                    await conn.commit()
                else:
                    await conn.rollback()
        await self.pool.putconn(conn)

    def _wake(self) -> None:
        asyncio.get_running_loop().call_later(self.shelf.tick, self._sweep)

    def _sweep(self) -> None:
        shelf = self.shelf
        stale = shelf.stale(time.perf_counter())
        if stale:
            task = asyncio.get_running_loop().create_task(self._return_all(stale))
            self._returning.add(task)
            task.add_done_callback(self._returning.discard)
        if len(shelf) and not shelf.closed:
            asyncio.get_running_loop().call_later(shelf.tick, self._sweep)
        else:
            shelf.parked = True
            if len(shelf):  # shelved between the check and parking
                shelf.parked = False
                asyncio.get_running_loop().call_later(shelf.tick, self._sweep)

    async def _return_all(self, leases: list[Lease[psycopg.AsyncConnection[Any]]]) -> None:
        for lease in leases:
            with contextlib.suppress(Exception):
                await self._return(lease)


_SHELVES: weakref.WeakSet[LeaseShelf[Any]] = weakref.WeakSet()
_ORPHANS: list[Lease[Any]] = []


def _forget_after_fork() -> None:
    for shelf in list(_SHELVES):
        shelf.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
