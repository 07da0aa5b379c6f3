"""Write docs/api.md, the API reference, from the public names' signatures and docstrings.

    python docs/build_api.py            # rewrite docs/api.md
    python docs/build_api.py --check    # exit 1 when docs/api.md is not what this would write

A test runs the check, so the page cannot drift from the code. The grouping and
the hand-written "Reading statistics" section live here; everything else comes
from ``queryopt`` itself.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import re
import sys
from pathlib import Path
from typing import Any

PAGE = Path(__file__).with_name("api.md")

GROUPS: dict[str, list[str]] = {
    "Running queries": [
        "configure",
        "optimize_query",
        "default_optimizer",
        "metrics_summary",
        "Optimizer",
        "Transaction",
        "CacheDecision",
        "QueryResult",
        "configure_async",
        "optimize_query_async",
        "AsyncOptimizer",
        "AsyncTransaction",
        "instrument",
        "uninstrument",
    ],
    "Configuration": [
        "Settings",
        "TimeoutPolicy",
        "RetryPolicy",
        "CachePolicy",
        "RecorderPolicy",
        "LimitPolicy",
        "PlanGuardPolicy",
        "LimitMode",
        "HintMode",
    ],
    "Result cache": ["ResultCache", "RedisBackend"],
    "Index hints": [
        "HintSet",
        "ScanHint",
        "JoinHint",
        "Leading",
        "Rows",
        "Parallel",
        "Set",
        "HintRules",
        "explain",
        "PlanComparison",
    ],
    "Analysis": [
        "analyze",
        "Analysis",
        "StatementKind",
        "TableRef",
        "PlaceholderStyle",
        "analysis_cache_info",
        "set_analysis_cache_size",
    ],
    "Statistics, alerts and slow-query recording": ["QueryStats", "Alert", "AlertSeverity", "SlowQueryRecorder", "SlowQuery"],
    "Reports": ["Report", "ReportFormat"],
    "Index advice": ["advise", "Advice"],
    "Errors": [
        "QueryoptError",
        "ConfigurationError",
        "DatabaseConnectionError",
        "AnalysisError",
        "HintError",
        "QueryError",
        "QueryTimeout",
        "QueryRejected",
        "CacheError",
        "RecorderError",
        "MigrationError",
        "ReportError",
        "AdvisorError",
        "PinError",
        "ServerError",
    ],
}

INTRO = """# API reference

Every name `queryopt` exports (`queryopt.__all__`), grouped by what it is for. The
signatures and descriptions are taken from the docstrings (`help(queryopt.Optimizer)`
shows the whole text); anything not listed here is internal and may change.
This page is written by `python docs/build_api.py`; a test checks it is current.

## Reading statistics

There is no `queryopt.stats()`: statistics belong to whatever runs the queries.

| you use | counters (plain ints) | per-query timings (seconds) |
|---|---|---|
| `queryopt.optimize_query` (the default optimizer) | `queryopt.default_optimizer().stats()` | `queryopt.metrics_summary()` |
| an `Optimizer` / `AsyncOptimizer` of your own | `optimizer.stats()` | `optimizer.metrics_summary()` |
| a SQLAlchemy engine: `inst = queryopt.instrument(engine)` | `inst.stats()` | `inst.metrics_summary()` |
| a `ResultCache` shared by several of them | `cache.stats()` | |
| a `SlowQueryRecorder` | `recorder.stats()` | |

`stats()` holds the cache's hits, misses, stores, evictions, invalidations and
bypasses, the front end's own counters (retries, timeouts, …), the recorder's
counters prefixed `recorder_` (recorded, pending, dropped, sampled_out, …) and
`prepared` (distinct SQL texts prepared). `metrics_summary()` maps each query
fingerprint to `count`, `samples`, `mean`, `min`, `max` and `p95` over its recent
calls (`RecorderPolicy.stats_window`); `optimizer.query_stats.on_alert(callback)`
is called when a call is much slower than its recent mean (and at least
`RecorderPolicy.alert_min_duration`, 10 ms by default). The slow-query table (with
`queryopt report`) keeps the history; these numbers are live and per process.
"""


def _markdown(text: str) -> str:
    """reStructuredText roles and literals as Markdown code; doctest examples left to the docstrings."""
    for role in (":class:", ":func:", ":meth:", ":attr:", ":mod:", ":data:", ":exc:"):
        text = text.replace(role, "")
    text = re.sub(r"`~(?:\w+\.)*(\w+)`", r"`\1`", text)  # `~a.b.Name` shows as `Name`
    text = text.replace("``", "`")
    paragraphs = [part for part in text.split("\n\n") if not part.lstrip().startswith(">>>")]
    return "\n\n".join(paragraphs).strip()


def _doc(obj: Any) -> str:
    return _markdown(inspect.getdoc(obj) or "")


def _first_paragraph(obj: Any) -> str:
    return " ".join(_doc(obj).split("\n\n")[0].split())


def _signature(obj: Any) -> str:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(…)"
    parameters = []
    star_done = False
    for parameter in signature.parameters.values():
        if parameter.name in ("self", "cls"):
            continue
        if parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parameters.append("*")
            star_done = True
        if parameter.kind is parameter.VAR_POSITIONAL:
            star_done = True
        prefix = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        text = prefix + parameter.name
        if parameter.annotation is not parameter.empty:
            annotation = parameter.annotation
            text += f": {annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)}"
        if parameter.default is not parameter.empty:
            text += f" = {parameter.default!r}"
        parameters.append(text)
    result = signature.return_annotation
    if result is signature.empty:
        returns = ""
    else:
        returns = f" -> {result if isinstance(result, str) else inspect.formatannotation(result)}"
    return f"({', '.join(parameters)}){returns}"


def _members(cls: type) -> list[str]:
    lines = []
    seen: set[str] = set()
    for owner in cls.__mro__:
        if not owner.__module__.startswith("queryopt") or issubclass(owner, BaseException):
            continue
        for name, member in vars(owner).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            documented = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if not inspect.getdoc(documented) or inspect.getdoc(documented) == inspect.getdoc(type(documented)):
                continue  # undocumented helpers stay off the page
            if isinstance(member, property):
                lines.append(f"- `{name}` (property): {_first_paragraph(member)}")
            elif isinstance(member, (staticmethod, classmethod)):
                function = member.__func__
                lines.append(f"- `{name}{_signature(function)}`: {_first_paragraph(function)}")
            elif inspect.isfunction(member):
                lines.append(f"- `{name}{_signature(member)}`: {_first_paragraph(member)}")
    return lines


def entry(name: str, obj: Any) -> str:
    """The page's section for one public name."""
    if isinstance(obj, type) and issubclass(obj, enum.Enum):
        members = ", ".join(f"`{member.name}` (`{member.value!r}`)" for member in obj)
        return f"### `{name}` (enum)\n\n{_doc(obj)}\n\nMembers: {members}\n"
    if isinstance(obj, type) and issubclass(obj, BaseException):
        bases = ", ".join(base.__name__ for base in obj.__bases__)
        return f"### `{name}({bases})`\n\n{_doc(obj)}\n"
    if isinstance(obj, type):
        members = _members(obj)
        body = f"### `{name}{_signature(obj)}`\n\n{_doc(obj)}\n"
        return body + ("\n" + "\n".join(members) + "\n" if members else "")
    return f"### `{name}{_signature(obj)}`\n\n{_doc(obj)}\n"


def build() -> str:
    import queryopt

    listed = [name for names in GROUPS.values() for name in names]
    missing = sorted(set(queryopt.__all__) - set(listed) - {"__version__"})
    if missing:
        raise SystemExit(f"build_api: public names not in a group of docs/build_api.py: {missing}")
    parts = [INTRO]
    for title, names in GROUPS.items():
        parts.append(f"## {title}\n")
        parts.extend(entry(name, getattr(queryopt, name)) for name in names)
    parts.append("## Version\n\n### `queryopt.__version__`\n\nThe installed version, a string.\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        if PAGE.read_text(encoding="utf-8") != text:
            print("docs/api.md is stale: run python docs/build_api.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
