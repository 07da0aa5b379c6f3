"""SQLAlchemy: a plain engine against the same engine instrumented by queryopt.

Run: ``python -m benchmarks.sqlalchemy [--unpinned] [--quick]``. It starts its own
throwaway PostgreSQL, pins client and server to one CPU (DESIGN: unpinned runs
jump between two round-trip times), and measures every case in interleaved
rounds of the same run, on a primary-key lookup:

- Core ``text()`` on a held connection (target: instrumented ≤ 1.05x plain), with
  two yardsticks: another plain engine (the measurement's own noise) and a plain
  engine with an empty ``before``/``after_cursor_execute`` listener pair;
- ORM ``session.get`` in a fresh session (so the identity map never answers) and
  an ORM ``select`` of one row;
- the same ORM select and ``text()`` served from queryopt's result cache.

"vs plain" is the median over rounds of the case's time divided by the plain
engine's time in the same round, so drift on a busy machine cancels out; the
order of the cases rotates from round to round, so none always follows another.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Engine, String, create_engine, event, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from benchmarks._harness import Case, format_seconds, measure, pin, print_table
from queryopt import CachePolicy, RecorderPolicy, Settings
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.integrations.sqlalchemy import instrument, uninstrument

KEY = 4242
TARGET = 1.05


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    balance: Mapped[int] = mapped_column(BigInteger)


PK_TEXT = text("SELECT id, name, balance FROM accounts WHERE id = :id")
PK_TEXT_CACHED = PK_TEXT.execution_options(queryopt={"cache": True})


def _load(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, name varchar(100) NOT NULL, balance bigint NOT NULL)")
        conn.execute("INSERT INTO accounts SELECT g, 'account ' || g, g * 10 FROM generate_series(1, 100000) g")
        conn.execute("VACUUM ANALYZE")


def _nothing(*args: Any) -> None:
    """An empty cursor-execute listener: what any instrumentation pays at least."""


def _engine(url: str) -> Engine:
    return create_engine(url, pool_size=2, max_overflow=0)  # one held for Core, one for the sessions


def run(quick: bool = False, pinned: bool = True) -> list[dict[str, object]]:
    # Many short interleaved rounds: ratios are taken per round (paired), which a busy machine disturbs least.
    rounds, min_time = (5, 0.03) if quick else (25, 0.1)
    with EmbeddedPostgres(settings={"max_parallel_workers_per_gather": "0"}) as server:
        _load(server.conninfo())
        is_pinned = pinned and pin(0, server.pid)
        url = server.url(driver="psycopg")
        plain, instrumented, control, listened = _engine(url), _engine(url), _engine(url), _engine(url)
        instrument(instrumented, settings=Settings(cache=CachePolicy(ttl=3600), recorder=RecorderPolicy()))
        event.listen(listened, "before_cursor_execute", _nothing)
        event.listen(listened, "after_cursor_execute", _nothing)
        held = {
            "plain": plain.connect(),
            "queryopt": instrumented.connect(),
            "control": control.connect(),
            "listened": listened.connect(),
        }
        try:
            rows = _core_rows(held, rounds=rounds, min_time=min_time)
            rows += _orm_rows(plain, instrumented, rounds=rounds, min_time=min_time)
        finally:
            for conn in held.values():
                conn.close()
            uninstrument(instrumented)
            for engine in (plain, instrumented, control, listened):
                engine.dispose()
    for row in rows:
        row["pinned"] = "yes" if is_pinned else "no"
    return rows


def _core_rows(held: dict[str, Any], *, rounds: int, min_time: float) -> list[dict[str, object]]:
    def lookup(name: str, statement: Any = PK_TEXT) -> Callable[[], object]:
        conn = held[name]
        return lambda: conn.execute(statement, {"id": KEY}).all()

    cases = [
        Case("plain engine", lookup("plain")),
        Case("instrumented", lookup("queryopt")),
        Case("instrumented, cache hit", lookup("queryopt", PK_TEXT_CACHED)),
        Case("control: another plain engine", lookup("control")),
        Case("reference: 2 empty listeners", lookup("listened")),
    ]
    assert len({repr(case.call()) for case in cases}) == 1
    _measure_rotated(cases, rounds=rounds, min_time=min_time)
    return _rows("Core text() PK lookup", cases, {"instrumented": (f"≤ {TARGET:.2f}x plain", TARGET)})


def _orm_rows(plain: Engine, instrumented: Engine, *, rounds: int, min_time: float) -> list[dict[str, object]]:
    def get(engine: Engine) -> Callable[[], object]:
        def call() -> object:
            with Session(engine) as session:
                return session.get(Account, KEY).name  # type: ignore[union-attr]

        return call

    def selected(engine: Engine, cached: bool = False) -> Callable[[], object]:
        statement = select(Account).where(Account.id == KEY)
        if cached:
            statement = statement.execution_options(queryopt={"cache": True})

        def call() -> object:
            with Session(engine) as session:
                return session.scalars(statement).one().name

        return call

    get_cases = [Case("plain engine", get(plain)), Case("instrumented", get(instrumented))]
    select_cases = [
        Case("plain engine", selected(plain)),
        Case("instrumented", selected(instrumented)),
        Case("instrumented, cache hit", selected(instrumented, cached=True)),
    ]
    assert len({case.call() for case in get_cases + select_cases}) == 1
    _measure_rotated([*get_cases, *select_cases], rounds=rounds, min_time=min_time)
    return _rows("ORM session.get", get_cases, {}) + _rows("ORM select one", select_cases, {})


def _measure_rotated(cases: list[Case], *, rounds: int, min_time: float) -> None:
    """Interleaved rounds whose order rotates: no case always runs right after the same other one."""
    for number in range(rounds):
        shift = number % len(cases)
        measure(cases[shift:] + cases[:shift], rounds=1, min_time=min_time, warmup=50 if number == 0 else 5)


def _paired_ratio(case: Case, base: Case) -> float:
    """Median over rounds of this case's time relative to the baseline's in the same round."""
    return statistics.median(mine / theirs for mine, theirs in zip(case.samples, base.samples, strict=True))


def _rows(label: str, cases: list[Case], targets: dict[str, tuple[str, float]]) -> list[dict[str, object]]:
    base = cases[0]
    rows: list[dict[str, object]] = []
    for case in cases:
        ratio = _paired_ratio(case, base)
        target, limit = targets.get(case.name, ("baseline" if case is base else "", None))
        rows.append(
            {
                "query": label,
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs plain": f"{ratio:.3f}x",
                "target": target,
                "met": None if limit is None else ratio <= limit,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--unpinned", action="store_true", help="let client and server run on any CPU")
    args = parser.parse_args()
    print_table("SQLAlchemy: plain vs instrumented engine", run(quick=args.quick, pinned=not args.unpinned))


if __name__ == "__main__":
    main()
