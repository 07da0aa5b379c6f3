"""The advice as terminal tables (rich), JSON or Markdown: thin renderers of the same :class:`Advice`.

Recorded text never becomes markup: rich gets :class:`rich.text.Text`, Markdown
gets HTML-escaped text with its punctuation backslash-escaped, and statements go
in ``<pre><code>`` blocks.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable
from enum import StrEnum

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from queryopt.advisor.model import Advice
from queryopt.errors import AdvisorError

__all__ = ["AdviceFormat", "print_advice", "render"]

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#!])")


class AdviceFormat(StrEnum):
    """The output formats of ``queryopt advise --format``."""

    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


def size(value: int) -> str:
    """Bytes in the unit that reads best.

    >>> size(900), size(12_533_760), size(3 * 1024**3)
    ('900 B', '12.0 MB', '3.0 GB')
    """
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def _share(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _ms(value: float) -> str:
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.1f}ms"


def _inline(text: str) -> str:
    one_line = " ".join(text.split())
    return html.escape(_MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line), quote=True)


def render_json(advice: Advice) -> str:
    return json.dumps(advice.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _headline(advice: Advice) -> str:
    count = f"{len(advice.indexes)} index{'es' if len(advice.indexes) != 1 else ''}"
    verification = advice.verification
    if verification is not None and verification.applied:
        return f"{count} advised for {advice.database}; {len(verification.created)} created."
    return (
        f"{count} advised for {advice.database} from {advice.fingerprints} statement(s) "
        f"({', '.join(advice.sources)}); estimated saving {_share(advice.estimated_saving)} of their recorded time. "
        "Nothing was created."
    )


def render_markdown(advice: Advice) -> str:
    lines = [f"# Index advice for {_inline(advice.database)}", "", _inline(_headline(advice)), ""]
    if advice.indexes:
        lines += ["| table | columns | size | share of slow time | statements |", "|---|---|---:|---:|---:|"]
        for index in advice.indexes:
            columns = ", ".join(index.columns)
            lines.append(
                f"| {_inline(index.table)} | {_inline(columns)} | {size(index.size_bytes)} | "
                f"{_share(index.share)} | {len(index.queries)} |"
            )
        lines += ["", "```sql", *(f"{index.create_statement};" for index in advice.indexes), "```", ""]
        for index in advice.indexes:
            lines += [f"## {_inline(index.name)}", ""]
            for query in index.queries:
                lines.append(
                    f"- `{query.fingerprint}` cost {query.cost_before:,.0f} → {query.cost_after:,.0f} "
                    f"({_share(query.share)} of slow time): {_inline(query.normalized_sql)}"
                )
            lines.append("")
    if advice.unused_indexes:
        lines += ["## Indexes no recorded statement uses (a hint, not an instruction)", ""]
        lines += [f"- {_inline(u.name)} on {_inline(u.table)}, {size(u.size_bytes)}" for u in advice.unused_indexes]
        lines.append("")
    if advice.skipped:
        lines += ["## Statements not planned", ""]
        lines += [f"- `{s.fingerprint}`: {_inline(s.reason)}" for s in advice.skipped]
        lines.append("")
    if advice.notes:
        lines += ["## Notes", "", *(f"- {_inline(note)}" for note in advice.notes), ""]
    return "\n".join(lines)


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False)


def print_advice(advice: Advice, console: Console) -> None:
    """The advice as tables on ``console``."""
    console.print(Text(_headline(advice)))
    if advice.indexes:
        table = _table("Indexes to create")
        table.add_column("table", no_wrap=True)
        table.add_column("columns", no_wrap=True)
        for heading in ("size", "share", "saves/h", "upkeep/h", "statements"):
            table.add_column(heading, justify="right")
        for index in advice.indexes:
            table.add_row(
                Text(index.table),
                Text(", ".join(f"{c} DESC" if d else c for c, d in zip(index.columns, index.descending, strict=True))),
                size(index.size_bytes),
                _share(index.share),
                _ms(index.saved_ms_per_hour),
                _ms(index.write_cost_ms_per_hour),
                str(len(index.queries)),
            )
        console.print(table)
        for index in advice.indexes:
            console.print(Text(f"{index.create_statement};", style="bold"))
            for query in index.queries:
                console.print(
                    Text(f"  {query.fingerprint}  cost {query.cost_before:,.0f} → {query.cost_after:,.0f}  ")
                    + Text(" ".join(query.normalized_sql.split())[:100], style="dim")
                )
    if advice.verification is not None:
        verified = _table("Re-planned" + (" with the created indexes" if advice.verification.applied else ""))
        for heading in ("fingerprint", "cost before", "predicted", "now", "uses"):
            verified.add_column(heading, justify="left" if heading in ("fingerprint", "uses") else "right")
        for replanned in advice.verification.queries:
            verified.add_row(
                replanned.fingerprint,
                f"{replanned.cost_before:,.0f}",
                f"{replanned.cost_predicted:,.0f}",
                f"{replanned.cost_after:,.0f}",
                Text(", ".join(replanned.indexes_used) or "-"),
            )
        console.print(verified)
        for name, error in advice.verification.failed:
            console.print(Text(f"could not create {name}: {error}", style="red"))
    if advice.unused_indexes:
        unused = _table("Indexes no recorded statement uses (a hint, not an instruction)")
        for heading in ("table", "index", "size", "scans"):
            unused.add_column(heading)
        for u in advice.unused_indexes:
            unused.add_row(Text(u.table), Text(u.name), size(u.size_bytes), "-" if u.scans is None else str(u.scans))
        console.print(unused)
    for skipped in advice.skipped:
        console.print(Text(f"not planned: {skipped.fingerprint}: {skipped.reason}", style="yellow"))
    for note in advice.notes:
        console.print(Text(f"note: {note}", style="dim"))


def _render_text(advice: Advice) -> str:
    out = io.StringIO()
    print_advice(advice, Console(file=out, width=100, color_system=None, force_terminal=False))
    return out.getvalue()


_RENDERERS: dict[AdviceFormat, Callable[[Advice], str]] = {
    AdviceFormat.TABLE: _render_text,
    AdviceFormat.JSON: render_json,
    AdviceFormat.MARKDOWN: render_markdown,
}


def render(advice: Advice, format: AdviceFormat | str = AdviceFormat.TABLE) -> str:
    """``advice`` as text in ``format`` (``table`` gives plain text, 100 columns wide)."""
    try:
        chosen = AdviceFormat(format)
    except ValueError:
        allowed = ", ".join(f.value for f in AdviceFormat)
        raise AdvisorError(f"unknown advice format {format!r}: use one of {allowed}") from None
    return _RENDERERS[chosen](advice)
