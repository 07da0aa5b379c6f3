"""The plan guard: plan history per fingerprint, regressions tied to plan changes, pinned plans.

The recorder stores, for every recorded call, the shape hash of the plan its
fingerprint ran with, and every plan in ``plan_history`` (:mod:`queryopt.recorder`).
This package reads that back (:func:`plan_history`: plans with latency, plan
changes, regressions), pins a captured plan with a full pg_hint_plan hint set
verified by EXPLAIN (:func:`pin_plan`, :func:`unpin`), and, when asked, does so
on its own after a regression that came with a plan change (:class:`AutoPinner`).
"""

from queryopt.plans.automatic import AutoPinner
from queryopt.plans.history import (
    FingerprintPlans,
    PlanChange,
    PlanHistory,
    PlanRun,
    PlanStats,
    plan_changes,
    plan_history,
)
from queryopt.plans.pinning import NO_PG_HINT_PLAN, captured_plans, pin_plan, unpin
from queryopt.plans.store import Action, ActionKind, Pin, PinMode, PinStore
from queryopt.plans.verify import current_shape
from queryopt.plans.wakeup import wake_watchers
from queryopt.plans.watcher import PinWatcher, pin_rules

__all__ = [
    "NO_PG_HINT_PLAN",
    "Action",
    "ActionKind",
    "AutoPinner",
    "FingerprintPlans",
    "Pin",
    "PinMode",
    "PinStore",
    "PinWatcher",
    "PlanChange",
    "PlanHistory",
    "PlanRun",
    "PlanStats",
    "captured_plans",
    "current_shape",
    "pin_plan",
    "pin_rules",
    "plan_changes",
    "plan_history",
    "unpin",
    "wake_watchers",
]
