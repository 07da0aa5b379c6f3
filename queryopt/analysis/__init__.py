"""SQL analysis: one statement's kind, tables and aliases, fingerprint, and whether its result may be cached.

Pure sqlglot, no I/O. :func:`analyze` parses the text as PostgreSQL and returns
an immutable :class:`Analysis`; the original text is what queryopt sends to the
server, never sqlglot's regenerated SQL (regeneration rewrites casts and turns
``/*+`` into ``/* +``).

>>> a = analyze("/*+ IndexScan(o) */ SELECT o.id FROM Orders o JOIN customers c ON c.id = o.cid WHERE o.id = %(id)s")
>>> [(t.name, t.alias) for t in a.tables], a.kind, a.cacheable, a.head.hint_is_first
([('orders', 'o'), ('customers', 'c')], <StatementKind.SELECT: 'select'>, True, True)
>>> a.placeholder_style, a.placeholder_names
(<PlaceholderStyle.PYFORMAT: 'pyformat'>, ('id',))
>>> a.normalized_sql
'SELECT o.id FROM orders AS o JOIN customers AS c ON c.id = o.cid WHERE o.id = %s'
>>> analyze("SELECT now(), nextval('seq')").uncacheable_reasons
('time-dependent function now()', 'volatile function nextval()')

Exactly one statement per call: empty text, comment-only text, several
statements and syntax errors raise :class:`~queryopt.AnalysisError` (with
``line``, ``column`` and ``highlight`` for syntax errors); nothing else escapes
:func:`analyze`, whatever the text.

**Fingerprint** — see :mod:`queryopt.analysis.fingerprinting`: constants,
parameters, whitespace, comments (including a leading hint block) and list
lengths do not change it; structure and aliases do. It hashes sqlglot's
normalized output, so a sqlglot upgrade may change fingerprints.

**Cacheability** — a result is cacheable when the statement is a plain read:
not INSERT/UPDATE/DELETE/MERGE/DDL/utility, no ``FOR UPDATE/SHARE``, no
``SELECT INTO``, no data-modifying CTE, no ``TABLESAMPLE`` without
``REPEATABLE``, no system catalog, and no function call whose value changes
with time, call or session. Functions queryopt cannot classify (user and
extension functions) make a statement uncacheable and not read-only; the rule
is in :mod:`queryopt.analysis.functions`. ``Analysis.cacheable_with`` lets the
caller vouch for such functions (``CachePolicy.stable_functions``).

**Placeholders** are read from the tree, so ``'%s'`` inside a string literal or
a comment is not one (psycopg, which scans raw text, would still see it).

**Cache** — :func:`analyze` keeps a bounded LRU keyed by the exact text
(``functools.lru_cache``: a hit is one C-level dict lookup, ~0.1 µs,
thread-safe; concurrent misses of one text may both parse, harmlessly). It
holds :data:`DEFAULT_ANALYSIS_CACHE_SIZE` texts unless
:func:`set_analysis_cache_size` says otherwise; :func:`analysis_cache_info`
reports hits, misses, size and maxsize. Failures are not cached: bad text is
rare, and it raises afresh each time with its own traceback.

Statements sqlglot does not model (``VACUUM``, ``CALL``, ``SAVEPOINT``, …)
are analysed from their tokens; sqlglot's per-call "Falling back to parsing
as a 'Command'" warning (which quotes the whole SQL) is filtered out of the
``sqlglot`` logger, and nothing else of the logging setup is touched.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from queryopt.analysis.analyzer import analyze_uncached
from queryopt.analysis.functions import Volatility, classify_function
from queryopt.analysis.model import Analysis, PlaceholderStyle, SessionChange, StatementKind, TableRef
from queryopt.errors import ConfigurationError

__all__ = [
    "DEFAULT_ANALYSIS_CACHE_SIZE",
    "Analysis",
    "PlaceholderStyle",
    "SessionChange",
    "StatementKind",
    "TableRef",
    "Volatility",
    "analysis_cache_info",
    "analyze",
    "analyze_uncached",
    "classify_function",
    "clear_analysis_cache",
    "fingerprint",
    "set_analysis_cache_size",
]

DEFAULT_ANALYSIS_CACHE_SIZE = 4096

_cached = lru_cache(maxsize=DEFAULT_ANALYSIS_CACHE_SIZE)(analyze_uncached)
_resize_lock = threading.Lock()
_retired_hits = 0
_retired_misses = 0


def analyze(sql: str) -> Analysis:
    """Analyse one PostgreSQL statement; cached by exact text. Raises :class:`~queryopt.AnalysisError`."""
    return _cached(sql)


def fingerprint(sql: str) -> str:
    """The 16-hex-digit fingerprint of one statement (cached like :func:`analyze`).

    >>> fingerprint("SELECT * FROM t WHERE id = 1") == fingerprint("select *  from T where id = %s -- x")
    True
    """
    return _cached(sql).fingerprint


def set_analysis_cache_size(entries: int) -> None:
    """Bound the analysis cache to ``entries`` texts (0 disables it); the cached entries are dropped.

    Hit and miss counts carry over.
    """
    global _cached, _retired_hits, _retired_misses
    if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
        raise ConfigurationError(
            f"analysis cache size must be an integer >= 0, got {entries!r}", setting="analysis_cache_size"
        )
    with _resize_lock:
        info = _cached.cache_info()
        _retired_hits += info.hits
        _retired_misses += info.misses
        _cached = lru_cache(maxsize=entries)(analyze_uncached)


def clear_analysis_cache() -> None:
    """Drop every cached analysis and zero the counters."""
    global _retired_hits, _retired_misses
    with _resize_lock:
        _cached.cache_clear()
        _retired_hits = _retired_misses = 0


def analysis_cache_info() -> dict[str, int]:
    """The analysis cache's ``hits``, ``misses``, ``size`` (entries held) and ``maxsize``."""
    with _resize_lock:
        info = _cached.cache_info()
        return {
            "hits": _retired_hits + info.hits,
            "misses": _retired_misses + info.misses,
            "size": info.currsize,
            "maxsize": info.maxsize or 0,
        }
