"""The shared cache's entry format: every value psycopg returns comes back equal and of the same type."""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import math
import uuid
import zoneinfo
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.types.range import Range

from queryopt.cache.backends.codec import Unencodable, decode, encode

zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]).map(zoneinfo.ZoneInfo)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.decimals(allow_nan=False),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), zones, offsets)),
    st.times(timezones=st.one_of(st.none(), offsets)),
    st.timedeltas(),
    st.uuids(),
    st.ip_addresses(),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
values = st.one_of(scalars, json_values, st.lists(scalars, max_size=4))


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type all the way down, and at the same UTC offset."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (datetime.datetime, datetime.time)):
        return a == b and a.tzinfo == b.tzinfo and a.fold == b.fold and a.utcoffset() == b.utcoffset()
    return bool(a == b)


@given(st.lists(st.tuples(values, values, values), max_size=6), st.sampled_from([0, 64, 100_000]))
def test_rows_round_trip_exactly(rows: list[tuple[Any, ...]], compress_above: int) -> None:
    columns = ("a", "b", "c")
    back_columns, back_rows, rowcount = decode(encode(columns, tuple(rows), len(rows), compress_above=compress_above))
    assert back_columns == columns
    assert rowcount == len(rows)
    assert same(list(back_rows), rows)


def test_the_types_psycopg_returns() -> None:
    row = (
        decimal.Decimal("-0E+3"),
        decimal.Decimal("Infinity"),
        float("-inf"),
        -0.0,
        datetime.datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        datetime.time(1, 2, 3, tzinfo=datetime.timezone(datetime.timedelta(hours=-3, minutes=-30))),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1), "CET")),
        ipaddress.ip_interface("10.0.0.1/24"),
        ipaddress.ip_network("2001:db8::/32"),
        Range(1, 5, "[)"),
        Range(datetime.date(2020, 1, 1), None, "[)"),
        Range(empty=True),
        (1, "composite"),
        {1: "int keys", (2, 3): "tuple keys"},
        {"~": "our own marker as a key"},
        "lone surrogate \ud800",
    )
    (back,) = decode(encode(("c",) * len(row), (row,), 1))[1]
    assert same(list(back), list(row))
    assert math.copysign(1, back[3]) == -1
    assert back[6].tzname() == "CET"


def test_nan_survives() -> None:
    (back,) = decode(encode(("f", "d"), ((float("nan"), decimal.Decimal("NaN")),), 1))[1]
    assert math.isnan(back[0])
    assert back[1].is_nan()


@pytest.mark.parametrize(
    "value",
    [
        object(),
        type("Money", (str,), {})("1.00"),
        type("Level", (int,), {})(3),
        frozenset({1}),
        bytearray(b"x"),
        datetime.datetime(2020, 1, 1, tzinfo=type("Zone", (datetime.tzinfo,), {"utcoffset": lambda s, d: None})()),
        [uuid.uuid4(), object()],
    ],
    ids=lambda value: type(value).__name__,
)
def test_values_it_cannot_carry_exactly_are_refused(value: Any) -> None:
    with pytest.raises(Unencodable):
        encode(("c",), ((value,),), 1)


def test_compression_applies_above_the_threshold_only() -> None:
    rows = tuple((i, "repeated text " * 4) for i in range(100))
    assert encode(("i", "t"), rows, 100, compress_above=10**9)[:1] == b"j"
    packed = encode(("i", "t"), rows, 100, compress_above=1024)
    assert packed[:1] == b"z"
    assert len(packed) < len(encode(("i", "t"), rows, 100, compress_above=10**9)) / 4
    assert decode(packed)[1] == rows


def test_a_foreign_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="not a queryopt cache entry"):
        decode(b"\x80\x04pickle")
