"""The result cache's policy: TTL and size bounds, single-flight, table-version invalidation.

Storage and versions live in a store chosen once, by composition: a
:class:`~queryopt.cache.local.LocalStore` (versions in this process, entries in
any dumb :class:`~queryopt.cache.api.CacheBackend`, in memory by default) or,
for a backend shared by processes (Redis), a
:class:`~queryopt.cache.shared.SharedStore`, which checks versions in the same
round trip as the entry and locks across processes on a miss.

- **Validity**: an entry carries its expiry time and the versions of the tables
  its query read, *snapshotted before the query ran*. A write bumps the
  versions of the tables it touched after its transaction commits, so an entry
  whose query may have seen pre-write data is never served after the write —
  even when that query finished storing only after the write.
- **Single-flight**: concurrent identical misses wait for one execution; its
  error reaches every waiter and is not cached. Threads wait on a
  ``concurrent.futures.Future``; coroutines (:meth:`ResultCache.aget_or_execute`)
  on an ``asyncio.Future`` of their loop, so a waiting coroutine never blocks it.
- **Immutability**: results are frozen, rows are tuples; results holding mutable
  values (lists, dicts from json, arrays) are deep-copied on the way out.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, cast

from queryopt.cache.api import (
    ALL_TABLES,
    EVERY_SCOPE,
    AsyncResultFactory,
    CacheBackend,
    ResultFactory,
    SharedBackend,
    VersionKey,
    holds_mutable,
)
from queryopt.cache.backends.memory import MemoryBackend
from queryopt.cache.local import LocalStore
from queryopt.config import CachePolicy
from queryopt.errors import CacheError
from queryopt.result import QueryResult

if TYPE_CHECKING:
    from queryopt.cache.shared import SharedStore

__all__ = ["ResultCache"]


class ResultCache:
    """Cached query results with TTL, bounds, single-flight and table-version invalidation.

    ``clock`` returns seconds (monotonic by default); tests may pass their own. A ``backend`` that
    shares versions between processes (``RedisBackend``) shares entries and invalidations with every
    process using the same namespace.
    """

    get: Callable[[Hashable, tuple[VersionKey, ...]], QueryResult | None]
    """``get(key, version_keys)``: the cached result if fresh and current, else ``None`` (the hot path)."""
    aget: Callable[[Hashable, tuple[VersionKey, ...]], Awaitable[QueryResult | None]]
    """:attr:`get` for coroutines."""

    def __init__(
        self,
        policy: CachePolicy | None = None,
        *,
        backend: CacheBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or CachePolicy()
        # Not `backend or …`: an empty backend is falsy (it has a __len__).
        self.backend: CacheBackend = (
            backend
            if backend is not None
            else MemoryBackend(max_entries=self.policy.max_entries, max_bytes=self.policy.max_bytes)
        )
        self.clock = clock
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, Future[QueryResult]] = {}
        self._async_inflight: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Future[QueryResult]] = {}
        self._counters = {
            "misses": 0,
            "stores": 0,
            "expirations": 0,
            "stale": 0,
            "invalidations": 0,
            "bypasses": 0,
            "singleflight_joins": 0,
            "too_large": 0,
        }
        self.shared: bool = getattr(self.backend, "shares_versions", False) is True
        """Whether entries and versions are shared with other processes."""
        self._store: LocalStore | SharedStore
        if self.shared:
            from queryopt.cache.shared import SharedStore  # needs the optional redis package only when used

            shared = cast(SharedBackend, self.backend)  # a protocol too wide to check: its flag says so
            self._store = SharedStore(shared, self._counters, self._may_store)
        else:
            self._store = LocalStore(self.backend, clock, self._counters, self._may_store)
        self.get = self._store.get  # the store's bound method: a hit costs no extra call
        self.aget = self._store.aget

    # -- versions ------------------------------------------------------------------------------------

    @staticmethod
    def version_keys(scope: Hashable, tables: Iterable[str]) -> tuple[VersionKey, ...]:
        """The version keys an entry depends on: each table read, in its scope and in every scope, plus the
        scope's catch-all."""
        unique = tuple(dict.fromkeys(tables))
        return (
            *((scope, table) for table in unique),
            *((EVERY_SCOPE, table) for table in unique),
            (scope, ALL_TABLES),
        )

    @staticmethod
    def bump_keys(scope: Hashable, tables: Iterable[str] | None) -> list[VersionKey]:
        """The version keys a write to ``tables`` in ``scope`` bumps (``None``: the scope's catch-all)."""
        return [(scope, ALL_TABLES)] if tables is None else [(scope, table) for table in tables]

    def bump(self, scope: Hashable, tables: Iterable[str] | None) -> None:
        """Invalidate results that read ``tables`` in ``scope``; ``None`` invalidates the whole scope."""
        keys = self.bump_keys(scope, tables)
        self._store.bump(keys)
        self._counters["invalidations"] += len(keys)

    async def abump(self, scope: Hashable, tables: Iterable[str] | None) -> None:
        """:meth:`bump` for coroutines."""
        keys = self.bump_keys(scope, tables)
        await self._store.abump(keys)
        self._counters["invalidations"] += len(keys)

    def invalidate(self, table: str | None = None, *, scope: Hashable | None = None) -> None:
        """Drop results that read ``table`` (in every scope unless ``scope`` is given); no table: everything."""
        if table is None:
            if scope is None:
                self.clear()
            else:
                self.bump(scope, None)
        else:
            self.bump(EVERY_SCOPE if scope is None else scope, [table])

    def clear(self) -> None:
        """Forget every cached result (of the namespace, in every process, for a shared backend)."""
        self._store.clear()
        self._counters["invalidations"] += 1

    # -- lookups --------------------------------------------------------------------------------------

    def get_or_execute(
        self,
        key: Hashable,
        version_keys: tuple[VersionKey, ...],
        execute: ResultFactory,
        *,
        ttl: float | None = None,
    ) -> QueryResult:
        """Serve ``key`` from the cache, or run ``execute`` once for all concurrent callers and store it."""
        cached = self.get(key, version_keys)
        if cached is not None:
            return cached
        with self._lock:
            leader = self._inflight.get(key)
            if leader is None:
                future: Future[QueryResult] = Future()
                self._inflight[key] = future
                self._counters["misses"] += 1
            else:
                self._counters["singleflight_joins"] += 1
        if leader is not None:
            return self._copy_out(leader.result())
        try:
            result = self._store.fill(key, version_keys, execute, self._lifetime(ttl))
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)
        future.set_result(result)
        return self._copy_out(result)

    async def aget_or_execute(
        self,
        key: Hashable,
        version_keys: tuple[VersionKey, ...],
        execute: AsyncResultFactory,
        *,
        ttl: float | None = None,
    ) -> QueryResult:
        """:meth:`get_or_execute` for coroutines: concurrent identical misses in one event loop await one run.

        A waiter's cancellation leaves the run alone; a cancelled run hands the work to a waiter.
        """
        cached = await self.aget(key, version_keys)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        flight = (loop, key)
        inflight = self._async_inflight
        while (leader := inflight.get(flight)) is not None:
            self._counters["singleflight_joins"] += 1
            try:
                return self._copy_out(await asyncio.shield(leader))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not leader.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The leader was cancelled, not this waiter: take over.
        future: asyncio.Future[QueryResult] = loop.create_future()
        inflight[flight] = future
        self._counters["misses"] += 1
        try:
            result = await self._store.afill(key, version_keys, execute, self._lifetime(ttl))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" log when nobody waited
            raise
        finally:
            del inflight[flight]
        future.set_result(result)
        return self._copy_out(result)

    def close(self) -> None:
        """Release the backend's connections, if it has any."""
        self._store.close()

    async def aclose(self) -> None:
        """Release the backend's connections made for the running event loop, if it has any."""
        await self._store.aclose()

    # -- storing ---------------------------------------------------------------------------------------

    def store(
        self,
        key: Hashable,
        result: QueryResult,
        *,
        versions: tuple[object, ...],
        generation: int = 0,
        ttl: float | None = None,
    ) -> None:
        """Store ``result`` as read under ``versions`` and ``generation`` (from :meth:`snapshot`)."""
        self._store.put(key, result, versions, generation, self._lifetime(ttl))

    def snapshot(self, version_keys: tuple[VersionKey, ...]) -> tuple[tuple[object, ...], int]:
        """Versions and generation to pass to :meth:`store` for a query about to run."""
        return self._store.snapshot(version_keys)

    def _lifetime(self, ttl: float | None) -> float:
        lifetime = self.policy.ttl if ttl is None else ttl
        if lifetime <= 0:
            raise CacheError(f"a cache TTL must be > 0 seconds, got {lifetime!r}")
        return lifetime

    def _may_store(self, result: QueryResult) -> bool:
        if len(result.rows) > self.policy.max_result_rows:
            self._counters["too_large"] += 1
            return False
        return True

    @staticmethod
    def _copy_out(result: QueryResult) -> QueryResult:
        return copy.deepcopy(result) if holds_mutable(result.rows) else result

    # -- counters --------------------------------------------------------------------------------------

    def count_bypass(self) -> None:
        self._counters["bypasses"] += 1

    def count_miss(self) -> None:
        """Count a miss served without :meth:`get_or_execute` (by a caller that must not wait for another's run)."""
        self._counters["misses"] += 1

    def stats(self) -> dict[str, int]:
        """Plain counters: hits, misses, stores, evictions, expirations, stale, invalidations, bypasses, …"""
        counters = dict(self._counters)
        counters["hits"] = self._store.hits
        counters["entries"] = len(self.backend)
        counters["evictions"] = getattr(self.backend, "evictions", 0)
        backend_stats = getattr(self.backend, "stats", None)
        if backend_stats is not None:
            counters.update(backend_stats())
        return counters
