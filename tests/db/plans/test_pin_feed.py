"""Every front end of a process that reads one database's pins shares one thread and one connection."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg

from queryopt.config import PlanGuardPolicy
from queryopt.hints import HintRules
from queryopt.plans import Pin, PinMode, PinStore, PinWatcher
from queryopt.schema.migrator import migrate

FINGERPRINT = "0123456789abcdef"
FAST = PlanGuardPolicy(refresh_interval=0.1)


def _feeds() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "queryopt-pin-watcher"]


def _readers(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'queryopt-pin-watcher'"
        " AND datname = current_database()"
    ).fetchone()
    return row[0] if row else 0


def test_front_ends_share_one_reader_and_a_late_one_gets_the_pins_at_once(dsn: str) -> None:
    migrate(dsn)
    before = len(_feeds())
    first: list[HintRules] = []
    second: list[HintRules] = []
    watchers = [PinWatcher(dsn, first.append, policy=FAST), PinWatcher(dsn, second.append, policy=FAST)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            assert watchers[0].wait_refreshed(10)
            assert len(_feeds()) == before + 1
            assert _readers(conn) == 1
            pin = Pin(FINGERPRINT, "abcd1234", "SeqScan(t)", PinMode.MANUAL, datetime.now(UTC))
            PinStore().save(conn, pin, actor="test", detail="a pin written by hand")
            assert watchers[1].wait_refreshed(10)
            assert first[-1].rule_for(FINGERPRINT) is not None
            assert second[-1].rule_for(FINGERPRINT) is not None
            late: list[HintRules] = []
            watchers.append(PinWatcher(dsn, late.append, policy=FAST))
            assert late, "a late subscriber is handed the pins read already"
            assert late[-1].rule_for(FINGERPRINT) is not None
            assert len(_feeds()) == before + 1
        finally:
            for watcher in watchers[:-1]:
                watcher.close()
        assert len(_feeds()) == before + 1  # the last subscriber keeps it
        watchers[-1].close()
        assert len(_feeds()) == before


def test_another_database_or_interval_gets_its_own_reader(dsn: str) -> None:
    migrate(dsn)
    before = len(_feeds())
    watchers = [
        PinWatcher(dsn, lambda rules: None, policy=FAST),
        PinWatcher(dsn, lambda rules: None, policy=PlanGuardPolicy(refresh_interval=0.2)),
    ]
    try:
        assert len(_feeds()) == before + 2
    finally:
        for watcher in watchers:
            watcher.close()
    assert len(_feeds()) == before
