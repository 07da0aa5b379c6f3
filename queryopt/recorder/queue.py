"""The slow-query recorder: a bounded in-memory queue and a background thread writing batches.

The application's thread only calls :meth:`SlowQueryRecorder.submit`, which
takes a lock, does a few dictionary operations and appends to a deque: no I/O,
no waiting, no exception. A daemon thread takes batches off the queue, asks the
application's database for plans of some of them, and COPYs the batch into
``<schema>.slow_queries`` over a connection of its own (see
:mod:`queryopt.recorder.table` for why no row is written twice). While that database
is unreachable the thread retries with exponential backoff (tenacity) and the
queue keeps what fits; beyond ``queue_size`` records, new ones are dropped and
counted. Everything still queued is flushed at interpreter exit.

A missing table (or schema) is not an outage: ``queryopt migrate`` was never run.
The writer says so once, naming the command, drops what is queued and stops;
the recorder then refuses records without a word until the process restarts.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential,
    wait_random,
)

from queryopt.config import RecorderPolicy
from queryopt.errors import REJECTED_SQLSTATE, RecorderError, migrate_command
from queryopt.recorder.plan_capture import CapturedPlan, PlanCapture
from queryopt.recorder.plan_history import PlanHistoryTable, plan_uses
from queryopt.recorder.record import SlowQuery
from queryopt.recorder.table import BatchResult, SlowQueryTable, new_record_ids, to_row

__all__ = ["SlowQueryRecorder"]

logger = logging.getLogger("queryopt")

_DEFAULT_POLICY = RecorderPolicy()
# The writer's and the plan capture's own connections: give up on a dead peer instead of waiting forever.
BACKGROUND_CONNECTION_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
_WRITE_STATEMENT_TIMEOUT_MS = 30_000
_FIRST_BACKOFF = 0.05  # seconds before the first retry; doubles up to RecorderPolicy.retry_max_backoff
# undefined_table, invalid_schema_name: queryopt's schema was never created here; undefined_column: it is
# older than this version (a migration not applied). Retrying cannot help either.
_NO_TABLE = (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedColumn)


def _connection_options(conninfo: str, name: str) -> dict[str, Any]:
    """The background options the connection string does not set itself (the caller's values win)."""
    try:
        given = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise RecorderError(f"SlowQueryRecorder: {name} is not a valid connection string: {exc}") from None
    return {key: value for key, value in BACKGROUND_CONNECTION_OPTIONS.items() if key not in given}


class SlowQueryRecorder:
    """Writes slow queries to ``<policy.schema>.slow_queries`` in the database at ``conninfo``.

    ``explain_conninfo`` is the application's database, where plans are asked for (no plans when
    ``None`` or ``policy.capture_plans`` is off). ``clock`` (monotonic seconds) drives sampling and
    plan rate limits. The schema must exist (``queryopt migrate``). Close the recorder when done; an
    unclosed one is flushed and closed at interpreter exit.
    """

    def __init__(
        self,
        conninfo: str,
        policy: RecorderPolicy = _DEFAULT_POLICY,
        *,
        explain_conninfo: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        options = _connection_options(conninfo, "conninfo")
        explain_options = (
            _connection_options(explain_conninfo, "explain_conninfo") if explain_conninfo is not None else {}
        )
        self.policy = policy
        self._conninfo = conninfo
        self._connect_options = options
        self._clock = clock
        self._table = SlowQueryTable(policy.schema)
        self._history = PlanHistoryTable(policy.schema)
        self._plans = (
            PlanCapture(
                explain_conninfo,
                interval=policy.plan_interval,
                clock=clock,
                connect_options=explain_options,
            )
            if explain_conninfo is not None and policy.capture_plans
            else None
        )
        # Read on every submit: plain attributes, no policy lookups on the hot path.
        self._threshold_ms = policy.threshold * 1000.0
        self._thresholds_ms = {fp: seconds * 1000.0 for fp, seconds in policy.thresholds.items()}
        self.never_slow_below = min([policy.threshold, *policy.thresholds.values()])
        """Seconds under which no call is slow, whatever its fingerprint: the caller's check before :meth:`is_slow`."""
        self._max_per_fingerprint = policy.max_per_fingerprint
        self._sample_window = policy.sample_window
        self._batch_size = policy.batch_size
        self._capacity = policy.queue_size

        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._queue: collections.deque[SlowQuery] = collections.deque()
        self._window_index = -1
        self._window_counts: dict[str, int] = {}
        self._accepted = 0  # records ever queued; the writer's _finished catches up with it
        self._finished = 0
        self._pending = 0  # queued + being written: bounded by queue_size
        self._counts = dict.fromkeys(
            (
                "recorded",
                "dropped",
                "sampled_out",
                "below_threshold",
                "write_failures",
                "rejected",
                "resent_duplicates",
                "plan_history_failures",
            ),
            0,
        )
        self._closed = not policy.enabled
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._failing_since: float | None = None
        self._thread: threading.Thread | None = None
        if policy.enabled:
            self._thread = threading.Thread(target=self._run, name="queryopt-recorder", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    # -- the application's side -----------------------------------------------------------------------

    def is_slow(self, fingerprint: str, seconds: float) -> bool:
        """Whether a call of ``fingerprint`` that took ``seconds`` should be submitted."""
        return seconds * 1000.0 >= self._thresholds_ms.get(fingerprint, self._threshold_ms)

    def submit(self, record: SlowQuery) -> bool:
        """Queue a record for writing. Never blocks, never raises.

        A call rejected by a concurrency limit (``sqlstate`` :data:`~queryopt.errors.REJECTED_SQLSTATE`) is
        recorded whatever its duration, sampled apart from the calls that ran. Returns ``False`` when the
        record is not queued: faster than its threshold, sampled out (``max_per_fingerprint`` reached in this
        window), queue full, or recorder closed.
        """
        if self._thread is None:  # disabled
            return False
        try:
            sample_key = record.fingerprint
            window_index = int(self._clock() // self._sample_window)
            with self._lock:
                counts = self._counts
                if self._closed:
                    counts["dropped"] += 1
                    return False
                if record.sqlstate == REJECTED_SQLSTATE:
                    # Sampled apart: a storm of rejections must not use up the budget of the calls that ran.
                    sample_key = f"{sample_key}/rejected"
                elif record.duration_ms < self._thresholds_ms.get(sample_key, self._threshold_ms):
                    counts["below_threshold"] += 1
                    return False
                if window_index != self._window_index or len(self._window_counts) > self._capacity:
                    self._window_index = window_index
                    self._window_counts = {}
                seen = self._window_counts.get(sample_key, 0)
                if seen >= self._max_per_fingerprint:
                    counts["sampled_out"] += 1
                    return False
                if self._pending >= self._capacity:
                    counts["dropped"] += 1
                    return False
                self._window_counts[sample_key] = seen + 1
                self._queue.append(record)
                self._pending += 1
                self._accepted += 1
                if len(self._queue) == self._batch_size:
                    self._wake.set()
            return True
        except Exception:  # the application's query must never fail because of the recorder
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued before this call is written (or given up); ``False`` on timeout."""
        with self._lock:
            target = self._accepted
            if self._finished >= target:
                return True
        if self._thread is None or not self._thread.is_alive():
            return False
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout`` seconds, then stop the thread; later submits return ``False``."""
        with self._lock:
            already, self._closed = self._closed, True
        atexit.unregister(self.close)
        thread = self._thread
        if thread is None or (already and not thread.is_alive()):
            return
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        self._stopping.set()
        self._wake.set()
        thread.join(max(0.1, deadline - time.monotonic()))
        pending = self.stats()["pending"]
        if pending:
            logger.warning("queryopt: the slow-query recorder closed with %d records not written", pending)

    def stats(self) -> dict[str, int]:
        """Counters as plain numbers: queued (ever accepted), recorded, pending, dropped, sampled_out,
        below_threshold, write_failures, rejected, resent_duplicates, plans_captured, plan_failures."""
        with self._lock:
            stats = dict(self._counts)
            stats["queued"] = self._accepted
            stats["pending"] = self._pending
        stats["plans_captured"] = self._plans.captured if self._plans else 0
        stats["plan_failures"] = self._plans.failed if self._plans else 0
        return stats

    def __enter__(self) -> SlowQueryRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.wait(self.policy.flush_interval)
                self._wake.clear()
                while not self._stopping.is_set() or self._queue:
                    batch = self._take_batch()
                    if not batch or not self._write_batch(batch):
                        break
        except Exception:  # a bug here must not take the application down with it
            logger.exception("queryopt: the slow-query recorder stopped unexpectedly")
        finally:
            self._disconnect()
            if self._plans is not None:
                self._plans.close()

    def plan_hash(self, fingerprint: str) -> str | None:
        """The hash of the latest plan captured for ``fingerprint`` (what its calls ran with, as far as known);
        ``None`` when none was captured (plan capture off, or no slow call of it yet)."""
        plans = self._plans
        return None if plans is None else plans.current.get(fingerprint)

    def _take_batch(self) -> list[SlowQuery]:
        with self._lock:  # submitters wait while this runs: keep it C-speed
            queue = self._queue
            if len(queue) <= self._batch_size:
                batch = list(queue)
                queue.clear()
                return batch
            return [queue.popleft() for _ in range(self._batch_size)]

    def _write_batch(self, batch: list[SlowQuery]) -> bool:
        """Write one batch, retrying while the database is unreachable; ``False`` if given up at close."""
        known = dict(self._plans.current) if self._plans is not None else {}
        plans = self._plans.plans(batch) if self._plans is not None else {}
        hashes = self._plan_hashes(batch, plans, known)
        ids = new_record_ids(len(batch))
        rows = []
        for index, record in enumerate(batch):
            captured = plans.get(index)
            plan = captured.plan if captured is not None else None
            rows.append(to_row(record, ids[index], plan, self.policy, hashes[index]))
        retrying = Retrying(
            retry=retry_if_exception_type(psycopg.Error) & retry_if_not_exception_type(_NO_TABLE),
            wait=wait_exponential(multiplier=_FIRST_BACKOFF, max=self.policy.retry_max_backoff)
            + wait_random(0, _FIRST_BACKOFF),
            stop=lambda state: self._stopping.is_set(),
            sleep=self._backoff,
            before_sleep=self._note_failure,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    # After any failed attempt the batch may have committed (a lost acknowledgement): resend safely.
                    resend = attempt.retry_state.attempt_number > 1
                    result = self._table.write(self._connection(), rows, resend=resend)
        except _NO_TABLE as exc:
            self._stop_without_table(exc, batch)
            return False
        except psycopg.Error as exc:
            self._note_failure_exc(exc)
            with self._lock:
                self._queue.extendleft(reversed(batch))  # still pending; close() reports them
            return False
        except Exception:  # a bug, not an outage: retrying would block the queue forever
            logger.exception("queryopt: cannot write a batch of %d slow-query records; dropped", len(batch))
            result = BatchResult(0, 0, len(batch))
        self._write_history(batch, hashes, plans)
        if self._failing_since is not None:
            logger.info(
                "queryopt: slow-query recorder writing again after %.1fs", time.monotonic() - self._failing_since
            )
            self._failing_since = None
        with self._progress:
            counts = self._counts
            counts["recorded"] += result.stored
            counts["rejected"] += result.rejected
            counts["resent_duplicates"] += result.already_present
            self._pending -= len(batch)
            self._finished += len(batch)
            self._progress.notify_all()
        if result.rejected:
            logger.warning("queryopt: the database refused %d slow-query records; dropped", result.rejected)
        return True

    def _stop_without_table(self, exc: psycopg.Error, batch: list[SlowQuery]) -> None:
        """Say once that the table is missing (and how to create it), drop every record and stop."""
        with self._progress:
            self._counts["write_failures"] += 1
            dropped = len(batch) + len(self._queue)
            self._queue.clear()
            self._counts["dropped"] += dropped
            self._closed = True
            self._pending = 0
            self._finished = self._accepted
            self._progress.notify_all()
        self._stopping.set()
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.warning(
            "queryopt: the table %s.slow_queries does not exist or is out of date (%s): run `%s`; slow queries are not "
            "recorded until this process restarts (%d dropped)",
            self.policy.schema,
            reason,
            migrate_command(self.policy.schema),
            dropped,
        )

    @staticmethod
    def _plan_hashes(batch: list[SlowQuery], plans: dict[int, CapturedPlan], known: dict[str, str]) -> list[str | None]:
        """The plan each record ran with: the latest captured for its fingerprint up to that record.

        ``known`` holds each fingerprint's latest plan before this batch."""
        latest = dict(known)
        hashes: list[str | None] = []
        for index, record in enumerate(batch):
            captured = plans.get(index)
            if captured is not None and captured.plan_hash is not None:
                latest[record.fingerprint] = captured.plan_hash
            hashes.append(latest.get(record.fingerprint))
        return hashes

    def _write_history(self, batch: list[SlowQuery], hashes: list[str | None], plans: dict[int, CapturedPlan]) -> None:
        uses = plan_uses(batch, hashes, plans)
        if not uses or self._conn is None:
            return
        try:
            self._history.write(self._conn, uses)
        except psycopg.Error as exc:  # the calls are stored; only their plan bookkeeping is lost
            with self._lock:
                self._counts["plan_history_failures"] += 1
            logger.warning("queryopt: cannot write %s.plan_history: %s", self.policy.schema, exc)

    def _backoff(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # close() cuts the wait short

    def _note_failure(self, state: RetryCallState) -> None:
        outcome = state.outcome
        self._note_failure_exc(outcome.exception() if outcome is not None else None)

    def _note_failure_exc(self, exc: BaseException | None) -> None:
        with self._lock:
            self._counts["write_failures"] += 1
            pending = self._pending
        self._disconnect()
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning(
                "queryopt: cannot write slow queries to %s.slow_queries (%s); %d records kept, retrying with backoff",
                self.policy.schema,
                (str(exc).strip().splitlines() or [type(exc).__name__])[0],
                pending,
            )

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._conninfo, application_name="queryopt-recorder", **self._connect_options)
            try:
                conn.execute(f"SET statement_timeout = {_WRITE_STATEMENT_TIMEOUT_MS}")
                conn.commit()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
