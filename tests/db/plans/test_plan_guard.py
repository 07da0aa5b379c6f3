"""The plan guard under a running workload: a plan changes, the change and its regression are shown, the old
plan is pinned (with pg_hint_plan), and an automatic pin that does not help is removed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from queryopt import Optimizer, PinError, RecorderPolicy, Settings
from queryopt.analysis import analyze
from queryopt.cli import main
from queryopt.config import PlanGuardPolicy
from queryopt.embedded import EmbeddedPostgres
from queryopt.hints import HintRules, parse_hints
from queryopt.hints.plan_shape import plan_shape
from queryopt.plans import AutoPinner, PinMode, PinStore, PinWatcher, current_shape, pin_plan, plan_history, unpin
from queryopt.schema.migrator import migrate

Conn = psycopg.Connection[tuple[Any, ...]]
QUERY = "SELECT count(*), sum(o.w) FROM items i JOIN orders o ON o.item_id = i.id WHERE i.v = %s"
FINGERPRINT = analyze(QUERY).fingerprint
ROWS = 200_000


@pytest.fixture
def items(dsn: str, conn: Conn) -> str:
    """200,000 items, 200 per value of ``v``, one order each: for ``v = 7`` a nested loop of index scans."""
    migrate(dsn)
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)")
    conn.execute(f"INSERT INTO items SELECT g, g / 200 FROM generate_series(0, {ROWS - 1}) g")
    conn.execute("CREATE INDEX items_v_idx ON items (v)")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, item_id int NOT NULL, w int NOT NULL)")
    conn.execute(f"INSERT INTO orders SELECT g, (g * 7919) % {ROWS}, g % 97 FROM generate_series(0, {ROWS - 1}) g")
    conn.execute("CREATE INDEX orders_item_idx ON orders (item_id)")
    conn.execute("VACUUM ANALYZE items, orders")
    # Custom plans only: after five runs a prepared statement may switch to a generic plan, which an EXPLAIN
    # with the call's parameters (how plans are captured) does not show.
    database = sql.Identifier(conn.info.dbname)
    conn.execute(sql.SQL("ALTER DATABASE {} SET plan_cache_mode = force_custom_plan").format(database))
    return dsn


def grow_v7(conn: Conn) -> None:
    """Data growth that flips the plan: three rows in four become v = 7, scattered over the table."""
    conn.execute("UPDATE items SET v = 7 WHERE id % 4 <> 0")
    conn.execute("VACUUM ANALYZE items")


@pytest.fixture
def optimizer(items: str) -> Iterator[Optimizer]:
    settings = Settings(
        recorder=RecorderPolicy(threshold=0.0, flush_interval=0.05, max_per_fingerprint=100_000),
        plans=PlanGuardPolicy(refresh_interval=0.2),
    )
    with Optimizer(items, settings=settings) as opt:
        yield opt


def workload(opt: Optimizer, calls: int) -> None:
    for _ in range(calls):
        opt.execute(QUERY, [7])
    assert opt.recorder is not None
    assert opt.recorder.flush(20)


def flip_plan(opt: Optimizer, conn: Conn) -> tuple[str, str]:
    """Run the workload, change the data under it, run it again; the two plan hashes (before, after)."""
    workload(opt, 30)
    time.sleep(0.6)  # the recorder captures a jumped fingerprint at most twice a second
    grow_v7(conn)
    workload(opt, 30)
    entry = plan_history(opt.pool.conninfo, fingerprint=FINGERPRINT).for_fingerprint(FINGERPRINT)
    assert entry is not None
    [change] = entry.changes
    return change.from_plan, change.to_plan


def test_a_plan_change_is_shown_with_both_plans_their_latency_and_its_regression(
    optimizer: Optimizer, conn: Conn
) -> None:
    before, after = flip_plan(optimizer, conn)
    history = plan_history(optimizer.pool.conninfo)
    entry = history.for_fingerprint(FINGERPRINT)
    assert entry is not None
    old, new = entry.plan(before), entry.plan(after)
    assert old is not None
    assert new is not None
    assert any("Nested Loop" in line for line in old.tree)
    assert any("items_v_idx" in line for line in old.tree)
    assert not any("Nested Loop" in line for line in new.tree)
    assert old.calls >= 25
    assert new.calls >= 25
    assert old.mean_ms is not None
    assert new.mean_ms is not None
    assert new.mean_ms > 2 * old.mean_ms
    [regression] = entry.regressions
    assert (regression.from_plan, regression.to_plan) == (before, after)
    assert regression.severity == "critical"
    assert regression.after.mean_ms == pytest.approx(new.mean_ms, rel=0.2)
    assert history.fingerprints[0].fingerprint == FINGERPRINT  # regressions first


def test_the_report_shows_the_plan_change_next_to_the_regression_and_the_plan_tree(
    optimizer: Optimizer, conn: Conn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = flip_plan(optimizer, conn)
    dsn = optimizer.pool.conninfo
    assert main(["report", "--dsn", dsn, "--since", "1h", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    [change] = document["plan_changes"]
    assert (change["fingerprint"], change["from_plan"], change["to_plan"]) == (FINGERPRINT, before, after)
    assert change["severity"] == "critical"
    [tree] = document["plan_trees"]
    assert tree["plan_hash"] == after
    page = tmp_path / "report.html"
    assert main(["report", "--dsn", dsn, "--since", "1h", "--format", "html", "--output", str(page)]) == 0
    html = page.read_text()
    regressions = html[html.index('<section id="regressions">') : html.index('<section id="queries">')]
    assert "Plan changes" in regressions
    assert f"<code>{before}</code> → <code>{after}</code>" in regressions
    assert f"Plan <code>{after}</code>" in html
    assert "Hash Join" in html or "Merge Join" in html
    assert main(["report", "--dsn", dsn, "--since", "1h", "--format", "markdown"]) == 0
    assert "### Plan changes" in capsys.readouterr().out


@pytest.mark.pg_hint_plan
def test_the_old_plan_is_pinned_and_every_call_runs_it(optimizer: Optimizer, conn: Conn) -> None:
    before, after = flip_plan(optimizer, conn)
    pin = pin_plan(optimizer.pool.conninfo, FINGERPRINT, plan_hash=before)
    assert pin.plan_hash == before
    assert pin.mode is PinMode.MANUAL
    assert pin.hints.startswith("Leading((i o)) Set(max_parallel_workers_per_gather 0) NestLoop(i o)")
    assert "Scan(i items_v_idx)" in pin.hints
    assert "Scan(o orders_item_idx)" in pin.hints
    # PostgreSQL, left alone, now chooses the other plan for v = 7; with the pin's hints it chooses the old one.
    literal = QUERY.replace("%s", "7")
    assert current_shape(conn, literal).plan_hash == after
    hinted, old = current_shape(conn, literal, parse_hints(pin.hints)), plan_shape(captured_plan(conn, before))
    assert hinted.plan_hash == before, old.differences(hinted)
    # The process that pinned applies it at once: its calls carry the hints, and their plan is the old one.
    workload(optimizer, 10)
    prepared = optimizer.prepare(QUERY)
    assert prepared.statement.text.startswith(f"/*+ {pin.hints} */")
    entry = plan_history(optimizer.pool.conninfo, fingerprint=FINGERPRINT).for_fingerprint(FINGERPRINT)
    assert entry is not None
    assert entry.changes[-1].to_plan == before
    [action] = [a for a in entry_actions(optimizer) if a.action == "pin"]
    assert action.plan_hash == before
    assert action.actor == "cli"
    unpin(optimizer.pool.conninfo, FINGERPRINT)
    assert optimizer.pin_watcher is not None
    assert optimizer.pin_watcher.wait_refreshed(10)
    assert not optimizer.prepare(QUERY).statement.text.startswith("/*+")


def captured_plan(conn: Conn, plan_hash: str) -> Any:
    row = conn.execute("SELECT plan FROM queryopt.plan_history WHERE plan_hash = %s", [plan_hash]).fetchone()
    assert row is not None
    return row[0]


def entry_actions(opt: Optimizer) -> list[Any]:
    with psycopg.connect(opt.pool.conninfo, autocommit=True) as conn:
        return PinStore().actions(conn, plan_history(conn).start)


@pytest.mark.pg_hint_plan
def test_an_automatic_pin_that_is_slower_is_removed(optimizer: Optimizer, conn: Conn) -> None:
    before, _after = flip_plan(optimizer, conn)
    auto = AutoPinner(optimizer.pool.conninfo, policy=PlanGuardPolicy(automatic=True, verify_calls=10))
    [pinned] = auto.check()
    assert f"pinned plan {before}" in pinned
    pin = PinStore().pin(conn, FINGERPRINT)
    assert pin is not None
    assert pin.mode is PinMode.AUTOMATIC
    assert pin.baseline_ms is not None
    # The old nested loop now probes orders 150,000 times: slower than the hash join it replaced.
    workload(optimizer, 12)
    assert optimizer.prepare(QUERY).statement.text.startswith("/*+")
    [verdict] = auto.check()
    assert "removed: not faster" in verdict
    assert PinStore().pin(conn, FINGERPRINT) is None
    assert auto.check() == []  # the same plan is not pinned again for this change
    actions = [(a.action, a.actor, a.plan_hash) for a in entry_actions(optimizer)]
    assert actions == [("pin", "automatic", before), ("unpin", "automatic", before)]
    assert optimizer.pin_watcher is not None
    assert optimizer.pin_watcher.wait_refreshed(10)
    assert not optimizer.prepare(QUERY).statement.text.startswith("/*+")


def test_without_pg_hint_plan_a_pin_is_refused_and_logged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QUERYOPT_DSN", "QUERYOPT_RECORDER_DSN", "QUERYOPT_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    with EmbeddedPostgres(preload=()) as server:  # a server of its own: this one never has pg_hint_plan
        dsn = server.conninfo()
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)")
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, item_id int NOT NULL, w int NOT NULL)")
            settings = Settings(recorder=RecorderPolicy(threshold=0.0, flush_interval=0.05))
            with Optimizer(dsn, settings=settings) as opt:
                workload(opt, 3)
            with pytest.raises(PinError, match="pg_hint_plan is not loaded"):
                pin_plan(dsn, FINGERPRINT)
            assert main(["pin", FINGERPRINT, "--dsn", dsn]) == 2
            actions = PinStore().actions(conn, plan_history(conn).start)
    assert "pg_hint_plan is not loaded" in capsys.readouterr().err
    assert [action.action for action in actions] == ["refused", "refused"]
    assert "planner settings cannot pin a join order" in actions[0].detail


def test_a_pin_of_a_plan_never_captured_names_what_was(items: str, conn: Conn) -> None:
    with pytest.raises(PinError, match="no plan captured"):
        pin_plan(items, FINGERPRINT)
    with pytest.raises(PinError, match="is not pinned"):
        unpin(items, FINGERPRINT)


def test_a_hash_names_the_shape_of_the_plan_explained(items: str, conn: Conn) -> None:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + QUERY.replace("%s", "7")).fetchone()
    assert row is not None
    assert current_shape(conn, QUERY).plan_hash == plan_shape(row[0]).plan_hash


@pytest.mark.pg_hint_plan
def test_a_watcher_in_automatic_mode_pins_by_itself_and_hands_the_pin_over(optimizer: Optimizer, conn: Conn) -> None:
    before, _ = flip_plan(optimizer, conn)
    handed: list[HintRules] = []
    policy = PlanGuardPolicy(automatic=True, refresh_interval=0.1)
    watcher = PinWatcher(optimizer.pool.conninfo, handed.append, policy=policy)
    try:
        assert watcher.wait_refreshed(30)
    finally:
        watcher.close()
    pin = PinStore().pin(conn, FINGERPRINT)
    assert pin is not None
    assert pin.plan_hash == before
    assert pin.mode is PinMode.AUTOMATIC
    rule = handed[-1].rule_for(FINGERPRINT)
    assert rule is not None
    assert rule.source == "pin"


@pytest.mark.pg_hint_plan
def test_a_plan_that_cannot_be_reproduced_is_refused_with_the_reason(optimizer: Optimizer, conn: Conn) -> None:
    workload(optimizer, 3)
    conn.execute("DROP INDEX items_v_idx")  # the captured plan used it
    with pytest.raises(PinError, match="items_v_idx") as refused:
        pin_plan(optimizer.pool.conninfo, FINGERPRINT)
    assert refused.value.fingerprint == FINGERPRINT
    assert PinStore().pin(conn, FINGERPRINT) is None
    [action] = entry_actions(optimizer)
    assert action.action == "refused"
    assert "items_v_idx" in action.detail
