"""The table format of a checkpoint's ``.index`` file (LevelDB's SSTable), read in Python.

Private helper of :mod:`ckptwidgets.reader`; :mod:`ckptwidgets.sources.bundle._index` reads the entries
stored in the table. The layout, as TensorFlow's ``table_builder.cc`` writes it:

- data blocks: key/value pairs in key order, each key stored as "bytes shared with the
  previous key, the new bytes" (three varints, then the bytes), and at the end of the
  block an array of restart offsets and its length (uint32);
- after every block a 5-byte trailer: compression type (0 none, 1 snappy), then the masked
  crc32c of the block's stored bytes and that type byte (little-endian uint32);
- an index block: one pair per data block, value = the block's handle (offset, size);
- a 48-byte footer: the metaindex and index block handles, padded, then the magic number.

Every block read is checked against its crc32c, as TensorFlow's table reader
(``tsl/lib/io/format.cc``, ``ReadBlock``) does: a flipped bit in a key or a shape is an
error, not a renamed or reshaped entry. Compressed blocks are decompressed by
``cramjam``'s snappy.

Example
-------
>>> varint(bytes([0xAC, 0x02]), 0)
(300, 2)
"""
from __future__ import annotations

import struct

import cramjam

from ._tensordata import crc32c, mask

__all__ = ["Damaged", "varint", "snappy_uncompress", "block_bounds", "block_items", "data_blocks"]

_FOOTER = 48  # two varint block handles padded to 40 bytes, then the 8-byte magic
_MAGIC = 0xDB4775248B80FB57
_TRAILER = 5  # after every block: 1 byte compression type, 4 bytes masked crc32c


class Damaged(Exception):
    """What is wrong with an index, as the end of a sentence; the reader adds the file name.

    Its text follows "Index file '<path>' ", e.g. ``"is empty (0 bytes)"``.
    """


def varint(buf, pos: int) -> tuple[int, int]:
    """``(value, position after it)`` of the base-128 varint at ``buf[pos]``.

    Past the end of ``buf`` it raises ``IndexError``, which the reader reports as a
    truncated index.
    """
    result = shift = 0
    for _ in range(10):
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise Damaged("is garbled (a varint runs over 10 bytes)")


def snappy_uncompress(data) -> bytes:
    """Snappy's raw format (TF could write compressed index blocks around version 1.1)."""
    try:
        expected, _ = varint(data, 0)
    except IndexError:
        raise Damaged("has a snappy-compressed block cut short in its length") from None
    # Snappy never expands a byte to more than 22 (a 3-byte copy gives 64): a longer
    # promised length is damage, refused before anything that size is allocated.
    if expected > 22 * len(data):
        raise Damaged(f"has a snappy-compressed block of {len(data)} bytes claiming to hold {expected}")
    try:
        return bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError as error:
        raise Damaged(f"has a garbled snappy-compressed block ({error})") from None


def _block(buf: bytes, handle: bytes, body_end: int, what: str) -> bytes:
    # ``what``: "a data" or "an index", for the messages.
    offset, pos = varint(handle, 0)
    size, _ = varint(handle, pos)
    if offset + size + _TRAILER > body_end:
        raise Damaged(f"points to {what} block at bytes {offset}..{offset + size}, outside the file")
    (stored,) = struct.unpack_from("<I", buf, offset + size + 1)
    computed = mask(crc32c(memoryview(buf)[offset : offset + size + 1]))  # the contents and the type byte
    if computed != stored:
        raise Damaged(
            f"has {what} block at bytes {offset}..{offset + size} whose checksum does not match "
            f"(stored 0x{stored:08x}, computed 0x{computed:08x})"
        )
    kind = buf[offset + size]
    contents = buf[offset : offset + size]
    if kind == 1:
        return snappy_uncompress(contents)
    if kind != 0:
        raise Damaged(f"has {what} block with unknown compression type {kind}")
    return contents


def block_bounds(block: bytes) -> int:
    """Where the entries of a block end (its restart array follows)."""
    if len(block) < 4:
        raise Damaged("has a block shorter than its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise Damaged("has a block whose restart array is longer than the block")
    return limit


def block_items(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` pairs of a block, in order.

    Called once per block of a 10,000-entry index, so the loop is written for speed: the
    three varints starting a pair are nearly always one byte each.
    """
    limit = block_bounds(block)
    out = []
    append = out.append
    pos = 0
    key = b""
    whole = []  # offsets of entries that store their whole key (shared == 0)
    while pos < limit:
        start = pos
        shared, unshared, length = block[pos], block[pos + 1], block[pos + 2]
        if shared | unshared | length < 0x80:
            pos += 3
        else:
            shared, pos = varint(block, pos)
            unshared, pos = varint(block, pos)
            length, pos = varint(block, pos)
        end = pos + unshared
        if shared > len(key) or end + length > limit:
            raise Damaged("has an entry that runs past the end of its block")
        if not shared:
            whole.append(start)
        key = key[:shared] + block[pos:end]
        pos = end + length
        append((key, block[end:pos]))
    _check_restarts(block, limit, whole, bool(out))
    return out


def _check_restarts(block: bytes, limit: int, whole: list, has_entries: bool) -> None:
    # TensorFlow's table reader seeks by binary search over the restart points: each must be
    # the start of an entry storing its whole key, else it fails ("bad entry in block") on
    # an index this sequential walk could read. A valid table is valid both ways.
    if not has_entries:
        return  # an empty block (the metaindex) has one restart point at 0 and nothing there
    count = (len(block) - 4 - limit) // 4
    if count == 0:
        raise Damaged("has a block with entries but no restart points")
    restarts = struct.unpack_from(f"<{count}I", block, limit)
    starts = set(whole)
    if any(r not in starts for r in restarts) or list(restarts) != sorted(set(restarts)):
        raise Damaged("has a block whose restart points are not the starts of whole keys")


def data_blocks(buf: bytes) -> list[bytes]:
    """The data blocks of the table in ``buf``, in key order, after checking the footer."""
    if len(buf) == 0:
        raise Damaged("is empty (0 bytes)")
    if len(buf) < _FOOTER:
        raise Damaged(f"is {len(buf)} bytes, too short for a checkpoint index (the table footer alone is 48)")
    (magic,) = struct.unpack_from("<Q", buf, len(buf) - 8)
    if magic != _MAGIC:
        raise Damaged("is not a checkpoint index: it does not end in the table magic number")
    body_end = len(buf) - _FOOTER
    footer = buf[body_end:]
    _, pos = varint(footer, 0)
    _, pos = varint(footer, pos)  # the metaindex handle: nothing in it for us
    start = pos
    _, pos = varint(footer, pos)
    _, pos = varint(footer, pos)
    index = _block(buf, footer[start:pos], body_end, "an index")
    return [_block(buf, handle, body_end, "a data") for _, handle in block_items(index)]
