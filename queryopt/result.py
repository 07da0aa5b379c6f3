"""What one statement returned, as plain immutable data.

On the hot path a result is built from the driver's libpq result: its rows are
already Python tuples, but its column names are read and decoded only when
someone asks for them (``execute(...).columns``, ``as_dicts()``, the cache
storing it). A caller that only wants rows, as :meth:`queryopt.Optimizer.query`
does, never pays for the names.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["QueryResult", "described_result", "query_result", "settled"]

Rows = tuple[tuple[Any, ...], ...]

DESCRIBE_EAGERLY_ABOVE = 1000
"""Rows past which a result's names are decoded at once: it then holds no libpq result alongside its rows."""


class Described(Protocol):
    """A libpq result as psycopg exposes it (``psycopg.pq.abc.PGresult``): what names its columns."""

    @property
    def nfields(self) -> int: ...

    def fname(self, column_number: int) -> bytes | None: ...


class QueryResult:
    """Rows as tuples (immutable, so a cached result can be shared), their column names, the row count.

    Read-only: ``columns``, ``rows`` and ``rowcount`` cannot be assigned. Equal results compare and hash equal;
    a result pickles and copies as its three values.
    """

    __slots__ = ("_columns", "_described", "_encoding", "_rowcount", "_rows")

    if TYPE_CHECKING:

        @property
        def rows(self) -> Rows: ...

        @property
        def rowcount(self) -> int:
            """Rows returned, or rows affected by a write (-1 when the server does not say)."""

    else:
        rows = property(attrgetter("_rows"), doc="The rows, as tuples.")
        rowcount = property(
            attrgetter("_rowcount"), doc="Rows returned, or rows affected by a write (-1 when the server does not say)."
        )

    def __init__(self, columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...], rowcount: int) -> None:
        self._columns: tuple[str, ...] | None = tuple(columns)
        self._described: Described | None = None
        self._encoding = ""
        self._rows = rows
        self._rowcount = rowcount

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in order (empty for a statement that returns no rows)."""
        columns = self._columns
        return columns if columns is not None else self._decode()

    def _decode(self) -> tuple[str, ...]:
        described = self._described
        if described is None:  # no columns at all, or another thread decoded them meanwhile (names first)
            columns = self._columns
            if columns is None:
                columns = self._columns = ()
            return columns
        columns = decode_names(described, self._encoding)
        self._columns = columns
        self._described = None  # the libpq result is freed once nothing else holds it
        return columns

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as fresh dictionaries keyed by column name."""
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in self._rows]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueryResult):
            return NotImplemented
        return (self._rowcount, self._rows, self.columns) == (other._rowcount, other._rows, other.columns)

    def __hash__(self) -> int:
        return hash((self.columns, self._rows, self._rowcount))

    def __repr__(self) -> str:
        return f"QueryResult(columns={self.columns!r}, rows={self._rows!r}, rowcount={self._rowcount!r})"

    def __reduce__(self) -> tuple[type[QueryResult], tuple[tuple[str, ...], Rows, int]]:
        return QueryResult, (self.columns, self._rows, self._rowcount)


_new = object.__new__


def settled(result: QueryResult) -> QueryResult:
    """``result`` with its column names decoded and no libpq result held: what a cache stores."""
    if result._columns is None:
        result._decode()
    return result


def query_result(columns: tuple[str, ...], rows: Rows, rowcount: int) -> QueryResult:
    """``QueryResult(columns, rows, rowcount)`` without the checks of ``__init__`` (``columns`` is a tuple)."""
    result: QueryResult = _new(QueryResult)
    result._columns = columns
    result._described = None
    result._encoding = ""
    result._rows = rows
    result._rowcount = rowcount
    return result


def described_result(described: Described | None, encoding: str, rows: Rows, rowcount: int) -> QueryResult:
    """A result whose column names are read from ``described`` (decoded with the connection's Python
    ``encoding``) when first asked for: the hot path's constructor. ``described`` must not change meanwhile
    (a libpq result never does)."""
    result: QueryResult = _new(QueryResult)
    result._rows = rows
    result._rowcount = rowcount
    result._encoding = encoding
    if len(rows) > DESCRIBE_EAGERLY_ABOVE and described is not None:
        result._columns = decode_names(described, encoding)
        result._described = None
    else:
        result._columns = None
        result._described = described
    return result


_DECODED_NAMES: dict[tuple[str, tuple[bytes | None, ...]], tuple[str, ...]] = {}


def decode_names(described: Described, encoding: str) -> tuple[str, ...]:
    """A result's column names, decoded once per distinct set of names and encoding."""
    count = described.nfields
    if not count:
        return ()
    raw = (encoding, tuple(map(described.fname, range(count))))
    names = _DECODED_NAMES.get(raw)
    if names is None:
        names = tuple((name or b"").decode(encoding or "utf-8") for name in raw[1])
        if len(_DECODED_NAMES) >= 4096:
            _DECODED_NAMES.clear()
        _DECODED_NAMES[raw] = names
    return names
