"""The pin watchers of this process, so that a pin or an unpin made here takes effect here at once."""

from __future__ import annotations

import threading
import weakref
from typing import Protocol

__all__ = ["Wakeable", "register", "unregister", "wake_watchers"]


class Wakeable(Protocol):
    def wait_refreshed(self, timeout: float) -> bool: ...


_WATCHERS: weakref.WeakSet[Wakeable] = weakref.WeakSet()
_LOCK = threading.Lock()


def register(watcher: Wakeable) -> None:
    with _LOCK:
        _WATCHERS.add(watcher)


def unregister(watcher: Wakeable) -> None:
    with _LOCK:
        _WATCHERS.discard(watcher)


def wake_watchers(timeout: float = 5.0) -> None:
    """Make every watcher of this process reread the pins now, and wait (up to ``timeout`` seconds each) until
    it has: when a pin or an unpin returns, this process's front ends already follow it."""
    with _LOCK:
        watchers = list(_WATCHERS)
    for watcher in watchers:
        watcher.wait_refreshed(timeout)
