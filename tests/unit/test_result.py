"""QueryResult: immutable plain data, whatever way it was built."""

from __future__ import annotations

import copy
import pickle

import pytest

from queryopt.result import DESCRIBE_EAGERLY_ABOVE, QueryResult, described_result, settled


class Described:
    """A libpq result's column names, as psycopg's ``PGresult`` gives them (bytes in the client encoding)."""

    def __init__(self, *names: bytes) -> None:
        self.names = names
        self.reads = 0

    @property
    def nfields(self) -> int:
        return len(self.names)

    def fname(self, column_number: int) -> bytes | None:
        self.reads += 1
        return self.names[column_number]


def test_a_result_cannot_be_changed_once_built() -> None:
    result = QueryResult(("id",), ((1,),), 1)
    for name, value in [("rows", ()), ("columns", ()), ("rowcount", 0)]:
        with pytest.raises(AttributeError):
            setattr(result, name, value)
    with pytest.raises(AttributeError):
        result.extra = 1  # type: ignore[attr-defined]
    assert (result.columns, result.rows, result.rowcount) == (("id",), ((1,),), 1)


def test_equal_results_compare_and_hash_equal_however_built() -> None:
    built = QueryResult(("id", "name"), ((1, "a"),), 1)
    described = described_result(Described(b"id", b"name"), "utf-8", ((1, "a"),), 1)
    assert built == described
    assert hash(built) == hash(described)
    assert built != QueryResult(("id", "label"), ((1, "a"),), 1)
    assert built != QueryResult(("id", "name"), ((2, "a"),), 1)
    assert repr(described) == "QueryResult(columns=('id', 'name'), rows=((1, 'a'),), rowcount=1)"


def test_names_are_read_from_the_driver_only_when_asked_for() -> None:
    source = Described(b"id", b"caf\xe9")
    result = described_result(source, "iso-8859-1", ((1, 2),), 1)
    assert source.reads == 0  # a caller that only reads rows never pays for the names
    assert result.rows == ((1, 2),)
    assert result.columns == ("id", "café")
    assert result.as_dicts() == [{"id": 1, "café": 2}]
    reads = source.reads
    assert result.columns == ("id", "café")
    assert source.reads == reads


def test_a_statement_without_columns_has_none() -> None:
    assert described_result(None, "utf-8", (), 3).columns == ()
    assert described_result(Described(), "utf-8", (), 3).columns == ()


def test_a_large_result_decodes_its_names_at_once() -> None:
    source = Described(b"n")
    rows = tuple((n,) for n in range(DESCRIBE_EAGERLY_ABOVE + 1))
    result = described_result(source, "utf-8", rows, len(rows))
    assert source.reads == 1  # it holds no libpq result beside its many rows
    assert result.columns == ("n",)


def test_pickles_and_copies_as_plain_values() -> None:
    result = described_result(Described(b"id", b"tags"), "utf-8", ((1, ["x"]),), 1)
    for twin in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result), copy.copy(result)):
        assert type(twin) is QueryResult
        assert twin == result
        assert twin.columns == ("id", "tags")
    deep = copy.deepcopy(result)
    deep.rows[0][1].append("y")
    assert result.rows[0][1] == ["x"]


def test_settled_results_keep_their_names_only() -> None:
    source = Described(b"id")
    result = settled(described_result(source, "utf-8", ((1,),), 1))
    assert source.reads == 1
    assert result.columns == ("id",)
