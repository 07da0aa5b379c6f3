"""Query results as bytes that any process, on any host, can read back exactly.

The format is JSON with type tags, compressed with zlib above a size threshold.
Why not pickle: an entry in a shared store is data another host wrote, and
unpickling data runs code; an HMAC key would make it safe only as long as no
process holding the key is compromised and every host runs the same classes.
JSON decoding runs no code, and the C encoder keeps it fast.

JSON's own types (``str``, ``int``, ``float`` including NaN and ±Infinity,
``bool``, ``None``, lists and string-keyed dicts) are written as they are. Every
other type psycopg returns is written as ``{"~": [tag, payload]}``:

====  ==============================================  ==========================
tag   type                                            payload
====  ==============================================  ==========================
D     ``Decimal`` (NaN, Infinity, exponents kept)     ``str(value)``
b     ``bytes``                                       base64
d     ``date``                                        ISO text
t     ``datetime``                                    ISO text, fold, zone
T     ``time``                                        ISO text, fold, zone
i     ``timedelta``                                   days, seconds, microseconds
u     ``UUID``                                        hex
ip    ``ipaddress`` addresses, interfaces, networks   kind, text
r     ``psycopg.types.range.Range``                   lower, upper, bounds / empty
(     ``tuple``                                       items
m     a dict with non-string keys, or a ``"~"`` key   [key, value] pairs
====  ==============================================  ==========================

A zone is ``null`` (naive), ``["z", key]`` for a ``ZoneInfo`` or ``["o",
seconds, name]`` for a fixed-offset ``timezone``. Values of any other type
(subclasses included, since their type would be lost) raise :class:`Unencodable`
and the result is simply not stored.

>>> from decimal import Decimal
>>> rows = ((1, Decimal("1.50"), b"\\x00"),)
>>> decode(encode(("id", "price", "raw"), rows, 1)) == (("id", "price", "raw"), rows, 1)
True
"""

from __future__ import annotations

import base64
import datetime
import decimal
import ipaddress
import json
import uuid
import zlib
from collections.abc import Callable
from typing import Any, Final
from zoneinfo import ZoneInfo

from psycopg.types.range import Range

__all__ = ["FORMAT_VERSION", "Unencodable", "decode", "encode"]

FORMAT_VERSION: Final = 1
"""Part of every key: a new format never reads entries written in an old one."""
MARK: Final = "~"
"""The key of a tagged value's one-entry object."""
_PLAIN: Final = b"j"
_COMPRESSED: Final = b"z"
_NATIVE: Final[frozenset[type]] = frozenset({str, int, float, bool, type(None)})
_IP_KINDS: Final[dict[type, str]] = {
    ipaddress.IPv4Address: "a4",
    ipaddress.IPv6Address: "a6",
    ipaddress.IPv4Interface: "i4",
    ipaddress.IPv6Interface: "i6",
    ipaddress.IPv4Network: "n4",
    ipaddress.IPv6Network: "n6",
}
_IP_TYPES: Final[dict[str, Callable[[str], Any]]] = {kind: cls for cls, kind in _IP_KINDS.items()}


class Unencodable(Exception):
    """A value the format cannot carry exactly (the result is then not stored)."""


def _zone(tz: datetime.tzinfo | None) -> Any:
    if tz is None:
        return None
    if type(tz) is ZoneInfo:
        return ["z", tz.key]
    if type(tz) is datetime.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default_name = datetime.timezone(offset).tzname(None)
        return ["o", offset.total_seconds(), None if name == default_name else name]
    raise Unencodable(f"a time zone of type {type(tz).__name__} cannot be stored")


def _unzone(zone: Any) -> datetime.tzinfo | None:
    if zone is None:
        return None
    if zone[0] == "z":
        return ZoneInfo(zone[1])
    offset = datetime.timedelta(seconds=zone[1])
    return datetime.timezone(offset, zone[2]) if zone[2] is not None else datetime.timezone(offset)


def _tagged(tag: str, payload: Any) -> dict[str, Any]:
    return {MARK: [tag, payload]}


def _encode_datetime(value: datetime.datetime) -> dict[str, Any]:
    return _tagged("t", [value.replace(tzinfo=None, fold=0).isoformat(), value.fold, _zone(value.tzinfo)])


def _encode_time(value: datetime.time) -> dict[str, Any]:
    return _tagged("T", [value.replace(tzinfo=None, fold=0).isoformat(), value.fold, _zone(value.tzinfo)])


def _encode_range(value: Range[Any]) -> dict[str, Any]:
    if type(value) is not Range:
        raise Unencodable(f"a range of type {type(value).__name__} cannot be stored")
    if value.isempty:
        return _tagged("r", None)
    return _tagged("r", [_value(value.lower), _value(value.upper), value.bounds])


def _encode_ip(value: Any) -> dict[str, Any]:
    return _tagged("ip", [_IP_KINDS[type(value)], str(value)])


_ENCODERS: Final[dict[type, Callable[[Any], Any]]] = {
    decimal.Decimal: lambda v: _tagged("D", str(v)),
    bytes: lambda v: _tagged("b", base64.b64encode(v).decode("ascii")),
    datetime.date: lambda v: _tagged("d", v.isoformat()),
    datetime.datetime: _encode_datetime,
    datetime.time: _encode_time,
    datetime.timedelta: lambda v: _tagged("i", [v.days, v.seconds, v.microseconds]),
    uuid.UUID: lambda v: _tagged("u", v.hex),
    tuple: lambda v: _tagged("(", [_value(item) for item in v]),
    Range: _encode_range,
    **dict.fromkeys(_IP_KINDS, _encode_ip),
}


def _value(value: Any) -> Any:
    kind = type(value)
    if kind in _NATIVE:
        return value
    if kind is list:
        return [_value(item) for item in value]
    if kind is dict:
        if MARK not in value and all(type(key) is str for key in value):
            return {key: _value(item) for key, item in value.items()}
        return _tagged("m", [[_value(key), _value(item)] for key, item in value.items()])
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise Unencodable(f"a value of type {kind.__module__}.{kind.__qualname__} cannot be stored")
    return encoder(value)


def _row(row: tuple[Any, ...]) -> Any:
    native = _NATIVE
    for value in row:
        if type(value) not in native:
            return [_value(value) for value in row]
    return row  # the common case: json writes the tuple as a list, untouched


_DECODERS: Final[dict[str, Callable[[Any], Any]]] = {
    "D": decimal.Decimal,
    "b": base64.b64decode,
    "d": datetime.date.fromisoformat,
    "t": lambda p: datetime.datetime.fromisoformat(p[0]).replace(fold=p[1], tzinfo=_unzone(p[2])),
    "T": lambda p: datetime.time.fromisoformat(p[0]).replace(fold=p[1], tzinfo=_unzone(p[2])),
    "i": lambda p: datetime.timedelta(days=p[0], seconds=p[1], microseconds=p[2]),
    "u": lambda p: uuid.UUID(hex=p),
    "(": tuple,
    "r": lambda p: Range(empty=True) if p is None else Range(p[0], p[1], p[2]),
    "ip": lambda p: _IP_TYPES[p[0]](p[1]),
    "m": dict,
}


def _object(mapping: dict[str, Any]) -> Any:
    tagged = mapping.get(MARK)
    if tagged is None or len(mapping) != 1:
        return mapping
    return _DECODERS[tagged[0]](tagged[1])


def encode(
    columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...], rowcount: int, *, compress_above: int = 1024
) -> bytes:
    """``columns``, ``rows`` and ``rowcount`` as bytes; zlib-compressed when longer than ``compress_above``.

    Raises :class:`Unencodable` for a value the format cannot carry exactly.
    """
    document = [list(columns), rowcount, [_row(row) for row in rows]]
    try:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # an unexpected type slipped into a list or dict
        raise Unencodable(str(exc)) from None
    body = text.encode("utf-8", "surrogatepass")
    if len(body) > compress_above:
        return _COMPRESSED + zlib.compress(body, 1)
    return _PLAIN + body


_TAGGED_DECODER: Final = json.JSONDecoder(object_hook=_object)
_JSON_DECODER: Final = json.JSONDecoder()


def decode(payload: bytes, start: int = 0) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...], int]:
    """The ``(columns, rows, rowcount)`` that :func:`encode` wrote at ``payload[start:]``."""
    flag = payload[start : start + 1]
    if flag == _PLAIN:
        body = payload[start + 1 :]
    elif flag == _COMPRESSED:
        body = zlib.decompress(memoryview(payload)[start + 1 :])
    else:
        raise ValueError(f"not a queryopt cache entry (format flag {flag!r})")
    text = body.decode("utf-8", "surrogatepass")
    # Without a "{" there is no object to look at: the hook-free decoder is twice as fast.
    columns, rowcount, rows = (_TAGGED_DECODER if "{" in text else _JSON_DECODER).decode(text)
    return tuple(columns), tuple(map(tuple, rows)), rowcount
