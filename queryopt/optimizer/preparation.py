"""What is decided once per distinct SQL text, for one database and role.

:class:`CallPreparer` turns (SQL text, hints asked for, whether parameters are
passed) into a :class:`PreparedCall`: the analysis, the text to send with its
hint block (or the planner settings of the fallback), whether results may be
cached and which tables a run invalidates. The optimizer and the SQLAlchemy
integration share it, so both make the same decisions.

The cache scope is the database's identity as the *server* states it, so every
process and host connected to one database computes the same scope whatever
address it connects through: the cluster's system identifier, the postmaster's
start time (a restarted or failed-over server starts a new scope, so nothing
cached before is served after) and the database. Table versions live in that
scope: a write by any role invalidates every role's results of that table.

Cache keys add everything about the session that can change a result, read back
from the server once per new connection, so results never cross roles or tenants:
the role, the ``search_path``, every setting whose value is not the server's own
(``pg_settings`` rows set by the connection string, a pool ``configure`` hook,
``ALTER ROLE/DATABASE … SET``), and the custom settings (``app.tenant``) that the
connection string's options name or that a row-level-security policy reads with
``current_setting``. An optimizer's ``cache_scope`` (and a call's) is added to them,
for what the server cannot show (a tenant picked inside the statement).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from queryopt.analysis import Analysis, analyze
from queryopt.cache import ResultCache
from queryopt.cache.api import VersionKey
from queryopt.config import HintMode, Settings
from queryopt.hints import Catalog, HintRules, HintSet, hint_plan_active, plan_hints, resolve_hints
from queryopt.optimizer.execution import Connection, Statement

__all__ = [
    "CUSTOM_SETTINGS_SQL",
    "IDENTIFY_SQL",
    "POLICY_SETTINGS_SQL",
    "CallPreparer",
    "IndexHints",
    "PreparedCall",
    "SessionIdentity",
    "custom_setting_names",
    "identify",
    "identity_from_row",
    "option_settings",
    "with_custom_settings",
]

logger = logging.getLogger("queryopt")

IndexHints = Any  # the forms queryopt.hints.resolve_hints accepts: names, {table: index}, Hint objects, a HintSet
_MAX_PREPARED = 4096


@dataclass(frozen=True, slots=True)
class SessionIdentity:
    """Who and where a connection is: what cached results must never cross."""

    host: str
    """Where this client connected (for messages; not part of any scope: hosts reach one server by many names)."""
    database: str
    role: str
    search_path: str
    started: str
    """The postmaster's start time in epoch seconds: a restart or failover changes it."""
    server: str
    """The cluster's system identifier, the same whichever address a client connects through."""
    settings: str = ""
    """The session's settings that can change a result, ``name=value`` lines (see the module)."""

    @property
    def scope(self) -> Hashable:
        """The database: where table versions live (a write invalidates every role's reads)."""
        return (self.server, self.started, self.database)

    @property
    def session_scope(self) -> Hashable:
        """The database, role, search_path and settings: what cached results never cross."""
        return (self.server, self.started, self.database, self.role, self.search_path, self.settings)


IDENTIFY_SQL = (
    "SELECT current_database(), current_user, current_setting('search_path'),"
    " extract(epoch FROM pg_postmaster_start_time())::text, system_identifier::text,"
    " (SELECT coalesce(string_agg(name || '=' || setting, E'\\n' ORDER BY name), '') FROM pg_settings"
    # Server-wide sources are the same for every session; the limits queryopt itself sets change no rows.
    "   WHERE source NOT IN ('default', 'override', 'configuration file', 'command line', 'environment variable',"
    "     'global')"
    "   AND name NOT IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',"
    "     'idle_session_timeout', 'application_name'))"
    " FROM pg_control_system()"
)
"""One round trip that identifies a connection; the async optimizer sends it too."""

POLICY_SETTINGS_SQL = (
    "SELECT DISTINCT lower(m[1]) FROM pg_policy,"
    " regexp_matches(coalesce(pg_get_expr(polqual, polrelid), '') || ' '"
    " || coalesce(pg_get_expr(polwithcheck, polrelid), ''), 'current_setting\\(''([^'']+)''', 'g') AS m"
)
"""The settings row-level-security policies read: custom ones (``app.tenant``) are not in ``pg_settings``."""

CUSTOM_SETTINGS_SQL = "SELECT name, current_setting(name, true) FROM unnest(%s::text[]) AS name ORDER BY name"
"""Values of named settings (``NULL`` when not set in this session)."""

_OPTION_SETTING = re.compile(r"(?:-c\s*|--)([A-Za-z_][\w$]*\.[\w$.]+)=")


def identity_from_row(host: str, row: tuple[Any, ...] | None) -> SessionIdentity:
    """The identity :data:`IDENTIFY_SQL` returned."""
    assert row is not None
    database, role, search_path, started, server, settings = (str(value) for value in row)
    return SessionIdentity(host, database, role, search_path, started, server, settings)


def option_settings(options: str | None) -> set[str]:
    """Custom settings (names with a dot) that a connection's ``options`` set.

    >>> sorted(option_settings("-c app.tenant=a --app.region=eu -c work_mem=8MB"))
    ['app.region', 'app.tenant']
    """
    return {name.lower() for name in _OPTION_SETTING.findall(options or "")}


def with_custom_settings(identity: SessionIdentity, rows: Iterable[Sequence[Any]]) -> SessionIdentity:
    """``identity`` with the custom settings of :data:`CUSTOM_SETTINGS_SQL` added to its settings."""
    custom = "\n".join(f"{name}={value}" for name, value in rows if value is not None)
    if not custom:
        return identity
    settings = f"{identity.settings}\n{custom}" if identity.settings else custom
    return dataclasses.replace(identity, settings=settings)


def custom_setting_names(conn: Any, known: Iterable[str]) -> list[str]:
    """The custom settings to read on ``conn``: ``known`` ones and those its options set."""
    return sorted(set(known) | option_settings(getattr(conn.info, "options", None)))


def identify(conn: Connection, custom_settings: Iterable[str] = ()) -> SessionIdentity:
    """Ask the server who this connection is and how its session is set (once per new connection).

    ``custom_settings`` names settings ``pg_settings`` does not list (custom ones) to read as well.
    """
    identity = identity_from_row(conn.info.host, conn.execute(IDENTIFY_SQL).fetchone())
    names = custom_setting_names(conn, custom_settings)
    if not names:
        return identity
    return with_custom_settings(identity, conn.execute(CUSTOM_SETTINGS_SQL, [names]).fetchall())


VIEW_SOURCES_SQL = (
    "SELECT DISTINCT v.relname, t.relname, t.relkind = 'v'"
    " FROM pg_class v"
    " JOIN pg_rewrite r ON r.ev_class = v.oid"
    " JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
    " AND d.refclassid = 'pg_class'::regclass"
    " JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid"
    " WHERE v.relkind = 'v' AND v.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
)
"""Each user view with a relation its rewrite rule reads, and whether that relation is a view itself."""


def view_sources(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[str, ...]]:
    """View name → every relation it reads, following views through views (rows of :data:`VIEW_SOURCES_SQL`).

    Names are unqualified, like invalidation (which over-invalidates across schemas, never under).

    >>> view_sources([("a", "b", True), ("b", "t", False), ("b", "u", False)])["a"]
    ('b', 't', 'u')
    """
    direct: dict[str, list[str]] = {}
    for view, source, _ in rows:
        direct.setdefault(str(view), []).append(str(source))
    closure: dict[str, tuple[str, ...]] = {}
    for view in direct:
        seen: dict[str, None] = {}
        pending = list(direct[view])
        while pending:
            name = pending.pop(0)
            if name not in seen and name != view:
                seen[name] = None
                pending.extend(direct.get(name, ()))
        closure[view] = tuple(seen)
    return closure


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """Everything about one (SQL text, hints) pair that does not depend on parameter values."""

    analysis: Analysis
    statement: Statement
    hint_text: str | None
    """The hint block (or planner settings) applied, for the slow-query record."""
    cache_prefix: Hashable
    version_keys: tuple[VersionKey, ...]
    bypass_reasons: tuple[str, ...]
    """Empty when results may be cached."""
    invalidates: tuple[str, ...] | None
    """Tables whose cached results a successful run invalidates: ``()`` none, ``None`` the whole scope."""


def key_prefix(session_scope: Hashable, text: str) -> str:
    """What a cache key holds besides the parameters: the session scope and the text sent, as one string.

    A string caches its hash, so a hit hashes its key's prefix once per prepared call, not per call. The
    scope is strings, numbers and tuples of them (``check_cache_scope``), whose ``repr`` is unambiguous and
    never holds a raw NUL, so the first NUL ends it.
    """
    return f"{session_scope!r}\x00{text}"


def freeze_hints(value: Any) -> Hashable:
    """A hashable stand-in for the hints a caller passed (lists and dicts included)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), freeze_hints(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze_hints(item) for item in value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value  # type: ignore[no-any-return]


class CallPreparer:
    """Prepares calls for one database; ``connect`` lends a connection for catalog look-ups."""

    def __init__(
        self,
        settings: Settings,
        *,
        connect: Callable[[], AbstractContextManager[Connection]],
        hint_rules: HintRules | None = None,
        cache_scope: Hashable = None,
    ) -> None:
        self.settings = settings
        self.cache_scope = cache_scope
        """The application's own part of every cache key (``None``: none)."""
        self.policy_settings: tuple[str, ...] = ()
        """Settings that row-level-security policies of this database read (looked up with the views)."""
        self.hint_rules = hint_rules or (
            HintRules.from_file(settings.hint_rules) if settings.hint_rules else HintRules()
        )
        self.identity: SessionIdentity | None = None
        self.views: dict[str, tuple[str, ...]] = {}
        """View name → every relation it reads, through other views too: a cached read of a view
        depends on them (read once per database when the first connection is seen)."""
        self.pins = HintRules()
        """Pinned plans by fingerprint (``queryopt pin``): with pg_hint_plan they replace the rules' hints and
        a call's own for their fingerprint (a pin is a whole plan)."""
        self.hint_plan_active = False
        self._connect = connect
        self.calls: dict[Hashable, PreparedCall] = {}
        """Prepared calls by (SQL text, frozen hints, has_params); cleared, never replaced."""
        self.texts: dict[str, PreparedCall] = {}
        """The prepared calls without hints and with parameters, by SQL text alone: the hot path's lookup
        (a string caches its hash; a tuple key is built and hashed per call). Cleared with :attr:`calls`."""
        self._lock = threading.Lock()

    @property
    def scope(self) -> Hashable:
        return None if self.identity is None else self.identity.scope

    def new_database(self, identity: SessionIdentity) -> bool:
        """Whether ``identity`` is of another database than the one known (its views and policies to read)."""
        return self.identity is None or identity.scope != self.identity.scope

    def learn(self, conn: Connection) -> None:
        """Identify the database and session behind a new connection; a new identity starts a new cache scope."""
        policy_settings = self.policy_settings
        identity = identify(conn, policy_settings)
        if self.new_database(identity):
            policy_settings = tuple(str(name) for (name,) in conn.execute(POLICY_SETTINGS_SQL).fetchall())
            if set(policy_settings) - set(self.policy_settings):
                identity = identify(conn, policy_settings)
        if identity != self.identity:
            views = view_sources(conn.execute(VIEW_SOURCES_SQL).fetchall())
            self.adopt(identity, hint_plan_active(conn), views, policy_settings)

    def adopt(
        self,
        identity: SessionIdentity,
        hint_plan_is_active: bool,
        views: Mapping[str, tuple[str, ...]] | None = None,
        policy_settings: Sequence[str] = (),
    ) -> None:
        """Use ``identity`` from now on (the async optimizer asks the server itself); ``views`` maps each
        view's name to the relations it reads (see :func:`view_sources`), ``policy_settings`` names the
        settings row-level-security policies read (:data:`POLICY_SETTINGS_SQL`)."""
        with self._lock:
            self.identity = identity
            self.hint_plan_active = hint_plan_is_active
            self.views = dict(views or {})
            self.policy_settings = tuple(policy_settings)
            self.calls.clear()  # prepared calls carry the old scope in their cache keys
            self.texts.clear()

    def use_pins(self, pins: HintRules) -> None:
        """Apply ``pins`` from now on (the pin watcher's thread calls this); calls are prepared again."""
        with self._lock:
            self.pins = pins
            self.calls.clear()
            self.texts.clear()

    @property
    def hint_mode(self) -> HintMode:
        """How hints take effect here: ``auto`` resolved by whether pg_hint_plan is active."""
        mode = self.settings.hint_mode
        if mode is HintMode.AUTO:
            return HintMode.PG_HINT_PLAN if self.hint_plan_active else HintMode.PLANNER_SETTINGS
        return mode

    def get(self, sql: str, has_params: bool) -> PreparedCall | None:
        """The prepared call for ``sql`` without hints, if there is one (the hot path)."""
        return self.calls.get((sql, None, has_params))

    def prepare(
        self, sql: str, index_hints: IndexHints = None, *, has_params: bool = True, analysis: Analysis | None = None
    ) -> PreparedCall:
        """Analyse ``sql`` and resolve its hints once; later calls with the same text reuse the result.

        ``analysis`` is ``analyze(sql)`` computed elsewhere (the async optimizer's worker process).
        """
        key = (sql, None if index_hints is None else freeze_hints(index_hints), has_params)
        call = self.calls.get(key)
        if call is None:
            call = self._build(sql, index_hints, has_params, analysis)
            prepared = self.calls
            if len(prepared) >= _MAX_PREPARED:
                prepared.clear()
                self.texts.clear()
            prepared[key] = call
            if index_hints is None and has_params:
                self.texts[sql] = call
        return call

    def __len__(self) -> int:
        return len(self.calls)

    def _hints_for(self, analysis: Analysis, index_hints: IndexHints) -> HintSet | None:
        pinned = self.pins.rule_for(analysis.fingerprint) is not None and self.hint_mode is HintMode.PG_HINT_PLAN
        if index_hints is None and not pinned and self.hint_rules.rule_for(analysis.fingerprint) is None:
            return None
        # Once per distinct text: borrow a connection for the catalog (reloaded when a name is unknown).
        with self._connect() as conn:
            catalog = Catalog.for_connection(conn)
            if pinned:
                pin = self.pins.for_analysis(analysis, catalog=catalog, conn=conn)
                if pin is not None:  # a pin that no longer fits is logged by HintRules and skipped
                    return pin
            hints = None if index_hints is None else resolve_hints(analysis, index_hints, catalog, conn=conn)
            ruled = self.hint_rules.for_analysis(analysis, catalog=catalog, conn=conn)
        if ruled is not None:
            hints = ruled if hints is None else hints.merge(ruled)
        return hints

    def _relations_read(self, analysis: Analysis) -> list[str]:
        names = [table.name for table in analysis.tables]
        views = self.views
        return names + [source for name in names for source in views.get(name, ())] if views else names

    def _session_scope(self) -> Hashable:
        identity = self.identity
        scope = None if identity is None else identity.session_scope
        return scope if self.cache_scope is None else (scope, self.cache_scope)

    def needs_catalog(self, index_hints: IndexHints) -> bool:
        """Whether preparing with ``index_hints`` reads the catalog (blocking I/O)."""
        return index_hints is not None or bool(len(self.hint_rules)) or bool(len(self.pins))

    def _build(
        self, sql: str, index_hints: IndexHints, has_params: bool, analysis: Analysis | None = None
    ) -> PreparedCall:
        if analysis is None or analysis.sql != sql:
            analysis = analyze(sql)
        text, hint_text = sql, None
        settings: tuple[tuple[str, str], ...] = ()
        hints = self._hints_for(analysis, index_hints)
        if hints:
            plan = plan_hints(
                sql,
                hints,
                mode=self.settings.hint_mode,
                hint_plan_active=self.hint_plan_active,
                has_params=has_params,
                database=self.identity.database if self.identity else "",
            )
            text, settings = plan.sql, plan.settings
            if plan.mode is HintMode.PG_HINT_PLAN:
                hint_text = text[: len(text) - len(sql)].strip() or None
            elif settings:
                hint_text = ", ".join(f"{name}={value}" for name, value in settings)
        stable = self.settings.cache.stable_functions
        reasons: tuple[str, ...] = ()
        if not analysis.cacheable_with(stable):
            reasons = analysis.uncacheable_reasons or ("not cacheable",)
        # What a successful run invalidates: nothing for reads and for statements that write no table
        # (SAVEPOINT, SET, LOCK, FOR UPDATE…); the written tables when they are all known;
        # otherwise (DDL, CALL, functions of unknown volatility) everything cached for this database.
        invalidates: tuple[str, ...] | None = None
        if analysis.read_only or not reasons or not (analysis.written_tables or analysis.may_write_unlisted):
            invalidates = ()
        elif not analysis.may_write_unlisted:
            invalidates = tuple(dict.fromkeys(table.name for table in analysis.written_tables))
        return PreparedCall(
            analysis=analysis,
            statement=Statement(text, analysis.fingerprint, analysis.read_only, settings),
            hint_text=hint_text,
            cache_prefix=key_prefix(self._session_scope(), text),
            version_keys=ResultCache.version_keys(self.scope, self._relations_read(analysis)),
            bypass_reasons=reasons,
            invalidates=invalidates,
        )
