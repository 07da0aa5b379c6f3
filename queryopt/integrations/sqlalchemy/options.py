"""Per-statement options: ``execution_options(queryopt={...})`` on a statement, connection, session or engine.

SQLAlchemy merges execution options by its own precedence (for Core, a connection's win over a
statement's and an ``execute()`` call's over both; a session's yield to a statement's); queryopt reads
the one ``queryopt`` mapping that results, whole: mappings from two levels are not combined.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from queryopt.errors import ConfigurationError
from queryopt.optimizer.core import check_cache_scope
from queryopt.optimizer.execution import timeout_ms

__all__ = ["OPTION", "StatementOptions", "statement_options"]

OPTION: Final = "queryopt"
"""The execution option's name."""

_KEYS: Final = frozenset({"index_hints", "timeout", "cache", "cache_scope"})


@dataclass(frozen=True, slots=True)
class StatementOptions:
    """What one statement asks of queryopt (build it once and pass it as ``queryopt=`` to skip the parsing)."""

    index_hints: Any = None
    """Index names, ``{table or alias: index}`` or hint objects, as ``optimize_query`` takes them."""
    timeout: float | None = None
    """Seconds before the server cancels the statement; ``None``: the connection's default."""
    cache: bool | float = False
    """Serve and store results: ``True`` (the policy's TTL), a TTL in seconds, or ``False``."""
    cache_scope: Hashable = None
    """Added to the cache key: what the results depend on that the session does not show (a tenant)."""

    def __post_init__(self) -> None:
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf
        ):
            raise ConfigurationError(
                f"queryopt timeout must be a number of seconds > 0, got {timeout!r}", setting="timeout"
            )
        check_cache_scope(self.cache_scope)
        cache: object = self.cache
        if cache is None:
            object.__setattr__(self, "cache", False)
        elif not isinstance(cache, bool) and (not isinstance(cache, (int, float)) or not 0 < cache < math.inf):
            raise ConfigurationError(
                f"queryopt cache must be True, False or a TTL in seconds > 0, got {cache!r}", setting="cache"
            )

    @property
    def timeout_ms(self) -> int | None:
        """The limit as ``statement_timeout`` milliseconds, ``None`` for the connection's default."""
        return None if self.timeout is None else timeout_ms(self.timeout)

    @property
    def ttl(self) -> float | None:
        """Seconds cached results live (``None``: the cache policy's TTL); meaningful when :attr:`cache` is on."""
        return None if isinstance(self.cache, bool) else float(self.cache)


def statement_options(value: object) -> StatementOptions:
    """Validate the ``queryopt`` execution option: a :class:`StatementOptions` or a mapping of its fields.

    >>> statement_options({"timeout": 0.5, "cache": 60}).ttl
    60.0
    >>> statement_options({"timout": 1})
    Traceback (most recent call last):
    ...
    queryopt.ConfigurationError: unknown queryopt option 'timout' (known: cache, cache_scope, index_hints, timeout)
    """
    if type(value) is StatementOptions:
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"the queryopt execution option must be a dict or StatementOptions, got {type(value).__name__}",
            setting=OPTION,
        )
    for key in value:
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise ConfigurationError(f"unknown queryopt option {key!r} (known: {known})", setting=str(key))
    return StatementOptions(
        value.get("index_hints"), value.get("timeout"), value.get("cache", False), value.get("cache_scope")
    )
