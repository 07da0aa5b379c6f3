"""Entries in a backend of this process, table versions in a dictionary of this process.

A write bumps the versions of the tables it touched; an entry is served only if
the versions it was stored under are still current. A global generation counter
lets an unchanged cache skip the per-table comparison, so a hit is a dictionary
lookup, a clock reading and two comparisons.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable, Sequence

from queryopt.cache.api import (
    AsyncResultFactory,
    CacheBackend,
    CacheEntry,
    ResultFactory,
    VersionKey,
    entry_size,
    holds_mutable,
)
from queryopt.result import QueryResult, settled

__all__ = ["LocalStore"]


class LocalStore:
    """Versions kept in this process over any :class:`~queryopt.cache.api.CacheBackend`."""

    def __init__(
        self,
        backend: CacheBackend,
        clock: Callable[[], float],
        counters: dict[str, int],
        may_store: Callable[[QueryResult], bool],
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.hits = 0
        self._counters = counters
        self._may_store = may_store
        self._versions: dict[VersionKey, int] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._backend_get = backend.get

    def get(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """The cached result for ``key`` if fresh and current, else ``None`` (the hot path)."""
        entry = self._backend_get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            self.backend.delete(key)
            self._counters["expirations"] += 1
            return None
        if entry.generation != self._generation:
            generation = self._generation
            if entry.versions != self._snapshot(version_keys):
                self.backend.delete(key)
                self._counters["stale"] += 1
                return None
            entry.generation = generation
        entry.referenced = True
        self.hits += 1
        return copy.deepcopy(entry.result) if entry.copy_out else entry.result

    async def aget(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """:meth:`get` for coroutines (no I/O here)."""
        return self.get(key, version_keys)

    def _snapshot(self, keys: tuple[VersionKey, ...]) -> tuple[object, ...]:
        get = self._versions.get
        return tuple([get(key, 0) for key in keys])

    def snapshot(self, version_keys: tuple[VersionKey, ...]) -> tuple[tuple[object, ...], int]:
        return self._snapshot(version_keys), self._generation

    def bump(self, keys: Sequence[VersionKey]) -> None:
        with self._lock:
            for key in keys:
                self._versions[key] = self._versions.get(key, 0) + 1
            self._generation += 1

    async def abump(self, keys: Sequence[VersionKey]) -> None:
        self.bump(keys)

    def clear(self) -> None:
        self.backend.clear()
        with self._lock:
            self._generation += 1

    def put(
        self, key: Hashable, result: QueryResult, versions: tuple[object, ...], generation: int, lifetime: float
    ) -> None:
        if not self._may_store(result):
            return
        result = settled(result)
        entry = CacheEntry(result, self.clock() + lifetime, versions, generation, 0, holds_mutable(result.rows))
        entry.size = entry_size(key, entry)
        self.backend.set(key, entry, lifetime)
        self._counters["stores"] += 1

    def fill(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], execute: ResultFactory, lifetime: float
    ) -> QueryResult:
        """The single-flight leader's miss: snapshot the versions, run the query, store its result."""
        versions, generation = self.snapshot(version_keys)
        result = execute()
        self.put(key, result, versions, generation, lifetime)
        return result

    async def afill(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], execute: AsyncResultFactory, lifetime: float
    ) -> QueryResult:
        versions, generation = self.snapshot(version_keys)
        result = await execute()
        self.put(key, result, versions, generation, lifetime)
        return result

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            await aclose()
