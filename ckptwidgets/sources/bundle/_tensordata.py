"""Tensor values from a checkpoint's data files, read and checked without TensorFlow.

Private helper of the checkpoint reader. A ``.data-NNNNN-of-NNNNN`` file is the
tensors' bytes back to back; the index entry of each (:func:`ckptwidgets.sources.bundle._index.data_ref`)
says where they are and holds their masked crc32c. We read them as TensorFlow's
``BundleReader`` does (``tensorflow/core/util/tensor_bundle/tensor_bundle.cc``), with the
same checks, and return what ``tf.train.load_checkpoint(prefix).get_tensor(key)`` returns,
bit for bit: a numpy array, or a numpy scalar (``bytes`` for a string) when the shape is
``()``.

Layout of a string tensor: the varint64 length of each element, the masked crc32c of
those lengths (each taken as a 4-byte integer, 8 bytes when over 4 GiB), then the
elements' bytes. The entry's crc32c covers the lengths (as integers), the length
checksum and the elements. ``resource`` and ``variant`` tensors hold C++ objects only
TensorFlow can rebuild: :class:`Undecodable`.

Big tensors are memory-mapped, not copied: :func:`read_tensor` returns a read-only view
of the file (the page cache is the array), so reading a 1 GB tensor costs no 1 GB of
private memory. Should the file be truncated in place while such a view lives, touching
it raises SIGBUS; TensorFlow's savers write new files and rename them, which is safe.

Example
-------
>>> decode(bytes([2, 0, 0, 0, 3, 0, 0, 0]), "int32", (2,))
array([2, 3], dtype=int32)
>>> hex(mask(crc32c(b"")))
'0xa282ead8'
"""
from __future__ import annotations

import math
import mmap
import struct
from itertools import accumulate

import crc32c as _crc32c
import numpy as np

from .._dtypes import numpy_type

__all__ = [
    "MMAP_BYTES",
    "DataDamaged",
    "Undecodable",
    "mask",
    "unmask",
    "crc32c",
    "decode",
    "read_tensor",
]

#: Tensors of at least this many bytes are memory-mapped instead of read.
MMAP_BYTES = 1 << 20

_MASK_DELTA = 0xA282EAD8  # LevelDB's: a crc of data that holds crcs is masked
_UINT32_MAX = 0xFFFFFFFF


class DataDamaged(Exception):
    """A tensor's bytes do not match its index entry; the message says how, for a user."""


class Undecodable(Exception):
    """A dtype whose values only TensorFlow can rebuild (``resource``, ``variant``)."""


def mask(crc: int) -> int:
    """The masked form of a crc32c, as checkpoints store it."""
    return ((((crc >> 15) | (crc << 17)) & _UINT32_MAX) + _MASK_DELTA) & _UINT32_MAX


def unmask(masked: int) -> int:
    """The crc32c a masked value stands for."""
    rotated = (masked - _MASK_DELTA) & _UINT32_MAX
    return ((rotated >> 17) | (rotated << 15)) & _UINT32_MAX


def crc32c(data, value: int = 0) -> int:
    """crc32c of a bytes-like object, continuing from ``value`` (hardware-accelerated)."""
    return _crc32c.crc32c(data, value)


def _numpy_dtype(name: str) -> np.dtype:
    # The numpy dtype get_tensor returns: for a quantized dtype the plain integers of the
    # one field TensorFlow's structured stand-in has, not the structured dtype.
    try:
        numpy = numpy_type(name)
    except KeyError:
        raise ValueError(f"{name!r} is not a TensorFlow tensor dtype") from None
    if numpy is None:
        if name in ("resource", "variant"):
            raise Undecodable(f"{name} tensors hold C++ objects that only TensorFlow can rebuild")
        raise Undecodable(f"{name} tensors need a newer ml_dtypes than the one installed")
    dtype = np.dtype(numpy)
    return dtype[0] if dtype.names else dtype


def _scalar_or_array(array: np.ndarray):
    # get_tensor gives a 0-d tensor as a numpy scalar (a string as its bytes).
    return array[()] if array.ndim == 0 else array


def _from_bytes(data, dtype: np.dtype, big_endian: bool) -> np.ndarray:
    if not big_endian:
        return np.frombuffer(data, dtype)
    # TensorFlow swaps each number; complex ones as their two halves.
    unit = dtype.itemsize // 2 if dtype.kind == "c" else dtype.itemsize
    if unit == 1:
        return np.frombuffer(data, dtype)
    return np.frombuffer(data, f"u{unit}").byteswap().view(dtype)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The index's varint (:func:`~ckptwidgets.sources.bundle._sstable.varint`), its damage said as the data file's."""
    from ._sstable import Damaged, varint  # here: _sstable takes this module's checksums (lengths >= 128 only)

    try:
        return varint(data, pos)
    except IndexError:
        raise DataDamaged("the string lengths run past the end of the tensor's bytes; the data file is damaged") from None
    except Damaged:
        raise DataDamaged("a string length is garbled (its varint runs over 10 bytes); the data file is damaged") from None


def _strings(data: bytes, count: int, big_endian: bool) -> tuple[np.ndarray, int]:
    """The elements of a string tensor and the crc32c TensorFlow computes over them."""
    if not data and not count:
        return np.empty(0, dtype=object), 0  # TensorFlow reads nothing at all for a size of 0
    lengths = []
    pos = 0
    for _ in range(count):
        if pos < len(data) and data[pos] < 0x80:  # nearly every length: one byte
            lengths.append(data[pos])
            pos += 1
        else:
            length, pos = _varint(data, pos)
            lengths.append(length)
    total = sum(lengths)
    if pos + 4 + total > len(data):
        raise DataDamaged(
            f"its {count} strings need {pos + 4 + total} bytes, more than the {len(data)} of its index entry; "
            "the data file or the index is damaged"
        )
    order = ">" if big_endian else "<"
    small, large = struct.Struct(order + "I").pack, struct.Struct(order + "Q").pack
    crc = crc32c(b"".join(small(n) if n <= _UINT32_MAX else large(n) for n in lengths))
    stored = int.from_bytes(data[pos : pos + 4], "big" if big_endian else "little")
    if unmask(stored) != crc:
        raise DataDamaged(
            f"the checksum of its string lengths does not match: stored 0x{stored:08x}, "
            f"computed 0x{mask(crc):08x}; the data file is damaged"
        )
    crc = crc32c(data[pos : pos + 4 + total], crc)  # the stored length checksum, then the elements
    ends = list(accumulate(lengths, initial=pos + 4))
    out = np.empty(count, dtype=object)  # only now: count is known to fit in the data
    out[:] = [data[a:b] for a, b in zip(ends, ends[1:])]
    return out, crc


def decode(data, dtype_name: str, shape, big_endian: bool = False):
    """The value of a tensor from its bytes as a checkpoint stores them.

    The entry's crc32c is not checked here (:func:`read_tensor` checks it); the checksum a
    string tensor holds of its own lengths is.

    Parameters
    ----------
    data : bytes-like
        The tensor's bytes in the data file. A numeric result is a view of them when the
        byte order allows (read-only for ``bytes``).
    dtype_name : str
        TensorFlow's dtype name (``"float32"``), as in :data:`ckptwidgets.sources._dtypes.BY_NAME`.
    shape : sequence of int
    big_endian : bool
        The bundle was written on a big-endian machine (its header says so).

    Returns
    -------
    numpy.ndarray, a numpy scalar for shape ``()``, ``bytes`` for a scalar string.

    Raises
    ------
    DataDamaged
        The bytes cannot be this tensor (wrong length, garbled string lengths).
    Undecodable
        ``resource`` and ``variant`` tensors.
    """
    shape = tuple(shape)
    count = math.prod(shape)
    if dtype_name == "string":
        return _scalar_or_array(_strings(bytes(data), count, big_endian)[0].reshape(shape))
    dtype = _numpy_dtype(dtype_name)
    if len(data) != count * dtype.itemsize:
        raise DataDamaged(f"{len(data)} bytes cannot be shape {list(shape)} of {dtype_name} ({count * dtype.itemsize} bytes)")
    return _scalar_or_array(_from_bytes(data, dtype, big_endian).reshape(shape))


def _read_exact(file, offset: int, size: int) -> np.ndarray:
    # np.empty, not bytearray: zero-filling first would cost as much as the read.
    buffer = np.empty(size, np.uint8)
    view = memoryview(buffer)
    file.seek(offset)
    done = 0
    while done < size:  # one read for a local file; a loop for short reads
        got = file.readinto(view[done:])
        if not got:
            raise DataDamaged(f"the data file ends at byte {offset + done}, inside the tensor's bytes; it is truncated")
        done += got
    return buffer


def _mapped(file, offset: int, size: int) -> memoryview:
    # A mapping starts on an allocation boundary. (MAP_POPULATE measured slower: the
    # kernel's fault-around maps 16 pages a fault as the checksum walks the view.)
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    mapping = mmap.mmap(file.fileno(), offset + size - start, access=mmap.ACCESS_READ, offset=start)
    return memoryview(mapping)[offset - start :]


def read_tensor(path, offset: int, size: int, dtype_name: str, shape, stored_crc32c: int,
                big_endian: bool = False, copy: bool = False):
    """Read one tensor from a local data file, with the checks TensorFlow makes.

    Parameters
    ----------
    path : str or os.PathLike
        The data shard (``<prefix>.data-00000-of-00001``); a local file.
    offset, size : int
        Where the tensor's bytes are, from its index entry.
    dtype_name : str
    shape : sequence of int
    stored_crc32c : int
        The masked crc32c of the index entry.
    big_endian : bool
        The bundle header says it was written big-endian.
    copy : bool
        For a tensor of at least :data:`MMAP_BYTES`: return a writable array of its own
        instead of a read-only view of the memory-mapped file.

    Returns
    -------
    What :func:`decode` returns. A numeric tensor of at least :data:`MMAP_BYTES` is a
    read-only view of the file unless ``copy`` (or the bundle is big-endian); smaller ones
    are writable arrays of their own.

    Raises
    ------
    DataDamaged
        The entry's size does not fit its dtype and shape, its bytes run past the end of
        the file, or a checksum does not match. Checked before anything big is allocated.
    Undecodable
        ``resource`` and ``variant`` tensors (TensorFlow can read those).
    OSError
        The file cannot be opened or read.
    """
    shape = tuple(shape)
    count = math.prod(shape)
    if offset < 0 or size < 0:
        raise DataDamaged(f"its index entry says {size} bytes at offset {offset}; the index is damaged")
    if dtype_name == "string":
        # Each element takes at least its one-byte length: the lower bound TensorFlow checks.
        if size < count:
            raise DataDamaged(f"its index entry says {size} bytes, too few for {count} strings; the index is damaged")
    else:
        dtype = _numpy_dtype(dtype_name)
        if size != count * dtype.itemsize:
            raise DataDamaged(
                f"its index entry says {size} bytes, but shape {list(shape)} of {dtype_name} is "
                f"{count * dtype.itemsize} bytes; the index is damaged"
            )
    with open(path, "rb", buffering=0) as file:
        available = file.seek(0, 2)
        if offset + size > available:
            raise DataDamaged(
                f"its {size} bytes at offset {offset} end past the end of the data file ({available} bytes); "
                "the file is truncated or the index is damaged"
            )
        if dtype_name == "string":
            value, computed = _strings(_read_exact(file, offset, size).tobytes(), count, big_endian)
            value = value.reshape(shape)
        else:
            mapped = size >= MMAP_BYTES and not copy
            data = _mapped(file, offset, size) if mapped else _read_exact(file, offset, size)
            computed = crc32c(data)
    if computed != unmask(stored_crc32c):
        raise DataDamaged(
            f"checksum does not match: stored 0x{stored_crc32c:08x}, computed 0x{mask(computed):08x}; "
            "the data file is damaged"
        )
    if dtype_name != "string":
        value = _from_bytes(data, dtype, big_endian).reshape(shape)
    return _scalar_or_array(value)
