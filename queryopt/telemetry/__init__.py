"""OpenTelemetry metrics and traces of every call, following the stable database client conventions.

Off by default; on with ``QUERYOPT_TELEMETRY=on`` (or ``Settings(telemetry=True)``)
and ``pip install 'queryopt[otel]'`` (the OpenTelemetry API; the application
brings the SDK and exporters). When off, a front end holds ``None`` instead of a
:class:`Telemetry` and pays one ``is not None`` test per call; ``opentelemetry``
is not even imported. See docs/telemetry.md for names, attributes and wiring.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from queryopt.config import Settings
from queryopt.errors import ConfigurationError

if TYPE_CHECKING:
    from queryopt.telemetry.instruments import Telemetry

__all__ = ["Telemetry", "telemetry_for"]

_shared: Telemetry | None = None
_shared_lock = threading.Lock()


def telemetry_for(settings: Settings) -> Telemetry | None:
    """The process-wide :class:`Telemetry` on the global OpenTelemetry providers, or ``None`` when
    ``settings.telemetry`` is off. Raises :class:`~queryopt.ConfigurationError` when it is on and the
    OpenTelemetry API is not installed."""
    global _shared
    if not settings.telemetry:
        return None
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = _load()()
    return _shared


def _load() -> type[Telemetry]:
    try:
        from queryopt.telemetry.instruments import Telemetry
    except ImportError as exc:
        raise ConfigurationError(
            "telemetry is on (QUERYOPT_TELEMETRY) but the OpenTelemetry API is not installed: "
            f"pip install 'queryopt[otel]', or turn telemetry off ({exc})",
            setting="QUERYOPT_TELEMETRY",
        ) from exc
    return Telemetry


def __getattr__(name: str) -> Any:
    # `from queryopt.telemetry import Telemetry` imports opentelemetry only when someone asks for it.
    if name == "Telemetry":
        return _load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
