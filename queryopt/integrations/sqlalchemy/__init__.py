"""queryopt for SQLAlchemy: one call instruments an engine, for Core and ORM, sync and async.

::

    engine = create_engine("postgresql+psycopg://app@db/shop")
    queryopt.instrument(engine)

Every statement the engine runs is then analysed (once per distinct text), gets
the hints of a matching :class:`~queryopt.HintRules` rule as the first thing in
its text, runs under the statement timeout, is timed and, when slow, recorded
with the same fields as ``optimize_query``. Per statement::

    select(Order).where(Order.customer_id == 7).execution_options(
        queryopt={"index_hints": ["orders_customer_idx"], "timeout": 2.0, "cache": 60}
    )

(also on a connection, a session, an ``execute()`` call or the engine; the
``queryopt`` mapping that wins SQLAlchemy's merge of execution options is used whole). ``cache`` serves and stores a
read's rows in the same :class:`~queryopt.ResultCache` as ``optimize_query``
(same keys, TTL, single-flight, invalidation); ORM objects are still built by
SQLAlchemy's loading, so identity-map semantics do not change. Writes through
the engine invalidate the tables they touched once their transaction commits,
never before and not on rollback; a transaction reading tables it has written
itself, and REPEATABLE READ/SERIALIZABLE transactions, bypass the cache.

A cancelled statement raises :class:`SQLAlchemyQueryTimeout`, which is both the
``sqlalchemy.exc.OperationalError`` existing code catches and a
:class:`queryopt.QueryTimeout`. Statements queryopt cannot analyse run untouched
and are still timed.
"""

from queryopt.integrations.sqlalchemy.errors import SQLAlchemyQueryTimeout
from queryopt.integrations.sqlalchemy.instrumentation import Instrumentation
from queryopt.integrations.sqlalchemy.options import StatementOptions
from queryopt.integrations.sqlalchemy.registry import instrument, instrumentation_of, uninstrument

__all__ = [
    "Instrumentation",
    "SQLAlchemyQueryTimeout",
    "StatementOptions",
    "instrument",
    "instrumentation_of",
    "uninstrument",
]
