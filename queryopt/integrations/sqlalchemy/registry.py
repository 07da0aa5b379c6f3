"""The module-level API: one instrumentation per engine (per dialect, which an engine's copies share)."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from queryopt.cache import ResultCache
from queryopt.config import Settings
from queryopt.errors import ConfigurationError
from queryopt.hints import HintRules
from queryopt.integrations.sqlalchemy.instrumentation import Instrumentation
from queryopt.optimizer.live_stats import QueryStats
from queryopt.recorder import SlowQueryRecorder

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["instrument", "instrumentation_of", "uninstrument"]

_registry: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _sync_engine(engine: Any) -> Engine:
    found: object = engine if isinstance(engine, Engine) else getattr(engine, "sync_engine", None)
    if not isinstance(found, Engine):
        raise ConfigurationError(
            f"queryopt.instrument() takes a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}",
            setting="engine",
        )
    dialect = found.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        raise ConfigurationError(
            "queryopt instruments PostgreSQL engines that use psycopg 3 (postgresql+psycopg://…), "
            f"got {dialect.name}+{dialect.driver}",
            setting="engine",
        )
    return found


def instrument(
    engine: Engine | AsyncEngine,
    *,
    settings: Settings | None = None,
    cache: ResultCache | None = None,
    recorder: SlowQueryRecorder | None = None,
    hint_rules: HintRules | None = None,
    query_stats: QueryStats | None = None,
) -> Instrumentation:
    """Attach queryopt to ``engine`` (an ``Engine``, or an ``AsyncEngine`` from ``create_async_engine``).

    Every statement the engine runs is then analysed (once per distinct text), given the hints of a
    matching rule, run under the statement timeout, timed and recorded when slow. Per statement,
    ``execution_options(queryopt={"index_hints": …, "timeout": seconds, "cache": True | ttl})`` on a
    statement, connection, session or engine adds hints, changes the limit, or serves and stores its
    results in ``cache``. ``settings`` default to ``Settings.from_env()``; their statement timeout
    becomes every connection's default (``None``: no limit). Without a ``recorder`` one is opened
    when ``settings.recorder.enabled`` (it needs ``queryopt migrate``). Calling it again on the same
    engine returns the same instrumentation, or replaces it when given arguments.
    """
    target = _sync_engine(engine)
    with _registry_lock:
        existing = _registry.get(target.dialect)
        if existing is not None:
            if all(value is None for value in (settings, cache, recorder, hint_rules, query_stats)):
                return existing
            existing.detach()
        instrumentation = Instrumentation(
            target, settings=settings, cache=cache, recorder=recorder, hint_rules=hint_rules, query_stats=query_stats
        )
        instrumentation.attach()
        _registry[target.dialect] = instrumentation
    return instrumentation


def instrumentation_of(engine: Engine | AsyncEngine) -> Instrumentation | None:
    """The instrumentation attached to ``engine``, if any."""
    return _registry.get(_sync_engine(engine).dialect)


def uninstrument(engine: Engine | AsyncEngine) -> bool:
    """Detach queryopt from ``engine``; ``False`` when it was not instrumented.

    A sync engine's pool is disposed so that no pooled connection keeps queryopt's statement
    timeout; for an ``AsyncEngine`` call ``await engine.dispose()`` to the same end.
    """
    target = _sync_engine(engine)
    with _registry_lock:
        instrumentation = _registry.pop(target.dialect, None)
    if instrumentation is None:
        return False
    instrumentation.detach()
    if not instrumentation.is_async:
        target.dispose()
    return True
