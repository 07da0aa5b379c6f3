"""Build an :class:`Analysis` from SQL text (uncached; ``queryopt.analysis.analyze`` caches it)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import Token

from queryopt.analysis.fingerprinting import collapse_lists, fingerprint_of, normalized_text
from queryopt.analysis.functions import Volatility, unclassified_reason
from queryopt.analysis.lexical import CommandText, command_text, refresh_target
from queryopt.analysis.literal_lists import collapse_literal_lists
from queryopt.analysis.model import Analysis, PlaceholderStyle, SessionChange, StatementKind, TableRef
from queryopt.analysis.names import table_ref
from queryopt.analysis.session import SET_CONFIG_LOCAL, SET_CONFIG_SESSION, session_change_of_statement
from queryopt.analysis.sqltext import split_head
from queryopt.analysis.statement import UNMODELLED_DDL_VERBS, ParsedStatement, parse_statement, tokenize
from queryopt.analysis.survey import TreeFacts, survey
from queryopt.analysis.tables import relation_tables, written_table_nodes
from queryopt.errors import AnalysisError

__all__ = ["analyze_uncached"]

# Texts at least this long are first searched for long literal lists to shorten; shorter ones gain nothing.
_LONG_TEXT = 2048

_DML_KINDS: dict[type[exp.Expr], StatementKind] = {
    exp.Insert: StatementKind.INSERT,
    exp.Update: StatementKind.UPDATE,
    exp.Delete: StatementKind.DELETE,
    exp.Merge: StatementKind.MERGE,
}
_DDL_ROOTS = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Comment, exp.Grant, exp.Revoke)
_UTILITY_ROOTS = (exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.Analyze, exp.Copy)
_DDL_VERBS = frozenset({"ALTER", "COMMENT", "CREATE", "DROP", "GRANT", "REVOKE", "TRUNCATE"}) | UNMODELLED_DDL_VERBS
# Commands that may change tables queryopt cannot name (procedures, anonymous blocks, prepared statements).
_OPAQUE_WRITERS = frozenset({"CALL", "DO", "EXECUTE", "IMPORT", "REASSIGN"})
_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
_CACHE_NEUTRAL = (Volatility.SAFE, Volatility.UNCLASSIFIED)  # not listed among volatile_functions
# SQL-standard functions written without parentheses.
_KEYWORD_FUNCTIONS = frozenset({"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp"})


def _kind_of(root: exp.Expr, sql: str) -> StatementKind:
    if isinstance(root, (exp.Query, exp.Values)):
        return StatementKind.SELECT
    kind = _DML_KINDS.get(type(root))
    if kind is not None:
        return kind
    if isinstance(root, _DDL_ROOTS):
        return StatementKind.DDL
    if isinstance(root, _UTILITY_ROOTS):
        return StatementKind.UTILITY
    raise AnalysisError(f"not a SQL statement PostgreSQL runs (sqlglot read it as {type(root).__name__})", sql=sql)


def _placeholder_summary(
    found: Iterable[tuple[PlaceholderStyle, str | None]],
) -> tuple[PlaceholderStyle, int, tuple[str, ...]]:
    styles: set[PlaceholderStyle] = set()
    names: dict[str, None] = {}
    count = 0
    for style, name in found:
        styles.add(style)
        count += 1
        if name is not None:
            names.setdefault(name)
    if not styles:
        return PlaceholderStyle.NONE, 0, ()
    style = styles.pop() if len(styles) == 1 else PlaceholderStyle.MIXED
    return style, count, tuple(names)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _statement_change(parsed: ParsedStatement) -> SessionChange | None:
    return session_change_of_statement([token.text for token in parsed.tokens[:3]])


def _command_analysis(sql: str, parsed: ParsedStatement) -> Analysis:
    """An analysis for a statement sqlglot keeps opaque: kind, placeholders and fingerprint from tokens."""
    root = parsed.root
    if isinstance(root, exp.Command):
        verb = str(root.this).upper()
        rest = root.expression.name if isinstance(root.expression, exp.Literal) else ""
        text: CommandText = command_text(verb, rest)
        rest_tokens = _safe_tokens(rest)
    else:
        verb = parsed.verb
        text = command_text(verb, tokens=parsed.tokens[1:])
        rest_tokens = parsed.tokens[1:]
    kind = StatementKind.DDL if verb in _DDL_VERBS else StatementKind.UTILITY
    written: tuple[TableRef, ...] = ()
    if verb == "REFRESH" and (view := refresh_target(rest_tokens)) is not None:
        written = (view,)
    opaque = (
        kind is StatementKind.DDL
        or verb in _OPAQUE_WRITERS
        or (verb == "REFRESH" and not written)
        or (verb == "EXPLAIN" and not text.words.isdisjoint({"ANALYZE", "ANALYSE"}))
    )
    style, count, names = _placeholder_summary(text.placeholders)
    return Analysis(
        sql=sql,
        kind=kind,
        tables=written,
        written_tables=written,
        fingerprint=fingerprint_of(text.normalized_sql),
        normalized_sql=text.normalized_sql,
        cacheable=False,
        uncacheable_reasons=(f"not a read: {kind} statement",),
        volatile_functions=(),
        unclassified_functions=(),
        placeholder_style=style,
        placeholder_count=count,
        placeholder_names=names,
        head=split_head(sql),
        read_only=False,
        may_write_unlisted=opaque,
        session_change=_statement_change(parsed),
    )


def _safe_tokens(text: str) -> list[Token]:
    try:
        return tokenize(text)
    except TokenError:  # a command's raw remainder need not tokenize; then it names no view
        return []


def _reasons(kind: StatementKind, facts: TreeFacts, tables: list[TableRef]) -> list[str]:
    reasons = [] if kind is StatementKind.SELECT else [f"not a read: {kind} statement"]
    if facts.locks:
        reasons.append("SELECT … FOR UPDATE/SHARE locks rows")
    if facts.into is not None:
        reasons.append("SELECT INTO creates a table")
    for node in facts.dml:
        if isinstance(node.parent, exp.CTE):  # MERGE's WHEN … THEN UPDATE/INSERT are nested too, but not CTEs
            reasons.append(f"data-modifying CTE ({_DML_KINDS[type(node)].upper()} in WITH)")
    for call in facts.functions:
        if call.volatility is Volatility.UNCLASSIFIED:
            reasons.append(unclassified_reason(call.name))
        elif call.volatility is not Volatility.SAFE:
            parens = "" if call.name in _KEYWORD_FUNCTIONS else "()"
            reasons.append(f"{call.volatility.value} function {call.name}{parens}")
    reasons.extend(f"time-dependent literal '{word}'" for word in facts.clock_literals)
    if facts.unrepeatable_samples:
        reasons.append("TABLESAMPLE without REPEATABLE returns different rows each time")
    for table in tables:
        if table.schema in _SYSTEM_SCHEMAS or (table.schema is None and table.name.startswith("pg_")):
            reasons.append(f"system catalog {table.qualified_name} changes without writes queryopt sees")
    return reasons


def _calls_dblink(facts: TreeFacts) -> bool:
    # dblink can write anything, even this database through a loopback connection.
    return any(call.name.startswith("dblink") for call in facts.functions)


def _session_change(parsed: ParsedStatement, facts: TreeFacts) -> SessionChange | None:
    if not all(facts.set_config_locals):
        return SET_CONFIG_SESSION
    return _statement_change(parsed) or (SET_CONFIG_LOCAL if facts.set_config_locals else None)


def _tree_analysis(sql: str, parsed: ParsedStatement, root: exp.Expr) -> Analysis:
    kind = _kind_of(root, sql)
    facts = survey(root)
    relations = relation_tables(facts.tables, facts.cte_names)
    written_ids = written_table_nodes(root, facts.dml, facts.into)
    tables = [table_ref(node) for node in relations]
    written = tuple(ref for node, ref in zip(relations, tables, strict=True) if id(node) in written_ids)
    collapse_lists(facts.lists)
    normalized = normalized_text(root)
    reasons = _unique(_reasons(kind, facts, tables))
    unclassified = _unique(c.name for c in facts.functions if c.volatility is Volatility.UNCLASSIFIED)
    volatile = _unique(c.name for c in facts.functions if c.volatility not in _CACHE_NEUTRAL)
    side_effects = any(call.side_effects for call in facts.functions)
    read_only = (
        kind is StatementKind.SELECT
        and not facts.locks
        and facts.into is None
        and not facts.dml  # a SELECT holds INSERT/UPDATE/DELETE nodes only in data-modifying CTEs
        and not side_effects
        and not unclassified
    )
    style, count, names = _placeholder_summary(facts.placeholders)
    return Analysis(
        sql=sql,
        kind=kind,
        tables=tuple(tables),
        written_tables=written,
        fingerprint=fingerprint_of(normalized),
        normalized_sql=normalized,
        cacheable=not reasons,
        uncacheable_reasons=reasons,
        volatile_functions=volatile,
        unclassified_functions=unclassified,
        placeholder_style=style,
        placeholder_count=count,
        placeholder_names=names,
        head=split_head(sql),
        read_only=read_only,
        may_write_unlisted=kind is StatementKind.DDL or bool(unclassified) or _calls_dblink(facts),
        session_change=_session_change(parsed, facts),
    )


def _parse_shortened(sql: str) -> ParsedStatement | None:
    """The tree of ``sql`` with its literal lists shortened, or None to parse the text as it is.

    The original text is parsed instead when nothing was shortened, when the shortened text has an
    error (so line and column point into the caller's text) and for statements sqlglot keeps as
    commands (their fingerprint comes from every token).
    """
    shortened = collapse_literal_lists(sql)
    if shortened is sql:
        return None
    try:
        parsed = parse_statement(shortened)
    except AnalysisError:
        return None
    return None if parsed.root is None or isinstance(parsed.root, exp.Command) else parsed


def analyze_uncached(sql: str) -> Analysis:
    """Analyse ``sql`` without the cache; raises only :class:`AnalysisError`."""
    if not isinstance(sql, str):
        raise AnalysisError(f"SQL must be a str, got {type(sql).__name__}", sql=repr(sql))
    try:
        parsed = _parse_shortened(sql) if len(sql) >= _LONG_TEXT else None
        if parsed is None:
            parsed = parse_statement(sql)
        if parsed.root is None or isinstance(parsed.root, exp.Command):
            return _command_analysis(sql, parsed)
        return _tree_analysis(sql, parsed, parsed.root)
    except AnalysisError:
        raise
    except Exception as error:  # sqlglot can fail in other ways on odd text (RecursionError, ValueError, …)
        raise AnalysisError(f"SQL cannot be analysed: {type(error).__name__}: {error}", sql=sql) from error
