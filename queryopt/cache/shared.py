"""Entries and table versions in a store shared by processes (Redis): one miss algorithm, two drivers.

A :class:`~queryopt.cache.policy.ResultCache` given a shared backend keeps its
entries and versions in a :class:`SharedStore`. What differs from
:class:`~queryopt.cache.local.LocalStore`:

- **Hits** read the entry and the current table versions in one round trip and
  serve the entry only if they match, on every hit: no per-process generation
  counter, because any polling interval would be a window in which a write
  committed elsewhere is followed by a stale read here. The version check rides
  on the round trip the hit needs anyway (measured in ``benchmarks/redis_cache``).
- **Misses** are single-flight twice: threads (or coroutines) of this process
  wait for one leader (the policy's single-flight), and the leader takes a short
  lock in the backend so that other processes wait for its result (polling with
  backoff, at most ``lock_wait``) instead of running the query too. When the
  lock's owner ends without storing (its query failed, or its result may not be
  cached), waiters run the query themselves. The versions are snapshotted in the
  lock's round trip, before the query runs, and the store succeeds only if they
  are still current.

The miss algorithm is written once, as a generator of steps (:func:`_miss_steps`);
:meth:`SharedStore.fill` performs the steps with blocking calls and
:meth:`SharedStore.afill` with awaits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from queryopt.cache.api import AsyncResultFactory, Begun, ResultFactory, SharedBackend, VersionKey
from queryopt.result import QueryResult

__all__ = ["SharedStore"]

_FIRST_POLL: Final = 0.002
_LONGEST_POLL: Final = 0.05


class _Begin:
    """Try the lock and snapshot the versions → :class:`Begun` or None (Redis unusable)."""


class _Execute:
    """Run the query → its result (or its exception, thrown back into the steps)."""


@dataclass(frozen=True, slots=True)
class _Poll:
    """Sleep ``delay`` seconds, then read the entry and the lock → (result or None, lock held) or None."""

    delay: float


@dataclass(frozen=True, slots=True)
class _Store:
    """Store ``result`` under ``tag`` if still current, releasing ``token``'s lock."""

    result: QueryResult
    tag: bytes
    token: str


@dataclass(frozen=True, slots=True)
class _Release:
    """Release ``token``'s lock (the query failed)."""

    token: str


BEGIN: Final = _Begin()
EXECUTE: Final = _Execute()
Step = _Begin | _Execute | _Poll | _Store | _Release


def _miss_steps(
    counters: dict[str, int], lock_wait: float, may_store: Callable[[QueryResult], bool]
) -> Generator[Step, Any, QueryResult]:
    """The leader's miss, as steps: lock and snapshot, wait for another process or run, store."""
    clock = time.monotonic
    begun: Begun | None = yield BEGIN
    if begun is None:
        counters["unshared_runs"] += 1
        return (yield EXECUTE)  # type: ignore[no-any-return]  # Redis unusable: run it, store nothing
    if not begun.leads:
        counters["remote_waits"] += 1
        deadline = clock() + lock_wait
        delay = _FIRST_POLL
        while (remaining := deadline - clock()) > 0:
            polled = yield _Poll(min(delay, remaining))
            if polled is None:
                break
            result, held = polled
            if result is not None:
                counters["remote_hits"] += 1
                return result  # type: ignore[no-any-return]
            if not held:
                break  # its run ended without storing: run it here
            delay = min(delay * 2, _LONGEST_POLL)
        else:
            counters["lock_timeouts"] += 1
    try:
        result = yield EXECUTE
    except BaseException:
        if begun.token:
            yield _Release(begun.token)
        raise
    if may_store(result):
        yield _Store(result, begun.tag, begun.token)
    elif begun.token:
        yield _Release(begun.token)
    return result  # type: ignore[no-any-return]


class SharedStore:
    """Entries and versions in a :class:`~queryopt.cache.api.SharedBackend`, shared with other processes."""

    def __init__(
        self, backend: SharedBackend, counters: dict[str, int], may_store: Callable[[QueryResult], bool]
    ) -> None:
        self.backend = backend
        self.hits = 0
        self._counters = counters
        for name in ("remote_waits", "remote_hits", "lock_timeouts", "unshared_runs"):
            counters[name] = 0
        self._may_store = may_store
        self._fetch = backend.fetch

    def get(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """The entry for ``key`` if stored under the current versions (one round trip; decoded afresh)."""
        result = self._fetch(key, version_keys)
        if result is not None:
            self.hits += 1
        return result

    async def aget(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        result = await self.backend.afetch(key, version_keys)
        if result is not None:
            self.hits += 1
        return result

    def bump(self, keys: Sequence[VersionKey]) -> None:
        self.backend.bump(keys)

    async def abump(self, keys: Sequence[VersionKey]) -> None:
        await self.backend.abump(keys)

    def clear(self) -> None:
        """Forget every cached result of the namespace, in every process."""
        self.backend.clear()

    def snapshot(self, version_keys: tuple[VersionKey, ...]) -> tuple[tuple[object, ...], int]:
        """Versions to pass to :meth:`put` for a query about to run (empty when the backend is unusable)."""
        tag = self.backend.snapshot(version_keys)
        return (() if tag is None else (tag, version_keys)), 0

    def put(
        self, key: Hashable, result: QueryResult, versions: tuple[object, ...], generation: int, lifetime: float
    ) -> None:
        """Store ``result`` if the ``versions`` from :meth:`snapshot` are still current (nothing if they were empty)."""
        if len(versions) != 2 or not self._may_store(result):
            return
        tag, version_keys = versions
        assert isinstance(tag, bytes)
        assert isinstance(version_keys, tuple)
        if self.backend.store(key, version_keys, result, tag=tag, ttl=lifetime):
            self._counters["stores"] += 1

    # -- the miss: one algorithm, two drivers ---------------------------------------------------------

    def fill(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], execute: ResultFactory, lifetime: float
    ) -> QueryResult:
        backend = self.backend
        steps = _miss_steps(self._counters, backend.lock_wait, self._may_store)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply = error = None
            if step is EXECUTE:
                try:
                    reply = execute()
                except BaseException as exc:
                    error = exc
            elif step is BEGIN:
                reply = backend.begin(key, version_keys)
            elif isinstance(step, _Poll):
                time.sleep(step.delay)
                reply = backend.poll(key, version_keys)
            elif isinstance(step, _Store):
                if backend.store(key, version_keys, step.result, tag=step.tag, ttl=lifetime, token=step.token):
                    self._counters["stores"] += 1
            elif isinstance(step, _Release):
                backend.release(key, step.token)

    async def afill(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], execute: AsyncResultFactory, lifetime: float
    ) -> QueryResult:
        backend = self.backend
        steps = _miss_steps(self._counters, backend.lock_wait, self._may_store)
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            reply = error = None
            if step is EXECUTE:
                try:
                    reply = await execute()
                except BaseException as exc:
                    error = exc
            elif step is BEGIN:
                reply = await backend.abegin(key, version_keys)
            elif isinstance(step, _Poll):
                await asyncio.sleep(step.delay)
                reply = await backend.apoll(key, version_keys)
            elif isinstance(step, _Store):
                if await backend.astore(key, version_keys, step.result, tag=step.tag, ttl=lifetime, token=step.token):
                    self._counters["stores"] += 1
            elif isinstance(step, _Release):
                await backend.arelease(key, step.token)

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()
