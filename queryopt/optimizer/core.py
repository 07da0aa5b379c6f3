"""The call decision, shared by the blocking and the awaiting optimizer (and the SQLAlchemy instrumentation).

Everything here is pure and never blocks: a driver asks :func:`plan_call` what
a call is (its limits, whether and under which key the cache is consulted, what
the outcome is called), then only runs I/O — blocking or awaited — around it.
What happens after the run (observation, which tables to invalidate) is
``FrontEnd._run_finished`` and ``_run_failed`` in :mod:`queryopt.optimizer.frontend`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from queryopt.cache import ResultCache, UnkeyableParams, canonical_params
from queryopt.cache.api import SCALAR_TYPES
from queryopt.errors import ConfigurationError, QueryError
from queryopt.optimizer.execution import Params, timeout_ms
from queryopt.optimizer.preparation import PreparedCall
from queryopt.result import QueryResult

__all__ = [
    "PLAIN",
    "CacheDecision",
    "CallPlan",
    "RowShape",
    "cache_decision",
    "cache_key",
    "call_limit",
    "check_cache_scope",
    "check_options",
    "check_params",
    "check_retries",
    "check_ttl",
    "plan_call",
    "plan_transaction_call",
    "refuse_session_settings",
    "refuse_session_settings_in_transaction",
    "shape_rows",
]

RowShape = Literal["tuple", "dict"]
CacheOutcome = Literal["off", "bypass", "miss"]


@dataclass(frozen=True, slots=True)
class CacheDecision:
    """Whether a statement's results may be cached, and if not, why."""

    cacheable: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallPlan:
    """How one call runs, decided before any I/O: the same data for every driver. The call's
    :class:`PreparedCall` and parameters travel beside it; most calls share :data:`PLAIN`."""

    limit_ms: int | None
    """statement_timeout for this call (``None``: the policy's)."""
    attempts: int | None
    """Tries in all (``None``: the retry policy's)."""
    cache_outcome: CacheOutcome
    """``off`` (not asked), ``bypass`` (asked, not cacheable) or ``miss`` (the cache is consulted first)."""
    key: Hashable | None
    """The cache key when ``cache_outcome`` is ``miss``."""
    ttl: float | None


PLAIN: Final = CallPlan(None, None, "off", None, None)
"""The plan of a call without options or cache, the policy's limit and retries: built once, shared."""


def cache_key(call: PreparedCall, params: Params, cache_scope: Hashable = None) -> Hashable | None:
    """The cache key of ``call`` with ``params``, or ``None`` when the call must bypass the cache.

    ``cache_scope`` is the caller's own part of the key (a tenant the server cannot show).
    """
    if call.bypass_reasons:
        return None
    kind = type(params)
    if cache_scope is None and (kind is list or kind is tuple) and len(params) == 1:  # type: ignore[arg-type]
        # A primary-key lookup, on every cache hit: a flat key (one tuple to build and hash), without a call.
        # Its length (3) keeps it apart from every (prefix, canonical parameters) key.
        value = params[0]  # type: ignore[index]
        value_kind = type(value)
        if value_kind in SCALAR_TYPES:
            return (call.cache_prefix, value_kind, value)
    try:
        prefix = call.cache_prefix if cache_scope is None else (call.cache_prefix, cache_scope)
        return (prefix, canonical_params(params))
    except (UnkeyableParams, TypeError):  # TypeError: not a parameter list at all (plan_call says so)
        return None


def check_cache_scope(cache_scope: object) -> None:
    """Refuse a ``cache_scope`` that cannot be part of a key: it must be hashable, with a stable ``repr``
    (Redis keys are digests of it), so strings, numbers and tuples of them."""
    if not _plain_scope(cache_scope):
        raise ConfigurationError(
            f"cache_scope must be a string, a number or a tuple of them, got {cache_scope!r:.80}",
            setting="cache_scope",
        )


def _plain_scope(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_plain_scope(item) for item in value)
    return value is None or isinstance(value, (str, int, float))


def check_options(ttl: float | None, timeout: float | None, retries: int | None) -> None:
    """Refuse bad per-call options before anything else happens, a cache hit included."""
    if timeout is not None:
        call_limit(timeout)
    if retries is not None:
        check_retries(retries)
    if ttl is not None:
        check_ttl(ttl)


def plan_call(
    cache: ResultCache,
    call: PreparedCall,
    params: Params,
    key: Hashable | None,
    use_cache: bool,
    ttl: float | None,
    timeout: float | None,
    retries: int | None,
) -> CallPlan:
    """Decide a call on a pooled connection that the cache did not serve (``key``: its cache key, from
    :func:`cache_key`, when ``use_cache``): refuse a SET that would not last and parameters that cannot
    fit, convert the options. A driver looks the key up itself first, so that a hit costs no plan.

    Positional, on every call: a call without options or cache gets :data:`PLAIN` (nothing is built)."""
    if call.analysis.session_change is not None:
        refuse_session_settings(call)
    if params is None or type(params) not in _PARAM_CONTAINERS:
        check_params(call, params)
    if not use_cache:
        if timeout is None and retries is None:
            return PLAIN
        return CallPlan(None if timeout is None else call_limit(timeout), retries, "off", None, None)
    limit = None if timeout is None else call_limit(timeout)
    if key is None:
        cache.count_bypass()
        return CallPlan(limit, retries, "bypass", None, None)
    return CallPlan(limit, retries, "miss", key, ttl)


def plan_transaction_call(call: PreparedCall, params: Params, timeout: float | None) -> CallPlan:
    """A call inside an explicit transaction: no cache, no retries; a SET that would outlive it refused."""
    refuse_session_settings_in_transaction(call)
    check_params(call, params)
    return PLAIN if timeout is None else CallPlan(call_limit(timeout), None, "off", None, None)


_PARAM_CONTAINERS: Final = frozenset({list, tuple, dict})


def check_params(call: PreparedCall, params: object) -> None:
    """Refuse parameters that cannot match the statement's placeholders, before the server says "syntax error"."""
    analysis = call.analysis
    if params is None:
        if analysis.placeholder_count:
            raise QueryError(
                f"the statement has {analysis.placeholder_count} placeholder(s) ({analysis.placeholder_style.value} "
                "style) but no parameters were passed: pass them as the second argument, e.g. "
                "execute(sql, [value]) (write a literal % as %%)",
                sql=analysis.sql,
                fingerprint=analysis.fingerprint,
            )
        return
    if isinstance(params, (str, bytes)) or not isinstance(params, (Sequence, Mapping)):
        raise ConfigurationError(
            f"params must be a list or tuple of values (or a mapping for %(name)s placeholders), got "
            f"{type(params).__name__}: wrap a single value as [value]",
            setting="params",
        )


def cache_decision(call: PreparedCall, params: Params) -> CacheDecision:
    """Whether results of ``call`` with ``params`` may be cached, and if not, why."""
    reasons = list(call.bypass_reasons)
    try:
        canonical_params(params)
    except UnkeyableParams as exc:
        reasons.append(str(exc))
    return CacheDecision(not reasons, tuple(reasons))


def call_limit(timeout: float) -> int:
    """A call's ``timeout`` in seconds as a statement_timeout in milliseconds; refuses a timeout <= 0."""
    _check_seconds("timeout", timeout)
    if timeout > _MAX_TIMEOUT:
        raise ConfigurationError(
            f"timeout must be at most {_MAX_TIMEOUT:g} seconds (PostgreSQL's statement_timeout), got {timeout!r}",
            setting="timeout",
        )
    return timeout_ms(timeout)


def check_retries(retries: int) -> None:
    """Refuse a per-call ``retries`` that is not a whole number of tries >= 1 (the first one included)."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise ConfigurationError(
            f"retries must be a whole number >= 1 (tries in all, the first included), got {retries!r}",
            setting="retries",
        )


def check_ttl(ttl: float) -> None:
    """Refuse a per-call ``ttl`` that is not a finite number of seconds > 0."""
    _check_seconds("ttl", ttl)


_MAX_TIMEOUT: Final = 2_147_483.647
"""statement_timeout is an int of milliseconds."""


def _check_seconds(name: str, value: object) -> None:
    # NaN would pass a `<= 0` test: a NaN ttl made an entry that never expires.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}", setting=name)
    if value <= 0:
        raise ConfigurationError(f"{name} must be > 0 seconds, got {value!r}", setting=name)


def refuse_session_settings(call: PreparedCall) -> None:
    """A change of session settings outside a transaction would stay on whichever pooled connection ran it."""
    change = call.analysis.session_change  # decided once per text by the analysis
    if change is not None and change.refused(in_transaction=False):
        effect = (
            "would change the pooled connection for the calls that follow"
            if change.outlives_transaction
            else "means nothing on a pooled connection that commits every call"
        )
        raise QueryError(
            f"{change.form} outside a transaction {effect}; instead, {change.advice}",
            sql=call.analysis.sql,
            fingerprint=call.analysis.fingerprint,
        )


def refuse_session_settings_in_transaction(call: PreparedCall) -> None:
    """A session-level change committed in a transaction would stay on the pooled connection (SET LOCAL is fine)."""
    change = call.analysis.session_change
    if change is not None and change.refused(in_transaction=True):
        effect = (
            "would outlive this transaction on a pooled connection"
            if change.outlives_transaction
            else "would end the transaction that Optimizer.transaction() commits or rolls back"
        )
        raise QueryError(
            f"{change.form} {effect}; instead, {change.advice}",
            sql=call.analysis.sql,
            fingerprint=call.analysis.fingerprint,
        )


def shape_rows(result: QueryResult, rows: RowShape) -> list[Any]:
    """The rows of ``result`` as tuples or dicts."""
    if rows == "tuple":
        return list(result.rows)
    if rows == "dict":
        return result.as_dicts()
    raise ConfigurationError(f"rows must be 'tuple' or 'dict', got {rows!r}", setting="rows")
