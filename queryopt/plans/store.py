"""Pins and the action log in queryopt's schema (``plan_pins``, ``plan_actions``; migration 0004).

A pin is one row per fingerprint: the plan it asks for, the hint text that asks
for it, whether a person or the automatic mode set it, and (for automatic pins)
the latency of the plan it replaced. Every pin, unpin, refusal and verdict is a
row of ``plan_actions``, written in the same transaction as the change it logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from queryopt.errors import PinError

__all__ = ["Action", "ActionKind", "Pin", "PinMode", "PinStore"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PinMode(StrEnum):
    """Who set a pin: a person (``queryopt pin``) or the automatic mode."""

    MANUAL = "manual"
    AUTOMATIC = "automatic"


class ActionKind(StrEnum):
    """What the plan guard did."""

    PIN = "pin"
    UNPIN = "unpin"
    REFUSED = "refused"
    VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class Pin:
    """A stored pin: ``hints`` reproduce plan ``plan_hash`` for every call of ``fingerprint``."""

    fingerprint: str
    plan_hash: str
    hints: str
    mode: PinMode
    pinned_at: datetime
    baseline_ms: float | None = None
    """Mean latency of the plan the pin replaced (automatic pins are removed when not faster)."""
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """One line of the plan guard's log."""

    at: datetime
    fingerprint: str
    plan_hash: str | None
    action: str
    actor: str
    detail: str


class PinStore:
    """Reads and writes pins and actions over connections the caller owns (autocommit or not)."""

    def __init__(self, schema: str = "queryopt") -> None:
        if not _IDENTIFIER.match(schema):
            raise PinError(f"schema name {schema!r} is not a lower-case identifier (letters, digits, _)")
        self.schema = schema
        pins, actions = sql.Identifier(schema, "plan_pins"), sql.Identifier(schema, "plan_actions")
        self._pins = sql.SQL(
            "SELECT fingerprint, plan_hash, hints, mode, pinned_at, baseline_ms, note FROM {} ORDER BY fingerprint"
        ).format(pins)
        self._pin = sql.SQL(
            "SELECT fingerprint, plan_hash, hints, mode, pinned_at, baseline_ms, note FROM {} WHERE fingerprint = %s"
        ).format(pins)
        self._upsert = sql.SQL(
            "INSERT INTO {} (fingerprint, plan_hash, hints, mode, baseline_ms, note) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (fingerprint) DO UPDATE SET plan_hash = excluded.plan_hash, hints = excluded.hints,"
            " mode = excluded.mode, pinned_at = now(), baseline_ms = excluded.baseline_ms, note = excluded.note"
            " RETURNING fingerprint, plan_hash, hints, mode, pinned_at, baseline_ms, note"
        ).format(pins)
        self._delete = sql.SQL(
            "DELETE FROM {} WHERE fingerprint = %s"
            " RETURNING fingerprint, plan_hash, hints, mode, pinned_at, baseline_ms, note"
        ).format(pins)
        self._note = sql.SQL("UPDATE {} SET note = %s WHERE fingerprint = %s AND pinned_at = %s").format(pins)
        self._log = sql.SQL(
            "INSERT INTO {} (fingerprint, plan_hash, action, actor, detail) VALUES (%s, %s, %s, %s, %s)"
        ).format(actions)
        self._actions = sql.SQL(
            "SELECT at, fingerprint, plan_hash, action, actor, detail FROM {}"
            " WHERE at >= %s AND (%s::text IS NULL OR fingerprint = %s) ORDER BY at, id"
        ).format(actions)

    @staticmethod
    def _pin_from(row: dict[str, Any]) -> Pin:
        return Pin(
            fingerprint=row["fingerprint"],
            plan_hash=row["plan_hash"],
            hints=row["hints"],
            mode=PinMode(row["mode"]),
            pinned_at=row["pinned_at"],
            baseline_ms=row["baseline_ms"],
            note=row["note"],
        )

    def _rows(self, conn: psycopg.Connection[Any], query: sql.Composed, params: Any = None) -> list[dict[str, Any]]:
        try:
            with conn.cursor(row_factory=dict_row) as cursor:
                return cursor.execute(query, params).fetchall()
        except psycopg.errors.UndefinedTable as exc:
            raise PinError(f"{self.schema}.plan_pins does not exist: run `queryopt migrate` first") from exc

    def pins(self, conn: psycopg.Connection[Any]) -> list[Pin]:
        """Every stored pin."""
        return [self._pin_from(row) for row in self._rows(conn, self._pins)]

    def pin(self, conn: psycopg.Connection[Any], fingerprint: str) -> Pin | None:
        rows = self._rows(conn, self._pin, [fingerprint])
        return self._pin_from(rows[0]) if rows else None

    def save(self, conn: psycopg.Connection[Any], pin: Pin, *, actor: str, detail: str) -> Pin:
        """Store ``pin`` (replacing the fingerprint's earlier one) and log it, in one transaction."""
        with conn.transaction():
            [row] = self._rows(
                conn,
                self._upsert,
                [pin.fingerprint, pin.plan_hash, pin.hints, pin.mode.value, pin.baseline_ms, pin.note],
            )
            self.log(conn, pin.fingerprint, pin.plan_hash, ActionKind.PIN, actor, detail)
        return self._pin_from(row)

    def remove(self, conn: psycopg.Connection[Any], fingerprint: str, *, actor: str, detail: str) -> Pin | None:
        """Delete the fingerprint's pin and log it; ``None`` (and nothing logged) when there was none."""
        with conn.transaction():
            rows = self._rows(conn, self._delete, [fingerprint])
            if not rows:
                return None
            removed = self._pin_from(rows[0])
            self.log(conn, fingerprint, removed.plan_hash, ActionKind.UNPIN, actor, detail)
        return removed

    def mark(self, conn: psycopg.Connection[Any], pin: Pin, note: str) -> None:
        """Set the note of ``pin`` (if it is still the stored one)."""
        with conn.transaction():
            conn.execute(self._note, [note, pin.fingerprint, pin.pinned_at])

    def log(
        self,
        conn: psycopg.Connection[Any],
        fingerprint: str,
        plan_hash: str | None,
        action: ActionKind,
        actor: str,
        detail: str,
    ) -> None:
        with conn.transaction():
            conn.execute(self._log, [fingerprint, plan_hash, action.value, actor, detail])

    def actions(self, conn: psycopg.Connection[Any], since: datetime, fingerprint: str | None = None) -> list[Action]:
        """Logged actions from ``since`` on, oldest first."""
        rows = self._rows(conn, self._actions, [since, fingerprint, fingerprint])
        return [Action(r["at"], r["fingerprint"], r["plan_hash"], r["action"], r["actor"], r["detail"]) for r in rows]
