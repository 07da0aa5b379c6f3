"""One SQLAlchemy engine with queryopt attached: the dialect execution events and what they do.

queryopt hooks in where SQLAlchemy hands a statement to the DBAPI cursor (the
``do_execute``/``do_executemany``/``do_execute_no_params`` dialect events). That
is after every ``before_cursor_execute`` listener, so the hint block goes first
in the text that is really sent, even when another listener (a tracing comment,
sqlcommenter) prepended something. Per statement the work is a dictionary
lookup for the prepared call, the timeout check, two clock readings and the
observation; everything that depends only on the SQL text is prepared once.

Writes are collected per connection and invalidate the cache once their
transaction has committed (SQLAlchemy has no after-commit engine event, so the
dialect's ``do_commit`` is wrapped for this engine; its ``commit`` event fires
before the COMMIT is sent). A rollback forgets them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Literal

import psycopg
from psycopg import IsolationLevel
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import ExceptionContext, ExecuteStyle
from sqlalchemy.exc import OperationalError

from queryopt.analysis import Analysis, PlaceholderStyle, StatementKind
from queryopt.cache import ResultCache, UnkeyableParams, canonical_params
from queryopt.config import HintMode, Settings
from queryopt.errors import AnalysisError, ConfigurationError
from queryopt.execution import Connection, Statement, ensure_statement_timeout, timeout_ms
from queryopt.hints import HintRules, planner_settings_applied
from queryopt.integrations.sqlalchemy.errors import SQLAlchemyQueryTimeout
from queryopt.integrations.sqlalchemy.links import LINK_KEY, AsyncConnectionFacade, ConnectionLink
from queryopt.integrations.sqlalchemy.options import OPTION, StatementOptions, statement_options
from queryopt.integrations.sqlalchemy.results import CursorRows, fetch_rows, serve_rows
from queryopt.observation import CallObserver
from queryopt.preparation import CallPreparer, PreparedCall
from queryopt.recorder import SlowQueryRecorder
from queryopt.result import QueryResult
from queryopt.sqltext import split_head
from queryopt.stats import QueryStats

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["Instrumentation", "instrument", "instrumentation_of", "uninstrument"]

logger = logging.getLogger("queryopt")

_SYNC_LINK: Final = "_queryopt_link"  # the link on a sync psycopg connection: one attribute read per statement
_MAX_OPAQUE = 4096
_SNAPSHOT_LEVELS: Final = frozenset({IsolationLevel.REPEATABLE_READ, IsolationLevel.SERIALIZABLE})
_clock = time.perf_counter
_LENT: ContextVar[Connection | None] = ContextVar("queryopt_sqlalchemy_connection", default=None)

Execute = Callable[[Any, str, Any, Any], None]


@contextmanager
def _lent_connection() -> Iterator[Connection]:
    """The connection of the statement being prepared: catalog look-ups for its hints run on it."""
    conn = _LENT.get()
    if conn is None:
        raise ConfigurationError("queryopt: SQLAlchemy statements are prepared only while they run")
    yield conn


def _text_fingerprint(sql: str) -> str:
    return hashlib.blake2b(" ".join(sql.split()).encode(), digest_size=8).hexdigest()


def _opaque_call(sql: str, reason: str, scope: Any) -> PreparedCall:
    """A statement queryopt cannot analyse: sent untouched, timed under a fingerprint of its text."""
    fingerprint = _text_fingerprint(sql)
    analysis = Analysis(
        sql=sql,
        kind=StatementKind.UTILITY,
        tables=(),
        written_tables=(),
        fingerprint=fingerprint,
        normalized_sql=" ".join(sql.split()),
        cacheable=False,
        uncacheable_reasons=(reason,),
        volatile_functions=(),
        unclassified_functions=(),
        placeholder_style=PlaceholderStyle.NONE,
        placeholder_count=0,
        placeholder_names=(),
        head=split_head(sql),
        read_only=False,
        may_write_unlisted=True,
    )
    return PreparedCall(
        analysis=analysis,
        statement=Statement(sql, fingerprint, False),
        hint_text=None,
        cache_prefix=(scope, sql),
        version_keys=ResultCache.version_keys(scope, ()),
        bypass_reasons=(reason,),
        invalidates=None,  # it may have written anything
    )


def _pool_info(pooled: Any) -> dict[str, Any] | None:
    """The ``info`` of a pooled connection (a SQLAlchemy ``Connection`` or pool proxy).

    ``None`` for the ad-hoc proxy SQLAlchemy uses while it initialises its dialect on the very first
    connection: queryopt leaves those few statements alone.
    """
    try:
        info = pooled.info
    except (AttributeError, NotImplementedError):
        return None
    return info if isinstance(info, dict) else None


def _link_of_pooled(pooled: Any) -> ConnectionLink | None:
    """The link of a pooled connection, if it has one."""
    info = _pool_info(pooled)
    return None if info is None else info.get(LINK_KEY)


class Instrumentation:
    """queryopt attached to one SQLAlchemy engine: made by :func:`instrument`, removed by :func:`uninstrument`."""

    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings | None = None,
        cache: ResultCache | None = None,
        recorder: SlowQueryRecorder | None = None,
        hint_rules: HintRules | None = None,
        query_stats: QueryStats | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.is_async = bool(engine.dialect.is_async)
        self.settings = settings or Settings.from_env()
        self.cache = cache or ResultCache(self.settings.cache)
        self.preparer = CallPreparer(self.settings, connect=_lent_connection, hint_rules=hint_rules)
        self.observer = CallObserver(
            query_stats or QueryStats(self.settings.recorder),
            recorder,
            application_name=self.settings.application_name,
            source="sqlalchemy",
        )
        self._owns_recorder = recorder is None and self.settings.recorder.enabled
        self.default_timeout_ms = timeout_ms(self.settings.timeout.statement)
        self._calls_get = self.preparer.calls.get
        self._observe = self.observer.observe
        self._stats_observe = self.observer.stats.observe
        self._opaque: dict[str, PreparedCall] = {}
        self._counters = {"timeouts": 0, "unanalysable": 0, "prepare_failures": 0, "connections": 0}
        self._lock = threading.Lock()
        self._attached = False
        self._wrapped: dict[str, Any] = {}
        dialect = self.dialect
        self._do_execute: Execute = dialect.do_execute
        self._do_executemany: Execute = dialect.do_executemany
        self._listeners: tuple[tuple[str, Callable[..., Any], dict[str, Any]], ...] = (
            ("do_execute", self._on_execute if self.is_async else self._on_execute_sync, {}),
            ("do_executemany", self._on_executemany, {}),
            ("do_execute_no_params", self._on_execute_no_params, {}),
            ("handle_error", self._on_error, {"retval": True}),
        )

    # -- attaching ---------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen to the engine's events and follow its transactions' ends."""
        if self._attached:
            return
        for name, listener, options in self._listeners:
            event.listen(self.engine, name, listener, **options)
        self._wrap("do_commit", self._wrapped_commit)
        self._wrap("do_rollback", self._wrapped_rollback)
        self._wrap("do_rollback_to_savepoint", self._wrapped_rollback_to_savepoint)
        self._wrap("do_commit_twophase", self._wrapped_commit_twophase)
        self._wrap("do_rollback_twophase", self._wrapped_rollback_twophase)
        self._attached = True

    def detach(self) -> None:
        """Stop listening, put the dialect back and close the recorder queryopt opened."""
        if not self._attached:
            return
        for name, listener, _ in self._listeners:
            if event.contains(self.engine, name, listener):
                event.remove(self.engine, name, listener)
        for name, (original, wrapper) in list(self._wrapped.items()):
            if self.dialect.__dict__.get(name) is wrapper:
                if original is None:
                    delattr(self.dialect, name)
                else:
                    setattr(self.dialect, name, original)
        self._wrapped.clear()
        self._attached = False
        recorder = self.observer.recorder
        if self._owns_recorder and recorder is not None:
            recorder.close()

    def _wrap(self, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        # An instance attribute shadows the dialect class's method for this engine only; detach() removes it.
        dialect = self.dialect
        wrapper = make(getattr(dialect, name))
        self._wrapped[name] = (dialect.__dict__.get(name), wrapper)
        setattr(dialect, name, wrapper)

    def _wrapped_commit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_commit(dbapi_connection: Any) -> None:
            try:
                original(dbapi_connection)
            except BaseException:
                self._committed(_link_of_pooled(dbapi_connection), failed=True)
                raise
            self._committed(_link_of_pooled(dbapi_connection))

        return do_commit

    def _wrapped_rollback(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_rollback(dbapi_connection: Any) -> None:
            try:
                original(dbapi_connection)
            finally:
                link = _link_of_pooled(dbapi_connection)
                if link is not None:
                    link.rolled_back()

        return do_rollback

    def _wrapped_rollback_to_savepoint(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_rollback_to_savepoint(connection: Any, name: str) -> None:
            try:
                original(connection, name)
            finally:
                link = _link_of_pooled(connection)
                if link is not None:
                    link.savepoint_rolled_back()

        return do_rollback_to_savepoint

    def _wrapped_commit_twophase(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_commit_twophase(connection: Any, *args: Any, **kwargs: Any) -> None:
            try:
                original(connection, *args, **kwargs)
            except BaseException:
                self._committed(_link_of_pooled(connection), failed=True)
                raise
            self._committed(_link_of_pooled(connection))

        return do_commit_twophase

    def _wrapped_rollback_twophase(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def do_rollback_twophase(connection: Any, *args: Any, **kwargs: Any) -> None:
            try:
                original(connection, *args, **kwargs)
            finally:
                link = _link_of_pooled(connection)
                if link is not None:
                    link.rolled_back()

        return do_rollback_twophase

    def _committed(self, link: ConnectionLink | None, *, failed: bool = False) -> None:
        if link is None or link.owner is not self:
            return
        # A failed COMMIT may or may not have happened (a lost connection): invalidating is always safe.
        everything, tables = link.take_pending()
        if everything:
            self.cache.bump(self.preparer.scope, None)
        elif tables:
            self.cache.bump(self.preparer.scope, tables)
        if not failed:
            link.committed()

    # -- connections -------------------------------------------------------------------------------------

    def _link(self, cursor: Any, context: Any) -> ConnectionLink | None:
        if self.is_async:
            link: ConnectionLink | None = _link_of_pooled(context.root_connection)
        else:
            link = getattr(cursor.connection, _SYNC_LINK, None)
        if link is None or link.owner is not self:
            link = self._new_link(context)
        return link

    def _new_link(self, context: Any) -> ConnectionLink | None:
        """First statement on a DBAPI connection: learn the database, give the session its default timeout."""
        pooled = context.root_connection.connection
        info = _pool_info(pooled)
        if info is None:
            return None
        dbapi = pooled.dbapi_connection
        conn: Any = AsyncConnectionFacade(dbapi) if self.is_async else dbapi
        link = ConnectionLink(self, conn)
        info[LINK_KEY] = link
        if not self.is_async:
            setattr(dbapi, _SYNC_LINK, link)
        self._counters["connections"] += 1
        idle = conn.info.transaction_status == TransactionStatus.IDLE
        try:
            self.preparer.learn(conn)
        except psycopg.Error as exc:
            logger.warning("queryopt: could not identify the database behind a new connection: %s", exc)
            if idle and not conn.autocommit:
                conn.rollback()
        ensure_statement_timeout(conn, self.default_timeout_ms)
        if conn.autocommit:
            link.committed_timeout = self.default_timeout_ms
        elif idle:
            conn.commit()  # nothing of the application's ran yet: make the session settings stick
            link.committed_timeout = self.default_timeout_ms
        if self._owns_recorder and self.observer.recorder is None:
            self._start_recorder(conn)
        return link

    def _start_recorder(self, conn: Connection) -> None:
        with self._lock:
            if self.observer.recorder is not None:
                return
            info = conn.info
            target = make_conninfo(info.dsn, password=info.password) if info.password else info.dsn
            self.observer.recorder = SlowQueryRecorder(
                self.settings.recorder.dsn or target, self.settings.recorder, explain_conninfo=target
            )

    # -- the execution events ----------------------------------------------------------------------------

    def _on_execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> Literal[True] | None:
        if context is None:
            return None
        if (
            context.execute_style is ExecuteStyle.INSERTMANYVALUES
            and statement is not context.statement
            and statement.lstrip()[:6].upper() == "INSERT"
        ):
            # One batch of a multi-row INSERT: analysed as the single-row statement it was compiled from.
            return self._run(self._do_execute, cursor, context.statement, parameters, context, sent=statement)
        return self._run(self._do_execute, cursor, statement, parameters, context)

    def _on_execute_sync(self, cursor: Any, statement: str, parameters: Any, context: Any) -> Literal[True] | None:
        """:meth:`_on_execute` with the common case inlined: a sync engine, a known statement, no options.

        (A batch of a multi-row INSERT never gets here: its text is never a prepared call's.)
        """
        if context is None or context.execution_options.get(OPTION) is not None:
            return self._on_execute(cursor, statement, parameters, context)
        call = self._calls_get((statement, None, True))
        conn = cursor.connection
        link = getattr(conn, _SYNC_LINK, None)
        if call is None or link is None or link.owner is not self or call.statement.planner_settings:
            return self._on_execute(cursor, statement, parameters, context)
        limit = self.default_timeout_ms
        if ensure_statement_timeout(conn, limit):  # a session limit changed by a rollback: set it again
            link.timeout_set(limit, autocommit=conn.autocommit)
        started = _clock()
        try:
            self._do_execute(cursor, call.statement.text, parameters, context)
        except BaseException as exc:
            self._failed(call, exc, _clock() - started, parameters, context, link, limit, "off")
            raise
        duration = _clock() - started
        recorder = self.observer.recorder
        if recorder is not None and recorder.is_slow(call.analysis.fingerprint, duration):
            self._observe(
                call,
                duration,
                identity=self.preparer.identity,
                params=parameters,
                cache_outcome="off",
                rowcount=cursor.rowcount,
            )
        else:  # what CallObserver.observe does for a call that is not slow, without building its arguments
            self._stats_observe(call.analysis.fingerprint, duration)
        if call.invalidates != ():
            self._wrote(link, call.invalidates)
        return True

    def _on_executemany(self, cursor: Any, statement: str, parameters: Any, context: Any) -> Literal[True] | None:
        if context is None:
            return None
        return self._run(self._do_executemany, cursor, statement, parameters, context, many=True)

    def _on_execute_no_params(self, cursor: Any, statement: str, context: Any) -> Literal[True] | None:
        if context is None:
            return None
        return self._run(_execute_no_params, cursor, statement, None, context, has_params=False)

    def _run(
        self,
        execute: Execute,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        *,
        sent: str | None = None,
        has_params: bool = True,
        many: bool = False,
    ) -> Literal[True] | None:
        link = self._link(cursor, context)
        if link is None:
            return None
        conn = link.conn
        raw = context.execution_options.get(OPTION)
        options = None if raw is None else statement_options(raw)
        hints = None if options is None else options.index_hints
        call = self._calls_get((statement, None, has_params)) if hints is None else None
        if call is None:
            call = self._prepare(statement, hints, has_params, conn)
        limit = self.default_timeout_ms if options is None or options.timeout is None else options.timeout_ms
        assert limit is not None
        if ensure_statement_timeout(conn, limit):
            link.timeout_set(limit, autocommit=conn.autocommit)
        text = call.statement.text if sent is None else sent
        if options is not None and options.cache and not many and sent is None:
            self._run_cached(execute, cursor, call, parameters, context, link, limit, options)
        else:
            self._execute(execute, cursor, call, text, parameters, context, link, limit, "off", many)
        return True

    def _execute(
        self,
        execute: Execute,
        cursor: Any,
        call: PreparedCall,
        text: str,
        parameters: Any,
        context: Any,
        link: ConnectionLink,
        limit: int,
        cache_outcome: str,
        many: bool = False,
    ) -> None:
        settings = call.statement.planner_settings
        started = time.perf_counter()
        try:
            if settings:
                with planner_settings_applied(link.conn, settings):
                    execute(cursor, text, parameters, context)
            else:
                execute(cursor, text, parameters, context)
        except BaseException as exc:
            self._failed(call, exc, time.perf_counter() - started, parameters, context, link, limit, cache_outcome)
            raise
        duration = time.perf_counter() - started
        self.observer.observe(
            call,
            duration,
            identity=self.preparer.identity,
            params=None if many else parameters,
            cache_outcome=cache_outcome,
            rowcount=cursor.rowcount,
        )
        if call.invalidates != ():
            self._wrote(link, call.invalidates)

    def _failed(
        self,
        call: PreparedCall,
        exc: BaseException,
        elapsed: float,
        parameters: Any,
        context: Any,
        link: ConnectionLink,
        limit: int,
        cache_outcome: str,
    ) -> None:
        context._queryopt_failure = (call, limit, elapsed)  # for _on_error, which makes the timeout error
        try:
            self.observer.observe(
                call,
                elapsed,
                identity=self.preparer.identity,
                params=parameters,
                cache_outcome=cache_outcome,
                rowcount=None,
                error=exc,
            )
            if call.invalidates != () and isinstance(exc, psycopg.Error) and exc.sqlstate is None:
                self._wrote(link, call.invalidates)  # connection lost mid-write: assume it happened
        except Exception:  # the application's own error must come through, whatever happens here
            logger.exception("queryopt: could not observe a failed statement")

    def _wrote(self, link: ConnectionLink, tables: tuple[str, ...] | None) -> None:
        if link.conn.autocommit:
            self.cache.bump(self.preparer.scope, tables)
        else:
            link.wrote(tables)

    def _prepare(self, statement: str, hints: Any, has_params: bool, conn: Connection) -> PreparedCall:
        if hints is None:
            opaque = self._opaque.get(statement)
            if opaque is not None:
                return opaque
        token = _LENT.set(conn)
        try:
            return self.preparer.prepare(statement, hints, has_params=has_params)
        except AnalysisError as exc:
            self._counters["unanalysable"] += 1
            call = _opaque_call(statement, f"not analysable: {exc}", self.preparer.scope)
            if len(self._opaque) >= _MAX_OPAQUE:
                self._opaque.clear()
            self._opaque[statement] = call
            return call
        except psycopg.Error as exc:
            # A catalog look-up for hints failed: run the statement as it is, try again next time.
            self._counters["prepare_failures"] += 1
            logger.warning("queryopt: hints for a statement could not be checked, sent without: %s", exc)
            return _opaque_call(statement, "hints could not be checked", self.preparer.scope)
        finally:
            _LENT.reset(token)

    # -- the result cache --------------------------------------------------------------------------------

    def _run_cached(
        self,
        execute: Execute,
        cursor: Any,
        call: PreparedCall,
        parameters: Any,
        context: Any,
        link: ConnectionLink,
        limit: int,
        options: StatementOptions,
    ) -> None:
        cache = self.cache
        key = self._cache_key(call, parameters, context, link)
        if key is None:
            cache.count_bypass()
            self._execute(execute, cursor, call, call.statement.text, parameters, context, link, limit, "bypass")
            return

        def run() -> QueryResult:
            self._execute(execute, cursor, call, call.statement.text, parameters, context, link, limit, "miss")
            return fetch_rows(cursor)

        result = cache.get(key, call.version_keys)
        if result is None:
            if self.is_async:
                # Never wait for another coroutine's run on this event loop: it could not finish meanwhile.
                cache.count_miss()
                versions, generation = cache.snapshot(call.version_keys)
                result = run()
                cache.store(key, result, versions=versions, generation=generation, ttl=options.ttl)
            else:
                result = cache.get_or_execute(key, call.version_keys, run, ttl=options.ttl)
        if not isinstance(result, CursorRows):  # stored by optimize_query under the same key
            described = tuple((name, None, None, None, None, None, None) for name in result.columns)
            result = CursorRows(result.columns, result.rows, result.rowcount, described)
        serve_rows(context, result)

    def _cache_key(self, call: PreparedCall, parameters: Any, context: Any, link: ConnectionLink) -> Any:
        """The cache key of this execution, or ``None`` when it must bypass the cache."""
        if call.bypass_reasons or context.execution_options.get("stream_results"):
            return None
        conn = link.conn
        if not conn.autocommit:
            if link.has_pending and link.pending_overlaps(frozenset(table.name for table in call.analysis.tables)):
                return None  # the transaction's own uncommitted writes must be visible to it
            if conn.isolation_level in _SNAPSHOT_LEVELS:
                return None  # a snapshot transaction must not see data newer than its snapshot
        try:
            return (call.cache_prefix, canonical_params(parameters))
        except UnkeyableParams:
            return None

    # -- errors ------------------------------------------------------------------------------------------

    def _on_error(self, ctx: ExceptionContext) -> BaseException | None:
        if not isinstance(ctx.original_exception, pg_errors.QueryCanceled):
            return None
        chained = getattr(ctx, "chained_exception", None)  # set only once an earlier handler replaced the error
        current = chained if chained is not None else ctx.sqlalchemy_exception
        if not isinstance(current, OperationalError) or isinstance(current, SQLAlchemyQueryTimeout):
            return None
        failure = getattr(ctx.execution_context, "_queryopt_failure", None)
        if failure is None:
            return None
        call, limit, elapsed = failure
        self._counters["timeouts"] += 1
        return SQLAlchemyQueryTimeout.from_operational_error(
            current,
            sql=call.statement.text,
            fingerprint=call.analysis.fingerprint,
            limit=limit / 1000 if limit else None,
            elapsed=elapsed,
        )

    # -- the public surface ------------------------------------------------------------------------------

    @property
    def hint_mode(self) -> HintMode:
        """How hints take effect on this database (``auto`` resolved once a connection was seen)."""
        return self.preparer.hint_mode

    @property
    def recorder(self) -> SlowQueryRecorder | None:
        return self.observer.recorder

    @property
    def query_stats(self) -> QueryStats:
        return self.observer.stats

    def invalidate(self, table: str | None = None) -> None:
        """Drop cached results that read ``table`` in this database (all of them without a table)."""
        self.cache.bump(self.preparer.scope, None if table is None else [table])

    def stats(self) -> dict[str, int]:
        """Plain counters of the cache, the recorder and the integration."""
        recorder = self.recorder
        recorded = {f"recorder_{k}": v for k, v in recorder.stats().items()} if recorder else {}
        return {**self.cache.stats(), **recorded, **self._counters, "prepared": len(self.preparer)}

    def metrics_summary(self) -> dict[str, dict[str, float]]:
        """Live per-fingerprint statistics: count, mean, min, max, p95 (seconds) over recent calls."""
        return self.query_stats.summary()

    def __repr__(self) -> str:
        return f"<queryopt Instrumentation of {self.engine!r}>"


def _execute_no_params(cursor: Any, statement: str, parameters: Any, context: Any) -> None:
    context.dialect.do_execute_no_params(cursor, statement, context)


# -- the module-level API ----------------------------------------------------------------------------------

_registry: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _sync_engine(engine: Any) -> Engine:
    found: object = engine if isinstance(engine, Engine) else getattr(engine, "sync_engine", None)
    if not isinstance(found, Engine):
        raise ConfigurationError(
            f"queryopt.instrument() takes a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}",
            setting="engine",
        )
    dialect = found.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        raise ConfigurationError(
            "queryopt instruments PostgreSQL engines that use psycopg 3 (postgresql+psycopg://…), "
            f"got {dialect.name}+{dialect.driver}",
            setting="engine",
        )
    return found


def instrument(
    engine: Engine | AsyncEngine,
    *,
    settings: Settings | None = None,
    cache: ResultCache | None = None,
    recorder: SlowQueryRecorder | None = None,
    hint_rules: HintRules | None = None,
    query_stats: QueryStats | None = None,
) -> Instrumentation:
    """Attach queryopt to ``engine`` (an ``Engine``, or an ``AsyncEngine`` from ``create_async_engine``).

    Every statement the engine runs is then analysed (once per distinct text), given the hints of a
    matching rule, run under the statement timeout, timed and recorded when slow. Per statement,
    ``execution_options(queryopt={"index_hints": …, "timeout": seconds, "cache": True | ttl})`` on a
    statement, connection, session or engine adds hints, changes the limit, or serves and stores its
    results in ``cache``. ``settings`` default to ``Settings.from_env()``; their statement timeout
    becomes every connection's default (``None``: no limit). Without a ``recorder`` one is opened
    when ``settings.recorder.enabled`` (it needs ``queryopt migrate``). Calling it again on the same
    engine returns the same instrumentation, or replaces it when given arguments.
    """
    target = _sync_engine(engine)
    with _registry_lock:
        existing = _registry.get(target.dialect)
        if existing is not None:
            if all(value is None for value in (settings, cache, recorder, hint_rules, query_stats)):
                return existing
            existing.detach()
        instrumentation = Instrumentation(
            target, settings=settings, cache=cache, recorder=recorder, hint_rules=hint_rules, query_stats=query_stats
        )
        instrumentation.attach()
        _registry[target.dialect] = instrumentation
    return instrumentation


def instrumentation_of(engine: Engine | AsyncEngine) -> Instrumentation | None:
    """The instrumentation attached to ``engine``, if any."""
    return _registry.get(_sync_engine(engine).dialect)


def uninstrument(engine: Engine | AsyncEngine) -> bool:
    """Detach queryopt from ``engine``; ``False`` when it was not instrumented.

    A sync engine's pool is disposed so that no pooled connection keeps queryopt's statement
    timeout; for an ``AsyncEngine`` call ``await engine.dispose()`` to the same end.
    """
    target = _sync_engine(engine)
    with _registry_lock:
        instrumentation = _registry.pop(target.dialect, None)
    if instrumentation is None:
        return False
    instrumentation.detach()
    if not instrumentation.is_async:
        target.dispose()
    return True
