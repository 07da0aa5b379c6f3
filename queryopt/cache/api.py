"""What the cache's policy and its backends share: entries, keys, versions and the backend protocol.

- **Keys** are built by the caller (the optimizer) from the database identity,
  the role, search_path and other session settings (and a caller's ``cache_scope``),
  the final SQL text (hints included) and the
  parameters in canonical typed form (:func:`canonical_params`).
- **Entries** carry their expiry time and the versions of the tables their
  query read, snapshotted before the query ran.
- **Backends** are dumb stores (:class:`CacheBackend`); one that also keeps the
  table versions, shared by processes, is a :class:`SharedBackend` (Redis).

This module imports nothing of queryopt but the leaves, so that backends can
import it without importing the policy.
"""

from __future__ import annotations

import datetime
import decimal
import sys
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from queryopt.result import QueryResult

__all__ = [
    "ALL_TABLES",
    "EVERY_SCOPE",
    "SCALAR_TYPES",
    "AsyncResultFactory",
    "Begun",
    "CacheBackend",
    "CacheEntry",
    "ResultFactory",
    "Rows",
    "SharedBackend",
    "UnkeyableParams",
    "VersionKey",
    "approximate_size",
    "canonical_params",
    "entry_size",
    "holds_mutable",
]

Rows = tuple[tuple[Any, ...], ...]
ResultFactory = Callable[[], QueryResult]
AsyncResultFactory = Callable[[], Awaitable[QueryResult]]
VersionKey = tuple[Hashable, str | None]

ALL_TABLES: Final = None
"""The table name under which a scope's catch-all version is kept (bumped when a write's tables are unknown)."""
EVERY_SCOPE: Final = "*"
"""The scope under which table versions bumped for every database and role are kept."""

SCALAR_TYPES: Final[frozenset[type]] = frozenset(
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
"""Parameter types whose values PostgreSQL tells apart exactly when Python does: keyed as ``(type, value)``."""
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
    if kind in SCALAR_TYPES:
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
        if value_kind in SCALAR_TYPES:
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

    Keys are ``(prefix, canonical parameters)``, or ``(prefix, type, value)`` for a single scalar parameter:
    the prefix (scope and SQL text) belongs to the prepared statement and is shared by all its entries, so
    only the key tuple and the parameters count.
    """
    if type(key) is tuple and len(key) in (2, 3):
        seen: set[int] = set()
        return sys.getsizeof(key) + sum(_deep_size(part, seen) for part in key[1:])
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


def holds_mutable(rows: Rows) -> bool:
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


@dataclass(frozen=True, slots=True)
class Begun:
    """What a miss learned in its first round trip: whether it runs the query, and the versions it read."""

    leads: bool
    """This caller runs the query (it got the lock, or locks are off)."""
    token: str
    """The lock's token ('' when locks are off or another process holds it)."""
    tag: bytes
    """The epoch and versions snapshotted before the query runs."""


class SharedBackend(CacheBackend, Protocol):
    """A store shared by processes that keeps the table versions beside the entries (Redis).

    Versions snapshotted from it are opaque; a shared backend never fails a call: when
    its server is unreachable, reads miss, stores are skipped and bumps are replayed later.
    A :class:`~queryopt.cache.policy.ResultCache` given such a backend keeps its entries and
    versions there (:class:`~queryopt.cache.shared.SharedStore`).
    """

    @property
    def shares_versions(self) -> bool:
        """True for a backend that implements this protocol."""

    @property
    def lock_wait(self) -> float:
        """Seconds other processes wait for a miss's leader before running the query themselves."""

    def fetch(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """The entry for ``key`` if stored under the current versions (one round trip)."""

    async def afetch(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None: ...

    def snapshot(self, version_keys: tuple[VersionKey, ...]) -> bytes | None:
        """The current versions as an opaque tag (``None``: the backend is unusable)."""

    def begin(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> Begun | None:
        """A miss's first round trip: try the cross-process lock and snapshot the versions."""

    async def abegin(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> Begun | None: ...

    def poll(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> tuple[QueryResult | None, bool] | None:
        """While another process runs the query: its stored result (if any) and whether it still holds the lock."""

    async def apoll(
        self, key: Hashable, version_keys: tuple[VersionKey, ...]
    ) -> tuple[QueryResult | None, bool] | None: ...

    def store(
        self,
        key: Hashable,
        version_keys: tuple[VersionKey, ...],
        result: QueryResult,
        *,
        tag: bytes,
        ttl: float,
        token: str = "",
    ) -> bool:
        """Store ``result`` if the versions are still those of ``tag``; releases ``token``'s lock."""

    async def astore(
        self,
        key: Hashable,
        version_keys: tuple[VersionKey, ...],
        result: QueryResult,
        *,
        tag: bytes,
        ttl: float,
        token: str = "",
    ) -> bool: ...

    def release(self, key: Hashable, token: str) -> None:
        """Release ``token``'s lock without storing (the query failed)."""

    async def arelease(self, key: Hashable, token: str) -> None: ...

    def bump(self, version_keys: Sequence[VersionKey]) -> None:
        """Make every entry stored under the current versions of ``version_keys`` stale, atomically."""

    async def abump(self, version_keys: Sequence[VersionKey]) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...
