"""The SQLAlchemy integration's pure parts: lazy import, statement options, per-connection bookkeeping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from queryopt import ConfigurationError
from queryopt.integrations.sqlalchemy import StatementOptions
from queryopt.integrations.sqlalchemy.links import ConnectionLink
from queryopt.integrations.sqlalchemy.options import statement_options
from queryopt.optimizer.execution import assume_statement_timeout, known_statement_timeout


def test_importing_queryopt_does_not_import_sqlalchemy_until_instrument_is_used() -> None:
    code = (
        "import sys, queryopt\n"
        "assert 'sqlalchemy' not in sys.modules, 'imported too early'\n"
        "from queryopt import instrument, uninstrument\n"
        "from queryopt.integrations.sqlalchemy import instrument as real\n"
        "assert instrument is real and 'sqlalchemy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_statement_options_accept_a_mapping_or_an_instance() -> None:
    options = statement_options({"timeout": 1.5, "cache": True, "index_hints": ["orders_idx"]})
    assert (options.timeout_ms, options.ttl, options.cache, options.index_hints) == (1500, None, True, ["orders_idx"])
    built = StatementOptions(cache=30)
    assert statement_options(built) is built
    assert built.ttl == 30.0
    assert statement_options({"cache": None}).cache is False
    assert statement_options({}).timeout_ms is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"timeout": -1}, "timeout must be a number of seconds > 0"),
        ({"timeout": True}, "timeout must be a number of seconds > 0"),
        ({"cache": 0}, "cache must be True, False or a TTL"),
        ({"cache": "60"}, "cache must be True, False or a TTL"),
        ({"hints": []}, "unknown queryopt option 'hints'"),
        (["cache"], "must be a dict or StatementOptions"),
    ],
)
def test_bad_statement_options_name_the_problem(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        statement_options(value)


class FakeConnection:
    """Stands in for a psycopg connection: the link only reads and writes the remembered timeout."""


def test_a_rollback_puts_back_the_committed_timeout_and_drops_the_writes() -> None:
    conn = FakeConnection()
    link = ConnectionLink(owner=None, conn=conn)  # type: ignore[arg-type]
    link.committed_timeout = 30_000
    assume_statement_timeout(conn, 200)  # set inside the transaction
    link.wrote(("orders",))
    assert link.pending_overlaps(frozenset({"orders", "customers"}))
    assert not link.pending_overlaps(frozenset({"customers"}))
    link.rolled_back()
    assert known_statement_timeout(conn) == 30_000
    assert not link.has_pending


def test_a_commit_keeps_the_timeout_and_hands_over_the_writes() -> None:
    conn = FakeConnection()
    link = ConnectionLink(owner=None, conn=conn)  # type: ignore[arg-type]
    assume_statement_timeout(conn, 500)
    link.wrote(("orders",))
    link.wrote(None)
    assert link.pending_overlaps(frozenset({"anything"}))
    assert link.take_pending() == (True, ("orders",))
    link.committed()
    assert link.committed_timeout == 500
    link.savepoint_rolled_back()
    assert known_statement_timeout(conn) == 500  # nothing was set since the commit
    link.timeout_set(200, autocommit=False)
    assume_statement_timeout(conn, 200)
    link.savepoint_rolled_back()
    assert known_statement_timeout(conn) is None  # set in the transaction: unknown until set again
