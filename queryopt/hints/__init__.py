"""pg_hint_plan hints: a typed model, validated against the query and the catalog, placed where PostgreSQL reads them.

DESIGN.md §3 lists the traps this package closes:

- only the first ``/*+ … */`` block at the head of the text is read: :func:`apply_hint_block`
  puts one block first and merges any block the text already carries;
- hints match the alias, case-sensitively: :func:`resolve_hints` rewrites a table
  name to the alias the query uses and rejects relations the query lacks;
- a misspelt index forces a disabled sequential scan: every index is checked in the
  :class:`Catalog` (and must suit the scan method) before anything is sent;
- without pg_hint_plan the block is inert: :func:`hint_plan_active` detects it once per
  database, :func:`plan_hints` falls back to :func:`planner_settings` (statement-wide)
  and logs once when hints cannot take effect;
- identifiers that could close the comment are refused, never escaped.
"""

from __future__ import annotations

from queryopt.hints.catalog import Catalog, DatabaseIdentity, IndexInfo, TableInfo, database_identity
from queryopt.hints.effect import (
    HintPlan,
    hint_plan_active,
    plan_hints,
    planner_settings,
    planner_settings_applied,
    unsupported_by_planner_settings,
)
from queryopt.hints.explain import HintReport, IndexUsage, PlanComparison, PlanNode, PlanSummary, explain
from queryopt.hints.hintset import HintSet
from queryopt.hints.identifiers import check_identifier, quote_identifier
from queryopt.hints.model import (
    Hint,
    JoinHint,
    JoinMethod,
    JoinTree,
    Leading,
    Parallel,
    Rows,
    ScanHint,
    ScanMethod,
    Set,
)
from queryopt.hints.parse import parse_hints
from queryopt.hints.placement import apply_hint_block, existing_hints, render_block
from queryopt.hints.resolve import (
    HintRequest,
    IndexHintsArg,
    NamedIndex,
    RelationIndexes,
    check_relations,
    hint_requests,
    resolve_hints,
)
from queryopt.hints.rules import HintRule, HintRules, RuleProblem

__all__ = [
    "Catalog",
    "DatabaseIdentity",
    "Hint",
    "HintPlan",
    "HintReport",
    "HintRequest",
    "HintRule",
    "HintRules",
    "HintSet",
    "IndexHintsArg",
    "IndexInfo",
    "IndexUsage",
    "JoinHint",
    "JoinMethod",
    "JoinTree",
    "Leading",
    "NamedIndex",
    "Parallel",
    "PlanComparison",
    "PlanNode",
    "PlanSummary",
    "RelationIndexes",
    "Rows",
    "RuleProblem",
    "ScanHint",
    "ScanMethod",
    "Set",
    "TableInfo",
    "apply_hint_block",
    "check_identifier",
    "check_relations",
    "database_identity",
    "existing_hints",
    "explain",
    "hint_plan_active",
    "hint_requests",
    "parse_hints",
    "plan_hints",
    "planner_settings",
    "planner_settings_applied",
    "quote_identifier",
    "render_block",
    "resolve_hints",
    "unsupported_by_planner_settings",
]
