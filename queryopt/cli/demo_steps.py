"""The guided demo: a small shop on a throwaway PostgreSQL, and what queryopt does to its queries.

``queryopt demo`` starts an embedded server (or uses ``--dsn``), creates its
own schema ``queryopt_demo`` with a few hundred thousand rows, applies
queryopt's migrations into the same schema, and then shows, measured live:
the cache turning repeated reads into microseconds and a write invalidating
them; an index hint turning a Seq Scan into an Index Scan; a timeout cancelling
a runaway query on the server while the application carries on; the same
through an instrumented SQLAlchemy engine; the slow-query report, also
written as an HTML file; index advice from the recorded slow queries
(HypoPG), applied and measured; and load shedding keeping a fast lookup fast
while a storm of slow exports would take every connection. Everything it created is removed at the end
unless ``--keep`` is given: HypoPG, when the demo creates the extension, lives
in the demo's schema and goes with it.
"""

from __future__ import annotations

import math
import shlex
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import ForeignKey, create_engine, desc, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queryopt.advisor import Advice, advise
from queryopt.analysis import fingerprint
from queryopt.config import CachePolicy, LimitMode, LimitPolicy, RecorderPolicy, Settings, TimeoutPolicy
from queryopt.embedded.postgres import EmbeddedPostgres
from queryopt.errors import AdvisorError, QueryRejected, QueryTimeout
from queryopt.hints import PlanNode, explain
from queryopt.integrations.sqlalchemy import instrument
from queryopt.optimizer.blocking import Optimizer
from queryopt.report import render, report
from queryopt.report.terminal import print_report
from queryopt.schema.migrator import migrate

__all__ = ["DemoOptions", "run_demo"]

SCHEMA = "queryopt_demo"

# The rows of the shop at scale 1.0: "a few hundred thousand", enough for plans to matter.
_BASE_SIZES = {"customers": 20_000, "products": 2_000, "orders": 200_000, "order_items": 400_000}

_SCHEMA_SQL = (
    """CREATE TABLE customers (
        id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, region int NOT NULL)""",
    """CREATE TABLE products (
        id int PRIMARY KEY, name text NOT NULL, category text NOT NULL, price numeric(10,2) NOT NULL)""",
    """CREATE TABLE orders (
        id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, status text NOT NULL,
        created_at timestamptz NOT NULL, shipped_at timestamptz, total numeric(12,2) NOT NULL)""",
    """CREATE TABLE order_items (
        order_id int NOT NULL REFERENCES orders, product_id int NOT NULL REFERENCES products,
        quantity int NOT NULL, price numeric(10,2) NOT NULL)""",
)
# Deterministic data: setseed before each load; ~0.01 % of shipped orders miss their ship date.
_LOAD_SQL = {
    "customers": "INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', g %% 12"
    " FROM generate_series(1, %(n)s) g",
    "products": "INSERT INTO products SELECT g, 'product ' || g, 'category ' || (g %% 25),"
    " round((5 + random() * 195)::numeric, 2) FROM generate_series(1, %(n)s) g",
    "orders": "INSERT INTO orders SELECT g, 1 + (g * 7919) %% %(customers)s, s.status,"
    " now() - (g %% 720) * interval '1 hour', CASE WHEN s.status = 'pending' THEN NULL"
    " ELSE now() - (g %% 700) * interval '1 hour' END, round((10 + random() * 490)::numeric, 2)"
    " FROM generate_series(1, %(n)s) g,"
    " LATERAL (SELECT CASE WHEN g %% 2 = 0 THEN 'pending' ELSE 'shipped' END AS status) s",
    "order_items": "INSERT INTO order_items SELECT 1 + (g %% %(orders)s), 1 + (g * 31) %% %(products)s,"
    " 1 + g %% 4, round((5 + random() * 195)::numeric, 2) FROM generate_series(1, %(n)s) g",
}
_INDEX_SQL = (
    "CREATE INDEX orders_customer_idx ON orders (customer_id)",
    "CREATE INDEX orders_status_idx ON orders (status)",
    "CREATE INDEX order_items_order_idx ON order_items (order_id)",
    "ANALYZE",
    # A nightly batch ships almost every pending order after the statistics were gathered: the planner
    # still believes half the orders are pending (a stale-statistics story every DBA knows).
    "ALTER TABLE orders SET (autovacuum_enabled = false)",
    "UPDATE orders SET status = 'shipped', shipped_at = created_at + interval '1 day'"
    " WHERE status = 'pending' AND id % 10000 <> 0",
    "VACUUM orders",
)

CATEGORY_REVENUE = (
    "SELECT p.category, count(*) AS items, sum(i.quantity * i.price) AS revenue"
    " FROM order_items i JOIN products p ON p.id = i.product_id JOIN orders o ON o.id = i.order_id"
    " WHERE o.created_at >= %s GROUP BY p.category ORDER BY revenue DESC LIMIT 5"
)
CUSTOMER_ORDERS = "SELECT id, status, total FROM orders WHERE customer_id = %s ORDER BY id"
PENDING = "SELECT o.id, o.customer_id, o.total FROM orders o WHERE o.status = 'pending'"
# order_items has no index on product_id: each lookup reads the whole table.
PRODUCT_LINES = "SELECT order_id, quantity, price FROM order_items WHERE product_id = %s"
# A lookup by key should take well under a millisecond: slower calls of it are recorded as slow.
PRODUCT_LINES_THRESHOLD = 0.001
RUNAWAY = "SELECT count(*) FROM order_items a CROSS JOIN order_items b WHERE a.quantity <> b.quantity"
# A heavy export (pg_sleep stands in for its heavy part, so the step takes the same time at every scale).
EXPORT = "SELECT pg_sleep(0.25), count(*) FROM orders WHERE customer_id = %s"
STORM_POOL = 4
STORM_THREADS = 8
STORM_SECONDS = 1.0


class _ShopBase(DeclarativeBase):
    pass


class _Customer(_ShopBase):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    region: Mapped[int]


class _Order(_ShopBase):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str]
    total: Mapped[float]


@dataclass
class DemoOptions:
    """What the demo runs against and how big its data is."""

    dsn: str | None = None
    """An existing database; the demo then works in its own schema and removes it afterwards."""
    scale: float = 1.0
    """Multiplies the number of rows (0.05 makes a quick test run)."""
    keep: bool = False
    """Leave the database (and the embedded server) running, and say how to reach it."""
    html: Path = Path("queryopt-report.html")
    """Where the HTML report is written."""
    console: Console = field(default_factory=Console)


@dataclass
class _Demo:
    options: DemoOptions
    dsn: str
    """Connection string with ``search_path`` set to the demo schema."""
    base_dsn: str
    """The same without it: the server's or the user's connection string."""
    optimizer: Optimizer
    console: Console
    findings: list[tuple[str, str]] = field(default_factory=list)


def run_demo(options: DemoOptions) -> int:
    """Run every step; returns the exit status."""
    console = options.console
    started = time.perf_counter()
    console.print(Panel.fit("[bold]queryopt demo[/bold]: faster, safer and visible PostgreSQL queries", style="cyan"))
    with ExitStack() as stack:
        base = options.dsn or _start_server(stack, options)
        dsn = _with_search_path(base, SCHEMA)
        _create_schema(base, options, console)
        if not options.keep:
            stack.callback(_drop_schema, base, console)
        migrate(base, schema=SCHEMA)
        settings = Settings(
            dsn=dsn,
            application_name="queryopt-demo",
            timeout=TimeoutPolicy(statement=30.0),
            cache=CachePolicy(ttl=300.0),
            recorder=RecorderPolicy(
                schema=SCHEMA,
                threshold=0.05,
                thresholds={fingerprint(PRODUCT_LINES): PRODUCT_LINES_THRESHOLD},
                flush_interval=0.2,
            ),
        )
        optimizer = stack.enter_context(Optimizer(settings=settings))
        demo = _Demo(options, dsn, base, optimizer, console)
        steps = (_show_cache, _show_hints, _show_timeout, _show_sqlalchemy, _show_report, _show_advice, _show_shedding)
        for step in steps:
            step(demo)
        _summary(demo, time.perf_counter() - started)
        if options.keep:
            _print_how_to_connect(console, base)
    return 0


def connect_command(dsn: str, schema: str) -> str:
    """A ``psql`` command line reaching ``dsn`` with ``schema`` first on the search path, safe to paste.

    A URL with every parameter percent-encoded holds no quote, so one pair of shell quotes is enough.

    >>> connect_command("host=/tmp/pg port=5432 user=postgres dbname=shop", "queryopt_demo")
    "psql 'postgresql://?user=postgres&dbname=shop&host=%2Ftmp%2Fpg&port=5432&options=-c%20search_path%3Dqueryopt_demo'"
    """
    params = conninfo_to_dict(dsn)
    params["options"] = f"{params.get('options') or ''} -c search_path={schema}".strip()
    query = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in params.items() if value is not None)
    return f"psql {shlex.quote(f'postgresql://?{query}')}"


def _print_how_to_connect(console: Console, base_dsn: str) -> None:
    console.print("\n[bold]--keep[/bold]: the demo data stays. Connect with:")
    # Printed whole on one line (no wrapping at the terminal's width), so it can be copied and pasted.
    console.print(f"  {connect_command(base_dsn, SCHEMA)}", soft_wrap=True, markup=False, highlight=False)
    console.print(
        f"The demo's tables and its slow-query table ({SCHEMA}.slow_queries) are in schema {SCHEMA}; "
        f"`queryopt report --schema {SCHEMA}` with the same database reports on it.",
        markup=False,
    )


# -- setting up -------------------------------------------------------------------------------------------


def _start_server(stack: ExitStack, options: DemoOptions) -> str:
    with options.console.status("starting a throwaway PostgreSQL…"):
        server = EmbeddedPostgres(keep=options.keep).start()
    if not options.keep:
        stack.callback(server.stop)
    else:
        options.console.print(
            f"embedded server pid {server.pid} keeps running in {server.socket_dir}; stop it with: kill {server.pid}"
        )
    options.console.print(f"PostgreSQL started from {server.bindir} (socket only, in {server.socket_dir})")
    return server.conninfo()


def _with_search_path(dsn: str, schema: str) -> str:
    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} -c search_path={schema}".strip())


def _sizes(scale: float) -> dict[str, int]:
    return {table: max(50, int(rows * scale)) for table, rows in _BASE_SIZES.items()}


def _create_schema(dsn: str, options: DemoOptions, console: Console) -> None:
    sizes = _sizes(options.scale)
    identifier = sql.Identifier(SCHEMA)
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rows]}"), TimeElapsedColumn()]
    with psycopg.connect(dsn, autocommit=True) as conn, Progress(*columns, console=console) as progress:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(identifier))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(identifier))
        conn.execute(sql.SQL("SET search_path = {}").format(identifier))
        for statement in _SCHEMA_SQL:
            conn.execute(statement)
        task = progress.add_task("loading the shop", total=len(_LOAD_SQL) + len(_INDEX_SQL), rows="")
        conn.execute("SELECT setseed(0.42)")
        for table, load in _LOAD_SQL.items():
            progress.update(task, description=f"loading {table}", rows=f"{sizes[table]:,} rows")
            conn.execute(load, {"n": sizes[table], **sizes})
            progress.advance(task)
        for statement in _INDEX_SQL:
            progress.update(task, description="indexing and analysing", rows="")
            conn.execute(statement)
            progress.advance(task)
        progress.update(task, description="shop loaded", rows=f"{sum(sizes.values()):,} rows")


def _drop_schema(dsn: str, console: Console) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
    console.print(f"removed schema {SCHEMA}")


def _heading(demo: _Demo, title: str, text: str) -> None:
    demo.console.print()
    demo.console.rule(f"[bold]{title}")
    demo.console.print(text)


def _timed(call: Callable[[], object], repeat: int = 1) -> float:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def _plan(nodes: tuple[PlanNode, ...]) -> str:
    return " → ".join(node.label for node in nodes)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms" if seconds >= 0.001 else f"{seconds * 1e6:,.2f} µs"


# -- the steps --------------------------------------------------------------------------------------------


def _show_cache(demo: _Demo) -> None:
    _heading(
        demo,
        "1. Result cache",
        "A revenue-by-category report asked for again and again: the first call runs, the rest are served from "
        "memory until a write to one of its tables invalidates them.",
    )
    optimizer = demo.optimizer
    window = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=30)
    miss = _timed(lambda: optimizer.query(CATEGORY_REVENUE, [window], use_cache=True))
    hit = _timed(lambda: optimizer.query(CATEGORY_REVENUE, [window], use_cache=True), repeat=200)
    direct = _timed(lambda: optimizer.query(CATEGORY_REVENUE, [window]), repeat=3)
    optimizer.execute("UPDATE products SET price = price * 1.01 WHERE id = %s", [1])
    after_write = _timed(lambda: optimizer.query(CATEGORY_REVENUE, [window], use_cache=True))
    stats = optimizer.stats()
    table = Table(title="the same query, four ways", title_justify="left")
    for column in ("call", "time", "note"):
        table.add_column(column)
    table.add_row("first call (miss)", _ms(miss), "runs on the server, result stored")
    table.add_row("repeated (hit)", _ms(hit), f"median of 200; {direct / hit:,.0f}x faster than running it")
    table.add_row("without the cache", _ms(direct), "median of 3")
    table.add_row("after UPDATE products", _ms(after_write), "the write invalidated it: runs again")
    demo.console.print(table)
    demo.console.print(f"cache: {stats['hits']} hits, {stats['misses']} misses, {stats['invalidations']} invalidations")
    demo.findings.append(("cache", f"hit {_ms(hit)} vs {_ms(direct)} uncached ({direct / hit:,.0f}x)"))


def _show_hints(demo: _Demo) -> None:
    optimizer = demo.optimizer
    mode = optimizer.hint_mode.value
    _heading(
        demo,
        "2. Index hints",
        "Pending orders, just after a batch job shipped nearly all of them: the statistics still say half the "
        "orders are pending, so the planner scans the whole table. A hint for orders_status_idx (validated "
        "against the query and the catalog first) fixes the plan until the next ANALYZE. "
        f"Hint mode on this server: [bold]{mode}[/bold]"
        + (
            " (pg_hint_plan is not loaded, so queryopt falls back to planner settings, which act on the whole "
            "statement)."
            if mode == "planner_settings"
            else "."
        ),
    )
    hints = ["orders_status_idx"]
    comparison = explain(demo.dsn, PENDING, hints=hints, analyze=True, mode=optimizer.settings.hint_mode)
    before = _timed(lambda: optimizer.query(PENDING), repeat=5)
    after = _timed(lambda: optimizer.query(PENDING, index_hints=hints), repeat=5)
    rows = optimizer.query(PENDING, index_hints=hints)
    table = Table(title=f"{len(rows)} orders found either way", title_justify="left")
    for column in ("", "plan", "estimated cost", "time (median of 5)"):
        table.add_column(column)
    table.add_row("without hint", _plan(comparison.before.nodes), f"{comparison.before.total_cost:,.0f}", _ms(before))
    table.add_row("with hint", _plan(comparison.after.nodes), f"{comparison.after.total_cost:,.0f}", _ms(after))
    demo.console.print(table)
    sent = optimizer.prepare(PENDING, hints, has_params=False)
    demo.console.print(f"sent to the server: [green]{sent.statement.text[:110]}[/green]")
    if sent.statement.planner_settings:
        demo.console.print(f"with SET LOCAL {', '.join(f'{k}={v}' for k, v in sent.statement.planner_settings)}")
    demo.findings.append(("hint", f"{_ms(before)} → {_ms(after)} ({before / after:,.1f}x)"))


def _show_timeout(demo: _Demo) -> None:
    _heading(
        demo,
        "3. Timeouts",
        "A runaway cross join with a 1 s limit: the server cancels it, so it stops using the database, "
        "and the application carries on.",
    )
    optimizer = demo.optimizer
    started = time.perf_counter()
    try:
        optimizer.query(RUNAWAY, timeout=1.0)
        outcome = "finished (unexpectedly fast)"
    except QueryTimeout as exc:
        outcome = f"QueryTimeout after {exc.elapsed or 0:.2f}s (limit {exc.limit:g}s, SQLSTATE {exc.sqlstate})"
    elapsed = time.perf_counter() - started
    with psycopg.connect(demo.dsn, autocommit=True) as conn:
        running = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
            ["%a.quantity <> b.quantity%"],
        ).fetchone()
    still = running[0] if running else 0
    demo.console.print(f"runaway query: {outcome}")
    demo.console.print(f"still running on the server: {still}")
    next_rows = optimizer.query(CUSTOMER_ORDERS, [42])
    demo.console.print(f"next query right after: {len(next_rows)} orders of customer 42 — the pool is healthy")
    demo.findings.append(("timeout", f"cancelled after {elapsed:.2f}s, {still} left running"))


def _show_sqlalchemy(demo: _Demo) -> None:
    _heading(
        demo,
        "4. SQLAlchemy",
        "The same engine an application already has, instrumented with one call: an ORM report cached through "
        "execution_options, a committed write through the session invalidating it, every statement timed.",
    )

    optimizer = demo.optimizer
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(demo.dsn))
    instrumentation = instrument(
        engine,
        settings=optimizer.settings,
        cache=optimizer.cache,
        recorder=optimizer.recorder,
        query_stats=optimizer.query_stats,
    )
    revenue = func.sum(_Order.total)
    top_regions = (
        select(_Customer.region, revenue.label("revenue"))
        .join(_Order, _Order.customer_id == _Customer.id)
        .group_by(_Customer.region)
        .order_by(desc(revenue))
        .limit(3)
        .execution_options(queryopt={"cache": 60})
    )
    try:
        with Session(engine) as session:
            first = _timed(lambda: session.execute(top_regions).all())
            hit = _timed(lambda: session.execute(top_regions).all(), repeat=50)
            session.commit()
            session.execute(update(_Order).where(_Order.id == 1).values(total=_Order.total + 1))
            session.commit()
            after_write = _timed(lambda: session.execute(top_regions).all())
            session.commit()
    finally:
        engine.dispose()
    table = Table(title="ORM: revenue of the top 3 regions", title_justify="left")
    for column in ("call", "time", "note"):
        table.add_column(column)
    table.add_row("first execute", _ms(first), "runs, result stored")
    table.add_row("again (hit)", _ms(hit), "median of 50: no round trip")
    table.add_row("after a committed UPDATE", _ms(after_write), "invalidated at COMMIT, runs again")
    demo.console.print(table)
    counters = instrumentation.stats()
    demo.console.print(f"engine: {counters['prepared']} distinct statements analysed once each")
    demo.findings.append(("SQLAlchemy", f"ORM hit {_ms(hit)} vs {_ms(first)}; invalidated by a committed write"))


def _show_report(demo: _Demo) -> None:
    _heading(demo, "5. Slow-query report", "Every slow call above was recorded without slowing it down.")
    recorder = demo.optimizer.recorder
    if recorder is not None:
        recorder.flush(10)
    result = report(demo.dsn, since=timedelta(hours=1), schema=SCHEMA, top=10)
    print_report(result, demo.console)
    demo.options.html.write_text(render(result, "html"), encoding="utf-8")
    demo.console.print(f"HTML report written to [bold]{demo.options.html.resolve()}[/bold]")
    calls = result.summary.calls
    demo.findings.append(("report", f"{calls} slow call{'' if calls == 1 else 's'} recorded"))


def _show_advice(demo: _Demo) -> None:
    _heading(
        demo,
        "6. Index advice",
        "Order lines of a product, looked up by product_id, which no index serves: each call reads the whole "
        "table. queryopt advises from the recorded slow calls, costing candidate indexes with HypoPG "
        "(hypothetical, nothing built), then the demo builds the advice and measures the lookup again.",
    )
    hypopg_schema = _hypopg_schema(demo)
    if hypopg_schema is None:
        demo.findings.append(("advice", "skipped: no HypoPG in the database"))
        return
    optimizer = demo.optimizer
    products = range(7, 12)
    before = _lookup_time(optimizer, products)
    if optimizer.recorder is not None:
        optimizer.recorder.flush(10)
    # write_cost_ms=0: the only writes these tables ever saw are the demo's own bulk load, which would
    # otherwise count as a steady write rate every index must keep up with. min_improvement=0: the runaway
    # query of step 3 dominates this tiny recorded workload, and no index helps it. pg_stat_statements
    # is left out: with --dsn it holds the user's own statements, not the demo's.
    try:
        advice = advise(
            # The advisor calls HypoPG's functions by name: its schema must be on the search path too.
            _with_search_path(demo.base_dsn, _search_path(SCHEMA, hypopg_schema)),
            schema=SCHEMA,
            since="1h",
            min_improvement=0.0,
            write_cost_ms=0.0,
            use_pg_stat_statements=False,
        )
    except AdvisorError as exc:
        demo.console.print(f"index advice skipped: {exc}", markup=False)
        demo.findings.append(("advice", "skipped: the advisor failed"))
        return
    _print_advice(demo, advice)
    lookup = fingerprint(PRODUCT_LINES)
    serving = [index for index in advice.indexes if any(q.fingerprint == lookup for q in index.queries)]
    if not serving:
        demo.console.print("no index advised for the product lookup")
        demo.findings.append(("advice", f"{len(advice.indexes)} indexes advised, none for the lookup"))
        return
    with psycopg.connect(demo.dsn, autocommit=True) as conn:
        for index in serving:
            conn.execute(index.create_statement.encode())  # the advisor's own, identifiers quoted
    after = _lookup_time(optimizer, products)
    names = ", ".join(index.name for index in serving)
    demo.console.print(
        f"built {names}: the lookup went from {_ms(before)} to {_ms(after)} "
        f"([bold]{before / after:,.0f}x[/bold], median of {len(products)})"
    )
    costs = next(q for index in serving for q in index.queries if q.fingerprint == lookup)
    demo.findings.append((
        "advice",
        f"lookup {_ms(before)} → {_ms(after)} ({before / after:,.0f}x); "
        f"est. cost {costs.cost_before:,.0f} → {costs.cost_after:,.0f}",
    ))  # fmt: skip


def _lookup_time(optimizer: Optimizer, products: range) -> float:
    """Median time of the product lookup, one call per product."""
    return statistics.median(_timed(partial(optimizer.query, PRODUCT_LINES, [product])) for product in products)


def _hypopg_schema(demo: _Demo) -> str | None:
    """Where HypoPG is: already in the database, or created in the demo's schema (dropped with it)."""
    with psycopg.connect(demo.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'hypopg'"
        ).fetchone()
        if row is not None:
            return str(row[0])
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'").fetchone() is None:
            major = conn.info.server_version // 10000
            demo.console.print(
                f"index advice skipped: the server lacks HypoPG (install postgresql-{major}-hypopg, "
                "then CREATE EXTENSION hypopg)",
                markup=False,
            )
            return None
        try:
            # In the demo's schema, so that dropping the schema at the end removes the extension too.
            conn.execute(sql.SQL("CREATE EXTENSION hypopg SCHEMA {}").format(sql.Identifier(SCHEMA)))
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            demo.console.print(
                f"index advice skipped: CREATE EXTENSION hypopg failed ({reason}); a superuser can run it",
                markup=False,
            )
            return None
    return SCHEMA


def _search_path(*schemas: str) -> str:
    r"""A ``search_path`` value for libpq's ``options``: names quoted, spaces and backslashes escaped.

    >>> _search_path("queryopt_demo", "my ext")
    'queryopt_demo,"my\\ ext"'
    """
    names = []
    for schema in dict.fromkeys(schemas):
        name = schema if schema.isidentifier() and schema == schema.lower() else '"' + schema.replace('"', '""') + '"'
        names.append(name.replace("\\", "\\\\").replace(" ", "\\ "))
    return ",".join(names)


def _print_advice(demo: _Demo, advice: Advice) -> None:
    demo.console.print(
        f"{advice.fingerprints} recorded statements, {advice.plans} plans asked of the planner: "
        f"{len(advice.indexes)} index{'es' if len(advice.indexes) != 1 else ''} advised"
    )
    for index in advice.indexes:
        demo.console.print(f"[green]{index.create_statement}[/green]")
    if not advice.indexes:
        return
    table = Table(title="estimated by the planner with HypoPG's hypothetical index", title_justify="left")
    table.add_column("statement", no_wrap=True, overflow="ellipsis", max_width=36)
    table.add_column("calls", justify="right")
    table.add_column("est. cost", justify="right")
    table.add_column("index size", justify="right")
    for index in advice.indexes:
        for effect in index.queries:
            table.add_row(
                effect.normalized_sql,
                str(effect.calls),
                f"{effect.cost_before:,.0f} → {effect.cost_after:,.0f}",
                f"{index.size_bytes / 1024 / 1024:,.1f} MB",
            )
    demo.console.print(table)


@dataclass
class _Storm:
    lookups: list[float] = field(default_factory=list)
    """Seconds each customer-orders lookup took (its wait for a connection included)."""
    exports: int = 0
    rejected: int = 0

    @property
    def p99(self) -> float:
        ordered = sorted(self.lookups)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else math.nan


def _show_shedding(demo: _Demo) -> None:
    _heading(
        demo,
        "7. Load shedding",
        f"{STORM_THREADS} threads run a heavy export (0.25 s each) beside an order lookup, on a pool of "
        f"{STORM_POOL} connections. Without limits the exports hold every connection and the lookup queues "
        "behind them; with a limit of 2 calls per query shape, the exports over it are turned away "
        "(QueryRejected) and the lookup keeps its speed.",
    )
    settings = demo.optimizer.settings
    policy = LimitPolicy(mode=LimitMode.STATIC, concurrency=2, max_wait=0.05, reserve=1)
    cases = {"no limits": settings, "2 per query shape": replace(settings, limits=policy)}
    storms = {}
    with demo.console.status("running the two storms…"):
        for name, case_settings in cases.items():
            with Optimizer(settings=case_settings, min_size=STORM_POOL, max_size=STORM_POOL) as optimizer:
                storms[name] = _storm(optimizer)
    table = Table(title="order lookups during a storm of exports", title_justify="left")
    for column in ("limits", "lookups", "lookup p99", "exports run", "exports turned away"):
        table.add_column(column, justify="left" if column == "limits" else "right")
    for name, storm in storms.items():
        table.add_row(name, str(len(storm.lookups)), _ms(storm.p99), str(storm.exports), str(storm.rejected))
    demo.console.print(table)
    before, after = storms["no limits"], storms["2 per query shape"]
    demo.findings.append(("load shedding", f"lookup p99 {_ms(before.p99)} → {_ms(after.p99)} with 2 exports at a time"))


def _storm(optimizer: Optimizer) -> _Storm:
    """:data:`STORM_THREADS` threads of :data:`EXPORT` and one of lookups, for :data:`STORM_SECONDS`."""
    storm = _Storm()
    stop = threading.Event()
    for customer in range(1, STORM_POOL + 1):  # every connection has run the lookup once
        optimizer.query(CUSTOMER_ORDERS, [customer])

    counted = threading.Lock()

    def export(customer: int) -> None:
        while not stop.is_set():
            try:
                optimizer.query(EXPORT, [customer])
            except QueryRejected:
                with counted:
                    storm.rejected += 1
                stop.wait(0.05)  # an application would back off, or tell its caller to come back later
                continue
            with counted:
                storm.exports += 1

    def lookups() -> None:
        customer = 0
        while not stop.is_set():
            customer = customer % 1000 + 1
            started = time.perf_counter()
            optimizer.query(CUSTOMER_ORDERS, [customer])
            storm.lookups.append(time.perf_counter() - started)
            stop.wait(0.005)

    workers = [threading.Thread(target=export, args=(n,), daemon=True) for n in range(1, STORM_THREADS + 1)]
    for worker in workers:
        worker.start()
    stop.wait(0.1)  # the exports take what they can first
    looker = threading.Thread(target=lookups, daemon=True)
    looker.start()
    stop.wait(STORM_SECONDS)
    stop.set()
    for thread in [looker, *workers]:
        thread.join(5)
    return storm


def _summary(demo: _Demo, elapsed: float) -> None:
    demo.console.print()
    table = Table(title=f"demo finished in {elapsed:.1f}s", title_justify="left")
    table.add_column("what")
    table.add_column("measured")
    for what, measured in demo.findings:
        table.add_row(what, measured)
    demo.console.print(table)
