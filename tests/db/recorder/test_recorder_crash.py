"""A process killed with SIGKILL loses at most the slow-query records accepted since the writer last ran.

The README promises the bound: the records still queued in memory, at most about one
``QUERYOPT_RECORDER_FLUSH_INTERVAL`` of them (and never more than ``queue_size``).
A child process records slow queries at a steady rate and publishes how many its
recorder accepted; the test kills it with SIGKILL and counts the rows that reached
the table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg

from queryopt.schema.migrator import migrate

RATE = 400  # records per second: below batch_size (500) per second, so only the flush interval wakes the writer
FLUSH_INTERVAL = 0.2
# One flush interval plus the time one batch may take to write on a busy machine (before: ~0.9 s lost).
BOUND_SECONDS = FLUSH_INTERVAL + 0.4

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from datetime import UTC, datetime
    from queryopt import Settings, SlowQueryRecorder
    from queryopt.recorder import SlowQuery

    dsn, counter_path, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings.from_env()
    recorder = SlowQueryRecorder(dsn, settings.recorder)
    counter = os.open(counter_path, os.O_WRONLY)
    accepted = 0
    print("recording", flush=True)
    started = time.monotonic()
    tick = 0
    while True:
        tick += 1
        for _ in range(rate // 100):
            record = SlowQuery(
                started_at=datetime.now(UTC), fingerprint=f"{accepted:016x}", kind="select",
                normalized_sql="SELECT %s", sql_text="SELECT 1", duration_ms=150.0, row_count=1,
                timed_out=False, sqlstate=None, hints=None, cache_outcome=None, database_name="d",
                role_name="r", application_name="crash-test", source="crash-test",
            )
            accepted += recorder.submit(record)
        os.pwrite(counter, b"%012d" % accepted, 0)
        time.sleep(max(0.0, started + tick / 100 - time.monotonic()))
    """
)


def test_sigkill_loses_at_most_one_flush_interval_of_records(dsn: str, tmp_path: Path) -> None:
    migrate(dsn)
    counter = tmp_path / "accepted"
    counter.write_bytes(b"0" * 12)
    env = {**os.environ, "QUERYOPT_RECORDER_FLUSH_INTERVAL": f"{FLUSH_INTERVAL}s", "QUERYOPT_SLOW_THRESHOLD": "100ms"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, dsn, str(counter), str(RATE)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "recording"
        # 1.9 s in: with the default 1 s interval about 0.9 s of records would still be queued.
        time.sleep(1.9)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    accepted = int(counter.read_bytes())
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM queryopt.slow_queries WHERE source = 'crash-test'").fetchone()
    assert stored is not None
    lost = accepted - stored[0]
    assert accepted > RATE  # it ran for well over a second
    assert 0 <= lost <= RATE * BOUND_SECONDS, f"{lost} of {accepted} records lost"
