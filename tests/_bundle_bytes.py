"""Bytes of a TensorFlow tensor bundle's index, built by hand for the tests that need bad ones.

One helper for every test that writes or edits an ``.index`` file (a LevelDB table):
entries TensorFlow would never write (a garbage ``BundleEntryProto``, keys out of order, a
big-endian header) carried by valid block checksums, so that the entry parser, not the
checksum, meets them. It follows ``tensorflow/core/lib/io/table_builder.cc``, written
independently of ``ckptwidgets.sources.bundle`` (whose reader these bytes test): one data
block, every entry a restart point (no shared key prefixes), an empty metaindex block, the
48-byte footer. Well-formed tables come from TensorFlow itself or from the package's
``BundleWriter``.

- :func:`varint` encodes, :func:`read_varint` decodes a LevelDB varint64.
- :func:`masked_crc32c`: the checksum after every block (and every tensor's bytes).
- :func:`block`, :func:`table`, :func:`write_table`: ``(key, value)`` pairs to a table.
- :func:`block_handles`, :func:`reseal`: where an intact table's blocks are, and every
  block's checksum recomputed after bytes inside it changed.
"""
from __future__ import annotations

import pathlib
import struct

import crc32c as _crc32c

__all__ = ["MAGIC", "varint", "read_varint", "masked_crc32c", "block", "table", "write_table", "block_handles",
           "reseal"]

#: The last 8 bytes of every table (``kTableMagicNumber``).
MAGIC = 0xDB4775248B80FB57


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf, pos: int) -> tuple[int, int]:
    """``(value, position after it)`` of the varint at ``buf[pos]``."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def masked_crc32c(data: bytes) -> int:
    """crc32c of ``data``, masked as TensorFlow stores it (``crc32c::Mask``)."""
    crc = _crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def block(items) -> bytes:
    """``(key, value)`` byte pairs as one block, every entry a restart point."""
    body = bytearray()
    restarts = []
    for key, value in items:
        restarts.append(len(body))
        body += varint(0) + varint(len(key)) + varint(len(value)) + key + value
    restarts = restarts or [0]
    return bytes(body + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts)))


def table(items, compress=None) -> bytes:
    """``items`` (``(key, value)`` byte pairs, in the order given) as a table with valid checksums.

    ``compress``: a function giving a block's snappy form; the data block is then stored with
    compression type 1, its checksum over the compressed bytes, as TensorFlow stores it.
    """
    out = bytearray()

    def put(contents: bytes, kind: int = 0) -> bytes:
        offset = len(out)
        stored = contents if kind == 0 else compress(contents)
        trailer = stored + bytes([kind])
        out.extend(trailer + struct.pack("<I", masked_crc32c(trailer)))
        return varint(offset) + varint(len(stored))

    data = put(block(items), 1 if compress else 0)
    meta = put(block([]))
    last = items[-1][0] if items else b""
    index = put(block([(last + b"\xff", data)]))  # a key after every key of the data block
    footer = meta + index
    out.extend(footer + b"\x00" * (40 - len(footer)) + struct.pack("<Q", MAGIC))
    return bytes(out)


def write_table(path, items, compress=None) -> None:
    """Write :func:`table` of ``items`` to ``path`` (an ``.index`` file)."""
    pathlib.Path(path).write_bytes(table(items, compress))


def block_handles(buf: bytes) -> list[tuple[int, int]]:
    """``(offset, size)`` of the index block and every data block of an intact table."""
    footer = buf[len(buf) - 48 :]
    _, pos = read_varint(footer, 0)
    _, pos = read_varint(footer, pos)
    index_offset, pos = read_varint(footer, pos)
    index_size, _ = read_varint(footer, pos)
    handles = [(index_offset, index_size)]
    index = buf[index_offset : index_offset + index_size]
    (restarts,) = struct.unpack_from("<I", index, len(index) - 4)
    limit = len(index) - 4 - 4 * restarts
    pos = 0
    while pos < limit:
        _shared, pos = read_varint(index, pos)
        unshared, pos = read_varint(index, pos)
        length, pos = read_varint(index, pos)
        pos += unshared
        offset, after = read_varint(index, pos)
        size, _ = read_varint(index, after)
        handles.append((offset, size))
        pos += length
    return handles


def reseal(buf: bytearray, handles) -> None:
    """Recompute, in place, the checksum after each block of ``handles`` (the layout of the
    intact table): damage inside the blocks then reaches the parser."""
    for offset, size in handles:
        end = offset + size
        if end + 5 <= len(buf):
            buf[end + 1 : end + 5] = struct.pack("<I", masked_crc32c(bytes(buf[offset : end + 1])))
