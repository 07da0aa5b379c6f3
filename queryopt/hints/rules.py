"""Hint rules: hints attached to a query fingerprint, so ORM queries get hints without code changes.

The client-side counterpart of pg_hint_plan's hint table. A rule names the
query by fingerprint (or by an example SQL text, fingerprinted by queryopt) and
says which hints it gets. A rule is checked every time it matches: if the
query's tables are not the ones the rule was written for, or its hints no
longer fit the query or the catalog (an alias changed, an index was dropped), it
is reported, once in the log and in :meth:`HintRules.check`, and not applied.

Rules file (TOML; a ``.json`` file holds the same keys, as ``{"rule": [...]}``)::

    [[rule]]
    name = "orders of a customer"            # optional, shown in reports
    sql = "SELECT * FROM orders o WHERE o.customer_id = %s"   # or: fingerprint = "3f2a9c0d1e4b5a6c"
    tables = ["orders"]                      # optional with sql (taken from it): the tables the rule expects
    hints = ["orders_customer_idx", "Leading((o c))"]   # index names and pg_hint_plan hint text
    indexes = { o = "orders_customer_idx" }  # relation or alias -> index name or list of names
"""

from __future__ import annotations

import json
import logging
import re
import threading
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from queryopt.analysis import analyze
from queryopt.errors import ConfigurationError, HintError
from queryopt.hints.catalog import Catalog
from queryopt.hints.hintset import HintSet
from queryopt.hints.model import ScanHint
from queryopt.hints.resolve import (
    HintRequest,
    IndexHintsArg,
    NamedIndex,
    QueryRelations,
    RelationIndexes,
    check_relations,
    hint_requests,
    resolve_hints,
)

__all__ = ["HintRule", "HintRules", "RuleProblem"]

logger = logging.getLogger("queryopt")

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


class _Matched(QueryRelations, Protocol):
    """What matching needs of :class:`queryopt.analysis.Analysis`: relations plus the fingerprint."""

    @property
    def fingerprint(self) -> str: ...


@dataclass(frozen=True, slots=True)
class HintRule:
    """Hints for every query with ``fingerprint``; ``tables`` are the tables it was written for."""

    fingerprint: str
    requests: tuple[HintRequest, ...]
    """The hints as given: index names, relation -> indexes, hint objects (text already parsed)."""
    tables: tuple[str, ...] = ()
    """Table names the query must read (empty: not checked)."""
    name: str | None = None
    sql: str | None = None
    source: str = "api"

    @property
    def label(self) -> str:
        return f"{self.name or self.fingerprint} ({self.source})"

    @property
    def names_indexes(self) -> bool:
        return any(
            isinstance(request, (NamedIndex, RelationIndexes))
            or (isinstance(request, ScanHint) and bool(request.indexes))
            for request in self.requests
        )


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """A rule that matched a query but was not applied, and why."""

    fingerprint: str
    rule: str
    problem: str

    def __str__(self) -> str:
        return f"hint rule {self.rule}: {self.problem}"


def _bare(table: str) -> str:
    return table.rpartition(".")[2]


class HintRules:
    """Rules by fingerprint; :meth:`for_analysis` is a dictionary lookup for queries without a rule.

    ``catalog`` validates index names (a rule naming indexes is reported, not
    applied, when there is none); :meth:`for_analysis` may be given one too.
    Thread-safe: rules are replaced copy-on-write.
    """

    def __init__(self, rules: Iterable[HintRule] = (), *, catalog: Catalog | None = None) -> None:
        self.catalog = catalog
        self._rules: dict[str, HintRule] = {}
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, int, int], HintSet | RuleProblem] = {}
        self._problems: dict[tuple[str, str], RuleProblem] = {}
        for rule in rules:
            self._put(rule)

    # -- building --------------------------------------------------------------------------------------

    def _put(self, rule: HintRule) -> None:
        with self._lock:
            self._rules = {**self._rules, rule.fingerprint: rule}
            self._resolved = {}

    def add(
        self,
        fingerprint_or_sql: str,
        hints: IndexHintsArg,
        *,
        tables: Iterable[str] | None = None,
        name: str | None = None,
        source: str = "api",
    ) -> HintRule:
        """Attach ``hints`` to a fingerprint, or to the fingerprint of an example SQL text.

        Given SQL, the rule also records the tables it reads (unless ``tables``
        says otherwise) and its hints are checked against it at once.
        """
        text = fingerprint_or_sql.strip()
        sql: str | None = None
        if _FINGERPRINT.fullmatch(text):
            fingerprint = text
        else:
            analysis = analyze(fingerprint_or_sql)
            fingerprint, sql = analysis.fingerprint, fingerprint_or_sql
            if tables is None:
                tables = list(dict.fromkeys(ref.name for ref in analysis.tables))
        requests = hint_requests(hints)
        if not requests:
            raise HintError(f"hint rule for {fingerprint} has no hints")
        rule = HintRule(fingerprint, requests, tuple(tables or ()), name, sql, source)
        if sql is not None:
            # Checked now as far as possible: fully with a catalog, relation names without one.
            problem = self._problem_with(rule, analysis, self.catalog, None, relations_only=self.catalog is None)
            if isinstance(problem, RuleProblem):
                raise HintError(str(problem))
        self._put(rule)
        return rule

    @classmethod
    def load(cls, path: str | Path, *, catalog: Catalog | None = None) -> HintRules:
        """Read a rules file (TOML, or JSON when it ends in ``.json``); errors name the file and the rule."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            document: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"hint rules {path}: {exc}", setting="hint_rules") from exc
        entries = document.get("rule", document.get("rules", [])) if isinstance(document, dict) else document
        if not isinstance(entries, list):
            raise ConfigurationError(f"hint rules {path}: expected a list of [[rule]] tables", setting="hint_rules")
        rules = cls(catalog=catalog)
        for number, entry in enumerate(entries, start=1):
            try:
                rules._add_entry(entry, source=f"{path.name}#{number}")
            except (HintError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"hint rules {path}, rule {number}: {exc}", setting="hint_rules") from exc
        return rules

    from_file = load

    def _add_entry(self, entry: Any, *, source: str) -> None:
        if not isinstance(entry, dict):
            raise HintError(f"a rule is a table of keys, got {entry!r}")
        unknown = set(entry) - {"name", "sql", "fingerprint", "tables", "hints", "indexes"}
        if unknown:
            raise HintError(f"unknown keys {sorted(unknown)} (use name, sql or fingerprint, tables, hints, indexes)")
        target = entry.get("sql") or entry.get("fingerprint")
        if not isinstance(target, str) or not target.strip():
            raise HintError("a rule needs sql or fingerprint")
        if "fingerprint" in entry and not _FINGERPRINT.fullmatch(str(entry["fingerprint"])):
            raise HintError(f"fingerprint must be 16 lower-case hex characters, got {entry['fingerprint']!r}")
        listed = entry.get("hints", [])
        if isinstance(listed, str) or not isinstance(listed, list):
            raise HintError(f"hints must be a list of index names and hint texts, got {listed!r}")
        requests = hint_requests(listed) + hint_requests(entry.get("indexes") or None)
        tables = entry.get("tables")
        if tables is not None and (isinstance(tables, str) or not all(isinstance(t, str) for t in tables)):
            raise HintError(f"tables must be a list of table names, got {tables!r}")
        self.add(target, list(requests), tables=tables, name=entry.get("name"), source=source)

    # -- matching --------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[HintRule]:
        return iter(list(self._rules.values()))

    def rule_for(self, fingerprint: str) -> HintRule | None:
        return self._rules.get(fingerprint)

    def _problem_with(
        self,
        rule: HintRule,
        analysis: QueryRelations,
        catalog: Catalog | None,
        conn: psycopg.Connection[Any] | None,
        *,
        relations_only: bool = False,
    ) -> HintSet | RuleProblem:
        """The rule's hints resolved for ``analysis``, or why they do not fit."""

        def problem(text: str) -> RuleProblem:
            return RuleProblem(rule.fingerprint, rule.label, text)

        if rule.tables:
            expected = sorted({_bare(table) for table in rule.tables})
            actual = sorted({ref.name for ref in analysis.tables})
            if expected != actual:
                return problem(f"the query reads {actual}, the rule was written for {expected}")
        try:
            if relations_only:
                check_relations(analysis, rule.requests)
                return HintSet()
            if rule.names_indexes and catalog is None:
                return problem("it names indexes, which cannot be checked without a catalog")
            return resolve_hints(analysis, rule.requests, catalog, conn=conn)
        except HintError as exc:
            return problem(str(exc))

    def for_analysis(
        self,
        analysis: _Matched,
        *,
        catalog: Catalog | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> HintSet | None:
        """The hints of the rule matching ``analysis.fingerprint``, validated; None when no rule applies."""
        rule = self._rules.get(analysis.fingerprint)
        if rule is None:
            return None
        catalog = catalog if catalog is not None else self.catalog
        key = (analysis.sql, catalog.serial if catalog else 0, catalog.version if catalog else 0)
        outcome = self._resolved.get(key)
        if outcome is None:
            outcome = self._problem_with(rule, analysis, catalog, conn)
            with self._lock:
                if len(self._resolved) > 4096:
                    self._resolved = {}
                self._resolved[key] = outcome
        if isinstance(outcome, RuleProblem):
            self._report(outcome)
            return None
        return outcome

    def _report(self, problem: RuleProblem) -> None:
        key = (problem.fingerprint, problem.problem)
        with self._lock:
            if key in self._problems:
                return
            self._problems[key] = problem
        logger.warning("%s; the rule is not applied", problem)

    def check(self, catalog: Catalog | None = None) -> list[RuleProblem]:
        """Rules that were not applied when they matched, plus, for rules given as SQL, a fresh check against
        ``catalog`` (or the rules' own)."""
        problems = dict(self._problems)
        catalog = catalog if catalog is not None else self.catalog
        for rule in self._rules.values():
            if rule.sql is None:
                if catalog is not None:
                    for table in rule.tables:
                        schema, _, name = table.rpartition(".")
                        if catalog.table(schema or None, name) is None:
                            found = RuleProblem(rule.fingerprint, rule.label, f"table {table!r} is not in the catalog")
                            problems[(found.fingerprint, found.problem)] = found
                continue
            outcome = self._problem_with(rule, analyze(rule.sql), catalog, None, relations_only=catalog is None)
            if isinstance(outcome, RuleProblem):
                problems[(outcome.fingerprint, outcome.problem)] = outcome
        return list(problems.values())
