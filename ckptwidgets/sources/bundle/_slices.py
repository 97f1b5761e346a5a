"""A partitioned variable's slices in a tensor bundle: their keys, and how they tile the tensor.

Private helper of :mod:`ckptwidgets.sources.bundle`. TF1's ``partitioner=`` variables are
saved as slices of one full key (the same layout as any tensor a sharding policy splits).
The full key's index entry lists the slices as extents (``TensorSliceProto``: per
dimension a start and a length, no length for "all of it"); each slice's bytes are under a
binary key, ``EncodeTensorNameSlice(name, slice)``
(``tensorflow/core/util/saved_tensor_slice_util.cc``): TF's ``OrderedCode`` of 0, the
name, the rank, then every extent's start and length (-1 for a full extent) as signed
numbers (``tensorflow/core/lib/strings/ordered_code.cc``).

:func:`slice_key` / :func:`parse_slice_key` (the OrderedCode), :func:`bounds` and
:func:`check_cover` (the slices must tile the full shape exactly), :func:`assemble`, and
:func:`format_box`, a slice as numpy indexes it. Where one *variable* sits in its full
tensor when restoring is planning's (:mod:`ckptwidgets._planning.partitions`).

Example
-------
>>> key = slice_key(b"w", ((4, 3), (0, None)))
>>> key
b'\\x00w\\x00\\x01\\x01\\x02\\x84\\x83\\x80\\x7f'
>>> parse_slice_key(key)
(b'w', ((4, 3), (0, None)))
>>> format_box(bounds(((4, 3), (0, None)), (10, 3)))
'[4:7, 0:3]'
"""
from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["slice_key", "parse_slice_key", "bounds", "check_cover", "assemble", "format_box"]

_ESCAPES = re.compile(rb"[\x00\xff]")
_ESCAPED = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}
_INT64 = 1 << 63
# Rows of the pairwise overlap test done at once (rows x slices x rank booleans).
_OVERLAP_ROWS = 256


# --- OrderedCode, as EncodeTensorNameSlice uses it -----------------------------------------


def _number(value: int) -> bytes:
    """``OrderedCode::WriteNumIncreasing``: a length byte, then big-endian bytes without leading zeros."""
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(data)]) + data


def _signed(value: int) -> bytes:
    """``OrderedCode::WriteSignedNumIncreasing``.

    ``n`` bytes hold ``7n - 1`` payload bits after ``n`` header bits (ones for a number
    >= 0, zeros for a negative one, in two's complement) and a delimiter of the other value.
    """
    magnitude = ~value if value < 0 else value
    length = magnitude.bit_length() // 7 + 1  # TF's kBitsToLength table
    header = ((1 << length) - 1) << (7 * length)  # the top `length` bits of `length` bytes
    raw = (value & ((1 << (8 * length)) - 1)) ^ header
    return raw.to_bytes(length, "big")


def slice_key(name: bytes, extents) -> bytes:
    """The index key of one slice of tensor ``name``: TF's ``EncodeTensorNameSlice``.

    ``extents`` is a ``(start, length)`` pair per dimension, length None for a full extent
    (as a ``TensorSliceProto`` without a length).
    """
    parts = [b"\x00", _ESCAPES.sub(lambda m: _ESCAPED[m.group()], name), b"\x00\x01", _number(len(extents))]
    for start, length in extents:
        parts.append(_signed(start))
        parts.append(_signed(-1 if length is None else length))
    return b"".join(parts)


def _read_string(key: bytes, pos: int):
    # OrderedCode::ReadString: 00 ff -> 00, ff 00 -> ff, 00 01 ends it; anything else is damage.
    out = bytearray()
    while pos + 1 < len(key):
        byte = key[pos]
        if byte not in (0x00, 0xFF):
            out.append(byte)
            pos += 1
            continue
        pair = key[pos : pos + 2]
        if pair == b"\x00\x01":
            return bytes(out), pos + 2
        if pair not in (b"\x00\xff", b"\xff\x00"):
            return None, pos
        out.append(byte)
        pos += 2
    return None, pos


def _read_signed(key: bytes, pos: int):
    if pos >= len(key):
        return None, pos
    negative = not key[pos] & 0x80
    # The length is the count of leading header bits (ones, or zeros for a negative number).
    head = int.from_bytes(key[pos : pos + 2].ljust(2, b"\x00" if not negative else b"\xff"), "big")
    if negative:
        head ^= 0xFFFF
    length = 16 - (~head & 0xFFFF).bit_length()
    if length > 10 or pos + length > len(key):
        return None, pos
    raw = int.from_bytes(key[pos : pos + length], "big") ^ (((1 << length) - 1) << (7 * length))
    value = raw - (1 << (8 * length)) if negative else raw
    # Only the encoding TF writes (the shortest, within int64) is accepted.
    if not -_INT64 <= value < _INT64 or _signed(value) != key[pos : pos + length]:
        return None, pos
    return value, pos + length


def parse_slice_key(key: bytes):
    """``(name, extents)`` of a slice key (as :func:`slice_key` takes them), or None when ``key``
    is not one (TF's ``DecodeTensorNameSlice``, strict: only what TF writes)."""
    if key[:1] != b"\x00":
        return None
    name, pos = _read_string(key, 1)
    if name is None or pos >= len(key):
        return None
    size = key[pos]
    if size > 8 or pos + 1 + size > len(key):
        return None
    rank = int.from_bytes(key[pos + 1 : pos + 1 + size], "big")
    pos += 1 + size
    if not 0 < rank < 255:  # a scalar is never sliced; TensorShape allows 254 dimensions
        return None
    extents = []
    for _ in range(rank):
        start, pos = _read_signed(key, pos)
        if start is None:
            return None
        length, pos = _read_signed(key, pos)
        if length is None:
            return None
        extents.append((start, None if length < 0 else length))
    return (name, tuple(extents)) if pos == len(key) else None


# --- geometry: slices tiling a full shape ------------------------------------------------


def bounds(extents, shape) -> tuple | None:
    """``((start, stop), ...)`` of a slice in a tensor of ``shape``, or None when it does not fit."""
    if len(extents) != len(shape):
        return None
    out = []
    for (start, length), size in zip(extents, shape):
        if length is None:
            if start != 0:  # TF's full extent starts at 0; any other start is damage
                return None
            length = size
        stop = start + length
        if start < 0 or length < 0 or stop > size:
            return None
        out.append((start, stop))
    return tuple(out)


def format_box(box) -> str:
    """A slice as numpy would index it: ``[4:7, 0:3]``."""
    return "[" + ", ".join(f"{a}:{b}" for a, b in box) + "]"


def check_cover(shape, boxes) -> str | None:
    """None when ``boxes`` (from :func:`bounds`) tile ``shape`` exactly, else what is wrong.

    In-bounds boxes that do not overlap and whose sizes add up to the full size cover it:
    the overlap test is pairwise, vectorised (a variable has tens of parts, rarely thousands).
    """
    total = math.prod(shape)
    sizes = [math.prod(b - a for a, b in box) for box in boxes]
    if boxes and total:
        starts = np.array([[a for a, _ in box] for box in boxes], dtype=np.int64)  # dims < 2**63
        stops = np.array([[b for _, b in box] for box in boxes], dtype=np.int64)
        empty = np.array([s == 0 for s in sizes])
        for row in range(0, len(boxes), _OVERLAP_ROWS):
            rows = slice(row, row + _OVERLAP_ROWS)
            before = starts[rows, None, :] < stops[None, :, :]  # [row, other, dim]
            after = starts[None, :, :] < stops[rows, None, :]
            hits = np.all(before & after, axis=2)
            hits &= ~empty[None, :] & ~empty[rows, None]
            for i, j in zip(*np.nonzero(hits)):
                if row + i != j:
                    first, second = sorted((row + i, j))
                    return f"slices {format_box(boxes[first])} and {format_box(boxes[second])} overlap"
    covered = sum(sizes)
    if covered != total:
        return f"its slices cover {covered} of its {total} elements"
    return None


def assemble(shape, pieces) -> np.ndarray:
    """The full tensor from ``[(box, array)]`` that :func:`check_cover` accepted."""
    dtype = pieces[0][1].dtype if pieces else np.float32
    out = np.empty(tuple(shape), dtype)
    for box, array in pieces:
        out[tuple(slice(a, b) for a, b in box)] = array
    return out
