"""queryopt.instrument(engine) against a real server: an ORM application unchanged, hints at the head of what the
server receives, slow-query recording, timeouts, the result cache and its invalidation (sync engines)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import queryopt
from queryopt import (
    CachePolicy,
    ConfigurationError,
    HintError,
    HintMode,
    HintRules,
    QueryTimeout,
    RecorderPolicy,
    Settings,
    SlowQueryRecorder,
)
from queryopt.integrations.sqlalchemy import SQLAlchemyQueryTimeout, instrument, instrumentation_of, uninstrument
from queryopt.schema.migrator import migrate
from tests.db.integrations.sqlalchemy_app import (
    BOOKS_OF_AUTHOR_INDEX,
    Author,
    Book,
    drop_sync,
    run_sync,
    seed_sync,
    sync_engine,
)

QUIET = Settings(recorder=RecorderPolicy(enabled=False), cache=CachePolicy(ttl=60))
CACHE = {"queryopt": {"cache": True}}


@pytest.fixture
def plain(dsn: str) -> Iterator[Engine]:
    engine = sync_engine(dsn)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(plain: Engine) -> Engine:
    seed_sync(plain)
    return plain


@pytest.fixture
def engine(dsn: str, seeded: Engine) -> Iterator[Engine]:
    engine = sync_engine(dsn)
    instrument(engine, settings=QUIET)
    yield engine
    uninstrument(engine)
    engine.dispose()


def stats(engine: Engine) -> dict[str, int]:
    instrumentation = instrumentation_of(engine)
    assert instrumentation is not None
    return instrumentation.stats()


def backend_query(admin: psycopg.Connection[Any], pid: int) -> str:
    """What the server last received on the backend ``pid`` (pg_stat_activity keeps it while idle)."""
    row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None
    return str(row[0])


def session_pid(session: Session) -> int:
    return int(session.connection().connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]


def compiled(engine: Engine, statement: Any) -> str:
    return str(statement.compile(dialect=engine.dialect))


# -- the application runs unchanged ---------------------------------------------------------------------


@pytest.mark.parametrize("cache_everything", [False, True], ids=["defaults", "every-read-cached"])
def test_orm_application_gives_identical_results(dsn: str, plain: Engine, cache_everything: bool) -> None:
    expected = run_sync(plain)
    drop_sync(plain)
    engine = sync_engine(dsn)
    instrumentation = instrument(engine, settings=QUIET)
    try:
        app_engine = engine.execution_options(**CACHE) if cache_everything else engine
        assert run_sync(app_engine) == expected
        summary = instrumentation.metrics_summary()
        assert len(summary) > 10  # every distinct statement was observed
        counters = instrumentation.stats()
        assert counters["unanalysable"] == 0
        if cache_everything:
            assert counters["hits"] >= 2  # the authors read twice at the end
            assert counters["stale"] >= 1  # the per-country totals, read again after the books changed
            assert counters["bypasses"] > 0  # the writes, and reads of tables a transaction wrote itself
    finally:
        uninstrument(engine)
        engine.dispose()
    assert expected[-3][0][1] == "author 1"  # the rolled-back rename did not survive


# -- hints ---------------------------------------------------------------------------------------------


def test_hint_rules_reach_the_server_first_for_orm_and_core(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    orm_query = select(Book).where(Book.author_id == 3).order_by(Book.id)
    core_query = text("SELECT b.title FROM books b WHERE b.author_id = :author ORDER BY b.id")
    engine = sync_engine(dsn)
    rules = HintRules()
    rules.add(compiled(engine, orm_query), [BOOKS_OF_AUTHOR_INDEX])
    rules.add(compiled(engine, core_query), [BOOKS_OF_AUTHOR_INDEX])
    settings = Settings(recorder=RecorderPolicy(enabled=False), hint_mode=HintMode.PG_HINT_PLAN)
    instrument(engine, settings=settings, hint_rules=rules)

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def trace(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> Any:
        return "/* app=bookshop */ " + statement, parameters  # a tracing comment placed first, like sqlcommenter

    try:
        with Session(engine) as session:
            assert [book.title for book in session.scalars(orm_query)] == ["book 3.1", "book 3.2", "book 3.3"]
            received = backend_query(conn, session_pid(session))
        assert received.startswith(f"/*+ IndexScan(books {BOOKS_OF_AUTHOR_INDEX}) */")
        sent = compiled(engine, orm_query).replace("%(author_id_1)s", "$1")  # psycopg binds on the server
        assert received.endswith("/* app=bookshop */ " + sent)

        with engine.connect() as connection:
            assert connection.execute(core_query, {"author": 2}).scalars().all() == ["book 2.1", "book 2.2", "book 2.3"]
            pid = connection.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            received = backend_query(conn, pid)
        assert received.startswith(f"/*+ IndexScan(b {BOOKS_OF_AUTHOR_INDEX}) */")
        assert "/* app=bookshop */ SELECT b.title FROM books b" in received
    finally:
        uninstrument(engine)
        engine.dispose()


def test_a_rule_matches_expanded_in_lists_of_any_length(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    engine = sync_engine(dsn)
    example = select(Book.title).where(Book.author_id.in_([1, 2])).order_by(Book.id)
    rules = HintRules()
    rules.add(
        str(example.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})),
        ["ix_books_author_id"],
    )
    instrument(
        engine,
        settings=Settings(recorder=RecorderPolicy(enabled=False), hint_mode=HintMode.PG_HINT_PLAN),
        hint_rules=rules,
    )
    try:
        with Session(engine) as session:
            titles = session.scalars(select(Book.title).where(Book.author_id.in_([4, 5, 6])).order_by(Book.id)).all()
            assert len(titles) == 9
            received = backend_query(conn, session_pid(session))
        assert received.startswith(f"/*+ IndexScan(books {BOOKS_OF_AUTHOR_INDEX}) */")
        assert "IN ($1::INTEGER, $2::INTEGER, $3::INTEGER)" in received
    finally:
        uninstrument(engine)
        engine.dispose()


def test_index_hints_option_reaches_the_server_and_bad_ones_are_refused(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    engine = sync_engine(dsn)
    instrument(engine, settings=Settings(recorder=RecorderPolicy(enabled=False), hint_mode=HintMode.PG_HINT_PLAN))
    query = select(Book.title).where(Book.author_id == 4).order_by(Book.id)
    try:
        with Session(engine) as session:
            hinted = query.execution_options(queryopt={"index_hints": [BOOKS_OF_AUTHOR_INDEX]})
            assert session.scalars(hinted).all() == ["book 4.1", "book 4.2", "book 4.3"]
            assert backend_query(conn, session_pid(session)).startswith(
                f"/*+ IndexScan(books {BOOKS_OF_AUTHOR_INDEX}) */ SELECT books.title"
            )
            with pytest.raises(HintError, match="no_such_idx"):
                session.execute(query.execution_options(queryopt={"index_hints": ["no_such_idx"]}))
    finally:
        uninstrument(engine)
        engine.dispose()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
def test_planner_settings_fallback_applies_to_the_statement_only(dsn: str, seeded: Engine, autocommit: bool) -> None:
    engine = sync_engine(dsn)
    query = text("SELECT current_setting('enable_seqscan') FROM books WHERE author_id = :author LIMIT 1")
    rules = HintRules()
    rules.add(compiled(engine, query), [BOOKS_OF_AUTHOR_INDEX])
    settings = Settings(recorder=RecorderPolicy(enabled=False), hint_mode=HintMode.PLANNER_SETTINGS)
    instrument(engine, settings=settings, hint_rules=rules)
    try:
        with engine.connect() as connection:
            if autocommit:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            assert connection.execute(query, {"author": 1}).scalar() == "off"
            assert connection.execute(text("SHOW enable_seqscan")).scalar() == "on"
    finally:
        uninstrument(engine)
        engine.dispose()


@pytest.mark.pg_hint_plan
def test_pg_hint_plan_uses_the_rule_hint_on_an_orm_query(dsn: str, seeded: Engine) -> None:
    engine = sync_engine(dsn)
    query = select(Book.title).where(Book.author_id == 5)
    rules = HintRules()
    rules.add(compiled(engine, query), [BOOKS_OF_AUTHOR_INDEX])
    instrumentation = instrument(engine, settings=QUIET, hint_rules=rules)
    notices: list[str] = []
    try:
        with Session(engine) as session:
            dbapi = session.connection().connection.dbapi_connection
            dbapi.add_notice_handler(lambda diagnostic: notices.append(str(diagnostic.message_primary)))  # type: ignore[union-attr]
            session.execute(text("SET LOCAL pg_hint_plan.debug_print = on"))
            session.execute(text("SET LOCAL pg_hint_plan.message_level = notice"))
            assert len(session.scalars(query).all()) == 3
        assert instrumentation.hint_mode is HintMode.PG_HINT_PLAN
        report = "\n".join(notices)
        used = report.split("used hint:")[1].split("not used hint:")[0]
        assert f"IndexScan(books {BOOKS_OF_AUTHOR_INDEX})" in used
    finally:
        uninstrument(engine)
        engine.dispose()


# -- recording and timeouts -------------------------------------------------------------------------------


def test_slow_orm_queries_appear_in_the_slow_query_table(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    migrate(dsn)
    recorder = SlowQueryRecorder(dsn, RecorderPolicy(threshold=0.1, flush_interval=0.05, capture_plans=False))
    engine = sync_engine(dsn)
    instrument(engine, settings=QUIET, recorder=recorder)
    slow = select(Author.name, func.pg_sleep(0.15)).where(Author.id == 1)
    try:
        with Session(engine) as session:
            assert session.scalars(select(Author.name).where(Author.id == 2)).one() == "author 2"
            assert session.execute(slow).one() == ("author 1", "")  # pg_sleep returns void
        assert recorder.flush(10)
    finally:
        uninstrument(engine)
        engine.dispose()
        recorder.close()
    rows = conn.execute(
        "SELECT kind, sql_text, duration_ms, row_count, timed_out, cache_outcome, database_name, source"
        " FROM queryopt.slow_queries"
    ).fetchall()
    assert len(rows) == 1
    kind, sql_text, duration_ms, row_count, timed_out, cache_outcome, database_name, source = rows[0]
    assert (kind, sql_text, row_count, timed_out, cache_outcome) == ("select", compiled(engine, slow), 1, False, "off")
    assert duration_ms >= 150
    assert (database_name, source) == (conn.info.dbname, "sqlalchemy")


def test_timeout_cancels_on_the_server_and_is_caught_either_way(engine: Engine, conn: psycopg.Connection[Any]) -> None:
    slow = select(Author.name, func.pg_sleep(5), text("'runaway-marker'")).where(Author.id == 1)
    limited = slow.execution_options(queryopt={"timeout": 0.2})
    with Session(engine) as session:
        with pytest.raises(OperationalError) as caught:
            session.execute(limited)
        error = caught.value
        assert isinstance(error, QueryTimeout)
        assert isinstance(error.orig, psycopg.errors.QueryCanceled)
        assert (error.limit, error.sqlstate) == (0.2, "57014")
        assert 0.2 <= (error.elapsed or 0) < 2
        assert error.fingerprint == queryopt.analyze(compiled(engine, slow)).fingerprint
        copy = pickle.loads(pickle.dumps(error))
        assert isinstance(copy, SQLAlchemyQueryTimeout)
        assert (copy.limit, copy.fingerprint) == (error.limit, error.fingerprint)
        session.rollback()
        with pytest.raises(QueryTimeout):
            session.execute(limited)
        session.rollback()
        active = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%runaway-marker%' AND state = 'active'"
            " AND pid <> pg_backend_pid()"
        ).fetchone()
        assert active == (0,)
        # The connection is usable, and back to its default limit: longer than 0.2 s is fine again.
        assert session.execute(select(Author.name, func.pg_sleep(0.3)).where(Author.id == 1)).one()[0] == "author 1"
        assert session.scalar(text("SHOW statement_timeout")) == "30s"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        with pytest.raises(QueryTimeout):
            connection.execute(text("SELECT pg_sleep(5)").execution_options(queryopt={"timeout": 0.2}))
        assert connection.execute(text("SELECT 1")).scalar() == 1  # no rollback needed in autocommit
    assert stats(engine)["timeouts"] == 3


@pytest.mark.pg_stat_statements
def test_an_unchanged_timeout_costs_no_round_trip(dsn: str, seeded: Engine, conn: psycopg.Connection[Any]) -> None:
    engine = sync_engine(dsn)
    instrument(engine, settings=QUIET)
    conn.execute("SELECT pg_stat_statements_reset()")
    query = select(Author.name).where(Author.id == 1).execution_options(queryopt={"timeout": 0.5})
    try:
        with Session(engine) as session:
            for _ in range(5):
                assert session.scalar(query) == "author 1"
        row = conn.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s"
            " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            ["%set_config(%"],
        ).fetchone()
    finally:
        uninstrument(engine)
        engine.dispose()
    assert row == (2,)  # the connection's default once, then 0.5 s once for five statements


# -- the result cache -------------------------------------------------------------------------------------


def test_a_cached_orm_query_is_served_without_a_round_trip(engine: Engine, conn: psycopg.Connection[Any]) -> None:
    query = select(Author).where(Author.country == "de").order_by(Author.id).execution_options(**CACHE)
    with Session(engine) as session:
        first = [(author.id, author.name) for author in session.scalars(query)]
    assert first == [(1, "author 1"), (5, "author 5")]
    conn.execute("ALTER TABLE authors RENAME TO authors_away")  # a round trip would now fail
    try:
        with Session(engine) as session:
            authors = session.scalars(query).all()
            assert [(author.id, author.name) for author in authors] == first
            assert session.get(Author, 5) is authors[1]  # real ORM objects, in this session's identity map
    finally:
        conn.execute("ALTER TABLE authors_away RENAME TO authors")
    counters = stats(engine)
    assert (counters["hits"], counters["misses"]) == (1, 1)


def test_a_committed_write_invalidates_and_a_rolled_back_one_does_not(engine: Engine) -> None:
    query = select(Author.name).where(Author.id == 2).execution_options(**CACHE)
    with Session(engine) as session:
        assert session.scalar(query) == "author 2"
    with Session(engine) as session:
        author = session.get(Author, 2)
        assert author is not None
        author.name = "rolled back"
        session.flush()
        assert session.scalar(query) == "rolled back"  # its own write: the cache is bypassed
        session.rollback()
    with Session(engine) as session:
        assert session.scalar(query) == "author 2"
        assert stats(engine)["hits"] == 1
        session.execute(update(Author).where(Author.id == 2).values(name="committed"))
        session.commit()
    with Session(engine) as session:
        assert session.scalar(query) == "committed"
    counters = stats(engine)
    assert (counters["hits"], counters["misses"]) == (1, 2)


def test_a_write_invalidates_only_the_tables_it_touched(engine: Engine) -> None:
    authors = select(Author.name).where(Author.id == 3).execution_options(**CACHE)
    books = select(func.count(Book.id)).where(Book.author_id == 3).execution_options(**CACHE)
    with Session(engine) as session:
        assert (session.scalar(authors), session.scalar(books)) == ("author 3", 3)
        session.add(Book(author_id=3, title="new", year=2024, price=1))
        session.commit()
    with Session(engine) as session:
        assert (session.scalar(authors), session.scalar(books)) == ("author 3", 4)
    counters = stats(engine)
    assert (counters["hits"], counters["misses"]) == (1, 3)


def test_invalidation_waits_for_the_commit(engine: Engine) -> None:
    query = select(Author.name).where(Author.id == 4).execution_options(**CACHE)
    writer = Session(engine)
    try:
        writer.execute(update(Author).where(Author.id == 4).values(name="renamed"))
        writer.flush()
        with Session(engine) as reader:  # another transaction: the write is not visible yet
            assert reader.scalar(query) == "author 4"
            assert reader.scalar(query) == "author 4"
        assert stats(engine)["hits"] == 1
        writer.commit()
    finally:
        writer.close()
    with Session(engine) as reader:
        assert reader.scalar(query) == "renamed"


def test_savepoint_rollbacks_keep_timeouts_enforced_and_invalidation_safe(engine: Engine) -> None:
    query = select(Author.name).where(Author.id == 3).execution_options(**CACHE)
    limited = select(func.pg_sleep(1)).execution_options(queryopt={"timeout": 0.1})
    with Session(engine) as session:
        assert session.scalar(query) == "author 3"
        nested = session.begin_nested()
        session.execute(update(Author).where(Author.id == 3).values(name="inside a savepoint"))
        with pytest.raises(QueryTimeout):
            session.execute(limited)
        nested.rollback()  # also undoes the limit set inside it
        nested = session.begin_nested()
        with pytest.raises(QueryTimeout):
            session.execute(limited)  # so it is set again, not assumed
        nested.rollback()
        session.commit()
    with Session(engine) as session:
        assert session.scalar(query) == "author 3"
    assert stats(engine)["timeouts"] == 2


def test_core_selects_and_text_are_cached_and_autocommit_writes_invalidate_at_once(engine: Engine) -> None:
    by_id = text("SELECT name FROM authors WHERE id = :id").execution_options(**CACHE)
    by_country = select(Author.id).where(Author.country == "jp").order_by(Author.id).execution_options(**CACHE)
    with engine.connect() as connection:
        assert connection.execute(by_id, {"id": 6}).scalar() == "author 6"
        assert connection.execute(by_id, {"id": 7}).scalar() == "author 7"  # other parameters: another entry
        assert connection.execute(by_country).scalars().all() == [2, 6]
        assert connection.execute(by_id, {"id": 6}).scalar() == "author 6"
        assert connection.execute(by_country).scalars().all() == [2, 6]
    assert stats(engine)["hits"] == 2
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("UPDATE authors SET name = 'six' WHERE id = 6"))
        assert connection.execute(by_id, {"id": 6}).scalar() == "six"
    with engine.begin() as connection:
        connection.execute(text("UPDATE authors SET country = 'jp' WHERE id = 1"))
    with engine.connect() as connection:
        assert connection.execute(by_country).scalars().all() == [1, 2, 6]


def test_options_come_from_the_session_the_connection_or_the_call(engine: Engine) -> None:
    query = select(Author.name).where(Author.id == 5)
    with Session(engine, execution_options=CACHE) as session:  # session-wide
        assert session.scalar(query) == "author 5"
    with Session(engine) as session:  # one call
        assert session.scalar(query, execution_options=CACHE) == "author 5"
    with engine.connect().execution_options(**CACHE) as connection:  # connection-wide
        assert connection.execute(query).scalar() == "author 5"
        with pytest.raises(QueryTimeout):  # SQLAlchemy: a call's options win over the connection's
            connection.execute(select(func.pg_sleep(2)), execution_options={"queryopt": {"timeout": 0.1}})
    counters = stats(engine)
    assert (counters["misses"], counters["hits"]) == (1, 2)


def test_uncacheable_reads_and_snapshot_transactions_bypass_the_cache(engine: Engine) -> None:
    with Session(engine) as session:
        now = select(func.now()).execution_options(**CACHE)
        assert session.scalar(now) is not None
        assert session.scalar(now) is not None
    query = select(Author.name).where(Author.id == 8).execution_options(**CACHE)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        assert connection.execute(query).scalar() == "author 8"
        assert connection.execute(query).scalar() == "author 8"
    counters = stats(engine)
    assert (counters["hits"], counters["misses"], counters["bypasses"]) == (0, 0, 4)


def test_concurrent_misses_run_once(engine: Engine) -> None:
    query = select(Author.name).where(Author.id == 1).execution_options(**CACHE)
    results: list[str | None] = []
    with engine.connect() as locker:
        locker.execute(text("LOCK TABLE authors IN ACCESS EXCLUSIVE MODE"))
        threads = [threading.Thread(target=lambda: results.append(_scalar(engine, query))) for _ in range(3)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.3)  # the first miss now waits for the lock, the others for the first
        locker.rollback()
    for thread in threads:
        thread.join(10)
    assert results == ["author 1"] * 3
    counters = stats(engine)
    assert (counters["misses"], counters["singleflight_joins"]) == (1, 2)


def _scalar(engine: Engine, query: Any) -> Any:
    with Session(engine) as session:
        return session.scalar(query)


# -- the rest of the contract ------------------------------------------------------------------------------


def test_statements_queryopt_cannot_analyse_run_untouched_and_are_timed(engine: Engine) -> None:
    with engine.connect() as connection:
        result = connection.exec_driver_sql("SELECT 41; SELECT 42", execution_options={"no_parameters": True})
        assert result.scalar() in (41, 42)
    instrumentation = instrumentation_of(engine)
    assert instrumentation is not None
    assert instrumentation.stats()["unanalysable"] == 1
    assert any(entry["count"] == 1 for entry in instrumentation.metrics_summary().values())


def test_an_applications_error_listener_sees_the_timeout_and_the_driver_error(engine: Engine) -> None:
    seen: list[tuple[BaseException, BaseException | None]] = []

    def listener(ctx: Any) -> None:
        seen.append((ctx.original_exception, getattr(ctx.original_exception, "orig", None)))

    event.listen(engine, "handle_error", listener)
    try:
        limited = text("SELECT pg_sleep(5)").execution_options(queryopt={"timeout": 0.1})
        with engine.connect() as connection, pytest.raises(SQLAlchemyQueryTimeout) as caught:
            connection.execute(limited)
    finally:
        event.remove(engine, "handle_error", listener)
    assert len(seen) == 1
    original, orig = seen[0]
    assert original is caught.value
    assert isinstance(orig, psycopg.errors.QueryCanceled)
    assert "[SQL: SELECT pg_sleep(5)]" in str(caught.value)  # SQLAlchemy's own message


def test_instrumenting_twice_is_harmless_and_uninstrument_restores_plain_behaviour(engine: Engine) -> None:
    first = instrumentation_of(engine)
    assert instrument(engine) is first
    assert first is not None
    query = text("SELECT 1 AS one")
    with engine.connect() as connection:
        connection.execute(query)
    fingerprint = queryopt.analyze("SELECT 1 AS one").fingerprint
    assert first.metrics_summary()[fingerprint]["count"] == 1  # one observation, not two
    wrapped = {"do_execute", "do_executemany", "do_execute_no_params"}
    assert wrapped <= set(vars(engine.dialect)), "queryopt wraps this engine's dialect methods"
    # No dialect listener: one would make SQLAlchemy walk its listener lists on every statement.
    assert not engine.dialect._has_events
    assert uninstrument(engine)
    assert not wrapped & set(vars(engine.dialect)), "uninstrument put the dialect's own methods back"
    assert not uninstrument(engine)
    assert instrumentation_of(engine) is None
    with engine.connect() as connection:  # a new connection: the pool was disposed
        connection.execute(query)
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "0"
        limited = text("SELECT pg_sleep(0.3)").execution_options(queryopt={"timeout": 0.1})
        connection.execute(limited)  # the option means nothing to a plain engine
    assert first.metrics_summary()[fingerprint]["count"] == 1
    instrument(engine, settings=QUIET)  # the fixture uninstruments again


def test_bad_options_and_engines_are_clear_errors(engine: Engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(ConfigurationError, match="unknown queryopt option 'timout'"):
            connection.execute(text("SELECT 1").execution_options(queryopt={"timout": 1}))
        connection.rollback()
        with pytest.raises(ConfigurationError, match="timeout must be a number of seconds > 0"):
            connection.execute(text("SELECT 1").execution_options(queryopt={"timeout": 0}))
        connection.rollback()
        with pytest.raises(ConfigurationError, match="cache must be True, False or a TTL"):
            connection.execute(text("SELECT 1").execution_options(queryopt={"cache": -1}))
    with pytest.raises(ConfigurationError, match="Engine or AsyncEngine"):
        instrument("postgresql://")  # type: ignore[arg-type]
    from sqlalchemy import create_engine

    sqlite = create_engine("sqlite://")
    with pytest.raises(ConfigurationError, match="psycopg 3"):
        instrument(sqlite)
    sqlite.dispose()


def test_without_a_recorder_one_is_opened_on_the_engine_database_and_closed_by_uninstrument(
    dsn: str, seeded: Engine, conn: psycopg.Connection[Any]
) -> None:
    migrate(dsn)
    policy = RecorderPolicy(threshold=0.1, flush_interval=0.05, capture_params=True)
    engine = sync_engine(dsn)
    instrumentation = instrument(engine, settings=Settings(recorder=policy))
    slow = select(Book.title, func.pg_sleep(0.15)).where(Book.author_id == 2, Book.year > 1990).limit(1)
    try:
        with Session(engine) as session:
            assert session.execute(slow).one()[0] == "book 2.1"
        assert instrumentation.recorder is not None
        assert instrumentation.recorder.flush(10)
    finally:
        uninstrument(engine)  # closes the recorder it opened
        engine.dispose()
    row = conn.execute("SELECT params, plan IS NOT NULL FROM queryopt.slow_queries").fetchone()
    assert row is not None
    params, has_plan = row
    assert params == {"pg_sleep_2": 0.15, "author_id_1": 2, "year_1": 1990, "param_1": 1}  # named, as bound
    assert has_plan  # EXPLAIN of the SQLAlchemy text with its named parameters
