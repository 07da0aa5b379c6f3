"""Index advice: ``advise(dsn)`` turns the recorded slow queries into index advice costed with HypoPG.

The workload is queryopt's slow-query table (fingerprints weighted by their
recorded time) plus ``pg_stat_statements`` when installed. Candidate B-tree
indexes come from how each statement searches its tables (sqlglot); HypoPG
costs them as hypothetical indexes, and a greedy pass over the whole workload
keeps those whose saving, after their write upkeep, is worth their size.
Nothing is created unless ``apply=True``. :class:`Advice` is plain data;
``Advice.to_json()`` is the ``queryopt advise --format json`` document.
"""

from queryopt.advisor.advice import DEFAULT_MAX_INDEXES, DEFAULT_MIN_IMPROVEMENT, DEFAULT_WRITE_COST_MS, advise
from queryopt.advisor.model import (
    SCHEMA_VERSION,
    Advice,
    IndexAdvice,
    QueryEffect,
    SkippedQuery,
    UnusedIndex,
    Verification,
    VerifiedQuery,
)
from queryopt.advisor.whatif import hypopg_installed

__all__ = [
    "DEFAULT_MAX_INDEXES",
    "DEFAULT_MIN_IMPROVEMENT",
    "DEFAULT_WRITE_COST_MS",
    "SCHEMA_VERSION",
    "Advice",
    "IndexAdvice",
    "QueryEffect",
    "SkippedQuery",
    "UnusedIndex",
    "Verification",
    "VerifiedQuery",
    "advise",
    "hypopg_installed",
]
