"""The result cache: keys, TTL and size bounds, single-flight, table-version invalidation.

Policy lives here; storage lives behind :class:`CacheBackend`, a dumb store
(get/set/delete/clear) so that a shared backend can replace the in-memory one
without touching the rules below.

- **Keys** are built by the caller (the optimizer) from the database identity,
  the role and search_path, the final SQL text (hints included) and the
  parameters in canonical typed form (:func:`canonical_params`).
- **Validity**: an entry carries its expiry time and the versions of the tables
  its query read, *snapshotted before the query ran*. A write bumps the
  versions of the tables it touched after its transaction commits, so an entry
  whose query may have seen pre-write data is never served after the write —
  even when that query finished storing only after the write. A global
  generation counter lets an unchanged cache skip the per-table comparison.
- **Single-flight**: concurrent identical misses wait for one execution; its
  error reaches every waiter and is not cached. Threads wait on a
  ``concurrent.futures.Future``; coroutines (:meth:`ResultCache.aget_or_execute`)
  on an ``asyncio.Future`` of their loop, so a waiting coroutine never blocks it.
- **Shared backends** (Redis) keep the table versions beside the entries, so a
  write in one process invalidates every process's results: constructing a
  ``ResultCache`` with such a backend gives a
  :class:`~queryopt.shared_cache.SharedResultCache`, which checks versions in
  the same round trip as the entry and locks across processes on a miss.
- **Immutability**: results are frozen, rows are tuples; results holding mutable
  values (lists, dicts from json, arrays) are deep-copied on the way out.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import decimal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, Protocol

from queryopt.config import CachePolicy
from queryopt.errors import CacheError
from queryopt.result import QueryResult

__all__ = [
    "ALL_TABLES",
    "EVERY_SCOPE",
    "CacheBackend",
    "CacheEntry",
    "MemoryBackend",
    "ResultCache",
    "Rows",
    "SharedBackend",
    "UnkeyableParams",
    "canonical_params",
]

Rows = tuple[tuple[Any, ...], ...]
ResultFactory = Callable[[], QueryResult]
AsyncResultFactory = Callable[[], Awaitable[QueryResult]]
VersionKey = tuple[Hashable, str | None]

ALL_TABLES: Final = None
"""The table name under which a scope's catch-all version is kept (bumped when a write's tables are unknown)."""
EVERY_SCOPE: Final = "*"
"""The scope under which table versions bumped for every database and role are kept."""

_SCALARS: Final[frozenset[type]] = frozenset(
    {
        int,
        str,
        bytes,
        bool,
        type(None),
        datetime.date,
        datetime.datetime,
        datetime.timedelta,
        uuid.UUID,
    }
)
# Values Python calls equal (with equal hashes) that PostgreSQL tells apart: the scale of a numeric
# (1.0, 1.00), the sign of a zero, the offset of a time of day.
_DISTINGUISHED: Final[dict[type, Callable[[Any], Hashable]]] = {
    float: float.hex,
    decimal.Decimal: decimal.Decimal.as_tuple,
    datetime.time: lambda value: (value, value.utcoffset()),
}
_MUTABLE_VALUES: Final = (list, dict, bytearray, set)


class UnkeyableParams(Exception):
    """Parameters that cannot form a cache key (the call then bypasses the cache)."""


def _canonical_value(value: Any) -> Hashable:
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind in _DISTINGUISHED:
        return (kind, _DISTINGUISHED[kind](value))
    if kind is list or kind is tuple:
        return (kind, tuple(_canonical_value(item) for item in value))
    if kind is dict:
        try:
            items = sorted(value.items())
        except TypeError:
            raise UnkeyableParams(f"a dict parameter with keys of mixed types cannot be keyed: {value!r:.60}") from None
        return (kind, tuple((key, _canonical_value(item)) for key, item in items))
    raise UnkeyableParams(f"a parameter of type {kind.__name__} cannot be keyed")


def canonical_params(params: Sequence[Any] | Mapping[str, Any] | None) -> Hashable:
    """A hashable, typed form of query parameters: ``1``, ``1.0``, ``True`` and ``"1"`` differ.

    >>> canonical_params([1]) == canonical_params([1.0])
    False
    >>> canonical_params([decimal.Decimal("1.0")]) == canonical_params([decimal.Decimal("1.00")])
    False
    >>> canonical_params({"b": 2, "a": "x"}) == canonical_params({"a": "x", "b": 2})
    True

    Raises :class:`UnkeyableParams` for values with no stable identity.
    """
    kind = type(params)
    if (kind is list or kind is tuple) and len(params) == 1:  # type: ignore[arg-type]
        # The common primary-key lookup: no loop, no abstract-base-class check.
        value = params[0]  # type: ignore[index]
        value_kind = type(value)
        if value_kind in _SCALARS:
            return (value_kind, value)
    if params is None:
        return ()
    if isinstance(params, Mapping):
        return tuple(sorted((name, _canonical_value(value)) for name, value in params.items()))
    return tuple(_canonical_value(value) for value in params)


def approximate_size(rows: Rows) -> int:
    """Approximate memory of a result in bytes, sampling large results."""
    count = len(rows)
    if count == 0:
        return sys.getsizeof(rows)
    step = max(1, count // 64)
    sample = rows[::step]
    sampled = sum(sys.getsizeof(row) + sum(sys.getsizeof(value) for value in row) for row in sample)
    return sys.getsizeof(rows) + sampled * count // len(sample)


# What a stored entry costs beyond its rows, its key and the objects below: the backend's dictionary
# slot (hash, key and value pointers, index, spare room at typical fill) and allocator rounding.
_SLOT_OVERHEAD = 112


def _deep_size(value: object, seen: set[int]) -> int:
    """Bytes of ``value`` and what it holds (tuples followed; types and objects already seen not counted)."""
    if isinstance(value, type) or id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if type(value) is tuple:
        for item in value:
            size += _deep_size(item, seen)
    return size


def key_size(key: Hashable) -> int:
    """Bytes a cache key takes per entry.

    Keys are ``(prefix, canonical parameters)``: the prefix (scope and SQL text) belongs to the prepared
    statement and is shared by all its entries, so only the key tuple and the parameters count.
    """
    if type(key) is tuple and len(key) == 2:
        return sys.getsizeof(key) + _deep_size(key[1], set())
    return _deep_size(key, set())


def entry_size(key: Hashable, entry: CacheEntry) -> int:
    """Bytes one stored entry takes: rows, key, the entry and result objects, the store's slot."""
    return (
        approximate_size(entry.result.rows)
        + key_size(key)
        + sys.getsizeof(entry)
        + sys.getsizeof(entry.result)
        + sys.getsizeof(entry.versions)
        + _SLOT_OVERHEAD
    )


def _holds_mutable(rows: Rows) -> bool:
    return any(isinstance(value, _MUTABLE_VALUES) for row in rows for value in row)


@dataclass(slots=True)
class CacheEntry:
    """One cached result and what decides whether it may still be served."""

    result: QueryResult
    expires_at: float
    """Clock reading after which the entry is stale."""
    versions: tuple[object, ...]
    """Versions of the read tables (and the catch-all) when the query started."""
    generation: int
    """The cache's global generation at which ``versions`` was last found current."""
    size: int
    """Approximate bytes."""
    copy_out: bool
    """Rows hold mutable values: hand out deep copies."""
    referenced: bool = False
    """Served since it was stored or last spared from eviction (second-chance eviction)."""


class CacheBackend(Protocol):
    """A dumb store: no expiry or version logic, only bounded storage."""

    def get(self, key: Hashable) -> CacheEntry | None: ...

    def set(self, key: Hashable, entry: CacheEntry, ttl: float) -> None: ...

    def delete(self, key: Hashable) -> None: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


class SharedBackend(CacheBackend, Protocol):
    """A store shared by processes that keeps the table versions beside the entries (Redis).

    Versions snapshotted from it are opaque; a shared backend never fails a call: when
    its server is unreachable, reads miss, stores are skipped and bumps are replayed later.
    """

    shares_versions: bool
    """True: :class:`ResultCache` hands such a backend to :class:`~queryopt.shared_cache.SharedResultCache`."""

    def fetch(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """The entry for ``key`` if stored under the current versions (one round trip)."""

    def bump(self, version_keys: Sequence[VersionKey]) -> None:
        """Make every entry stored under the current versions of ``version_keys`` stale, atomically."""


class MemoryBackend:
    """In-process store bounded by entries and approximate bytes.

    Eviction is second-chance (CLOCK), a close approximation of least-recently-used that
    costs a hit nothing: the cache marks an entry ``referenced`` when it serves it, and
    eviction spares a referenced entry once, moving it to the back of the line.
    """

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.evictions = 0
        self._entries: dict[Hashable, CacheEntry] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self.get = self._entries.get  # a bound dict method: the cheapest possible hit

    def set(self, key: Hashable, entry: CacheEntry, ttl: float) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            entries = self._entries
            old = entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            entries[key] = entry
            self._bytes += entry.size
            while len(entries) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(entries))
                candidate = entries.pop(oldest)
                if candidate.referenced and candidate is not entry:
                    candidate.referenced = False
                    entries[oldest] = candidate  # second chance: to the back of the line
                    continue
                self._bytes -= candidate.size
                self.evictions += 1

    def delete(self, key: Hashable) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes


class ResultCache:
    """Cached query results with TTL, bounds, single-flight and table-version invalidation.

    ``clock`` returns seconds (monotonic by default); tests may pass their own. A ``backend`` that
    shares versions between processes (``RedisBackend``) makes this a
    :class:`~queryopt.shared_cache.SharedResultCache`.
    """

    shared: bool = False
    """Whether entries and versions are shared with other processes."""

    def __new__(
        cls,
        policy: CachePolicy | None = None,
        *,
        backend: CacheBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ResultCache:
        if cls is ResultCache and getattr(backend, "shares_versions", False) is True:
            from queryopt.shared_cache import SharedResultCache  # shared_cache imports cache

            return super().__new__(SharedResultCache)
        return super().__new__(cls)

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
        self._versions: dict[VersionKey, int] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, Future[QueryResult]] = {}
        self._async_inflight: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Future[QueryResult]] = {}
        self._backend_get = self.backend.get
        self._hits = 0
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

    def _snapshot(self, keys: tuple[VersionKey, ...]) -> tuple[object, ...]:
        get = self._versions.get
        return tuple([get(key, 0) for key in keys])

    @staticmethod
    def bump_keys(scope: Hashable, tables: Iterable[str] | None) -> list[VersionKey]:
        """The version keys a write to ``tables`` in ``scope`` bumps (``None``: the scope's catch-all)."""
        return [(scope, ALL_TABLES)] if tables is None else [(scope, table) for table in tables]

    def bump(self, scope: Hashable, tables: Iterable[str] | None) -> None:
        """Invalidate results that read ``tables`` in ``scope``; ``None`` invalidates the whole scope."""
        keys = self.bump_keys(scope, tables)
        with self._lock:
            for key in keys:
                self._versions[key] = self._versions.get(key, 0) + 1
            self._generation += 1
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
        """Forget every cached result."""
        self.backend.clear()
        with self._lock:
            self._generation += 1
            self._counters["invalidations"] += 1

    # -- lookups --------------------------------------------------------------------------------------

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
        self._hits += 1
        return copy.deepcopy(entry.result) if entry.copy_out else entry.result

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
            result = self._fill(key, version_keys, execute, ttl)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)
        future.set_result(result)
        return self._copy_out(result)

    def _fill(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], execute: ResultFactory, ttl: float | None
    ) -> QueryResult:
        """The single-flight leader's miss: snapshot the versions, run the query, store its result."""
        versions = self._snapshot(version_keys)
        generation = self._generation
        result = execute()
        self.store(key, result, versions=versions, generation=generation, ttl=ttl)
        return result

    # -- asyncio ---------------------------------------------------------------------------------------

    async def aget(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """:meth:`get` for coroutines (in memory it does no I/O, so it is :meth:`get`)."""
        return self.get(key, version_keys)

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
            result = await self._afill(key, version_keys, execute, ttl)
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

    async def _afill(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], execute: AsyncResultFactory, ttl: float | None
    ) -> QueryResult:
        versions = self._snapshot(version_keys)
        generation = self._generation
        result = await execute()
        self.store(key, result, versions=versions, generation=generation, ttl=ttl)
        return result

    async def abump(self, scope: Hashable, tables: Iterable[str] | None) -> None:
        """:meth:`bump` for coroutines."""
        self.bump(scope, tables)

    def close(self) -> None:
        """Release the backend's connections, if it has any."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        """Release the backend's connections made for the running event loop, if it has any."""
        aclose = getattr(self.backend, "aclose", None)
        if aclose is not None:
            await aclose()

    def store(
        self,
        key: Hashable,
        result: QueryResult,
        *,
        versions: tuple[object, ...],
        generation: int,
        ttl: float | None = None,
    ) -> None:
        """Store ``result`` as read under ``versions`` (snapshotted before the query ran)."""
        lifetime = self.policy.ttl if ttl is None else ttl
        if lifetime <= 0:
            raise CacheError(f"a cache TTL must be > 0 seconds, got {lifetime!r}")
        if len(result.rows) > self.policy.max_result_rows:
            self._counters["too_large"] += 1
            return
        entry = CacheEntry(result, self.clock() + lifetime, versions, generation, 0, _holds_mutable(result.rows))
        entry.size = entry_size(key, entry)
        self.backend.set(key, entry, lifetime)
        self._counters["stores"] += 1

    def snapshot(self, version_keys: tuple[VersionKey, ...]) -> tuple[tuple[object, ...], int]:
        """Versions and generation to pass to :meth:`store` for a query about to run."""
        return self._snapshot(version_keys), self._generation

    @staticmethod
    def _copy_out(result: QueryResult) -> QueryResult:
        return copy.deepcopy(result) if _holds_mutable(result.rows) else result

    def count_bypass(self) -> None:
        self._counters["bypasses"] += 1

    def count_miss(self) -> None:
        """Count a miss served without :meth:`get_or_execute` (by a caller that must not wait for another's run)."""
        self._counters["misses"] += 1

    def stats(self) -> dict[str, int]:
        """Plain counters: hits, misses, stores, evictions, expirations, stale, invalidations, bypasses, …"""
        counters = dict(self._counters)
        counters["hits"] = self._hits
        counters["entries"] = len(self.backend)
        counters["evictions"] = getattr(self.backend, "evictions", 0)
        backend_stats = getattr(self.backend, "stats", None)
        if backend_stats is not None:
            counters.update(backend_stats())
        return counters
