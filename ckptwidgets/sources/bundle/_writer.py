"""Write a TensorFlow tensor bundle (``prefix.index`` + ``prefix.data-00000-of-00001``) without TensorFlow.

Private helper of :mod:`ckptwidgets.write`. Tensors are added one at a time and their bytes
go straight to the data file, so memory stays at one tensor whatever the checkpoint's size.
Every :data:`SYNC_EVERY_BYTES` the data written so far is handed to a
:class:`~ckptwidgets.sources._background_sync.BackgroundSync`, so the disk writes while we write and
the final ``fsync`` waits for the last few megabytes, not for the whole file.
The layout is TensorFlow's own (``tensorflow/core/util/tensor_bundle/tensor_bundle.cc``,
``tensorflow/core/lib/io/table_builder.cc``), the same our reader checks:

- the data file: each tensor's bytes back to back (a string tensor: the varint64 length of
  each element, the masked crc32c of the lengths, the elements);
- the index: a LevelDB table, keys sorted, the empty key first holding the
  ``BundleHeaderProto``; each tensor key holds a ``BundleEntryProto`` (dtype, shape, offset,
  size, masked crc32c); blocks of about 4 KiB with prefix-compressed keys (a restart every
  16 keys), each followed by its compression byte and masked crc32c; an index block, an
  empty metaindex block and the 48-byte footer.

Example
-------
>>> import os, tempfile, numpy as np
>>> prefix = os.path.join(tempfile.mkdtemp(), "out.ckpt")
>>> with BundleWriter(prefix) as writer:
...     writer.add("v1", np.array([1.0], np.float32), "float32")
4
>>> sorted(os.listdir(os.path.dirname(prefix)))
['out.ckpt.data-00000-of-00001', 'out.ckpt.index']
"""
from __future__ import annotations

import os
import struct

import numpy as np

from . import _protos
from .._background_sync import SyncedWrites
from .._dtypes import BY_NAME
from ._tensordata import crc32c, mask

__all__ = ["BundleWriter", "DATA_SUFFIX"]

DATA_SUFFIX = ".data-00000-of-00001"
_MAGIC = 0xDB4775248B80FB57
_BLOCK_BYTES = 4096
_RESTART_EVERY = 16
_UINT32_MAX = 0xFFFFFFFF
#: After this many bytes more, the background thread is asked to sync the data file.
SYNC_EVERY_BYTES = 64 << 20


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Table:
    """LevelDB's table format: sorted ``(key, value)`` pairs to bytes."""

    def __init__(self):
        self.out = bytearray()
        self.index: list[tuple[bytes, bytes]] = []
        self._block, self._restarts, self._count, self._last = bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self._count % _RESTART_EVERY:
            limit = min(len(key), len(self._last))
            while shared < limit and key[shared] == self._last[shared]:
                shared += 1
        elif self._count:
            self._restarts.append(len(self._block))
        self._block += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        self._count += 1
        self._last = key
        if len(self._block) >= _BLOCK_BYTES:
            self._flush()

    def _put(self, contents: bytes) -> bytes:
        """Append a block and its trailer; return its handle."""
        offset = len(self.out)
        self.out += contents + b"\x00" + struct.pack("<I", mask(crc32c(contents + b"\x00")))
        return _varint(offset) + _varint(len(contents))

    def _flush(self) -> None:
        if not self._count:
            return
        block = bytes(self._block) + b"".join(struct.pack("<I", r) for r in self._restarts)
        block += struct.pack("<I", len(self._restarts))
        # The block's last key separates it from the next (every key of it is <= it).
        self.index.append((self._last, self._put(block)))
        self._block, self._restarts, self._count = bytearray(), [0], 0

    def finish(self) -> bytes:
        self._flush()
        meta = self._put(struct.pack("<II", 0, 1))  # an empty block: one restart at 0
        index = bytearray()
        for key, handle in self.index:  # every index key a restart: no shared prefixes
            index += _varint(0) + _varint(len(key)) + _varint(len(handle)) + key + handle
        restarts = b"".join(struct.pack("<I", r) for r in _offsets(self.index))
        index_handle = self._put(bytes(index) + restarts + struct.pack("<I", max(len(self.index), 1)))
        footer = meta + index_handle
        self.out += footer + b"\x00" * (40 - len(footer)) + struct.pack("<Q", _MAGIC)
        return bytes(self.out)


def _offsets(items) -> list[int]:
    offsets, at = [], 0
    for key, handle in items:
        offsets.append(at)
        at += len(_varint(0)) + len(_varint(len(key))) + len(_varint(len(handle))) + len(key) + len(handle)
    return offsets or [0]


def _string_bytes(value) -> tuple[list[bytes], int]:
    """The pieces of a string tensor as the data file holds them, and their crc32c as TF computes it."""
    elements = [e if isinstance(e, bytes) else str(e).encode("utf-8") for e in np.asarray(value, dtype=object).ravel()]
    lengths = b"".join(_varint(len(e)) for e in elements)
    as_integers = b"".join(struct.pack("<I", len(e)) if len(e) <= _UINT32_MAX else struct.pack("<Q", len(e)) for e in elements)
    crc = crc32c(as_integers)
    length_check = struct.pack("<I", mask(crc))
    crc = crc32c(length_check, crc)
    for element in elements:
        crc = crc32c(element, crc)
    return [lengths, length_check, *elements], crc


class BundleWriter:
    """Writes one tensor bundle: :meth:`add` each tensor, then :meth:`finish` (or use ``with``).

    Files appear under ``prefix`` as they are written; callers that must not leave a
    half-written checkpoint under its final name write to a temporary prefix and move it
    (:mod:`ckptwidgets.write` does).
    """

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._data = open(prefix + DATA_SUFFIX, "wb")
        self._offset = 0
        self._writes = SyncedWrites(self._data, SYNC_EVERY_BYTES)
        self._entries: dict[str, bytes] = {}
        #: ``{key: crc32c of the bytes written}``, to check a read-back against.
        self.crcs: dict[str, int] = {}

    def add(self, key: str, value, dtype: str) -> int:
        """Write ``value`` (an array, a numpy scalar, bytes) as TF dtype ``dtype``; return its bytes."""
        if dtype == "string":
            pieces, crc = _string_bytes(value)
            return self._record(key, dtype, np.shape(value), pieces, crc)
        array = np.asarray(value)
        return self.add_chunks(key, dtype, array.shape, [array])

    def add_chunks(self, key: str, dtype: str, shape, chunks) -> int:
        """Write a numeric tensor of ``shape`` from ``chunks`` (arrays whose elements, in C
        order, make it up): memory stays at one chunk. Returns its bytes."""
        numpy = np.dtype(BY_NAME[dtype].numpy)
        numpy = numpy[0] if numpy.names else numpy  # quantized dtypes: their plain integers
        crc, size = 0, 0
        for chunk in chunks:
            raw = np.ascontiguousarray(chunk, dtype=numpy).reshape(-1).view(np.uint8)
            for start in range(0, raw.size, SYNC_EVERY_BYTES):  # a big tensor is synced as it goes too
                piece = raw[start : start + SYNC_EVERY_BYTES]
                self._write(piece)
                crc, size = crc32c(piece, crc), size + piece.size
        expected = int(np.prod(shape, dtype=np.int64)) * numpy.itemsize
        if size != expected:
            raise ValueError(f"key {key!r}: {size} bytes written for shape {list(shape)} of {dtype} ({expected})")
        return self._record(key, dtype, shape, [], crc, size)

    def _record(self, key, dtype, shape, pieces, crc, size=0) -> int:
        if key in self._entries:
            raise ValueError(f"key {key!r} is written twice")
        for piece in pieces:
            self._write(piece)
            size += len(piece)
        entry = _protos.BundleEntryProto(dtype=BY_NAME[dtype].enum, offset=self._offset, size=size, crc32c=mask(crc))
        for d in shape:
            entry.shape.dim.add(size=int(d))
        self._entries[key] = entry.SerializeToString()
        self.crcs[key] = crc
        self._offset += size
        return size

    def _write(self, piece) -> None:
        self._writes.write(piece)

    def finish(self) -> None:
        """Close the data file (flushed to disk) and write the index."""
        self._writes.finish()
        self._data.close()
        header = _protos.BundleHeaderProto(num_shards=1)
        header.version.producer = 1
        table = _Table()
        table.add(b"", header.SerializeToString())
        for key in sorted(self._entries, key=lambda k: k.encode("utf-8")):
            table.add(key.encode("utf-8"), self._entries[key])
        with open(self.prefix + ".index", "wb") as f:
            f.write(table.finish())
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        """Close and delete what was written."""
        try:
            self._writes.stop()
            self._data.close()
        except OSError:
            pass  # a full disk fails the flush of the last buffered bytes again; the file is closed anyway
        for path in (self.prefix + DATA_SUFFIX, self.prefix + ".index"):
            if os.path.exists(path):
                os.remove(path)

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.finish()
        else:
            self.abort()
