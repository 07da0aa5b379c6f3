"""The in-process store: bounded by entries and approximate bytes, evicting second-chance (CLOCK)."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from queryopt.cache.api import CacheEntry

__all__ = ["MemoryBackend"]


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
