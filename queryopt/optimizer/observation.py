"""After every call: live statistics, telemetry when on, and a slow-query record when the call was slow.

Shared by the optimizer and the SQLAlchemy integration. The cost on a fast
call is one comparison with :attr:`CallObserver.quick_below` and one
:meth:`QueryStats.observe`; a record is built only for slow calls and handed to
the recorder, which never blocks.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from queryopt.config import Settings
from queryopt.errors import QueryRejected, QueryTimeout
from queryopt.optimizer.execution import take_retries
from queryopt.optimizer.live_stats import QueryStats
from queryopt.optimizer.preparation import PreparedCall, SessionIdentity
from queryopt.recorder import SlowQuery, SlowQueryRecorder

if TYPE_CHECKING:
    from queryopt.telemetry import Telemetry

__all__ = ["CallObserver", "open_recorder"]


class CallObserver:
    """Feeds ``stats`` and, for slow calls, ``recorder`` (``None``: nothing is recorded)."""

    def __init__(
        self,
        stats: QueryStats,
        recorder: SlowQueryRecorder | None,
        *,
        application_name: str | None,
        source: str,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.stats = stats
        self.recorder = recorder
        self.application_name = application_name
        self.source = source
        self.telemetry = telemetry
        """OpenTelemetry reporting (``None``: off, see :func:`queryopt.telemetry.telemetry_for`)."""
        self.quick_below = 0.0 if telemetry is not None else recorder.never_slow_below if recorder else math.inf
        """Seconds under which a call needs only ``stats.observe`` (most calls): with telemetry off, nothing
        faster could be recorded. A driver compares against it and counts; :meth:`observe` sees the rest."""
        if telemetry is not None:
            telemetry.watch_alerts(stats)
            if recorder is not None:
                telemetry.watch_recorder(recorder)

    def observe(
        self,
        call: PreparedCall,
        duration: float,
        *,
        identity: SessionIdentity | None,
        params: Any,
        cache_outcome: str,
        rowcount: int | None,
        error: BaseException | None = None,
        sql_text: str | None = None,
    ) -> None:
        fingerprint = call.analysis.fingerprint
        self.stats.observe(fingerprint, duration)
        if self.telemetry is not None:
            self._report(call, duration, identity, cache_outcome, error)
        recorder = self.recorder
        if recorder is None or duration < recorder.never_slow_below or not recorder.is_slow(fingerprint, duration):
            return
        sqlstate = getattr(error, "sqlstate", None)
        recorder.submit(
            SlowQuery(
                started_at=datetime.now(UTC) - timedelta(seconds=duration),
                fingerprint=fingerprint,
                kind=call.analysis.kind.value,
                normalized_sql=call.analysis.normalized_sql,
                sql_text=sql_text if sql_text is not None else call.statement.text,
                duration_ms=duration * 1000.0,
                row_count=rowcount,
                timed_out=isinstance(error, QueryTimeout) or sqlstate == "57014",
                sqlstate=sqlstate if isinstance(sqlstate, str) else None,
                hints=call.hint_text,
                cache_outcome=cache_outcome,
                database_name=identity.database if identity else "",
                role_name=identity.role if identity else "",
                application_name=self.application_name,
                source=self.source,
                params=params,
            )
        )

    def rejected(
        self,
        call: PreparedCall,
        error: QueryRejected,
        *,
        identity: SessionIdentity | None,
        params: Any,
        cache_outcome: str,
        sql_text: str | None = None,
    ) -> None:
        """A call turned away by its fingerprint's concurrency limit: recorded, whatever the slow threshold,
        with ``sqlstate`` set to the rejection marker and the wait as its duration (it never ran)."""
        error.sql = call.analysis.sql
        if self.telemetry is not None:
            self._report(call, error.waited, identity, cache_outcome, error)
        recorder = self.recorder
        if recorder is None:
            return
        recorder.submit(
            SlowQuery(
                started_at=datetime.now(UTC) - timedelta(seconds=error.waited),
                fingerprint=call.analysis.fingerprint,
                kind=call.analysis.kind.value,
                normalized_sql=call.analysis.normalized_sql,
                sql_text=sql_text if sql_text is not None else call.statement.text,
                duration_ms=error.waited * 1000.0,
                row_count=None,
                timed_out=False,
                sqlstate=error.sqlstate,
                hints=call.hint_text,
                cache_outcome=cache_outcome,
                database_name=identity.database if identity else "",
                role_name=identity.role if identity else "",
                application_name=self.application_name,
                source=self.source,
                params=params,
            )
        )

    def served_from_cache(self, call: PreparedCall, duration: float, identity: SessionIdentity | None) -> None:
        """A cache hit: reported to telemetry (when on) only; live statistics and the recorder see database calls."""
        if self.telemetry is not None:
            self._report(call, duration, identity, "hit", None)

    def _report(
        self,
        call: PreparedCall,
        duration: float,
        identity: SessionIdentity | None,
        cache_outcome: str,
        error: BaseException | None,
    ) -> None:
        assert self.telemetry is not None
        recorder = self.recorder
        self.telemetry.record_call(
            call.analysis,
            duration,
            database=identity.database if identity else "",
            search_path=identity.search_path if identity else "",
            cache_outcome=cache_outcome,
            error=error,
            hints=call.hint_text,
            plan_hash=None if recorder is None else recorder.plan_hash(call.analysis.fingerprint),
            retries=0 if cache_outcome == "hit" else take_retries(),
            source=self.source,
        )


def open_recorder(settings: Settings, application_conninfo: str) -> SlowQueryRecorder:
    """The recorder a front end opens for itself: it writes to ``settings.recorder.dsn`` when set, else to
    the application's database, and asks the application's database for plans."""
    return SlowQueryRecorder(
        settings.recorder.dsn or application_conninfo, settings.recorder, explain_conninfo=application_conninfo
    )
