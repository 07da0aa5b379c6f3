"""``queryopt plans`` output: one plain document (JSON ``schema_version`` 1), rendered as JSON, Markdown or a
terminal table. Version 1 only gains keys. Durations are milliseconds, times ISO 8601 (UTC)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from queryopt.plans.history import PlanChange, PlanHistory, PlanRun, PlanStats
from queryopt.plans.store import Action, Pin

__all__ = ["SCHEMA_VERSION", "document", "render_json", "render_markdown", "render_pin", "render_table"]

SCHEMA_VERSION = 1


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _run(run: PlanRun) -> dict[str, Any]:
    return {
        "plan_hash": run.plan_hash,
        "first_seen": _time(run.first_seen),
        "last_seen": _time(run.last_seen),
        "calls": run.calls,
        "mean_ms": run.mean_ms,
        "p95_ms": run.p95_ms,
    }


def _change(change: PlanChange) -> dict[str, Any]:
    return {
        "at": _time(change.at),
        "from_plan": change.from_plan,
        "to_plan": change.to_plan,
        "ratio": change.ratio,
        "severity": change.severity,
        "before": _run(change.before),
        "after": _run(change.after),
    }


def _plan(plan: PlanStats) -> dict[str, Any]:
    return {
        "plan_hash": plan.plan_hash,
        "first_seen": _time(plan.first_seen),
        "last_seen": _time(plan.last_seen),
        "calls": plan.calls,
        "mean_ms": plan.mean_ms,
        "p95_ms": plan.p95_ms,
        "total_calls": plan.total_calls,
        "lifetime_mean_ms": plan.lifetime_mean_ms,
        "captures": plan.captures,
        "pinned": plan.pinned,
        "tree": list(plan.tree),
    }


def render_pin(pin: Pin) -> dict[str, Any]:
    return {
        "fingerprint": pin.fingerprint,
        "plan_hash": pin.plan_hash,
        "hints": pin.hints,
        "mode": pin.mode.value,
        "pinned_at": _time(pin.pinned_at),
        "baseline_ms": pin.baseline_ms,
        "note": pin.note,
    }


def _action(action: Action) -> dict[str, Any]:
    return {
        "at": _time(action.at),
        "fingerprint": action.fingerprint,
        "plan_hash": action.plan_hash,
        "action": action.action,
        "actor": action.actor,
        "detail": action.detail,
    }


def document(history: PlanHistory) -> dict[str, Any]:
    """The plain-data document behind every format."""
    return {
        "schema_version": SCHEMA_VERSION,
        "window": {"start": _time(history.start), "end": _time(history.end)},
        "fingerprints": [
            {
                "fingerprint": entry.fingerprint,
                "normalized_sql": entry.normalized_sql,
                "pin": render_pin(entry.pin) if entry.pin is not None else None,
                "plans": [_plan(plan) for plan in entry.plans],
                "changes": [_change(change) for change in entry.changes],
                "regressions": [_change(change) for change in entry.regressions],
            }
            for entry in history.fingerprints
        ],
        "actions": [_action(action) for action in history.actions],
    }


def render_json(history: PlanHistory) -> str:
    return json.dumps(document(history), indent=2) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(history: PlanHistory) -> str:
    lines = [f"# Plans ({history.start:%Y-%m-%d %H:%M} to {history.end:%Y-%m-%d %H:%M} UTC)", ""]
    if not history.fingerprints:
        lines.append("No plans captured in this window.")
    for entry in history.fingerprints:
        lines += [f"## `{entry.fingerprint}`", "", f"`{_markdown_cell(entry.normalized_sql)}`", ""]
        if entry.pin is not None:
            lines += [f"Pinned ({entry.pin.mode.value}) to plan `{entry.pin.plan_hash}`: `{entry.pin.hints}`", ""]
        lines += ["| plan | first seen | last seen | calls | mean ms | p95 ms |", "|---|---|---|---:|---:|---:|"]
        for plan in entry.plans:
            mark = " (pinned)" if plan.pinned else ""
            lines.append(
                f"| `{plan.plan_hash}`{mark} | {plan.first_seen:%Y-%m-%d %H:%M:%S} | {plan.last_seen:%Y-%m-%d %H:%M:%S}"
                f" | {plan.calls} | {_ms(plan.mean_ms)} | {_ms(plan.p95_ms)} |"
            )
        for change in entry.changes:
            verdict = f"**{change.severity} regression**" if change.severity else "no regression"
            lines.append(
                f"\n- {change.at:%Y-%m-%d %H:%M:%S}: plan `{change.from_plan}` → `{change.to_plan}`, "
                f"mean {_ms(change.before.mean_ms)} → {_ms(change.after.mean_ms)} ms ({change.ratio:.1f}x): {verdict}"
            )
        for plan in entry.plans:
            lines += ["", f"Plan `{plan.plan_hash}`:", "", "```", *plan.tree, "```"]
        lines.append("")
    if history.actions:
        lines += ["## Actions", ""]
        for action in history.actions:
            lines.append(f"- {action.at:%Y-%m-%d %H:%M:%S} {action.actor} {action.action} `{action.fingerprint}`: ")
            lines[-1] += _markdown_cell(action.detail)
    return "\n".join(lines) + "\n"


def render_table(history: PlanHistory, console: Console) -> None:
    if not history.fingerprints:
        console.print("No plans captured in this window.")
    for entry in history.fingerprints:
        title = f"{entry.fingerprint}  {entry.normalized_sql[:100]}"
        table = Table(title=title, title_justify="left")
        for column in ("plan", "first seen", "last seen", "calls", "mean ms", "p95 ms"):
            table.add_column(column, justify="right" if column.endswith(("calls", "ms")) else "left")
        for plan in entry.plans:
            table.add_row(
                plan.plan_hash + (" pinned" if plan.pinned else ""),
                f"{plan.first_seen:%m-%d %H:%M:%S}",
                f"{plan.last_seen:%m-%d %H:%M:%S}",
                str(plan.calls),
                _ms(plan.mean_ms),
                _ms(plan.p95_ms),
            )
        console.print(table)
        for change in entry.changes:
            verdict = f"[bold red]{change.severity} regression[/]" if change.severity else "no regression"
            console.print(
                f"  {change.at:%m-%d %H:%M:%S} plan {change.from_plan} -> {change.to_plan}: mean "
                f"{_ms(change.before.mean_ms)} -> {_ms(change.after.mean_ms)} ms ({change.ratio:.1f}x), {verdict}",
                highlight=False,
            )
        if entry.pin is not None:
            console.print(
                f"  pinned ({entry.pin.mode.value}) to {entry.pin.plan_hash}: {entry.pin.hints}", markup=False
            )
    for action in history.actions:
        console.print(
            f"{action.at:%m-%d %H:%M:%S} {action.actor} {action.action} {action.fingerprint}: {action.detail}",
            markup=False,
            highlight=False,
        )
