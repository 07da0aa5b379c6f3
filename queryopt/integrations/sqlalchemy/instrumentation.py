"""One SQLAlchemy engine with queryopt attached: the dialect execution events and what they do.

queryopt hooks in where SQLAlchemy hands a statement to the DBAPI cursor: the
dialect's ``do_execute``, ``do_executemany`` and ``do_execute_no_params``,
replaced for this engine, not dialect events (a dialect with any listener makes
SQLAlchemy walk its listener lists on every statement). That is after every
``before_cursor_execute`` listener, so the hint block goes first in the text
that is really sent, even when another listener (a tracing comment,
sqlcommenter) prepended something. Per statement the work is a dictionary
lookup for the prepared call, the timeout check, two clock readings and the
observation; everything that depends only on the SQL text is prepared once.

Writes are collected per connection (:mod:`.links`) and invalidate the cache
once their transaction has committed (:mod:`.transactions`); a rollback forgets
them. Results asked for with ``cache`` are served at the cursor (:mod:`.caching`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.util.concurrency import await_

from queryopt.cache import ResultCache
from queryopt.config import Settings
from queryopt.errors import AnalysisError, QueryRejected
from queryopt.hints import HintRules, planner_settings_applied
from queryopt.integrations.sqlalchemy.caching import cache_key, cached_rows, fetch_rows, serve_rows
from queryopt.integrations.sqlalchemy.errors import SQLAlchemyQueryTimeout
from queryopt.integrations.sqlalchemy.links import LINK_KEY, AsyncConnectionFacade, ConnectionLink
from queryopt.integrations.sqlalchemy.options import OPTION, StatementOptions, statement_options
from queryopt.integrations.sqlalchemy.statements import lending, lent_connection, opaque_call
from queryopt.integrations.sqlalchemy.transactions import TransactionHooks, link_of_pooled, pool_info
from queryopt.optimizer.execution import (
    TIMEOUT_ATTRIBUTE,
    Connection,
    ensure_statement_timeout,
    known_statement_timeout,
    timeout_ms,
)
from queryopt.optimizer.frontend import FrontEnd
from queryopt.optimizer.limits import ConcurrencyLimiter, Gate, overloaded
from queryopt.optimizer.live_stats import QueryStats
from queryopt.optimizer.observation import CallObserver, open_recorder
from queryopt.optimizer.preparation import CallPreparer, PreparedCall
from queryopt.recorder import SlowQueryRecorder
from queryopt.result import QueryResult
from queryopt.telemetry import telemetry_for

__all__ = ["Instrumentation"]

logger = logging.getLogger("queryopt")

_WRAPPED: Final = ("do_execute", "do_executemany", "do_execute_no_params")
"""The dialect methods replaced per engine (instance attributes of its dialect)."""
_SYNC_LINK: Final = "_queryopt_link"  # the link on a sync psycopg connection: one attribute read per statement
_MAX_OPAQUE = 4096
_clock = time.perf_counter

Execute = Callable[[Any, str, Any, Any], None]


class Instrumentation(FrontEnd):
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
        self.cache = cache if cache is not None else ResultCache(self.settings.cache)
        self._limit_to(pool_size(engine))
        self.preparer = CallPreparer(self.settings, connect=lent_connection, hint_rules=hint_rules)
        self.observer = CallObserver(
            query_stats if query_stats is not None else QueryStats(self.settings.recorder),
            recorder,
            application_name=self.settings.application_name,
            source="sqlalchemy",
            telemetry=telemetry_for(self.settings),
        )
        self._telemetry = self.observer.telemetry
        if self._telemetry is not None:
            self._telemetry.watch_cache(self.cache)
        self._owns_recorder = recorder is None and self.settings.recorder.enabled
        self.default_timeout_ms = timeout_ms(self.settings.timeout.statement)
        self._calls_get = self.preparer.calls.get
        self._texts_get = self.preparer.texts.get
        self._observe = self.observer.observe
        self._quick_below = self.observer.quick_below
        self._count = self.observer.stats.observe
        self._opaque: dict[str, PreparedCall] = {}
        self._counters = {"timeouts": 0, "unanalysable": 0, "prepare_failures": 0, "connections": 0}
        self._lock = threading.Lock()
        self._attached = False
        self._pins_watched = False
        self._transactions = TransactionHooks(engine.dialect, self._committed)
        dialect = self.dialect
        self._do_execute: Execute = dialect.do_execute
        self._do_executemany: Execute = dialect.do_executemany
        self._do_execute_no_params: Callable[[Any, str, Any], None] = dialect.do_execute_no_params
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        """Each replaced dialect method: what the dialect's own attribute was (``None``: the class's), the wrapper."""

    # -- attaching ---------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Wrap the engine's dialect methods that run statements and follow its transactions' ends."""
        if self._attached:
            return
        self._wrap_dialect()
        self._transactions.install()
        self._attached = True

    def _wrap_dialect(self) -> None:
        """Replace the dialect's ``do_execute``, ``do_executemany`` and ``do_execute_no_params`` for this engine
        (instance attributes, like the transaction hooks; every engine has a dialect of its own).

        Dialect event listeners would do the same, but a dialect with any listener makes SQLAlchemy walk its
        listener lists on every statement (measured: 1.2% of a primary-key lookup for one empty ``handle_error``
        listener). The wrappers run where SQLAlchemy calls the dialect, after every ``before_cursor_execute``
        listener, so the hint block still goes first in the text really sent.
        """
        wrappers = {
            "do_execute": self._execute_any if self.is_async else self._execute_sync,
            "do_executemany": self._executemany,
            "do_execute_no_params": self._execute_no_params,
        }
        for name in _WRAPPED:
            wrapper = wrappers[name]
            self._wrapped[name] = (self.dialect.__dict__.get(name), wrapper)
            setattr(self.dialect, name, wrapper)

    def _unwrap_dialect(self) -> None:
        for name, (original, wrapper) in self._wrapped.items():
            if self.dialect.__dict__.get(name) is wrapper:  # unless something wrapped it since
                if original is None:
                    delattr(self.dialect, name)
                else:
                    setattr(self.dialect, name, original)
        self._wrapped.clear()

    def detach(self) -> None:
        """Put the dialect back, stop following transactions and close the recorder queryopt opened."""
        if not self._attached:
            return
        self._unwrap_dialect()
        self._transactions.remove()
        self._attached = False
        recorder = self.observer.recorder
        if self._owns_recorder and recorder is not None:
            recorder.close()
        self._stop_watching()

    def _committed(self, link: ConnectionLink, failed: bool) -> None:
        """A COMMIT ended the transaction on ``link``: its writes invalidate now."""
        if link.owner is not self:
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
            link: ConnectionLink | None = link_of_pooled(context.root_connection)
        else:
            link = getattr(cursor.connection, _SYNC_LINK, None)
        if link is None or link.owner is not self:
            link = self._new_link(context)
        return link

    def _new_link(self, context: Any) -> ConnectionLink | None:
        """First statement on a DBAPI connection: learn the database, give the session its default timeout."""
        pooled = context.root_connection.connection
        info = pool_info(pooled)
        if info is None:
            return None
        dbapi = pooled.dbapi_connection
        conn: Any = AsyncConnectionFacade(dbapi) if self.is_async else dbapi
        link = ConnectionLink(self, conn)
        info[LINK_KEY] = link
        if not self.is_async:
            setattr(dbapi, _SYNC_LINK, link)
        self._counters["connections"] += 1
        status = conn.info.transaction_status
        if status == TransactionStatus.INERROR:
            return link  # a connection met in a failed transaction (instrumented while in use): learn later
        idle = status == TransactionStatus.IDLE
        try:
            self.preparer.learn(conn)
        except psycopg.Error as exc:
            logger.warning("queryopt: could not identify the database behind a new connection: %s", exc)
            if idle and not conn.autocommit:
                conn.rollback()
        ensure_statement_timeout(conn, self.default_timeout_ms)
        if conn.autocommit or idle:
            if not conn.autocommit:
                conn.commit()  # nothing of the application's ran yet: make the session settings stick
            link.committed_timeout = self.default_timeout_ms
        else:  # met inside the application's transaction (instrumented while in use)
            link.timeout_changed = True
        if self._owns_recorder and self.observer.recorder is None:
            self._start_recorder(conn)
        if not self._pins_watched:
            self._start_pin_watcher(conn)
        return link

    def _start_pin_watcher(self, conn: Connection) -> None:
        with self._lock:
            if self._pins_watched:
                return
            self._pins_watched = True
            info = conn.info
            self._watch_pins(make_conninfo(info.dsn, password=info.password) if info.password else info.dsn)

    def _start_recorder(self, conn: Connection) -> None:
        with self._lock:
            if self.observer.recorder is not None:
                return
            info = conn.info
            target = make_conninfo(info.dsn, password=info.password) if info.password else info.dsn
            self.observer.recorder = open_recorder(self.settings, target)
            if self._telemetry is not None:
                self._telemetry.watch_recorder(self.observer.recorder)

    # -- the execution events ----------------------------------------------------------------------------

    def _execute_any(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        """The dialect's ``do_execute`` for any engine: a statement of SQLAlchemy's goes through :meth:`_run`."""
        if context is not None:
            if (
                context.execute_style is ExecuteStyle.INSERTMANYVALUES
                and statement is not context.statement
                and statement.lstrip()[:6].upper() == "INSERT"
            ):
                # One batch of a multi-row INSERT: analysed as the single-row statement it was compiled from.
                if self._run(self._do_execute, cursor, context.statement, parameters, context, sent=statement):
                    return
            elif self._run(self._do_execute, cursor, statement, parameters, context):
                return
        self._do_execute(cursor, statement, parameters, context)

    def _execute_sync(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        """:meth:`_execute_any` with the common case inlined: a sync engine, a known statement, no options.

        (A batch of a multi-row INSERT never gets here: its text is never a prepared call's.)
        """
        if context is None or context.execution_options.get(OPTION) is not None:
            return self._execute_any(cursor, statement, parameters, context)
        call = self._texts_get(statement)
        conn = cursor.connection
        link = getattr(conn, _SYNC_LINK, None)
        if (
            call is None
            or link is None
            or link.owner is not self
            or call.statement.planner_settings
            or self.limiter is not None
        ):
            return self._execute_any(cursor, statement, parameters, context)
        limit = self.default_timeout_ms
        if getattr(conn, TIMEOUT_ATTRIBUTE, None) != limit:  # after a statement with its own limit, or a rollback
            self._set_timeout(link, limit)
        started = _clock()
        try:
            self._do_execute(cursor, call.statement.text, parameters, context)
        except BaseException as exc:
            timeout = self._failed(call, exc, _clock() - started, statement, parameters, link, limit, "off")
            if timeout is not None:
                raise timeout from exc
            raise
        duration = _clock() - started
        if duration < self._quick_below:  # neither slow nor reported (most calls): counted, nothing built
            self._count(call.statement.fingerprint, duration)
        else:
            self._observe(
                call,
                duration,
                identity=self.preparer.identity,
                params=parameters,
                cache_outcome="off",
                rowcount=cursor.rowcount,
            )
        if call.invalidates != ():
            self._wrote(link, call.invalidates)
        return None

    def _executemany(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        """The dialect's ``do_executemany``."""
        if context is None or not self._run(self._do_executemany, cursor, statement, parameters, context, many=True):
            self._do_executemany(cursor, statement, parameters, context)

    def _execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        """The dialect's ``do_execute_no_params``."""
        if context is None or not self._run(self._send_no_params, cursor, statement, None, context, has_params=False):
            self._do_execute_no_params(cursor, statement, context)

    def _send_no_params(self, cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        self._do_execute_no_params(cursor, statement, context)

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
        if known_statement_timeout(conn) != limit:
            self._set_timeout(link, limit)
        if options is not None and options.cache and not many and sent is None:
            self._run_cached(execute, cursor, call, statement, parameters, context, link, limit, options)
        elif sent is None:
            self._execute(
                execute, cursor, call, call.statement.text, statement, parameters, context, link, limit, "off", many
            )
        else:
            self._execute(execute, cursor, call, sent, sent, parameters, context, link, limit, "off", many)
        return True

    def _set_timeout(self, link: ConnectionLink, limit: int) -> None:
        conn = link.conn
        if conn.info.transaction_status == TransactionStatus.INERROR:
            return  # it would fail too; only ROLLBACK (TO SAVEPOINT) can run now, and it needs no limit
        ensure_statement_timeout(conn, limit)
        link.timeout_set(limit, autocommit=conn.autocommit)

    def _execute(
        self,
        execute: Execute,
        cursor: Any,
        call: PreparedCall,
        text: str,
        statement: str,
        parameters: Any,
        context: Any,
        link: ConnectionLink,
        limit: int,
        cache_outcome: str,
        many: bool = False,
    ) -> None:
        """Send ``text`` (``statement`` as SQLAlchemy compiled it, with queryopt's hints) and observe it."""
        settings = call.statement.planner_settings
        limiter = self.limiter
        gate = None if limiter is None else self._admit(limiter, call, None if many else parameters, cache_outcome)
        started = time.perf_counter()
        dropped = False
        try:
            if settings:
                with planner_settings_applied(link.conn, settings):
                    execute(cursor, text, parameters, context)
            else:
                execute(cursor, text, parameters, context)
        except BaseException as exc:
            dropped = overloaded(exc)
            elapsed = time.perf_counter() - started
            timeout = self._failed(call, exc, elapsed, statement, parameters, link, limit, cache_outcome, many)
            if timeout is not None:
                raise timeout from exc
            raise
        finally:
            if gate is not None:
                assert limiter is not None
                limiter.release(gate, time.perf_counter() - started, dropped=dropped)
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

    def _admit(self, limiter: ConcurrencyLimiter, call: PreparedCall, parameters: Any, cache_outcome: str) -> Gate:
        """A slot of the statement's fingerprint. The connection is already checked out (SQLAlchemy takes it
        before the SQL is known): a rejection returns it to the pool as soon as the application's error handling
        does, instead of holding it for the whole slow statement."""
        try:
            if self.is_async:
                return await_(limiter.acquire_async(call.analysis.fingerprint))
            return limiter.acquire(call.analysis.fingerprint)
        except QueryRejected as exc:
            self.observer.rejected(
                call, exc, identity=self.preparer.identity, params=parameters, cache_outcome=cache_outcome
            )
            raise

    def _failed(
        self,
        call: PreparedCall,
        exc: BaseException,
        elapsed: float,
        statement: str,
        parameters: Any,
        link: ConnectionLink,
        limit: int,
        cache_outcome: str,
        many: bool = False,
    ) -> SQLAlchemyQueryTimeout | None:
        """Observe a statement that failed; the error to raise instead of ``exc`` when the server cancelled it
        (SQLAlchemy passes on an error that is not the driver's as it is)."""
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
        if not isinstance(exc, pg_errors.QueryCanceled):
            return None
        self._counters["timeouts"] += 1
        # What SQLAlchemy would have raised (its message, statement and parameters), as a QueryTimeout too.
        error = DBAPIError.instance(
            statement,
            parameters,
            exc,
            psycopg.Error,
            hide_parameters=self.engine.hide_parameters,
            dialect=self.dialect,
            ismulti=many,
        )
        assert isinstance(error, OperationalError)
        return SQLAlchemyQueryTimeout.from_operational_error(
            error,
            sql=call.statement.text,
            fingerprint=call.analysis.fingerprint,
            limit=limit / 1000 if limit else None,
            elapsed=elapsed,
        )

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
        try:
            with lending(conn):
                return self.preparer.prepare(statement, hints, has_params=has_params)
        except AnalysisError as exc:
            self._counters["unanalysable"] += 1
            call = opaque_call(statement, f"not analysable: {exc}", self.preparer.scope)
            if len(self._opaque) >= _MAX_OPAQUE:
                self._opaque.clear()
            self._opaque[statement] = call
            return call
        except psycopg.Error as exc:
            # A catalog look-up for hints failed: run the statement as it is, try again next time.
            self._counters["prepare_failures"] += 1
            logger.warning("queryopt: hints for a statement could not be checked, sent without: %s", exc)
            return opaque_call(statement, "hints could not be checked", self.preparer.scope)

    # -- the result cache --------------------------------------------------------------------------------

    def _run_cached(
        self,
        execute: Execute,
        cursor: Any,
        call: PreparedCall,
        statement: str,
        parameters: Any,
        context: Any,
        link: ConnectionLink,
        limit: int,
        options: StatementOptions,
    ) -> None:
        key = cache_key(call, parameters, context, link, options.cache_scope)
        text = call.statement.text
        if key is None:
            self.cache.count_bypass()
            self._execute(execute, cursor, call, text, statement, parameters, context, link, limit, "bypass")
            return

        ran = False

        def run() -> QueryResult:
            nonlocal ran
            ran = True
            self._execute(execute, cursor, call, text, statement, parameters, context, link, limit, "miss")
            return fetch_rows(cursor)

        started = time.perf_counter()
        # Never wait for another coroutine's run on an event loop: it could not finish meanwhile.
        rows = cached_rows(self.cache, key, call, run, ttl=options.ttl, single_flight=not self.is_async)
        if not ran and self._telemetry is not None:
            self._served(call, started)
        serve_rows(context, rows)

    # -- the public surface ------------------------------------------------------------------------------

    def invalidate(self, table: str | None = None) -> None:
        """Drop cached results that read ``table`` in this database (all of them without a table)."""
        self.cache.bump(self.preparer.scope, None if table is None else [table])

    def stats(self) -> dict[str, int]:
        """Plain counters of the cache, the recorder and the integration."""
        return self._stats_with(self._counters)

    def __repr__(self) -> str:
        return f"<queryopt Instrumentation of {self.engine!r}>"


def pool_size(engine: Engine) -> int | None:
    """Connections the engine's pool may hold at once: a ``QueuePool``'s size plus its overflow; ``None`` for a
    pool without a fixed bound (``NullPool``, unlimited overflow, …)."""
    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", None)  # QueuePool keeps max_overflow only under this name
    if not callable(size) or not isinstance(overflow, int) or overflow < 0:
        return None
    total = size() + overflow
    return total if isinstance(total, int) and total > 0 else None
