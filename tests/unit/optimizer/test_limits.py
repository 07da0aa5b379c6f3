"""The per-fingerprint limiter with real threads and real event loops (no database)."""

from __future__ import annotations

import asyncio
import pickle
import random
import threading
import time

import pytest
from psycopg_pool import PoolTimeout

from queryopt.config import LimitMode, LimitPolicy, Settings
from queryopt.errors import ConfigurationError, QueryError, QueryoptError, QueryRejected, QueryTimeout
from queryopt.optimizer.limits import ConcurrencyLimiter, open_limiter, overloaded

SLOW = "00000000000000aa"
FAST = "00000000000000bb"
OTHER = "00000000000000cc"


def static(cap: int | None = 2, *, pool_size: int = 10, **options: object) -> ConcurrencyLimiter:
    return ConcurrencyLimiter(LimitPolicy(LimitMode.STATIC, concurrency=cap, **options), pool_size=pool_size)  # type: ignore[arg-type]


def test_a_call_over_the_cap_is_rejected_with_its_fingerprint_limit_and_wait() -> None:
    limiter = static(2, max_wait=0)
    held = [limiter.acquire(SLOW), limiter.acquire(SLOW)]
    with pytest.raises(QueryRejected) as info:
        limiter.acquire(SLOW)
    error = info.value
    assert isinstance(error, QueryoptError)
    assert (error.fingerprint, error.limit) == (SLOW, 2)
    assert error.waited >= 0
    assert SLOW in str(error)
    assert pickle.loads(pickle.dumps(error)).fingerprint == SLOW
    other = limiter.acquire(OTHER)  # another fingerprint is not affected
    for gate in [*held, other]:
        limiter.release(gate, 0.01)
    assert limiter.stats()["limit_in_flight"] == 0
    assert limiter.summary()[SLOW] == {"limit": 2, "in_flight": 0, "waits": 0, "rejections": 1, "wait_seconds": 0.0}


def test_a_waiting_thread_gets_the_slot_another_thread_releases() -> None:
    limiter = static(1, max_wait=5.0)
    held = limiter.acquire(SLOW)
    got: list[float] = []

    def waiter() -> None:
        started = time.perf_counter()
        gate = limiter.acquire(SLOW)
        got.append(time.perf_counter() - started)
        limiter.release(gate, 0.01)

    thread = threading.Thread(target=waiter)
    thread.start()
    while not limiter._waiters:  # the waiter is registered
        time.sleep(0.001)
    time.sleep(0.05)
    limiter.release(held, 0.01)
    thread.join(5)
    assert len(got) == 1
    assert 0.04 < got[0] < 5.0  # it waited for the release, not for its bound
    stats = limiter.stats()
    assert (stats["limit_waits"], stats["limit_rejections"], stats["limit_in_flight"]) == (1, 0, 0)
    assert stats["limit_wait_ms"] >= 40


def test_slots_go_to_waiting_calls_in_their_order_and_newcomers_queue_behind() -> None:
    limiter = static(1, max_wait=5.0)
    held = limiter.acquire(SLOW)
    order: list[str] = []

    def call(name: str) -> None:
        gate = limiter.acquire(SLOW)
        order.append(name)
        time.sleep(0.1)
        limiter.release(gate, 0.1)

    threads = []
    for count, name in enumerate(["first", "second"], start=1):
        threads.append(threading.Thread(target=call, args=(name,)))
        threads[-1].start()
        while len(limiter._waiters) < count:
            time.sleep(0.001)
    limiter.release(held, 0.01)  # handed to "first"; "second" waits on
    threads.append(threading.Thread(target=call, args=("newcomer",)))
    threads[-1].start()
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second", "newcomer"]
    assert limiter.stats()["limit_waits"] == 3


def test_a_waiting_thread_is_rejected_after_its_bound() -> None:
    limiter = static(1, max_wait=0.1)
    held = limiter.acquire(SLOW)
    started = time.perf_counter()
    with pytest.raises(QueryRejected) as info:
        limiter.acquire(SLOW)
    elapsed = time.perf_counter() - started
    assert 0.1 <= info.value.waited <= elapsed
    limiter.release(held, 0.01)
    assert limiter.stats()["limit_rejections"] == 1
    assert limiter._waiters == {}  # nothing left behind


def test_per_fingerprint_caps_override_the_default() -> None:
    limiter = static(3, per_fingerprint={SLOW: 1}, max_wait=0)
    slow = limiter.acquire(SLOW)
    with pytest.raises(QueryRejected):
        limiter.acquire(SLOW)
    others = [limiter.acquire(OTHER) for _ in range(3)]
    with pytest.raises(QueryRejected):
        limiter.acquire(OTHER)
    for gate in [slow, *others]:
        limiter.release(gate, 0.01)


def test_the_shared_slots_leave_the_reserve_to_a_fingerprint_with_nothing_running() -> None:
    limiter = static(2, pool_size=4, reserve=1, max_wait=0)  # 3 shared slots
    for _ in range(2):  # the second time round proves every slot went back where it came from
        slow = [limiter.acquire(SLOW), limiter.acquire(SLOW)]
        other = limiter.acquire(OTHER)
        with pytest.raises(QueryRejected, match="no shared pool slot free"):
            limiter.acquire(OTHER)  # under its cap, but OTHER already runs: the reserve is not for it
        fast = limiter.acquire(FAST)  # FAST runs nothing yet: it gets the reserve
        assert limiter.stats()["limit_in_flight"] == 4
        with pytest.raises(QueryRejected):
            limiter.acquire("00000000000000dd")  # the whole pool is taken
        limiter.release(slow.pop(), 0.5)
        with pytest.raises(QueryRejected):
            limiter.acquire(OTHER)  # three calls still run: as many as the shared slots
        limiter.release(fast, 0.5)
        other2 = limiter.acquire(OTHER)
        for gate in [*slow, other, other2]:
            limiter.release(gate, 0.5)
    assert limiter.stats() == {
        "limit_waits": 0,
        "limit_rejections": 6,
        "limit_wait_ms": 0,
        "limit_in_flight": 0,
        "limit_waiting": 0,
    }


def test_threads_never_exceed_the_caps_and_give_every_slot_back() -> None:
    limiter = static(3, pool_size=8, reserve=2, max_wait=0.005)
    fingerprints = [SLOW, FAST, OTHER, "00000000000000dd"]
    running = dict.fromkeys(fingerprints, 0)
    peaks = dict.fromkeys([*fingerprints, "total"], 0)
    lock = threading.Lock()
    rejected = [0]

    def worker(seed: int) -> None:
        chooser = random.Random(seed)
        for _ in range(300):
            fingerprint = chooser.choice(fingerprints)
            try:
                gate = limiter.acquire(fingerprint)
            except QueryRejected:
                with lock:
                    rejected[0] += 1
                continue
            with lock:
                running[fingerprint] += 1
                peaks[fingerprint] = max(peaks[fingerprint], running[fingerprint])
                peaks["total"] = max(peaks["total"], sum(running.values()))
            time.sleep(chooser.random() / 2000)
            with lock:
                running[fingerprint] -= 1
            limiter.release(gate, 0.001)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(peaks[fingerprint] <= 3 for fingerprint in fingerprints)
    assert peaks["total"] <= 8
    assert limiter.stats()["limit_rejections"] == rejected[0]
    assert limiter.stats()["limit_in_flight"] == 0
    assert all(row["in_flight"] == 0 and row["limit"] == 3 for row in limiter.summary().values())


def test_an_awaiting_task_gets_the_slot_another_task_releases() -> None:
    limiter = static(1, max_wait=5.0)

    async def scenario() -> float:
        held = await limiter.acquire_async(SLOW)

        async def waiter() -> float:
            started = time.perf_counter()
            gate = await limiter.acquire_async(SLOW)
            limiter.release(gate, 0.01)
            return time.perf_counter() - started

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0.05)
        assert not task.done()
        limiter.release(held, 0.01)
        return await asyncio.wait_for(task, 5)

    waited = asyncio.run(scenario())
    assert 0.04 < waited < 5.0
    assert limiter.stats()["limit_waits"] == 1


def test_an_awaiting_task_is_rejected_after_its_bound_and_a_thread_can_wake_a_loop() -> None:
    limiter = static(1, max_wait=0.1)

    async def rejected() -> QueryRejected:
        held = await limiter.acquire_async(SLOW)
        try:
            with pytest.raises(QueryRejected) as info:
                await limiter.acquire_async(SLOW)
        finally:
            limiter.release(held, 0.01)
        return info.value

    assert asyncio.run(rejected()).waited >= 0.1

    limiter = static(1, max_wait=5.0)
    held = limiter.acquire(SLOW)
    releaser = threading.Timer(0.05, limiter.release, args=(held, 0.01))

    async def woken_by_a_thread() -> None:
        releaser.start()
        gate = await limiter.acquire_async(SLOW)
        limiter.release(gate, 0.01)

    started = time.perf_counter()
    asyncio.run(woken_by_a_thread())
    assert time.perf_counter() - started < 5.0
    releaser.join()
    assert limiter.stats()["limit_waits"] == 1


def test_a_cancelled_waiting_task_leaves_nothing_behind() -> None:
    limiter = static(1, max_wait=5.0)

    async def scenario() -> None:
        held = await limiter.acquire_async(SLOW)
        task = asyncio.create_task(limiter.acquire_async(SLOW))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        limiter.release(held, 0.01)

    asyncio.run(scenario())
    assert limiter._waiters == {}
    assert limiter.stats()["limit_in_flight"] == 0


# -- the adaptive limit ---------------------------------------------------------------------------------


def adaptive(*, pool_size: int = 10, **options: object) -> ConcurrencyLimiter:
    return ConcurrencyLimiter(LimitPolicy(LimitMode.ADAPTIVE, max_wait=0, **options), pool_size=pool_size)  # type: ignore[arg-type]


def run_batch(limiter: ConcurrencyLimiter, latency: float, *, dropped: bool = False) -> int:
    """Fill the fingerprint's current limit with calls that each took ``latency``; returns how many ran."""
    gates = []
    while True:
        try:
            gates.append(limiter.acquire(SLOW))
        except QueryRejected:
            break
    for gate in gates:
        limiter.release(gate, latency, dropped=dropped)
    return len(gates)


def test_an_adaptive_limit_starts_halfway_and_grows_while_latency_holds() -> None:
    limiter = adaptive(pool_size=10, reserve=2)  # 8 shared slots
    assert run_batch(limiter, 0.05) == 4  # half of its most, 8
    for _ in range(200):
        run_batch(limiter, 0.05)
    assert limiter.summary()[SLOW]["limit"] == 8


def test_an_adaptive_limit_does_not_grow_when_its_calls_do_not_use_it() -> None:
    limiter = adaptive(pool_size=10, reserve=2)
    for _ in range(100):  # one call at a time, each really taking its time: using 1 of 4 slots
        started = time.perf_counter()
        gate = limiter.acquire(SLOW)
        time.sleep(0.001)
        limiter.release(gate, time.perf_counter() - started)
    assert limiter.summary()[SLOW]["limit"] == 4


def test_an_adaptive_limit_shrinks_when_latency_climbs_and_on_timeouts() -> None:
    limiter = adaptive(pool_size=22, reserve=2, per_fingerprint={SLOW: 16})
    for _ in range(200):
        run_batch(limiter, 0.01)
    assert limiter.summary()[SLOW]["limit"] == 16
    for _ in range(20):
        run_batch(limiter, 0.2)  # twenty times slower: queueing somewhere
    shrunk = limiter.summary()[SLOW]["limit"]
    assert shrunk <= 12
    run_batch(limiter, 0.2, dropped=True)  # statement timeouts: a tenth off per call
    assert limiter.summary()[SLOW]["limit"] < shrunk
    for _ in range(10):
        run_batch(limiter, 0.2, dropped=True)
    assert limiter.summary()[SLOW]["limit"] == 1  # never below one


def test_a_limit_lowered_while_calls_run_admits_nobody_until_enough_finished() -> None:
    limiter = adaptive(pool_size=10, reserve=2)
    held = [limiter.acquire(SLOW) for _ in range(4)]
    limiter.release(held.pop(), 1.0, dropped=True)  # 4 * 0.9 = 3.6 -> 3, and three still run
    assert limiter.summary()[SLOW] | {"waits": 0} == {
        "limit": 3,
        "in_flight": 3,
        "waits": 0,
        "rejections": 0,
        "wait_seconds": 0.0,
    }
    with pytest.raises(QueryRejected):
        limiter.acquire(SLOW)
    for gate in held:
        limiter.release(gate, 1.0, dropped=True)
    assert limiter.summary()[SLOW]["in_flight"] == 0
    assert limiter.summary()[SLOW]["limit"] == 2  # 3.6 * 0.9**3 = 2.6
    assert run_batch(limiter, 1.0) == 2


# -- settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "setting"),
    [
        (lambda: LimitPolicy(LimitMode.STATIC, concurrency=0), "concurrency"),
        (lambda: LimitPolicy(LimitMode.STATIC, concurrency=True), "concurrency"),
        (lambda: LimitPolicy(LimitMode.STATIC), "concurrency"),
        (lambda: LimitPolicy("static", concurrency=2), "mode"),  # type: ignore[arg-type]
        (lambda: LimitPolicy(LimitMode.STATIC, per_fingerprint={"select 1": 2}), "per_fingerprint"),
        (lambda: LimitPolicy(LimitMode.STATIC, per_fingerprint={SLOW: 0}), "per_fingerprint"),
        (lambda: LimitPolicy(LimitMode.ADAPTIVE, max_wait=-0.1), "max_wait"),
        (lambda: LimitPolicy(LimitMode.ADAPTIVE, max_wait=float("nan")), "max_wait"),
        (lambda: LimitPolicy(LimitMode.ADAPTIVE, reserve=-1), "reserve"),
        (lambda: LimitPolicy(LimitMode.ADAPTIVE, adaptive_tolerance=0.5), "adaptive_tolerance"),
        (lambda: ConcurrencyLimiter(LimitPolicy(LimitMode.ADAPTIVE, reserve=10), pool_size=10), "reserve"),
        (lambda: ConcurrencyLimiter(LimitPolicy(), pool_size=10), "mode"),
    ],
)
def test_bad_limit_settings_name_the_setting(build: object, setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting) as info:
        build()  # type: ignore[operator]
    assert info.value.setting == setting


def test_limits_from_the_environment() -> None:
    assert Settings.from_env({}).limits.mode is LimitMode.OFF
    static = Settings.from_env(
        {
            "QUERYOPT_FINGERPRINT_CONCURRENCY": "4",
            "QUERYOPT_FINGERPRINT_MAX_WAIT": "250ms",
            "QUERYOPT_FINGERPRINT_RESERVE": "0",
        }
    ).limits
    assert (static.mode, static.concurrency, static.max_wait, static.reserve) == (LimitMode.STATIC, 4, 0.25, 0)
    adaptive = Settings.from_env({"QUERYOPT_FINGERPRINT_CONCURRENCY": "adaptive"}).limits
    assert (adaptive.mode, adaptive.concurrency) == (LimitMode.ADAPTIVE, None)
    assert Settings.from_env({"QUERYOPT_FINGERPRINT_MAX_WAIT": "0"}).limits.max_wait == 0.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QUERYOPT_FINGERPRINT_CONCURRENCY", "0"),
        ("QUERYOPT_FINGERPRINT_CONCURRENCY", "many"),
        ("QUERYOPT_FINGERPRINT_MAX_WAIT", "soon"),
        ("QUERYOPT_FINGERPRINT_RESERVE", "-1"),
    ],
)
def test_bad_limit_variables_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable) as info:
        Settings.from_env({variable: value})
    assert info.value.setting == variable


def test_limits_off_mean_no_limiter_and_an_unknown_pool_size_means_a_hundred_shared_slots() -> None:
    assert open_limiter(LimitPolicy(), 10) is None
    limiter = open_limiter(LimitPolicy(LimitMode.ADAPTIVE), None)
    assert limiter is not None
    assert limiter.shared_slots == 100
    assert limiter.summary() == {}
    limiter.release(limiter.acquire(SLOW), 0.01)
    assert limiter.summary()[SLOW]["limit"] == 50


def test_timeouts_and_pool_timeouts_are_signs_of_overload_other_errors_are_not() -> None:
    assert overloaded(QueryTimeout("too slow", fingerprint=SLOW, limit=1.0, elapsed=1.0))
    assert overloaded(QueryError("canceled", sqlstate="57014"))
    no_connection = QueryError("no connection")
    no_connection.__cause__ = PoolTimeout("couldn't get a connection after 10.00 sec")  # as `raise … from` sets it
    assert overloaded(no_connection)
    assert not overloaded(QueryError("duplicate key", sqlstate="23505"))
    assert not overloaded(ValueError("not a query error"))
