"""Statements that change the settings of the connection running them.

A pooled connection serves whichever call comes next, so a change that outlives
its transaction (``SET``, ``RESET``, ``SET ROLE``, ``SET SESSION AUTHORIZATION``,
``DISCARD``, ``set_config(…, false)`` anywhere in a query) would leak into other
calls — another role's rights, another tenant's row-level-security setting, a
stale role in cache keys. The optimizers refuse them; ``SET LOCAL`` and
``set_config(…, true)`` last only until their transaction ends and are fine in one.
``LISTEN``/``UNLISTEN`` subscribe the session, so they are refused too.

Transaction control belongs to the optimizer: ``BEGIN``, ``COMMIT``, ``ROLLBACK``
sent as calls would be silently meaningless on pooled autocommit connections (a
"rolled back" insert stays committed) and would end ``Optimizer.transaction()``
under its feet; ``SAVEPOINT``, ``RELEASE``, ``ROLLBACK TO`` and ``SET LOCAL``
mean something only inside a transaction.

>>> session_change_of_statement(["SET", "ROLE", "alice"]).form
'SET ROLE'
>>> session_change_of_statement(["SET", "LOCAL", "work_mem"]).outlives_transaction
False
>>> session_change_of_statement(["ROLLBACK"]).refused(in_transaction=True)
True
>>> session_change_of_statement(["SAVEPOINT", "a"]).refused(in_transaction=True)
False
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from queryopt.analysis.model import SessionChange

__all__ = ["SET_CONFIG_LOCAL", "SET_CONFIG_SESSION", "session_change_of_statement", "set_config_is_local"]

_IN_TRANSACTION = "inside Optimizer.transaction()"
_SET = SessionChange(
    "SET",
    True,
    f"put the setting in the connection string (options='-c name=value'), or use SET LOCAL {_IN_TRANSACTION}",
)
_SET_ROLE = SessionChange("SET ROLE", True, f"connect as that role, or use SET LOCAL ROLE {_IN_TRANSACTION}")
_SET_AUTHORIZATION = SessionChange(
    "SET SESSION AUTHORIZATION",
    True,
    f"connect as that user, or use SET LOCAL SESSION AUTHORIZATION {_IN_TRANSACTION}",
)
_RESET = SessionChange(
    "RESET",
    True,
    "pooled connections keep only the connection string's settings, and SET LOCAL ends with its transaction: "
    "there is nothing to reset",
)
_DISCARD = SessionChange(
    "DISCARD",
    True,
    "the pool hands out connections as the connection string made them; temporary tables and prepared "
    f"statements that must not outlive a unit of work belong {_IN_TRANSACTION} (ON COMMIT DROP)",
)
_LOCAL = SessionChange(
    "SET LOCAL", False, f"it lasts only for its transaction: run it {_IN_TRANSACTION}", in_transaction_only=True
)
_TRANSACTION = SessionChange(
    "SET TRANSACTION", False, f"it applies only to its transaction: run it {_IN_TRANSACTION}", in_transaction_only=True
)
_SAVEPOINT = SessionChange(
    "a savepoint",
    False,
    f"savepoints exist only inside a transaction: use them {_IN_TRANSACTION}",
    in_transaction_only=True,
)
_BEGIN = SessionChange(
    "BEGIN",
    False,
    "use `with optimizer.transaction() as tx:` (async: `async with`); each call outside one commits on its own",
    controls_transaction=True,
)
_END = SessionChange(
    "COMMIT/ROLLBACK",
    False,
    "leave the `with optimizer.transaction()` block to commit, raise inside it to roll back; a call outside "
    "one has already committed",
    controls_transaction=True,
)
_PREPARE = SessionChange(
    "PREPARE TRANSACTION", False, "two-phase commit needs a connection of your own", controls_transaction=True
)
_LISTEN = SessionChange("LISTEN/UNLISTEN", True, "listen on a connection of your own (psycopg's Connection.notifies())")
SET_CONFIG_SESSION = SessionChange(
    "set_config(…, false)",
    True,
    "pass true as the third argument (set_config(name, value, true)) and run it "
    f"{_IN_TRANSACTION}, or put the setting in the connection string (options='-c name=value')",
)
SET_CONFIG_LOCAL = SessionChange("set_config(…, true)", False, "")

_TRUE_WORDS = frozenset({"true", "on", "yes", "t", "y", "1"})


def session_change_of_statement(words: Sequence[str]) -> SessionChange | None:
    """The change a statement starting with ``words`` (its first tokens, comments excluded) makes, if any."""
    words = " ".join(words).split()[:3]  # sqlglot keeps the rest of an opaque command as one token
    verb = words[0].upper() if words else ""
    second = words[1].upper() if len(words) > 1 else ""
    if verb == "RESET":
        return _RESET
    if verb == "DISCARD":
        return _DISCARD
    if verb in {"LISTEN", "UNLISTEN"}:
        return _LISTEN
    if verb in {"BEGIN", "START"}:
        return _BEGIN
    if verb in {"SAVEPOINT", "RELEASE"}:
        return _SAVEPOINT
    if verb in {"COMMIT", "ROLLBACK", "END", "ABORT"}:
        if second == "PREPARED":
            return None  # finishes a prepared transaction: runs outside a transaction by design
        third = words[2].upper() if len(words) > 2 else ""
        if verb == "ROLLBACK" and (second == "TO" or (second in {"WORK", "TRANSACTION"} and third == "TO")):
            return _SAVEPOINT
        return _END
    if verb == "PREPARE" and second == "TRANSACTION":
        return _PREPARE
    if verb != "SET":
        return None
    scope = second
    if scope in {"TRANSACTION", "CONSTRAINTS"}:
        return _TRANSACTION
    if scope == "LOCAL":
        return _LOCAL
    target = words[2].upper() if scope == "SESSION" and len(words) > 2 else scope
    if target == "ROLE":
        return _SET_ROLE
    if target == "AUTHORIZATION":
        return _SET_AUTHORIZATION
    return _SET


def set_config_is_local(call: exp.Expr) -> bool:
    """Whether a ``set_config(name, value, is_local)`` call is transaction-local.

    Only a constant true is: a parameter or an expression might be false at run time.
    """
    arguments = call.expressions
    if len(arguments) < 3:
        return False
    is_local = arguments[2]
    if isinstance(is_local, exp.Boolean):
        return bool(is_local.this)
    if isinstance(is_local, exp.Literal):
        return str(is_local.this).strip().lower() in _TRUE_WORDS
    return False
