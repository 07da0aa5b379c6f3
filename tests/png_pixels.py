"""A small PNG reader for screenshot checks: 8-bit RGB/RGBA, non-interlaced, stdlib only (zlib + struct)."""

from __future__ import annotations

import struct
import zlib
from collections import Counter

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel at bit depth 8


def _add(left: bytes, right: bytes) -> bytes:
    """Byte-wise (a + b) mod 256 of two equal-length strings, without a Python loop (SWAR on big integers)."""
    size = len(left)
    a, b = int.from_bytes(left, "big"), int.from_bytes(right, "big")
    low = int.from_bytes(b"\x7f" * size, "big")
    high = int.from_bytes(b"\x80" * size, "big")
    return (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(size, "big")


def _unfilter(kind: int, line: bytes, previous: bytes, bpp: int) -> bytes:
    if kind == 0:
        return line
    if kind == 2:
        return _add(line, previous)
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            predictor = left
        elif kind == 3:
            predictor = (left + previous[i]) // 2
        else:  # 4: Paeth
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            estimate = left + up - corner
            pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
            predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
        out[i] = (out[i] + predictor) & 0xFF
    return bytes(out)


def read_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """``(width, height, rows, bytes_per_pixel)`` of an 8-bit RGB or RGBA PNG."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG file")
    position, compressed, header = len(_SIGNATURE), [], None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
    bpp = _CHANNELS[colour_type]
    raw = zlib.decompress(b"".join(compressed))
    stride = width * bpp
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        previous = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], previous, bpp)
        rows.append(previous)
    return width, height, rows, bpp


def colour_counts(data: bytes) -> Counter[str]:
    """How many pixels have each colour, keyed ``#rrggbb`` (alpha ignored)."""
    _, _, rows, bpp = read_png(data)
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(row[i : i + 3].hex() for i in range(0, len(row), bpp))
    return Counter({f"#{key}": value for key, value in counts.items()})
