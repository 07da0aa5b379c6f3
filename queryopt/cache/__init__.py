"""The result cache: the policy (:mod:`~queryopt.cache.policy`), its stores, and backends.

- ``api``: entries, parameter keys, version keys and the backend protocols (imported by backends);
- ``policy``: :class:`ResultCache`, the rules (TTL, bounds, single-flight, invalidation);
- ``local`` / ``shared``: where versions live (this process, or a backend shared by processes);
- ``backends``: ``memory`` (the default) and ``redis`` (``pip install 'queryopt[redis]'``).
"""

from queryopt.cache.api import CacheBackend, CacheEntry, SharedBackend, UnkeyableParams, canonical_params
from queryopt.cache.backends.memory import MemoryBackend
from queryopt.cache.policy import ResultCache

__all__ = [
    "CacheBackend",
    "CacheEntry",
    "MemoryBackend",
    "ResultCache",
    "SharedBackend",
    "UnkeyableParams",
    "canonical_params",
]
