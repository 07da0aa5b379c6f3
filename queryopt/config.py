"""Policies and settings: frozen, validated at construction, seconds as floats.

Every policy raises :class:`~queryopt.ConfigurationError` (a ``ValueError``)
naming the field when a value is unusable. :meth:`Settings.from_env` reads the
``QUERYOPT_*`` environment variables and names the variable instead.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from queryopt.errors import ConfigurationError

__all__ = [
    "CachePolicy",
    "HintMode",
    "LimitMode",
    "LimitPolicy",
    "PlanGuardPolicy",
    "RecorderPolicy",
    "RetryPolicy",
    "Settings",
    "TimeoutPolicy",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
_MAX_BATCH_SIZE = 100_000  # record ids number the rows of one batch in their low bits


def parse_duration(text: str, *, name: str = "duration", require_unit: bool = False) -> float:
    """Parse ``"250ms"``, ``"30"`` (seconds), ``"5m"``, ``"24h"`` or ``"30d"`` into seconds.

    ``require_unit`` refuses a bare number: where the natural unit is not obvious (a report's
    ``--since 5``: five seconds, minutes or days?), guessing would silently mean something else.

    >>> parse_duration("250ms")
    0.25
    >>> parse_duration("2h")
    7200.0
    """
    match = _DURATION.match(text)
    if match is None:
        raise ConfigurationError(
            f"{name}: {text!r} is not a duration (use e.g. 250ms, 30s, 5m, 24h, 30d)",
            setting=name,
        )
    if require_unit and match.group(2) is None:
        raise ConfigurationError(
            f"{name}: {text.strip()!r} needs a unit (ms, s, m, h or d), e.g. {text.strip()}h or {text.strip()}d",
            setting=name,
        )
    unit = (match.group(2) or "s").lower()
    return float(match.group(1)) * _UNIT_SECONDS[unit]


def _check_seconds(policy: object, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> None:
    value = getattr(policy, name)
    if value is None and allow_none:
        return
    owner = type(policy).__name__
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{owner}.{name} must be a number of seconds, got {value!r}", setting=name)
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(
            f"{owner}.{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}", setting=name
        )


def _check_count(policy: object, name: str, *, minimum: int = 1) -> None:
    value = getattr(policy, name)
    owner = type(policy).__name__
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}", setting=name)


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """How long a statement may run."""

    statement: float | None = 30.0
    """Server-side ``statement_timeout`` in seconds; ``None`` means no limit."""
    network_grace: float = 5.0
    """Extra seconds the client waits past ``statement`` before cancelling a silent stall itself."""
    connect: float = 10.0
    """Seconds to wait for a new connection."""

    def __post_init__(self) -> None:
        _check_seconds(self, "statement", allow_none=True)
        _check_seconds(self, "network_grace", allow_zero=True)
        _check_seconds(self, "connect")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which failures are retried, and how often."""

    attempts: int = 3
    """Total tries including the first; 1 disables retries."""
    initial_backoff: float = 0.05
    """Seconds before the first retry; doubles after each failure."""
    max_backoff: float = 2.0
    """Upper bound for one wait between tries, in seconds."""
    jitter: float = 0.05
    """Random extra seconds (0..jitter) added to each wait, to spread retrying clients apart."""
    retry_reads_on_disconnect: bool = True
    """Re-run read-only statements whose connection was lost (never writes)."""

    def __post_init__(self) -> None:
        _check_count(self, "attempts")
        _check_seconds(self, "initial_backoff", allow_zero=True)
        _check_seconds(self, "max_backoff", allow_zero=True)
        _check_seconds(self, "jitter", allow_zero=True)
        if self.max_backoff < self.initial_backoff:
            raise ConfigurationError(
                f"RetryPolicy.max_backoff ({self.max_backoff}) must be >= initial_backoff ({self.initial_backoff})",
                setting="max_backoff",
            )


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """The result cache: how long entries live and how much memory they may take."""

    ttl: float = 60.0
    """Default seconds a cached result stays valid."""
    max_entries: int = 10_000
    """Upper bound on the number of cached results."""
    max_bytes: int = 64 * 1024 * 1024
    """Upper bound on the approximate memory of cached results, in bytes."""
    max_result_rows: int = 10_000
    """Results with more rows than this are not cached."""
    stable_functions: frozenset[str] = frozenset()
    """Lower-case names of user functions known to be stable/immutable, so queries calling them may be cached."""

    def __post_init__(self) -> None:
        _check_seconds(self, "ttl")
        _check_count(self, "max_entries")
        _check_count(self, "max_bytes", minimum=1024)
        _check_count(self, "max_result_rows")
        object.__setattr__(self, "stable_functions", frozenset(name.lower() for name in self.stable_functions))


@dataclass(frozen=True, slots=True)
class RecorderPolicy:
    """Which calls count as slow, and how they are written to the slow-query table."""

    enabled: bool = True
    """Record slow calls at all."""
    threshold: float = 0.1
    """A call taking at least this many seconds is slow."""
    queue_size: int = 10_000
    """Records waiting to be written; beyond this, new records are dropped and counted."""
    batch_size: int = 500
    """Records written per COPY."""
    flush_interval: float = 1.0
    """Seconds between background writes: also what a killed process loses at most (the records still queued)."""
    capture_params: bool = False
    """Store parameter values with each record (off: values may be personal data)."""
    param_max_length: int = 200
    """Characters kept of each stored parameter value."""
    schema: str = "queryopt"
    """Schema holding queryopt's own tables."""
    dsn: str | None = None
    """Where records are written; ``None`` means the application's database."""
    thresholds: Mapping[str, float] = field(default_factory=dict, hash=False)
    """Per-fingerprint thresholds in seconds (fingerprint → seconds), overriding ``threshold`` for those queries."""
    max_per_fingerprint: int = 60
    """Records kept per fingerprint per ``sample_window``; more are sampled out (counted, not written)."""
    sample_window: float = 60.0
    """Seconds over which ``max_per_fingerprint`` is counted."""
    capture_plans: bool = True
    """Store ``EXPLAIN (FORMAT JSON)`` of slow statements (never ANALYZE), captured by the background thread."""
    plan_interval: float = 300.0
    """Seconds between two plan captures of one fingerprint."""
    retry_max_backoff: float = 30.0
    """Longest wait in seconds between two attempts to write to an unreachable database."""
    stats_window: int = 100
    """Recent calls per fingerprint that the live statistics and the alert baseline cover."""
    stats_max_fingerprints: int = 1000
    """Fingerprints the live statistics track; the least recently seen one is evicted beyond this."""
    alert_warning_factor: float = 2.0
    """A call slower than this times its fingerprint's baseline (recent mean) raises a warning."""
    alert_critical_factor: float = 3.0
    """A call slower than this times its fingerprint's baseline raises a critical alert."""
    alert_cooldown: float = 300.0
    """Seconds after an alert during which the same fingerprint raises no other alert."""
    alert_min_samples: int = 10
    """Calls a fingerprint needs in its window before its baseline is trusted for alerts."""
    alert_min_duration: float = 0.01
    """The alert floor: calls faster than this many seconds never raise an alert, whatever their baseline."""

    def __post_init__(self) -> None:
        _check_seconds(self, "threshold", allow_zero=True)
        _check_count(self, "queue_size")
        _check_count(self, "batch_size")
        if self.batch_size > _MAX_BATCH_SIZE:
            raise ConfigurationError(
                f"RecorderPolicy.batch_size must be <= {_MAX_BATCH_SIZE}, got {self.batch_size!r}", setting="batch_size"
            )
        _check_seconds(self, "flush_interval")
        _check_count(self, "param_max_length")
        if not _IDENTIFIER.match(self.schema):
            raise ConfigurationError(
                f"RecorderPolicy.schema must be a lower-case identifier (letters, digits, _), got {self.schema!r}",
                setting="schema",
            )
        object.__setattr__(self, "thresholds", _check_thresholds(self.thresholds))
        _check_count(self, "max_per_fingerprint")
        _check_seconds(self, "sample_window")
        _check_seconds(self, "plan_interval", allow_zero=True)
        _check_seconds(self, "retry_max_backoff")
        _check_count(self, "stats_window", minimum=2)
        _check_count(self, "stats_max_fingerprints")
        for name in ("alert_warning_factor", "alert_critical_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 1:
                raise ConfigurationError(f"RecorderPolicy.{name} must be a number > 1, got {value!r}", setting=name)
        if self.alert_critical_factor < self.alert_warning_factor:
            raise ConfigurationError(
                f"RecorderPolicy.alert_critical_factor ({self.alert_critical_factor}) must be >= "
                f"alert_warning_factor ({self.alert_warning_factor})",
                setting="alert_critical_factor",
            )
        _check_seconds(self, "alert_cooldown", allow_zero=True)
        _check_count(self, "alert_min_samples")
        _check_seconds(self, "alert_min_duration", allow_zero=True)

    def threshold_for(self, fingerprint: str) -> float:
        """The slow threshold in seconds for one fingerprint.

        >>> RecorderPolicy(thresholds={"0123456789abcdef": 2.0}).threshold_for("0123456789abcdef")
        2.0
        >>> RecorderPolicy().threshold_for("0123456789abcdef")
        0.1
        """
        return self.thresholds.get(fingerprint, self.threshold)


def _check_thresholds(thresholds: object) -> Mapping[str, float]:
    if not isinstance(thresholds, Mapping):
        raise ConfigurationError(
            f"RecorderPolicy.thresholds must map fingerprints to seconds, got {thresholds!r}", setting="thresholds"
        )
    checked: dict[str, float] = {}
    for fingerprint, seconds in thresholds.items():
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            raise ConfigurationError(
                f"RecorderPolicy.thresholds: {fingerprint!r} is not a query fingerprint (16 lower-case hex digits)",
                setting="thresholds",
            )
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise ConfigurationError(
                f"RecorderPolicy.thresholds[{fingerprint!r}] must be a number of seconds >= 0, got {seconds!r}",
                setting="thresholds",
            )
        checked[fingerprint] = float(seconds)
    return MappingProxyType(checked)


class LimitMode(StrEnum):
    """How many calls of one query fingerprint may run at once."""

    OFF = "off"
    """No per-fingerprint limit (the default)."""
    STATIC = "static"
    """A fixed cap: ``LimitPolicy.concurrency`` for every fingerprint, ``LimitPolicy.per_fingerprint`` for some."""
    ADAPTIVE = "adaptive"
    """A cap per fingerprint that follows its measured latency (Gradient2-style), shrunk by timeouts."""


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """Load shedding: how many calls of one query shape may hold a connection at once.

    A call over its fingerprint's limit waits up to ``max_wait`` for a slot, then fails with
    :class:`~queryopt.QueryRejected` without taking a connection. Every limited call also takes one of
    the pool's shared slots (the pool size minus ``reserve``); the reserve is kept for the first call of
    a fingerprint that has nothing else running, so a fast query finds a connection while a slow one
    holds all the shared slots.
    """

    mode: LimitMode = LimitMode.OFF
    """Off, a static cap, or an adaptive one."""
    concurrency: int | None = None
    """Static mode: calls of any one fingerprint running at once (``None``: only ``per_fingerprint`` and the
    shared slots bound them)."""
    per_fingerprint: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Caps for some fingerprints (fingerprint → calls); in adaptive mode, the most their limit may grow to."""
    max_wait: float = 0.1
    """Seconds a call over its limit waits for a slot before it is rejected; 0 rejects at once."""
    reserve: int = 2
    """Pool connections kept out of the shared slots, for fingerprints with no call running."""
    adaptive_tolerance: float = 2.0
    """Adaptive mode: recent latency may reach this multiple of the long-term latency before the limit shrinks."""

    def __post_init__(self) -> None:
        if not isinstance(self.mode, LimitMode):
            raise ConfigurationError(f"LimitPolicy.mode must be a LimitMode, got {self.mode!r}", setting="mode")
        if self.concurrency is not None:
            _check_count(self, "concurrency")
        object.__setattr__(self, "per_fingerprint", _check_caps(self.per_fingerprint))
        if self.mode is LimitMode.STATIC and self.concurrency is None and not self.per_fingerprint:
            raise ConfigurationError(
                "LimitPolicy.concurrency: static mode needs a cap (concurrency=N or per_fingerprint caps)",
                setting="concurrency",
            )
        _check_seconds(self, "max_wait", allow_zero=True)
        _check_count(self, "reserve", minimum=0)
        value = self.adaptive_tolerance
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value < math.inf:
            raise ConfigurationError(
                f"LimitPolicy.adaptive_tolerance must be a number >= 1, got {value!r}", setting="adaptive_tolerance"
            )

    def cap_for(self, fingerprint: str) -> int | None:
        """The configured cap of one fingerprint (``None``: none configured).

        >>> policy = LimitPolicy(LimitMode.STATIC, concurrency=4, per_fingerprint={"0123456789abcdef": 1})
        >>> policy.cap_for("0123456789abcdef")
        1
        >>> LimitPolicy(LimitMode.STATIC, concurrency=4).cap_for("fedcba9876543210")
        4
        """
        return self.per_fingerprint.get(fingerprint, self.concurrency)


def _check_caps(caps: object) -> Mapping[str, int]:
    if not isinstance(caps, Mapping):
        raise ConfigurationError(
            f"LimitPolicy.per_fingerprint must map fingerprints to call counts, got {caps!r}",
            setting="per_fingerprint",
        )
    checked: dict[str, int] = {}
    for fingerprint, cap in caps.items():
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            raise ConfigurationError(
                f"LimitPolicy.per_fingerprint: {fingerprint!r} is not a query fingerprint (16 lower-case hex digits)",
                setting="per_fingerprint",
            )
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigurationError(
                f"LimitPolicy.per_fingerprint[{fingerprint!r}] must be an integer >= 1, got {cap!r}",
                setting="per_fingerprint",
            )
        checked[fingerprint] = cap
    return MappingProxyType(checked)


@dataclass(frozen=True, slots=True)
class PlanGuardPolicy:
    """Pinned plans: how often a process looks for pins, and the automatic mode (off by default)."""

    watch_pins: bool = True
    """Apply the pins stored in queryopt's schema (``queryopt pin``) to their fingerprints."""
    refresh_interval: float = 5.0
    """Seconds between two reads of the stored pins (in a background thread, never per call)."""
    automatic: bool = False
    """Pin the last good plan after a regression that came with a plan change; unpin it when not faster."""
    regression_ratio: float = 2.0
    """A new plan this many times slower (mean or p95) than the one before is a regression (the report's rule)."""
    min_gain_ms: float = 1.0
    """Estimated gain per call (the regressed plan's mean minus the good plan's) below which nothing is pinned."""
    verify_calls: int = 20
    """Recorded calls under an automatic pin before it is judged faster (kept) or not (removed)."""
    window: float = 3600.0
    """Seconds of recorded history the automatic mode looks at."""

    def __post_init__(self) -> None:
        _check_seconds(self, "refresh_interval")
        value = self.regression_ratio
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 1:
            raise ConfigurationError(
                f"PlanGuardPolicy.regression_ratio must be a number > 1, got {value!r}", setting="regression_ratio"
            )
        _check_seconds(self, "min_gain_ms", allow_zero=True)
        _check_count(self, "verify_calls")
        _check_seconds(self, "window")


class HintMode(StrEnum):
    """How index hints take effect."""

    AUTO = "auto"
    """pg_hint_plan when the database has it active, otherwise planner settings."""
    PG_HINT_PLAN = "pg_hint_plan"
    """Always a ``/*+ … */`` block (inert where pg_hint_plan is not loaded)."""
    PLANNER_SETTINGS = "planner_settings"
    """Transaction-local ``enable_*`` settings; these act on the whole statement, not one table."""
    OFF = "off"
    """Ignore hints."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything queryopt needs to run, usually built once by ``Settings.from_env()``."""

    dsn: str | None = None
    """libpq connection string or URL of the application's database."""
    application_name: str = "queryopt"
    """Reported to PostgreSQL for connections queryopt opens itself."""
    timeout: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache: CachePolicy = field(default_factory=CachePolicy)
    recorder: RecorderPolicy = field(default_factory=RecorderPolicy)
    limits: LimitPolicy = field(default_factory=LimitPolicy)
    plans: PlanGuardPolicy = field(default_factory=PlanGuardPolicy)
    hint_mode: HintMode = HintMode.AUTO
    """How index hints take effect."""
    hint_rules: str | None = None
    """Path of a file with hint rules matched by query fingerprint."""
    analysis_cache_size: int = 4096
    """Distinct SQL texts whose analysis is kept."""
    telemetry: bool = False
    """Emit OpenTelemetry metrics and spans for every call (needs ``queryopt[otel]``; see docs/telemetry.md)."""

    ENV_PREFIX: ClassVar[str] = "QUERYOPT_"

    def __post_init__(self) -> None:
        _check_count(self, "analysis_cache_size")
        if not isinstance(self.hint_mode, HintMode):
            raise ConfigurationError(
                f"Settings.hint_mode must be a HintMode, got {self.hint_mode!r}", setting="hint_mode"
            )
        if not isinstance(self.telemetry, bool):
            raise ConfigurationError(
                f"Settings.telemetry must be True or False, got {self.telemetry!r}", setting="telemetry"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``QUERYOPT_*`` variables (see the README for the list)."""
        env = os.environ if environ is None else environ
        reader = _EnvReader(env)
        default = cls()
        timeout = reader.policy(
            TimeoutPolicy,
            statement=(
                "STATEMENT_TIMEOUT",
                reader.duration("STATEMENT_TIMEOUT", default.timeout.statement, allow_off=True),
            ),
            connect=("CONNECT_TIMEOUT", reader.duration("CONNECT_TIMEOUT", default.timeout.connect)),
        )
        retry = reader.policy(
            RetryPolicy, attempts=("RETRY_ATTEMPTS", reader.integer("RETRY_ATTEMPTS", default.retry.attempts))
        )
        cache = reader.policy(
            CachePolicy,
            ttl=("CACHE_TTL", reader.duration("CACHE_TTL", default.cache.ttl)),
            max_entries=("CACHE_MAX_ENTRIES", reader.integer("CACHE_MAX_ENTRIES", default.cache.max_entries)),
            max_bytes=("CACHE_MAX_BYTES", reader.integer("CACHE_MAX_BYTES", default.cache.max_bytes)),
        )
        recorder = reader.policy(
            RecorderPolicy,
            enabled=("RECORD_SLOW", reader.boolean("RECORD_SLOW", default.recorder.enabled)),
            threshold=("SLOW_THRESHOLD", reader.duration("SLOW_THRESHOLD", default.recorder.threshold)),
            capture_params=("RECORD_PARAMS", reader.boolean("RECORD_PARAMS", default.recorder.capture_params)),
            schema=("SCHEMA", reader.text("SCHEMA") or default.recorder.schema),
            dsn=("RECORDER_DSN", reader.conninfo("RECORDER_DSN")),
            flush_interval=(
                "RECORDER_FLUSH_INTERVAL",
                reader.duration("RECORDER_FLUSH_INTERVAL", default.recorder.flush_interval),
            ),
            alert_min_duration=(
                "ALERT_MIN_DURATION",
                reader.duration("ALERT_MIN_DURATION", default.recorder.alert_min_duration),
            ),
        )
        limits = reader.policy(
            LimitPolicy,
            reader.concurrency("FINGERPRINT_CONCURRENCY"),
            max_wait=(
                "FINGERPRINT_MAX_WAIT",
                reader.duration("FINGERPRINT_MAX_WAIT", default.limits.max_wait, allow_off=True) or 0.0,
            ),
            reserve=("FINGERPRINT_RESERVE", reader.integer("FINGERPRINT_RESERVE", default.limits.reserve, minimum=0)),
        )
        plans = reader.policy(
            PlanGuardPolicy,
            watch_pins=("WATCH_PINS", reader.boolean("WATCH_PINS", default.plans.watch_pins)),
            refresh_interval=("PIN_REFRESH", reader.duration("PIN_REFRESH", default.plans.refresh_interval)),
            automatic=("AUTO_PIN", reader.boolean("AUTO_PIN", default.plans.automatic)),
        )
        return cls(
            dsn=reader.conninfo("DSN"),
            application_name=reader.text("APPLICATION_NAME") or default.application_name,
            timeout=timeout,
            retry=retry,
            cache=cache,
            recorder=recorder,
            limits=limits,
            plans=plans,
            hint_mode=reader.choice("HINT_MODE", HintMode, HintMode.AUTO),
            hint_rules=reader.text("HINT_RULES"),
            telemetry=reader.boolean("TELEMETRY", default.telemetry),
        )


_Policy = TypeVar("_Policy")


class _EnvReader:
    """Reads QUERYOPT_* variables; every error names the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._current = ""

    def _raw(self, suffix: str) -> str | None:
        self._current = Settings.ENV_PREFIX + suffix
        value = self._environ.get(self._current)
        return value if value is not None and value.strip() != "" else None

    def _fail(self, problem: str) -> ConfigurationError:
        return ConfigurationError(f"{self._current}: {problem}", setting=self._current)

    def policy(
        self, cls: Callable[..., _Policy], *args: Mapping[str, Any], **fields: tuple[str | None, Any]
    ) -> _Policy:
        """``cls`` built from values read from variables; a value the policy refuses is named by its variable.

        ``fields`` maps each field to (the variable's suffix, its value); ``args`` are extra fields as a mapping.
        """
        values = {name: value for name, (_, value) in fields.items()}
        for extra in args:
            values.update(extra)
        try:
            return cls(**values)
        except ConfigurationError as exc:
            suffix = fields.get(exc.setting or "", (None, None))[0]
            variable = None if suffix is None else Settings.ENV_PREFIX + suffix
            if variable is None or self._environ.get(variable) is None:
                raise
            raise ConfigurationError(f"{variable}={self._environ[variable]!r}: {exc}", setting=variable) from exc

    def text(self, suffix: str) -> str | None:
        raw = self._raw(suffix)
        return raw.strip() if raw is not None else None

    def conninfo(self, suffix: str) -> str | None:
        """A connection string (``key=value …`` or a ``postgresql://`` URL) that libpq can parse."""
        value = self.text(suffix)
        if value is not None:
            import psycopg  # only when one is set: keeps this leaf light

            try:
                psycopg.conninfo.conninfo_to_dict(value)
            except psycopg.Error as exc:
                reason = str(exc).strip()
                raise self._fail(
                    f"not a connection string ({reason}); use postgresql://user@host/dbname or 'host=… dbname=…'"
                ) from None
        return value

    def duration(self, suffix: str, default: float | None, *, allow_off: bool = False) -> Any:
        raw = self._raw(suffix)
        if raw is None:
            return default
        if allow_off and raw.strip().lower() in {"off", "none", "0"}:
            return None
        try:
            return parse_duration(raw, name=self._current)
        except ConfigurationError as exc:
            raise self._fail(f"{raw!r} is not a duration (use e.g. 250ms, 30s, 5m)") from exc

    def integer(self, suffix: str, default: int, *, minimum: int = 1) -> int:
        raw = self._raw(suffix)
        if raw is None:
            return default
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise self._fail(f"{raw!r} is not a whole number") from None
        if value < minimum:
            raise self._fail(f"{raw!r} must be at least {minimum}")
        return value

    def concurrency(self, suffix: str) -> dict[str, Any]:
        """``N`` (a static cap), ``adaptive`` or ``off`` as LimitPolicy arguments."""
        raw = self._raw(suffix)
        if raw is None or raw.strip().lower() in {"off", "none"}:
            return {"mode": LimitMode.OFF}
        if raw.strip().lower() == "adaptive":
            return {"mode": LimitMode.ADAPTIVE}
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise self._fail(f"{raw!r} is not a whole number, 'adaptive' or 'off'") from None
        if value < 1:
            raise self._fail(f"{raw!r} must be at least 1 (or 'adaptive', or 'off')")
        return {"mode": LimitMode.STATIC, "concurrency": value}

    def boolean(self, suffix: str, default: bool) -> bool:
        raw = self._raw(suffix)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise self._fail(f"{raw!r} is not a boolean (use on/off, true/false, 1/0)")

    def choice(self, suffix: str, enum: type[HintMode], default: HintMode) -> HintMode:
        raw = self._raw(suffix)
        if raw is None:
            return default
        try:
            return enum(raw.strip().lower())
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise self._fail(f"{raw!r} is not one of {allowed}") from None
